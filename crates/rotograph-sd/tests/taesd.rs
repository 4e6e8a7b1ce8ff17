//! TAESD (the tiny autoencoder) on tiny random weights, in both published layouts.

mod common;

use candle_core::{Device, Tensor};
use rotograph_sd::load::{load, LoadOptions, VaeChoice};
use rotograph_sd::taesd::Taesd;
use std::collections::HashMap;

use rotograph_sd::testing::bits;
use rotograph_sd::testing::randn_scaled as randn;
use rotograph_sd::testing::taesd::{weights, write_diffusers, write_pair};

// An oracle written straight from the published architecture, on the raw tensors.
fn conv(x: &Tensor, w: &HashMap<String, Tensor>, name: &str, stride: usize) -> Tensor {
    let y = x
        .conv2d(&w[&format!("{name}.weight")], 1, stride, 1, 1)
        .unwrap();
    match w.get(&format!("{name}.bias")) {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1)).unwrap()).unwrap(),
        None => y,
    }
}

fn block(x: &Tensor, w: &HashMap<String, Tensor>, i: usize) -> Tensor {
    let y = conv(x, w, &format!("{i}.conv.0"), 1).relu().unwrap();
    let y = conv(&y, w, &format!("{i}.conv.2"), 1).relu().unwrap();
    let y = conv(&y, w, &format!("{i}.conv.4"), 1);
    (y + x).unwrap().relu().unwrap()
}

fn up(x: &Tensor) -> Tensor {
    let (_, _, h, w) = x.dims4().unwrap();
    x.upsample_nearest2d(2 * h, 2 * w).unwrap()
}

fn oracle_encode(img: &Tensor) -> Tensor {
    let (w, _) = weights();
    let x = ((img + 1.0).unwrap() * 0.5).unwrap();
    let mut x = block(&conv(&x, &w, "0", 1), &w, 1);
    for (c, b) in [(2, 3), (4, 5), (6, 7)] {
        x = block(&conv(&x, &w, &c.to_string(), 2), &w, b);
    }
    conv(&x, &w, "8", 1)
}

fn oracle_decode(lat: &Tensor) -> Tensor {
    let (_, w) = weights();
    let x = ((lat / 3.0).unwrap().tanh().unwrap() * 3.0).unwrap();
    let mut x = block(&conv(&x, &w, "0", 1).relu().unwrap(), &w, 2);
    for (c, b) in [(4, 5), (7, 8), (10, 11)] {
        x = block(&conv(&up(&x), &w, &c.to_string(), 1), &w, b);
    }
    ((conv(&x, &w, "12", 1) * 2.0).unwrap() - 1.0).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn taesd_matches_the_published_architecture_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    write_diffusers(&dir.path().join("diffusers"));
    write_pair(&dir.path().join("pair"));
    let a = Taesd::load(&dir.path().join("diffusers"), &Device::Cpu).unwrap();
    let b = Taesd::load(&dir.path().join("pair"), &Device::Cpu).unwrap();
    assert_eq!(a.latent_channels(), 4);

    let img = randn(1, &[2, 3, 64, 48], 0.5);
    let lat = a.encode(&img).unwrap();
    assert_eq!(lat.dims(), &[2, 4, 8, 6]);
    assert_eq!(bits(&lat), bits(&a.encode(&img).unwrap()), "deterministic");
    assert_eq!(
        bits(&lat),
        bits(&b.encode(&img).unwrap()),
        "same in both layouts"
    );
    let d = max_diff(&lat, &oracle_encode(&img));
    assert!(d < 1e-5, "encoder differs from the oracle by {d}");

    let z = randn(2, &[1, 4, 8, 8], 2.0);
    let out = a.decode(&z).unwrap();
    assert_eq!(out.dims(), &[1, 3, 64, 64]);
    assert_eq!(bits(&out), bits(&a.decode(&z).unwrap()), "deterministic");
    assert_eq!(
        bits(&out),
        bits(&b.decode(&z).unwrap()),
        "same in both layouts"
    );
    let d = max_diff(&out, &oracle_decode(&z));
    assert!(d < 1e-5, "decoder differs from the oracle by {d}");
}

