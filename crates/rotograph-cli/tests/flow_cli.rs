//! End-to-end tests of `rotograph flow`: two images, a video, and bad input.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

use image::{Rgba, RgbaImage};
use rotograph::flow::FlowField;

fn texture(w: u32, h: u32, dx: f32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f32 - dx, y as f32);
        let a = (x * 0.13).sin() * (y * 0.09).cos() + 0.5 * ((x + 2.0 * y) * 0.041).sin();
        let g = (128.0 + 80.0 * a) as u8;
        Rgba([g, g, g, 255])
    })
}

#[test]
fn two_images_give_flo_and_viz() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.png"), d.path().join("b.png"));
    texture(128, 96, 0.0).save(&a).unwrap();
    texture(128, 96, 2.0).save(&b).unwrap();
    let (flo, viz) = (d.path().join("f.flo"), d.path().join("v.png"));
    let o = run(&[
        "flow",
        s(&a),
        s(&b),
        "-o",
        s(&flo),
        "--viz",
        s(&viz),
        "--backward",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = FlowField::read_flo(&flo).unwrap();
    let (u, v) = f.get(64, 48);
    assert!((u - 2.0).abs() < 0.15 && v.abs() < 0.15, "({u}, {v})");
    let back = FlowField::read_flo(&d.path().join("f.back.flo")).unwrap();
    assert!((back.get(64, 48).0 + 2.0).abs() < 0.15);
    let img = image::open(&viz).unwrap();
    assert_eq!((img.width(), img.height()), (128, 96));
}

#[test]
fn bad_inputs_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        d.path().join("a.png"),
        d.path().join("b.png"),
        d.path().join("c.png"),
    );
    texture(64, 48, 0.0).save(&a).unwrap();
    texture(80, 48, 0.0).save(&b).unwrap();
    std::fs::write(&c, b"not an image").unwrap();
    let flo = d.path().join("f.flo");
    let o = run(&["flow", s(&a), s(&b), "-o", s(&flo)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("b.png") && err.contains("80x48"), "{err}");
    let o = run(&["flow", s(&a), s(&c), "-o", s(&flo)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("c.png"), "{err}");
    assert!(!flo.exists());
    let o = run(&["flow", s(&a), "-o", s(&flo)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("a.png") && err.contains("one image"), "{err}");
}

#[test]
fn video_gives_one_flo_per_pair() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("flow");
    let clip = common::sample_clip();
    let o = run(&[
        "--quiet",
        "flow",
        s(&clip),
        "-o",
        s(&out),
        "--fps",
        "source",
        "--max-frames",
        "4",
        "--preset",
        "fast",
        "--viz",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let flos: Vec<&String> = names.iter().filter(|n| n.ends_with(".flo")).collect();
    assert_eq!(flos.len(), 3, "{names:?}");
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".png")).count(),
        3,
        "{names:?}"
    );
    let f = FlowField::read_flo(&out.join(flos[0])).unwrap();
    assert!(f.width() > 0 && f.u().iter().all(|x| x.is_finite()));
}
