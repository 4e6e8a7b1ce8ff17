//! Difference-of-Gaussians line extraction with soft (tanh) thresholding, after Winnemöller et
//! al., "Real-Time Video Abstraction" (2006), and the XDoG line of work.
//!
//! `D = G_σ(I) − τ·G_{kσ}(I)`; a pixel is inked where `D + ε < 0`, softly:
//! `E = 1` if `D + ε ≥ 0`, else `1 + tanh(φ·(D + ε))`. `E` is a multiplicative line mask (1 = paper,
//! 0 = black ink). The soft ramp keeps faint edges grey instead of flickering on and off.

use super::blur::{convolve_column_row, convolve_rows, gaussian_kernel};
use super::{fastmath, Plane};
use rayon::prelude::*;

/// Parameters of the DoG line extractor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dog {
    /// Centre Gaussian σ in pixels (line width).
    pub sigma: f32,
    /// Surround σ as a multiple of `sigma` (√1.6 ≈ 1.26 approximates a Laplacian of Gaussian).
    pub k: f32,
    /// Surround weight τ (< 1 favours light; 0.98 in the paper).
    pub tau: f32,
    /// Offset ε added to D before thresholding, in image units: larger = fewer, stronger lines.
    pub epsilon: f32,
    /// Sharpness φ of the tanh ramp (per image unit).
    pub phi: f32,
}

impl Default for Dog {
    fn default() -> Self {
        Dog {
            sigma: 1.0,
            k: 1.6f32.sqrt(),
            tau: 0.98,
            epsilon: 0.0,
            phi: 1.0,
        }
    }
}

/// Soft threshold of a DoG response `d` (already offset): 1 for `d ≥ 0`, `1 + tanh(φd)` below.
#[inline(always)]
pub fn soft_threshold(d: f32, phi: f32) -> f32 {
    if d >= 0.0 {
        1.0
    } else {
        1.0 + fastmath::tanh(phi * d)
    }
}

impl Dog {
    /// The offset response `D + ε` of one pixel from its two blurred values.
    #[inline(always)]
    pub fn response(&self, centre: f32, surround: f32) -> f32 {
        centre - self.tau * surround + self.epsilon
    }

    /// The offset response `D + ε` of every pixel of `src` (both blurs fused in one pass).
    pub fn response_plane(&self, src: &Plane) -> Plane {
        let (w, h) = (src.width(), src.height());
        let kc = gaussian_kernel(self.sigma);
        let ks = gaussian_kernel(self.sigma * self.k);
        let (tc, ts) = rayon::join(|| convolve_rows(src, &kc), || convolve_rows(src, &ks));
        let mut out = Plane::scratch(w, h);
        out.par_rows_mut().enumerate().for_each_init(
            || vec![0f32; w],
            |surround, (y, centre)| {
                convolve_column_row(&tc, &kc, y, centre);
                convolve_column_row(&ts, &ks, y, surround);
                for (c, &s) in centre.iter_mut().zip(surround.iter()) {
                    *c = self.response(*c, s);
                }
            },
        );
        out
    }

    /// The line mask of `src`: 1 where there is no line, down to 0 on strong dark edges.
    pub fn lines(&self, src: &Plane) -> Plane {
        let mut out = self.response_plane(src);
        out.data_mut()
            .par_iter_mut()
            .for_each(|d| *d = soft_threshold(*d, self.phi));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_is_blank_and_edges_are_inked_on_the_dark_side() {
        let flat = Plane::from_fn(30, 20, |_, _| 50.0);
        let e = Dog::default().lines(&flat);
        assert!(e.data().iter().all(|&v| v == 1.0));

        // Dark disc on light ground: a ring of ink just inside the disc's edge, nothing far away.
        let (w, h) = (64, 64);
        let disc = Plane::from_fn(w, h, |x, y| {
            let r = ((x as f32 - 32.0).powi(2) + (y as f32 - 32.0).powi(2)).sqrt();
            if r < 16.0 {
                20.0
            } else {
                80.0
            }
        });
        let e = Dog::default().lines(&disc);
        let at = |r: f32| e.get((32.0 + r) as usize, 32);
        let darkest = [13.0, 14.0, 15.0].map(at).into_iter().fold(1.0, f32::min);
        assert!(darkest < 0.1, "no ink inside the edge: {darkest}");
        assert_eq!(at(17.0), 1.0, "ink on the light side");
        assert_eq!(at(0.0), 1.0);
        assert_eq!(at(28.0), 1.0);
        // The offset suppresses weak lines.
        let faint = Plane::from_fn(w, h, |x, _| if x < 32 { 50.0 } else { 51.0 });
        let strict = Dog {
            tau: 1.0,
            epsilon: 0.5,
            ..Dog::default()
        };
        assert!(strict.lines(&faint).data().iter().all(|&v| v == 1.0));
    }

    #[test]
    fn soft_threshold_is_continuous() {
        assert_eq!(soft_threshold(0.0, 3.0), 1.0);
        assert!((soft_threshold(-1e-4, 3.0) - 1.0).abs() < 1e-3);
        assert!(soft_threshold(-5.0, 3.0) < 1e-5);
    }
}
