//! Frames & video layer against real ffmpeg: which frames are taken, sizes, encoders, audio,
//! exposure sheets, and the errors users see for bad inputs.

mod common;

use common::{count_frames, frame_number_of, make_clip, stream_duration};
use image::{Rgba, RgbaImage};
use rotograph::error::{Error, EXIT_BAD_INPUT};
use rotograph::frames::{
    list_frames, read_frame, write_png, Exposure, Fit, FolderOptions, FolderSource, Frame,
    FrameSource,
};
use rotograph::progress::{Event, Progress};
use rotograph::video::{
    encode_folder, extract, probe, Container, EncodeOptions, Encoder, ExtractOptions, VideoSource,
};
use rotograph::NoProgress;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A 25 fps, 320x240, 3 s numbered clip in a fresh temp folder.
fn clip(dir: &Path, audio: bool) -> PathBuf {
    let p = dir.join(if audio { "clip-audio.mp4" } else { "clip.mp4" });
    make_clip(&p, 3.0, 25, 320, 240, audio);
    p
}

fn all_frames(src: &mut dyn FrameSource) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some((info, f)) = src.next_frame().unwrap() {
        assert_eq!(info.index, out.len());
        out.push(f);
    }
    out
}

fn numbers_of(video: &Path, opts: &ExtractOptions) -> Vec<usize> {
    let mut src = VideoSource::open(video, opts).unwrap();
    all_frames(&mut src)
        .iter()
        .map(|f| frame_number_of(&f.image))
        .collect()
}

fn every_frame() -> ExtractOptions {
    ExtractOptions {
        fps: None,
        ..Default::default()
    }
}

/// Records events; asks to stop once `stop_after` frames were reported.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
    stop_after: Option<usize>,
}

impl Recorder {
    fn frames(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Frame { .. }))
            .count()
    }
}

impl Progress for Recorder {
    fn event(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }
    fn should_stop(&self) -> bool {
        self.stop_after.is_some_and(|n| self.frames() >= n)
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn probe_reports_the_clip() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), true);
    let info = probe(&c).unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert!((info.fps - 25.0).abs() < 1e-9);
    assert!((info.duration.unwrap() - 3.0).abs() < 0.05);
    assert!(info.has_audio && !info.has_alpha);
    assert_eq!(info.codec, "h264");
}

#[test]
fn every_frame_in_order_with_times() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let mut src = VideoSource::open(&c, &every_frame()).unwrap();
    assert_eq!(src.len_hint(), Some(75));
    let mut n = 0;
    while let Some((info, f)) = src.next_frame().unwrap() {
        assert_eq!(frame_number_of(&f.image), n);
        assert_eq!(info.name, format!("{:05}.png", n + 1));
        assert!((info.time.unwrap() - n as f64 / 25.0).abs() < 1e-9);
        assert!(!f.has_alpha);
        n += 1;
    }
    assert_eq!(n, 75);
}

#[test]
fn fps_half_rate_takes_every_second_frame() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let opts = ExtractOptions {
        fps: Some(12.5),
        ..Default::default()
    };
    let nums = numbers_of(&c, &opts);
    let expected: Vec<usize> = (0..38).map(|i| 2 * i).collect();
    assert_eq!(nums, expected);
    // Default 12 fps from 25: frame k shows the source frame on screen at k/12 s.
    let nums = numbers_of(&c, &ExtractOptions::default());
    let expected: Vec<usize> = (0..36).map(|k| k * 25 / 12).collect();
    assert_eq!(nums, expected);
}

#[test]
fn nth_frame_applies_after_fps() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let opts = ExtractOptions {
        fps: Some(12.5),
        extract_nth_frame: 3,
        ..Default::default()
    };
    let mut src = VideoSource::open(&c, &opts).unwrap();
    assert_eq!(src.len_hint(), Some(13));
    let frames = all_frames(&mut src);
    let nums: Vec<usize> = frames.iter().map(|f| frame_number_of(&f.image)).collect();
    let expected: Vec<usize> = (0..13).map(|i| 6 * i).collect();
    assert_eq!(nums, expected);
    let opts = ExtractOptions {
        extract_nth_frame: 10,
        ..every_frame()
    };
    assert_eq!(numbers_of(&c, &opts), [0, 10, 20, 30, 40, 50, 60, 70]);
}

