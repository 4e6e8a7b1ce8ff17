//! The `sd` backend as the pipeline sees it: [`SdOptions`] (what to load), where a `--model`
//! value points ([`resolve_model`]: a folder or checkpoint file, or a hub id found in the local
//! Hugging Face cache — never the network), the content identity of the model and its VAE for
//! resume keys ([`model_fingerprint`], [`model_identity`]), [`load`] (through the crate's one
//! loader, [`crate::load::load`]) and [`make_stylizer`], the factory the CLI hands to
//! `rotograph::pipeline::stylize_with`.

use crate::config::Prediction;
use crate::img2img::{SdStylizer, SPLIT_CFG_LATENT_AREA};
use crate::load::{LoadOptions, VaeChoice};
use crate::single_file::Arch;
use rotograph::pipeline::Settings;
use rotograph::stylize::Stylizer;
use rotograph::{Error, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What the `sd` backend loads, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdOptions {
    /// `--model`: a diffusers folder, a single-file checkpoint (`.safetensors`, `.ckpt`), or a
    /// hub id (`owner/name`) in the local Hugging Face cache.
    pub model: String,
    /// `--vae`: the model's own autoencoder, a VAE file or folder, or TAESD.
    pub vae: VaeChoice,
    /// `--prediction`: what the UNet predicts; `None` (`auto`) decides from the model.
    pub prediction: Option<Prediction>,
    /// The UNet's attention slice (batch × head rows per attention matmul); `None` computes
    /// each attention in one piece.
    pub attention_slice: Option<usize>,
    /// The latent area (`h × w`) from which the two halves of classifier-free guidance run one
    /// after the other instead of as one batch of 2 (see [`SPLIT_CFG_LATENT_AREA`]).
    pub batch_cfg_below: usize,
}

impl SdOptions {
    /// Options for `model` with the defaults.
    pub fn new(model: impl Into<String>) -> Self {
        SdOptions {
            model: model.into(),
            vae: VaeChoice::Model,
            prediction: None,
            attention_slice: None,
            batch_cfg_below: SPLIT_CFG_LATENT_AREA,
        }
    }

    /// The options a run's settings ask for (`model`, `vae`, `prediction`); errors when the
    /// settings name no model or an unknown prediction type.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let model = settings.model.as_deref().ok_or_else(|| {
            Error::setting(
                "model",
                "the sd backend needs a model: --model PATH (a diffusers folder or a \
                 .safetensors/.ckpt checkpoint) or a hub id already in the local Hugging Face \
                 cache",
            )
        })?;
        let prediction = match settings.prediction.as_deref() {
            None => None,
            Some(p) => Prediction::parse_choice(p).map_err(|e| Error::setting("prediction", e))?,
        };
        Ok(SdOptions {
            vae: settings
                .vae
                .as_deref()
                .map(VaeChoice::parse)
                .unwrap_or_default(),
            prediction,
            attention_slice: settings.attention_slice,
            ..SdOptions::new(model)
        })
    }
}

/// Where a `--model` value points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A diffusers folder (`unet/`, `vae/`, `text_encoder/` with their `config.json`).
    Diffusers(PathBuf),
    /// A single checkpoint file (`.safetensors`, `.ckpt`) in the original LDM layout.
    SingleFile(PathBuf),
}

impl ModelSource {
    /// The folder or file.
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Diffusers(p) | ModelSource::SingleFile(p) => p,
        }
    }
}

/// Whether `spec` has the shape of a Hugging Face hub id: `owner/name`, each part of ASCII
/// letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn is_hub_id(spec: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(spec.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

/// The Hugging Face hub cache folder as `huggingface_hub` finds it: `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HUB_CACHE")
        .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// The snapshot folder of hub model `id` in the cache `cache`: the one `refs/main` names, else
