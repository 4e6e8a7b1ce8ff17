//! Blending the forward and backward sequences between two keys.
//!
//! A per-pixel cross-fade `w·A + (1−w)·B` of two results whose textures do not line up loses
//! contrast: for uncorrelated textures of equal spread the blend's standard deviation is
//! `sqrt(w² + (1−w)²)` of the inputs', about 71% at `w = ½`, which shows as a washed-out,
//! ghosted middle of the span. Jamriška et al. ("Stylizing Video by Example", SIGGRAPH 2019,
//! temporal blending) restore the statistics of the inputs after blending. We do it with local
//! statistics: per RGB channel, the blend's local standard deviation (Gaussian window) is
//! scaled up about its local mean to the weighted local standard deviation of the two inputs.
//! Where the inputs agree the blend has lost nothing and the gain is 1, so agreeing content is
//! not sharpened; the gain is capped at [`MAX_GAIN`].

use crate::imageops::blur::gaussian_blur;
use crate::imageops::Plane;
use image::RgbaImage;

/// Spread of the Gaussian window of the local statistics, in pixels.
const WINDOW_SIGMA: f32 = 6.0;
/// Largest contrast gain applied to a pixel.
const MAX_GAIN: f32 = 2.0;

/// Spread (in match-error units) of the smoothing of the error planes that give the weights.
const ERROR_SIGMA: f32 = 2.0;

/// Smoothed error plane of a synthesis (`w·h` values).
pub(super) fn smooth_error(error: Vec<f32>, w: u32, h: u32) -> Plane {
    let plane = Plane::from_vec(w as usize, h as usize, error).expect("error plane size");
    gaussian_blur(&plane, ERROR_SIGMA)
}

/// Weight of `a` per pixel from the two (smoothed) error planes: each pixel weighs the two by
/// the other's error, so the better-explained one dominates.
pub(super) fn weights(ea: &Plane, eb: &Plane) -> Plane {
    let data = ea
        .data()
        .iter()
        .zip(eb.data())
        .map(|(&x, &y)| {
            let (x, y) = (x.max(0.0), y.max(0.0));
            if x + y > 0.0 {
                y / (x + y)
            } else {
                0.5
            }
        })
        .collect();
    Plane::from_vec(ea.width(), ea.height(), data).expect("weight plane size")
}

/// Channel `c` of an image as a plane.
fn channel(img: &RgbaImage, c: usize) -> Plane {
    let data = img.pixels().map(|p| p.0[c] as f32).collect();
    Plane::from_vec(img.width() as usize, img.height() as usize, data).expect("channel size")
}

/// Local mean and local standard deviation of a plane.
fn local_stats(p: &Plane) -> (Plane, Plane) {
    let mean = gaussian_blur(p, WINDOW_SIGMA);
    let sq = Plane::from_vec(
        p.width(),
        p.height(),
        p.data().iter().map(|v| v * v).collect(),
    )
    .expect("square plane size");
    let mean_sq = gaussian_blur(&sq, WINDOW_SIGMA);
    let std = Plane::from_vec(
        p.width(),
        p.height(),
        mean.data()
            .iter()
            .zip(mean_sq.data())
            .map(|(m, s)| (s - m * m).max(0.0).sqrt())
            .collect(),
    )
    .expect("std plane size");
    (mean, std)
}

/// The plain per-pixel cross-fade `wa·a + (1−wa)·b` (alpha opaque), for comparison in tests.
#[cfg(test)]
pub(super) fn cross_fade(a: &RgbaImage, b: &RgbaImage, wa: &Plane) -> RgbaImage {
    let mut out = a.clone();
    for ((p, q), &w) in out.pixels_mut().zip(b.pixels()).zip(wa.data()) {
        for c in 0..3 {
            p.0[c] = (w * p.0[c] as f32 + (1.0 - w) * q.0[c] as f32).round() as u8;
        }
        p.0[3] = 255;
    }
    out
}

