//! The Stable Diffusion model (UNet, VAE, CLIP text encoder(s)) on candle: SD 1.x, SD 2.x
//! (v-prediction included), SDXL, and their Turbo variants, which share those architectures.
//!
//! Sizes come from the configs ([`SdConfig`]), so any model of a supported architecture
//! loads (the tests use tiny random ones). Weights are read as f32; each component comes from
//! its own [`VarBuilder`] ([`SdModel::from_parts`]), so a diffusers folder
//! ([`SdModel::load_diffusers`]) and a key-renaming single-file backend load the same way.

use crate::clip::ClipText;
pub use crate::config::{
    Architecture, Prediction, SdConfig, TextEncoderConfig, SD15_SCALING_FACTOR, SDXL_SCALING_FACTOR,
};
use crate::unet::{Unet, UnetInputs};
use crate::vae::Vae;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};

/// Errors loading or running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A config file is not valid JSON or describes an unsupported model.
    #[error("{}: {why}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A weights file could not be opened or does not fit the config.
    #[error("{}: {source}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The cause.
        source: candle_core::Error,
    },
    /// A setting does not fit the model.
    #[error("setting {name}: {why}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A tensor operation failed while running the model.
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
}

impl From<ModelError> for rotograph::Error {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Io { path, source } => rotograph::Error::io(path, source),
            ModelError::Config { path, why } => rotograph::Error::bad_input(path, why),
            ModelError::Weights { path, source } => {
                rotograph::Error::bad_input(path, source.to_string())
            }
            ModelError::Setting { name, why } => rotograph::Error::setting(name, why),
            ModelError::Candle(e) => rotograph::Error::bad_input("<sd model>", e.to_string()),
        }
    }
}

fn weights_file(dir: &Path, names: &[&str]) -> Result<PathBuf, ModelError> {
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::Io {
            path: dir.join(names[0]),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        })
}

pub(crate) fn mmap(path: &Path) -> Result<MmapedSafetensors, ModelError> {
    // SAFETY: the file is only read; a concurrent writer could change the mapped bytes (the
    // usual caveat of memory-mapped weights), which cannot corrupt memory outside the map.
    unsafe { MmapedSafetensors::new(path) }.map_err(|source| ModelError::Weights {
        path: path.to_path_buf(),
        source,
    })
}

/// The weights of one component and where they come from (named in errors).
pub struct WeightsPart<'a> {
    /// Weights under diffusers names, relative to the component (`conv_in.weight`...).
    pub vb: VarBuilder<'a>,
    /// The file (or description) the weights come from.
    pub source: PathBuf,
}

impl std::fmt::Debug for WeightsPart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightsPart")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl WeightsPart<'static> {
    /// A memory-mapped safetensors file, read as f32 onto `device`.
    pub fn safetensors(path: &Path, device: &Device) -> Result<Self, ModelError> {
        Ok(WeightsPart {
            vb: VarBuilder::from_backend(Box::new(mmap(path)?), DType::F32, device.clone()),
            source: path.to_path_buf(),
        })
    }
}

/// The weights of every component of a model.
#[derive(Debug)]
pub struct ModelParts<'a> {
    /// The UNet.
    pub unet: WeightsPart<'a>,
    /// The VAE.
    pub vae: WeightsPart<'a>,
    /// The text encoders, in the order of [`SdConfig::text_encoders`].
    pub text_encoders: Vec<WeightsPart<'a>>,
}

impl ModelParts<'static> {
    /// The weight files of a diffusers folder: `unet/` and `vae/`
    /// `diffusion_pytorch_model.safetensors`, `text_encoder[_2]/model.safetensors`.
    pub fn diffusers(dir: &Path, config: &SdConfig, device: &Device) -> Result<Self, ModelError> {
        let st = ["diffusion_pytorch_model.safetensors"];
        let unet = WeightsPart::safetensors(&weights_file(&dir.join("unet"), &st)?, device)?;
        let vae = WeightsPart::safetensors(&weights_file(&dir.join("vae"), &st)?, device)?;
        let text_encoders = config
            .text_encoders
            .iter()
            .map(|t| {
                let sub = t.path.parent().unwrap_or(dir);
                WeightsPart::safetensors(&weights_file(sub, &["model.safetensors"])?, device)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ModelParts {
            unet,
            vae,
            text_encoders,
        })
    }
}

