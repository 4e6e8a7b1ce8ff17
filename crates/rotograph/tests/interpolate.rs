//! Frame interpolation: dropped frames of real clips rebuilt better than a cross-fade, frame
//! counts of --factor and --fps, and bad input.

#[path = "common/mod.rs"]
mod common;

use image::{Rgba, RgbaImage};
use rotograph::flow::{FlowParams, Preset};
use rotograph::frames::{FolderOptions, FolderSource, FrameSource};
use rotograph::imageops::quality::psnr;
use rotograph::temporal::interpolate::{
    inbetweens, interpolate_sequence, InterpolateOptions, Timing,
};
use rotograph::video::{ExtractOptions, VideoSource};
use rotograph::NoProgress;
use std::path::Path;

fn cross_fade(a: &RgbaImage, b: &RgbaImage) -> RgbaImage {
    RgbaImage::from_fn(a.width(), a.height(), |x, y| {
        let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
        Rgba(std::array::from_fn(|c| {
            (p[c] as u16 + q[c] as u16).div_ceil(2) as u8
        }))
    })
}

fn read_dir_frames(dir: &Path) -> Vec<RgbaImage> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| image::open(p).unwrap().to_rgba8())
        .collect()
}

fn write_frames(dir: &Path, frames: &[RgbaImage]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, f) in frames.iter().enumerate() {
        f.save(dir.join(format!("{:05}.png", i + 1))).unwrap();
    }
}

fn folder(dir: &Path) -> FolderSource {
    FolderSource::open(dir, &FolderOptions::default()).unwrap()
}

fn options(timing: Timing, source_fps: Option<f64>) -> InterpolateOptions {
    InterpolateOptions {
        params: FlowParams::preset(Preset::Fast),
        timing,
        source_fps,
    }
}

/// Source frames per clip in the real-clip test (odd: the last one is kept).
const N: usize = 17;

/// Drops every other frame of the first N frames of a real clip (at 320 px wide), rebuilds them
/// with --factor 2 and returns (mean PSNR of ours, mean PSNR of a cross-fade) on the dropped ones.
fn rebuild(clip: &Path, size: (u32, u32)) -> (f64, f64) {
    let mut src = VideoSource::open(
        clip,
        &ExtractOptions {
            fps: None,
            max_frames: Some(N),
            size: Some(size),
            ..Default::default()
        },
    )
    .unwrap();
    let mut all = Vec::new();
    while let Some((_, f)) = src.next_frame().unwrap() {
        all.push(f.image);
    }
    assert_eq!(all.len(), N);
    let kept: Vec<RgbaImage> = all.iter().step_by(2).cloned().collect();
    let d = tempfile::tempdir().unwrap();
    write_frames(&d.path().join("kept"), &kept);
    let out = d.path().join("out");
    let r = interpolate_sequence(
        &mut folder(&d.path().join("kept")),
        &out,
        &options(Timing::Factor(2), None),
        &NoProgress,
    )
    .unwrap();
    let dropped = N / 2;
    assert_eq!(
        (r.frames_in, r.frames_out, r.interpolated),
        (dropped + 1, N, dropped)
    );
    let got = read_dir_frames(&out);
    assert_eq!(got.len(), N);
    let (mut ours, mut fade) = (0.0, 0.0);
    for k in (1..N).step_by(2) {
        ours += psnr(&got[k], &all[k]) / dropped as f64;
        fade += psnr(&cross_fade(&all[k - 1], &all[k + 1]), &all[k]) / dropped as f64;
    }
    for k in (0..N).step_by(2) {
        assert_eq!(got[k], all[k], "kept frame {k} is copied unchanged");
    }
    (ours, fade)
}

#[test]
fn dropped_frames_of_real_clips_beat_cross_fade() {
    for (clip, size, floor) in [
        ("media/video/bikes.mp4", (320, 136), 30.0),
        ("media/video/bigbuckbunny.mp4", (320, 180), 30.0),
    ] {
        let clip = shared_or_skip!(clip);
        let (ours, fade) = rebuild(&clip, size);
        eprintln!(
            "{}: ours {ours:.2} dB, cross-fade {fade:.2} dB",
            clip.display()
        );
        assert!(ours > floor, "{}: {ours:.2} dB", clip.display());
        assert!(
            ours > fade + 1.5,
            "{}: ours {ours:.2} dB vs cross-fade {fade:.2} dB",
            clip.display()
        );
    }
}

