//! The UNet's attention: diffusers' `Transformer2DModel` (group norm, projection in,
//! `BasicTransformerBlock`s of self-attention, cross-attention and a GEGLU feed-forward,
//! projection out, residual), with optional sliced attention.
//!
//! Ours rather than candle-transformers' because candle 0.11's sliced attention fails (it
//! stacks the slices into a 4-D tensor) and its GEGLU uses the tanh approximation of GELU
//! where diffusers uses the exact one.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Conv2d, GroupNorm, LayerNorm, Linear, VarBuilder};

/// How a transformer's attention is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttnOptions {
    /// Compute attention this many (batch x head) rows at a time: the score matrix of only
    /// that many heads is held at once. `None` = all at once.
    pub slice: Option<usize>,
    /// GELU of the GEGLU feed-forward by the tanh approximation (candle's UNet) instead of
    /// the exact erf form (diffusers).
    pub gelu_tanh: bool,
}

#[derive(Debug)]
struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    scale: f64,
    slice: Option<usize>,
}

impl Attention {
    fn new(
        vb: VarBuilder,
        dim: usize,
        context_dim: usize,
        heads: usize,
        slice: Option<usize>,
    ) -> Result<Self> {
        Ok(Self {
            to_q: candle_nn::linear_no_bias(dim, dim, vb.pp("to_q"))?,
            to_k: candle_nn::linear_no_bias(context_dim, dim, vb.pp("to_k"))?,
            to_v: candle_nn::linear_no_bias(context_dim, dim, vb.pp("to_v"))?,
            to_out: candle_nn::linear(dim, dim, vb.pp("to_out.0"))?,
            heads,
            scale: 1.0 / ((dim / heads) as f64).sqrt(),
            slice,
        })
    }

    /// `[B, T, C]` → `[B * heads, T, C / heads]`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        x.reshape((b, t, self.heads, c / self.heads))?
            .transpose(1, 2)?
            .reshape((b * self.heads, t, c / self.heads))
    }

    fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let ctx = context.unwrap_or(x).contiguous()?;
        let q = self.split(&self.to_q.forward(x)?)?;
        let k = self.split(&self.to_k.forward(&ctx)?)?;
        let v = self.split(&self.to_v.forward(&ctx)?)?;
        let rows = q.dim(0)?;
        let attend = |q: &Tensor, k: &Tensor, v: &Tensor| -> Result<Tensor> {
            let w = q.matmul(&(k.t()? * self.scale)?)?;
            candle_nn::ops::softmax_last_dim(&w)?.matmul(v)
        };
        let y = match self.slice {
            Some(s) if s > 0 && s < rows => {
                let mut parts = Vec::with_capacity(rows.div_ceil(s));
                for start in (0..rows).step_by(s) {
                    let n = s.min(rows - start);
                    parts.push(attend(
                        &q.narrow(0, start, n)?,
                        &k.narrow(0, start, n)?,
                        &v.narrow(0, start, n)?,
                    )?);
                }
                Tensor::cat(&parts, 0)?
            }
            _ => attend(&q, &k, &v)?,
        };
        let (bh, t, d) = y.dims3()?;
        let y = y
            .reshape((bh / self.heads, self.heads, t, d))?
            .transpose(1, 2)?
            .reshape((bh / self.heads, t, d * self.heads))?;
        self.to_out.forward(&y)
    }
}

#[derive(Debug)]
struct Block {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    geglu: Linear,
    ff_out: Linear,
    gelu_tanh: bool,
}

impl Block {
    fn new(
        vb: VarBuilder,
        dim: usize,
        context_dim: usize,
        heads: usize,
        opts: AttnOptions,
    ) -> Result<Self> {
        let ln = |name: &str| candle_nn::layer_norm(dim, 1e-5, vb.pp(name));
        Ok(Self {
            norm1: ln("norm1")?,
            attn1: Attention::new(vb.pp("attn1"), dim, dim, heads, opts.slice)?,
            norm2: ln("norm2")?,
            attn2: Attention::new(vb.pp("attn2"), dim, context_dim, heads, opts.slice)?,
            norm3: ln("norm3")?,
            geglu: candle_nn::linear(dim, dim * 8, vb.pp("ff.net.0.proj"))?,
            ff_out: candle_nn::linear(dim * 4, dim, vb.pp("ff.net.2"))?,
            gelu_tanh: opts.gelu_tanh,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let x = (self.attn1.forward(&self.norm1.forward(x)?, None)? + x)?;
        let x = (self
            .attn2
            .forward(&self.norm2.forward(&x)?, Some(context))?
            + x)?;
        let h = self
            .geglu
            .forward(&self.norm3.forward(&x)?)?
            .chunk(2, D::Minus1)?;
        let gate = if self.gelu_tanh {
            h[1].gelu()?
        } else {
            h[1].gelu_erf()?
        };
        self.ff_out.forward(&(&h[0] * gate)?)? + x
    }
}

#[derive(Debug)]
enum Proj {
    Conv(Conv2d),
    Linear(Linear),
}

/// diffusers' `Transformer2DModel` over a `[B, C, H, W]` feature map.
#[derive(Debug)]
pub(crate) struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Proj,
    blocks: Vec<Block>,
    proj_out: Proj,
}

impl SpatialTransformer {
    /// `channels` split in `heads`; `depth` transformer blocks.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        vb: VarBuilder,
        channels: usize,
        heads: usize,
        depth: usize,
        groups: usize,
        context_dim: usize,
        linear_projection: bool,
        opts: AttnOptions,
    ) -> Result<Self> {
        let proj = |name: &str| -> Result<Proj> {
            Ok(if linear_projection {
                Proj::Linear(candle_nn::linear(channels, channels, vb.pp(name))?)
            } else {
                Proj::Conv(candle_nn::conv2d(
                    channels,
                    channels,
                    1,
                    Default::default(),
                    vb.pp(name),
                )?)
            })
        };
        Ok(Self {
            norm: candle_nn::group_norm(groups, channels, 1e-6, vb.pp("norm"))?,
            proj_in: proj("proj_in")?,
            blocks: (0..depth)
                .map(|i| {
                    Block::new(
                        vb.pp("transformer_blocks").pp(i.to_string()),
                        channels,
                        context_dim,
                        heads,
                        opts,
                    )
                })
                .collect::<Result<Vec<_>>>()?,
            proj_out: proj("proj_out")?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let y = self.norm.forward(x)?;
        let to_tokens = |y: &Tensor| y.flatten_from(2)?.transpose(1, 2)?.contiguous();
        let mut y = match &self.proj_in {
            Proj::Conv(p) => to_tokens(&p.forward(&y)?)?,
            Proj::Linear(p) => p.forward(&to_tokens(&y)?)?,
        };
        for block in &self.blocks {
            y = block.forward(&y, context)?;
        }
        let to_map = |y: &Tensor| y.transpose(1, 2)?.reshape((b, c, h, w));
        let y = match &self.proj_out {
            Proj::Conv(p) => p.forward(&to_map(&y)?)?,
            Proj::Linear(p) => to_map(&p.forward(&y)?)?,
        };
        y + x
    }
}
