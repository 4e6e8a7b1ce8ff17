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
//!
//! The optional gradient-domain fix ([`Blend::Gradient`]) follows the same paper's last blending
//! step: per pixel, the gradients are taken from the one sequence with the lower error (a hard
//! selection, so no texture is averaged with another), and the output is the solution of a
//! screened Poisson equation with those gradients and the histogram-preserving blend as its
//! data term. Seams where the selection switches sides vanish (the output's gradient there is
//! one side's, not a jump between two textures), and the data term keeps the colours and the
//! low frequencies of the blend. The solve is the multigrid of [`crate::imageops::poisson`].
//! It is off by default: on the known-stylization sets it scores 0.7-1.1 dB below the blend
//! alone (one side's synthesis noise instead of the average of two; BENCHMARKS.md).

use super::Synthesis;
use crate::error::{Error, Result};
use crate::imageops::blur::gaussian_blur;
use crate::imageops::poisson::{add_correction, multigrid, neighbours, System};
use crate::imageops::Plane;
use image::{GrayImage, Luma, RgbaImage};
use rayon::prelude::*;

/// Spread of the Gaussian window of the local statistics, in pixels.
const WINDOW_SIGMA: f32 = 6.0;
/// Largest contrast gain applied to a pixel.
const MAX_GAIN: f32 = 2.0;

/// Spread (in match-error units) of the smoothing of the error planes that give the weights.
const ERROR_SIGMA: f32 = 2.0;

/// Weight of the data term (the histogram-preserving blend) against the selected gradients in
/// the gradient-domain fix, per pixel in units of the 4-neighbour Laplacian: the blend's
/// colours hold beyond about 1/√weight pixels, the selected gradients below.
const DATA_WEIGHT: f32 = 0.1;
/// Jacobi sweeps on the finest level of the gradient-domain solve (see
/// [`crate::imageops::poisson`]; coarser levels get more).
const SWEEPS: usize = 6;

/// How the forward and backward results between two keys are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Blend {
    /// Per-pixel error-aware weights, then each channel's local contrast restored to the
    /// weighted inputs' (the histogram-preserving blend).
    #[default]
    Histogram,
    /// The histogram-preserving blend, then the gradient-domain fix: the gradients of the side
    /// with the lower error per pixel, the blend as the data term of a screened Poisson solve.
    Gradient,
}

/// The result of [`blend_syntheses`].
#[derive(Debug, Clone)]
pub struct Blended {
    /// The blended frame (opaque).
    pub image: RgbaImage,
    /// Per pixel, 255 where the first synthesis has the lower or an equal (smoothed) error
    /// (its gradients are the ones [`Blend::Gradient`] keeps), 0 where the second has the
    /// lower; the seams of the blend lie where this switches.
    pub selection: GrayImage,
}

/// Blends two syntheses of one frame (from two keys) per pixel by their match errors, as the
/// video mode does between two keys. Errors if the images differ in size or an error plane
/// does not have one value per pixel.
pub fn blend_syntheses(a: &Synthesis, b: &Synthesis, mode: Blend) -> Result<Blended> {
    let (w, h) = a.image.dimensions();
    let n = (w as usize) * (h as usize);
    if b.image.dimensions() != (w, h) || a.error.len() != n || b.error.len() != n {
        return Err(Error::setting(
            "syntheses",
            format!(
                "cannot blend a {w}x{h} synthesis ({} error values) with a {}x{} one ({} error \
                 values); both must be of one frame size with one error per pixel",
                a.error.len(),
                b.image.width(),
                b.image.height(),
                b.error.len()
            ),
        ));
    }
    let wa = weights(&smooth_error(&a.error, w, h), &smooth_error(&b.error, w, h));
    let hist = contrast_preserving(&a.image, &b.image, &wa);
    let image = match mode {
        Blend::Histogram => hist,
        Blend::Gradient => gradient_fix(&a.image, &b.image, &wa, &hist),
    };
    let selection = GrayImage::from_fn(w, h, |x, y| {
        Luma([if wa.data()[(y * w + x) as usize] >= 0.5 {
            255
        } else {
            0
        }])
    });
    Ok(Blended { image, selection })
}

