//! Branch-free, auto-vectorizable approximations of `exp`, `tanh` and `cbrt` for f32.
//!
//! They avoid libm calls (which block vectorization on baseline x86-64) and are accurate to a few
//! units in the 6th significant digit, plenty for 8-bit imagery. All are deterministic.

/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to the nearest
/// integer (ties to even) without a libm call.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Rounds `x` (|x| < 2^22) to the nearest integer (ties to even).
#[inline(always)]
pub fn round(x: f32) -> f32 {
    (x + ROUND_MAGIC) - ROUND_MAGIC
}

/// `e^x`: relative error below 3e-7 for |x| < 1, growing to ~5e-6 at |x| = 80 (the rounding of
/// `x·log2(e)` in f32); inputs below -87 give ~0, above 88 are clamped.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2: f32 = std::f32::consts::LN_2;
    let t = (x * LOG2E).clamp(-126.0, 127.0);
    let i = round(t);
    // y in [-ln2/2, ln2/2]: Taylor series of e^y to degree 6 (error < 1.2e-7 relative).
    let y = (t - i) * LN2;
    let p = 1.0
        + y * (1.0
            + y * (0.5
                + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0))))));
    let scale = f32::from_bits((((i as i32) + 127) as u32) << 23);
    p * scale
}

/// `tanh(x)` via [`exp`]; absolute error below 1e-6.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // tanh saturates to 1 in f32 beyond |x| = 9.01.
    let x = x.clamp(-9.0, 9.0);
    let e = exp(2.0 * x);
    (e - 1.0) / (e + 1.0)
}

/// Cube root of a non-negative `x` (relative error below 1e-6 for normal numbers); 0 for `x <= 0`.
#[inline(always)]
pub fn cbrt(x: f32) -> f32 {
    let xp = x.max(1e-30);
    // Bit-level initial guess (within ~4%), then two Halley steps (cubic convergence).
    let mut y = f32::from_bits(xp.to_bits() / 3 + 0x2a50_8935);
    let y3 = y * y * y;
    y *= (y3 + 2.0 * xp) / (2.0 * y3 + xp);
    let y3 = y * y * y;
    y *= (y3 + 2.0 * xp) / (2.0 * y3 + xp);
    if x > 0.0 {
        y
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 1e-5, "worst relative error {worst}");
        for i in -1000..1000 {
            let x = i as f32 / 1000.0;
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            assert!(rel < 3e-7, "exp({x}) relative error {rel}");
        }
        assert_eq!(exp(-1000.0).min(1e-37), exp(-1000.0));
        assert!(exp(0.0) == 1.0);
    }

    #[test]
    fn tanh_matches_std() {
        let mut x = -20.0f32;
        while x < 20.0 {
            let d = (tanh(x) as f64 - (x as f64).tanh()).abs();
            assert!(d < 1e-6, "tanh({x}) off by {d}");
            x += 0.0071;
        }
    }

    #[test]
    fn cbrt_matches_std() {
        let mut x = 1e-7f32;
        while x < 2.0 {
            let got = cbrt(x) as f64;
            let want = (x as f64).cbrt();
            assert!(
                ((got - want) / want).abs() < 1e-6,
                "cbrt({x}) = {got}, want {want}"
            );
            x *= 1.01;
        }
        assert_eq!(cbrt(0.0), 0.0);
        assert_eq!(cbrt(-1.0), 0.0);
    }
}