/// A texture moved right by `dx` px.
fn texture(dx: f32) -> RgbaImage {
    RgbaImage::from_fn(64, 48, |x, y| {
        let x = x as f32 - dx;
        let y = y as f32;
        let a = (x * 0.21).sin() * (y * 0.13).cos() + 0.4 * ((x + y) * 0.07).sin();
        let g = (128.0 + 90.0 * a) as u8;
        Rgba([g, 255 - g, 128, 255])
    })
}

/// The texture drifting right by 2 px a frame.
fn drifting(n: usize) -> Vec<RgbaImage> {
    (0..n).map(|i| texture(2.0 * i as f32)).collect()
}

fn inner(img: &RgbaImage) -> RgbaImage {
    image::imageops::crop_imm(img, 10, 6, 44, 36).to_image()
}

#[test]
fn factor_and_fps_give_the_right_frame_counts() {
    let d = tempfile::tempdir().unwrap();
    let src = drifting(5);
    write_frames(&d.path().join("in"), &src);
    let run = |timing, fps, out: &str| {
        interpolate_sequence(
            &mut folder(&d.path().join("in")),
            &d.path().join(out),
            &options(timing, fps),
            &NoProgress,
        )
        .unwrap()
    };
    let r = run(Timing::Factor(3), Some(10.0), "x3");
    assert_eq!((r.frames_out, r.interpolated), (13, 8));
    assert_eq!(r.fps, Some(30.0));
    let got = read_dir_frames(&d.path().join("x3"));
    assert_eq!(got.len(), 13);
    assert_eq!(got[3], src[1]);
    assert_eq!(got[12], src[4]);
    // A third of the way from frame 1 to 2: the texture moved by 2 + 2/3 px.
    let third = psnr(&inner(&got[4]), &inner(&texture(2.0 + 2.0 / 3.0)));
    assert!(third > 30.0, "{third} dB");
    // 5 frames at 10 fps span 0.4 s: 25 fps gives frames at 0, 0.04, ..., 0.4.
    let r = run(Timing::Fps(25.0), Some(10.0), "fps25");
    assert_eq!((r.frames_in, r.frames_out), (5, 11));
    let got = read_dir_frames(&d.path().join("fps25"));
    assert_eq!(got[0], src[0]);
    assert_eq!(got[10], src[4]);
    // 0.2 s falls on frame 2 exactly (a copy), 0.04 s does not.
    assert_eq!(got[5], src[2]);
    assert_ne!(got[1], src[0]);
    assert_eq!(r.interpolated, 11 - 3);
    // A lower rate only picks frames: no flow, all copies.
    let r = run(Timing::Fps(5.0), Some(10.0), "fps5");
    assert_eq!((r.frames_out, r.interpolated), (3, 0));
    let got = read_dir_frames(&d.path().join("fps5"));
    assert_eq!(got, vec![src[0].clone(), src[2].clone(), src[4].clone()]);
}

#[test]
fn inbetweens_of_two_keyframes_follow_the_motion() {
    let f = drifting(5);
    // Frames 0 and 4 are 8 px apart; three in-betweens land on frames 1, 2, 3.
    let mids = inbetweens(&f[0], &f[4], 3, &FlowParams::default()).unwrap();
    assert_eq!(mids.len(), 3);
    for (k, m) in mids.iter().enumerate() {
        let ours = psnr(&inner(m), &inner(&f[k + 1]));
        let fade = psnr(&inner(&cross_fade(&f[0], &f[4])), &inner(&f[k + 1]));
        assert!(ours > 30.0 && ours > fade + 10.0, "{k}: {ours} vs {fade}");
    }
    let err = inbetweens(&f[0], &RgbaImage::new(32, 48), 1, &FlowParams::default()).unwrap_err();
    assert!(err.to_string().contains("32x48"), "{err}");
    assert!(inbetweens(&f[0], &f[1], 0, &FlowParams::default()).is_err());
}

#[test]
fn bad_sequences_are_errors_that_say_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    write_frames(&d.path().join("one"), &drifting(1));
    write_frames(&d.path().join("three"), &drifting(3));
    let out = d.path().join("out");
    let err = interpolate_sequence(
        &mut folder(&d.path().join("one")),
        &out,
        &options(Timing::Factor(2), None),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least two frames"), "{err}");
    let err = interpolate_sequence(
        &mut folder(&d.path().join("three")),
        &out,
        &options(Timing::Fps(24.0), None),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("--input-fps"), "{err}");
    let err = interpolate_sequence(
        &mut folder(&d.path().join("three")),
        &out,
        &options(Timing::Factor(0), None),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("factor"), "{err}");
}