#[test]
fn max_frames_stops_early() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let opts = ExtractOptions {
        max_frames: Some(5),
        ..every_frame()
    };
    let mut src = VideoSource::open(&c, &opts).unwrap();
    assert_eq!(src.len_hint(), Some(5));
    let nums: Vec<usize> = all_frames(&mut src)
        .iter()
        .map(|f| frame_number_of(&f.image))
        .collect();
    assert_eq!(nums, [0, 1, 2, 3, 4]);
    assert!(src.next_frame().unwrap().is_none());
    // Dropping a source in the middle stops ffmpeg without fuss.
    let mut src = VideoSource::open(&c, &every_frame()).unwrap();
    src.next_frame().unwrap().unwrap();
    drop(src);
}

#[test]
fn start_and_duration_select_the_span() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let opts = ExtractOptions {
        start: Some(1.0),
        duration: Some(0.5),
        ..every_frame()
    };
    let mut src = VideoSource::open(&c, &opts).unwrap();
    let mut nums = Vec::new();
    while let Some((info, f)) = src.next_frame().unwrap() {
        let n = frame_number_of(&f.image);
        assert!(
            (info.time.unwrap() - n as f64 / 25.0).abs() < 1e-6,
            "{info:?} is {n}"
        );
        nums.push(n);
    }
    let expected: Vec<usize> = (25..25 + nums.len()).collect();
    assert_eq!(nums, expected);
    assert_eq!(nums.len(), 13, "{nums:?}");
    // With sampling: 12.5 fps from 2 s on.
    let opts = ExtractOptions {
        fps: Some(12.5),
        start: Some(2.0),
        ..Default::default()
    };
    let nums = numbers_of(&c, &opts);
    let expected: Vec<usize> = (0..13).map(|i| 50 + 2 * i).collect();
    assert_eq!(nums, expected);
    // A start past the end is a setting error that says how long the video is.
    let e = VideoSource::open(
        &c,
        &ExtractOptions {
            start: Some(9.0),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::InvalidSetting { .. }), "{e}");
    assert!(e.to_string().contains("3.00 s"), "{e}");
}

#[test]
fn sizes_fits_and_multiples() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let first = |opts: ExtractOptions| -> Frame {
        let mut src = VideoSource::open(
            &c,
            &ExtractOptions {
                max_frames: Some(1),
                ..opts
            },
        )
        .unwrap();
        let size = src.frame_size();
        let (_, f) = src.next_frame().unwrap().unwrap();
        assert_eq!(f.size(), size);
        f
    };
    // 100x100 rounds to 104x104 (multiple of 8 by default).
    let f = first(ExtractOptions {
        size: Some((100, 100)),
        ..Default::default()
    });
    assert_eq!(f.size(), (104, 104));
    // Multiple without size rounds the source size: 240 -> 256 with 64.
    let f = first(ExtractOptions {
        multiple: Some(64),
        ..Default::default()
    });
    assert_eq!(f.size(), (320, 256));
    // Pad a 4:3 clip into a square: black bars above and below the picture.
    let f = first(ExtractOptions {
        size: Some((320, 320)),
        fit: Fit::Pad,
        ..Default::default()
    });
    assert_eq!(f.size(), (320, 320));
    for y in [0, 20, 38, 282, 300, 319] {
        for x in [0, 160, 319] {
            let p = f.image.get_pixel(x, y);
            assert!(
                p[0] <= 2 && p[1] <= 2 && p[2] <= 2 && p[3] == 255,
                "({x},{y}) = {p:?}"
            );
        }
    }
    // The picture itself is not black (testsrc2 is colourful).
    let bright = (0..320)
        .filter(|&x| f.image.get_pixel(x, 200).0[..3].iter().any(|&c| c > 60))
        .count();
    assert!(bright > 100, "{bright}");
    // Crop into a square: no bars, full height kept.
    let f = first(ExtractOptions {
        size: Some((240, 240)),
        fit: Fit::Crop,
        ..Default::default()
    });
    assert_eq!(f.size(), (240, 240));
    // Stretch: exact size.
    let f = first(ExtractOptions {
        size: Some((160, 64)),
        fit: Fit::Stretch,
        ..Default::default()
    });
    assert_eq!(f.size(), (160, 64));
}

