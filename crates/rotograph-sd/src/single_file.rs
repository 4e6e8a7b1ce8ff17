//! Single-file checkpoints as Automatic1111 and civitai users keep them: one `.safetensors` or
//! `.ckpt` holding UNet, VAE and text encoder(s) under the original LDM/SGM key names, served to
//! candle under the diffusers names ([`Renamed`], a lazy renaming [`SimpleBackend`]).
//!
//! The key layouts (learned from the public LDM/SGM checkpoints and diffusers' documentation;
//! the mapping here is our own):
//! - UNet `model.diffusion_model.*`: `input_blocks.N.K` (resnet `K=0`, transformer `K=1`,
//!   downsampler `N.0.op`), `middle_block.{0,1,2}`, `output_blocks.N.K` (upsampler at `K=1`
//!   or `K=2` after a transformer), `time_embed.{0,2}`, `out.{0,2}`, SDXL `label_emb.0.{0,2}`;
//!   resnet parts `in_layers.{0,2}`, `emb_layers.1`, `out_layers.{0,3}`, `skip_connection`.
//! - VAE `first_stage_model.*`: `encoder.down.B.block.J`, `decoder.up.B` (numbered from the
//!   full-resolution end, so reversed against diffusers' `up_blocks`), `mid.block_{1,2}`,
//!   `mid.attn_1.{norm,q,k,v,proj_out}` (1x1 convolutions that diffusers stores as linears:
//!   `[out, in, 1, 1]` is served as `[out, in]`), `nin_shortcut`, `norm_out`.
//! - SD1 text encoder `cond_stage_model.transformer.text_model.*` (already transformers names).
//! - SD2 OpenCLIP `cond_stage_model.model.*`: `transformer.resblocks.N.{ln_1, ln_2,
//!   attn.in_proj_weight/bias (q, k, v stacked by rows), attn.out_proj, mlp.c_fc, mlp.c_proj}`,
//!   `token_embedding`, `positional_embedding`, `ln_final`. SD2 uses the penultimate layer, so
//!   (as diffusers' converted SD2 models do) the last resblock is dropped and `ln_final` is the
//!   final layer norm.
//! - SDXL `conditioner.embedders.0.transformer.text_model.*` (CLIP ViT-L) and
//!   `conditioner.embedders.1.model.*` (OpenCLIP bigG, all layers, `text_projection` `[D, P]`
//!   served transposed as a linear weight `[P, D]`).
//!
//! The architecture is detected from the keys, and each component's diffusers `config.json` is
//! inferred from tensor shapes ([`SingleFile::open`]); what shapes cannot tell is taken from
//! the architecture's convention (GroupNorm 32 groups; UNet heads: 8 for SD1, `channels / 64`
//! for SD2/SDXL; text encoder heads `width / 64`).

use crate::model::ModelError;
use candle_core::pickle::PthTensors;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The SD model families told apart by their keys: the one [`crate::config::Architecture`] enum of the
/// crate, under the name this module has always used.
pub use crate::config::Architecture as Arch;

/// A tensor container: memory-mapped safetensors or a PyTorch zip pickle (read lazily, no code
/// run).
pub enum Store {
    /// `.safetensors`.
    Safetensors(MmapedSafetensors),
    /// `.ckpt` / `.pt` / `.pth` (PyTorch zip format), the `state_dict` entry if there is one.
    Pickle(PthTensors),
}

impl Store {
    /// Opens `path` by its extension (`.safetensors`, else a PyTorch pickle). Errors name it.
    pub fn open(path: &Path) -> Result<Store, ModelError> {
        let err = |source| ModelError::Weights {
            path: path.to_path_buf(),
            source,
        };
        if !path.is_file() {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ext == "safetensors" {
            return Ok(Store::Safetensors(crate::model::mmap(path)?));
        }
        // Checkpoints saved by Lightning nest the weights under `state_dict`; plain
        // `torch.save(state_dict)` files do not.
        let nested = PthTensors::new(path, Some("state_dict"));
        let pth = match nested {
            Ok(p) if !p.tensor_infos().is_empty() => p,
            _ => PthTensors::new(path, None).map_err(err)?,
        };
        Ok(Store::Pickle(pth))
    }

    /// All tensor names and shapes.
    pub fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        match self {
            Store::Safetensors(st) => st
                .tensors()
                .into_iter()
                .map(|(n, v)| (n, v.shape().to_vec()))
                .collect(),
            Store::Pickle(p) => p
                .tensor_infos()
                .iter()
                .map(|(n, i)| (n.clone(), i.layout.dims().to_vec()))
                .collect(),
        }
    }

