//! The img2img contract every backend implements, the request type, and the backends.

pub mod toon;

use crate::error::{Error, Result};
use image::{GrayImage, RgbaImage};
use serde::{Deserialize, Serialize};

/// One img2img request, as Automatic1111 users know its fields.
#[derive(Debug, Clone)]
pub struct Img2ImgRequest<'a> {
    /// The init image.
    pub init: &'a RgbaImage,
    /// Where to change the image (255 = repaint, 0 = keep the init pixel); `None` = everywhere.
    pub mask: Option<&'a GrayImage>,
    /// Control images for ControlNet units (empty when none).
    pub controls: Vec<&'a RgbaImage>,
    /// The numeric and text parameters.
    pub params: &'a Img2ImgParams,
    /// The seed for this frame (after `seed = -1` resolution and any per-frame stepping).
    pub seed: u64,
    /// The subseed for this frame.
    pub subseed: u64,
}

/// The img2img parameters that stay the same over a sequence (the `[img2img]` part of a run's
/// settings). Names follow Automatic1111 in snake_case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Img2ImgParams {
    /// Prompt.
    pub prompt: String,
    /// Negative prompt.
    pub negative_prompt: String,
    /// Seed; -1 picks one at random and records it in the run's settings.
    pub seed: i64,
    /// Variation seed; -1 picks one at random.
    pub subseed: i64,
    /// Variation strength in 0..=1 (0 = no variation).
    pub subseed_strength: f32,
    /// Denoising strength in 0..=1: how far the output may move from the init image.
    pub denoise: f32,
    /// Sampling steps.
    pub steps: u32,
    /// Classifier-free guidance scale.
    pub cfg: f32,
    /// Sampler name as A1111 spells it (`Euler a`, `DPM++ 2M Karras`...).
    pub sampler: String,
    /// Images per batch.
    pub batch_size: u32,
    /// Number of batches.
    pub batch_count: u32,
    /// A1111 "Clip skip": condition on the text encoder's layer `-clip_skip` (1 = the last
    /// layer; 2 is common for anime-style SD 1.x models). SDXL ignores it (it always uses the
    /// penultimate layer of both encoders).
    pub clip_skip: u32,
}

impl Default for Img2ImgParams {
    fn default() -> Self {
        Img2ImgParams {
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: -1,
            subseed: -1,
            subseed_strength: 0.0,
            denoise: 0.75,
            steps: 20,
            cfg: 7.0,
            sampler: "Euler a".into(),
            batch_size: 1,
            batch_count: 1,
            clip_skip: 1,
        }
    }
}

impl Img2ImgParams {
    /// Checks ranges; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.denoise) {
            return Err(Error::setting(
                "denoise",
                format!("{} is outside 0..=1", self.denoise),
            ));
        }
        if !(0.0..=1.0).contains(&self.subseed_strength) {
            return Err(Error::setting(
                "subseed_strength",
                format!("{} is outside 0..=1", self.subseed_strength),
            ));
        }
        if self.steps == 0 || self.steps > 1000 {
            return Err(Error::setting("steps", "must be between 1 and 1000"));
        }
        if self.batch_size == 0 || self.batch_count == 0 {
            return Err(Error::setting(
                "batch_size/batch_count",
                "must be at least 1",
            ));
        }
        if self.clip_skip == 0 {
            return Err(Error::setting(
                "clip_skip",
                "must be at least 1 (1 = the text encoder's last layer)",
            ));
        }
        if self.seed < -1 || self.subseed < -1 {
            return Err(Error::setting(
                "seed",
                "must be -1 (random) or a non-negative number",
            ));
        }
        Ok(())
    }

    /// Names of the fields whose values differ from the defaults, in A1111 spelling (used to warn
    /// once about fields a backend ignores).
    pub fn changed_fields(&self) -> Vec<&'static str> {
        let d = Img2ImgParams::default();
        let mut v = Vec::new();
        if self.prompt != d.prompt {
            v.push("prompt");
        }
        if self.negative_prompt != d.negative_prompt {
            v.push("negative_prompt");
        }
        if self.seed != d.seed {
            v.push("seed");
        }
        if self.subseed != d.subseed || self.subseed_strength != d.subseed_strength {
            v.push("subseed");
        }
        if self.steps != d.steps {
            v.push("steps");
        }
        if self.cfg != d.cfg {
            v.push("cfg");
        }
        if self.sampler != d.sampler {
            v.push("sampler");
        }
        if self.batch_size != d.batch_size || self.batch_count != d.batch_count {
            v.push("batch_size/batch_count");
        }
        if self.clip_skip != d.clip_skip {
            v.push("clip_skip");
        }
        v
    }
}

