//! Reading a diffusers folder's `config.json` files: the [`Architecture`] (SD 1.x, SD 2.x,
//! SDXL) detected from them, the [`Prediction`] type of the scheduler, and the structures of
//! the UNet, VAE and text encoder(s), cross-checked against each other.

use crate::clip::{ClipActivation, ClipConfig};
use crate::model::ModelError;
use crate::unet::{TextTimeConfig, UnetBlock, UnetConfig, TIME_IDS};
use candle_transformers::models::stable_diffusion::vae::AutoEncoderKLConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The VAE latent scale of SD 1.x/2.x, used when `vae/config.json` has no `scaling_factor`.
pub const SD15_SCALING_FACTOR: f64 = 0.18215;
/// The VAE latent scale of SDXL, used when `vae/config.json` has no `scaling_factor`.
pub const SDXL_SCALING_FACTOR: f64 = 0.13025;

/// The model family, detected from the configs (never from the folder name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// SD 1.x: one OpenAI CLIP text encoder (quick-GELU).
    Sd1,
    /// SD 2.x and SD-Turbo: one OpenCLIP text encoder (GELU) in `CLIPTextModel` form.
    Sd2,
    /// SDXL and SDXL-Turbo: two text encoders and the UNet's text/time add-embedding.
    Sdxl,
}

impl Architecture {
    /// The KL VAE's latent scale for this family (when the VAE config does not state it).
    pub fn scaling_factor(self) -> f64 {
        match self {
            Architecture::Sd1 | Architecture::Sd2 => SD15_SCALING_FACTOR,
            Architecture::Sdxl => SDXL_SCALING_FACTOR,
        }
    }
}

/// What the UNet predicts (`prediction_type` of `scheduler/scheduler_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// The noise (`epsilon`, the default).
    Epsilon,
    /// The velocity `v = alpha * noise - sigma_t * x0` (`v_prediction`, SD 2.x 768).
    V,
}

impl std::str::FromStr for Prediction {
    type Err = String;
    /// `epsilon` (or `eps`) and `v` (or `v_prediction`), as diffusers and A1111 name them.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "epsilon" | "eps" => Ok(Prediction::Epsilon),
            "v" | "v_prediction" => Ok(Prediction::V),
            other => Err(format!(
                "prediction type {other:?} is not supported: use epsilon or v (v_prediction)"
            )),
        }
    }
}

impl Prediction {
    /// Reads a `--prediction` style choice: `auto` (or empty) → `None`, resolved at load
    /// ([`crate::load::load`]); otherwise as [`str::parse`].
    pub fn parse_choice(s: &str) -> Result<Option<Prediction>, String> {
        match s.trim() {
            "" | "auto" | "Auto" | "AUTO" => Ok(None),
            other => other.parse().map(Some),
        }
    }

    /// k-diffusion's input scale `c_in = 1 / sqrt(sigma^2 + 1)` (both parameterizations).
    pub fn c_in(sigma: f64) -> f64 {
        1.0 / (sigma * sigma + 1.0).sqrt()
    }

    /// `(c_skip, c_out)` of the denoiser `denoised = c_skip * x + c_out * model_output`
    /// (k-diffusion `CompVisDenoiser` / `CompVisVDenoiser`): eps `(1, -sigma)`, v
    /// `(1 / (sigma^2 + 1), -sigma / sqrt(sigma^2 + 1))`.
    pub fn scalings(self, sigma: f64) -> (f64, f64) {
        match self {
            Prediction::Epsilon => (1.0, -sigma),
            Prediction::V => {
                let s2 = sigma * sigma + 1.0;
                (1.0 / s2, -sigma / s2.sqrt())
            }
        }
    }
}

/// One text encoder of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEncoderConfig {
    /// Its structure.
    pub clip: ClipConfig,
    /// The token that fills a chunk after its end-of-text token: the EOS itself for OpenAI
    /// CLIP, `!` (id 0) for OpenCLIP (A1111's `id_pad`, diffusers' `pad_token`).
    pub pad_id: u32,
    /// Its `config.json`.
    pub path: PathBuf,
}

/// The structure of a model, read from a diffusers folder (or built by a checkpoint loader).
#[derive(Debug, Clone)]
pub struct SdConfig {
    /// The model family.
    pub architecture: Architecture,
    /// What the UNet predicts.
    pub prediction: Prediction,
    /// UNet structure (set `unet.sliced_attention_size` before loading to slice attention).
    pub unet: UnetConfig,
    /// VAE structure.
    pub vae: AutoEncoderKLConfig,
    /// VAE image channels in.
    pub vae_in_channels: usize,
    /// VAE image channels out.
    pub vae_out_channels: usize,
    /// Latent scale (`scaling_factor`: 0.18215 for SD 1.x/2.x, 0.13025 for SDXL).
    pub scaling_factor: f64,
    /// The text encoders: one for SD 1.x/2.x, two for SDXL (`text_encoder`, `text_encoder_2`).
    pub text_encoders: Vec<TextEncoderConfig>,
}

