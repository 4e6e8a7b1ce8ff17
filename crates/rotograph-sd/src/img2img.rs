//! img2img with the candle model: [`SdStylizer`], a [`Stylizer`] backend.
//!
//! Follows A1111's k-diffusion img2img path: the init latent is the VAE posterior mean (A1111
//! samples it with torch's global generator), noised as `x + noise * sigmas[0]` with the NV
//! seed noise, then denoised with classifier-free guidance (`uncond + cfg * (cond - uncond)`).
//! Prompt weights are applied A1111-style: each chunk's hidden states are multiplied by the
//! token weights, then rescaled to their original mean. Samplers: Euler, Euler a, DPM++ 2M
//! (and Karras) and LCM; DDIM and DPM++ SDE (Brownian-tree noise) are rejected for now. Masks
//! and control images are not used yet. Images whose sides are not multiples of 8 are resized
//! to the nearest multiple and back; the output keeps the init image's alpha.

use crate::model::{Architecture, ModelError, SdModel, TextCond};
use crate::noise::{batch_seeds, ImageRng};
use crate::prompt::parse_prompt_attention;
use crate::schedule::{model_sigmas, Img2ImgPlan, Sampler, SamplerKind};
use crate::tokenizer::Tokenizer;
use candle_core::{DType, Device, Tensor};
use image::RgbaImage;
use rotograph::stylize::{Img2ImgRequest, Stylizer};
use rotograph::{Error, Result};
use std::path::Path;

/// Stable Diffusion img2img on an [`SdModel`].
#[derive(Debug)]
pub struct SdStylizer {
    model: SdModel,
}

fn setting(name: &str, e: impl std::fmt::Display) -> Error {
    Error::setting(name, e.to_string())
}

/// k-diffusion's `DiscreteSchedule.sigma_to_t`: the (fractional) timestep of `sigma`, linear
/// in log sigma between the neighbouring table entries.
fn sigma_to_t(sigma: f32, log_sigmas: &[f32]) -> f64 {
    let ls = sigma.ln();
    let n = log_sigmas.len();
    let low = log_sigmas
        .iter()
        .rposition(|&l| ls - l >= 0.0)
        .unwrap_or(0)
        .min(n - 2);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = ((lo - ls) / (lo - hi)).clamp(0.0, 1.0);
    (1.0 - w as f64) * low as f64 + w as f64 * (low + 1) as f64
}

impl SdStylizer {
    /// A stylizer on a loaded model.
    pub fn new(model: SdModel) -> Self {
        Self { model }
    }

    /// Loads a model on the CPU: a diffusers folder, a single-file `.safetensors` or a `.ckpt`,
    /// with its own VAE and the prediction type decided from the model (see
    /// [`crate::load::load`]).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &crate::load::LoadOptions::default())
    }

    /// [`SdStylizer::load`] with a replacement VAE (`--vae`) and a prediction type; sampling
    /// uses the resolved [`crate::load::Loaded::prediction`] (kept in the model's config).
    pub fn load_with(path: &Path, options: &crate::load::LoadOptions) -> Result<Self> {
        let loaded = crate::load::load(path, options, &Device::Cpu)?;
        debug_assert_eq!(loaded.model.prediction(), loaded.prediction);
        Ok(Self::new(loaded.model))
    }

    /// The model.
    pub fn model(&self) -> &SdModel {
        &self.model
    }

    /// The weighted text conditioning of `prompt` (A1111 syntax): `[1, 77 * chunks, hidden]`
    /// (and SDXL's pooled embedding), from the hidden states `clip_skip` layers from the end.
    pub fn condition(&self, prompt: &str, clip_skip: u32) -> Result<TextCond> {
        let parsed = parse_prompt_attention(prompt).map_err(|e| setting("prompt", e))?;
        let chunks = Tokenizer::clip().tokenize_weighted(&parsed);
        let skip = clip_skip as usize;
        let mut parts = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            parts.push(
                self.model
                    .encode_chunk(&chunk.tokens, &chunk.weights, skip)?,
            );
        }
        Ok(TextCond::concat(&parts)?)
    }

    /// The guided denoised latent at `sigma` (the model applies its prediction type).
    #[allow(clippy::too_many_arguments)]
    fn denoise(
        &self,
        x: &Tensor,
        sigma: f32,
        uncond: &TextCond,
        cond: &TextCond,
        cfg: f32,
        log_sigmas: &[f32],
    ) -> Result<Tensor> {
        let t = sigma_to_t(sigma, log_sigmas);
        Ok(self
            .model
            .denoised(x, sigma as f64, t, uncond, cond, cfg as f64)?)
    }
}

