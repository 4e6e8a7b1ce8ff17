//! Fitting frames to a target size: crop, pad or stretch; rounding to a model's multiple.

use super::Frame;
use image::imageops::{self, FilterType};
use image::{Rgba, RgbaImage};
use serde::{Deserialize, Serialize};

/// How a frame is brought to a target size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Scale to cover the target, then crop the overflow (centred). No bars, no distortion.
    #[default]
    Crop,
    /// Scale to fit inside the target, then pad with black bars (centred).
    Pad,
    /// Scale to exactly the target, changing the aspect ratio.
    Stretch,
}

/// Resampling filter used for every resize.
const FILTER: FilterType = FilterType::Lanczos3;

/// Rounds a size to the nearest multiple of `multiple` (at least one multiple); halves round up.
/// A `multiple` of 0 or 1 leaves the value unchanged (but at least 1).
pub fn round_to_multiple(value: u32, multiple: u32) -> u32 {
    if multiple <= 1 {
        return value.max(1);
    }
    let m = u64::from(multiple);
    let rounded = (u64::from(value) + m / 2) / m * m;
    let rounded = rounded.max(m);
    // Stay within u32: step down one multiple when rounding up overflowed.
    u32::try_from(rounded).unwrap_or_else(|_| (u32::MAX / multiple) * multiple)
}

/// The size a frame of `src` size gets for a requested size, rounded to `multiple`.
///
/// `None` keeps the source size; a 0 in one dimension of the request keeps the source's aspect
/// ratio for that dimension (`(512, 0)` on a 16:9 source asks for 512x288).
pub fn fitted_size(src: (u32, u32), requested: Option<(u32, u32)>, multiple: u32) -> (u32, u32) {
    let (sw, sh) = (src.0.max(1), src.1.max(1));
    let (w, h) = match requested {
        None | Some((0, 0)) => (sw, sh),
        Some((w, 0)) => (w, scale_dim(sh, w, sw)),
        Some((0, h)) => (scale_dim(sw, h, sh), h),
        Some(wh) => wh,
    };
    (
        round_to_multiple(w, multiple),
        round_to_multiple(h, multiple),
    )
}

/// `value * num / den`, rounded, at least 1.
fn scale_dim(value: u32, num: u32, den: u32) -> u32 {
    let v = (u64::from(value) * u64::from(num) + u64::from(den) / 2) / u64::from(den.max(1));
    u32::try_from(v.max(1)).unwrap_or(u32::MAX)
}

/// Resizes `img` to exactly `w` x `h` using `fit`; `Pad` bars are opaque black.
pub fn fit_image(img: &RgbaImage, w: u32, h: u32, fit: Fit) -> RgbaImage {
    fit_with_background(img, w, h, fit, Rgba([0, 0, 0, 255]))
}

/// Fits a frame like [`fit_image`]; `Pad` bars of a frame with alpha are transparent black.
pub fn fit_frame(frame: &Frame, w: u32, h: u32, fit: Fit) -> Frame {
    let bg = if frame.has_alpha {
        Rgba([0, 0, 0, 0])
    } else {
        Rgba([0, 0, 0, 255])
    };
    Frame {
        image: fit_with_background(&frame.image, w, h, fit, bg),
        has_alpha: frame.has_alpha,
    }
}

fn resize(img: &RgbaImage, w: u32, h: u32) -> RgbaImage {
    if img.dimensions() == (w, h) {
        img.clone()
    } else {
        imageops::resize(img, w, h, FILTER)
    }
}