/// the only (or, deterministically, the last by name) folder under `snapshots/`.
fn cached_snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(commit) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let p = snapshots.join(commit.trim());
        if p.is_dir() {
            return Some(p);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Resolves a `--model` value: an existing folder or file, or a hub id found in the local
/// Hugging Face cache ([`hf_hub_cache`]). Nothing is downloaded: a hub id that is not cached is
/// an error that says how to get it. Errors name the value (exit code 2).
pub fn resolve_model(spec: &str) -> Result<ModelSource> {
    let path = Path::new(spec);
    let local = if path.is_dir() || path.is_file() {
        Some(path.to_path_buf())
    } else if is_hub_id(spec) {
        match hf_hub_cache().and_then(|c| cached_snapshot(&c, spec)) {
            Some(p) => Some(p),
            None => {
                let place = hf_hub_cache()
                    .map(|c| format!(" (looked in {})", c.display()))
                    .unwrap_or_default();
                return Err(Error::bad_input(
                    path,
                    format!(
                        "no such model folder or file, and hub id `{spec}` is not in the local \
                         Hugging Face cache{place}; rotograph never downloads: fetch it first \
                         (`huggingface-cli download {spec}`) or pass a local model folder"
                    ),
                ));
            }
        }
    } else {
        None
    };
    let Some(p) = local else {
        return Err(Error::bad_input(
            path,
            "no such model folder or file; give a diffusers folder (with unet/, vae/ and \
             text_encoder/), a .safetensors/.ckpt checkpoint or a hub id already in the local \
             Hugging Face cache",
        ));
    };
    if p.is_file() {
        Ok(ModelSource::SingleFile(p))
    } else if p.join("unet").join("config.json").is_file() {
        Ok(ModelSource::Diffusers(p))
    } else {
        Err(Error::bad_input(
            &p,
            "not a diffusers model folder (no unet/config.json); give a folder with unet/, \
             vae/ and text_encoder/, or a .safetensors/.ckpt checkpoint",
        ))
    }
}

/// The files of a diffusers folder the loader reads (configs, then weights), relative to it;
/// those absent (`text_encoder_2/` outside SDXL, the scheduler config) are skipped.
pub const DIFFUSERS_FILES: &[&str] = &[
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    "text_encoder_2/config.json",
    "scheduler/scheduler_config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
    "text_encoder_2/model.safetensors",
];

/// Files up to this size are hashed whole.
const WHOLE_FILE_LIMIT: u64 = 4 << 20;
/// Samples taken from a larger file (besides its first [`HEAD_BYTES`]).
const SAMPLES: u64 = 64;
/// Bytes per sample.
const SAMPLE_BYTES: usize = 64 << 10;
/// Leading bytes hashed of a large file (a safetensors header: tensor names, shapes, offsets).
const HEAD_BYTES: usize = 1 << 20;

/// Hashes one file into `h`: its size, then all of it when small, else its first MiB and 64
/// evenly spaced 64 KiB samples (the last ending at the file's end).
fn hash_file(h: &mut blake3::Hasher, path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    h.update(&len.to_le_bytes());
    if len <= WHOLE_FILE_LIMIT {
        let mut buf = Vec::with_capacity(len as usize);
        f.read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
        h.update(&buf);
        return Ok(());
    }
    let mut buf = vec![0u8; HEAD_BYTES];
    f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
    h.update(&buf);
    buf.truncate(SAMPLE_BYTES);
    let span = len - SAMPLE_BYTES as u64;
    for i in 0..SAMPLES {
        let at = span * (i + 1) / SAMPLES;
        f.seek(SeekFrom::Start(at))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| Error::io(path, e))?;
        h.update(&buf);
    }
    Ok(())
}

/// The content identity of a model: blake3 over the files the loader reads (each named by its
/// relative path, with its size; small files whole, weights by their header and 64 spread
/// samples — about 5 MB read per file, so a 4 GB checkpoint costs milliseconds). A retrained or
/// replaced model changes it; copying or moving the model does not.
pub fn model_fingerprint(source: &ModelSource) -> Result<String> {
    let mut h = blake3::Hasher::new();
    match source {
        ModelSource::Diffusers(dir) => {
            h.update(b"diffusers\0");
            for rel in DIFFUSERS_FILES {
                let p = dir.join(rel);
                if p.is_file() {
                    h.update(rel.as_bytes());
                    h.update(b"\0");
                    hash_file(&mut h, &p)?;
                }
            }
        }
        ModelSource::SingleFile(p) => {
            h.update(b"file\0");
            hash_file(&mut h, p)?;
        }
    }
    Ok(format!("blake3:{}", &h.finalize().to_hex()[..32]))
}

