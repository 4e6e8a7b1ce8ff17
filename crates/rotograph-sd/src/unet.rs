//! Our conditional UNet (diffusers `UNet2DConditionModel` layout) from candle-transformers'
//! public building blocks (`resnet::ResnetBlock2D`, `embeddings`) and our own attention
//! (the private `attention` module).
//!
//! candle-transformers 0.11's own `UNet2DConditionModel` covers SD 1.x/2.x but has no
//! additional embedding, and its blocks give every resnet 32 norm groups whatever
//! `norm_num_groups` says, approximate the feed-forward's GELU, and fail with sliced
//! attention. SDXL needs the `text_time` add-embedding (pooled text embedding and six
//! size/crop "time ids") and per-block `transformer_layers_per_block`; inpainting UNets have
//! 9 input channels. This UNet has those, ControlNet residual inputs and working sliced
//! attention. With candle's choices (32 groups, tanh GELU) it computes what candle's UNet
//! does (tested).

use crate::attention::{AttnOptions, SpatialTransformer};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, GroupNorm, VarBuilder};
use candle_transformers::models::stable_diffusion::embeddings::{TimestepEmbedding, Timesteps};
use candle_transformers::models::stable_diffusion::resnet::{ResnetBlock2D, ResnetBlock2DConfig};

/// One resolution level of the UNet (a down block and its mirrored up block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnetBlock {
    /// Output channels of the level.
    pub out_channels: usize,
    /// Whether the level has cross-attention transformers (`CrossAttn*Block2D`).
    pub cross_attn: bool,
    /// Attention heads (diffusers' `attention_head_dim`, which counts heads).
    pub heads: usize,
    /// Transformer blocks per attention (`transformer_layers_per_block`).
    pub transformer_layers: usize,
}

/// SDXL's `addition_embed_type: "text_time"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextTimeConfig {
    /// Sinusoidal channels per time id (`addition_time_embed_dim`, 256 for SDXL).
    pub time_embed_dim: usize,
    /// Input width of `add_embedding` (`projection_class_embeddings_input_dim`): the pooled
    /// text embedding's width plus `6 * time_embed_dim`.
    pub input_dim: usize,
}

impl TextTimeConfig {
    /// Width of the pooled text embedding the UNet expects.
    pub fn pooled_dim(&self) -> usize {
        self.input_dim
            .saturating_sub(TIME_IDS * self.time_embed_dim)
    }
}

/// Number of SDXL time ids: original height/width, crop top/left, target height/width.
pub const TIME_IDS: usize = 6;

/// The structure of a UNet (built from a diffusers `unet/config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnetConfig {
    /// Input channels (4; 9 for inpainting UNets).
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// The levels, from full resolution down.
    pub blocks: Vec<UnetBlock>,
    /// Resnets per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// Transformer depth of the mid block.
    pub mid_transformer_layers: usize,
    /// Padding of the downsampling convolutions.
    pub downsample_padding: usize,
    /// Output scale of the mid block's resnets.
    pub mid_block_scale_factor: f64,
    /// Group norm groups.
    pub norm_num_groups: usize,
    /// Group norm epsilon.
    pub norm_eps: f64,
    /// Width of the text conditioning.
    pub cross_attention_dim: usize,
    /// Linear (SD 2.x, SDXL) rather than 1x1-conv projections in the transformers.
    pub use_linear_projection: bool,
    /// Timestep embedding: cos before sin.
    pub flip_sin_to_cos: bool,
    /// Timestep embedding frequency shift.
    pub freq_shift: f64,
    /// Map the input from `[0, 1]` to `[-1, 1]` first.
    pub center_input_sample: bool,
    /// SDXL's text/time add-embedding, if any.
    pub text_time: Option<TextTimeConfig>,
    /// Attention computed in slices of this many heads (less memory at large sizes);
    /// `Some(0)` picks half the heads of each block. `None` = all at once.
    pub sliced_attention_size: Option<usize>,
    /// GELU of the transformers' feed-forward by its tanh approximation, as
    /// candle-transformers' UNet computes it; `false` (the default from configs) is the
    /// exact GELU diffusers uses.
    pub gelu_approximate: bool,
}

