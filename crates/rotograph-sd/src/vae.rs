//! The model's autoencoder: the full KL VAE (diffusers `AutoencoderKL`, encoded to its posterior
//! mean) or the tiny one ([`crate::taesd`]), behind one interface on *scaled* latents — the
//! latents the UNet sees.

use crate::model::ModelError;
use crate::taesd::Taesd;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use candle_transformers::models::stable_diffusion::vae::{AutoEncoderKL, AutoEncoderKLConfig};
use std::collections::HashMap;
use std::path::Path;

/// An autoencoder between images `[B, 3, H, W]` in `[-1, 1]` and scaled latents.
pub enum Vae {
    /// The KL autoencoder; latents are its posterior mean times `scaling_factor`.
    Kl {
        /// The candle model (its `quant_conv` patched, see [`Vae::kl`]).
        model: Box<AutoEncoderKL>,
        /// Latent scale (0.18215 for SD1/SD2, 0.13025 for SDXL).
        scaling_factor: f64,
    },
    /// TAESD, which works on scaled latents directly (no scaling factor).
    Tiny(Taesd),
}

impl std::fmt::Debug for Vae {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Vae::Kl { scaling_factor, .. } => f
                .debug_struct("Vae::Kl")
                .field("scaling_factor", scaling_factor)
                .finish_non_exhaustive(),
            Vae::Tiny(_) => f.write_str("Vae::Tiny"),
        }
    }
}

impl Vae {
    /// Builds the KL autoencoder from `weights` (diffusers names) so that encoding gives the
    /// posterior mean: `quant_conv` is replaced at load by one whose logvar half is pinned to
    /// -1e4, so candle's (unseedable) `sample()` returns `mean + 0 * noise`. A VAE without
    /// `quant_conv` gets an identity one with the same pinning. `path` names the weights in
    /// errors.
    pub fn kl(
        config: &AutoEncoderKLConfig,
        in_channels: usize,
        out_channels: usize,
        scaling_factor: f64,
        weights: VarBuilder<'_>,
        path: &Path,
        device: &Device,
    ) -> Result<Vae, ModelError> {
        let err = |source| ModelError::Weights {
            path: path.to_path_buf(),
            source,
        };
        let overrides = mean_quant_conv(&weights, config.latent_channels, config.use_quant_conv)
            .map_err(err)?;
        let backend = MeanPosterior {
            inner: weights,
            overrides,
        };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        let cfg = AutoEncoderKLConfig {
            use_quant_conv: true,
            ..config.clone()
        };
        let model = AutoEncoderKL::new(vb, in_channels, out_channels, cfg).map_err(err)?;
        Ok(Vae::Kl {
            model: Box::new(model),
            scaling_factor,
        })
    }

    /// Encodes images `[B, 3, H, W]` in `[-1, 1]` to scaled latents `[B, 4, H/8, W/8]`
    /// (deterministic).
    pub fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        match self {
            Vae::Kl {
                model,
                scaling_factor,
            } => Ok((model.encode(images)?.sample()? * *scaling_factor)?),
            Vae::Tiny(t) => t.encode(images),
        }
    }

    /// Decodes scaled latents to images, roughly in `[-1, 1]` (not clamped).
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor, ModelError> {
        match self {
            Vae::Kl {
                model,
                scaling_factor,
            } => Ok(model.decode(&(latents / *scaling_factor)?)?),
            Vae::Tiny(t) => t.decode(latents),
        }
    }
}

/// A backend with `quant_conv` replaced (see [`Vae::kl`]).
struct MeanPosterior<'a> {
    inner: VarBuilder<'a>,
    overrides: HashMap<String, Tensor>,
}

impl SimpleBackend for MeanPosterior<'_> {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        match self.overrides.get(name) {
            Some(t) if t.shape() == &s => t.to_dtype(dtype)?.to_device(dev),
            Some(t) => Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: t.shape().clone(),
            }),
            None => self
                .inner
                .get_with_hints_dtype(s, name, h, dtype)?
                .to_device(dev),
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match self.overrides.get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => self.inner.get_unchecked_dtype(name, dtype)?.to_device(dev),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.overrides.contains_key(name) || self.inner.contains_tensor(name)
    }
}

/// `quant_conv` weight `[2L, 2L, 1, 1]` and bias `[2L]` whose logvar half is constant -1e4.
fn mean_quant_conv(
    vb: &VarBuilder,
    latent: usize,
    has_quant_conv: bool,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let dev = Device::Cpu;
    let c = 2 * latent;
    let (mut w, mut b) = if has_quant_conv {
        let w = vb
            .get_unchecked_dtype("quant_conv.weight", DType::F32)?
            .to_device(&dev)?;
        let b = vb
            .get_unchecked_dtype("quant_conv.bias", DType::F32)?
            .to_device(&dev)?;
        let w = w.reshape((c, c))?.to_vec2::<f32>()?;
        (w, b.to_vec1::<f32>()?)
    } else {
        let w = (0..c)
            .map(|i| (0..c).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect::<Vec<Vec<f32>>>();
        (w, vec![0.0; c])
    };
    for i in latent..c {
        w[i].iter_mut().for_each(|x| *x = 0.0);
        b[i] = -1e4;
    }
    let w: Vec<f32> = w.into_iter().flatten().collect();
    let mut m = HashMap::new();
    m.insert(
        "quant_conv.weight".to_string(),
        Tensor::from_vec(w, (c, c, 1, 1), &dev)?,
    );
    m.insert("quant_conv.bias".to_string(), Tensor::from_vec(b, c, &dev)?);
    Ok(m)
}