#[test]
fn extract_writes_named_pngs_and_reports_progress() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let out = d.path().join("frames");
    let rec = Recorder::default();
    let opts = ExtractOptions {
        fps: Some(12.5),
        max_frames: Some(4),
        ..Default::default()
    };
    let n = extract(&c, &out, &opts, "f_%03d.png", &rec).unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        files_in(&out),
        ["f_001.png", "f_002.png", "f_003.png", "f_004.png"]
    );
    for (i, name) in files_in(&out).iter().enumerate() {
        let f = read_frame(&out.join(name)).unwrap();
        assert_eq!(frame_number_of(&f.image), 2 * i);
    }
    let ev = rec.events.lock().unwrap().clone();
    assert_eq!(
        ev.first(),
        Some(&Event::Start {
            stage: "extract".into(),
            total: Some(4)
        })
    );
    assert_eq!(
        ev.last(),
        Some(&Event::Finish {
            stage: "extract".into()
        })
    );
    assert_eq!(rec.frames(), 4);

    // A stop request ends after the frame in flight, with the finished frames kept.
    let out2 = d.path().join("stopped");
    let rec = Recorder {
        stop_after: Some(2),
        ..Default::default()
    };
    let e = extract(&c, &out2, &every_frame(), "%05d.png", &rec).unwrap_err();
    assert!(matches!(e, Error::Interrupted), "{e}");
    let kept = rec.frames();
    assert!((2..75).contains(&kept), "{kept}");
    let expected: Vec<String> = (1..=kept).map(|i| format!("{i:05}.png")).collect();
    assert_eq!(files_in(&out2), expected);
    // A bad pattern is refused before any work.
    let e = extract(&c, &out2, &every_frame(), "frame.png", &NoProgress).unwrap_err();
    assert!(matches!(e, Error::InvalidSetting { .. }), "{e}");
}

#[test]
fn round_trip_extract_encode_mp4_keeps_count_and_duration() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let frames = d.path().join("frames");
    let n = extract(
        &c,
        &frames,
        &ExtractOptions::default(),
        "%05d.png",
        &NoProgress,
    )
    .unwrap();
    assert_eq!(n, 36);
    let out = d.path().join("out.mp4");
    let rec = Recorder::default();
    encode_folder(&frames, &out, &EncodeOptions::default(), &rec).unwrap();
    assert_eq!(count_frames(&out), 36);
    let dur = stream_duration(&out, "v").unwrap();
    assert!((dur - 3.0).abs() <= 1.0 / 12.0 + 1e-6, "{dur}");
    assert_eq!(rec.frames(), 36);
    // The output sits alone in its folder: no temp files left.
    assert_eq!(files_in(d.path()), ["clip.mp4", "frames", "out.mp4"]);
    // The content survives: frames decode to the same source numbers.
    let info = probe(&out).unwrap();
    assert_eq!(
        (info.width, info.height, info.codec.as_str()),
        (320, 240, "h264")
    );
    // (crf 25 is lossy: a strip may read one step off now and then.)
    let back = numbers_of(&out, &every_frame());
    let orig: Vec<usize> = list_frames(&frames)
        .unwrap()
        .iter()
        .map(|p| frame_number_of(&read_frame(p).unwrap().image))
        .collect();
    assert_eq!(orig, (0..36).map(|k| k * 25 / 12).collect::<Vec<_>>());
    assert_eq!(back.len(), orig.len());
    let exact = back.iter().zip(&orig).filter(|(b, o)| b == o).count();
    assert!(
        back.iter().zip(&orig).all(|(b, o)| b.abs_diff(*o) <= 1),
        "{back:?}"
    );
    assert!(exact >= 30, "{back:?} vs {orig:?}");
}

/// Frames with alpha in four quadrants (0, 85, 170, 255) and known colours.
fn alpha_frames(dir: &Path, count: usize) -> Vec<Frame> {
    fs::create_dir_all(dir).unwrap();
    (0..count)
        .map(|i| {
            let img = RgbaImage::from_fn(128, 96, |x, y| {
                let q = (x / 64) + 2 * (y / 48);
                Rgba([200, 40 + 10 * i as u8, 60, (q * 85) as u8])
            });
            let f = Frame {
                image: img,
                has_alpha: true,
            };
            write_png(&dir.join(format!("{:03}.png", i + 1)), &f).unwrap();
            f
        })
        .collect()
}

