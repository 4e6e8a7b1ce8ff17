//! img2img with the candle model: [`SdStylizer`], a [`Stylizer`] backend.
//!
//! Follows A1111's k-diffusion img2img path: the init latent is the VAE posterior mean (A1111
//! samples it with torch's global generator), noised as `x + noise * sigmas[0]` with the NV
//! seed noise, then denoised with classifier-free guidance (`uncond + cfg * (cond - uncond)`).
//! Prompt weights are applied A1111-style: each chunk's hidden states are multiplied by the
//! token weights, then rescaled to their original mean; the conditioning of each prompt is
//! cached (a small LRU shared by all threads). Samplers: Euler, Euler a, DPM++ 2M (and
//! Karras), DPM++ SDE (and Karras; its noise is ours, see [`sample`]), LCM, and DDIM on
//! timesteps ([`sample_ddim`]). A mask (255 = repaint) works as A1111's img2img mask: it is
//! brought to the latent grid and rounded, every denoised estimate keeps the init latent
//! outside it, and so does the final latent (the pipeline then keeps the exact init pixels).
//! Control images are not used yet. Images whose sides are not multiples of 8 are resized to
//! the nearest multiple and back; the output keeps the init image's alpha.

use crate::model::{Architecture, ModelError, SdModel, TextCond};
use crate::noise::{batch_seeds, ImageRng};
use crate::prompt::parse_prompt_attention;
use crate::schedule::{alphas_cumprod, model_sigmas, Img2ImgPlan, Sampler, SamplerKind};
use crate::tokenizer::Tokenizer;
use candle_core::{DType, Device, Tensor};
use image::{GrayImage, RgbaImage};
use rotograph::stylize::{Img2ImgRequest, Stylizer};
use rotograph::{Error, Result};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The latent area (`h × w`) from which [`SdStylizer`] runs the two halves of classifier-free
/// guidance one after the other instead of as one batch of 2 by default: 64 × 64, a 512 × 512
/// image, where the batch-2 attention scores alone take 1 GiB per tensor (BENCHMARKS.md).
pub const SPLIT_CFG_LATENT_AREA: usize = 64 * 64;

/// Prompts whose conditioning [`SdStylizer`] keeps (a prompt and a negative prompt per run,
/// with room for prompt schedules that alternate between a few).
pub const PROMPT_CACHE_SIZE: usize = 16;

/// Stable Diffusion img2img on an [`SdModel`].
#[derive(Debug)]
pub struct SdStylizer {
    model: SdModel,
    identity: Option<String>,
    /// Most recently used last.
    conditioning: Mutex<VecDeque<(String, u32, TextCond)>>,
    encodes: AtomicUsize,
    batch_cfg_below: usize,
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
    /// A stylizer on a loaded model (no identity: see [`SdStylizer::with_identity`]).
    pub fn new(model: SdModel) -> Self {
        Self {
            model,
            identity: None,
            conditioning: Mutex::new(VecDeque::new()),
            encodes: AtomicUsize::new(0),
            batch_cfg_below: SPLIT_CFG_LATENT_AREA,
        }
    }

    /// Runs the two halves of classifier-free guidance as one batch-2 UNet evaluation only
    /// below this latent area (`h × w`), and one after the other from it (less peak memory,
    /// about the same work). `usize::MAX` always batches; 0 never does.
    pub fn with_batch_cfg_below(mut self, latent_area: usize) -> Self {
        self.batch_cfg_below = latent_area;
        self
    }

    /// The stylizer with the content identity of its model (see [`Stylizer::identity`]).
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Loads a model on the CPU with the defaults of [`crate::backend::load`]: a diffusers
    /// folder, a single-file `.safetensors`/`.ckpt`, or a hub id in the local cache, with its
    /// own VAE, the prediction type decided from the model, and its fingerprint as identity.
    pub fn load(path: &Path) -> Result<Self> {
        crate::backend::load(&crate::backend::SdOptions::new(path.to_string_lossy()))
    }

    /// [`SdStylizer::load`] with explicit [`crate::load::LoadOptions`] (a replacement VAE,
    /// the prediction type, attention slicing); sampling uses the resolved
    /// [`crate::load::Loaded::prediction`] (kept in the model's config). No identity is set.
    pub fn load_with(path: &Path, options: &crate::load::LoadOptions) -> Result<Self> {
        let loaded = crate::load::load(path, options, &crate::default_device())?;
        debug_assert_eq!(loaded.model.prediction(), loaded.prediction);
        Ok(Self::new(loaded.model))
    }

    /// The model.
    pub fn model(&self) -> &SdModel {
        &self.model
    }

