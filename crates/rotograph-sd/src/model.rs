//! The SD1.x model (UNet, VAE, CLIP text encoder) on candle, loaded from a diffusers folder.
//!
//! Sizes come from the folder's `config.json` files, so any model of the SD1.5 architecture
//! loads (the tests use tiny random ones). Weights are read as f32 through memory-mapped
//! safetensors.

use crate::vae::Vae;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use candle_transformers::models::clip::text_model::{
    Activation, ClipTextConfig, ClipTextTransformer,
};
use candle_transformers::models::stable_diffusion::unet_2d::{
    BlockConfig, UNet2DConditionModel, UNet2DConditionModelConfig,
};
use candle_transformers::models::stable_diffusion::vae::AutoEncoderKLConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The VAE latent scale of SD1.x, used when `vae/config.json` has no `scaling_factor`.
pub const SD15_SCALING_FACTOR: f64 = 0.18215;

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
            ModelError::Candle(e) => rotograph::Error::bad_input("<sd model>", e.to_string()),
        }
    }
}

/// `attention_head_dim` of a diffusers UNet config: one value or one per block.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

/// The fields of a diffusers `unet/config.json` that an SD1.x UNet uses.
#[derive(Debug, Clone, Deserialize)]
struct UnetJson {
    in_channels: usize,
    out_channels: usize,
    block_out_channels: Vec<usize>,
    layers_per_block: usize,
    attention_head_dim: PerBlock,
    cross_attention_dim: usize,
    down_block_types: Vec<String>,
    up_block_types: Vec<String>,
    norm_num_groups: usize,
    #[serde(default = "default_eps")]
    norm_eps: f64,
    #[serde(default = "one_usize")]
    downsample_padding: usize,
    #[serde(default = "one_f64")]
    mid_block_scale_factor: f64,
    #[serde(default = "yes")]
    flip_sin_to_cos: bool,
    #[serde(default)]
    freq_shift: f64,
    #[serde(default)]
    use_linear_projection: bool,
    #[serde(default)]
    center_input_sample: bool,
    #[serde(default)]
    transformer_layers_per_block: Option<usize>,
}

/// The fields of a diffusers `vae/config.json`.
#[derive(Debug, Clone, Deserialize)]
struct VaeJson {
    in_channels: usize,
    out_channels: usize,
    block_out_channels: Vec<usize>,
    layers_per_block: usize,
    latent_channels: usize,
    norm_num_groups: usize,
    #[serde(default)]
    scaling_factor: Option<f64>,
    #[serde(default = "yes")]
    use_quant_conv: bool,
    #[serde(default = "yes")]
    use_post_quant_conv: bool,
}

