//! Fitting frames to a target size: crop, pad or stretch; rounding to a model's multiple.
// STUB: to be implemented (issue 2, frames & video helper).

use image::RgbaImage;
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

/// Rounds a size to the nearest multiple of `multiple` (at least one multiple).
pub fn round_to_multiple(value: u32, multiple: u32) -> u32 {
    let _ = (value, multiple);
    unimplemented!()
}

/// The size a frame of `src` size gets for a requested size, rounded to `multiple`.
pub fn fitted_size(src: (u32, u32), requested: Option<(u32, u32)>, multiple: u32) -> (u32, u32) {
    let _ = (src, requested, multiple);
    unimplemented!()
}

/// Resizes `img` to exactly `w` x `h` using `fit`.
pub fn fit_image(img: &RgbaImage, w: u32, h: u32, fit: Fit) -> RgbaImage {
    let _ = (img, w, h, fit);
    unimplemented!()
}
