//! End-to-end tests of `rotograph propagate` (single-image mode).

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

use image::RgbaImage;
use rotograph::imageops::quality::psnr;
use rotograph::testing::hashed_texture as texture;

fn posterize(img: &RgbaImage) -> RgbaImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in 0..3 {
            p.0[c] = 255 - (p.0[c] / 64) * 64;
        }
    }
    out
}

#[test]
fn key_onto_its_own_frame_reproduces_the_key() {
    let d = tempfile::tempdir().unwrap();
    let (src, key, out) = (
        d.path().join("src.png"),
        d.path().join("key.png"),
        d.path().join("out.png"),
    );
    let frame = texture(64, 48, 0);
    frame.save(&src).unwrap();
    posterize(&frame).save(&key).unwrap();
    let o = run(&[
        "propagate",
        "--style",
        s(&key),
        "--guide",
        s(&src),
        s(&src),
        "--weight",
        "2",
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = image::open(&out).unwrap().to_rgba8();
    let p = psnr(&got, &posterize(&frame));
    assert!(p >= 40.0, "identity PSNR {p:.2} dB");
}

#[test]
fn mismatched_guides_and_extra_weights_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let (src, small, key, out) = (
        d.path().join("src.png"),
        d.path().join("small.png"),
        d.path().join("key.png"),
        d.path().join("out.png"),
    );
    texture(64, 48, 0).save(&src).unwrap();
    texture(32, 48, 0).save(&small).unwrap();
    texture(64, 48, 0).save(&key).unwrap();
    let o = run(&[
        "propagate",
        "--style",
        s(&key),
        "--guide",
        s(&small),
        s(&src),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("guide 1") && e.contains("small.png"), "{e}");
    assert!(!out.exists());
    let o = run(&[
        "propagate",
        "--style",
        s(&key),
        "--guide",
        s(&src),
        s(&src),
        "--weight",
        "1",
        "--weight",
        "2",
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("weight"), "{}", stderr(&o));
}

#[test]
fn video_mode_writes_every_frame_and_names_a_stray_key() {
    let d = tempfile::tempdir().unwrap();
    let (fd, kd, od) = (d.path().join("f"), d.path().join("k"), d.path().join("o"));
    std::fs::create_dir_all(&fd).unwrap();
    std::fs::create_dir_all(&kd).unwrap();
    for t in 0..5u32 {
        texture(64, 48, t)
            .save(fd.join(format!("f{t}.png")))
            .unwrap();
    }
    posterize(&texture(64, 48, 0))
        .save(kd.join("f0.png"))
        .unwrap();
    posterize(&texture(64, 48, 4))
        .save(kd.join("f4.png"))
        .unwrap();
    let o = run(&[
        "propagate",
        "--frames",
        s(&fd),
        "--keys",
        s(&kd),
        "-o",
        s(&od),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = pngs(&od);
    assert_eq!(written.len(), 5, "{written:?}");
    let mid = image::open(od.join("f2.png")).unwrap().to_rgba8();
    let p = psnr(&mid, &posterize(&texture(64, 48, 2)));
    assert!(p >= 25.0, "middle frame PSNR {p:.2} dB");
    posterize(&texture(64, 48, 0))
        .save(kd.join("nope.png"))
        .unwrap();
    let o = run(&[
        "propagate",
        "--frames",
        s(&fd),
        "--keys",
        s(&kd),
        "-o",
        s(&od),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.png"), "{}", stderr(&o));
}

#[test]
fn video_mode_resumes_and_takes_the_edge_weight() {
    let d = tempfile::tempdir().unwrap();
    let (fd, kd, od) = (d.path().join("f"), d.path().join("k"), d.path().join("o"));
    std::fs::create_dir_all(&fd).unwrap();
    std::fs::create_dir_all(&kd).unwrap();
    for t in 0..4u32 {
        texture(48, 40, t)
            .save(fd.join(format!("{t:05}.png")))
            .unwrap();
    }
    posterize(&texture(48, 40, 0))
        .save(kd.join("00000.png"))
        .unwrap();
    let go = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "propagate",
            "--frames",
            s(&fd),
            "--keys",
            s(&kd),
            "-o",
            s(&od),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = go(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["skipped"], 0);
    let o = go(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["skipped"], 4, "a second run redoes nothing");
    let o = go(&["--edge-weight", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = done_report(&o);
    assert_eq!(
        (&r["skipped"], &r["discarded_stale"]),
        (&0.into(), &true.into())
    );
    let o = go(&["--edge-weight=-1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("edge-weight"), "{}", stderr(&o));
}

#[test]
fn video_mode_takes_the_blend() {
    let d = tempfile::tempdir().unwrap();
    let (fd, kd) = (d.path().join("f"), d.path().join("k"));
    std::fs::create_dir_all(&fd).unwrap();
    std::fs::create_dir_all(&kd).unwrap();
    for t in 0..5u32 {
        texture(48, 40, 2 * t)
            .save(fd.join(format!("{t:05}.png")))
            .unwrap();
    }
    posterize(&texture(48, 40, 0))
        .save(kd.join("00000.png"))
        .unwrap();
    texture(48, 40, 100).save(kd.join("00004.png")).unwrap();
    let go = |out: &str, blend: &str| {
        let od = d.path().join(out);
        let o = run(&[
            "propagate",
            "--frames",
            s(&fd),
            "--keys",
            s(&kd),
            "--blend",
            blend,
            "-o",
            s(&od),
        ]);
        (o, od)
    };
    let (o, hist) = go("h", "histogram");
    assert!(o.status.success(), "{}", stderr(&o));
    let (o, grad) = go("g", "gradient");
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |dir: &std::path::Path| image::open(dir.join("00002.png")).unwrap().to_rgba8();
    assert_ne!(read(&hist), read(&grad), "--blend gradient changed nothing");
    let (o, _) = go("x", "nope");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}