    /// How many prompts were run through the text encoder so far (the others came from the
    /// cache).
    pub fn prompts_encoded(&self) -> usize {
        self.encodes.load(Ordering::Relaxed)
    }

    /// The conditioning of `prompt` with `clip_skip`, from the cache or encoded (and cached).
    pub fn condition(&self, prompt: &str, clip_skip: u32) -> Result<TextCond> {
        let lock = || self.conditioning.lock().unwrap_or_else(|e| e.into_inner());
        let found = |c: &VecDeque<(String, u32, TextCond)>| {
            c.iter()
                .position(|(p, k, _)| p == prompt && *k == clip_skip)
        };
        {
            let mut cache = lock();
            if let Some(i) = found(&cache) {
                let entry = cache.remove(i).expect("index is in range");
                let t = entry.2.clone();
                cache.push_back(entry);
                return Ok(t);
            }
        }
        // Encoded outside the lock; two threads may encode the same new prompt at once and
        // get equal conditionings.
        let t = self.encode_prompt(prompt, clip_skip)?;
        self.encodes.fetch_add(1, Ordering::Relaxed);
        let mut cache = lock();
        if found(&cache).is_none() {
            if cache.len() >= PROMPT_CACHE_SIZE {
                cache.pop_front();
            }
            cache.push_back((prompt.to_string(), clip_skip, t.clone()));
        }
        Ok(t)
    }

    /// The weighted text conditioning of `prompt`: `[1, 77 * chunks, hidden]` (and SDXL's
    /// pooled embedding).
    fn encode_prompt(&self, prompt: &str, clip_skip: u32) -> Result<TextCond> {
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

    /// The guided denoised latent at `sigma` and (fractional) timestep `t`: the model's one
    /// guidance path ([`SdModel::denoised_with`]), batched below the stylizer's latent area.
    fn guided(
        &self,
        x: &Tensor,
        sigma: f64,
        t: f64,
        uncond: &TextCond,
        cond: &TextCond,
        cfg: f32,
    ) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4().map_err(m)?;
        let batch = h * w < self.batch_cfg_below;
        Ok(self
            .model
            .denoised_with(x, sigma, t, uncond, cond, cfg as f64, batch)?)
    }
}

/// `x + y * k`.
fn axpy(x: &Tensor, y: &Tensor, k: f64) -> Result<Tensor> {
    (x + (y * k).map_err(m)?).map_err(m)
}

/// k-diffusion's `get_ancestral_step` with eta 1: `(sigma_down, sigma_up)` from `s` to `s_next`.
fn ancestral_step(s: f64, s_next: f64) -> (f64, f64) {
    let up = (s_next.powi(2) * (s.powi(2) - s_next.powi(2)) / s.powi(2))
        .max(0.0)
        .sqrt()
        .min(s_next);
    ((s_next.powi(2) - up.powi(2)).max(0.0).sqrt(), up)
}

