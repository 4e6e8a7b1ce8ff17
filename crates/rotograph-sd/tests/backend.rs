//! The sd backend as the pipeline sees it: model resolution (folders, the local Hugging Face
//! cache, never the network), model identity, the stylizer factory and a pipeline run.

mod common;

use rotograph::pipeline::{open_run, stylize_source, Settings};
use rotograph::progress::NoProgress;
use rotograph::stylize::Img2ImgParams;
use rotograph_sd::backend::{
    is_hub_id, make_stylizer, model_fingerprint, resolve_model, ModelSource,
};
use std::path::Path;

fn tiny(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("tiny");
    common::write_tiny_model(&p);
    p
}

#[test]
fn hub_ids_resolve_from_the_local_cache_only() {
    assert!(is_hub_id("runwayml/stable-diffusion-v1-5"));
    assert!(is_hub_id("stabilityai/sd-turbo"));
    for not in ["tiny/", "/abs/path", "a/b/c", "./x", "x", "../up", "a b/c"] {
        assert!(!is_hub_id(not), "{not}");
    }
    let cache = tempfile::tempdir().unwrap();
    // This is the only test in this binary that reads the cache variables.
    std::env::set_var("HF_HUB_CACHE", cache.path());

    // Not cached: a clear error that says how to get it, naming the id; exit code 2.
    let err = resolve_model("someone/some-model").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("someone/some-model"), "{msg}");
    assert!(
        msg.contains("huggingface-cli download someone/some-model"),
        "{msg}"
    );
    assert!(msg.contains(&cache.path().display().to_string()), "{msg}");
    assert_eq!(err.exit_code(), 2);

    // Cached in the hub layout: refs/main names the snapshot.
    let repo = cache.path().join("models--someone--some-model");
    let snap = repo.join("snapshots").join("0123abcd");
    common::write_tiny_model(&snap);
    std::fs::create_dir_all(repo.join("snapshots").join("ffff0000")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "0123abcd\n").unwrap();
    assert_eq!(
        resolve_model("someone/some-model").unwrap(),
        ModelSource::Diffusers(snap.clone())
    );
    // The same bytes as a folder elsewhere have the same identity.
    let other = tempfile::tempdir().unwrap();
    let local = tiny(other.path());
    assert_eq!(
        model_fingerprint(&ModelSource::Diffusers(snap)).unwrap(),
        model_fingerprint(&ModelSource::Diffusers(local)).unwrap()
    );
    std::env::remove_var("HF_HUB_CACHE");
}

#[test]
fn bad_model_paths_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let err = resolve_model(missing.to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("no-such-model"), "{err}");
    assert_eq!(err.exit_code(), 2);
    // A folder that is not a diffusers model.
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let err = resolve_model(dir.path().join("empty").to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("unet/config.json"), "{err}");
    // The sd backend without a model says which setting is missing.
    let s = Settings {
        backend: "sd".into(),
        ..Settings::default()
    };
    let err = make_stylizer(&s).err().unwrap();
    assert!(err.to_string().contains("model"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn identity_follows_the_weights_not_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path());
    let id = |p: &Path| model_fingerprint(&ModelSource::Diffusers(p.to_path_buf())).unwrap();
    let first = id(&a);
    assert!(first.starts_with("blake3:"), "{first}");
    // Moved: same identity.
    let b = dir.path().join("moved");
    std::fs::rename(&a, &b).unwrap();
    assert_eq!(id(&b), first);
    // One weight changed in the middle of the UNet file: another identity.
    let unet = b.join("unet/diffusion_pytorch_model.safetensors");
    let mut bytes = std::fs::read(&unet).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&unet, &bytes).unwrap();
    assert_ne!(id(&b), first);
    // A config change too.
    let b2 = dir.path().join("again");
    common::write_tiny_model(&b2);
    assert_eq!(id(&b2), first);
    let cfg = b2.join("vae/config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("0.18215", "0.18216")).unwrap();
    assert_ne!(id(&b2), first);
}

