//! One entry point for every model format: [`load()`] takes a diffusers folder, a single-file
//! `.safetensors` or a `.ckpt`, and an optional replacement autoencoder ([`VaeChoice`]).

use crate::config::{read_value as read_json, scheduler_prediction, vae_config_from_json};
use crate::model::{ModelError, ModelParts, Prediction, SdConfig, SdModel, WeightsPart};
use crate::single_file::{self, Arch, Component, SingleFile};
use crate::taesd::Taesd;
use crate::unet::UnetInputs;
use crate::vae::Vae;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};

/// Which autoencoder to use (the CLI's `--vae`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum VaeChoice {
    /// The model's own VAE.
    #[default]
    Model,
    /// A separate VAE: a `.safetensors`/`.ckpt` file in LDM naming (`encoder.*`/`decoder.*`,
    /// optionally below `first_stage_model.`), a diffusers VAE folder (`config.json` +
    /// `diffusion_pytorch_model.safetensors`) or model folder (its `vae/`), or a TAESD folder
    /// (taken as [`VaeChoice::Taesd`]).
    File(PathBuf),
    /// TAESD: from the given folder, or (`None`) from a `taesd/` folder (`taesdxl/` for SDXL)
    /// inside a diffusers model folder or beside a single-file checkpoint.
    Taesd(Option<PathBuf>),
}

impl VaeChoice {
    /// Reads a `--vae` argument: `taesd` → [`VaeChoice::Taesd`] (weights found beside the
    /// model), `model`/`auto`/empty → [`VaeChoice::Model`], anything else a path.
    pub fn parse(arg: &str) -> VaeChoice {
        match arg.trim() {
            "taesd" | "taesdxl" => VaeChoice::Taesd(None),
            "" | "auto" | "model" => VaeChoice::Model,
            p => VaeChoice::File(PathBuf::from(p)),
        }
    }
}

/// Options of [`load()`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The autoencoder.
    pub vae: VaeChoice,
    /// The prediction type; `None` (the default, `auto`) decides from the model (see
    /// [`load()`] and [`Prediction::parse_choice`]).
    pub prediction: Option<Prediction>,
    /// The UNet's attention slice (batch × head rows per attention matmul); `None` computes
    /// each attention in one piece.
    pub attention_slice: Option<usize>,
}

/// A loaded model and what was found out about it.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: SdModel,
    /// Its family.
    pub arch: Arch,
    /// The prediction type, resolved; the model uses it (`model.config.prediction`).
    pub prediction: Prediction,
}

fn not_found(path: &Path, why: &str) -> ModelError {
    ModelError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, why.to_string()),
    }
}