/// Runs a k-diffusion sampler over `sigmas` (descending, ending in 0) from `x`, which is
/// already noised to `sigmas[0]`. `denoise(x, sigma)` is the guided model's estimate of the
/// clean latent; `step_noise()` serves standard normal noise from the image's seeded generator
/// (A1111's `randn_like`): one draw per step for Euler a and LCM, two for DPM++ SDE. DDIM runs
/// on timesteps ([`sample_ddim`]) and is rejected here.
///
/// DPM++ SDE (k-diffusion `sample_dpmpp_sde`, eta 1, r = 1/2): A1111 draws its noise from a
/// Brownian tree (torchsde) seeded from the image seed; that cannot be reproduced bit for bit.
/// Here the two increments of a step — over `[sigma_mid, sigma]` and over `[sigma_next, sigma]`,
/// which contains the first — are built from two draws `z1`, `z2` with the Brownian
/// correlation: `n1 = z1`, `n2 = (sqrt(d1) z1 + sqrt(d2) z2) / sqrt(d1 + d2)` with `d1`, `d2`
/// the lengths of `[sigma_mid, sigma]` and `[sigma_next, sigma_mid]`. Same statistics, same
/// seed → same result, but pictures differ from A1111's for the same seed.
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
                // Euler a: k-diffusion get_ancestral_step with eta 1.
                let (s_down, s_up) = if kind == SamplerKind::EulerA {
                    ancestral_step(s as f64, s_next as f64)
                } else {
                    (s_next as f64, 0.0)
                };
                x = axpy(&x, &d, s_down - s as f64)?;
                if kind == SamplerKind::EulerA && s_next > 0.0 {
                    x = axpy(&x, &step_noise()?, s_up)?;
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
                    axpy(
                        &(&x * (s_next as f64 / s as f64)).map_err(m)?,
                        &d,
                        -(-h).exp_m1(),
                    )?
                };
                old_denoised = Some(den);
            }
            SamplerKind::DpmPpSde => {
                let (sf, nf) = (s as f64, s_next as f64);
                if s_next == 0.0 {
                    // The last step is Euler's, to sigma 0: the denoised estimate.
                    x = den;
                    continue;
                }
                // sigma(t) = exp(-t); midpoint s = t + h / 2.
                let (t, t_next) = (-sf.ln(), -nf.ln());
                let s_mid = (-(t + (t_next - t) * 0.5)).exp();
                let (z1, z2) = (step_noise()?, step_noise()?);
                let (d1, d2) = (sf - s_mid, s_mid - nf);
                let n2 = ((&z1 * d1.sqrt()).map_err(m)? + (z2 * d2.sqrt()).map_err(m)?)
                    .and_then(|n| n / (d1 + d2).sqrt())
                    .map_err(m)?;
                // Step 1: to the midpoint.
                let (sd, su) = ancestral_step(sf, s_mid);
                let x2 = axpy(&(&x * (sd / sf)).map_err(m)?, &den, -(sd / sf - 1.0))?;
                let x2 = axpy(&x2, &z1, su)?;
                let den2 = denoise(&x2, s_mid as f32)?;
                // Step 2: to sigma_next with the midpoint's estimate (fac = 1 / (2 r) = 1).
                let (sd, su) = ancestral_step(sf, nf);
                x = axpy(&(&x * (sd / sf)).map_err(m)?, &den2, -(sd / sf - 1.0))?;
                x = axpy(&x, &n2, su)?;
            }
            SamplerKind::Lcm => {
                // k-diffusion sample_lcm: jump to the prediction, re-noise to s_next.
                x = den;
                if s_next > 0.0 {
                    x = axpy(&x, &step_noise()?, s_next as f64)?;
                }
            }
            SamplerKind::Ddim => {
                return Err(Error::setting(
                    "sampler",
                    "DDIM runs on timesteps (img2img::sample_ddim), not sigmas",
                ))
            }
        }
    }
    Ok(x)
}

/// A1111's DDIM loop (`sd_samplers_timesteps_impl.ddim`, eta 0) over `timesteps` (ascending,
/// as [`Img2ImgPlan::Timesteps`] holds them) from `x`, already noised (to the timestep after
/// the last). `eps(x, t)` is the guided model's noise prediction at timestep `t`. It runs
/// `len - 1` steps, from the last timestep down to the first, each
/// `x = sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps` with `x0 = (x - sqrt(1 - a) eps) / sqrt(a)`
/// and `a`, `a_prev` the cumulative alphas of the step's timestep and the one below (A1111
/// ends at the first timestep, not at 0). Like A1111 it draws one step noise per step; with
/// eta 0 the noise is scaled by 0, so only the draw count matters.
pub fn sample_ddim(
    timesteps: &[u32],
    mut x: Tensor,
    eps: &mut dyn FnMut(&Tensor, u32) -> Result<Tensor>,
    step_noise: &mut dyn FnMut() -> Result<Tensor>,
) -> Result<Tensor> {
    let ac = alphas_cumprod();
    let alpha = |t: u32| -> Result<f64> {
        ac.get(t as usize).map(|&a| a as f64).ok_or_else(|| {
            Error::setting("steps", format!("DDIM timestep {t} is past the schedule"))
        })
    };
    for index in (1..timesteps.len()).rev() {
        let t = timesteps[index];
        let (a, a_prev) = (alpha(t)?, alpha(timesteps[index - 1])?);
        let e = eps(&x, t)?;
        let x0 = ((&x - (&e * (1.0 - a).sqrt()).map_err(m)?).map_err(m)? / a.sqrt()).map_err(m)?;
        x = axpy(&(x0 * a_prev.sqrt()).map_err(m)?, &e, (1.0 - a_prev).sqrt())?;
        step_noise()?;
    }
    Ok(x)
}

fn m(e: candle_core::Error) -> Error {
    ModelError::Candle(e).into()
}

/// `[1, 3, H, W]` in `[-1, 1]` from the RGB of an image.
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

/// An RGBA image from `[1, 3, H, W]` in `[-1, 1]` (clamped), alpha 255.
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