impl SdStylizer {
    /// The k-diffusion img2img loop from an encoded init latent `[1, C, h, w]`: the latent is
    /// noised to `sigmas[0]` with the first tensor `noise()` returns (`x = init + n * sigma`),
    /// then `kind` runs over `sigmas` with classifier-free guidance on the UNet's noise
    /// prediction (`uncond + cfg * (cond - uncond)`, one batch of 2 when the conditionings
    /// have the same length). Ancestral samplers take their per-step noise from `noise()` too.
    /// Returns the final latent (scaled, ready for [`SdModel::decode_latents`]).
    #[allow(clippy::too_many_arguments)]
    pub fn sample_latent(
        &self,
        kind: SamplerKind,
        sigmas: &[f32],
        init_latent: &Tensor,
        cond: &TextCond,
        uncond: &TextCond,
        cfg: f32,
        noise: &mut dyn FnMut() -> Result<Tensor>,
    ) -> Result<Tensor> {
        let first = *sigmas
            .first()
            .ok_or_else(|| Error::setting("steps", "the schedule has no sigma"))?;
        let log_sigmas: Vec<f32> = model_sigmas().iter().map(|s| s.ln()).collect();
        let n = noise()?;
        let x = (init_latent + (n * first as f64).map_err(m)?).map_err(m)?;
        let mut den =
            |x: &Tensor, sigma: f32| self.denoise(x, sigma, uncond, cond, cfg, &log_sigmas);
        sample(kind, sigmas, x, &mut den, noise)
    }
}

/// Runs a k-diffusion sampler over `sigmas` (descending, ending in 0) from `x`, which is
/// already noised to `sigmas[0]`. `denoise(x, sigma)` is the guided model's estimate of the
/// clean latent; `step_noise()` serves the per-step noise of ancestral samplers (A1111's
/// `randn_like`). DDIM and DPM++ SDE are rejected.
pub fn sample(
    kind: SamplerKind,
    sigmas: &[f32],
    mut x: Tensor,
    denoise: &mut dyn FnMut(&Tensor, f32) -> Result<Tensor>,
    step_noise: &mut dyn FnMut() -> Result<Tensor>,
) -> Result<Tensor> {
    let mut old_denoised: Option<Tensor> = None;
    for (i, pair) in sigmas.windows(2).enumerate() {
        let (s, s_next) = (pair[0], pair[1]);
        let den = denoise(&x, s)?;
        match kind {
            SamplerKind::Euler | SamplerKind::EulerA => {
                let d = ((&x - &den).map_err(m)? / s as f64).map_err(m)?;
                // k-diffusion get_ancestral_step with eta 1 (Euler a only).
                let (s_down, s_up) = if kind == SamplerKind::EulerA {
                    let up = (s_next.powi(2) * (s.powi(2) - s_next.powi(2)) / s.powi(2))
                        .max(0.0)
                        .sqrt()
                        .min(s_next);
                    ((s_next.powi(2) - up.powi(2)).max(0.0).sqrt(), up)
                } else {
                    (s_next, 0.0)
                };
                x = (&x + (d * (s_down - s) as f64).map_err(m)?).map_err(m)?;
                if kind == SamplerKind::EulerA && s_next > 0.0 {
                    let n = step_noise()?;
                    x = (&x + (n * s_up as f64).map_err(m)?).map_err(m)?;
                }
            }
            SamplerKind::DpmPp2M => {
                // k-diffusion sample_dpmpp_2m, in t = -ln(sigma).
                x = if s_next == 0.0 {
                    den.clone()
                } else {
                    let (t, t_next) = (-(s as f64).ln(), -(s_next as f64).ln());
                    let h = t_next - t;
                    let d = match (&old_denoised, i) {
                        (Some(old), i) if i > 0 => {
                            let h_last = t + (sigmas[i - 1] as f64).ln();
                            let r = h_last / h;
                            ((&den * (1.0 + 1.0 / (2.0 * r))).map_err(m)?
                                - (old * (1.0 / (2.0 * r))).map_err(m)?)
                            .map_err(m)?
                        }
                        _ => den.clone(),
                    };
                    ((&x * (s_next as f64 / s as f64)).map_err(m)?
                        + (d * -(-h).exp_m1()).map_err(m)?)
                    .map_err(m)?
                };
                old_denoised = Some(den);
            }
            SamplerKind::Lcm => {
                // k-diffusion sample_lcm: jump to the prediction, re-noise to s_next.
                x = den;
                if s_next > 0.0 {
                    let n = step_noise()?;
                    x = (&x + (n * s_next as f64).map_err(m)?).map_err(m)?;
                }
            }
            SamplerKind::Ddim | SamplerKind::DpmPpSde => {
                return Err(Error::setting(
                    "sampler",
                    format!("{kind:?} is not implemented by the sd backend"),
                ))
            }
        }
    }
    Ok(x)
}

