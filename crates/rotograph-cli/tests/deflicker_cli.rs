//! End-to-end tests of `rotograph deflicker`: frame folders, a video source, masks, strength 0
//! and bad input.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

use image::{GrayImage, Luma, Rgba, RgbaImage};
use rotograph::flow::{FlowParams, Preset};
use rotograph::temporal::deflicker::testing::jitter;
use rotograph::temporal::WarpErrorMeter;
use std::path::Path;
use std::process::Output;

fn texture(w: u32, h: u32, dx: f32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f32 - dx, y as f32 - 0.5 * dx);
        let a = (x * 0.13).sin() * (y * 0.09).cos() + 0.5 * ((x + 2.0 * y) * 0.041).sin();
        let g = (128.0 + 80.0 * a) as u8;
        Rgba([g, 255 - g, (g / 2).saturating_add(60), 255])
    })
}

/// Writes `n` moving source frames and their jittered "stylization" as f01.png...
fn make_clip(dir: &Path, n: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let (src, styl) = (dir.join("src"), dir.join("styl"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&styl).unwrap();
    for i in 0..n {
        let f = texture(96, 64, 1.5 * i as f32);
        f.save(src.join(format!("f{:02}.png", i + 1))).unwrap();
        jitter(&f, 50 + i as u64, 24, 12)
            .save(styl.join(format!("f{:02}.png", i + 1)))
            .unwrap();
    }
    (src, styl)
}

/// Runs `rotograph [--quiet|--json] deflicker STYL --source SRC -o OUT EXTRA...`.
fn deflicker(mode: &str, styl: &Path, src: &Path, out: &Path, extra: &[&str]) -> Output {
    let args = [mode, "deflicker", s(styl), "--source", s(src), "-o", s(out)];
    run(&[&args[..], extra].concat())
}

fn read(p: &Path) -> RgbaImage {
    image::open(p).unwrap().to_rgba8()
}

/// Mean E_warp of the frames of `dir` against the source frames of `src`.
fn e_warp(src: &Path, dir: &Path) -> f64 {
    let mut meter = WarpErrorMeter::new(FlowParams::preset(Preset::Fast)).unwrap();
    let (mut sum, mut n) = (0.0, 0);
    for (s, f) in pngs(src).iter().zip(pngs(dir)) {
        if let Some((_, e)) = meter.push(&read(s), &read(&f)).unwrap() {
            sum += e.unwrap();
            n += 1;
        }
    }
    sum / n as f64
}

#[test]
fn folder_is_deflickered_into_frames_named_like_the_input() {
    let d = tempfile::tempdir().unwrap();
    let (src, styl) = make_clip(d.path(), 6);
    let out = d.path().join("out");
    let o = deflicker("--json", &styl, &src, &out, &["--flow-preset", "fast"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["frames"], 6);
    let names: Vec<_> = pngs(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = pngs(&styl)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, expected);
    let (before, after) = (e_warp(&src, &styl), e_warp(&src, &out));
    assert!(after < 0.5 * before, "E_warp {after} from {before}");
}

#[test]
fn strength_zero_copies_and_masks_keep_black_pixels() {
    let d = tempfile::tempdir().unwrap();
    let (src, styl) = make_clip(d.path(), 4);
    let out = d.path().join("zero");
    let o = deflicker("--quiet", &styl, &src, &out, &["--strength", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (a, b) in pngs(&styl).iter().zip(pngs(&out)) {
        assert_eq!(read(a), read(&b), "{}", b.display());
    }
    let masks = d.path().join("masks");
    std::fs::create_dir_all(&masks).unwrap();
    for p in pngs(&styl) {
        GrayImage::from_fn(96, 64, |_, y| Luma([if y < 32 { 255 } else { 0 }]))
            .save(masks.join(p.file_name().unwrap()))
            .unwrap();
    }
    let out = d.path().join("masked");
    let extra = ["--mask-dir", s(&masks), "--flow-preset", "fast"];
    let o = deflicker("--quiet", &styl, &src, &out, &extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut changed = 0;
    for (a, b) in pngs(&styl).iter().zip(pngs(&out)) {
        let (a, b) = (read(a), read(&b));
        for (x, y, p) in b.enumerate_pixels() {
            if y >= 32 {
                assert_eq!(p, a.get_pixel(x, y), "({x}, {y})");
            } else if p != a.get_pixel(x, y) {
                changed += 1;
            }
        }
    }
    assert!(changed > 1000, "{changed} pixels changed inside the mask");
}

#[test]
fn video_source_is_taken_at_the_stylized_size() {
    let d = tempfile::tempdir().unwrap();
    let clip = common::sample_clip();
    let frames = d.path().join("frames");
    let o = run(&[
        "--quiet",
        "extract",
        s(&clip),
        "-o",
        s(&frames),
        "--fps",
        "source",
        "--max-frames",
        "5",
        "--size",
        "160x96",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let styl = d.path().join("styl");
    std::fs::create_dir_all(&styl).unwrap();
    for (i, p) in pngs(&frames).iter().enumerate() {
        jitter(&read(p), i as u64, 20, 8)
            .save(styl.join(p.file_name().unwrap()))
            .unwrap();
    }
    let out = d.path().join("out");
    let extra = [
        "--fps",
        "source",
        "--max-frames",
        "5",
        "--flow-preset",
        "fast",
    ];
    let o = deflicker("--json", &styl, &clip, &out, &extra);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["frames"], 5);
    assert_eq!(read(&pngs(&out)[4]).dimensions(), (160, 96));
}

#[test]
fn bad_inputs_are_named() {
    let d = tempfile::tempdir().unwrap();
    let (src, styl) = make_clip(d.path(), 4);
    std::fs::remove_file(src.join("f04.png")).unwrap();
    let out = d.path().join("out");
    let o = deflicker("--quiet", &styl, &src, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("f04.png") && err.contains("3 frames"), "{err}");
    let missing = d.path().join("nomasks");
    let o = deflicker("--quiet", &styl, &src, &out, &["--mask-dir", s(&missing)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nomasks"), "{err}");
    let o = deflicker("--quiet", &styl, &src, &out, &["--strength=-1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("strength"), "{err}");
}
