//! The CLIP text encoder in the transformers `CLIPTextModel` / `CLIPTextModelWithProjection`
//! layout, with any activation SD uses and access to every layer's hidden states.
//!
//! candle-transformers has two CLIP text models: `clip::text_model` sizes from a config but
//! only knows quick-GELU and hides the intermediate layers; `stable_diffusion::clip` has GELU
//! and intermediate layers but only fixed built-in sizes. SD 2.x (OpenCLIP-H, GELU), SDXL
//! (penultimate layer of both encoders) and CLIP skip need both, so this is our own.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

/// The MLP activation (`hidden_act` of the transformers config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipActivation {
    /// `quick_gelu`: `x * sigmoid(1.702 x)` (OpenAI CLIP, SD 1.x, SDXL encoder 1).
    QuickGelu,
    /// `gelu`: the exact (erf) GELU (OpenCLIP, SD 2.x, SDXL encoder 2).
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation of GELU.
    GeluTanh,
}

impl ClipActivation {
    /// Parses a transformers `hidden_act` name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
            Self::Gelu => x.gelu_erf(),
            Self::GeluTanh => x.gelu(),
        }
    }
}

/// The sizes of a CLIP text encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// Token vocabulary size.
    pub vocab_size: usize,
    /// Hidden size (`hidden_size`).
    pub hidden_size: usize,
    /// MLP inner size.
    pub intermediate_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Positions (77 for SD).
    pub max_position_embeddings: usize,
    /// MLP activation.
    pub activation: ClipActivation,
    /// Layer norm epsilon.
    pub layer_norm_eps: f64,
    /// `Some(dim)` for a `CLIPTextModelWithProjection` (`text_projection`, no bias).
    pub projection_dim: Option<usize>,
}

#[derive(Debug, Clone)]
struct Layer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// A CLIP text encoder (`text_model.*` weights, plus `text_projection` when configured).
#[derive(Debug, Clone)]
pub struct ClipText {
    config: ClipConfig,
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    projection: Option<Linear>,
}

/// What one pass of the text encoder returns.
#[derive(Debug, Clone)]
pub struct ClipOutput {
    /// The hidden states asked for, `[B, T, hidden]`.
    pub hidden: Tensor,
    /// The pooled output `[B, proj]`: the final-normed state at the first end-of-text token,
    /// through `text_projection` (only for encoders with a projection).
    pub pooled: Option<Tensor>,
}

