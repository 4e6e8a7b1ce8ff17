//! Luminance quantization: the hard staircase and the soft, temporally steady one of
//! Winnemöller et al. ("Real-Time Video Abstraction", 2006).
//!
//! Bands have width `step`; band k spans `[k·step, (k+1)·step)` and its level is the centre.
//! The soft staircase replaces each jump at a band boundary `b` by a tanh ramp:
//! `Q(v) = b + step/2 · tanh(φ(v − b)) / tanh(φ·step/2)`, where `b` is the boundary nearest `v`.
//! Dividing by `tanh(φ·step/2)` (a small change to the paper's formula) makes `Q` continuous and
//! monotonic for every sharpness φ: φ → 0 gives the identity, φ → ∞ the hard staircase. Because
//! the slope is bounded (`φ·step/2 / tanh(φ·step/2)` at most), a small change of the input can
//! only make a small change of the output: bands do not "pop" from frame to frame.

use super::fastmath;

/// Band index of `v` for bands of width `step` (> 0).
#[inline]
pub fn band(v: f32, step: f32) -> i32 {
    (v / step).floor() as i32
}

/// Hard quantization: the centre of `v`'s band.
#[inline]
pub fn hard_quantize(v: f32, step: f32) -> f32 {
    ((v / step).floor() + 0.5) * step
}

/// Soft quantization with sharpness `phi` (per unit of `v`; 0 = identity). See the module docs.
#[inline(always)]
pub fn soft_quantize(v: f32, step: f32, phi: f32) -> f32 {
    let half = 0.5 * step;
    let s = phi * half;
    let b = fastmath::round(v / step) * step;
    let q = b + half * fastmath::tanh(phi * (v - b)) / fastmath::tanh(s.max(1e-2));
    // Branch-free (vectorizes); a vanishing sharpness is the identity.
    if s > 1e-2 {
        q
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_quantize_is_a_staircase() {
        assert_eq!(hard_quantize(0.0, 10.0), 5.0);
        assert_eq!(hard_quantize(9.99, 10.0), 5.0);
        assert_eq!(hard_quantize(10.0, 10.0), 15.0);
        assert_eq!(band(25.0, 10.0), 2);
        assert_eq!(band(-0.1, 10.0), -1);
    }

    #[test]
    fn soft_quantize_limits_and_continuity() {
        let step = 12.5;
        // Sharp: close to the hard staircase away from the boundaries.
        for v in [3.0f32, 20.0, 40.0, 61.0, 99.0] {
            let centre = hard_quantize(v, step);
            if (v - centre).abs() < 0.4 * step {
                assert!((soft_quantize(v, step, 5.0) - centre).abs() < 0.01, "v {v}");
            }
        }
        // Zero sharpness: identity.
        assert_eq!(soft_quantize(37.3, step, 0.0), 37.3);
        // Continuous and monotonic for soft and sharp settings (no jumps at band centres).
        for phi in [0.05f32, 0.3, 1.0, 4.0] {
            let mut prev = soft_quantize(0.0, step, phi);
            let max_slope = phi * step / 2.0 / (phi * step / 2.0).tanh();
            let dv = 0.01;
            let mut v = dv;
            while v < 100.0 {
                let q = soft_quantize(v, step, phi);
                assert!(q >= prev - 1e-4, "not monotonic at {v} (phi {phi})");
                assert!(
                    q - prev <= max_slope * dv * 1.01 + 1e-4,
                    "jump {} at {v} (phi {phi})",
                    q - prev
                );
                prev = q;
                v += dv;
            }
        }
    }
}