/// The histogram-preserving blend of `a` and `b` with per-pixel weights `wa` (of `a`): the
/// cross-fade with each channel's local contrast restored to the weighted inputs' (see the
/// module docs).
pub(super) fn contrast_preserving(a: &RgbaImage, b: &RgbaImage, wa: &Plane) -> RgbaImage {
    let mut out = a.clone();
    let wa_smooth = gaussian_blur(wa, WINDOW_SIGMA);
    for c in 0..3 {
        let (pa, pb) = (channel(a, c), channel(b, c));
        let blend = Plane::from_vec(
            pa.width(),
            pa.height(),
            pa.data()
                .iter()
                .zip(pb.data())
                .zip(wa.data())
                .map(|((x, y), w)| w * x + (1.0 - w) * y)
                .collect(),
        )
        .expect("blend plane size");
        let (_, sa) = local_stats(&pa);
        let (_, sb) = local_stats(&pb);
        let (mean, sc) = local_stats(&blend);
        for (i, p) in out.pixels_mut().enumerate() {
            let w = wa_smooth.data()[i];
            let target = w * sa.data()[i] + (1.0 - w) * sb.data()[i];
            let gain = if sc.data()[i] > 1e-3 {
                (target / sc.data()[i]).clamp(1.0, MAX_GAIN)
            } else {
                1.0
            };
            let m = mean.data()[i];
            let v = m + gain * (blend.data()[i] - m);
            p.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    for p in out.pixels_mut() {
        p.0[3] = 255;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A seeded texture of uncorrelated pixels in 64..=191.
    fn noise(seed: u64, w: u32, h: u32) -> RgbaImage {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        RgbaImage::from_fn(w, h, |_, _| {
            let mut v = [0u8; 4];
            for c in v.iter_mut().take(3) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *c = 64 + (s >> 57) as u8;
            }
            v[3] = 255;
            Rgba(v)
        })
    }

    /// Standard deviation of channel `c` over the image.
    fn std(img: &RgbaImage, c: usize) -> f64 {
        let v: Vec<f64> = img.pixels().map(|p| p.0[c] as f64).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
    }

    fn half(w: u32, h: u32) -> Plane {
        Plane::from_vec(w as usize, h as usize, vec![0.5; (w * h) as usize]).unwrap()
    }

    #[test]
    fn weights_prefer_the_lower_error() {
        let ea = Plane::from_vec(3, 1, vec![0.0, 30.0, 0.0]).unwrap();
        let eb = Plane::from_vec(3, 1, vec![10.0, 10.0, 0.0]).unwrap();
        assert_eq!(weights(&ea, &eb).data(), &[1.0, 0.25, 0.5]);
    }

    #[test]
    fn blend_keeps_the_contrast_of_uncorrelated_textures() {
        let (a, b) = (noise(1, 96, 80), noise(2, 96, 80));
        let wa = half(96, 80);
        let fade = cross_fade(&a, &b, &wa);
        let kept = contrast_preserving(&a, &b, &wa);
        for c in 0..3 {
            let input = (std(&a, c) + std(&b, c)) / 2.0;
            let (f, k) = (std(&fade, c) / input, std(&kept, c) / input);
            eprintln!("channel {c}: cross-fade keeps {f:.3}, blend keeps {k:.3} of the std");
            assert!(f < 0.75, "the cross-fade should lose ~30%: kept {f:.3}");
            assert!((k - 1.0).abs() < 0.05, "blend kept {k:.3} of the contrast");
        }
    }

    #[test]
    fn blend_of_agreeing_inputs_is_the_input() {
        let a = noise(3, 64, 48);
        let out = contrast_preserving(&a, &a, &half(64, 48));
        let max = out
            .pixels()
            .zip(a.pixels())
            .flat_map(|(p, q)| (0..3).map(move |c| p.0[c].abs_diff(q.0[c])))
            .max()
            .unwrap();
        assert!(max <= 1, "agreeing inputs changed by up to {max}");
    }

    #[test]
    fn blend_with_one_sided_weights_is_that_side() {
        let (a, b) = (noise(4, 40, 30), noise(5, 40, 30));
        let ones = Plane::from_vec(40, 30, vec![1.0; 1200]).unwrap();
        assert_eq!(contrast_preserving(&a, &b, &ones), a);
    }
}
