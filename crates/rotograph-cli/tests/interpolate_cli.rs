//! End-to-end tests of `rotograph interpolate`: two keyframe images, a video with --factor and
//! --fps, and bad input.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

use image::{Rgba, RgbaImage};

fn texture(w: u32, h: u32, dx: f32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f32 - dx, y as f32);
        let a = (x * 0.13).sin() * (y * 0.09).cos() + 0.5 * ((x + 2.0 * y) * 0.041).sin();
        let g = (128.0 + 80.0 * a) as u8;
        Rgba([g, 255 - g, 90, 255])
    })
}

fn mean_abs_inner(a: &RgbaImage, b: &RgbaImage) -> f64 {
    let (w, h) = a.dimensions();
    let mut s = 0.0;
    let mut n = 0;
    for y in 8..h - 8 {
        for x in 12..w - 12 {
            for c in 0..3 {
                s += (a.get_pixel(x, y)[c] as f64 - b.get_pixel(x, y)[c] as f64).abs();
                n += 1;
            }
        }
    }
    s / n as f64
}

#[test]
fn two_images_give_count_inbetweens_in_sequence() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.png"), d.path().join("b.png"));
    texture(128, 96, 0.0).save(&a).unwrap();
    texture(128, 96, 6.0).save(&b).unwrap();
    let out = d.path().join("mid");
    let o = run(&[
        "--quiet",
        "interpolate",
        s(&a),
        s(&b),
        "-o",
        s(&out),
        "--count",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = pngs(&out);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["00001.png", "00002.png"]);
    // Thirds of a 6 px shift: 2 px and 4 px.
    for (f, dx) in files.iter().zip([2.0, 4.0]) {
        let img = image::open(f).unwrap().to_rgba8();
        let err = mean_abs_inner(&img, &texture(128, 96, dx));
        assert!(err < 3.0, "{}: mean abs error {err}", f.display());
    }
}

#[test]
fn video_factor_and_fps_give_the_right_counts() {
    let d = tempfile::tempdir().unwrap();
    let clip = common::sample_clip();
    let out = d.path().join("x2");
    let o = run(&[
        "--json",
        "interpolate",
        s(&clip),
        "-o",
        s(&out),
        "--factor",
        "2",
        "--max-frames",
        "3",
        "--size",
        "160x96",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = done_report(&o);
    assert_eq!(r["frames_in"], 3);
    assert_eq!(r["frames_out"], 5);
    assert_eq!(r["interpolated"], 2);
    assert_eq!(r["fps"], 50.0, "the sample clip is 25 fps");
    assert_eq!(pngs(&out).len(), 5);
    let img = image::open(&pngs(&out)[1]).unwrap();
    assert_eq!((img.width(), img.height()), (160, 96));
    // 4 frames at 25 fps span 0.12 s; 60 fps gives frames at 0, 1/60, ..., 7/60.
    let out = d.path().join("fps60");
    let o = run(&[
        "--json",
        "interpolate",
        s(&clip),
        "-o",
        s(&out),
        "--fps",
        "60",
        "--max-frames",
        "4",
        "--size",
        "160x96",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = done_report(&o);
    assert_eq!(r["frames_out"], 8);
    assert_eq!(pngs(&out).len(), 8);
}

#[test]
fn bad_inputs_say_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        d.path().join("a.png"),
        d.path().join("b.png"),
        d.path().join("c.png"),
    );
    texture(64, 48, 0.0).save(&a).unwrap();
    texture(80, 48, 0.0).save(&b).unwrap();
    std::fs::write(&c, b"not an image").unwrap();
    let out = d.path().join("out");
    let check = |args: &[&str], needles: &[&str]| {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: `{n}` not in {err}");
        }
    };
    let (a, b, c, o) = (s(&a), s(&b), s(&c), s(&out));
    check(
        &["interpolate", a, b, "-o", o, "--count", "1"],
        &["b.png", "80x48"],
    );
    check(&["interpolate", a, c, "-o", o, "--count", "1"], &["c.png"]);
    check(&["interpolate", a, a, "-o", o], &["--count"]);
    check(
        &["interpolate", a, "-o", o, "--factor", "2"],
        &["a.png", "one image"],
    );
    let clip = common::sample_clip();
    let clip = s(&clip);
    check(&["interpolate", clip, "-o", o], &["--factor", "--fps"]);
    check(
        &["interpolate", clip, "-o", o, "--factor", "1"],
        &["factor"],
    );
    check(
        &["interpolate", clip, "-o", o, "--count", "3"],
        &["two keyframe images"],
    );
    check(&["interpolate", a, a, "-o", o, "--count", "0"], &["count"]);
    assert!(!out.exists() || pngs(&out).is_empty());
}