#[test]
fn alpha_survives_png_webm_png() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("rgba");
    let originals = alpha_frames(&frames, 6);
    let out = d.path().join("alpha.webm");
    let opts = EncodeOptions {
        crf: 20,
        ..Default::default()
    };
    encode_folder(&frames, &out, &opts, &NoProgress).unwrap();
    let info = probe(&out).unwrap();
    assert!(info.has_alpha, "{info:?}");
    assert_eq!(info.codec, "vp9");
    let mut src = VideoSource::open(&out, &every_frame()).unwrap();
    let back = all_frames(&mut src);
    assert_eq!(back.len(), 6);
    for (o, b) in originals.iter().zip(&back) {
        assert!(b.has_alpha);
        for (x, y) in [(32, 24), (96, 24), (32, 72), (96, 72)] {
            let (po, pb) = (o.image.get_pixel(x, y), b.image.get_pixel(x, y));
            assert!(
                po[3].abs_diff(pb[3]) <= 8,
                "alpha at ({x},{y}): {po:?} vs {pb:?}"
            );
            if po[3] > 0 {
                for c in 0..3 {
                    assert!(
                        po[c].abs_diff(pb[c]) <= 12,
                        "colour at ({x},{y}): {po:?} vs {pb:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn alpha_video_pads_with_transparent_bars() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("rgba");
    alpha_frames(&frames, 2);
    let out = d.path().join("alpha.webm");
    encode_folder(&frames, &out, &EncodeOptions::default(), &NoProgress).unwrap();
    let opts = ExtractOptions {
        size: Some((128, 128)),
        fit: Fit::Pad,
        ..every_frame()
    };
    let mut src = VideoSource::open(&out, &opts).unwrap();
    let f = all_frames(&mut src).remove(0);
    assert_eq!(f.size(), (128, 128));
    // 128x96 in 128x128: 16-pixel bars above and below, transparent.
    for (x, y) in [(10, 2), (100, 5), (10, 125), (100, 122)] {
        assert!(
            f.image.get_pixel(x, y)[3] <= 8,
            "({x},{y}) {:?}",
            f.image.get_pixel(x, y)
        );
    }
    // The opaque quadrant (bottom right) stays opaque.
    assert!(f.image.get_pixel(100, 90)[3] >= 247);
}

#[test]
fn h264_keeps_colours() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("colours.mp4");
    let colours = [
        [220u8, 30, 40],
        [30, 200, 60],
        [40, 60, 210],
        [128, 128, 128],
    ];
    let img = RgbaImage::from_fn(128, 64, |x, _| {
        let c = colours[(x / 32) as usize];
        Rgba([c[0], c[1], c[2], 255])
    });
    let mut enc = Encoder::start(&out, &EncodeOptions::default(), 128, 64, false).unwrap();
    for _ in 0..4 {
        enc.push(&Frame::opaque(img.clone())).unwrap();
    }
    enc.finish().unwrap();
    let mut src = VideoSource::open(&out, &every_frame()).unwrap();
    let back = all_frames(&mut src);
    assert_eq!(back.len(), 4);
    for (i, c) in colours.iter().enumerate() {
        let p = back[2].image.get_pixel(16 + 32 * i as u32, 32);
        for k in 0..3 {
            assert!(p[k].abs_diff(c[k]) <= 10, "colour {i}: {p:?} vs {c:?}");
        }
    }
}

#[test]
fn paths_with_colons_spaces_and_dashes() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("take: 1");
    fs::create_dir_all(&dir).unwrap();
    let c = dir.join("-clip one.mp4");
    make_clip(&c, 1.0, 10, 64, 48, false);
    assert_eq!(probe(&c).unwrap().width, 64);
    let frames = dir.join("frames");
    assert_eq!(
        extract(&c, &frames, &every_frame(), "%05d.png", &NoProgress).unwrap(),
        10
    );
    let out = dir.join("out: final.webm");
    encode_folder(&frames, &out, &EncodeOptions::default(), &NoProgress).unwrap();
    assert_eq!(count_frames(&out), 10);
}

#[test]
fn gif_and_apng_have_every_frame() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("rgba");
    alpha_frames(&frames, 5);
    for name in ["anim.gif", "anim.apng", "anim.png"] {
        let out = d.path().join(name);
        encode_folder(&frames, &out, &EncodeOptions::default(), &NoProgress).unwrap();
        assert_eq!(count_frames(&out), 5, "{name}");
    }
    let opts = EncodeOptions {
        on: 2,
        ..Default::default()
    };
    let out = d.path().join("twos.apng");
    encode_folder(&frames, &out, &opts, &NoProgress).unwrap();
    assert_eq!(count_frames(&out), 10);
}

/// A stream's duration: the stream's own field, or (Matroska/WebM) its DURATION tag.
fn any_stream_duration(path: &Path, kind: &str) -> Option<f64> {
    if let Some(d) = stream_duration(path, kind) {
        return Some(d);
    }
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args(["-show_entries", "stream_tags=DURATION", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .ok()?;
    // HH:MM:SS.fraction
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut parts = text.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

#[test]
fn audio_is_muxed_and_no_longer_than_the_video() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), true);
    // 2 s of frames from a 3 s clip with 3 s of audio.
    let frames = d.path().join("frames");
    let opts = ExtractOptions {
        duration: Some(2.0),
        ..Default::default()
    };
    assert_eq!(
        extract(&c, &frames, &opts, "%05d.png", &NoProgress).unwrap(),
        24
    );
    for name in ["with-audio.mp4", "with-audio.webm"] {
        let out = d.path().join(name);
        let opts = EncodeOptions {
            audio_from: Some(c.clone()),
            ..Default::default()
        };
        encode_folder(&frames, &out, &opts, &NoProgress).unwrap();
        let info = probe(&out).unwrap();
        assert!(info.has_audio, "{name}");
        assert_eq!(count_frames(&out), 24, "{name}");
        let v = any_stream_duration(&out, "v").unwrap();
        let a = any_stream_duration(&out, "a").unwrap();
        assert!((v - 2.0).abs() < 0.05, "{name}: video {v}");
        assert!((a - v).abs() <= 0.1, "{name}: audio {a} vs video {v}");
    }
    // Audio shorter than the video (a 0.5 s span) is padded with silence: no frame is lost.
    let out = d.path().join("short-audio.mp4");
    let opts = EncodeOptions {
        audio_from: Some(c.clone()),
        audio_start: Some(1.0),
        audio_duration: Some(0.5),
        ..Default::default()
    };
    encode_folder(&frames, &out, &opts, &NoProgress).unwrap();
    assert_eq!(count_frames(&out), 24);
    let a = any_stream_duration(&out, "a").unwrap();
    assert!((a - 2.0).abs() <= 0.1, "padded audio lasts {a}");
    // A source without audio gives a silent video, not an error.
    let silent = clip(d.path(), false);
    let out = d.path().join("silent.mp4");
    let opts = EncodeOptions {
        audio_from: Some(silent),
        ..Default::default()
    };
    encode_folder(&frames, &out, &opts, &NoProgress).unwrap();
    assert!(!probe(&out).unwrap().has_audio);
    // A missing audio source is named.
    let opts = EncodeOptions {
        audio_from: Some(d.path().join("nope.mp4")),
        ..Default::default()
    };
    let e = encode_folder(&frames, &d.path().join("x.mp4"), &opts, &NoProgress).unwrap_err();
    assert!(
        matches!(&e, Error::BadInput { path, .. } if path.ends_with("nope.mp4")),
        "{e}"
    );
}

#[test]
fn exposure_sheet_picks_and_holds_frames() {
    let d = tempfile::tempdir().unwrap();
    let c = clip(d.path(), false);
    let frames = d.path().join("frames");
    let opts = ExtractOptions {
        max_frames: Some(3),
        ..every_frame()
    };
    assert_eq!(
        extract(&c, &frames, &opts, "%05d.png", &NoProgress).unwrap(),
        3
    );
    // Near-lossless H.264 in Matroska so the frame numbers read back exactly.
    let out = d.path().join("sheet.mkv");
    let rec = Recorder::default();
    let opts = EncodeOptions {
        crf: 0,
        exposure: Some(Exposure::parse("1-3, 3x2, 2").unwrap()),
        ..Default::default()
    };
    encode_folder(&frames, &out, &opts, &rec).unwrap();
    assert_eq!(numbers_of(&out, &every_frame()), [0, 1, 2, 2, 2, 1]);
    assert_eq!(rec.frames(), 6);
    // `on` holds every frame.
    let out = d.path().join("twos.mkv");
    let opts = EncodeOptions {
        crf: 0,
        on: 2,
        ..Default::default()
    };
    encode_folder(&frames, &out, &opts, &NoProgress).unwrap();
    assert_eq!(numbers_of(&out, &every_frame()), [0, 0, 1, 1, 2, 2]);
    // A sheet beyond the folder is refused before encoding.
    let opts = EncodeOptions {
        exposure: Some(Exposure::parse("1-4").unwrap()),
        ..Default::default()
    };
    let bad = d.path().join("bad.mkv");
    let e = encode_folder(&frames, &bad, &opts, &NoProgress).unwrap_err();
    assert!(matches!(e, Error::InvalidSetting { .. }), "{e}");
    assert!(!bad.exists());
}

#[test]
fn odd_sizes_encode_to_h264() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("odd.mp4");
    let mut enc = Encoder::start(&out, &EncodeOptions::default(), 33, 21, false).unwrap();
    assert_eq!(enc.container(), Container::H264);
    let f = Frame::opaque(RgbaImage::from_pixel(33, 21, Rgba([255, 255, 255, 255])));
    for _ in 0..3 {
        enc.push(&f).unwrap();
    }
    // A frame of another size is refused.
    let small = Frame::opaque(RgbaImage::new(8, 8));
    assert!(matches!(enc.push(&small), Err(Error::BadInput { .. })));
    enc.finish().unwrap();
    let info = probe(&out).unwrap();
    assert_eq!((info.width, info.height), (34, 22));
    assert_eq!(count_frames(&out), 3);
}

