//! Test support (feature `testing`): tiny random-weight models of each architecture (SD 1.x,
//! SD 2.x with v-prediction, SDXL) built in code and written as diffusers folders, plus the
//! single-file ([`ldm`]) and TAESD ([`taesd`]) writers. The tests of this crate and of the CLI
//! use it; the functions panic on failure.

use crate::clip::ClipText;
use crate::model::SdConfig;
use crate::noise::NvRng;
use crate::unet::Unet;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::stable_diffusion::vae::AutoEncoderKL;
use std::path::Path;

/// `scale` x NV-generator normals of `shape` from `seed`, on the CPU.
pub fn randn_scaled(seed: u64, shape: &[usize], scale: f32) -> Tensor {
    let v: Vec<f32> = NvRng::new(seed)
        .randn_shape(shape)
        .into_iter()
        .map(|x| x * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// NV-generator standard normals of `shape` from `seed`, on the CPU.
pub fn randn(seed: u64, shape: &[usize]) -> Tensor {
    randn_scaled(seed, shape, 1.0)
}

/// The f32 bit patterns of a tensor (for exact comparisons).
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

pub mod ldm;
pub mod taesd;

/// The tiny SD 1.x UNet's diffusers config.
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

/// SD 2.x: per-block heads, linear projections, OpenCLIP (GELU) text encoder, v-prediction.
pub const SD2_UNET_CONFIG: &str = r#"{
  "_class_name": "UNet2DConditionModel",
  "in_channels": 4, "out_channels": 4, "sample_size": 8,
  "block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": [2, 4],
  "cross_attention_dim": 32, "norm_num_groups": 8, "use_linear_projection": true,
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]
}"#;

/// The tiny SD 2.x (OpenCLIP) text encoder's config.
pub const SD2_CLIP_CONFIG: &str = r#"{
  "architectures": ["CLIPTextModel"],
  "vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
  "num_attention_heads": 4, "max_position_embeddings": 77, "projection_dim": 32,
  "hidden_act": "gelu"
}"#;

/// The SD 2.x scheduler config (v-prediction).
pub const SD2_SCHEDULER_CONFIG: &str = r#"{
  "_class_name": "EulerDiscreteScheduler", "beta_schedule": "scaled_linear",
  "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000,
  "prediction_type": "v_prediction"
}"#;

/// SDXL: a plain first level, transformer depth per block, text/time add-embedding whose
/// input is text_encoder_2's projection (40) + 6 x 8 time channels; cross-attention over
/// both encoders' hidden states (32 + 48).
pub const SDXL_UNET_CONFIG: &str = r#"{
  "_class_name": "UNet2DConditionModel",
  "in_channels": 4, "out_channels": 4, "sample_size": 8,
  "block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": [2, 4],
  "transformer_layers_per_block": [1, 2],
  "cross_attention_dim": 80, "norm_num_groups": 8, "use_linear_projection": true,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
  "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
  "projection_class_embeddings_input_dim": 88
}"#;

/// SDXL's VAE config leaves out `scaling_factor`: the SDXL default 0.13025 applies.
pub const SDXL_VAE_CONFIG: &str = r#"{
  "_class_name": "AutoencoderKL",
  "in_channels": 3, "out_channels": 3, "latent_channels": 4,
  "block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "norm_num_groups": 8,
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
}"#;

/// The tiny SDXL second text encoder's config.
pub const SDXL_CLIP2_CONFIG: &str = r#"{
  "architectures": ["CLIPTextModelWithProjection"],
  "vocab_size": 49408, "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3,
  "num_attention_heads": 4, "max_position_embeddings": 77, "projection_dim": 40,
  "hidden_act": "gelu"
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

/// The architectures the tests build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiny {
    /// SD 1.x.
    Sd1,
    /// SD 2.x (v-prediction).
    Sd2,
    /// SDXL (two text encoders).
    Sdxl,
}

impl Tiny {
    /// `(subfolder, config file, contents)` of each config of this model.
    pub fn configs(self) -> Vec<(&'static str, &'static str, &'static str)> {
        match self {
            Tiny::Sd1 => vec![
                ("unet", "config.json", UNET_CONFIG),
                ("vae", "config.json", VAE_CONFIG),
                ("text_encoder", "config.json", CLIP_CONFIG),
            ],
            Tiny::Sd2 => vec![
                ("unet", "config.json", SD2_UNET_CONFIG),
                ("vae", "config.json", VAE_CONFIG),
                ("text_encoder", "config.json", SD2_CLIP_CONFIG),
                ("scheduler", "scheduler_config.json", SD2_SCHEDULER_CONFIG),
            ],
            Tiny::Sdxl => vec![
                ("unet", "config.json", SDXL_UNET_CONFIG),
                ("vae", "config.json", SDXL_VAE_CONFIG),
                ("text_encoder", "config.json", CLIP_CONFIG),
                ("text_encoder_2", "config.json", SDXL_CLIP2_CONFIG),
            ],
        }
    }
}

/// Writes the configs of `arch` under `dir`.
pub fn write_configs(dir: &Path, arch: Tiny) {
    let configs: Vec<_> = arch
        .configs()
        .into_iter()
        .map(|(sub, file, cfg)| (sub, file, cfg.to_string()))
        .collect();
    write_config_files(dir, &configs);
}

fn write_config_files(dir: &Path, configs: &[(&str, &str, String)]) {
    for (sub, file, cfg) in configs {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join(file), cfg).unwrap();
    }
}

/// Writes a tiny model of `arch` under `dir` in the diffusers layout.
pub fn write_tiny(dir: &Path, arch: Tiny) {
    write_configs(dir, arch);
    write_weights(dir, [1, 2, 3]);
}

/// Writes a model of `(subfolder, config file, contents)` configs under `dir` in the diffusers
/// layout (as [`write_tiny`], with configs the caller changed), filled from `seeds` (UNet,
/// VAE, first text encoder; a second text encoder takes the third seed + 1).
pub fn write_model_from(dir: &Path, configs: &[(&str, &str, String)], seeds: [u64; 3]) {
    write_config_files(dir, configs);
    write_weights(dir, seeds);
}

/// Writes an SD 1.x model of the given UNet, VAE and text encoder configs under `dir` in the
/// diffusers layout, each filled from its seed.
pub fn write_model_with(dir: &Path, configs: [&str; 3], seeds: [u64; 3]) {
    let configs: Vec<_> = ["unet", "vae", "text_encoder"]
        .into_iter()
        .zip(configs)
        .map(|(sub, cfg)| (sub, "config.json", cfg.to_string()))
        .collect();
    write_model_from(dir, &configs, seeds);
}

/// Random weights for the configs already under `dir`.
fn write_weights(dir: &Path, seeds: [u64; 3]) {
    let cfg = SdConfig::read_diffusers(dir).unwrap();
    let dev = Device::Cpu;

    let vm = VarMap::new();
    Unet::new(VarBuilder::from_varmap(&vm, DType::F32, &dev), &cfg.unet).unwrap();
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

    for (i, te) in cfg.text_encoders.iter().enumerate() {
        let vm = VarMap::new();
        ClipText::new(VarBuilder::from_varmap(&vm, DType::F32, &dev), &te.clip).unwrap();
        fill_deterministic(&vm, seeds[2] + i as u64);
        vm.save(te.path.parent().unwrap().join("model.safetensors"))
            .unwrap();
    }
}

/// Writes the tiny SD 1.x model under `dir` (deterministic bytes).
pub fn write_tiny_model(dir: &Path) {
    write_tiny(dir, Tiny::Sd1);
}