/// Loads a model from `path`:
/// - a folder → the diffusers layout ([`SdModel::load_diffusers`]);
/// - `*.safetensors`, `*.ckpt`, `*.pt`, `*.pth` → a single-file checkpoint in the original
///   LDM layout ([`SingleFile`]), the family detected from its keys.
///
/// `options.vae` replaces the autoencoder. `options.prediction = None` (auto) resolves as Automatic1111
/// does: SD1 and SDXL predict the noise; a diffusers folder's `scheduler/scheduler_config.json`
/// `prediction_type` decides when present; for SD2, a `NAME.yaml` beside the checkpoint with
/// `parameterization: "v"` decides, and otherwise A1111's probe of the UNet
/// ([`single_file::v_prediction_probe`]). Errors name the file and say what to do.
pub fn load(path: &Path, options: &LoadOptions, device: &Device) -> Result<Loaded, ModelError> {
    let (mut model, arch, stated) = if path.is_dir() {
        let stated = scheduler_prediction(path)?;
        let model = SdModel::load_diffusers_with(path, device, options.attention_slice)?;
        let arch = model.architecture();
        (model, arch, stated)
    } else if path.is_file() {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !["safetensors", "ckpt", "pt", "pth"].contains(&ext.as_str()) {
            return Err(ModelError::Config {
                path: path.to_path_buf(),
                why: "not a model: expected a diffusers folder, a .safetensors or a .ckpt file"
                    .into(),
            });
        }
        let file = SingleFile::open(path)?;
        let stated = single_file::yaml_says_v(path).map(|v| {
            if v {
                Prediction::V
            } else {
                Prediction::Epsilon
            }
        });
        let arch = file.arch;
        (load_single(file, options, device)?, arch, stated)
    } else {
        return Err(not_found(
            path,
            "no such model: give a diffusers folder, a .safetensors or a .ckpt file",
        ));
    };
    match &options.vae {
        VaeChoice::Model => {}
        VaeChoice::File(p) if p.is_dir() && !looks_like_taesd(p) => {
            let vae = diffusers_vae(p, &model.config, device)?;
            model.set_vae(vae);
        }
        VaeChoice::File(p) if p.is_dir() => model.set_vae(tiny(p, &model.config, device)?),
        VaeChoice::File(p) => {
            let c = single_file::open_vae_file(p, model.config.scaling_factor)?;
            model.set_vae(component_vae(c, p, &model.config, device)?);
        }
        VaeChoice::Taesd(dir) => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => taesd_dir(path, arch)?,
            };
            model.set_vae(tiny(&dir, &model.config, device)?);
        }
    }
    let prediction = match (options.prediction, arch, stated) {
        (Some(p), _, _) | (None, _, Some(p)) => p,
        (None, Arch::Sd1 | Arch::Sdxl, None) => Prediction::Epsilon,
        (None, Arch::Sd2, None) => probe(&model)?,
    };
    model.config.prediction = prediction;
    Ok(Loaded {
        model,
        arch,
        prediction,
    })
}

/// TAESD from `dir`, checked against the model's latent channels.
fn tiny(dir: &Path, config: &SdConfig, device: &Device) -> Result<Vae, ModelError> {
    let t = Taesd::load(dir, device)?;
    check_latents(dir, t.latent_channels(), config)?;
    Ok(Vae::Tiny(t))
}

/// A1111's v-prediction probe (see [`single_file::v_prediction_probe`]).
fn probe(model: &SdModel) -> Result<Prediction, ModelError> {
    let dev = model.device();
    let c = model.config.unet.in_channels;
    let x = (Tensor::ones((1, c, 8, 8), DType::F32, dev)? * 0.5)?;
    let ctx = (Tensor::ones(
        (1, 2, model.config.unet.cross_attention_dim),
        DType::F32,
        dev,
    )? * 0.5)?;
    let out = model.unet_with(&x, 999.0, &ctx, UnetInputs::default())?;
    Ok(if single_file::v_prediction_probe(&out)? {
        Prediction::V
    } else {
        Prediction::Epsilon
    })
}

fn looks_like_taesd(dir: &Path) -> bool {
    let cfg = read_json(&dir.join("config.json")).ok();
    cfg.is_some_and(|c| c["_class_name"] == "AutoencoderTiny")
        || std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with("_decoder.safetensors")
            })
        })
}

/// `taesd/` (SD1/SD2) or `taesdxl/` (SDXL) inside a model folder or beside a model file;
/// an error saying where to put it when there is none.
pub(crate) fn taesd_dir(model: &Path, arch: Arch) -> Result<PathBuf, ModelError> {
    let name = if arch == Arch::Sdxl {
        "taesdxl"
    } else {
        "taesd"
    };
    let base = if model.is_dir() {
        model.to_path_buf()
    } else {
        model.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let dir = base.join(name);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(not_found(
            &dir,
            &format!(
                "--vae taesd needs the TAESD weights in this folder (nothing is downloaded): \
                 put the diffusers AutoencoderTiny files (config.json + \
                 diffusion_pytorch_model.safetensors from madebyollin/{name}) or \
                 {name}_encoder.safetensors + {name}_decoder.safetensors there, or pass \
                 --vae PATH/TO/TAESD-FOLDER"
            ),
        ))
    }
}

