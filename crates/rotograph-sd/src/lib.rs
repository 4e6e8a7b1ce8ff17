//! Stable Diffusion img2img for rotograph: the parts that make results
//! match Automatic1111 — its "NV" seeded noise, prompt syntax and CLIP tokenization, sampler
//! schedules — and the candle model ([`model`]: SD 1.x, SD 2.x with v-prediction, SDXL, and
//! their Turbo variants) loaded from a diffusers folder of any size or a single-file checkpoint
//! ([`single_file`]), with an optional separate VAE or TAESD ([`taesd`]); [`load()`] is the
//! entry point for all of them — and the `sd` backend the pipeline and CLI use ([`backend`]).

mod attention;
pub mod backend;
pub mod clip;
pub mod config;
pub mod img2img;
pub mod load;
pub mod model;
pub mod noise;
pub mod prompt;
pub mod schedule;
pub mod single_file;
pub mod taesd;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
pub mod tokenizer;
pub mod unet;
pub mod vae;

pub use backend::{make_stylizer, SdOptions};
pub use config::Prediction;
pub use load::{load, LoadOptions, Loaded, VaeChoice};

/// The device the `sd` backend runs on: the first CUDA GPU with the `cuda` feature, the first
/// Metal GPU with `metal`, when one is found; the CPU otherwise (always without those features).
/// Noise is generated on the CPU either way (ours, seeded), so seeds give the same latents.
pub fn default_device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = candle_core::Device::cuda_if_available(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = candle_core::Device::metal_if_available(0) {
        return d;
    }
    candle_core::Device::Cpu
}