fn fit_with_background(img: &RgbaImage, w: u32, h: u32, fit: Fit, bg: Rgba<u8>) -> RgbaImage {
    let (w, h) = (w.max(1), h.max(1));
    let (sw, sh) = img.dimensions();
    if sw == 0 || sh == 0 {
        return RgbaImage::from_pixel(w, h, bg);
    }
    if (sw, sh) == (w, h) {
        return img.clone();
    }
    // Compare aspect ratios exactly: sw/sh vs w/h.
    let src_wider = u64::from(sw) * u64::from(h) > u64::from(sh) * u64::from(w);
    match fit {
        Fit::Stretch => resize(img, w, h),
        Fit::Crop => {
            // Crop the source to the target's aspect ratio (centred), then scale.
            let (cw, ch) = if src_wider {
                (scale_dim(sh, w, h).min(sw), sh)
            } else {
                (sw, scale_dim(sw, h, w).min(sh))
            };
            let (x, y) = ((sw - cw) / 2, (sh - ch) / 2);
            if (cw, ch) == (sw, sh) {
                resize(img, w, h)
            } else {
                let cropped = imageops::crop_imm(img, x, y, cw, ch).to_image();
                resize(&cropped, w, h)
            }
        }
        Fit::Pad => {
            // Scale to fit inside, then centre on the background.
            let (iw, ih) = if src_wider {
                (w, scale_dim(sh, w, sw).min(h))
            } else {
                (scale_dim(sw, h, sh).min(w), h)
            };
            let inner = resize(img, iw, ih);
            let mut out = RgbaImage::from_pixel(w, h, bg);
            let (x, y) = ((w - iw) / 2, (h - ih) / 2);
            imageops::replace(&mut out, &inner, i64::from(x), i64::from(y));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_multiples() {
        assert_eq!(round_to_multiple(500, 8), 504);
        assert_eq!(round_to_multiple(499, 8), 496);
        assert_eq!(round_to_multiple(3, 8), 8);
        assert_eq!(round_to_multiple(0, 64), 64);
        assert_eq!(round_to_multiple(720, 64), 704);
        assert_eq!(round_to_multiple(737, 1), 737);
        assert_eq!(round_to_multiple(0, 0), 1);
        assert_eq!(round_to_multiple(u32::MAX, 64) % 64, 0);
    }

    #[test]
    fn fitted_sizes() {
        assert_eq!(fitted_size((640, 272), None, 1), (640, 272));
        assert_eq!(fitted_size((640, 272), None, 64), (640, 256));
        assert_eq!(fitted_size((640, 272), Some((500, 300)), 8), (504, 304));
        assert_eq!(fitted_size((1920, 1080), Some((512, 0)), 8), (512, 288));
        assert_eq!(fitted_size((1920, 1080), Some((0, 360)), 1), (640, 360));
    }

    fn two_tone(w: u32, h: u32) -> RgbaImage {
        // Left half red, right half blue.
        RgbaImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                Rgba([255, 0, 0, 255])
            } else {
                Rgba([0, 0, 255, 255])
            }
        })
    }

    #[test]
    fn crop_keeps_the_centre() {
        // A 40x10 image: a green 10x10 square in the middle of black.
        let img = RgbaImage::from_fn(40, 10, |x, _| {
            if (15..25).contains(&x) {
                Rgba([0, 255, 0, 255])
            } else {
                Rgba([0, 0, 0, 255])
            }
        });
        let out = fit_image(&img, 20, 20, Fit::Crop);
        assert_eq!(out.dimensions(), (20, 20));
        // The centre 10 columns scale to the full 20 columns: all green.
        assert!(out.pixels().all(|p| p[1] > 200 && p[0] < 40), "{out:?}");
    }

    #[test]
    fn pad_adds_black_bars() {
        let img = two_tone(40, 20);
        let out = fit_image(&img, 40, 40, Fit::Pad);
        assert_eq!(out.dimensions(), (40, 40));
        assert_eq!(*out.get_pixel(5, 2), Rgba([0, 0, 0, 255]));
        assert_eq!(*out.get_pixel(5, 37), Rgba([0, 0, 0, 255]));
        let mid = out.get_pixel(5, 20);
        assert!(mid[0] > 200 && mid[2] < 40, "{mid:?}");
        let transparent = fit_frame(
            &Frame {
                image: img,
                has_alpha: true,
            },
            40,
            40,
            Fit::Pad,
        );
        assert_eq!(transparent.image.get_pixel(5, 2)[3], 0);
    }

    #[test]
    fn stretch_fills_exactly() {
        let out = fit_image(&two_tone(40, 20), 10, 30, Fit::Stretch);
        assert_eq!(out.dimensions(), (10, 30));
        assert!(out.get_pixel(1, 15)[0] > 200);
        assert!(out.get_pixel(8, 15)[2] > 200);
        let same = two_tone(8, 8);
        assert_eq!(fit_image(&same, 8, 8, Fit::Crop), same);
    }
}