/// A pipeline run with `backend = "sd"`: the identity is recorded and keys the frames, so an
/// unchanged model skips and a changed one re-renders.
#[test]
fn pipeline_records_the_model_identity_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for i in 1..=2u32 {
        let img = image::RgbaImage::from_fn(32, 32, |x, y| {
            image::Rgba([(x * 8) as u8, (y * 8) as u8, (i * 60) as u8, 255])
        });
        img.save(frames.join(format!("{i:05}.png"))).unwrap();
    }
    let out = dir.path().join("out");
    let settings = Settings {
        backend: "sd".into(),
        model: Some(model.to_str().unwrap().into()),
        img2img: Img2ImgParams {
            seed: 1234,
            subseed: 0,
            denoise: 0.4,
            steps: 4,
            ..Img2ImgParams::default()
        },
        ..Settings::default()
    };
    let r =
        rotograph::pipeline::stylize_with(&frames, &out, &settings, &make_stylizer, &NoProgress)
            .unwrap();
    assert_eq!((r.rendered, r.skipped), (2, 0));
    let toml = std::fs::read_to_string(out.join("rotograph.toml")).unwrap();
    let saved = Settings::from_toml(&toml, Path::new("rotograph.toml")).unwrap();
    let identity = saved.model_identity.clone().expect("identity recorded");
    assert_eq!(
        identity,
        model_fingerprint(&ModelSource::Diffusers(model.clone())).unwrap()
    );
    let r =
        rotograph::pipeline::stylize_with(&frames, &out, &settings, &make_stylizer, &NoProgress)
            .unwrap();
    assert_eq!((r.rendered, r.skipped), (0, 2), "same model: nothing to do");

    // Another model (other weights) under the same path re-renders.
    let vae = model.join("vae/diffusion_pytorch_model.safetensors");
    let mut bytes = std::fs::read(&vae).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x01;
    std::fs::write(&vae, &bytes).unwrap();
    let stylizer = make_stylizer(&settings).unwrap();
    let mut s = saved;
    s.model_identity = stylizer.identity();
    assert_ne!(s.model_identity.as_deref(), Some(identity.as_str()));
    let run = open_run(&out, &mut s, stylizer.as_ref()).unwrap();
    let source = rotograph::frames::open_source(&frames, &s.folder_options(), &s.extract).unwrap();
    let r = stylize_source(source, &run, &s, stylizer.as_ref(), &NoProgress, None).unwrap();
    assert_eq!((r.rendered, r.skipped), (2, 0), "changed model re-renders");
}

/// Sliced attention (`LoadOptions::attention_slice` → the UNet's `sliced_attention_size`)
/// computes the same prediction as whole attention, for a slice that divides the batch × head
/// rows (1) and one that leaves a remainder (3 of 8), and differs from a model that was not
/// loaded from the same weights (the comparison can fail).
#[test]
fn sliced_attention_matches_full_attention() {
    use candle_core::{Device, Tensor};
    use rotograph_sd::model::SdModel;
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let full = SdModel::load_diffusers(&model, &Device::Cpu).unwrap();
    let mut rng = rotograph_sd::noise::NvRng::new(5);
    let x = Tensor::from_vec(rng.randn(2 * 4 * 8 * 8), (2, 4, 8, 8), &Device::Cpu).unwrap();
    let ctx = Tensor::from_vec(rng.randn(2 * 77 * 32), (2, 77, 32), &Device::Cpu).unwrap();
    let a = full.unet(&x, 500.0, &ctx).unwrap();
    let max_diff = |b: &Tensor| {
        (&a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    for slice in [1, 3] {
        let sliced = SdModel::load_diffusers_with(&model, &Device::Cpu, Some(slice)).unwrap();
        let b = sliced.unet(&x, 500.0, &ctx).unwrap();
        assert!(max_diff(&b) < 1e-5, "slice {slice}: {}", max_diff(&b));
    }
    // The same input at another timestep differs: the check above can fail.
    let c = full.unet(&x, 100.0, &ctx).unwrap();
    assert!(max_diff(&c) > 1e-3);
}

/// Large files are fingerprinted by their size, head and spread samples: a changed header,
/// sample or length changes the identity, and the result does not depend on the file's name.
#[test]
fn large_weight_files_are_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let len = 10 << 20;
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let id = |name: &str, b: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        model_fingerprint(&ModelSource::SingleFile(p)).unwrap()
    };
    let base = id("a.safetensors", &bytes);
    assert_eq!(id("b.safetensors", &bytes), base);
    let mut head = bytes.clone();
    head[1000] ^= 1;
    assert_ne!(id("c.safetensors", &head), base);
    // The last sample ends at the end of the file.
    let mut tail = bytes.clone();
    tail[len - 1] ^= 1;
    assert_ne!(id("d.safetensors", &tail), base);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_ne!(id("e.safetensors", &longer), base);
}

/// An SDXL folder's second text encoder and a scheduler config are part of the fingerprint.
#[test]
fn sdxl_second_encoder_and_scheduler_key_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("xl");
    common::write_tiny(&model, common::Tiny::Sdxl);
    let id = || model_fingerprint(&ModelSource::Diffusers(model.clone())).unwrap();
    let before = id();
    let te2 = model.join("text_encoder_2/model.safetensors");
    let mut bytes = std::fs::read(&te2).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&te2, bytes).unwrap();
    let after_te2 = id();
    assert_ne!(before, after_te2, "text_encoder_2 weights");
    std::fs::create_dir_all(model.join("scheduler")).unwrap();
    std::fs::write(
        model.join("scheduler/scheduler_config.json"),
        r#"{"prediction_type": "epsilon"}"#,
    )
    .unwrap();
    assert_ne!(after_te2, id(), "scheduler config");
}
