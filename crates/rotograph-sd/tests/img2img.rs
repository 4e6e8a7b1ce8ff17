//! img2img on the tiny random-weight model.

mod common;

use image::{Rgba, RgbaImage};
use rotograph::stylize::{Img2ImgParams, Img2ImgRequest, Stylizer};
use rotograph_sd::img2img::SdStylizer;
use std::sync::OnceLock;

fn stylizer() -> &'static SdStylizer {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static S: OnceLock<SdStylizer> = OnceLock::new();
    S.get_or_init(|| {
        let dir = DIR.get_or_init(|| {
            let d = tempfile::tempdir().unwrap();
            common::write_tiny_model(d.path());
            d
        });
        SdStylizer::load(dir.path()).unwrap()
    })
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
    for sampler in ["Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "LCM"] {
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

#[test]
fn odd_sizes_and_batches() {
    let img = init(60, 44);
    let p = Img2ImgParams {
        batch_size: 2,
        ..params("Euler")
    };
    let out = run(&img, &p, 5);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.dimensions() == (60, 44)));
    assert_ne!(out[0].as_raw(), out[1].as_raw(), "seeds 5 and 6");
}

#[test]
fn unsupported_sampler_is_a_setting_error() {
    let img = init(64, 64);
    let p = params("DDIM");
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
}