#[test]
fn unfinished_encoders_leave_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("never.mp4");
    let mut enc = Encoder::start(&out, &EncodeOptions::default(), 32, 32, false).unwrap();
    enc.push(&Frame::opaque(RgbaImage::new(32, 32))).unwrap();
    drop(enc);
    assert!(files_in(d.path()).is_empty(), "{:?}", files_in(d.path()));
    // Interrupting encode_folder also leaves nothing.
    let frames = d.path().join("frames");
    alpha_frames(&frames, 4);
    let rec = Recorder {
        stop_after: Some(2),
        ..Default::default()
    };
    let e = encode_folder(&frames, &out, &EncodeOptions::default(), &rec).unwrap_err();
    assert!(matches!(e, Error::Interrupted));
    assert_eq!(files_in(d.path()), ["frames"]);
    // Unknown extensions list the accepted ones.
    let e = Encoder::start(
        &d.path().join("x.avi"),
        &EncodeOptions::default(),
        8,
        8,
        false,
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::InvalidSetting { .. }) && e.to_string().contains(".webm"));
}

#[test]
fn text_file_named_mp4_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("notes.mp4");
    fs::write(&p, "these are my notes, not a video\n".repeat(50)).unwrap();
    for e in [
        probe(&p).unwrap_err(),
        VideoSource::open(&p, &ExtractOptions::default())
            .err()
            .unwrap(),
        extract(
            &p,
            &d.path().join("f"),
            &ExtractOptions::default(),
            "%05d.png",
            &NoProgress,
        )
        .unwrap_err(),
    ] {
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT, "{e}");
        assert!(
            matches!(&e, Error::BadInput { path, .. } if path == &p),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("not a readable video"), "{msg}");
        // ffmpeg's reason, without its internal context prefixes.
        assert!(
            msg.contains("Invalid data") && !msg.contains(" @ 0x"),
            "{msg}"
        );
    }
    assert!(
        !d.path().join("f").exists(),
        "no output folder for a bad input"
    );
    let e = probe(&d.path().join("missing.mp4")).unwrap_err();
    assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
}