/// Smoothed error plane of a synthesis (`w·h` values).
fn smooth_error(error: &[f32], w: u32, h: u32) -> Plane {
    let plane = Plane::from_vec(w as usize, h as usize, error.to_vec()).expect("error plane size");
    gaussian_blur(&plane, ERROR_SIGMA)
}

/// Weight of `a` per pixel from the two (smoothed) error planes: each pixel weighs the two by
/// the other's error, so the better-explained one dominates.
fn weights(ea: &Plane, eb: &Plane) -> Plane {
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
fn contrast_preserving(a: &RgbaImage, b: &RgbaImage, wa: &Plane) -> RgbaImage {
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

/// The gradient-domain fix: the output O minimizes `Σ_edges (O_i − O_j − g_ij)² +
/// DATA_WEIGHT · Σ_i (O_i − H_i)²`, where H is `data` (the histogram-preserving blend) and
/// g_ij the difference of the side whose weight `wa` (of `a`, summed over the edge's two
/// pixels) is the larger, so the choice is the per-pixel lower-error selection and an edge
/// across a seam takes one side's difference. Solved for D = O − H: `(DATA_WEIGHT − Δ) D = b`,
/// `b_i = Σ_j (g_ij − (H_i − H_j))`, which is 0 (D = 0) where H already has the selected
/// gradients.
fn gradient_fix(a: &RgbaImage, b: &RgbaImage, wa: &Plane, data: &RgbaImage) -> RgbaImage {
    let (w, h) = (a.width() as usize, a.height() as usize);
    let (pa, pb, ph) = (a.as_raw(), b.as_raw(), data.as_raw());
    let sel = wa.data();
    let mut rhs = vec![[0.0f32; 3]; w * h];
    rhs.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, r) in row.iter_mut().enumerate() {
            let i = y * w + x;
            let edge = |j: usize| {
                let s = sel[i] + sel[j];
                // Exact ties (both errors equal on both pixels) take both sides' mean.
                let ta = if s > 1.0 {
                    1.0
                } else if s < 1.0 {
                    0.0
                } else {
                    0.5
                };
                let diff = |p: &[u8], c: usize| p[i * 4 + c] as f32 - p[j * 4 + c] as f32;
                for (c, rc) in r.iter_mut().enumerate() {
                    *rc += ta * diff(pa, c) + (1.0 - ta) * diff(pb, c) - diff(ph, c);
                }
            };
            neighbours((x, y), (w, h), edge);
        }
    });
    let system = System {
        w,
        h,
        a: vec![0.0; w * h],
        e: vec![DATA_WEIGHT; w * h],
        b: rhs,
    };
    let d = multigrid(system, SWEEPS);
    let mut out = add_correction(data, &d);
    for px in out.pixels_mut() {
        px.0[3] = 255;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// The largest difference of one RGB channel between two images.
    fn max_rgb_diff(x: &RgbaImage, y: &RgbaImage) -> u8 {
        x.pixels()
            .zip(y.pixels())
            .flat_map(|(p, q)| (0..3).map(move |c| p.0[c].abs_diff(q.0[c])))
            .max()
            .unwrap_or(0)
    }

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
        let max = max_rgb_diff(&out, &a);
        assert!(max <= 1, "agreeing inputs changed by up to {max}");
    }

    #[test]
    fn blend_with_one_sided_weights_is_that_side() {
        let (a, b) = (noise(4, 40, 30), noise(5, 40, 30));
        let ones = Plane::from_vec(40, 30, vec![1.0; 1200]).unwrap();
        assert_eq!(contrast_preserving(&a, &b, &ones), a);
    }

    fn synthesis(image: RgbaImage, error: impl Fn(u32, u32) -> f32) -> Synthesis {
        let w = image.width();
        let error = (0..image.width() * image.height())
            .map(|i| error(i % w, i / w))
            .collect();
        Synthesis { image, error }
    }

    /// Mean of |∇(img − truth)|² (forward differences, RGB) over the pixels within 2 of a
    /// switch of `selection`, and how many there are.
    fn seam_energy(img: &RgbaImage, truth: &RgbaImage, selection: &GrayImage) -> (f64, usize) {
        let (w, h) = img.dimensions();
        let d = |x: u32, y: u32, c: usize| {
            img.get_pixel(x, y).0[c] as f64 - truth.get_pixel(x, y).0[c] as f64
        };
        let s = |x: u32, y: u32| selection.get_pixel(x, y).0[0];
        let (mut sum, mut n) = (0.0, 0);
        for y in 2..h - 3 {
            for x in 2..w - 3 {
                let near = (x - 2..=x + 2).any(|u| (y - 2..=y + 2).any(|v| s(u, v) != s(x, y)));
                if near {
                    for c in 0..3 {
                        sum += (d(x + 1, y, c) - d(x, y, c)).powi(2)
                            + (d(x, y + 1, c) - d(x, y, c)).powi(2);
                    }
                    n += 1;
                }
            }
        }
        (sum / n.max(1) as f64, n)
    }

    #[test]
    fn gradient_fix_removes_the_seam_between_two_offset_copies() {
        // Both sides have the truth's texture, one 20 levels too bright, one 20 too dark; each
        // has the lower error on its own half. The blend jumps by 40 levels where the sides
        // switch; the selected gradients are the truth's everywhere, so the fix has no jump.
        let (w, h) = (96u32, 64u32);
        let truth = noise(7, w, h);
        let shift = |d: i16| {
            let mut img = truth.clone();
            for p in img.pixels_mut() {
                for c in 0..3 {
                    p.0[c] = (p.0[c] as i16 + d).clamp(0, 255) as u8;
                }
            }
            img
        };
        let a = synthesis(shift(20), |x, _| if x < w / 2 { 1.0 } else { 50.0 });
        let b = synthesis(shift(-20), |x, _| if x < w / 2 { 50.0 } else { 1.0 });
        let hist = blend_syntheses(&a, &b, Blend::Histogram).unwrap();
        let grad = blend_syntheses(&a, &b, Blend::Gradient).unwrap();
        assert_eq!(hist.selection, grad.selection);
        assert_eq!(hist.selection.get_pixel(0, 0).0[0], 255);
        assert_eq!(hist.selection.get_pixel(w - 1, 0).0[0], 0);
        let (eh, n) = seam_energy(&hist.image, &truth, &hist.selection);
        let (eg, _) = seam_energy(&grad.image, &truth, &grad.selection);
        eprintln!("seam energy over {n} px: {eh:.1} histogram-preserving, {eg:.1} with the fix");
        assert!(n > 200, "only {n} seam pixels");
        assert!(
            eg < 0.5 * eh,
            "seam energy {eg:.1} with the fix, {eh:.1} without"
        );
        // And the result is no farther from the truth (the offsets cancel only in the middle).
        let (ph, pg) = (
            crate::imageops::quality::psnr(&hist.image, &truth),
            crate::imageops::quality::psnr(&grad.image, &truth),
        );
        assert!(pg >= ph - 0.1, "PSNR {pg:.2} with the fix, {ph:.2} without");
    }

    #[test]
    fn gradient_fix_of_agreeing_inputs_is_the_input() {
        let a = noise(8, 64, 48);
        let s = synthesis(a.clone(), |x, y| ((x * 7 + y * 3) % 11) as f32);
        let t = synthesis(a.clone(), |x, y| ((x * 5 + y * 2) % 13) as f32);
        let out = blend_syntheses(&s, &t, Blend::Gradient).unwrap().image;
        let max = max_rgb_diff(&out, &a);
        assert!(max <= 1, "agreeing inputs changed by up to {max}");
    }

    #[test]
    fn mismatched_syntheses_are_an_error() {
        let a = synthesis(noise(1, 8, 8), |_, _| 0.0);
        let b = synthesis(noise(2, 8, 6), |_, _| 0.0);
        let e = blend_syntheses(&a, &b, Blend::Gradient).unwrap_err();
        assert!(e.to_string().contains("8x6"), "{e}");
        let c = Synthesis {
            image: noise(3, 8, 8),
            error: vec![0.0; 10],
        };
        assert!(blend_syntheses(&a, &c, Blend::Histogram).is_err());
    }
}
