//! toon: the embedded, model-free default backend — a classical video abstraction after
//! Winnemöller, Olsen & Gooch, "Real-Time Video Abstraction" (SIGGRAPH 2006).
// STUB: to be implemented (issue 2, toon helper).

use super::{Img2ImgRequest, Stylizer};
use crate::error::Result;
use image::RgbaImage;
use serde::{Deserialize, Serialize};

/// Named presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Smooth colour regions, soft luminance bands, ink lines.
    #[default]
    Toon,
    /// Black ink lines on paper-white, little colour.
    Ink,
    /// Strong flat colour bands, thin lines.
    Posterize,
}

/// The toon stylizer.
#[derive(Debug, Clone)]
pub struct Toon {
    /// Preset.
    pub style: Style,
    /// Frames to run at once.
    pub jobs: usize,
}

impl Toon {
    /// A toon stylizer with a preset.
    pub fn new(style: Style, jobs: usize) -> Self {
        Toon {
            style,
            jobs: jobs.max(1),
        }
    }

    /// Stylizes one image at abstraction `strength` in 0..=1 (`--denoise`).
    pub fn apply(&self, img: &RgbaImage, strength: f32) -> RgbaImage {
        let _ = (img, strength);
        unimplemented!()
    }
}

impl Stylizer for Toon {
    fn name(&self) -> &str {
        "toon"
    }
    fn ignored_fields(&self) -> &[&'static str] {
        &[
            "prompt",
            "negative_prompt",
            "seed",
            "subseed",
            "steps",
            "cfg",
            "sampler",
            "batch_size/batch_count",
        ]
    }
    fn max_parallel_frames(&self) -> usize {
        self.jobs
    }
    fn stylize(&self, request: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
        Ok(vec![self.apply(request.init, request.params.denoise)])
    }
}
