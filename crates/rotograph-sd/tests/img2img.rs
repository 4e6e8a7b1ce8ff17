//! img2img on the tiny random-weight model.

mod common;

use image::{GrayImage, Luma, Rgba, RgbaImage};
use rotograph::stylize::{apply_mask, Img2ImgParams, Img2ImgRequest, Stylizer};
use rotograph_sd::img2img::SdStylizer;
use std::path::Path;
use std::sync::OnceLock;

fn tiny_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        common::write_tiny_model(d.path());
        d
    })
    .path()
}

fn stylizer() -> &'static SdStylizer {
    static S: OnceLock<SdStylizer> = OnceLock::new();
    S.get_or_init(|| SdStylizer::load(tiny_dir()).unwrap())
}

fn init(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8, 255])
    })
}

fn params(sampler: &str) -> Img2ImgParams {
    Img2ImgParams {
        prompt: "a (red:1.3) fox, [watercolor]".into(),
        negative_prompt: "blurry".into(),
        seed: 1,
        subseed: 0,
        denoise: 0.5,
        steps: 4,
        cfg: 7.0,
        sampler: sampler.into(),
        ..Img2ImgParams::default()
    }
}

fn run(img: &RgbaImage, p: &Img2ImgParams, seed: u64) -> Vec<RgbaImage> {
    let req = Img2ImgRequest {
        init: img,
        mask: None,
        controls: vec![],
        params: p,
        seed,
        subseed: 0,
    };
    stylizer().stylize(&req).unwrap()
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    for sampler in [
        "Euler a",
        "Euler",
        "DDIM",
        "DPM++ 2M",
        "DPM++ 2M Karras",
        "DPM++ SDE Karras",
        "LCM",
    ] {
        let img = init(64, 64);
        let p = params(sampler);
        let a = run(&img, &p, 42);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].dimensions(), (64, 64));
        let b = run(&img, &p, 42);
        assert_eq!(a[0].as_raw(), b[0].as_raw(), "{sampler}");
        let c = run(&img, &p, 43);
        assert_ne!(a[0].as_raw(), c[0].as_raw(), "{sampler}");
    }
}

/// A1111 batches: `batch_size * batch_count` images with seeds `seed, seed + 1, ...`, each the
/// image a single run with that seed gives.
#[test]
fn batches_give_every_image_with_incremented_seeds() {
    let img = init(60, 44);
    let p = Img2ImgParams {
        batch_size: 2,
        batch_count: 2,
        ..params("Euler a")
    };
    let out = run(&img, &p, 5);
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|o| o.dimensions() == (60, 44)));
    let single = params("Euler a");
    for (k, o) in out.iter().enumerate() {
        let alone = run(&img, &single, 5 + k as u64);
        assert_eq!(o.as_raw(), alone[0].as_raw(), "image {k} is seed {}", 5 + k);
    }
    assert_ne!(out[0].as_raw(), out[1].as_raw(), "seeds 5 and 6");
}

/// Masked img2img keeps the init latent outside the mask: there the final latent is exactly
/// the init latent, inside it is sampled (and differs); the pipeline's pixel keeping then makes
/// the unmasked pixels exactly the init's.
#[test]
fn masked_img2img_keeps_the_init_latent_outside_the_mask() {
    let img = init(64, 64);
    // Repaint the right half: latent columns 4..8 of 8.
    let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x >= 32 { 255 } else { 0 }]));
    for sampler in ["Euler a", "DPM++ 2M", "DDIM"] {
        let p = Img2ImgParams {
            denoise: 0.9,
            ..params(sampler)
        };
        let req = Img2ImgRequest {
            init: &img,
            mask: Some(&mask),
            controls: vec![],
            params: &p,
            seed: 3,
            subseed: 0,
        };
        let lat = stylizer().img2img_latents(&req).unwrap();
        let (init, out) = (&lat.init, &lat.samples[0]);
        assert_eq!(init.dims(), &[1, 4, 8, 8]);
        let cols = |t: &candle_core::Tensor, from: usize| -> Vec<f32> {
            t.narrow(3, from, 4)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        assert_eq!(cols(out, 0), cols(init, 0), "{sampler}: kept latents");
        let moved = cols(out, 4)
            .iter()
            .zip(cols(init, 4))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            moved > 0.05,
            "{sampler}: repainted latents moved by {moved}"
        );

        let mut pixels = stylizer().stylize(&req).unwrap().remove(0);
        let unmasked = run(&img, &p, 3).remove(0);
        assert_ne!(
            pixels.as_raw(),
            unmasked.as_raw(),
            "{sampler}: the mask matters"
        );
        apply_mask(&mut pixels, &img, &mask, 0.5);
        for (x, y, px) in pixels.enumerate_pixels() {
            if x < 32 {
                assert_eq!(px, img.get_pixel(x, y));
            }
        }
        assert_ne!(
            pixels.as_raw(),
            img.as_raw(),
            "{sampler}: the masked side changed"
        );
    }
}

