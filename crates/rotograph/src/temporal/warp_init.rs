//! Flow-warped init and colour matching for `stylize`, `roto` and `loopback` (issue 5, item 2).
//!
//! **Warp init**: the init image of frame t is the source frame t blended with the *stylized*
//! frame t-1 warped into frame t along the *source* flow (t → t-1), with weight `strength` only
//! where that flow is reliable ([`SourceMotion::mask`] and the warp stays inside the frame);
//! occluded or unreliable pixels come from the source alone. The backend then starts from an
//! image that already carries last frame's look where the content is the same, which is what
//! keeps a stylization from flickering.
//!
//! **Colour match**: each output is histogram-matched to a reference (the first stylized frame,
//! or its own source frame) channel by channel in CIE Lab, against colour drift over a sequence.
//! The match maps each value through the image's own CDF and the reference's inverse CDF
//! (classic histogram specification, e.g. Gonzalez & Woods, "Digital Image Processing",
//! section 3.3); equal input values always map to one output value, so flat toon regions stay
//! flat.

use super::consistency::SourceMotion;
use crate::error::{Error, Result};
use crate::flow::{warp, FlowParams, Preset};
use crate::imageops::color::{lab_to_rgba, rgba_to_lab};
use image::RgbaImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What each output frame's colours are matched to (`color_match` in `rotograph.toml`,
/// `--color-match` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMatch {
    /// No colour matching (the default).
    #[default]
    None,
    /// The first stylized frame of the sequence: holds the look of frame 1 over the clip.
    First,
    /// The frame's own source frame: keeps the source's colours.
    Source,
}

impl ColorMatch {
    /// True for [`ColorMatch::None`].
    pub fn is_none(&self) -> bool {
        *self == ColorMatch::None
    }
}

impl std::str::FromStr for ColorMatch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(ColorMatch::None),
            "first" => Ok(ColorMatch::First),
            "source" => Ok(ColorMatch::Source),
            _ => Err(Error::setting(
                "color_match",
                format!("`{s}` is not a colour match mode; use first, source or none"),
            )),
        }
    }
}

/// The flow parameters warp init uses for the source motion (the `medium` preset).
pub fn flow_params() -> FlowParams {
    FlowParams::preset(Preset::Medium)
}

/// Checks a warp-init strength; the error names the setting.
pub fn check_strength(strength: f32) -> Result<()> {
    if (0.0..=1.0).contains(&strength) {
        Ok(())
    } else {
        Err(Error::setting(
            "warp_init",
            format!("{strength} is outside 0..=1 (0 = off, 1 = the warped previous frame only)"),
        ))
    }
}

/// The init image of frame t: `source` (frame t) blended with `prev_stylized` (the stylized
/// frame t-1) warped along `motion.flow` (t → t-1), with weight `strength` (0..=1) where
/// `motion.mask` is set and the warp lands inside the frame, the source elsewhere. Alpha is the
/// source's. Errors when the sizes differ or the strength is outside 0..=1.
pub fn blend_init(
    source: &RgbaImage,
    prev_stylized: &RgbaImage,
    motion: &SourceMotion,
    strength: f32,
) -> Result<RgbaImage> {
    check_strength(strength)?;
    if source.dimensions() != prev_stylized.dimensions()
        || source.dimensions() != motion.mask.dimensions()
    {
        return Err(Error::setting(
            "warp_init",
            format!(
                "frame of {}x{}, previous stylized frame of {}x{} and motion of {}x{}: the \
                 stylized frames must have their source frames' size",
                source.width(),
                source.height(),
                prev_stylized.width(),
                prev_stylized.height(),
                motion.mask.width(),
                motion.mask.height()
            ),
        ));
    }
    let (warped, inside) = warp(prev_stylized, &motion.flow)?;
    let mut out = source.clone();
    let w = source.width() as usize;
    if w == 0 {
        return Ok(out);
    }
    let keep = 1.0 - strength;
    out.as_mut()
        .par_chunks_mut(4 * w)
        .zip(warped.as_raw().par_chunks(4 * w))
        .zip(motion.mask.as_raw().par_chunks(w))
        .zip(inside.as_raw().par_chunks(w))
        .for_each(|(((o, p), m), v)| {
            for x in 0..w {
                if m[x] == 0 || v[x] == 0 {
                    continue;
                }
                for c in 0..3 {
                    let i = 4 * x + c;
                    let blended = f32::from(o[i]) * keep + f32::from(p[i]) * strength;
                    o[i] = blended.round().clamp(0.0, 255.0) as u8;
                }
            }
        });
    Ok(out)
}

/// Histogram-matches `image` to `reference` in Lab, each channel on its own; alpha is kept.
/// The reference may have another size. An empty image or reference returns `image` unchanged.
pub fn match_colors(image: &RgbaImage, reference: &RgbaImage) -> RgbaImage {
    if image.as_raw().is_empty() || reference.as_raw().is_empty() {
        return image.clone();
    }
    let mut planes = rgba_to_lab(image);
    let target = rgba_to_lab(reference);
    planes
        .par_iter_mut()
        .zip(target.par_iter())
        .for_each(|(p, t)| match_channel(p.data_mut(), t.data()));
    lab_to_rgba(&planes, Some(image)).unwrap_or_else(|| image.clone())
}