#[test]
fn vae_taesd_is_found_beside_the_model_and_replaces_the_vae() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    common::write_tiny_model(&model);
    let opts = LoadOptions {
        vae: VaeChoice::Taesd(None),
        ..LoadOptions::default()
    };
    // Missing: the error names the folder and what to put there.
    let e = load(&model, &opts, &Device::Cpu).unwrap_err().to_string();
    assert!(
        e.contains("tiny/taesd") && e.contains("diffusion_pytorch_model.safetensors"),
        "{e}"
    );

    write_diffusers(&model.join("taesd"));
    let m = load(&model, &opts, &Device::Cpu).unwrap().model;
    let t = Taesd::load(&model.join("taesd"), &Device::Cpu).unwrap();
    let img = randn(3, &[1, 3, 64, 64], 0.5);
    let lat = m.encode_image(&img).unwrap();
    assert_eq!(bits(&lat), bits(&t.encode(&img).unwrap()));
    let out = m.decode_latents(&lat).unwrap();
    assert_eq!(bits(&out), bits(&t.decode(&lat).unwrap()));

    // An explicit folder, given as a --vae path, is recognised as TAESD too.
    write_pair(&dir.path().join("elsewhere"));
    for vae in [
        VaeChoice::Taesd(Some(dir.path().join("elsewhere"))),
        VaeChoice::parse(dir.path().join("elsewhere").to_str().unwrap()),
    ] {
        let opts = LoadOptions {
            vae,
            ..LoadOptions::default()
        };
        let m = load(&model, &opts, &Device::Cpu).unwrap().model;
        assert_eq!(bits(&m.encode_image(&img).unwrap()), bits(&lat));
    }
    // The model's own VAE gives something else.
    let own = load(&model, &LoadOptions::default(), &Device::Cpu)
        .unwrap()
        .model;
    assert_ne!(bits(&own.encode_image(&img).unwrap()), bits(&lat));
}

#[test]
fn a_folder_without_taesd_weights_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Taesd::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains(dir.path().to_str().unwrap()), "{e}");
    assert!(e.contains("taesd_encoder.safetensors"), "{e}");
    std::fs::write(
        dir.path().join("diffusion_pytorch_model.safetensors"),
        b"junk",
    )
    .unwrap();
    let e = Taesd::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("diffusion_pytorch_model.safetensors"), "{e}");
}

#[test]
fn vae_taesd_on_sdxl_takes_taesdxl() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("xl");
    common::write_tiny(&model, common::Tiny::Sdxl);
    let opts = LoadOptions {
        vae: VaeChoice::parse("taesd"),
        ..LoadOptions::default()
    };
    // SD1's taesd/ is not taken for SDXL: the error names taesdxl/.
    write_diffusers(&model.join("taesd"));
    let e = load(&model, &opts, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("xl/taesdxl"), "{e}");

    write_pair(&model.join("taesdxl"));
    let loaded = load(&model, &opts, &Device::Cpu).unwrap();
    assert_eq!(loaded.arch, rotograph_sd::model::Architecture::Sdxl);
    let m = loaded.model;
    assert!(matches!(m.vae(), rotograph_sd::vae::Vae::Tiny(_)));
    let t = Taesd::load(&model.join("taesdxl"), &Device::Cpu).unwrap();
    let img = randn(3, &[1, 3, 64, 64], 0.5);
    let lat = m.encode_image(&img).unwrap();
    assert_eq!(bits(&lat), bits(&t.encode(&img).unwrap()));
    assert_eq!(
        bits(&m.decode_latents(&lat).unwrap()),
        bits(&t.decode(&lat).unwrap())
    );
    // The SDXL UNet runs on TAESD latents.
    let mut ids = vec![rotograph_sd::tokenizer::BOS, 320];
    ids.resize(77, rotograph_sd::tokenizer::EOS);
    let cond = m.encode_chunk(&ids, &[1.0; 77], 1).unwrap();
    let den = m.denoised(&lat, 2.0, 700.0, &cond, &cond, 5.0).unwrap();
    assert_eq!(den.dims(), lat.dims());
}