#[test]
fn truncated_video_keeps_decodable_frames_and_warns() {
    let d = tempfile::tempdir().unwrap();
    // Index at the front (faststart) so a cut file still opens.
    let full = d.path().join("full.mp4");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-c:v",
        "libx264",
        "-movflags",
        "+faststart",
        full.to_str().unwrap(),
    ]);
    let bytes = fs::read(&full).unwrap();
    let cut = d.path().join("cut.mp4");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let rec = Recorder::default();
    let n = extract(&cut, &d.path().join("f"), &every_frame(), "%05d.png", &rec).unwrap();
    assert!(n > 10 && n < 75, "{n}");
    let warnings: Vec<String> = rec
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("cut.mp4"), "{}", warnings[0]);
    assert!(!warnings[0].contains(" @ 0x"), "{}", warnings[0]);
    // The complete file decodes without complaint.
    let mut src = VideoSource::open(&full, &every_frame()).unwrap();
    assert_eq!(all_frames(&mut src).len(), 75);
    assert_eq!(src.decode_warning(), None);
}

#[test]
fn folder_with_a_text_file_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("frames");
    alpha_frames(&frames, 2);
    fs::write(frames.join("notes.txt"), "hello").unwrap();
    let errors = [
        FolderSource::open(&frames, &FolderOptions::default())
            .err()
            .unwrap(),
        encode_folder(
            &frames,
            &d.path().join("o.mp4"),
            &EncodeOptions::default(),
            &NoProgress,
        )
        .unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
        assert!(
            matches!(&e, Error::BadInput { path, .. } if path.ends_with("notes.txt")),
            "{e}"
        );
        assert!(e.to_string().contains("notes.txt"), "{e}");
    }
}