/// Hashes the weight and config files directly in `dir` (`.json`, `.safetensors`, `.ckpt`,
/// `.pt`, `.pth`), in name order, each with its name: a VAE or TAESD folder. A model folder
/// given as a VAE lends its `vae/`, as the loader does.
fn hash_folder(h: &mut blake3::Hasher, dir: &Path) -> Result<()> {
    let sub = dir.join("vae");
    let dir = if sub.join("config.json").is_file() {
        sub
    } else {
        dir.to_path_buf()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["json", "safetensors", "ckpt", "pt", "pth"]
                        .contains(&e.to_ascii_lowercase().as_str())
                })
        })
        .collect();
    files.sort();
    for p in files {
        h.update(p.file_name().unwrap_or_default().as_encoded_bytes());
        h.update(b"\0");
        hash_file(h, &p)?;
    }
    Ok(())
}

/// The content identity of a loaded model as the frames depend on it: the model's
/// [`model_fingerprint`], and — only when they differ from the defaults, so a plain model's
/// identity is its fingerprint — the replacement autoencoder's files (a VAE file, a VAE or
/// TAESD folder; `taesd` is found as the loader finds it, from the model's path and family
/// `arch`) and a resolved prediction type other than noise.
pub fn model_identity(
    source: &ModelSource,
    vae: &VaeChoice,
    arch: Arch,
    prediction: Prediction,
) -> Result<String> {
    let model = model_fingerprint(source)?;
    if *vae == VaeChoice::Model && prediction != Prediction::V {
        return Ok(model);
    }
    let mut h = blake3::Hasher::new();
    h.update(model.as_bytes());
    match vae {
        VaeChoice::Model => {}
        VaeChoice::File(p) if p.is_dir() => {
            h.update(b"\0vae-folder\0");
            hash_folder(&mut h, p)?;
        }
        VaeChoice::File(p) => {
            h.update(b"\0vae-file\0");
            hash_file(&mut h, p)?;
        }
        VaeChoice::Taesd(dir) => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => crate::load::taesd_dir(source.path(), arch)?,
            };
            h.update(b"\0taesd\0");
            hash_folder(&mut h, &dir)?;
        }
    }
    if prediction == Prediction::V {
        h.update(b"\0v-prediction");
    }
    Ok(format!("blake3:{}", &h.finalize().to_hex()[..32]))
}

/// Loads the model `options` name on the CPU, once, through [`crate::load::load`] (a diffusers
/// folder or a single-file checkpoint, with `options.vae` and `options.prediction`): the
/// stylizer carries the model's [`model_identity`]. Noise- and v-prediction models both run:
/// the samplers take the model's denoised estimate ([`crate::model::SdModel::denoised`]).
pub fn load(options: &SdOptions) -> Result<SdStylizer> {
    let source = resolve_model(&options.model)?;
    let load_options = LoadOptions {
        vae: options.vae.clone(),
        prediction: options.prediction,
        attention_slice: options.attention_slice,
    };
    let loaded = crate::load::load(source.path(), &load_options, &crate::default_device())?;
    let identity = model_identity(&source, &options.vae, loaded.arch, loaded.prediction)?;
    Ok(SdStylizer::new(loaded.model)
        .with_identity(identity)
        .with_batch_cfg_below(options.batch_cfg_below))
}

/// The pipeline's stylizer factory with the `sd` backend added: `backend = "sd"` loads the
/// settings' model (once per run); other backends come from `rotograph::pipeline::make_stylizer`.
pub fn make_stylizer(settings: &Settings) -> Result<Box<dyn Stylizer>> {
    if settings.backend != "sd" {
        return rotograph::pipeline::make_stylizer(settings);
    }
    Ok(Box::new(load(&SdOptions::from_settings(settings)?)?))
}