#[test]
fn prompt_conditioning_is_encoded_once_per_prompt() {
    let s = SdStylizer::load(tiny_dir()).unwrap();
    let img = init(32, 32);
    let mut p = params("Euler");
    p.steps = 2;
    let go = |p: &Img2ImgParams| {
        let req = Img2ImgRequest {
            init: &img,
            mask: None,
            controls: vec![],
            params: p,
            seed: 1,
            subseed: 0,
        };
        s.stylize(&req).unwrap()
    };
    let a = go(&p);
    assert_eq!(s.prompts_encoded(), 2, "prompt and negative prompt");
    let b = go(&p);
    assert_eq!(s.prompts_encoded(), 2, "both cached");
    assert_eq!(
        a[0].as_raw(),
        b[0].as_raw(),
        "cached conditioning is the same"
    );
    p.prompt = "another prompt".into();
    go(&p);
    assert_eq!(s.prompts_encoded(), 3, "only the new prompt is encoded");
    // The cache is keyed by clip skip too: another layer is another conditioning.
    p.clip_skip = 2;
    let c = go(&p);
    assert_eq!(s.prompts_encoded(), 5, "both prompts again at clip skip 2");
    p.clip_skip = 1;
    let d = go(&p);
    assert_eq!(s.prompts_encoded(), 5, "clip skip 1 still cached");
    assert_ne!(
        c[0].as_raw(),
        d[0].as_raw(),
        "clip skip changes the picture"
    );
}

#[test]
fn unknown_sampler_is_a_setting_error() {
    let img = init(64, 64);
    let p = params("Heun++ 9000");
    let req = Img2ImgRequest {
        init: &img,
        mask: None,
        controls: vec![],
        params: &p,
        seed: 1,
        subseed: 0,
    };
    let err = stylizer().stylize(&req).unwrap_err();
    assert!(err.to_string().contains("sampler"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

/// Guidance as one batch of 2 or as two evaluations (what large latents use to halve the peak
/// memory) gives the same picture.
#[test]
fn split_and_batched_guidance_agree() {
    let batched = SdStylizer::load(tiny_dir())
        .unwrap()
        .with_batch_cfg_below(usize::MAX);
    let split = SdStylizer::load(tiny_dir())
        .unwrap()
        .with_batch_cfg_below(0);
    let img = init(64, 64);
    let p = params("DPM++ 2M");
    let req = Img2ImgRequest {
        init: &img,
        mask: None,
        controls: vec![],
        params: &p,
        seed: 9,
        subseed: 0,
    };
    let a = batched.img2img_latents(&req).unwrap().samples.remove(0);
    let b = split.img2img_latents(&req).unwrap().samples.remove(0);
    let d = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-4, "latents differ by {d}");
}

/// A v-prediction model (the tiny SD 2.x, whose scheduler says `v_prediction`) runs every
/// sampler, DDIM included, deterministically; forcing `epsilon` on it gives another picture,
/// so the prediction type reaches every sampler.
#[test]
fn v_prediction_runs_every_sampler() {
    use rotograph_sd::load::LoadOptions;
    use rotograph_sd::Prediction;
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny(dir.path(), common::Tiny::Sd2);
    let v = SdStylizer::load(dir.path()).unwrap();
    assert_eq!(v.model().prediction(), Prediction::V);
    let eps = SdStylizer::load_with(
        dir.path(),
        &LoadOptions {
            prediction: Some(Prediction::Epsilon),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let img = init(32, 32);
    for sampler in ["Euler a", "DPM++ 2M", "DPM++ SDE", "DDIM"] {
        let p = params(sampler);
        let req = Img2ImgRequest {
            init: &img,
            mask: None,
            controls: vec![],
            params: &p,
            seed: 3,
            subseed: 0,
        };
        let a = v.stylize(&req).unwrap();
        let b = v.stylize(&req).unwrap();
        assert_eq!(a[0].as_raw(), b[0].as_raw(), "{sampler}: deterministic");
        let c = eps.stylize(&req).unwrap();
        assert_ne!(
            a[0].as_raw(),
            c[0].as_raw(),
            "{sampler}: v differs from eps"
        );
    }
}