fn check_latents(path: &Path, latent: usize, config: &SdConfig) -> Result<(), ModelError> {
    if latent != config.vae.latent_channels {
        return Err(ModelError::Config {
            path: path.to_path_buf(),
            why: format!(
                "this VAE has {latent} latent channels but the model's UNet needs {}",
                config.vae.latent_channels
            ),
        });
    }
    Ok(())
}

/// A diffusers VAE folder (`config.json` + `diffusion_pytorch_model.safetensors`, or a model
/// folder's `vae/`). The model's
/// scaling factor is kept (it belongs to the latent space the UNet was trained in).
fn diffusers_vae(dir: &Path, config: &SdConfig, device: &Device) -> Result<Vae, ModelError> {
    // A whole diffusers model folder lends its `vae/`.
    let sub = dir.join("vae");
    let dir = if sub.join("config.json").is_file() {
        &sub
    } else {
        dir
    };
    let cfg_path = dir.join("config.json");
    let (cfg, _) = vae_config_from_json(&cfg_path, read_json(&cfg_path)?)?;
    check_latents(&cfg_path, cfg.latent_channels, config)?;
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    if !weights.is_file() {
        return Err(not_found(&weights, "VAE weights not found"));
    }
    let vb = WeightsPart::safetensors(&weights, device)?.vb;
    Vae::kl(&cfg, 3, 3, config.scaling_factor, vb, &weights, device)
}

/// A VAE component of a single file or a separate VAE file.
fn component_vae(
    c: Component,
    path: &Path,
    config: &SdConfig,
    device: &Device,
) -> Result<Vae, ModelError> {
    let (cfg, _) = vae_config_from_json(path, c.config.clone())?;
    check_latents(path, cfg.latent_channels, config)?;
    let vb = renamed(c, path, device).vb;
    Vae::kl(&cfg, 3, 3, config.scaling_factor, vb, path, device)
}

/// A single-file component's renamed weights as a [`WeightsPart`] named by `path`.
fn renamed(c: Component, path: &Path, device: &Device) -> WeightsPart<'static> {
    WeightsPart {
        vb: VarBuilder::from_backend(Box::new(c.weights), DType::F32, device.clone()),
        source: path.to_path_buf(),
    }
}

fn load_single(
    file: SingleFile,
    options: &LoadOptions,
    device: &Device,
) -> Result<SdModel, ModelError> {
    let path = file.path.clone();
    let bad = |why: String| ModelError::Config {
        path: path.clone(),
        why,
    };
    // The model's VAE, or (for a file without one) the replacement's config.
    let own = match (file.vae, &options.vae) {
        (Some(v), _) => v,
        (None, VaeChoice::File(p)) if p.is_file() => {
            single_file::open_vae_file(p, file.arch.scaling_factor())?
        }
        (None, _) => return Err(bad(
            "the checkpoint has no VAE (no first_stage_model.* keys): pass a VAE file with --vae"
                .into(),
        )),
    };
    let mut encoders = vec![file.text_encoder];
    encoders.extend(file.text_encoder_2);
    let configs = encoders
        .iter()
        .map(|c| (path.clone(), c.config.clone()))
        .collect();
    // The prediction type is decided by `load` (the keys cannot tell).
    let mut config = SdConfig::from_json(
        (&path, file.unet.config.clone()),
        (&path, own.config.clone()),
        configs,
        Prediction::Epsilon,
    )?;
    config.unet.sliced_attention_size = options.attention_slice;
    let parts = ModelParts {
        unet: renamed(file.unet, &path, device),
        vae: renamed(own, &path, device),
        text_encoders: encoders
            .into_iter()
            .map(|c| renamed(c, &path, device))
            .collect(),
    };
    SdModel::from_parts(config, parts, device)
}
