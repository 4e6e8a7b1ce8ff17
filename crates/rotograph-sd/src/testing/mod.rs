//! Test support (feature `testing`): a tiny random-weight SD1.5-architecture model built in
//! code, written as a diffusers folder. The tests of this crate and of the CLI use it.

use crate::model::SdConfig;
use crate::noise::NvRng;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::clip::text_model::ClipTextTransformer;
use candle_transformers::models::stable_diffusion::unet_2d::UNet2DConditionModel;
use candle_transformers::models::stable_diffusion::vae::AutoEncoderKL;
use std::path::Path;

pub mod ldm;
pub mod taesd;

/// The tiny UNet's diffusers config.
pub const UNET_CONFIG: &str = r#"{
  "_class_name": "UNet2DConditionModel",
  "in_channels": 4, "out_channels": 4, "sample_size": 8,
  "block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": 8,
  "cross_attention_dim": 32, "norm_num_groups": 8, "norm_eps": 1e-5,
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0
}"#;

/// The tiny VAE's diffusers config.
pub const VAE_CONFIG: &str = r#"{
  "_class_name": "AutoencoderKL",
  "in_channels": 3, "out_channels": 3, "sample_size": 64, "latent_channels": 4,
  "block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "norm_num_groups": 8,
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "scaling_factor": 0.18215
}"#;

/// The tiny CLIP text encoder's transformers config.
pub const CLIP_CONFIG: &str = r#"{
  "architectures": ["CLIPTextModel"],
  "vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "max_position_embeddings": 77, "projection_dim": 32,
  "hidden_act": "quick_gelu"
}"#;

/// The tiny configs with the conventions a single file cannot record (GroupNorm of 32 groups,
/// text-encoder heads `width / 64`, at least 1): a diffusers folder written with them loads
/// like its single-file copy ([`ldm::write_single_file`]).
pub fn single_file_configs() -> [String; 3] {
    let g = |s: &str| s.replace("\"norm_num_groups\": 8", "\"norm_num_groups\": 32");
    [
        g(UNET_CONFIG),
        g(VAE_CONFIG),
        CLIP_CONFIG.replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 1"),
    ]
}

/// Overwrites every variable with values from the NV generator (seeded), in name order: norm
/// weights 1 and biases 0, other matrices `randn / sqrt(fan_in)`, other vectors `0.02 randn`.
pub fn fill_deterministic(varmap: &VarMap, seed: u64) {
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = NvRng::new(seed);
    for name in names {
        let var = &data[name];
        let dims = var.as_tensor().dims().to_vec();
        let n: usize = dims.iter().product();
        let is_norm = name.contains("norm");
        let values: Vec<f32> = if is_norm && name.ends_with(".weight") {
            vec![1.0; n]
        } else if is_norm && name.ends_with(".bias") {
            vec![0.0; n]
        } else if dims.len() >= 2 {
            let scale = 1.0 / ((n / dims[0]) as f32).sqrt();
            rng.randn(n).into_iter().map(|x| x * scale).collect()
        } else {
            rng.randn(n).into_iter().map(|x| x * 0.02).collect()
        };
        let t = Tensor::from_vec(values, dims, &Device::Cpu).unwrap();
        var.set(&t).unwrap();
    }
}

/// Writes the tiny model under `dir` in the diffusers layout (deterministic bytes). Panics on
/// failure: it is for tests.
pub fn write_tiny_model(dir: &Path) {
    write_model_with(dir, [UNET_CONFIG, VAE_CONFIG, CLIP_CONFIG], [1, 2, 3]);
}

/// Writes a model of the given UNet, VAE and text encoder configs under `dir` in the diffusers
/// layout, each filled from its seed.
pub fn write_model_with(dir: &Path, configs: [&str; 3], seeds: [u64; 3]) {
    for (sub, cfg) in ["unet", "vae", "text_encoder"].into_iter().zip(configs) {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join("config.json"), cfg).unwrap();
    }
    let cfg = SdConfig::read_diffusers(dir).unwrap();
    let dev = Device::Cpu;

    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    UNet2DConditionModel::new(
        vb,
        cfg.unet_in_channels,
        cfg.unet_out_channels,
        false,
        cfg.unet.clone(),
    )
    .unwrap();
    fill_deterministic(&vm, seeds[0]);
    vm.save(dir.join("unet/diffusion_pytorch_model.safetensors"))
        .unwrap();

    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    AutoEncoderKL::new(
        vb,
        cfg.vae_in_channels,
        cfg.vae_out_channels,
        cfg.vae.clone(),
    )
    .unwrap();
    fill_deterministic(&vm, seeds[1]);
    vm.save(dir.join("vae/diffusion_pytorch_model.safetensors"))
        .unwrap();

    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    ClipTextTransformer::new(vb.pp("text_model"), &cfg.clip).unwrap();
    fill_deterministic(&vm, seeds[2]);
    vm.save(dir.join("text_encoder/model.safetensors")).unwrap();
}