    fn load(&self, name: &str) -> candle_core::Result<Tensor> {
        match self {
            Store::Safetensors(st) => st.load(name, &Device::Cpu),
            Store::Pickle(p) => p
                .get(name)?
                .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}"))),
        }
    }
}

/// How a served tensor is made from its source tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    Same,
    /// Rows `part·n/of .. (part+1)·n/of` of the first dimension (fused q/k/v).
    Rows {
        /// Which part.
        part: usize,
        /// Of how many.
        of: usize,
    },
    /// The transpose of a matrix.
    Transpose,
    /// A 1x1 convolution `[out, in, 1, 1]` as a linear weight `[out, in]`.
    Squeeze,
}

impl Op {
    fn shape(self, src: &[usize]) -> Vec<usize> {
        match self {
            Op::Same => src.to_vec(),
            Op::Rows { of, .. } => {
                let mut s = src.to_vec();
                if let Some(d) = s.first_mut() {
                    *d /= of;
                }
                s
            }
            Op::Transpose => src.iter().rev().copied().collect(),
            Op::Squeeze => src.iter().copied().take(2).collect(),
        }
    }

    fn apply(self, t: Tensor) -> candle_core::Result<Tensor> {
        match self {
            Op::Same => Ok(t),
            Op::Rows { part, of } => {
                let n = t.dim(0)? / of;
                t.narrow(0, part * n, n)?.contiguous()
            }
            Op::Transpose => t.t()?.contiguous(),
            Op::Squeeze => {
                let (o, i) = (t.dim(0)?, t.dim(1)?);
                t.reshape((o, i))
            }
        }
    }
}

/// A diffusers-named view of some of a [`Store`]'s tensors: each served name maps to a source
/// key and an [`Op`], applied when candle asks for the tensor.
#[derive(Clone)]
pub struct Renamed {
    store: Arc<Store>,
    map: BTreeMap<String, (String, Op)>,
    shapes: BTreeMap<String, Vec<usize>>,
}

impl Renamed {
    fn new(store: Arc<Store>) -> Renamed {
        Renamed {
            store,
            map: BTreeMap::new(),
            shapes: BTreeMap::new(),
        }
    }

    fn add(
        &mut self,
        src_shapes: &BTreeMap<String, Vec<usize>>,
        served: String,
        key: &str,
        op: Op,
    ) {
        if let Some(s) = src_shapes.get(key) {
            self.shapes.insert(served.clone(), op.shape(s));
            self.map.insert(served, (key.to_string(), op));
        }
    }

    /// The served (diffusers) names and their shapes.
    pub fn shapes(&self) -> &BTreeMap<String, Vec<usize>> {
        &self.shapes
    }

    /// The source key and operation behind a served name.
    pub fn source(&self, name: &str) -> Option<(&str, Op)> {
        self.map.get(name).map(|(k, op)| (k.as_str(), *op))
    }

    fn dim(&self, name: &str, i: usize) -> Option<usize> {
        self.shapes.get(name).and_then(|s| s.get(i).copied())
    }

    fn has(&self, name: &str) -> bool {
        self.shapes.contains_key(name)
    }

    /// How many consecutive `prefix{i}suffix` names exist, from `i = 0`.
    fn count(&self, prefix: &str, suffix: &str) -> usize {
        (0..)
            .take_while(|i| self.has(&format!("{prefix}{i}{suffix}")))
            .count()
    }

    fn fetch(&self, name: &str) -> candle_core::Result<Tensor> {
        let (key, op) = self
            .map
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })?;
        op.apply(self.store.load(key)?)
    }
}