impl ClipText {
    /// Builds the encoder from `vb` (the root of a transformers checkpoint: `text_model.*`;
    /// transformers 5 saves the same tensors without the `text_model.` prefix, which loads too).
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> Result<Self> {
        let c = config;
        let tm = if vb.contains_tensor("text_model.embeddings.token_embedding.weight")
            || !vb.contains_tensor("embeddings.token_embedding.weight")
        {
            vb.pp("text_model")
        } else {
            vb.clone()
        };
        let emb = tm.pp("embeddings");
        let token_embedding = emb
            .pp("token_embedding")
            .get((c.vocab_size, c.hidden_size), "weight")?;
        let position_embedding = emb
            .pp("position_embedding")
            .get((c.max_position_embeddings, c.hidden_size), "weight")?;
        let ln = |vb: VarBuilder| candle_nn::layer_norm(c.hidden_size, c.layer_norm_eps, vb);
        let h = c.hidden_size;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = tm.pp("encoder.layers").pp(i.to_string());
                let a = l.pp("self_attn");
                Ok(Layer {
                    norm1: ln(l.pp("layer_norm1"))?,
                    q: candle_nn::linear(h, h, a.pp("q_proj"))?,
                    k: candle_nn::linear(h, h, a.pp("k_proj"))?,
                    v: candle_nn::linear(h, h, a.pp("v_proj"))?,
                    out: candle_nn::linear(h, h, a.pp("out_proj"))?,
                    norm2: ln(l.pp("layer_norm2"))?,
                    fc1: candle_nn::linear(h, c.intermediate_size, l.pp("mlp.fc1"))?,
                    fc2: candle_nn::linear(c.intermediate_size, h, l.pp("mlp.fc2"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let final_norm = ln(tm.pp("final_layer_norm"))?;
        let projection = match c.projection_dim {
            Some(p) => Some(candle_nn::linear_no_bias(h, p, vb.pp("text_projection"))?),
            None => None,
        };
        Ok(Self {
            config: c.clone(),
            token_embedding,
            position_embedding,
            layers,
            final_norm,
            projection,
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    fn attention(&self, l: &Layer, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let heads = self.config.num_attention_heads;
        let hd = h / heads;
        let split = |y: Tensor| y.reshape((b, t, heads, hd))?.transpose(1, 2)?.contiguous();
        let q = split((l.q.forward(x)? * (hd as f64).powf(-0.5))?)?;
        let k = split(l.k.forward(x)?)?;
        let v = split(l.v.forward(x)?)?;
        let w = q.matmul(&k.t()?)?.broadcast_add(mask)?;
        let w = candle_nn::ops::softmax_last_dim(&w)?;
        let y = w.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
        l.out.forward(&y)
    }

    fn layer(&self, l: &Layer, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let y = (x + self.attention(l, &l.norm1.forward(x)?, mask)?)?;
        let m = l.fc2.forward(
            &self
                .config
                .activation
                .apply(&l.fc1.forward(&l.norm2.forward(&y)?)?)?,
        )?;
        y + m
    }

    /// Runs the encoder on token ids `[B, T]` (u32). `skip` picks the hidden states: `skip`
    /// = 1 is the last layer, `skip` = N the output of layer `num_layers - N` (A1111's
    /// "Clip skip" N, transformers' `hidden_states[-N]`). With `final_norm` the final layer
    /// norm is applied to them. The pooled output (projection encoders only) always comes
    /// from the last layer, final-normed, as transformers computes it.
    pub fn forward(&self, ids: &Tensor, skip: usize, final_norm: bool) -> Result<ClipOutput> {
        let n = self.layers.len();
        if skip == 0 || skip > n {
            return Err(candle_core::Error::Msg(format!(
                "clip skip {skip} is outside 1..={n} (the text encoder has {n} layers)"
            )));
        }
        let (b, t) = ids.dims2()?;
        let tok = self.token_embedding.embedding(&ids.flatten_all()?)?;
        let pos = self.position_embedding.narrow(0, 0, t)?;
        let mut x = tok.reshape((b, t, ()))?.broadcast_add(&pos)?;
        let mask = causal_mask(t, x.device())?;
        let want = n - skip;
        let mut picked = None;
        for (i, l) in self.layers.iter().enumerate() {
            x = self.layer(l, &x, &mask)?;
            if i == want {
                picked = Some(x.clone());
                if self.projection.is_none() {
                    break;
                }
            }
        }
        let picked = picked.unwrap_or_else(|| x.clone());
        let hidden = if final_norm {
            self.final_norm.forward(&picked)?
        } else {
            picked
        };
        let pooled = match &self.projection {
            None => None,
            Some(p) => {
                let last = self.final_norm.forward(&x)?;
                let rows = eos_positions(ids)?
                    .into_iter()
                    .enumerate()
                    .map(|(bi, pos)| last.get(bi)?.get(pos))
                    .collect::<Result<Vec<_>>>()?;
                Some(p.forward(&Tensor::stack(&rows, 0)?)?)
            }
        };
        Ok(ClipOutput { hidden, pooled })
    }
}

/// `[T, T]`: 0 on and below the diagonal, -inf above.
fn causal_mask(t: usize, dev: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(v, (t, t), dev)
}

/// Per row, the first position of the largest token id (the end-of-text token, which is the
/// largest id in the CLIP vocabulary: transformers' `argmax` pooling).
fn eos_positions(ids: &Tensor) -> Result<Vec<usize>> {
    let rows = ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    Ok(rows
        .iter()
        .map(|r| {
            let max = r.iter().copied().max().unwrap_or(0);
            r.iter().position(|&x| x == max).unwrap_or(0)
        })
        .collect())
}
