//! A missing ffmpeg / ffprobe is reported as such. This file is its own test binary (a separate
//! process) because it changes `ROTOGRAPH_FFMPEG` / `ROTOGRAPH_FFPROBE`, which are process-wide;
//! its one test does everything in sequence.

mod common;

use image::RgbaImage;
use rotograph::error::{Error, EXIT_FAILURE};
use rotograph::frames::{write_png, Frame};
use rotograph::video::{encode_folder, probe, EncodeOptions, ExtractOptions, VideoSource};
use rotograph::NoProgress;

#[test]
fn missing_binaries_are_ffmpeg_missing() {
    let d = tempfile::tempdir().unwrap();
    let clip = d.path().join("clip.mp4");
    common::make_clip(&clip, 1.0, 10, 64, 48, false);
    let frames = d.path().join("frames");
    write_png(
        &frames.join("1.png"),
        &Frame::opaque(RgbaImage::new(16, 16)),
    )
    .unwrap();
    let nowhere = d.path().join("no-such-dir").join("ffmpeg");

    // ffmpeg missing, ffprobe present: decoding and encoding fail to start ffmpeg.
    std::env::set_var("ROTOGRAPH_FFMPEG", &nowhere);
    let out = d.path().join("o.mp4");
    let errors = [
        VideoSource::open(&clip, &ExtractOptions::default())
            .err()
            .unwrap(),
        encode_folder(&frames, &out, &EncodeOptions::default(), &NoProgress).unwrap_err(),
    ];
    for e in errors {
        match &e {
            Error::FfmpegMissing { program } => {
                assert!(program.contains("ROTOGRAPH_FFMPEG"), "{program}")
            }
            other => panic!("expected FfmpegMissing, got {other}"),
        }
        assert_eq!(e.exit_code(), EXIT_FAILURE);
        assert!(e.to_string().contains("install"), "{e}");
    }
    assert!(!out.exists());

    // ffprobe missing.
    std::env::remove_var("ROTOGRAPH_FFMPEG");
    std::env::set_var("ROTOGRAPH_FFPROBE", &nowhere);
    let e = probe(&clip).unwrap_err();
    assert!(
        matches!(&e, Error::FfmpegMissing { program } if program.starts_with("ffprobe")),
        "{e}"
    );

    // Back to normal: the same calls work.
    std::env::remove_var("ROTOGRAPH_FFPROBE");
    assert!(probe(&clip).is_ok());
    encode_folder(&frames, &out, &EncodeOptions::default(), &NoProgress).unwrap();
    assert!(out.exists());
}