#[test]
fn truncated_png_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("frames");
    alpha_frames(&frames, 3);
    let victim = frames.join("002.png");
    let bytes = fs::read(&victim).unwrap();
    fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let mut src = FolderSource::open(&frames, &FolderOptions::default()).unwrap();
    src.next_frame().unwrap().unwrap();
    let e = src.next_frame().unwrap_err();
    assert!(
        matches!(&e, Error::BadInput { path, .. } if path == &victim),
        "{e}"
    );
    let out = d.path().join("o.webm");
    let e = encode_folder(&frames, &out, &EncodeOptions::default(), &NoProgress).unwrap_err();
    assert!(
        matches!(&e, Error::BadInput { path, .. } if path == &victim),
        "{e}"
    );
    assert!(!out.exists());
    // A header-only stub is caught when the folder is opened.
    fs::write(frames.join("004.png"), b"\x89PNG\r\n").unwrap();
    let e = FolderSource::open(&frames, &FolderOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::BadInput { path, .. } if path.ends_with("004.png")),
        "{e}"
    );
}

#[test]
fn mixed_sizes_are_bad_input_for_encoding() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("frames");
    alpha_frames(&frames, 2);
    write_png(
        &frames.join("003.png"),
        &Frame::opaque(RgbaImage::new(64, 64)),
    )
    .unwrap();
    let e = encode_folder(
        &frames,
        &d.path().join("o.mp4"),
        &EncodeOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::BadInput { path, .. } if path.ends_with("003.png")),
        "{e}"
    );
    assert!(
        e.to_string().contains("64x64") && e.to_string().contains("128x96"),
        "{e}"
    );
    // The folder source fits them when asked.
    let opts = FolderOptions {
        allow_mixed_sizes: true,
        fit: Fit::Pad,
        ..Default::default()
    };
    let mut src = FolderSource::open(&frames, &opts).unwrap();
    let frames = all_frames(&mut src);
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f.size() == (128, 96)));
}

#[test]
fn real_media_decodes_and_fits() {
    let bikes = shared_or_skip!("media/video/bikes.mp4");
    let info = probe(&bikes).unwrap();
    assert_eq!((info.width, info.height), (640, 272));
    assert!((info.fps - 25.0).abs() < 0.01);
    let opts = ExtractOptions {
        size: Some((512, 512)),
        fit: Fit::Crop,
        max_frames: Some(6),
        start: Some(4.0),
        ..Default::default()
    };
    let mut src = VideoSource::open(&bikes, &opts).unwrap();
    assert_eq!(src.frame_size(), (512, 512));
    let frames = all_frames(&mut src);
    assert_eq!(frames.len(), 6);
    // Consecutive frames of moving footage differ; none is blank.
    for f in &frames {
        let mean: f64 = f.image.pixels().map(|p| p[1] as f64).sum::<f64>() / (512.0 * 512.0);
        assert!(mean > 10.0 && mean < 245.0, "{mean}");
    }
    assert_ne!(frames[0].image, frames[5].image);
}

#[test]
fn real_mpeg_program_stream_probes() {
    let city = shared_or_skip!("media/video/cityCC0.mpg");
    let info = probe(&city).unwrap();
    assert_eq!((info.width, info.height), (720, 405));
    assert!((info.duration.unwrap() - 7.6).abs() < 0.3, "{info:?}");
    let opts = ExtractOptions {
        fps: Some(4.0),
        duration: Some(1.0),
        ..Default::default()
    };
    let mut src = VideoSource::open(&city, &opts).unwrap();
    assert_eq!(all_frames(&mut src).len(), 4);
}

/// Runs ffmpeg and returns its stdout (raw frames).
fn ffmpeg_stdout(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// (largest, mean) absolute difference of the RGB bytes of two RGBA buffers.
fn rgb_diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let d: Vec<u8> = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .flat_map(|(p, q)| (0..3).map(move |k| p[k].abs_diff(q[k])))
        .collect();
    let mean = d.iter().map(|&x| f64::from(x)).sum::<f64>() / d.len() as f64;
    (d.iter().copied().max().unwrap_or(0), mean)
}