fn m(e: candle_core::Error) -> Error {
    ModelError::Candle(e).into()
}

/// `[1, 3, H, W]` in `[-1, 1]` (`v / 127.5 - 1`) from the RGB of an image.
pub fn image_to_tensor(img: &RgbaImage, dev: &Device) -> Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut v = vec![0f32; 3 * w * h];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            v[c * w * h + i] = p[c] as f32 / 127.5 - 1.0;
        }
    }
    Tensor::from_vec(v, (1, 3, h, w), dev).map_err(m)
}

/// An RGBA image from `[1, 3, H, W]` in `[-1, 1]` (`(v + 1) * 127.5`, clamped and rounded),
/// alpha 255.
pub fn tensor_to_image(t: &Tensor) -> Result<RgbaImage> {
    let (_, _, h, w) = t.dims4().map_err(m)?;
    let v = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(m)?;
    let mut img = RgbaImage::new(w as u32, h as u32);
    for (i, p) in img.pixels_mut().enumerate() {
        for c in 0..3 {
            let x = ((v[c * w * h + i] + 1.0) * 127.5).clamp(0.0, 255.0);
            p[c] = x.round() as u8;
        }
        p[3] = 255;
    }
    Ok(img)
}

impl Stylizer for SdStylizer {
    fn name(&self) -> &str {
        "sd"
    }

    fn stylize(&self, request: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
        let p = request.params;
        p.validate()?;
        let sampler: Sampler = p.sampler.parse().map_err(|e| setting("sampler", e))?;
        if matches!(sampler.kind, SamplerKind::Ddim | SamplerKind::DpmPpSde) {
            return Err(Error::setting(
                "sampler",
                format!(
                    "{sampler} is not implemented by the sd backend yet (use Euler, Euler a, DPM++ 2M [Karras] or LCM)"
                ),
            ));
        }
        let plan = sampler
            .img2img(p.steps as usize, p.denoise as f64)
            .map_err(|e| setting("steps", e))?;
        let sigmas = match plan.plan {
            Img2ImgPlan::Sigmas(s) => s,
            Img2ImgPlan::Timesteps { .. } => {
                return Err(Error::setting(
                    "sampler",
                    "timestep samplers are not supported",
                ))
            }
        };
        if sigmas.len() < 2 {
            return Err(Error::setting("steps", "the schedule has no step to run"));
        }
        let init = request.init;
        let (w0, h0) = init.dimensions();
        if w0 == 0 || h0 == 0 {
            return Err(Error::bad_input("<init image>", "the init image is empty"));
        }
        // The VAE works on multiples of 8 pixels: resize to the nearest one and back.
        let (w, h) = (((w0 + 4) / 8 * 8).max(8), ((h0 + 4) / 8 * 8).max(8));
        let resized;
        let src = if (w, h) == (w0, h0) {
            init
        } else {
            resized = image::imageops::resize(init, w, h, image::imageops::FilterType::Lanczos3);
            &resized
        };
        let dev = self.model.device().clone();
        let init_latent = self.model.encode_image(&image_to_tensor(src, &dev)?)?;
        let shape = init_latent.dims()[1..].to_vec();
        let cond = self.condition(&p.prompt, p.clip_skip)?;
        let mut uncond = self.condition(&p.negative_prompt, p.clip_skip)?;
        if p.negative_prompt.is_empty() && self.model.architecture() == Architecture::Sdxl {
            // A1111 and diffusers zero SDXL's empty negative prompt (force_zero_negative_prompt).
            uncond = uncond.zeros_like()?;
        }

        let count = (p.batch_size as usize).saturating_mul(p.batch_count as usize);
        let seeds = batch_seeds(request.seed, request.subseed, p.subseed_strength, count);
        let mut out = Vec::with_capacity(count);
        for seed in seeds {
            let mut rng = ImageRng::new(&shape, &[seed], p.subseed_strength, 0);
            let mut next = || -> Result<Tensor> {
                let n = rng
                    .next_noise()
                    .map_err(|e| setting("seed", e))?
                    .pop()
                    .unwrap_or_default();
                Tensor::from_vec(n, init_latent.dims(), &dev).map_err(m)
            };
            let x = self.sample_latent(
                sampler.kind,
                &sigmas,
                &init_latent,
                &cond,
                &uncond,
                p.cfg,
                &mut next,
            )?;
            let img = tensor_to_image(&self.model.decode_latents(&x)?)?;
            let mut img = if (w, h) == (w0, h0) {
                img
            } else {
                image::imageops::resize(&img, w0, h0, image::imageops::FilterType::Lanczos3)
            };
            for (o, i) in img.pixels_mut().zip(init.pixels()) {
                o[3] = i[3];
            }
            out.push(img);
        }
        Ok(out)
    }
}
