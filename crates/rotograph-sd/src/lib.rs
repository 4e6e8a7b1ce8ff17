//! Stable Diffusion img2img for rotograph (issue 3, in progress): the parts that make results
//! match Automatic1111 — its "NV" seeded noise, prompt syntax and CLIP tokenization, sampler
//! schedules. The candle model code (UNet, VAE, text encoder, weight loading) comes next.

pub mod noise;
pub mod prompt;
pub mod schedule;
pub mod tokenizer;