/// The text conditioning of one prompt.
#[derive(Debug, Clone)]
pub struct TextCond {
    /// Hidden states `[1, 77 * chunks, cross_attention_dim]`.
    pub context: Tensor,
    /// SDXL: the pooled embedding of text encoder 2 `[1, projection_dim]` (first chunk's).
    pub pooled: Option<Tensor>,
}

impl TextCond {
    /// Chunks of one prompt joined: contexts along the token axis, the first chunk's pooled
    /// embedding (as A1111 does).
    pub fn concat(parts: &[TextCond]) -> Result<TextCond, ModelError> {
        let ctx: Vec<&Tensor> = parts.iter().map(|p| &p.context).collect();
        Ok(TextCond {
            context: Tensor::cat(&ctx, 1)?,
            pooled: parts.first().and_then(|p| p.pooled.clone()),
        })
    }

    /// The same shapes, all zeros.
    pub fn zeros_like(&self) -> Result<TextCond, ModelError> {
        Ok(TextCond {
            context: self.context.zeros_like()?,
            pooled: self.pooled.as_ref().map(Tensor::zeros_like).transpose()?,
        })
    }
}

/// A1111 emphasis: multiply each token's hidden state by its weight, then restore the
/// original mean (skipped when that would divide by zero).
fn emphasize(z: &Tensor, weights: &Tensor) -> Result<Tensor, ModelError> {
    let mean = |t: &Tensor| -> Result<f64, ModelError> {
        Ok(t.mean_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64)
    };
    let before = mean(z)?;
    let zw = z.broadcast_mul(weights)?;
    let ratio = before / mean(&zw)?;
    Ok(if ratio.is_finite() { (zw * ratio)? } else { zw })
}

/// A Stable Diffusion model on one device, in f32.
pub struct SdModel {
    /// The configs it was built from.
    pub config: SdConfig,
    unet: Unet,
    vae: Vae,
    text_encoders: Vec<ClipText>,
    device: Device,
}

impl std::fmt::Debug for SdModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdModel")
            .field("config", &self.config)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

fn weights_err(source: &Path) -> impl FnOnce(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Weights {
        path: source.to_path_buf(),
        source: e,
    }
}

impl SdModel {
    /// Loads a diffusers-layout model folder ([`SdConfig::read_diffusers`] and
    /// [`ModelParts::diffusers`]). Errors name the missing or invalid file.
    pub fn load_diffusers(dir: &Path, device: &Device) -> Result<SdModel, ModelError> {
        Self::load_diffusers_with(dir, device, None)
    }

    /// As [`SdModel::load_diffusers`], with the UNet's `sliced_attention_size` set to
    /// `attention_slice` (attention computed that many batch × head rows at a time).
    pub fn load_diffusers_with(
        dir: &Path,
        device: &Device,
        attention_slice: Option<usize>,
    ) -> Result<SdModel, ModelError> {
        let mut config = SdConfig::read_diffusers(dir)?;
        config.unet.sliced_attention_size = attention_slice;
        let parts = ModelParts::diffusers(dir, &config, device)?;
        SdModel::from_parts(config, parts, device)
    }