/// The fields only a generative model uses: what a classical backend ignores.
pub const MODEL_FIELDS: &[&str] = &[
    "prompt",
    "negative_prompt",
    "seed",
    "subseed",
    "steps",
    "cfg",
    "sampler",
    "batch_size/batch_count",
    "clip_skip",
];

/// An img2img backend.
pub trait Stylizer: Send + Sync {
    /// Backend name (`toon`, `sd`, `remote`).
    fn name(&self) -> &str;

    /// Request fields this backend does not use (A1111 spelling, as in
    /// [`Img2ImgParams::changed_fields`]); the batch driver warns once when the user set them.
    fn ignored_fields(&self) -> &[&'static str] {
        &[]
    }

    /// How many frames may usefully run at once (CPU backends: the number of jobs).
    fn max_parallel_frames(&self) -> usize {
        1
    }

    /// A content identity of the model behind the backend (e.g. a fingerprint of its weights),
    /// or `None` for model-free backends. The batch driver records it in the run's settings
    /// and makes it part of every frame's key, so changing the model re-renders and moving it
    /// does not.
    fn identity(&self) -> Option<String> {
        None
    }

    /// Stylizes one frame. Returns `batch_size * batch_count` images of the init image's size
    /// unless the backend ignores batches, in which case it returns one.
    fn stylize(&self, request: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>>;
}

/// The `none` backend: returns the init image unchanged. It makes `roto` a pure re-timing and
/// resizing tool (holds, exposure sheets, on twos for live action) and measures the pipeline's
/// own cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough;

impl Stylizer for Passthrough {
    fn name(&self) -> &str {
        "none"
    }
    fn ignored_fields(&self) -> &[&'static str] {
        MODEL_FIELDS
    }
    fn max_parallel_frames(&self) -> usize {
        usize::MAX
    }
    fn stylize(&self, request: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
        Ok(vec![request.init.clone()])
    }
}

/// Whether a mask value keeps the init pixel at `threshold` (0..=1): values below it keep, and
/// at threshold 0 only black keeps.
fn keeps(m: u8, threshold: f32) -> bool {
    let t = (threshold.clamp(0.0, 1.0) * 255.0).round() as u8;
    m < t || (t == 0 && m == 0)
}

/// The mask binarized at `threshold` (0..=1): 255 where the stylizer repaints, 0 where
/// [`apply_mask`] keeps the init pixel. Backends that mask internally (the `sd` backend's
/// latent mask) receive this, so they agree with the pixel-level keeping.
pub fn binarize_mask(mask: &GrayImage, threshold: f32) -> GrayImage {
    let mut out = mask.clone();
    for p in out.pixels_mut() {
        p[0] = if keeps(p[0], threshold) { 0 } else { 255 };
    }
    out
}

/// Keeps the init image's pixels where the mask is below `threshold` (0..=1) and the stylized
/// pixels elsewhere. Both images must have the same size as the mask.
pub fn apply_mask(stylized: &mut RgbaImage, init: &RgbaImage, mask: &GrayImage, threshold: f32) {
    for ((out, src), m) in stylized.pixels_mut().zip(init.pixels()).zip(mask.pixels()) {
        if keeps(m[0], threshold) {
            *out = *src;
        }
    }
}