/// One value or one per block (`attention_head_dim`, `transformer_layers_per_block`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    fn expand(&self, path: &Path, field: &str, n: usize) -> Result<Vec<usize>, ModelError> {
        match self {
            PerBlock::One(h) => Ok(vec![*h; n]),
            PerBlock::Each(v) if v.len() == n => Ok(v.clone()),
            PerBlock::Each(v) => Err(bad(
                path,
                format!("{field} has {} entries for {n} blocks", v.len()),
            )),
        }
    }
}

/// The fields of a diffusers `unet/config.json` that we use.
#[derive(Debug, Clone, Deserialize)]
struct UnetJson {
    in_channels: usize,
    out_channels: usize,
    block_out_channels: Vec<usize>,
    layers_per_block: usize,
    attention_head_dim: PerBlock,
    #[serde(default)]
    num_attention_heads: Option<PerBlock>,
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
    transformer_layers_per_block: Option<PerBlock>,
    #[serde(default)]
    addition_embed_type: Option<String>,
    #[serde(default)]
    addition_time_embed_dim: Option<usize>,
    #[serde(default)]
    projection_class_embeddings_input_dim: Option<usize>,
    #[serde(default)]
    class_embed_type: Option<String>,
    #[serde(default)]
    encoder_hid_dim_type: Option<String>,
    #[serde(default)]
    mid_block_type: Option<String>,
    #[serde(default)]
    time_embedding_dim: Option<usize>,
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

/// The fields of a transformers `text_encoder*/config.json` (CLIPTextModel[WithProjection]).
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
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
}

/// `scheduler/scheduler_config.json`.
#[derive(Debug, Clone, Deserialize)]
struct SchedulerJson {
    #[serde(default)]
    prediction_type: Option<String>,
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

/// A JSON file, parsed. Errors name it.
pub fn read_value(path: &Path) -> Result<serde_json::Value, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| bad(path, e.to_string()))
}

fn from_value<T: for<'de> Deserialize<'de>>(
    path: &Path,
    v: serde_json::Value,
) -> Result<T, ModelError> {
    serde_json::from_value(v).map_err(|e| bad(path, e.to_string()))
}