    /// Builds the model from a config and one weights source per component (diffusers
    /// names). Errors name the source whose weights are missing or misshapen.
    pub fn from_parts(
        config: SdConfig,
        parts: ModelParts<'_>,
        device: &Device,
    ) -> Result<SdModel, ModelError> {
        if parts.text_encoders.len() != config.text_encoders.len() {
            return Err(ModelError::Config {
                path: parts.unet.source.clone(),
                why: format!(
                    "{} text encoder weights for {} text encoders",
                    parts.text_encoders.len(),
                    config.text_encoders.len()
                ),
            });
        }
        let unet =
            Unet::new(parts.unet.vb, &config.unet).map_err(weights_err(&parts.unet.source))?;

        let vae = Vae::kl(
            &config.vae,
            config.vae_in_channels,
            config.vae_out_channels,
            config.scaling_factor,
            parts.vae.vb,
            &parts.vae.source,
            device,
        )?;

        let text_encoders = parts
            .text_encoders
            .into_iter()
            .zip(&config.text_encoders)
            .map(|(part, tc)| ClipText::new(part.vb, &tc.clip).map_err(weights_err(&part.source)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SdModel {
            config,
            unet,
            vae,
            text_encoders,
            device: device.clone(),
        })
    }

    /// Replaces the autoencoder (a separate VAE file, or TAESD). `config.vae` keeps
    /// describing the model's own VAE.
    pub fn set_vae(&mut self, vae: Vae) {
        self.vae = vae;
    }

    /// The autoencoder in use.
    pub fn vae(&self) -> &Vae {
        &self.vae
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The model family.
    pub fn architecture(&self) -> Architecture {
        self.config.architecture
    }

    /// What the UNet predicts.
    pub fn prediction(&self) -> Prediction {
        self.config.prediction
    }

    /// The first text encoder's last hidden state after the final layer norm (CLIP skip 1):
    /// token ids `[B, 77]` (u32) → `[B, 77, hidden]`.
    pub fn encode_text(&self, ids: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.text_encoders[0].forward(ids, 1, true)?.hidden)
    }

    /// The weighted conditioning of one 77-token chunk (`tokens` padded with EOS as the
    /// tokenizer makes them, one weight per token), A1111-style per text encoder:
    /// - SD 1.x/2.x: hidden states of layer `-clip_skip`, final-normed (`clip_skip` 1 = the
    ///   last layer), emphasis applied;
    /// - SDXL: the penultimate layer of both encoders without the final norm (as diffusers
    ///   and A1111 do; `clip_skip` is ignored), each emphasized, concatenated on the feature
    ///   axis; the pooled embedding of encoder 2.
    ///
    /// Encoders that pad with another token get it after the first EOS.
    pub fn encode_chunk(
        &self,
        tokens: &[u32],
        weights: &[f32],
        clip_skip: usize,
    ) -> Result<TextCond, ModelError> {
        let dev = &self.device;
        let t = tokens.len();
        let sdxl = self.config.architecture == Architecture::Sdxl;
        if !sdxl {
            let layers = self.config.text_encoders[0].clip.num_hidden_layers;
            if clip_skip == 0 || clip_skip > layers {
                return Err(ModelError::Setting {
                    name: "clip_skip",
                    why: format!("{clip_skip} is outside 1..={layers} (the text encoder's layers)"),
                });
            }
        }
        if weights.len() != t {
            return Err(ModelError::Candle(candle_core::Error::Msg(format!(
                "{} weights for {t} tokens",
                weights.len()
            ))));
        }
        let w = Tensor::from_vec(weights.to_vec(), (1, t, 1), dev)?;
        let mut contexts = Vec::with_capacity(self.text_encoders.len());
        let mut pooled = None;
        for (enc, tc) in self.text_encoders.iter().zip(&self.config.text_encoders) {
            let ids = pad_after_eos(tokens, tc.pad_id);
            let ids = Tensor::from_vec(ids, (1, t), dev)?;
            let out = if sdxl {
                enc.forward(&ids, 2, false)?
            } else {
                enc.forward(&ids, clip_skip, true)?
            };
            contexts.push(emphasize(&out.hidden, &w)?);
            if out.pooled.is_some() {
                pooled = out.pooled;
            }
        }
        let context = if contexts.len() == 1 {
            contexts.remove(0)
        } else {
            Tensor::cat(&contexts, 2)?
        };
        Ok(TextCond { context, pooled })
    }

    /// SDXL's six time ids for an image of `height` x `width` pixels, uncropped:
    /// `[h, w, 0, 0, h, w]` (original size, crop top-left, target size).
    pub fn time_ids(height: usize, width: usize) -> [f32; 6] {
        let (h, w) = (height as f32, width as f32);
        [h, w, 0.0, 0.0, h, w]
    }

    /// One UNet evaluation: the raw model output (noise or v) for `latents` `[B, C, h, w]`
    /// at `timestep` with `context` `[B, T, cross_attention_dim]`. Not for SDXL (which needs
    /// [`SdModel::unet_with`]).
    pub fn unet(
        &self,
        latents: &Tensor,
        timestep: f64,
        context: &Tensor,
    ) -> Result<Tensor, ModelError> {
        self.unet_with(latents, timestep, context, UnetInputs::default())
    }

    /// [`SdModel::unet`] with the optional inputs: SDXL's pooled text embedding and time
    /// ids, ControlNet residuals.
    pub fn unet_with(
        &self,
        latents: &Tensor,
        timestep: f64,
        context: &Tensor,
        inputs: UnetInputs<'_>,
    ) -> Result<Tensor, ModelError> {
        Ok(self.unet.forward(latents, timestep, context, inputs)?)
    }

    /// The raw UNet output for a batch `x` `[B, ...]` with conditioning `cond` (broadcast to
    /// the batch when it has one row).
    fn model_output(&self, x: &Tensor, t: f64, cond: &TextCond) -> Result<Tensor, ModelError> {
        let (b, _, h, w) = x.dims4()?;
        let scale = self.config.vae_scale();
        let time_ids;
        let pooled;
        let text_time = match (&self.config.unet.text_time, &cond.pooled) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ModelError::Candle(candle_core::Error::Msg(
                    "SDXL conditioning without a pooled text embedding".into(),
                )))
            }
            (Some(_), Some(p)) => {
                let ids = Self::time_ids(h * scale, w * scale).repeat(b);
                time_ids = Tensor::from_vec(ids, (b, 6), &self.device)?;
                pooled = if p.dim(0)? == b {
                    p.clone()
                } else {
                    p.repeat((b, 1))?
                };
                Some((&pooled, &time_ids))
            }
        };
        let inputs = UnetInputs {
            text_time,
            ..UnetInputs::default()
        };
        self.unet_with(x, t, &cond.context, inputs)
    }

    /// The guided estimate of the clean latent at noise level `sigma` (k-diffusion
    /// denoiser): the UNet sees `x * c_in` at `timestep`; its output becomes a denoised
    /// latent through the model's [`Prediction`]; guidance is `uncond + cfg * (cond -
    /// uncond)`. With `cfg == 1` the unconditional pass is skipped (the result is exactly
    /// the conditional one).
    pub fn denoised(
        &self,
        x: &Tensor,
        sigma: f64,
        timestep: f64,
        uncond: &TextCond,
        cond: &TextCond,
        cfg: f64,
    ) -> Result<Tensor, ModelError> {
        self.denoised_with(x, sigma, timestep, uncond, cond, cfg, true)
    }

    /// [`SdModel::denoised`], choosing how the two halves of guidance run: with `batch` as
    /// one batch-2 UNet evaluation (when both conditionings have the same shape), otherwise
    /// one after the other (less peak memory, the same result up to rounding).
    #[allow(clippy::too_many_arguments)]
    pub fn denoised_with(
        &self,
        x: &Tensor,
        sigma: f64,
        timestep: f64,
        uncond: &TextCond,
        cond: &TextCond,
        cfg: f64,
        batch: bool,
    ) -> Result<Tensor, ModelError> {
        let latent = self.config.vae.latent_channels;
        if self.config.unet.in_channels != latent {
            return Err(ModelError::Setting {
                name: "model",
                why: format!(
                    "an inpainting UNet ({} input channels) is not supported by img2img yet; \
                     use a non-inpainting model",
                    self.config.unet.in_channels
                ),
            });
        }
        let xin = (x * Prediction::c_in(sigma))?;
        let out = if cfg == 1.0 {
            self.model_output(&xin, timestep, cond)?
        } else {
            let (u, c) = if batch && uncond.context.dims() == cond.context.dims() {
                let xs = Tensor::cat(&[&xin, &xin], 0)?;
                let both = TextCond {
                    context: Tensor::cat(&[&uncond.context, &cond.context], 0)?,
                    pooled: match (&uncond.pooled, &cond.pooled) {
                        (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)?),
                        _ => None,
                    },
                };
                let out = self.model_output(&xs, timestep, &both)?;
                let n = x.dim(0)?;
                (out.narrow(0, 0, n)?, out.narrow(0, n, n)?)
            } else {
                (
                    self.model_output(&xin, timestep, uncond)?,
                    self.model_output(&xin, timestep, cond)?,
                )
            };
            (&u + ((c - &u)? * cfg)?)?
        };
        let (c_skip, c_out) = self.config.prediction.scalings(sigma);
        Ok(((x * c_skip)? + (out * c_out)?)?)
    }

    /// VAE encoding of images `[B, 3, H, W]` in `[-1, 1]`: the posterior mean times the
    /// scaling factor (deterministic; A1111 samples the posterior instead).
    pub fn encode_image(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        self.vae.encode(images)
    }

    /// VAE decoding of scaled latents `[B, L, h, w]` to images `[B, 3, 8h, 8w]`, roughly in
    /// `[-1, 1]` (not clamped).
    pub fn decode_latents(&self, latents: &Tensor) -> Result<Tensor, ModelError> {
        self.vae.decode(latents)
    }
}

/// `tokens` with everything after the first EOS replaced by `pad` (A1111's handling of
/// encoders whose padding token is not EOS); unchanged when `pad` is EOS.
pub fn pad_after_eos(tokens: &[u32], pad: u32) -> Vec<u32> {
    let mut v = tokens.to_vec();
    if pad != crate::tokenizer::EOS {
        if let Some(i) = v.iter().position(|&t| t == crate::tokenizer::EOS) {
            v[i + 1..].iter_mut().for_each(|t| *t = pad);
        }
    }
    v
}
