//! Peak memory of one guided UNet evaluation (batch 2, as classifier-free guidance runs it) of
//! the SD 1.5 architecture with random weights, at a given image size.
//!
//! ```sh
//! cargo run --release -p rotograph-sd --example sd_unet_memory -- 512 [SLICE] [split]
//! ```
//!
//! Prints the resident set after building the weights and the peak (`VmHWM`) after the
//! evaluation, in MiB. `SLICE` sets the UNet config's `sliced_attention_size` (attention
//! computed that many batch × head rows at a time); `split` runs the two CFG halves one after the
//! other (batch 1 twice). Speed and memory do not depend on weight values.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rotograph_sd::model::SdConfig;
use rotograph_sd::unet::{Unet, UnetInputs};
use std::collections::HashMap;
use std::time::Instant;

/// A field of `/proc/self/status` in MiB (Linux).
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(512);
    let split = args.iter().any(|a| a == "split");
    let slice: Option<usize> = args.get(2).and_then(|s| s.parse().ok());
    let dev = Device::Cpu;
    // The SD 1.5 configs (runwayml/stable-diffusion-v1-5), read as the loader reads them.
    let dir = std::env::temp_dir().join(format!("sd15-configs-{}", std::process::id()));
    for (sub, text) in [("unet", UNET), ("vae", VAE), ("text_encoder", CLIP)] {
        std::fs::create_dir_all(dir.join(sub))?;
        std::fs::write(dir.join(sub).join("config.json"), text)?;
    }
    let mut cfg = SdConfig::read_diffusers(&dir).map_err(candle_core::Error::wrap)?;
    std::fs::remove_dir_all(&dir)?;
    cfg.unet.sliced_attention_size = slice;
    // Random weights from a VarMap, then detached: the model must hold plain tensors, as the
    // safetensors loader gives them (results computed from `Var`s keep their whole op graph —
    // every activation — alive for backpropagation).
    let weights: HashMap<String, Tensor> = {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        Unet::new(vb, &cfg.unet)?;
        let data = vm.data().lock().expect("varmap lock");
        data.iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect()
    };
    let vb = VarBuilder::from_tensors(weights, DType::F32, &dev);
    let unet = Unet::new(vb, &cfg.unet)?;
    let weights = status_mib("VmRSS:");
    let lat = size / 8;
    let x = Tensor::randn(0f32, 1.0, (2, 4, lat, lat), &dev)?;
    let ctx = Tensor::randn(0f32, 1.0, (2, 77, 768), &dev)?;
    let t0 = Instant::now();
    // `split`: the two CFG halves as two batch-1 evaluations, as the backend runs large latents.
    let out = if split {
        let a = unet.forward(
            &x.narrow(0, 0, 1)?,
            500.0,
            &ctx.narrow(0, 0, 1)?,
            UnetInputs::default(),
        )?;
        let b = unet.forward(
            &x.narrow(0, 1, 1)?,
            500.0,
            &ctx.narrow(0, 1, 1)?,
            UnetInputs::default(),
        )?;
        Tensor::cat(&[a, b], 0)?
    } else {
        unet.forward(&x, 500.0, &ctx, UnetInputs::default())?
    };
    let secs = t0.elapsed().as_secs_f64();
    let sum = out.sum_all()?.to_scalar::<f32>()?;
    println!(
        "size {size}x{size} slice {slice:?} split {split}: weights RSS {weights:.0} MiB, peak RSS {:.0} MiB, \
         UNet batch 2 {secs:.1} s (checksum {sum:.3})",
        status_mib("VmHWM:")
    );
    Ok(())
}

const UNET: &str = r#"{"in_channels": 4, "out_channels": 4,
  "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "attention_head_dim": 8,
  "cross_attention_dim": 768, "norm_num_groups": 32, "norm_eps": 1e-5,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0}"#;

const VAE: &str = r#"{"in_channels": 3, "out_channels": 3, "latent_channels": 4,
  "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "scaling_factor": 0.18215}"#;

const CLIP: &str = r#"{"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
  "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
  "projection_dim": 768, "hidden_act": "quick_gelu"}"#;