/// The fields of a transformers `text_encoder/config.json` (CLIPTextModel).
#[derive(Debug, Clone, Deserialize)]
struct ClipJson {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    #[serde(default)]
    projection_dim: Option<usize>,
    #[serde(default = "quick_gelu")]
    hidden_act: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn one_usize() -> usize {
    1
}
fn one_f64() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn quick_gelu() -> String {
    "quick_gelu".into()
}

/// The candle configs of an SD1.x model, read from a diffusers folder.
#[derive(Debug, Clone)]
pub struct SdConfig {
    /// UNet structure.
    pub unet: UNet2DConditionModelConfig,
    /// UNet input channels (4 for SD1.x; 9 for inpainting models).
    pub unet_in_channels: usize,
    /// UNet output channels.
    pub unet_out_channels: usize,
    /// VAE structure.
    pub vae: AutoEncoderKLConfig,
    /// VAE image channels in.
    pub vae_in_channels: usize,
    /// VAE image channels out.
    pub vae_out_channels: usize,
    /// Latent scale (`scaling_factor`, 0.18215 for SD1.x).
    pub scaling_factor: f64,
    /// Text encoder structure.
    pub clip: ClipTextConfig,
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn from_value<T: for<'de> Deserialize<'de>>(
    path: &Path,
    v: serde_json::Value,
) -> Result<T, ModelError> {
    serde_json::from_value(v).map_err(|e| ModelError::Config {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn bad(path: &Path, why: impl Into<String>) -> ModelError {
    ModelError::Config {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn check_groups(path: &Path, channels: &[usize], groups: usize) -> Result<(), ModelError> {
    if channels.is_empty() {
        return Err(bad(path, "block_out_channels is empty"));
    }
    if groups == 0 {
        return Err(bad(path, "norm_num_groups must be at least 1"));
    }
    if let Some(c) = channels.iter().find(|&&c| c == 0 || c % groups != 0) {
        return Err(bad(
            path,
            format!("block_out_channels entry {c} is not a positive multiple of norm_num_groups {groups}"),
        ));
    }
    Ok(())
}

impl SdConfig {
    /// Reads `unet/config.json`, `vae/config.json` and `text_encoder/config.json` under `dir`
    /// and checks that they describe an SD1.x-architecture model.
    pub fn read_diffusers(dir: &Path) -> Result<SdConfig, ModelError> {
        let unet_path = dir.join("unet").join("config.json");
        let vae_path = dir.join("vae").join("config.json");
        let clip_path = dir.join("text_encoder").join("config.json");
        let u = read_json(&unet_path)?;
        let v = read_json(&vae_path)?;
        let c = read_json(&clip_path)?;
        Self::from_json([(&unet_path, u), (&vae_path, v), (&clip_path, c)])
    }

    /// The same checks on `config.json` contents already read: `(path, value)` of the UNet,
    /// VAE and text encoder configs, in that order (the paths name them in errors).
    pub fn from_json(
        [(unet_path, u), (vae_path, v), (clip_path, c)]: [(&Path, serde_json::Value); 3],
    ) -> Result<SdConfig, ModelError> {
        let u: UnetJson = from_value(unet_path, u)?;
        let v: VaeJson = from_value(vae_path, v)?;
        let c: ClipJson = from_value(clip_path, c)?;
        let (unet_path, vae_path, clip_path) = (unet_path, vae_path, clip_path);
        if u.cross_attention_dim != c.hidden_size {
            return Err(bad(
                unet_path,
                format!(
                    "cross_attention_dim {} does not match the text encoder's hidden_size {}",
                    u.cross_attention_dim, c.hidden_size
                ),
            ));
        }
        if u.in_channels != v.latent_channels || u.out_channels != v.latent_channels {
            return Err(bad(
                unet_path,
                format!(
                    "in/out_channels {}/{} do not match the VAE's latent_channels {} \
                     (inpainting UNets are not supported)",
                    u.in_channels, u.out_channels, v.latent_channels
                ),
            ));
        }
        if v.in_channels != 3 || v.out_channels != 3 {
            return Err(bad(
                vae_path,
                "in_channels and out_channels must be 3 (RGB)",
            ));
        }
        Ok(SdConfig {
            unet: unet_config(unet_path, &u)?,
            unet_in_channels: u.in_channels,
            unet_out_channels: u.out_channels,
            vae: vae_config(vae_path, &v)?,
            vae_in_channels: v.in_channels,
            vae_out_channels: v.out_channels,
            scaling_factor: v.scaling_factor.unwrap_or(SD15_SCALING_FACTOR),
            clip: clip_config(clip_path, &c)?,
        })
    }
}

/// A diffusers `vae/config.json` (already read) as a candle config plus its `scaling_factor`;
/// the image channels must be 3. `path` names it in errors.
pub fn vae_config_from_json(
    path: &Path,
    v: serde_json::Value,
) -> Result<(AutoEncoderKLConfig, Option<f64>), ModelError> {
    let v: VaeJson = from_value(path, v)?;
    if v.in_channels != 3 || v.out_channels != 3 {
        return Err(bad(path, "in_channels and out_channels must be 3 (RGB)"));
    }
    Ok((vae_config(path, &v)?, v.scaling_factor))
}

fn unet_config(path: &Path, u: &UnetJson) -> Result<UNet2DConditionModelConfig, ModelError> {
    let n = u.block_out_channels.len();
    check_groups(path, &u.block_out_channels, u.norm_num_groups)?;
    if u.in_channels == 0 || u.out_channels == 0 || u.layers_per_block == 0 {
        return Err(bad(
            path,
            "in_channels, out_channels and layers_per_block must be at least 1",
        ));
    }
    if u.down_block_types.len() != n || u.up_block_types.len() != n {
        return Err(bad(
            path,
            format!(
                "{n} block_out_channels but {} down and {} up block types",
                u.down_block_types.len(),
                u.up_block_types.len()
            ),
        ));
    }
    let heads: Vec<usize> = match &u.attention_head_dim {
        PerBlock::One(h) => vec![*h; n],
        PerBlock::Each(v) if v.len() == n => v.clone(),
        PerBlock::Each(v) => {
            return Err(bad(
                path,
                format!("attention_head_dim has {} entries for {n} blocks", v.len()),
            ))
        }
    };
    let layers = u.transformer_layers_per_block.unwrap_or(1).max(1);
    let mut blocks = Vec::with_capacity(n);
    for (i, (down, &h)) in u.down_block_types.iter().zip(&heads).enumerate() {
        let cross = match down.as_str() {
            "CrossAttnDownBlock2D" => true,
            "DownBlock2D" => false,
            other => return Err(bad(path, format!("unsupported down block type {other:?}"))),
        };
        // Up blocks mirror the down blocks (candle builds them from the same list).
        let up_cross = match u.up_block_types[n - 1 - i].as_str() {
            "CrossAttnUpBlock2D" => true,
            "UpBlock2D" => false,
            other => return Err(bad(path, format!("unsupported up block type {other:?}"))),
        };
        if cross != up_cross {
            return Err(bad(
                path,
                "up_block_types must mirror down_block_types (cross-attention in the same blocks)",
            ));
        }
        let channels = u.block_out_channels[i];
        if cross && (h == 0 || channels % h != 0) {
            return Err(bad(
                path,
                format!("block of {channels} channels cannot have {h} attention heads"),
            ));
        }
        blocks.push(BlockConfig {
            out_channels: channels,
            use_cross_attn: cross.then_some(layers),
            attention_head_dim: h,
        });
    }
    let last = u.block_out_channels[n - 1];
    if heads[n - 1] == 0 || last % heads[n - 1] != 0 {
        return Err(bad(
            path,
            "the mid block's channels are not divisible by its heads",
        ));
    }
    Ok(UNet2DConditionModelConfig {
        center_input_sample: u.center_input_sample,
        flip_sin_to_cos: u.flip_sin_to_cos,
        freq_shift: u.freq_shift,
        blocks,
        layers_per_block: u.layers_per_block,
        downsample_padding: u.downsample_padding,
        mid_block_scale_factor: u.mid_block_scale_factor,
        norm_num_groups: u.norm_num_groups,
        norm_eps: u.norm_eps,
        cross_attention_dim: u.cross_attention_dim,
        sliced_attention_size: None,
        use_linear_projection: u.use_linear_projection,
    })
}

fn vae_config(path: &Path, v: &VaeJson) -> Result<AutoEncoderKLConfig, ModelError> {
    check_groups(path, &v.block_out_channels, v.norm_num_groups)?;
    if v.latent_channels == 0 || v.layers_per_block == 0 || v.in_channels == 0 {
        return Err(bad(
            path,
            "latent_channels, layers_per_block and in_channels must be at least 1",
        ));
    }
    Ok(AutoEncoderKLConfig {
        block_out_channels: v.block_out_channels.clone(),
        layers_per_block: v.layers_per_block,
        latent_channels: v.latent_channels,
        norm_num_groups: v.norm_num_groups,
        use_quant_conv: v.use_quant_conv,
        use_post_quant_conv: v.use_post_quant_conv,
    })
}

fn clip_config(path: &Path, c: &ClipJson) -> Result<ClipTextConfig, ModelError> {
    if c.hidden_act != "quick_gelu" {
        return Err(bad(
            path,
            format!(
                "hidden_act {:?} is not supported (SD1.x uses quick_gelu)",
                c.hidden_act
            ),
        ));
    }
    if c.num_attention_heads == 0 || c.hidden_size % c.num_attention_heads != 0 {
        return Err(bad(
            path,
            "hidden_size must be a multiple of num_attention_heads",
        ));
    }
    if c.vocab_size < crate::tokenizer::VOCAB_SIZE
        || c.max_position_embeddings < crate::tokenizer::CONTEXT_LENGTH
    {
        return Err(bad(
            path,
            format!(
                "the CLIP tokenizer needs vocab_size >= {} and max_position_embeddings >= {}",
                crate::tokenizer::VOCAB_SIZE,
                crate::tokenizer::CONTEXT_LENGTH
            ),
        ));
    }
    Ok(ClipTextConfig {
        vocab_size: c.vocab_size,
        embed_dim: c.hidden_size,
        activation: Activation::QuickGelu,
        intermediate_size: c.intermediate_size,
        max_position_embeddings: c.max_position_embeddings,
        pad_with: None,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        projection_dim: c.projection_dim.unwrap_or(c.hidden_size),
    })
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

/// An SD1.x model on one device, in f32.
pub struct SdModel {
    /// The configs it was built from.
    pub config: SdConfig,
    unet: UNet2DConditionModel,
    vae: Vae,
    text_encoder: ClipTextTransformer,
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

impl SdModel {
    /// Loads a diffusers-layout model folder: `{unet,vae,text_encoder}/config.json` and
    /// `unet/diffusion_pytorch_model.safetensors`, `vae/diffusion_pytorch_model.safetensors`,
    /// `text_encoder/model.safetensors`. Errors name the missing or invalid file.
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
        let st_names = ["diffusion_pytorch_model.safetensors"];
        let unet_file = weights_file(&dir.join("unet"), &st_names)?;
        let unet = mmap(&unet_file)?;
        let vae_file = weights_file(&dir.join("vae"), &st_names)?;
        let vae = mmap(&vae_file)?;
        let clip_file = weights_file(&dir.join("text_encoder"), &["model.safetensors"])?;
        let clip = mmap(&clip_file)?;
        Self::from_weights(
            config,
            [
                (&unet_file, Box::new(unet)),
                (&vae_file, Box::new(vae)),
                (&clip_file, Box::new(clip)),
            ],
            device,
        )
    }

    /// Builds the model from `config` and the UNet, VAE and text encoder weights under
    /// diffusers names, in that order, each with the path that names it in errors.
    pub fn from_weights(
        config: SdConfig,
        [(unet_file, unet_w), (vae_file, vae_w), (clip_file, clip_w)]: [(&Path, Box<dyn SimpleBackend>);
            3],
        device: &Device,
    ) -> Result<SdModel, ModelError> {
        let weights_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Weights { path, source }
        };
        let vb = VarBuilder::from_backend(unet_w, DType::F32, device.clone());
        let unet = UNet2DConditionModel::new(
            vb,
            config.unet_in_channels,
            config.unet_out_channels,
            false,
            config.unet.clone(),
        )
        .map_err(weights_err(unet_file))?;

        let vae = Vae::kl(
            &config.vae,
            config.vae_in_channels,
            config.vae_out_channels,
            config.scaling_factor,
            vae_w,
            vae_file,
            device,
        )?;

        let vb = VarBuilder::from_backend(clip_w, DType::F32, device.clone());
        let text_encoder = ClipTextTransformer::new(vb.pp("text_model"), &config.clip)
            .map_err(weights_err(clip_file))?;

        Ok(SdModel {
            config,
            unet,
            vae,
            text_encoder,
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

    /// The text encoder's last hidden state (after the final layer norm, i.e. CLIP skip 1):
    /// token ids `[B, 77]` (u32) → `[B, 77, hidden]`.
    pub fn encode_text(&self, ids: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.text_encoder.forward_with_mask(ids, usize::MAX)?)
    }

    /// One UNet evaluation: the noise predicted for `latents` `[B, C, h, w]` at `timestep`
    /// with `context` `[B, 77, cross_attention_dim]`.
    pub fn unet(
        &self,
        latents: &Tensor,
        timestep: f64,
        context: &Tensor,
    ) -> Result<Tensor, ModelError> {
        Ok(self.unet.forward(latents, timestep, context)?)
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
