//! Loading and running a tiny SD1.5-architecture model from a diffusers folder.

mod common;

use common::{bits, randn};

use candle_core::{Device, Tensor};
use rotograph_sd::model::{ModelError, SdModel};
use std::sync::OnceLock;

/// The tiny model, written and loaded once for all tests of this file.
fn model() -> &'static SdModel {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static MODEL: OnceLock<SdModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = DIR.get_or_init(|| {
            let d = tempfile::tempdir().unwrap();
            common::write_tiny_model(d.path());
            d
        });
        SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap()
    })
}

fn token_ids() -> Tensor {
    let mut ids = vec![rotograph_sd::tokenizer::BOS, 320, 1125, 539];
    ids.resize(77, rotograph_sd::tokenizer::EOS);
    Tensor::from_vec(ids, (1, 77), &Device::Cpu).unwrap()
}

#[test]
fn text_encoder_maps_ids_to_hidden_states() {
    let m = model();
    let a = m.encode_text(&token_ids()).unwrap();
    assert_eq!(a.dims(), &[1, 77, 32]);
    let b = m.encode_text(&token_ids()).unwrap();
    assert_eq!(bits(&a), bits(&b));
    assert!(bits(&a).iter().all(|&x| f32::from_bits(x).is_finite()));
}

#[test]
fn unet_keeps_the_latent_shape_and_is_deterministic() {
    let m = model();
    let lat = randn(7, &[2, 4, 8, 8]);
    let ctx = randn(8, &[2, 77, 32]);
    let a = m.unet(&lat, 999.0, &ctx).unwrap();
    assert_eq!(a.dims(), &[2, 4, 8, 8]);
    let b = m.unet(&lat, 999.0, &ctx).unwrap();
    assert_eq!(bits(&a), bits(&b));
    let c = m.unet(&lat, 10.0, &ctx).unwrap();
    assert_ne!(bits(&a), bits(&c), "the timestep must matter");
    let v = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0));
}

#[test]
fn vae_round_trip_shapes_and_determinism() {
    let m = model();
    let img = (randn(9, &[1, 3, 64, 64]) * 0.5).unwrap();
    let lat = m.encode_image(&img).unwrap();
    assert_eq!(lat.dims(), &[1, 4, 8, 8]);
    let lat2 = m.encode_image(&img).unwrap();
    assert_eq!(bits(&lat), bits(&lat2), "the posterior mean, not a sample");
    let out = m.decode_latents(&lat).unwrap();
    assert_eq!(out.dims(), &[1, 3, 64, 64]);
    let out2 = m.decode_latents(&lat).unwrap();
    assert_eq!(bits(&out), bits(&out2));
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");

    // Configs present, weights missing.
    for (sub, cfg) in [
        ("unet", common::UNET_CONFIG),
        ("vae", common::VAE_CONFIG),
        ("text_encoder", common::CLIP_CONFIG),
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("config.json"), cfg).unwrap();
    }
    let err = SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap_err();
    assert!(
        err.to_string()
            .contains("diffusion_pytorch_model.safetensors"),
        "{err}"
    );

    // An invalid config.
    let bad = common::UNET_CONFIG.replace("\"norm_num_groups\": 8", "\"norm_num_groups\": 7");
    std::fs::write(dir.path().join("unet/config.json"), bad).unwrap();
    let err = SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Config { .. }), "{err}");
    assert!(err.to_string().contains("unet"), "{err}");

    // Configs that do not fit together.
    let bad =
        common::UNET_CONFIG.replace("\"cross_attention_dim\": 32", "\"cross_attention_dim\": 48");
    std::fs::write(dir.path().join("unet/config.json"), bad).unwrap();
    let err = SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("hidden_size"), "{err}");
    let bad = common::UNET_CONFIG.replace("\"in_channels\": 4", "\"in_channels\": 5");
    std::fs::write(dir.path().join("unet/config.json"), bad).unwrap();
    let err = SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("latent_channels"), "{err}");

    // Garbage weights.
    std::fs::write(dir.path().join("unet/config.json"), common::UNET_CONFIG).unwrap();
    std::fs::write(
        dir.path().join("unet/diffusion_pytorch_model.safetensors"),
        b"not safetensors",
    )
    .unwrap();
    let err = SdModel::load_diffusers(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Weights { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("diffusion_pytorch_model.safetensors"),
        "{err}"
    );
}