#[test]
fn yuv420p_decoding_matches_ffmpegs_own_conversion() {
    use rotograph::video::yuv::{yuv420p_to_rgba, Matrix, Range};
    let d = tempfile::tempdir().unwrap();
    let tags: [&[&str]; 2] = [
        &[],
        &[
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    ];
    for (tag, (matrix, other)) in tags.iter().zip([
        (Matrix::Bt601, Matrix::Bt709),
        (Matrix::Bt709, Matrix::Bt601),
    ]) {
        let clip = d.path().join(format!("{matrix:?}.mp4"));
        let clip_s = clip.to_str().unwrap();
        let mut args = vec![
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=0.2",
        ];
        args.extend(["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p"]);
        args.extend(tag.iter().copied());
        args.push(clip_s);
        ffmpeg_stdout(&args);
        let info = probe(&clip).unwrap();
        assert_eq!(info.pix_fmt, "yuv420p");
        let mut src = VideoSource::open(&clip, &every_frame()).unwrap();
        let ours = all_frames(&mut src).remove(0).image.into_raw();
        let one = ["-i", clip_s, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt"];
        let theirs = ffmpeg_stdout(&[&one[..], &["rgba", "pipe:1"]].concat());
        let yuv = ffmpeg_stdout(&[&one[..], &["yuv420p", "pipe:1"]].concat());
        // The frame came through the yuv420p pipe, converted with the stream's matrix.
        let mut direct = vec![0u8; ours.len()];
        yuv420p_to_rgba(&yuv, 320, 240, matrix, Range::Limited, &mut direct);
        assert_eq!(
            ours, direct,
            "{matrix:?}: the decoder did not convert as expected"
        );
        // ffmpeg's SIMD converter truncates where ours rounds: within a few levels of it.
        let (max, mean) = rgb_diff(&ours, &theirs);
        assert!(
            max <= 4 && mean <= 1.5,
            "{matrix:?}: max {max}, mean {mean:.2}"
        );
        // The other matrix would be far off on testsrc2's saturated colours.
        yuv420p_to_rgba(&yuv, 320, 240, other, Range::Limited, &mut direct);
        let (_, wrong) = rgb_diff(&direct, &theirs);
        assert!(
            wrong > 2.0 * mean + 1.0,
            "{matrix:?}: wrong matrix mean {wrong:.2} vs {mean:.2}"
        );
        eprintln!("{matrix:?}: max {max}, mean {mean:.3}; other matrix mean {wrong:.3}");
    }
}

#[test]
fn bt709_encoding_conversion_matches_ffmpegs_own() {
    use rotograph::video::yuv::rgba_to_yuv420p_bt709;
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("frame.rgba");
    let (w, h) = (320usize, 240usize);
    let rgba = ffmpeg_stdout(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgba",
        "pipe:1",
    ]);
    fs::write(&raw, &rgba).unwrap();
    // What the encoder asked ffmpeg to do before frames came as yuv420p.
    let theirs = ffmpeg_stdout(&[
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgba",
        "-s",
        "320x240",
        "-i",
        raw.to_str().unwrap(),
        "-vf",
        "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
        "-f",
        "rawvideo",
        "pipe:1",
    ]);
    let mut ours = Vec::new();
    rgba_to_yuv420p_bt709(&rgba, w as u32, h as u32, &mut ours);
    assert_eq!(ours.len(), theirs.len());
    let stats = |a: &[u8], b: &[u8]| {
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        (max, sum as f64 / a.len() as f64)
    };
    let (y_max, y_mean) = stats(&ours[..w * h], &theirs[..w * h]);
    let (c_max, c_mean) = stats(&ours[w * h..], &theirs[w * h..]);
    eprintln!("luma max {y_max} mean {y_mean:.3}; chroma max {c_max} mean {c_mean:.3}");
    assert!(
        y_max <= 1 && y_mean < 0.5,
        "luma: max {y_max}, mean {y_mean:.3}"
    );
    assert!(c_mean < 1.0, "chroma: max {c_max}, mean {c_mean:.3}");
}

#[test]
fn odd_sized_yuv420p_decodes_like_ffmpeg() {
    let d = tempfile::tempdir().unwrap();
    let clip = d.path().join("odd.mkv");
    let clip_s = clip.to_str().unwrap();
    ffmpeg_stdout(&[
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x42:rate=5:duration=0.4",
        "-vf",
        "scale=33:21",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv420p",
        clip_s,
    ]);
    let mut src = VideoSource::open(&clip, &every_frame()).unwrap();
    let ours = all_frames(&mut src).remove(0).image.into_raw();
    let theirs = ffmpeg_stdout(&[
        "-i",
        clip_s,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgba",
        "pipe:1",
    ]);
    // ffmpeg interpolates chroma at odd sizes: such frames come converted by ffmpeg itself.
    let (max, mean) = rgb_diff(&ours, &theirs);
    assert!(max <= 4 && mean <= 1.5, "max {max}, mean {mean:.2}");
}