/// The mask on the latent grid, as A1111 makes it: resized to `(w, h)` (bicubic) and rounded
/// to 0 / 1. Returns `(keep, repaint)`, each `[1, 1, h, w]`.
fn latent_mask(mask: &GrayImage, w: usize, h: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let small = image::imageops::resize(
        mask,
        w as u32,
        h as u32,
        image::imageops::FilterType::CatmullRom,
    );
    let repaint: Vec<f32> = small
        .pixels()
        .map(|p| if p[0] >= 128 { 1.0 } else { 0.0 })
        .collect();
    let keep: Vec<f32> = repaint.iter().map(|r| 1.0 - r).collect();
    Ok((
        Tensor::from_vec(keep, (1, 1, h, w), dev).map_err(m)?,
        Tensor::from_vec(repaint, (1, 1, h, w), dev).map_err(m)?,
    ))
}

/// Keeps `init` where the latent mask says so: `init * keep + x * repaint` (A1111's
/// `init_latent * mask + nmask * x`).
struct LatentMask {
    init: Tensor,
    keep: Tensor,
    repaint: Tensor,
}

impl LatentMask {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let kept = self.init.broadcast_mul(&self.keep).map_err(m)?;
        (kept + x.broadcast_mul(&self.repaint).map_err(m)?).map_err(m)
    }
}

/// What one image's sampling needs besides its noise.
struct Job<'a> {
    plan: &'a Img2ImgPlan,
    kind: SamplerKind,
    init: &'a Tensor,
    mask: Option<&'a LatentMask>,
    uncond: &'a TextCond,
    cond: &'a TextCond,
    cfg: f32,
}

impl SdStylizer {
    /// Samples one latent from `job.init` with the image generator `rng`.
    fn sample_one(&self, job: &Job<'_>, rng: &mut ImageRng) -> Result<Tensor> {
        let dev = self.model.device().clone();
        let dims = job.init.dims().to_vec();
        let mut next = || -> Result<Tensor> {
            let n = rng
                .next_noise()
                .map_err(|e| setting("seed", e))?
                .pop()
                .unwrap_or_default();
            Tensor::from_vec(n, dims.as_slice(), &dev).map_err(m)
        };
        self.sample_with(job, &mut next)
    }

    /// The k-diffusion img2img loop from an encoded init latent `[1, C, h, w]`: the latent is
    /// noised to `sigmas[0]` with the first tensor `noise()` returns (`x = init + n * sigma`),
    /// then `kind` runs over `sigmas` with classifier-free guidance through the model's
    /// denoiser (any prediction type). Ancestral samplers take their per-step noise from
    /// `noise()` too. Returns the final latent (scaled, ready for
    /// [`SdModel::decode_latents`]). The parity tests drive this with the reference's noise.
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
        if sigmas.len() < 2 {
            return Err(Error::setting("steps", "the schedule has no step to run"));
        }
        let plan = Img2ImgPlan::Sigmas(sigmas.to_vec());
        let job = Job {
            plan: &plan,
            kind,
            init: init_latent,
            mask: None,
            uncond,
            cond,
            cfg,
        };
        self.sample_with(&job, noise)
    }

    /// Samples one latent from `job.init`, the initial and per-step noise served by `next`.
    fn sample_with(
        &self,
        job: &Job<'_>,
        next: &mut dyn FnMut() -> Result<Tensor>,
    ) -> Result<Tensor> {
        let blend = |x: Tensor| match job.mask {
            Some(mk) => mk.apply(&x),
            None => Ok(x),
        };
        let noise = next()?;
        let x = match job.plan {
            Img2ImgPlan::Sigmas(sigmas) => {
                let log_sigmas: Vec<f32> = model_sigmas().iter().map(|s| s.ln()).collect();
                let x = axpy(job.init, &noise, sigmas[0] as f64)?;
                let mut den = |x: &Tensor, sigma: f32| {
                    let t = sigma_to_t(sigma, &log_sigmas);
                    blend(self.guided(x, sigma as f64, t, job.uncond, job.cond, job.cfg)?)
                };
                sample(job.kind, sigmas, x, &mut den, next)?
            }
            Img2ImgPlan::Timesteps {
                timesteps,
                noise_timestep,
            } => {
                let ac = alphas_cumprod();
                let a = ac[*noise_timestep as usize] as f64;
                let x = axpy(&(job.init * a.sqrt()).map_err(m)?, &noise, (1.0 - a).sqrt())?;
                let mut eps = |x: &Tensor, t: u32| {
                    // The DDPM latent `x = sqrt(a) x0 + sqrt(1 - a) eps` is the k-diffusion
                    // latent at sigma = sqrt((1 - a) / a) times c_in = sqrt(a), so the same
                    // guided estimate (any prediction type) gives the clean latent; it is
                    // masked like the k-diffusion path's, and the matching noise returned.
                    let a = ac[t as usize] as f64;
                    let sigma = ((1.0 - a) / a).sqrt();
                    let xk = (x / a.sqrt()).map_err(m)?;
                    let x0 = self.guided(&xk, sigma, t as f64, job.uncond, job.cond, job.cfg)?;
                    let x0 = blend(x0)?;
                    (axpy(x, &x0, -a.sqrt())? / (1.0 - a).sqrt()).map_err(m)
                };
                sample_ddim(timesteps, x, &mut eps, next)?
            }
        };
        blend(x)
    }
}

