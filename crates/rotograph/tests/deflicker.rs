//! Deflicker on real footage: a toon stylization of a shared clip with seeded per-frame flicker
//! gets steadier (E_warp along the source flow) and closer to the un-flickered stylization, and
//! the streaming sequence driver writes one frame per input frame.

#[path = "common/mod.rs"]
mod common;

use image::RgbaImage;
use rotograph::flow::{FlowParams, Preset};
use rotograph::frames::{FolderOptions, FolderSource, FrameSource};
use rotograph::stylize::toon::Style;
use rotograph::temporal::deflicker::testing::{jitter, psnr};
use rotograph::temporal::deflicker::{
    deflicker_sequence, Deflicker, DeflickerParams, SequenceOptions,
};
use rotograph::temporal::WarpErrorMeter;
use rotograph::video::{ExtractOptions, VideoSource};
use rotograph::NoProgress;

/// The first `n` frames of a clip at 320 px wide.
fn frames(path: &std::path::Path, n: usize) -> Vec<RgbaImage> {
    let opts = ExtractOptions {
        fps: None,
        max_frames: Some(n),
        size: Some((320, 136)),
        ..ExtractOptions::default()
    };
    let mut src = VideoSource::open(path, &opts).unwrap();
    let mut out = vec![];
    while let Some((_, f)) = src.next_frame().unwrap() {
        out.push(f.image);
    }
    assert_eq!(out.len(), n);
    out
}

fn mean_e_warp(source: &[RgbaImage], styl: &[RgbaImage]) -> f64 {
    let mut meter = WarpErrorMeter::new(FlowParams::preset(Preset::Fast)).unwrap();
    let mut sum = 0.0;
    for (s, f) in source.iter().zip(styl) {
        if let Some((_, e)) = meter.push(s, f).unwrap() {
            sum += e.unwrap();
        }
    }
    sum / (source.len() - 1) as f64
}

#[test]
fn flickering_toon_of_real_footage_gets_steadier_and_more_faithful() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let source = frames(&clip, 10);
    let preset = Style::Toon.preset();
    let clean: Vec<RgbaImage> = source.iter().map(|s| preset.apply(s, 0.75)).collect();
    let jittered: Vec<RgbaImage> = clean
        .iter()
        .enumerate()
        .map(|(i, c)| jitter(c, 7 + i as u64, 24, 12))
        .collect();
    let mut engine = Deflicker::new(DeflickerParams {
        flow: FlowParams::preset(Preset::Fast),
        ..DeflickerParams::default()
    })
    .unwrap();
    let out: Vec<RgbaImage> = source
        .iter()
        .zip(&jittered)
        .map(|(s, j)| engine.push(s, j, None).unwrap())
        .collect();
    let (before, after) = (mean_e_warp(&source, &jittered), mean_e_warp(&source, &out));
    assert!(after < 0.3 * before, "E_warp {after} from {before}");
    let fidelity = |v: &[RgbaImage]| {
        v.iter().zip(&clean).map(|(a, b)| psnr(a, b)).sum::<f64>() / v.len() as f64
    };
    let (p0, p1) = (fidelity(&jittered), fidelity(&out));
    assert!(p1 > p0 + 1.0, "PSNR to the clean toon {p1} from {p0}");
}

#[test]
fn sequence_driver_writes_every_frame_and_checks_the_source_length() {
    let clip = common::sample_clip();
    let source = frames(&clip, 4);
    let d = tempfile::tempdir().unwrap();
    let (src_dir, styl_dir) = (d.path().join("src"), d.path().join("styl"));
    std::fs::create_dir_all(&src_dir).unwrap();
    std::fs::create_dir_all(&styl_dir).unwrap();
    for (i, s) in source.iter().enumerate() {
        s.save(src_dir.join(format!("{:03}.png", i))).unwrap();
        jitter(s, i as u64, 20, 6)
            .save(styl_dir.join(format!("{:03}.png", i)))
            .unwrap();
    }
    let opts = SequenceOptions {
        params: DeflickerParams {
            flow: FlowParams::preset(Preset::Fast),
            ..DeflickerParams::default()
        },
        mask_dir: None,
    };
    let open = |p: &std::path::Path| FolderSource::open(p, &FolderOptions::default()).unwrap();
    let out = d.path().join("out");
    let r = deflicker_sequence(
        &mut open(&styl_dir),
        &mut open(&src_dir),
        &out,
        &opts,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.frames, 4);
    assert!(r.mean_coverage > 0.5, "coverage {}", r.mean_coverage);
    assert!(out.join("003.png").is_file());
    // A source one frame short is an error naming the processed frame that has no source.
    std::fs::remove_file(src_dir.join("003.png")).unwrap();
    let err = deflicker_sequence(
        &mut open(&styl_dir),
        &mut open(&src_dir),
        &d.path().join("out2"),
        &opts,
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("003.png"), "{err}");
}
