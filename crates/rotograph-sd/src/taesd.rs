//! TAESD, the tiny autoencoder for Stable Diffusion latents (Ollin Boer Bohan,
//! <https://github.com/madebyollin/taesd>; diffusers calls it `AutoencoderTiny`), in candle.
//!
//! The architecture as published: both halves are plain sequences of 3x3 convolutions
//! (padding 1) and residual blocks `relu(conv(relu(conv(relu(conv(x))))) + skip(x))`, where
//! `skip` is a bias-free 1x1 convolution when the channel count changes and the identity
//! otherwise. The encoder halves the resolution with stride-2 bias-free convolutions; the
//! decoder starts with a soft clamp `tanh(x / 3) * 3`, a convolution and a ReLU, and doubles the
//! resolution with nearest-neighbour upsampling followed by a bias-free convolution.
//!
//! **Latent scale.** TAESD maps SD's *scaled* latents (the ones the UNet sees, i.e. the KL
//! VAE's latents already multiplied by `scaling_factor`) to RGB in `[0, 1]` and back; it has
//! no scaling factor of its own (diffusers sets `scaling_factor = 1.0`, so its pipelines'
//! multiply/divide is a no-op). The `latent_magnitude = 3` / `latent_shift = 0.5` in diffusers'
//! config serve only `scale_latents`/`unscale_latents`, which pack latents into 8-bit images;
//! they play no part in encoding or decoding. Here, as in diffusers, the encoder takes images in
//! `[-1, 1]` (mapped to `[0, 1]` first) and the decoder returns `[-1, 1]`.
//!
//! The layer structure is read from the weight names (which indices hold a convolution or a
//! block), so any channel width and block count loads, in either published layout:
//! - the diffusers folder: `diffusion_pytorch_model.safetensors` with `encoder.layers.N.*` and
//!   `decoder.layers.N.*` (its decoder sequence has no clamp entry);
//! - the original pair `taesd_encoder.safetensors` + `taesd_decoder.safetensors` (also
//!   `taesdxl_*`), named `N.*`, the decoder's index 0 being the clamp.

use crate::model::ModelError;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};
use std::path::{Path, PathBuf};

/// The file name of a diffusers `AutoencoderTiny` folder's weights.
pub const DIFFUSERS_WEIGHTS: &str = "diffusion_pytorch_model.safetensors";

enum Layer {
    Conv(Conv2d),
    Block {
        convs: [Conv2d; 3],
        skip: Option<Conv2d>,
    },
    Relu,
    Upsample,
}

impl Layer {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Layer::Conv(c) => c.forward(x),
            Layer::Block { convs, skip } => {
                let y = convs[0].forward(x)?.relu()?;
                let y = convs[1].forward(&y)?.relu()?;
                let y = convs[2].forward(&y)?;
                let s = match skip {
                    Some(s) => s.forward(x)?,
                    None => x.clone(),
                };
                (y + s)?.relu()
            }
            Layer::Relu => x.relu(),
            Layer::Upsample => {
                let (_, _, h, w) = x.dims4()?;
                x.upsample_nearest2d(2 * h, 2 * w)
            }
        }
    }
}

/// The tiny autoencoder.
pub struct Taesd {
    encoder: Vec<Layer>,
    decoder: Vec<Layer>,
    latent_channels: usize,
}

impl std::fmt::Debug for Taesd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taesd")
            .field("encoder_layers", &self.encoder.len())
            .field("decoder_layers", &self.decoder.len())
            .field("latent_channels", &self.latent_channels)
            .finish()
    }
}

fn conv(vb: &VarBuilder, prefix: &str, stride: usize) -> candle_core::Result<Conv2d> {
    let w = vb.get_unchecked_dtype(&format!("{prefix}.weight"), DType::F32)?;
    let (_, _, k, _) = w.dims4()?;
    let bias_name = format!("{prefix}.bias");
    let b = if vb.contains_tensor(&bias_name) {
        Some(vb.get_unchecked_dtype(&bias_name, DType::F32)?)
    } else {
        None
    };
    let cfg = Conv2dConfig {
        padding: k / 2,
        stride,
        ..Default::default()
    };
    Ok(Conv2d::new(w, b, cfg))
}

/// Which indices of a sequence hold parameters: `(index, is_block)`, and the sequence length.
fn entries(vb: &VarBuilder) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    let mut gap = 0;
    let mut i = 0;
    // Parameterless entries (clamp, ReLU, upsample) leave gaps of at most two indices.
    while gap <= 2 {
        if vb.contains_tensor(&format!("{i}.conv.0.weight")) {
            out.push((i, true));
            gap = 0;
        } else if vb.contains_tensor(&format!("{i}.weight")) {
            out.push((i, false));
            gap = 0;
        } else {
            gap += 1;
        }
        i += 1;
    }
    out
}

fn block(vb: &VarBuilder, i: usize) -> candle_core::Result<Layer> {
    let c = |j: usize| conv(vb, &format!("{i}.conv.{j}"), 1);
    let skip_name = format!("{i}.skip.weight");
    let skip = if vb.contains_tensor(&skip_name) {
        Some(conv(vb, &format!("{i}.skip"), 1)?)
    } else {
        None
    };
    Ok(Layer::Block {
        convs: [c(0)?, c(2)?, c(4)?],
        skip,
    })
}