/// The latents of an img2img run ([`SdStylizer::img2img_latents`]).
#[derive(Debug, Clone)]
pub struct Img2ImgLatents {
    /// The init image's latent (VAE posterior mean, scaled).
    pub init: Tensor,
    /// One final latent per batch image, in seed order.
    pub samples: Vec<Tensor>,
}

/// The size the VAE works at: each side rounded to the nearest multiple of 8 (at least 8).
fn working_size(w: u32, h: u32) -> (u32, u32) {
    (((w + 4) / 8 * 8).max(8), ((h + 4) / 8 * 8).max(8))
}

impl SdStylizer {
    /// img2img up to the final latents (before the VAE decodes them): the init latent and one
    /// sampled latent per batch image, `[1, C, h, w]` each.
    pub fn img2img_latents(&self, request: &Img2ImgRequest<'_>) -> Result<Img2ImgLatents> {
        let p = request.params;
        p.validate()?;
        let sampler: Sampler = p.sampler.parse().map_err(|e| setting("sampler", e))?;
        let plan = sampler
            .img2img(p.steps as usize, p.denoise as f64)
            .map_err(|e| setting("steps", e))?;
        if let Img2ImgPlan::Sigmas(s) = &plan.plan {
            if s.len() < 2 {
                return Err(Error::setting("steps", "the schedule has no step to run"));
            }
        }
        let init = request.init;
        let (w0, h0) = init.dimensions();
        if w0 == 0 || h0 == 0 {
            return Err(Error::bad_input("<init image>", "the init image is empty"));
        }
        if let Some(mask) = request.mask {
            if mask.dimensions() != (w0, h0) {
                return Err(Error::bad_input(
                    "<mask>",
                    format!(
                        "the mask is {}x{} but the image is {w0}x{h0}",
                        mask.width(),
                        mask.height()
                    ),
                ));
            }
        }
        // The VAE works on multiples of 8 pixels: resize to the nearest one and back.
        let (w, h) = working_size(w0, h0);
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
        let mask = match request.mask {
            Some(mk) => {
                let (lh, lw) = (shape[1], shape[2]);
                let (keep, repaint) = latent_mask(mk, lw, lh, &dev)?;
                Some(LatentMask {
                    init: init_latent.clone(),
                    keep,
                    repaint,
                })
            }
            None => None,
        };
        let cond = self.condition(&p.prompt, p.clip_skip)?;
        let mut uncond = self.condition(&p.negative_prompt, p.clip_skip)?;
        if p.negative_prompt.is_empty() && self.model.architecture() == Architecture::Sdxl {
            // A1111 and diffusers zero SDXL's empty negative prompt (force_zero_negative_prompt).
            uncond = uncond.zeros_like()?;
        }
        let job = Job {
            plan: &plan.plan,
            kind: sampler.kind,
            init: &init_latent,
            mask: mask.as_ref(),
            uncond: &uncond,
            cond: &cond,
            cfg: p.cfg,
        };

        let count = (p.batch_size as usize).saturating_mul(p.batch_count as usize);
        let seeds = batch_seeds(request.seed, request.subseed, p.subseed_strength, count);
        let mut samples = Vec::with_capacity(count);
        for seed in seeds {
            let mut rng = ImageRng::new(&shape, &[seed], p.subseed_strength, 0);
            samples.push(self.sample_one(&job, &mut rng)?);
        }
        Ok(Img2ImgLatents {
            init: init_latent,
            samples,
        })
    }
}

impl Stylizer for SdStylizer {
    fn name(&self) -> &str {
        "sd"
    }

    fn identity(&self) -> Option<String> {
        self.identity.clone()
    }

    fn stylize(&self, request: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
        let init = request.init;
        let (w0, h0) = init.dimensions();
        let sampled = self.img2img_latents(request)?;
        let (w, h) = working_size(w0, h0);
        let mut out = Vec::with_capacity(sampled.samples.len());
        for x in &sampled.samples {
            let img = tensor_to_image(&self.model.decode_latents(x)?)?;
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