impl UnetConfig {
    /// Channels of the timestep embedding (4x the first level's).
    pub fn time_embed_dim(&self) -> usize {
        self.blocks.first().map_or(0, |b| b.out_channels * 4)
    }
}

/// Down level: resnets (each followed by a transformer in cross-attention levels), then a
/// stride-2 convolution except at the last level.
#[derive(Debug)]
struct DownLevel {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<SpatialTransformer>,
    downsample: Option<(Conv2d, usize)>,
}

/// Up level: resnets over the feature map concatenated with a skip connection (each
/// followed by a transformer in cross-attention levels), then a 2x nearest upsample and a
/// convolution except at the last level.
#[derive(Debug)]
struct UpLevel {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<SpatialTransformer>,
    upsample: Option<Conv2d>,
}

/// Mid block: resnet, transformer, resnet.
#[derive(Debug)]
struct Mid {
    first: ResnetBlock2D,
    attention: SpatialTransformer,
    second: ResnetBlock2D,
}

/// Optional inputs of one UNet evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnetInputs<'a> {
    /// SDXL: pooled text embedding `[B, pooled]` and time ids `[B, 6]`.
    pub text_time: Option<(&'a Tensor, &'a Tensor)>,
    /// ControlNet residuals added to the skip connections (one per skip, in order).
    pub down_residuals: Option<&'a [Tensor]>,
    /// ControlNet residual added to the mid block's output.
    pub mid_residual: Option<&'a Tensor>,
}

/// A conditional UNet.
#[derive(Debug)]
pub struct Unet {
    config: UnetConfig,
    conv_in: Conv2d,
    time_proj: Timesteps,
    time_embedding: TimestepEmbedding,
    add: Option<(Timesteps, TimestepEmbedding)>,
    down: Vec<DownLevel>,
    mid: Mid,
    up: Vec<UpLevel>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UnetConfig {
    fn attn_options(&self, heads: usize) -> AttnOptions {
        AttnOptions {
            slice: match self.sliced_attention_size {
                Some(0) => Some((heads / 2).max(1)),
                other => other,
            },
            gelu_tanh: self.gelu_approximate,
        }
    }

    fn resnet(&self, vb: VarBuilder, cin: usize, cout: usize, scale: f64) -> Result<ResnetBlock2D> {
        let cfg = ResnetBlock2DConfig {
            out_channels: Some(cout),
            temb_channels: Some(self.time_embed_dim()),
            groups: self.norm_num_groups,
            eps: self.norm_eps,
            output_scale_factor: scale,
            ..Default::default()
        };
        ResnetBlock2D::new(vb, cin, cfg)
    }

    fn transformer(&self, vb: VarBuilder, block: &UnetBlock) -> Result<SpatialTransformer> {
        self.transformer_of_depth(vb, block, block.transformer_layers)
    }

    fn transformer_of_depth(
        &self,
        vb: VarBuilder,
        block: &UnetBlock,
        depth: usize,
    ) -> Result<SpatialTransformer> {
        SpatialTransformer::new(
            vb,
            block.out_channels,
            block.heads,
            depth,
            self.norm_num_groups,
            self.cross_attention_dim,
            self.use_linear_projection,
            self.attn_options(block.heads),
        )
    }
}

impl Unet {
    /// Builds the UNet from diffusers-named weights.
    pub fn new(vb: VarBuilder, config: &UnetConfig) -> Result<Self> {
        let c = config;
        let n = c.blocks.len();
        if n == 0 {
            return Err(candle_core::Error::Msg("the UNet has no blocks".into()));
        }
        let first = c.blocks[0].out_channels;
        let last = c.blocks[n - 1];
        let temb = c.time_embed_dim();
        let conv3 = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let conv_in = candle_nn::conv2d(c.in_channels, first, 3, conv3, vb.pp("conv_in"))?;
        let time_proj = Timesteps::new(first, c.flip_sin_to_cos, c.freq_shift);
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), first, temb)?;
        let add = match c.text_time {
            None => None,
            Some(tt) => Some((
                Timesteps::new(tt.time_embed_dim, c.flip_sin_to_cos, c.freq_shift),
                TimestepEmbedding::new(vb.pp("add_embedding"), tt.input_dim, temb)?,
            )),
        };

