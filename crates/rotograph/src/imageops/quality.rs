//! Image quality measures: PSNR and SSIM over RGB, for the tests and benchmarks of every
//! stage (known-answer comparisons against a ground truth).

use image::RgbaImage;

/// Peak signal-to-noise ratio in dB over the RGB channels (peak 255); infinite for equal
/// images. Panics if the sizes differ (a programming error in a test or benchmark).
pub fn psnr(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "psnr of different sizes");
    let mut sum = 0.0f64;
    for (p, q) in a.pixels().zip(b.pixels()) {
        for c in 0..3 {
            let d = p.0[c] as f64 - q.0[c] as f64;
            sum += d * d;
        }
    }
    let mse = sum / (a.width() as f64 * a.height() as f64 * 3.0);
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// 1-D Gaussian taps (σ = 1.5, 11 taps), normalised.
fn gaussian() -> [f64; 11] {
    let mut k = [0.0; 11];
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - 5.0;
        *v = (-x * x / (2.0 * 1.5 * 1.5)).exp();
    }
    let s: f64 = k.iter().sum();
    k.map(|v| v / s)
}

/// Separable Gaussian blur with edge clamping.
fn blur(v: &[f64], w: usize, h: usize) -> Vec<f64> {
    let k = gaussian();
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            for (i, kv) in k.iter().enumerate() {
                let xx = (x as isize + i as isize - 5).clamp(0, w as isize - 1) as usize;
                s += kv * v[y * w + xx];
            }
            tmp[y * w + x] = s;
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            for (i, kv) in k.iter().enumerate() {
                let yy = (y as isize + i as isize - 5).clamp(0, h as isize - 1) as usize;
                s += kv * tmp[yy * w + x];
            }
            out[y * w + x] = s;
        }
    }
    out
}

/// Structural similarity (Wang et al., IEEE TIP 2004: Gaussian window σ = 1.5, K1 = 0.01,
/// K2 = 0.03, peak 255), the mean over pixels and the RGB channels; 1 for equal images.
/// Panics if the sizes differ.
pub fn ssim(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "ssim of different sizes");
    let (w, h) = (a.width() as usize, a.height() as usize);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut total = 0.0;
    for c in 0..3 {
        let x: Vec<f64> = a.pixels().map(|p| p.0[c] as f64).collect();
        let y: Vec<f64> = b.pixels().map(|p| p.0[c] as f64).collect();
        let prod = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(p, q)| p * q).collect::<Vec<_>>();
        let (mx, my) = (blur(&x, w, h), blur(&y, w, h));
        let (sxx, syy, sxy) = (
            blur(&prod(&x, &x), w, h),
            blur(&prod(&y, &y), w, h),
            blur(&prod(&x, &y), w, h),
        );
        let mut sum = 0.0;
        for i in 0..w * h {
            let (ux, uy) = (mx[i], my[i]);
            let vx = sxx[i] - ux * ux;
            let vy = syy[i] - uy * uy;
            let cov = sxy[i] - ux * uy;
            sum += ((2.0 * ux * uy + c1) * (2.0 * cov + c2))
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        }
        total += sum / (w * h) as f64;
    }
    total / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn equal_images_score_perfectly_and_noise_lowers_both() {
        let a = RgbaImage::from_fn(32, 24, |x, y| Rgba([(x * 7) as u8, (y * 9) as u8, 80, 255]));
        assert_eq!(psnr(&a, &a), f64::INFINITY);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
        let mut b = a.clone();
        for (i, p) in b.pixels_mut().enumerate() {
            p.0[0] = p.0[0].wrapping_add(if i % 2 == 0 { 10 } else { 0 });
        }
        // MSE = 100/2 over one channel of three -> 100/6.
        let expect = 10.0 * (255.0f64 * 255.0 / (100.0 / 6.0)).log10();
        assert!((psnr(&a, &b) - expect).abs() < 1e-9);
        assert!(ssim(&a, &b) < 0.99);
    }
}
