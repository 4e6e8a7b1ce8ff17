//! Separable Gaussian blur with half-sample symmetric borders (see [`super::reflect`]).
//!
//! The kernel is sampled to a radius of `ceil(3σ)` and normalized, so flat images stay flat and
//! the image mean is preserved. Both passes are vectorizable over x: the horizontal one runs on
//! a padded copy of each row, the vertical one sums whole weighted rows, so no transpose is
//! needed. Cost is O(σ) per pixel, meant for the small σ of edge detection (≲ 5 px).

use super::{reflect, Plane};
use rayon::prelude::*;

/// The normalized Gaussian kernel for `sigma` (length `2r + 1`, `r = ceil(3σ)`, at least 1);
/// `[1.0]` for `sigma <= 0` or non-finite `sigma`.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    if !(sigma > 0.0 && sigma.is_finite()) {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil().clamp(1.0, 1024.0) as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * (sigma as f64).powi(2))).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.iter().map(|&v| (v / sum) as f32).collect()
}

/// Gaussian blur of `src` with standard deviation `sigma` (pixels).
pub fn gaussian_blur(src: &Plane, sigma: f32) -> Plane {
    let kernel = gaussian_kernel(sigma);
    convolve_separable(src, &kernel)
}

/// Convolves `src` with `kernel` (odd length, centred) along x, then along y.
pub fn convolve_separable(src: &Plane, kernel: &[f32]) -> Plane {
    let (w, h) = (src.width(), src.height());
    if w == 0 || h == 0 {
        return src.clone();
    }
    if kernel.len() <= 1 {
        let k = kernel.first().copied().unwrap_or(1.0);
        let mut out = src.clone();
        out.data_mut().iter_mut().for_each(|v| *v *= k * k);
        return out;
    }
    let tmp = convolve_rows(src, kernel);
    let mut out = Plane::scratch(w, h);
    out.par_rows_mut()
        .enumerate()
        .for_each(|(y, dst)| convolve_column_row(&tmp, kernel, y, dst));
    out
}

/// The horizontal half of [`convolve_separable`]: every row convolved with `kernel`.
pub fn convolve_rows(src: &Plane, kernel: &[f32]) -> Plane {
    let (w, h) = (src.width(), src.height());
    let r = kernel.len() / 2;
    let mut tmp = Plane::scratch(w, h);
    if w == 0 || h == 0 {
        return tmp;
    }
    tmp.par_rows_mut().enumerate().for_each_init(
        || vec![0f32; w + 2 * r],
        |pad, (y, out)| {
            let row = src.row(y);
            pad[r..r + w].copy_from_slice(row);
            for i in 0..r {
                pad[i] = row[reflect(i as isize - r as isize, w)];
                pad[r + w + i] = row[reflect((w + i) as isize, w)];
            }
            horizontal_row(pad, kernel, out);
        },
    );
    tmp
}

/// The vertical half of [`convolve_separable`] for output row `y`: `dst` (of the plane's width)
/// receives the weighted sum of the rows of `tmp` around `y`.
#[inline]
pub fn convolve_column_row(tmp: &Plane, kernel: &[f32], y: usize, dst: &mut [f32]) {
    let r = kernel.len() / 2;
    let h = tmp.height();
    let row_at = |k: usize| tmp.row(reflect(y as isize + k as isize - r as isize, h));
    for (d, &v) in dst.iter_mut().zip(row_at(0)) {
        *d = kernel[0] * v;
    }
    for (k, &kw) in kernel.iter().enumerate().skip(1) {
        for (d, &v) in dst.iter_mut().zip(row_at(k)) {
            *d += kw * v;
        }
    }
}

/// `out[x] = Σ_k kernel[k] · pad[x + k]` (pad holds the row with `r` reflected samples each side).
#[inline]
fn horizontal_row(pad: &[f32], kernel: &[f32], out: &mut [f32]) {
    let n = out.len();
    for (d, &v) in out.iter_mut().zip(&pad[..n]) {
        *d = kernel[0] * v;
    }
    for (k, &kw) in kernel.iter().enumerate().skip(1) {
        let src = &pad[k..k + n];
        for (d, &v) in out.iter_mut().zip(src) {
            *d += kw * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(w: usize, h: usize, seed: u64) -> Plane {
        let mut s = seed;
        Plane::from_fn(w, h, |_, _| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 1000) as f32 / 10.0
        })
    }

    #[test]
    fn kernel_is_normalized_and_symmetric() {
        let k = gaussian_kernel(1.3);
        assert_eq!(k.len(), 2 * 4 + 1);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for i in 0..k.len() / 2 {
            assert_eq!(k[i], k[k.len() - 1 - i]);
        }
        assert_eq!(gaussian_kernel(0.0), vec![1.0]);
        assert_eq!(gaussian_kernel(f32::NAN), vec![1.0]);
    }

    #[test]
    fn blur_preserves_mean_and_flatness() {
        let src = noise(53, 37, 7);
        let out = gaussian_blur(&src, 2.5);
        assert!(
            (out.mean() - src.mean()).abs() < 1e-3,
            "{} vs {}",
            out.mean(),
            src.mean()
        );
        // Strong noise reduction: variance drops a lot.
        let var = |p: &Plane| {
            let m = p.mean();
            p.data()
                .iter()
                .map(|&v| (v as f64 - m).powi(2))
                .sum::<f64>()
                / p.data().len() as f64
        };
        assert!(var(&out) < var(&src) / 20.0);
        let flat = Plane::from_fn(20, 10, |_, _| 42.0);
        let f = gaussian_blur(&flat, 3.0);
        assert!(f.data().iter().all(|&v| (v - 42.0).abs() < 1e-4));
    }

    #[test]
    fn blur_matches_direct_2d_convolution() {
        // Includes a kernel wider than the image (multiple reflections).
        for (w, h, sigma) in [(31, 17, 1.7f32), (9, 5, 2.2)] {
            let src = noise(w, h, 99);
            let fast = gaussian_blur(&src, sigma);
            let k = gaussian_kernel(sigma);
            let r = (k.len() / 2) as isize;
            let mut worst = 0f32;
            for y in 0..h {
                for x in 0..w {
                    let mut acc = 0f64;
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let sx = reflect(x as isize + dx, w);
                            let sy = reflect(y as isize + dy, h);
                            acc += (k[(dx + r) as usize] * k[(dy + r) as usize]) as f64
                                * src.get(sx, sy) as f64;
                        }
                    }
                    worst = worst.max((acc as f32 - fast.get(x, y)).abs());
                }
            }
            assert!(
                worst < 1e-3,
                "worst difference {worst} at {w}x{h} sigma {sigma}"
            );
        }
    }

    #[test]
    fn degenerate_sizes() {
        let empty = Plane::new(0, 0);
        assert_eq!(gaussian_blur(&empty, 2.0).data().len(), 0);
        let one = Plane::from_fn(1, 1, |_, _| 5.0);
        assert!((gaussian_blur(&one, 2.0).get(0, 0) - 5.0).abs() < 1e-5);
    }
}