        let mut down = Vec::with_capacity(n);
        for (i, b) in c.blocks.iter().enumerate() {
            let vb = vb.pp("down_blocks").pp(i.to_string());
            let mut cin = if i == 0 {
                first
            } else {
                c.blocks[i - 1].out_channels
            };
            let mut resnets = Vec::with_capacity(c.layers_per_block);
            let mut attentions = Vec::new();
            for j in 0..c.layers_per_block {
                resnets.push(c.resnet(
                    vb.pp("resnets").pp(j.to_string()),
                    cin,
                    b.out_channels,
                    1.0,
                )?);
                if b.cross_attn {
                    attentions.push(c.transformer(vb.pp("attentions").pp(j.to_string()), b)?);
                }
                cin = b.out_channels;
            }
            let downsample = if i + 1 < n {
                let cfg = Conv2dConfig {
                    stride: 2,
                    padding: c.downsample_padding,
                    ..Default::default()
                };
                let conv = candle_nn::conv2d(
                    b.out_channels,
                    b.out_channels,
                    3,
                    cfg,
                    vb.pp("downsamplers.0.conv"),
                )?;
                Some((conv, c.downsample_padding))
            } else {
                None
            };
            down.push(DownLevel {
                resnets,
                attentions,
                downsample,
            });
        }

        let mvb = vb.pp("mid_block");
        let mc = last.out_channels;
        let mid = Mid {
            first: c.resnet(mvb.pp("resnets.0"), mc, mc, c.mid_block_scale_factor)?,
            attention: c.transformer_of_depth(
                mvb.pp("attentions.0"),
                &last,
                c.mid_transformer_layers,
            )?,
            second: c.resnet(mvb.pp("resnets.1"), mc, mc, c.mid_block_scale_factor)?,
        };