/// Histogram specification of one channel: each value goes to the reference's value at the
/// same quantile. A value's quantile is the middle of its run in the sorted channel, so ties
/// stay ties; the reference's inverse CDF is interpolated between its sorted values.
pub fn match_channel(values: &mut [f32], reference: &[f32]) {
    if values.is_empty() || reference.is_empty() {
        return;
    }
    let mut own = values.to_vec();
    own.par_sort_unstable_by(f32::total_cmp);
    let mut target = reference.to_vec();
    target.par_sort_unstable_by(f32::total_cmp);
    let n = own.len();
    let last = (target.len() - 1) as f64;
    values.par_iter_mut().for_each(|v| {
        let lo = own.partition_point(|x| x.total_cmp(v).is_lt());
        let hi = own.partition_point(|x| x.total_cmp(v).is_le());
        let rank = (lo + hi - 1) as f64 / 2.0;
        let q = if n > 1 { rank / (n - 1) as f64 } else { 0.5 };
        let pos = q * last;
        let i = (pos.floor() as usize).min(target.len() - 1);
        let j = (i + 1).min(target.len() - 1);
        let f = (pos - i as f64) as f32;
        *v = target[i] + (target[j] - target[i]) * f;
    });
}

/// Applies a colour match mode to one output: `first` is the first stylized frame (`None` for
/// the first frame itself, which is left as it is), `source` the frame's source.
pub fn apply_color_match(
    mode: ColorMatch,
    output: &RgbaImage,
    first: Option<&RgbaImage>,
    source: &RgbaImage,
) -> Option<RgbaImage> {
    match mode {
        ColorMatch::None => None,
        ColorMatch::First => first.map(|f| match_colors(output, f)),
        ColorMatch::Source => Some(match_colors(output, source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowField;
    use image::{GrayImage, Rgba};

    fn motion(w: u32, h: u32, dx: f32, mask: impl Fn(u32, u32) -> bool) -> SourceMotion {
        SourceMotion {
            flow: FlowField::from_fn(w as usize, h as usize, |_, _| (dx, 0.0)),
            mask: GrayImage::from_fn(w, h, |x, y| image::Luma([if mask(x, y) { 255 } else { 0 }])),
        }
    }

    #[test]
    fn blend_uses_the_warped_previous_frame_only_where_reliable() {
        let src = RgbaImage::from_pixel(8, 4, Rgba([100, 100, 100, 200]));
        // Previous stylized frame: a ramp in red, so the warp's shift is visible.
        let prev = RgbaImage::from_fn(8, 4, |x, _| Rgba([10 * x as u8, 0, 0, 255]));
        let m = motion(8, 4, 1.0, |x, _| x < 4);
        let out = blend_init(&src, &prev, &m, 0.5).unwrap();
        // Reliable pixel (2, 0): half source, half prev at x + 1.
        assert_eq!(out.get_pixel(2, 0).0, [65, 50, 50, 200]);
        // Unreliable pixel: the source.
        assert_eq!(out.get_pixel(5, 0), src.get_pixel(5, 0));
        // Strength 0 is the source, strength 1 the warped frame where reliable.
        assert_eq!(blend_init(&src, &prev, &m, 0.0).unwrap(), src);
        assert_eq!(
            blend_init(&src, &prev, &m, 1.0).unwrap().get_pixel(1, 3).0,
            [20, 0, 0, 200]
        );
        assert!(blend_init(&src, &prev, &m, 1.5).is_err());
        let small = RgbaImage::new(4, 4);
        assert!(blend_init(&small, &prev, &m, 0.5).is_err());
    }

    #[test]
    fn channel_matching_takes_the_reference_distribution_and_keeps_ties() {
        let mut v = vec![1.0, 1.0, 2.0, 3.0, 3.0, 3.0];
        let reference = vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        match_channel(&mut v, &reference);
        assert_eq!(v[0], v[1], "ties stay ties");
        assert!(v[0] < v[2] && v[2] < v[3], "order kept: {v:?}");
        assert_eq!(v[3], v[5]);
        // Same distribution: identity.
        let mut same = reference.clone();
        same.reverse();
        let before = same.clone();
        match_channel(&mut same, &reference);
        assert_eq!(same, before);
    }

    #[test]
    fn colour_match_moves_a_tinted_image_to_the_reference() {
        let reference = RgbaImage::from_fn(32, 16, |x, y| {
            Rgba([(x * 7) as u8, (y * 13) as u8, ((x + y) * 5) as u8, 255])
        });
        let tinted = RgbaImage::from_fn(32, 16, |x, y| {
            let p = reference.get_pixel(x, y).0;
            Rgba([p[0] / 4 * 3 + 50, p[1] / 2, p[2], 255])
        });
        let mean = |img: &RgbaImage| {
            let lab = rgba_to_lab(img);
            lab.map(|p| p.mean())
        };
        let (r, t) = (mean(&reference), mean(&tinted));
        let m = mean(&match_colors(&tinted, &reference));
        for c in 0..3 {
            assert!(
                (m[c] - r[c]).abs() < 0.25 * (t[c] - r[c]).abs().max(1.0),
                "channel {c}: reference {} tinted {} matched {}",
                r[c],
                t[c],
                m[c]
            );
        }
        // Matching an image to itself changes nothing.
        assert_eq!(match_colors(&reference, &reference), reference);
        assert_eq!("first".parse::<ColorMatch>().unwrap(), ColorMatch::First);
        assert!("last".parse::<ColorMatch>().is_err());
    }
}
