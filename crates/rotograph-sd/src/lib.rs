//! Stable Diffusion img2img for rotograph (issue 3, in progress): the parts that make results
//! match Automatic1111 — its "NV" seeded noise, prompt syntax and CLIP tokenization, sampler
//! schedules — the candle model (UNet, VAE, CLIP text encoder) loaded from a diffusers
//! folder of any SD1.x size ([`model`]) or a single-file checkpoint ([`single_file`]), with an
//! optional separate VAE or TAESD ([`taesd`]) — [`load()`] is the entry point for all of them —
//! and the `sd` backend the pipeline and CLI use ([`backend`]).

pub mod backend;
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
pub mod vae;

pub use backend::{make_stylizer, SdOptions};
pub use load::{load, LoadOptions, Loaded, Prediction, VaeChoice};