        let mut up = Vec::with_capacity(n);
        for i in 0..n {
            let b = c.blocks[n - 1 - i];
            let vb = vb.pp("up_blocks").pp(i.to_string());
            let prev = if i == 0 {
                last.out_channels
            } else {
                c.blocks[n - i].out_channels
            };
            let skip_ch = c.blocks[(n - 1 - i).saturating_sub(1)].out_channels;
            let layers = c.layers_per_block + 1;
            let mut resnets = Vec::with_capacity(layers);
            let mut attentions = Vec::new();
            for j in 0..layers {
                let skip = if j + 1 == layers {
                    skip_ch
                } else {
                    b.out_channels
                };
                let cin = if j == 0 { prev } else { b.out_channels };
                resnets.push(c.resnet(
                    vb.pp("resnets").pp(j.to_string()),
                    cin + skip,
                    b.out_channels,
                    1.0,
                )?);
                if b.cross_attn {
                    attentions.push(c.transformer(vb.pp("attentions").pp(j.to_string()), &b)?);
                }
            }
            let upsample = if i + 1 < n {
                Some(candle_nn::conv2d(
                    b.out_channels,
                    b.out_channels,
                    3,
                    conv3,
                    vb.pp("upsamplers.0.conv"),
                )?)
            } else {
                None
            };
            up.push(UpLevel {
                resnets,
                attentions,
                upsample,
            });
        }
        let norm_out =
            candle_nn::group_norm(c.norm_num_groups, first, c.norm_eps, vb.pp("conv_norm_out"))?;
        let conv_out = candle_nn::conv2d(first, c.out_channels, 3, conv3, vb.pp("conv_out"))?;
        Ok(Self {
            config: c.clone(),
            conv_in,
            time_proj,
            time_embedding,
            add,
            down,
            mid,
            up,
            norm_out,
            conv_out,
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &UnetConfig {
        &self.config
    }

    /// The model output for `x` `[B, in, h, w]` at `timestep` with text `context`
    /// `[B, T, cross_attention_dim]`. A UNet with a text/time add-embedding requires
    /// `inputs.text_time`; one without ignores it.
    pub fn forward(
        &self,
        x: &Tensor,
        timestep: f64,
        context: &Tensor,
        inputs: UnetInputs<'_>,
    ) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let factor = 1usize << (self.config.blocks.len() - 1);
        let odd_size = h % factor != 0 || w % factor != 0;
        let x = if self.config.center_input_sample {
            ((x * 2.0)? - 1.0)?
        } else {
            x.clone()
        };

        let t = (Tensor::ones(b, x.dtype(), x.device())? * timestep)?;
        let mut emb = self.time_embedding.forward(&self.time_proj.forward(&t)?)?;
        if let Some((proj, embed)) = &self.add {
            let (pooled, ids) = inputs.text_time.ok_or_else(|| {
                candle_core::Error::Msg(
                    "this UNet needs the pooled text embedding and time ids".into(),
                )
            })?;
            // diffusers: add_time_proj(time_ids.flatten()).reshape(B, -1), after the pooled
            // text embedding, through add_embedding, added to the timestep embedding.
            let ids = proj.forward(&ids.flatten_all()?.to_dtype(x.dtype())?)?;
            let ids = ids.reshape((b, ()))?;
            let add = Tensor::cat(&[pooled, &ids], 1)?;
            emb = (emb + embed.forward(&add)?)?;
        }

        let x = self.conv_in.forward(&x)?;
        let mut skips = vec![x.clone()];
        let mut x = x;
        for level in &self.down {
            for (j, resnet) in level.resnets.iter().enumerate() {
                x = resnet.forward(&x, Some(&emb))?;
                if let Some(attn) = level.attentions.get(j) {
                    x = attn.forward(&x, context)?;
                }
                skips.push(x.clone());
            }
            if let Some((conv, padding)) = &level.downsample {
                if *padding == 0 {
                    x = x
                        .pad_with_zeros(D::Minus1, 0, 1)?
                        .pad_with_zeros(D::Minus2, 0, 1)?;
                }
                x = conv.forward(&x)?;
                skips.push(x.clone());
            }
        }
        if let Some(extra) = inputs.down_residuals {
            if extra.len() != skips.len() {
                return Err(candle_core::Error::Msg(format!(
                    "{} down residuals for {} skip connections",
                    extra.len(),
                    skips.len()
                )));
            }
            skips = skips
                .iter()
                .zip(extra)
                .map(|(s, r)| s + r)
                .collect::<Result<Vec<_>>>()?;
        }
        x = self.mid.first.forward(&x, Some(&emb))?;
        x = self.mid.attention.forward(&x, context)?;
        x = self.mid.second.forward(&x, Some(&emb))?;
        if let Some(r) = inputs.mid_residual {
            x = (r + x)?;
        }

        for level in &self.up {
            for (j, resnet) in level.resnets.iter().enumerate() {
                let skip = skips.pop().ok_or_else(|| {
                    candle_core::Error::Msg("the UNet ran out of skip connections".into())
                })?;
                x = Tensor::cat(&[&x, &skip], 1)?.contiguous()?;
                x = resnet.forward(&x, Some(&emb))?;
                if let Some(attn) = level.attentions.get(j) {
                    x = attn.forward(&x, context)?;
                }
            }
            if let Some(conv) = &level.upsample {
                // Odd latent sizes: upsample to the size of the next skip connection.
                let (_, _, h, w) = x.dims4()?;
                let (th, tw) = match skips.last() {
                    Some(s) if odd_size => {
                        let (_, _, sh, sw) = s.dims4()?;
                        (sh, sw)
                    }
                    _ => (2 * h, 2 * w),
                };
                x = conv.forward(&x.upsample_nearest2d(th, tw)?)?;
            }
        }
        let x = candle_nn::ops::silu(&self.norm_out.forward(&x)?)?;
        self.conv_out.forward(&x)
    }
}