impl SimpleBackend for Renamed {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.fetch(name)?;
        if t.shape() != &s {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: t.shape().clone(),
            });
        }
        t.to_dtype(dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.fetch(name)?.to_dtype(dtype)?.to_device(dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// One model component as a diffusers folder would hold it: the `config.json` contents and
/// the weights under diffusers names.
#[derive(Clone)]
pub struct Component {
    /// The inferred diffusers/transformers `config.json`.
    pub config: Value,
    /// The weights.
    pub weights: Renamed,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("config", &self.config)
            .field("tensors", &self.weights.shapes.len())
            .finish()
    }
}

/// A single-file checkpoint split into its components.
#[derive(Debug, Clone)]
pub struct SingleFile {
    /// The file.
    pub path: PathBuf,
    /// The detected family.
    pub arch: Arch,
    /// The UNet has 9 input channels (latents + mask + masked-image latents).
    pub inpainting: bool,
    /// The UNet.
    pub unet: Component,
    /// The VAE (`None` when the file has no `first_stage_model.*`; supply one with `--vae`).
    pub vae: Option<Component>,
    /// The text encoder (SDXL: the CLIP ViT-L one).
    pub text_encoder: Component,
    /// SDXL's second text encoder (OpenCLIP bigG, with projection).
    pub text_encoder_2: Option<Component>,
}

const UNET: &str = "model.diffusion_model.";
const VAE: &str = "first_stage_model.";
const SD1_CLIP: &str = "cond_stage_model.transformer.";
const SD2_CLIP: &str = "cond_stage_model.model.";
const XL_CLIP: &str = "conditioner.embedders.0.transformer.";
const XL_CLIP2: &str = "conditioner.embedders.1.model.";

/// Detects the family from the key set: SD1 has `cond_stage_model.transformer.*`, SD2
/// `cond_stage_model.model.*`, SDXL `conditioner.embedders.{0,1}.*`; all need the LDM UNet.
pub fn detect(keys: &BTreeSet<String>) -> Result<Arch, String> {
    let any = |p: &str| {
        keys.range(p.to_string()..)
            .next()
            .is_some_and(|k| k.starts_with(p))
    };
    if !any(UNET) {
        return Err(format!(
            "no UNet under `{UNET}*`: not a Stable Diffusion checkpoint in the original (LDM) \
             layout (for a diffusers model pass its folder)"
        ));
    }
    if any(XL_CLIP) && any(XL_CLIP2) {
        Ok(Arch::Sdxl)
    } else if any("conditioner.embedders.") {
        Err("an SDXL checkpoint without the two text encoders (e.g. the SDXL refiner), which is not supported".into())
    } else if any(SD2_CLIP) {
        Ok(Arch::Sd2)
    } else if any(SD1_CLIP) {
        Ok(Arch::Sd1)
    } else {
        Err("no text encoder found (cond_stage_model.* or conditioner.embedders.*)".into())
    }
}

/// `name` with the first matching `(from, to)` prefix replaced; the prefix must end at a dot.
fn swap(name: &str, table: &[(&str, &str)]) -> Option<String> {
    table.iter().find_map(|(from, to)| {
        let rest = name.strip_prefix(from)?;
        if rest.is_empty() {
            Some(to.to_string())
        } else {
            rest.strip_prefix('.').map(|r| format!("{to}.{r}"))
        }
    })
}

fn unet_resnet(rest: &str) -> Option<String> {
    swap(
        rest,
        &[
            ("in_layers.0", "norm1"),
            ("in_layers.2", "conv1"),
            ("emb_layers.1", "time_emb_proj"),
            ("out_layers.0", "norm2"),
            ("out_layers.3", "conv2"),
            ("skip_connection", "conv_shortcut"),
        ],
    )
}

/// `N.K.rest` → `(N, K, rest)`.
fn split2(s: &str) -> Option<(usize, usize, &str)> {
    let mut it = s.splitn(3, '.');
    let n = it.next()?.parse().ok()?;
    let k = it.next()?.parse().ok()?;
    Some((n, k, it.next()?))
}

/// The diffusers name of an LDM UNet key (without `model.diffusion_model.`), given the
/// number of resnets per down block.
pub fn unet_name(key: &str, layers: usize) -> Option<String> {
    if let Some(s) = swap(
        key,
        &[
            ("time_embed.0", "time_embedding.linear_1"),
            ("time_embed.2", "time_embedding.linear_2"),
            ("label_emb.0.0", "add_embedding.linear_1"),
            ("label_emb.0.2", "add_embedding.linear_2"),
            ("input_blocks.0.0", "conv_in"),
            ("out.0", "conv_norm_out"),
            ("out.2", "conv_out"),
        ],
    ) {
        return Some(s);
    }
    let per = layers + 1;
    if let Some(s) = key.strip_prefix("input_blocks.") {
        let (n, k, rest) = split2(s)?;
        let (b, j) = ((n - 1) / per, (n - 1) % per);
        return match (j == layers, k) {
            (true, 0) => {
                let r = rest.strip_prefix("op.")?;
                Some(format!("down_blocks.{b}.downsamplers.0.conv.{r}"))
            }
            (false, 0) => Some(format!(
                "down_blocks.{b}.resnets.{j}.{}",
                unet_resnet(rest)?
            )),
            (false, 1) => Some(format!("down_blocks.{b}.attentions.{j}.{rest}")),
            _ => None,
        };
    }
    if let Some(s) = key.strip_prefix("middle_block.") {
        let (k, rest) = s.split_once('.')?;
        return match k {
            "0" => Some(format!("mid_block.resnets.0.{}", unet_resnet(rest)?)),
            "1" => Some(format!("mid_block.attentions.0.{rest}")),
            "2" => Some(format!("mid_block.resnets.1.{}", unet_resnet(rest)?)),
            _ => None,
        };
    }
    if let Some(s) = key.strip_prefix("output_blocks.") {
        let (n, k, rest) = split2(s)?;
        let (u, j) = (n / per, n % per);
        return match k {
            0 => Some(format!("up_blocks.{u}.resnets.{j}.{}", unet_resnet(rest)?)),
            1 | 2 if rest.starts_with("conv.") => {
                Some(format!("up_blocks.{u}.upsamplers.0.{rest}"))
            }
            1 => Some(format!("up_blocks.{u}.attentions.{j}.{rest}")),
            _ => None,
        };
    }
    None
}

fn vae_resnet(rest: &str) -> String {
    swap(rest, &[("nin_shortcut", "conv_shortcut")]).unwrap_or_else(|| rest.to_string())
}

/// The diffusers name (and operation) of an LDM VAE key (without `first_stage_model.`), given
/// the number of decoder levels.
pub fn vae_name(key: &str, levels: usize) -> Option<(String, Op)> {
    let same = |s: String| Some((s, Op::Same));
    if key.starts_with("quant_conv.") || key.starts_with("post_quant_conv.") {
        return same(key.to_string());
    }
    let (part, rest) = key.split_once('.')?;
    if part != "encoder" && part != "decoder" {
        return None;
    }
    if let Some(s) = swap(rest, &[("norm_out", "conv_norm_out")]) {
        return same(format!("{part}.{s}"));
    }
    if rest.starts_with("conv_in.") || rest.starts_with("conv_out.") {
        return same(format!("{part}.{rest}"));
    }
    if let Some(s) = rest.strip_prefix("mid.") {
        if let Some(r) = swap(
            s,
            &[
                ("block_1", "mid_block.resnets.0"),
                ("block_2", "mid_block.resnets.1"),
            ],
        ) {
            let (head, tail) = r.split_at("mid_block.resnets.0.".len());
            return same(format!("{part}.{head}{}", vae_resnet(tail)));
        }
        let a = s.strip_prefix("attn_1.")?;
        let (p, leaf) = a.split_once('.')?;
        let to = match p {
            "norm" => return same(format!("{part}.mid_block.attentions.0.group_norm.{leaf}")),
            "q" => "to_q",
            "k" => "to_k",
            "v" => "to_v",
            "proj_out" => "to_out.0",
            _ => return None,
        };
        let op = if leaf == "weight" {
            Op::Squeeze
        } else {
            Op::Same
        };
        return Some((format!("{part}.mid_block.attentions.0.{to}.{leaf}"), op));
    }
    let (dir, ours) = if part == "encoder" {
        ("down.", "down_blocks")
    } else {
        ("up.", "up_blocks")
    };
    let s = rest.strip_prefix(dir)?;
    let (b, r) = s.split_once('.')?;
    let b: usize = b.parse().ok()?;
    let b = if part == "decoder" {
        levels.checked_sub(b + 1)?
    } else {
        b
    };
    if let Some(r) = r.strip_prefix("block.") {
        let (j, t) = r.split_once('.')?;
        return same(format!("{part}.{ours}.{b}.resnets.{j}.{}", vae_resnet(t)));
    }
    let r = swap(
        r,
        &[
            ("downsample.conv", "downsamplers.0.conv"),
            ("upsample.conv", "upsamplers.0.conv"),
        ],
    )?;
    same(format!("{part}.{ours}.{b}.{r}"))
}

/// The transformers name (and operation) of an OpenCLIP text-model key (without its prefix).
/// Resblocks at or above `keep_layers` are dropped; `text_projection` is served only when
/// `projection` is set.
pub fn open_clip_name(key: &str, keep_layers: usize, projection: bool) -> Vec<(String, Op)> {
    let one = |s: &str| vec![(s.to_string(), Op::Same)];
    match key {
        "token_embedding.weight" => return one("text_model.embeddings.token_embedding.weight"),
        "positional_embedding" => return one("text_model.embeddings.position_embedding.weight"),
        "text_projection" if projection => {
            return vec![("text_projection.weight".to_string(), Op::Transpose)]
        }
        _ => {}
    }
    if let Some(s) = swap(key, &[("ln_final", "text_model.final_layer_norm")]) {
        return vec![(s, Op::Same)];
    }
    let Some(s) = key.strip_prefix("transformer.resblocks.") else {
        return vec![];
    };
    let Some((n, rest)) = s.split_once('.') else {
        return vec![];
    };
    let Ok(n) = n.parse::<usize>() else {
        return vec![];
    };
    if n >= keep_layers {
        return vec![];
    }
    let layer = format!("text_model.encoder.layers.{n}");
    if let Some(leaf) = rest
        .strip_prefix("attn.in_proj_")
        .filter(|l| *l == "weight" || *l == "bias")
    {
        return ["q_proj", "k_proj", "v_proj"]
            .iter()
            .enumerate()
            .map(|(part, p)| {
                (
                    format!("{layer}.self_attn.{p}.{leaf}"),
                    Op::Rows { part, of: 3 },
                )
            })
            .collect();
    }
    swap(
        rest,
        &[
            ("ln_1", "layer_norm1"),
            ("ln_2", "layer_norm2"),
            ("attn.out_proj", "self_attn.out_proj"),
            ("mlp.c_fc", "mlp.fc1"),
            ("mlp.c_proj", "mlp.fc2"),
        ],
    )
    .map(|s| vec![(format!("{layer}.{s}"), Op::Same)])
    .unwrap_or_default()
}

/// The keys under `prefix`, without it.
fn under<'a>(
    shapes: &'a BTreeMap<String, Vec<usize>>,
    prefix: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    shapes
        .range(prefix.to_string()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(move |(k, _)| &k[prefix.len()..])
}

/// Maps the UNet keys (under `model.diffusion_model.`) and infers its config.
fn unet_component(
    store: &Arc<Store>,
    shapes: &BTreeMap<String, Vec<usize>>,
    arch: Arch,
) -> Result<Component, String> {
    // Resnets per down block: input blocks 1.. hold `levels·layers` resnet blocks plus
    // `levels - 1` downsamplers.
    let mut inputs = BTreeSet::new();
    let mut downs = 0;
    for k in under(shapes, UNET) {
        if let Some(s) = k.strip_prefix("input_blocks.") {
            if let Some((n, _, rest)) = split2(s) {
                if n > 0 {
                    inputs.insert(n);
                }
                if rest == "op.weight" {
                    downs += 1;
                }
            }
        }
    }
    let levels = downs + 1;
    if inputs.is_empty() || (inputs.len() - downs) % levels != 0 {
        return Err("cannot make out the UNet's blocks from its input_blocks".into());
    }
    let layers = (inputs.len() - downs) / levels;
    let mut w = Renamed::new(store.clone());
    for k in under(shapes, UNET) {
        if let Some(name) = unet_name(k, layers) {
            w.add(shapes, name, &format!("{UNET}{k}"), Op::Same);
        }
    }
    let config = unet_config(&w, arch, levels, layers)?;
    Ok(Component { config, weights: w })
}

fn unet_config(w: &Renamed, arch: Arch, levels: usize, layers: usize) -> Result<Value, String> {
    let need = |name: &str, i: usize| {
        w.dim(name, i)
            .ok_or_else(|| format!("the UNet has no {name} (the checkpoint is incomplete)"))
    };
    let mut channels = Vec::new();
    let mut down_types = Vec::new();
    let mut heads = Vec::new();
    let mut depth = Vec::new();
    let mut cross = 0;
    let mut linear = false;
    for b in 0..levels {
        let c = need(&format!("down_blocks.{b}.resnets.0.conv1.weight"), 0)?;
        channels.push(c);
        let attn = format!("down_blocks.{b}.attentions.0.");
        if w.has(&format!("{attn}proj_in.weight")) {
            down_types.push("CrossAttnDownBlock2D");
            depth.push(w.count(&format!("{attn}transformer_blocks."), ".norm1.weight"));
            cross = need(&format!("{attn}transformer_blocks.0.attn2.to_k.weight"), 1)?;
            linear = w.shapes[&format!("{attn}proj_in.weight")].len() == 2;
        } else {
            down_types.push("DownBlock2D");
            depth.push(1);
        }
        heads.push(match arch {
            Arch::Sd1 => 8,
            Arch::Sd2 | Arch::Sdxl => (c / 64).max(1),
        });
    }
    let up_types: Vec<&str> = (0..levels)
        .map(|u| {
            if w.has(&format!("up_blocks.{u}.attentions.0.proj_in.weight")) {
                "CrossAttnUpBlock2D"
            } else {
                "UpBlock2D"
            }
        })
        .collect();
    let transformer_layers: Value = if depth.iter().all(|&d| d == depth[0]) {
        json!(depth[0])
    } else {
        json!(depth)
    };
    let mut cfg = json!({
        "_class_name": "UNet2DConditionModel",
        "in_channels": need("conv_in.weight", 1)?,
        "out_channels": need("conv_out.weight", 0)?,
        "block_out_channels": channels,
        "layers_per_block": layers,
        "attention_head_dim": if arch == Arch::Sd1 { json!(8) } else { json!(heads) },
        "cross_attention_dim": cross,
        "down_block_types": down_types,
        "up_block_types": up_types,
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "use_linear_projection": linear,
        "transformer_layers_per_block": transformer_layers,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
    });
    if arch == Arch::Sdxl {
        let proj = need("add_embedding.linear_1.weight", 1)?;
        cfg["addition_embed_type"] = json!("text_time");
        cfg["projection_class_embeddings_input_dim"] = json!(proj);
    }
    Ok(cfg)
}

/// Maps the VAE keys under `prefix` (may be empty for a bare VAE file).
pub fn vae_component(
    store: &Arc<Store>,
    shapes: &BTreeMap<String, Vec<usize>>,
    prefix: &str,
    scaling_factor: f64,
) -> Result<Component, String> {
    let levels = under(shapes, prefix)
        .filter_map(|k| {
            k.strip_prefix("decoder.up.")?
                .split_once('.')?
                .0
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    let mut w = Renamed::new(store.clone());
    for k in under(shapes, prefix) {
        if let Some((name, op)) = vae_name(k, levels) {
            w.add(shapes, name, &format!("{prefix}{k}"), op);
        }
    }
    let need = |name: &str, i: usize| {
        w.dim(name, i)
            .ok_or_else(|| format!("the VAE has no {name} (the checkpoint is incomplete)"))
    };
    let mut channels = Vec::new();
    for b in 0..levels {
        channels.push(need(
            &format!("encoder.down_blocks.{b}.resnets.0.conv2.weight"),
            0,
        )?);
    }
    if channels.is_empty() {
        return Err("no VAE decoder blocks (decoder.up.N.*) found".into());
    }
    let config = json!({
        "_class_name": "AutoencoderKL",
        "in_channels": need("encoder.conv_in.weight", 1)?,
        "out_channels": need("decoder.conv_out.weight", 0)?,
        "latent_channels": need("decoder.conv_in.weight", 1)?,
        "block_out_channels": channels,
        "layers_per_block": w.count("encoder.down_blocks.0.resnets.", ".conv1.weight"),
        "norm_num_groups": 32,
        "down_block_types": vec!["DownEncoderBlock2D"; levels],
        "up_block_types": vec!["UpDecoderBlock2D"; levels],
        "scaling_factor": scaling_factor,
        "use_quant_conv": w.has("quant_conv.weight"),
        "use_post_quant_conv": w.has("post_quant_conv.weight"),
    });
    Ok(Component { config, weights: w })
}

fn clip_config(w: &Renamed, act: &str, projection: bool) -> Result<Value, String> {
    let need = |name: &str, i: usize| {
        w.dim(name, i)
            .ok_or_else(|| format!("the text encoder has no {name} (the checkpoint is incomplete)"))
    };
    let width = need("text_model.embeddings.token_embedding.weight", 1)?;
    let mut cfg = json!({
        "architectures": [if projection { "CLIPTextModelWithProjection" } else { "CLIPTextModel" }],
        "vocab_size": need("text_model.embeddings.token_embedding.weight", 0)?,
        "hidden_size": width,
        "intermediate_size": need("text_model.encoder.layers.0.mlp.fc1.weight", 0)?,
        "num_hidden_layers": w.count("text_model.encoder.layers.", ".layer_norm1.weight"),
        "num_attention_heads": (width / 64).max(1),
        "max_position_embeddings": need("text_model.embeddings.position_embedding.weight", 0)?,
        "hidden_act": act,
    });
    cfg["projection_dim"] = json!(if projection {
        need("text_projection.weight", 0)?
    } else {
        width
    });
    Ok(cfg)
}

/// An OpenAI CLIP text encoder stored under transformers names below `prefix` (optionally
/// without the `text_model.` level, as some SD1 files have it).
fn clip_component(
    store: &Arc<Store>,
    shapes: &BTreeMap<String, Vec<usize>>,
    prefix: &str,
) -> Result<Component, String> {
    let mut w = Renamed::new(store.clone());
    for k in under(shapes, prefix) {
        if k.starts_with("embeddings.")
            || k.starts_with("encoder.")
            || k.starts_with("final_layer_norm.")
        {
            w.add(
                shapes,
                format!("text_model.{k}"),
                &format!("{prefix}{k}"),
                Op::Same,
            );
        } else if k.starts_with("text_model.") {
            w.add(shapes, k.to_string(), &format!("{prefix}{k}"), Op::Same);
        }
    }
    let config = clip_config(&w, "quick_gelu", false)?;
    Ok(Component { config, weights: w })
}

/// An OpenCLIP text encoder below `prefix`: SD2 drops the last layer and the projection, SDXL
/// keeps all.
fn open_clip_component(
    store: &Arc<Store>,
    shapes: &BTreeMap<String, Vec<usize>>,
    prefix: &str,
    penultimate: bool,
) -> Result<Component, String> {
    let total = under(shapes, prefix)
        .filter_map(|k| {
            k.strip_prefix("transformer.resblocks.")?
                .split_once('.')?
                .0
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    let keep = if penultimate {
        total.saturating_sub(1)
    } else {
        total
    };
    let mut w = Renamed::new(store.clone());
    for k in under(shapes, prefix) {
        for (name, op) in open_clip_name(k, keep, !penultimate) {
            w.add(shapes, name, &format!("{prefix}{k}"), op);
        }
    }
    let config = clip_config(&w, "gelu", !penultimate)?;
    Ok(Component { config, weights: w })
}

impl SingleFile {
    /// Opens a single-file checkpoint (`.safetensors`, or `.ckpt`/`.pt`/`.pth` through candle's
    /// pickle reader), detects its family and infers the components' configs. Errors name the
    /// file and say what is missing.
    pub fn open(path: &Path) -> Result<SingleFile, ModelError> {
        let store = Store::open(path)?;
        let shapes = store.shapes();
        Self::from_store(path, Arc::new(store), &shapes)
    }

    /// [`SingleFile::open`] on an already opened store.
    pub fn from_store(
        path: &Path,
        store: Arc<Store>,
        shapes: &BTreeMap<String, Vec<usize>>,
    ) -> Result<SingleFile, ModelError> {
        let bad = |why: String| ModelError::Config {
            path: path.to_path_buf(),
            why,
        };
        let keys: BTreeSet<String> = shapes.keys().cloned().collect();
        let arch = detect(&keys).map_err(bad)?;
        let unet = unet_component(&store, shapes, arch).map_err(bad)?;
        let vae = if keys.iter().any(|k| k.starts_with(VAE)) {
            Some(vae_component(&store, shapes, VAE, arch.scaling_factor()).map_err(bad)?)
        } else {
            None
        };
        let (text_encoder, text_encoder_2) = match arch {
            Arch::Sd1 => {
                let p = if keys
                    .iter()
                    .any(|k| k.starts_with("cond_stage_model.transformer.text_model."))
                {
                    "cond_stage_model.transformer.text_model."
                } else {
                    SD1_CLIP
                };
                (clip_component(&store, shapes, p).map_err(bad)?, None)
            }
            Arch::Sd2 => (
                open_clip_component(&store, shapes, SD2_CLIP, true).map_err(bad)?,
                None,
            ),
            Arch::Sdxl => (
                clip_component(&store, shapes, &format!("{XL_CLIP}text_model.")).map_err(bad)?,
                Some(open_clip_component(&store, shapes, XL_CLIP2, false).map_err(bad)?),
            ),
        };
        let mut unet = unet;
        if let (Some(te2), Some(proj)) = (
            &text_encoder_2,
            unet.config["projection_class_embeddings_input_dim"].as_u64(),
        ) {
            // SDXL's added conditioning: the pooled text embedding plus six size/crop numbers,
            // each embedded in `addition_time_embed_dim` (256 in SDXL).
            let pooled = te2.config["projection_dim"].as_u64().unwrap_or(0);
            let per = proj.saturating_sub(pooled) / 6;
            if per == 0 || pooled + 6 * per != proj {
                return Err(bad(format!(
                    "the UNet's added embedding takes {proj} inputs, which is not the pooled \
                     text size {pooled} plus six equal size embeddings"
                )));
            }
            unet.config["addition_time_embed_dim"] = json!(per);
        }
        let inpainting = unet.config["in_channels"] == json!(9);
        Ok(SingleFile {
            path: path.to_path_buf(),
            arch,
            inpainting,
            unet,
            vae,
            text_encoder,
            text_encoder_2,
        })
    }
}

/// Opens a separate VAE file in LDM naming (`encoder.*`/`decoder.*`, possibly below
/// `first_stage_model.` or `vae.`), as A1111's `--vae` files are.
pub fn open_vae_file(path: &Path, scaling_factor: f64) -> Result<Component, ModelError> {
    let store = Store::open(path)?;
    let shapes = store.shapes();
    let prefix = [VAE, "vae.", ""]
        .into_iter()
        .find(|p| shapes.contains_key(&format!("{p}decoder.conv_in.weight")))
        .ok_or_else(|| ModelError::Config {
            path: path.to_path_buf(),
            why: "not a VAE in the original (LDM) layout: no decoder.conv_in.weight (with or \
                  without a first_stage_model. prefix); for a diffusers VAE pass its folder"
                .into(),
        })?;
    vae_component(&Arc::new(store), &shapes, prefix, scaling_factor).map_err(|why| {
        ModelError::Config {
            path: path.to_path_buf(),
            why,
        }
    })
}

/// SD2 checkpoints come as epsilon- (512px "base") or v-prediction (768px) models, and the
/// keys cannot tell. Automatic1111's answer, followed here for `prediction = "auto"`: a YAML
/// config beside the checkpoint (`NAME.yaml`) that says `parameterization: "v"` decides;
/// without one, A1111 runs the UNet on a constant input (latents 0.5, timestep 999, context
/// 0.5) and takes v-prediction when `mean(output - input) < -1` (see
/// [`v_prediction_probe`]). This returns the YAML's verdict, if any.
pub fn yaml_says_v(checkpoint: &Path) -> Option<bool> {
    let yaml = checkpoint.with_extension("yaml");
    let text = std::fs::read_to_string(yaml).ok()?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("parameterization:"))?;
    let v = line["parameterization:".len()..]
        .trim()
        .trim_matches(|c| c == '"' || c == '\'');
    Some(v == "v")
}

/// A1111's v-prediction test on an SD2 UNet: `unet_out` is the UNet output for latents of
/// 0.5 everywhere (`[1, 4, 8, 8]`) at timestep 999 with a context of 0.5 everywhere; the
/// model is taken as v-prediction when `mean(unet_out - 0.5) < -1`.
pub fn v_prediction_probe(unet_out: &Tensor) -> candle_core::Result<bool> {
    let m = (unet_out - 0.5)?.mean_all()?.to_scalar::<f32>()?;
    Ok(m < -1.0)
}
