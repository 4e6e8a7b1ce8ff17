//! Our top-level conditional UNet (diffusers `UNet2DConditionModel` layout), assembled from
//! candle-transformers' public building blocks (`unet_2d_blocks`, `embeddings`).
//!
//! candle-transformers 0.11's own `UNet2DConditionModel` covers SD 1.x/2.x but has no
//! additional embedding, one transformer depth per block and a mid block that follows the
//! last down block. SDXL needs the `text_time` add-embedding (pooled text embedding and six
//! size/crop "time ids"), per-block `transformer_layers_per_block`; inpainting UNets have 9
//! input channels. This UNet adds those and keeps ControlNet residual inputs and sliced
//! attention. On an SD 1.x config it computes exactly what candle's does (tested).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, GroupNorm, VarBuilder};
use candle_transformers::models::stable_diffusion::embeddings::{TimestepEmbedding, Timesteps};
use candle_transformers::models::stable_diffusion::unet_2d_blocks::{
    CrossAttnDownBlock2D, CrossAttnDownBlock2DConfig, CrossAttnUpBlock2D, CrossAttnUpBlock2DConfig,
    DownBlock2D, DownBlock2DConfig, UNetMidBlock2DCrossAttn, UNetMidBlock2DCrossAttnConfig,
    UpBlock2D, UpBlock2DConfig,
};

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
}

impl UnetConfig {
    /// Channels of the timestep embedding (4x the first level's).
    pub fn time_embed_dim(&self) -> usize {
        self.blocks.first().map_or(0, |b| b.out_channels * 4)
    }
}

#[derive(Debug)]
enum Down {
    Basic(DownBlock2D),
    Cross(CrossAttnDownBlock2D),
}

#[derive(Debug)]
enum Up {
    Basic(UpBlock2D),
    Cross(CrossAttnUpBlock2D),
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
    down: Vec<Down>,
    mid: UNetMidBlock2DCrossAttn,
    up: Vec<Up>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

fn slice_size(config: &UnetConfig, heads: usize) -> Option<usize> {
    match config.sliced_attention_size {
        Some(0) => Some((heads / 2).max(1)),
        other => other,
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
            let in_ch = if i == 0 {
                first
            } else {
                c.blocks[i - 1].out_channels
            };
            let cfg = DownBlock2DConfig {
                num_layers: c.layers_per_block,
                resnet_eps: c.norm_eps,
                resnet_groups: c.norm_num_groups,
                add_downsample: i + 1 < n,
                downsample_padding: c.downsample_padding,
                ..Default::default()
            };
            down.push(if b.cross_attn {
                let cfg = CrossAttnDownBlock2DConfig {
                    downblock: cfg,
                    attn_num_head_channels: b.heads,
                    cross_attention_dim: c.cross_attention_dim,
                    sliced_attention_size: slice_size(c, b.heads),
                    use_linear_projection: c.use_linear_projection,
                    transformer_layers_per_block: b.transformer_layers,
                };
                Down::Cross(CrossAttnDownBlock2D::new(
                    vb,
                    in_ch,
                    b.out_channels,
                    Some(temb),
                    false,
                    cfg,
                )?)
            } else {
                Down::Basic(DownBlock2D::new(
                    vb,
                    in_ch,
                    b.out_channels,
                    Some(temb),
                    cfg,
                )?)
            });
        }

        let mid_cfg = UNetMidBlock2DCrossAttnConfig {
            resnet_eps: c.norm_eps,
            output_scale_factor: c.mid_block_scale_factor,
            cross_attn_dim: c.cross_attention_dim,
            attn_num_head_channels: last.heads,
            resnet_groups: Some(c.norm_num_groups),
            use_linear_projection: c.use_linear_projection,
            transformer_layers_per_block: c.mid_transformer_layers,
            sliced_attention_size: slice_size(c, last.heads),
            ..Default::default()
        };
        let mid = UNetMidBlock2DCrossAttn::new(
            vb.pp("mid_block"),
            last.out_channels,
            Some(temb),
            false,
            mid_cfg,
        )?;

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
            let cfg = UpBlock2DConfig {
                num_layers: c.layers_per_block + 1,
                resnet_eps: c.norm_eps,
                resnet_groups: c.norm_num_groups,
                add_upsample: i + 1 < n,
                ..Default::default()
            };
            up.push(if b.cross_attn {
                let cfg = CrossAttnUpBlock2DConfig {
                    upblock: cfg,
                    attn_num_head_channels: b.heads,
                    cross_attention_dim: c.cross_attention_dim,
                    sliced_attention_size: slice_size(c, b.heads),
                    use_linear_projection: c.use_linear_projection,
                    transformer_layers_per_block: b.transformer_layers,
                };
                Up::Cross(CrossAttnUpBlock2D::new(
                    vb,
                    skip_ch,
                    prev,
                    b.out_channels,
                    Some(temb),
                    false,
                    cfg,
                )?)
            } else {
                Up::Basic(UpBlock2D::new(
                    vb,
                    skip_ch,
                    prev,
                    b.out_channels,
                    Some(temb),
                    cfg,
                )?)
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
        let n = self.config.blocks.len();
        let factor = 1usize << (n - 1);
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
        for block in &self.down {
            let (y, res) = match block {
                Down::Basic(d) => d.forward(&x, Some(&emb))?,
                Down::Cross(d) => d.forward(&x, Some(&emb), Some(context))?,
            };
            skips.extend(res);
            x = y;
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
        let mut x = self.mid.forward(&x, Some(&emb), Some(context))?;
        if let Some(r) = inputs.mid_residual {
            x = (r + x)?;
        }

        let per_up = self.config.layers_per_block + 1;
        for (i, block) in self.up.iter().enumerate() {
            let res = skips.split_off(skips.len().saturating_sub(per_up));
            // Odd latent sizes: upsample to the size of the next skip connection.
            let size = match skips.last() {
                Some(s) if i + 1 < n && odd_size => {
                    let (_, _, sh, sw) = s.dims4()?;
                    Some((sh, sw))
                }
                _ => None,
            };
            x = match block {
                Up::Basic(u) => u.forward(&x, &res, Some(&emb), size)?,
                Up::Cross(u) => u.forward(&x, &res, Some(&emb), size, Some(context))?,
            };
        }
        let x = candle_nn::ops::silu(&self.norm_out.forward(&x)?)?;
        self.conv_out.forward(&x)
    }
}