/// The encoder: convolutions other than the first and the last downsample (stride 2).
fn encoder(vb: &VarBuilder) -> candle_core::Result<Vec<Layer>> {
    let e = entries(vb);
    let (Some(&(first, false)), Some(&(last, false))) = (e.first(), e.last()) else {
        candle_core::bail!("no encoder convolutions found (expected `0.weight`)");
    };
    e.iter()
        .map(|&(i, is_block)| match is_block {
            true => block(vb, i),
            false => {
                let stride = if i == first || i == last { 1 } else { 2 };
                Ok(Layer::Conv(conv(vb, &i.to_string(), stride)?))
            }
        })
        .collect()
}

/// The decoder: a gap right after the first convolution is its ReLU, every later gap an
/// upsampling; a gap before the first convolution is the clamp (applied in [`Taesd::decode`]).
fn decoder(vb: &VarBuilder) -> candle_core::Result<Vec<Layer>> {
    let e = entries(vb);
    let Some(&(first, false)) = e.first() else {
        candle_core::bail!("no decoder convolutions found");
    };
    let mut layers = Vec::new();
    let mut prev = first;
    for (n, &(i, is_block)) in e.iter().enumerate() {
        if n > 0 {
            for g in prev + 1..i {
                layers.push(if g == first + 1 {
                    Layer::Relu
                } else {
                    Layer::Upsample
                });
            }
        }
        layers.push(if is_block {
            block(vb, i)?
        } else {
            Layer::Conv(conv(vb, &i.to_string(), 1)?)
        });
        prev = i;
    }
    Ok(layers)
}

fn open(path: &Path, device: &Device) -> Result<VarBuilder<'static>, ModelError> {
    let st = crate::model::mmap(path)?;
    Ok(VarBuilder::from_backend(
        Box::new(st),
        DType::F32,
        device.clone(),
    ))
}

/// The `*encoder.safetensors` / `*decoder.safetensors` file of a TAESD pair in `dir`.
fn pair_file(dir: &Path, half: &str) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&format!("{half}.safetensors")))
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

impl Taesd {
    /// Loads TAESD from `dir`: a diffusers `AutoencoderTiny` folder
    /// (`diffusion_pytorch_model.safetensors`) or a folder holding the original pair
    /// (`taesd_encoder.safetensors` + `taesd_decoder.safetensors`, or `taesdxl_*`). The error
    /// for a folder with neither says which files to put there.
    pub fn load(dir: &Path, device: &Device) -> Result<Taesd, ModelError> {
        let weights_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Weights { path, source }
        };
        let diffusers = dir.join(DIFFUSERS_WEIGHTS);
        let (enc, dec, enc_path, dec_path) = if diffusers.is_file() {
            let vb = open(&diffusers, device)?;
            let e = encoder(&vb.pp("encoder.layers")).map_err(weights_err(&diffusers))?;
            let d = decoder(&vb.pp("decoder.layers")).map_err(weights_err(&diffusers))?;
            (e, d, diffusers.clone(), diffusers)
        } else if let (Some(ep), Some(dp)) = (pair_file(dir, "encoder"), pair_file(dir, "decoder"))
        {
            let e = encoder(&open(&ep, device)?).map_err(weights_err(&ep))?;
            let d = decoder(&open(&dp, device)?).map_err(weights_err(&dp))?;
            (e, d, ep, dp)
        } else {
            return Err(ModelError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no TAESD weights here: put the diffusers AutoencoderTiny files \
                     (config.json + diffusion_pytorch_model.safetensors, e.g. from \
                     madebyollin/taesd, or madebyollin/taesdxl for SDXL) or the pair \
                     taesd_encoder.safetensors + taesd_decoder.safetensors in this folder",
                ),
            });
        };
        let latent_channels = match enc.last() {
            Some(Layer::Conv(c)) => c.weight().dim(0).map_err(weights_err(&enc_path))?,
            _ => 0,
        };
        let dec_in = match dec.first() {
            Some(Layer::Conv(c)) => c.weight().dim(1).map_err(weights_err(&dec_path))?,
            _ => 0,
        };
        if latent_channels == 0 || latent_channels != dec_in {
            return Err(ModelError::Config {
                path: dec_path,
                why: format!(
                    "the TAESD encoder gives {latent_channels} latent channels but the decoder \
                     takes {dec_in}"
                ),
            });
        }
        Ok(Taesd {
            encoder: enc,
            decoder: dec,
            latent_channels,
        })
    }

    /// Latent channels (4 for SD1/SD2/SDXL).
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// Images `[B, 3, H, W]` in `[-1, 1]` → scaled latents `[B, L, H/8, W/8]`.
    pub fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        let mut x = ((images + 1.0)? * 0.5)?;
        for l in &self.encoder {
            x = l.forward(&x)?;
        }
        Ok(x)
    }

    /// Scaled latents `[B, L, h, w]` → images `[B, 3, 8h, 8w]` in `[-1, 1]` (not clamped).
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor, ModelError> {
        let mut x = ((latents / 3.0)?.tanh()? * 3.0)?;
        for l in &self.decoder {
            x = l.forward(&x)?;
        }
        Ok(((x * 2.0)? - 1.0)?)
    }
}