/// The `prediction_type` of a diffusers folder's `scheduler/scheduler_config.json`, `None`
/// when the file is absent or does not say. Errors name the file.
pub fn scheduler_prediction(dir: &Path) -> Result<Option<Prediction>, ModelError> {
    let path = dir.join("scheduler").join("scheduler_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let s: SchedulerJson = from_value(&path, read_value(&path)?)?;
    match s.prediction_type.as_deref() {
        None => Ok(None),
        Some(p) => p.parse().map(Some).map_err(|e: String| bad(&path, e)),
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

/// A config error naming `path`.
pub(crate) fn bad(path: &Path, why: impl Into<String>) -> ModelError {
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
    /// Reads `unet/config.json`, `vae/config.json`, `text_encoder/config.json` (and
    /// `text_encoder_2/config.json` for SDXL, `scheduler/scheduler_config.json` when present)
    /// under `dir`, detects the architecture and checks that the parts fit together. Errors
    /// name the config file at fault.
    pub fn read_diffusers(dir: &Path) -> Result<SdConfig, ModelError> {
        let unet_path = dir.join("unet").join("config.json");
        let vae_path = dir.join("vae").join("config.json");
        let clip_path = dir.join("text_encoder").join("config.json");
        let clip2_path = dir.join("text_encoder_2").join("config.json");
        let u = read_value(&unet_path)?;
        let v = read_value(&vae_path)?;
        if !clip_path.is_file() && clip2_path.is_file() {
            return Err(bad(
                &clip_path,
                "missing: a model with only text_encoder_2 (the SDXL refiner) is not supported",
            ));
        }
        let mut text_encoders = vec![(clip_path.clone(), read_value(&clip_path)?)];
        if clip2_path.is_file() {
            text_encoders.push((clip2_path.clone(), read_value(&clip2_path)?));
        }
        let prediction = scheduler_prediction(dir)?.unwrap_or(Prediction::Epsilon);
        Self::from_json((&unet_path, u), (&vae_path, v), text_encoders, prediction)
    }

    /// The checks and the architecture detection of [`SdConfig::read_diffusers`] on
    /// `config.json` contents already read (a single-file checkpoint infers them from its
    /// tensor shapes): the UNet's and VAE's `(path, value)`, one per text encoder (SDXL: two,
    /// the second with its projection), and the prediction type. The paths name the configs in
    /// errors.
    pub fn from_json(
        (unet_path, u): (&Path, serde_json::Value),
        (vae_path, v): (&Path, serde_json::Value),
        text_encoders: Vec<(PathBuf, serde_json::Value)>,
        prediction: Prediction,
    ) -> Result<SdConfig, ModelError> {
        let u: UnetJson = from_value(unet_path, u)?;
        let v: VaeJson = from_value(vae_path, v)?;
        let text_time = u.addition_embed_type.as_deref() == Some("text_time");
        let mut encoders = text_encoders.into_iter();
        let (clip_path, c) = encoders
            .next()
            .ok_or_else(|| bad(unet_path, "the model has no text encoder"))?;
        let c: ClipJson = from_value(&clip_path, c)?;
        let (clip2_path, c2) = match encoders.next() {
            Some((p, c2)) => {
                let c2: ClipJson = from_value(&p, c2)?;
                (p, Some(c2))
            }
            None => (clip_path.clone(), None),
        };
        if let Some((p, _)) = encoders.next() {
            return Err(bad(&p, "more than two text encoders"));
        }
        let unet_path = unet_path.to_path_buf();
        let vae_path = vae_path.to_path_buf();

        let architecture = match (&c2, text_time) {
            (Some(_), true) => Architecture::Sdxl,
            (None, false) if c.hidden_act == "quick_gelu" => Architecture::Sd1,
            (None, false) => Architecture::Sd2,
            (None, true) => {
                return Err(bad(
                    &unet_path,
                    "addition_embed_type \"text_time\" (SDXL) needs text_encoder_2, which is missing",
                ))
            }
            (Some(_), false) => {
                return Err(bad(
                    &unet_path,
                    "the folder has text_encoder_2 (SDXL) but the UNet has no addition_embed_type \"text_time\"",
                ))
            }
        };

        let mut text_encoders = vec![TextEncoderConfig {
            clip: clip_config(&clip_path, &c, false)?,
            pad_id: if architecture == Architecture::Sd2 {
                0
            } else {
                crate::tokenizer::EOS
            },
            path: clip_path.clone(),
        }];
        if let Some(c2) = &c2 {
            text_encoders.push(TextEncoderConfig {
                clip: clip_config(&clip2_path, c2, true)?,
                pad_id: 0,
                path: clip2_path.clone(),
            });
        }
        let context_dim: usize = text_encoders.iter().map(|t| t.clip.hidden_size).sum();
        if u.cross_attention_dim != context_dim {
            return Err(bad(
                &unet_path,
                format!(
                    "cross_attention_dim {} does not match the text encoders' hidden_size {context_dim}",
                    u.cross_attention_dim
                ),
            ));
        }
        let unet = unet_config(&unet_path, &u)?;
        if let Some(tt) = unet.text_time {
            let pooled = text_encoders
                .get(1)
                .and_then(|t| t.clip.projection_dim)
                .unwrap_or(0);
            if tt.input_dim != pooled + TIME_IDS * tt.time_embed_dim {
                return Err(bad(
                    &unet_path,
                    format!(
                        "projection_class_embeddings_input_dim {} is not text_encoder_2's projection_dim {pooled} + 6 x addition_time_embed_dim {}",
                        tt.input_dim, tt.time_embed_dim
                    ),
                ));
            }
        }
        let inpaint = 2 * v.latent_channels + 1;
        if (u.in_channels != v.latent_channels && u.in_channels != inpaint)
            || u.out_channels != v.latent_channels
        {
            return Err(bad(
                &unet_path,
                format!(
                    "in/out_channels {}/{} do not match the VAE's latent_channels {} \
                     (in_channels may be {inpaint} for an inpainting UNet)",
                    u.in_channels, u.out_channels, v.latent_channels
                ),
            ));
        }
        if v.in_channels != 3 || v.out_channels != 3 {
            return Err(bad(
                &vae_path,
                "in_channels and out_channels must be 3 (RGB)",
            ));
        }
        let default_scale = architecture.scaling_factor();
        Ok(SdConfig {
            architecture,
            prediction,
            unet,
            vae: vae_config(&vae_path, &v)?,
            vae_in_channels: v.in_channels,
            vae_out_channels: v.out_channels,
            scaling_factor: v.scaling_factor.unwrap_or(default_scale),
            text_encoders,
        })
    }

    /// Pixels per latent cell (8 for every SD VAE): `2^(levels - 1)`.
    pub fn vae_scale(&self) -> usize {
        1 << self.vae.block_out_channels.len().saturating_sub(1)
    }
}

fn unet_config(path: &Path, u: &UnetJson) -> Result<UnetConfig, ModelError> {
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
    for (field, value) in [
        ("class_embed_type", &u.class_embed_type),
        ("encoder_hid_dim_type", &u.encoder_hid_dim_type),
    ] {
        if let Some(v) = value {
            return Err(bad(path, format!("{field} {v:?} is not supported")));
        }
    }
    if let Some(m) = u.mid_block_type.as_deref() {
        if m != "UNetMidBlock2DCrossAttn" {
            return Err(bad(path, format!("mid_block_type {m:?} is not supported")));
        }
    }
    if let Some(t) = u.time_embedding_dim {
        if t != u.block_out_channels[0] * 4 {
            return Err(bad(
                path,
                "time_embedding_dim other than 4 x block_out_channels[0] is not supported",
            ));
        }
    }
    // diffusers: num_attention_heads defaults to attention_head_dim, which counts heads.
    let heads = u
        .num_attention_heads
        .as_ref()
        .unwrap_or(&u.attention_head_dim)
        .expand(path, "attention_head_dim", n)?;
    let depth = match &u.transformer_layers_per_block {
        Some(t) => t.expand(path, "transformer_layers_per_block", n)?,
        None => vec![1; n],
    };
    if depth.contains(&0) {
        return Err(bad(path, "transformer_layers_per_block must be at least 1"));
    }
    let mut blocks = Vec::with_capacity(n);
    for i in 0..n {
        let cross = match u.down_block_types[i].as_str() {
            "CrossAttnDownBlock2D" => true,
            "DownBlock2D" => false,
            other => return Err(bad(path, format!("unsupported down block type {other:?}"))),
        };
        // Up blocks mirror the down blocks.
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
        let h = heads[i];
        if cross && (h == 0 || channels % h != 0) {
            return Err(bad(
                path,
                format!("block of {channels} channels cannot have {h} attention heads"),
            ));
        }
        blocks.push(UnetBlock {
            out_channels: channels,
            cross_attn: cross,
            heads: h,
            transformer_layers: depth[i],
        });
    }
    let last = u.block_out_channels[n - 1];
    if heads[n - 1] == 0 || last % heads[n - 1] != 0 {
        return Err(bad(
            path,
            "the mid block's channels are not divisible by its heads",
        ));
    }
    let text_time = match u.addition_embed_type.as_deref() {
        None => None,
        Some("text_time") => {
            let (Some(t), Some(i)) = (
                u.addition_time_embed_dim,
                u.projection_class_embeddings_input_dim,
            ) else {
                return Err(bad(
                    path,
                    "addition_embed_type \"text_time\" needs addition_time_embed_dim and projection_class_embeddings_input_dim",
                ));
            };
            if t == 0 || t % 2 != 0 {
                return Err(bad(
                    path,
                    "addition_time_embed_dim must be a positive even number",
                ));
            }
            Some(TextTimeConfig {
                time_embed_dim: t,
                input_dim: i,
            })
        }
        Some(other) => {
            return Err(bad(
                path,
                format!("addition_embed_type {other:?} is not supported (only \"text_time\")"),
            ))
        }
    };
    Ok(UnetConfig {
        in_channels: u.in_channels,
        out_channels: u.out_channels,
        blocks,
        layers_per_block: u.layers_per_block,
        // diffusers: the mid block takes the last level's transformer depth.
        mid_transformer_layers: depth[n - 1],
        downsample_padding: u.downsample_padding,
        mid_block_scale_factor: u.mid_block_scale_factor,
        norm_num_groups: u.norm_num_groups,
        norm_eps: u.norm_eps,
        cross_attention_dim: u.cross_attention_dim,
        use_linear_projection: u.use_linear_projection,
        flip_sin_to_cos: u.flip_sin_to_cos,
        freq_shift: u.freq_shift,
        center_input_sample: u.center_input_sample,
        text_time,
        sliced_attention_size: None,
        gelu_approximate: false,
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

fn clip_config(path: &Path, c: &ClipJson, projection: bool) -> Result<ClipConfig, ModelError> {
    let activation = ClipActivation::from_name(&c.hidden_act).ok_or_else(|| {
        bad(
            path,
            format!(
                "hidden_act {:?} is not supported (quick_gelu, gelu, gelu_new)",
                c.hidden_act
            ),
        )
    })?;
    if c.num_attention_heads == 0
        || c.hidden_size % c.num_attention_heads != 0
        || c.num_hidden_layers == 0
    {
        return Err(bad(
            path,
            "hidden_size must be a multiple of num_attention_heads, with at least one layer",
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
    let projection_dim = if projection {
        Some(c.projection_dim.filter(|&p| p > 0).ok_or_else(|| {
            bad(
                path,
                "text_encoder_2 must be a CLIPTextModelWithProjection with a projection_dim",
            )
        })?)
    } else {
        None
    };
    Ok(ClipConfig {
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        max_position_embeddings: c.max_position_embeddings,
        activation,
        layer_norm_eps: c.layer_norm_eps,
        projection_dim,
    })
}
