//! The consistency report (`temporal::check`) on a real clip: a frame replaced by a
//! differently-seeded render is flagged, the unmodified sequence flags nothing, and mismatched
//! sequences are errors that name the frame.

mod common;

use image::RgbaImage;
use rotograph::frames::{write_png, FolderOptions, FolderSource};
use rotograph::stylize::toon::{Style, Toon};
use rotograph::temporal::check::{check, CheckOptions, CheckReport};
use rotograph::testing::jitter;
use rotograph::video::{ExtractOptions, VideoSource};
use rotograph::{Frame, FrameSource, NoProgress};
use std::path::Path;

const FRAMES: usize = 20;

fn extract() -> ExtractOptions {
    ExtractOptions {
        size: Some((320, 136)),
        max_frames: Some(FRAMES),
        ..ExtractOptions::default()
    }
}

/// The clip's frames (name, pixels) at 320x136, 12 fps.
fn source_frames(clip: &Path) -> Vec<(String, RgbaImage)> {
    let mut src = VideoSource::open(clip, &extract()).unwrap();
    let mut out = vec![];
    while let Some((info, f)) = src.next_frame().unwrap() {
        out.push((info.name, f.image));
    }
    assert_eq!(out.len(), FRAMES);
    out
}

/// Writes the toon stylization of `frames` into `dir`, frame `bad` (if any) replaced by a
/// toon render with seeded jitter (a "differently seeded" render).
fn stylize_into(dir: &Path, frames: &[(String, RgbaImage)], bad: Option<usize>) {
    let toon = Toon::new(Style::Toon, 1);
    for (i, (name, img)) in frames.iter().enumerate() {
        let mut out = toon.apply(img, 0.75);
        if bad == Some(i) {
            jitter(&mut out, 99);
        }
        write_png(&dir.join(name), &Frame::opaque(out)).unwrap();
    }
}

fn run_check(styl: &Path, clip: &Path) -> rotograph::Result<CheckReport> {
    let mut t = FolderSource::open(styl, &FolderOptions::default())?;
    let mut s = VideoSource::open(clip, &extract())?;
    check(
        &mut t,
        styl,
        &mut s,
        clip,
        &CheckOptions::default(),
        &NoProgress,
    )
}

#[test]
fn flags_the_reseeded_frame_and_nothing_on_the_clean_sequence() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let frames = source_frames(&clip);
    let d = tempfile::tempdir().unwrap();
    let (clean, bad) = (d.path().join("clean"), d.path().join("bad"));
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    stylize_into(&clean, &frames, None);
    stylize_into(&bad, &frames, Some(9));

    let r = run_check(&clean, &clip).unwrap();
    let errs: Vec<_> = r.frames.iter().map(|f| f.warp_error).collect();
    assert_eq!(r.frame_count, FRAMES);
    assert_eq!(r.pairs, FRAMES - 1);
    assert!(
        r.flagged.is_empty(),
        "clean sequence flagged {:?}: {errs:?}",
        r.flagged
    );
    let covs: Vec<f64> = r
        .frames
        .iter()
        .skip(1)
        .map(|f| f.coverage.unwrap())
        .collect();
    assert!(covs.iter().all(|c| (0.0..=1.0).contains(c)), "{covs:?}");
    assert!(r.summary.mean_coverage.unwrap() > 0.5, "{covs:?}");
    assert_eq!(r.frames[0].warp_error, None);

    let rb = run_check(&bad, &clip).unwrap();
    let errs_bad: Vec<_> = rb.frames.iter().map(|f| f.warp_error).collect();
    assert_eq!(rb.flagged, vec![frames[9].0.clone()], "{errs_bad:?}");
    assert!(rb.frames[9].flagged);
    // The replaced frame raises both of its pairs, and only them.
    for (i, (c, b)) in errs.iter().zip(&errs_bad).enumerate().skip(1) {
        let (c, b) = (c.unwrap(), b.unwrap());
        if i == 9 || i == 10 {
            assert!(b > 3.0 * c, "pair {i}: {b} vs clean {c}");
        } else {
            assert!((b - c).abs() < 1e-12, "pair {i}: {b} vs clean {c}");
        }
    }
    // The cut (pair 15) stays the largest pair error of both: it is not flagged.
    assert_eq!(r.summary.max_frame, rb.summary.max_frame);
    assert!(rb.summary.mean.unwrap() > r.summary.mean.unwrap());
    assert!(rb.frames[9].score.unwrap() > rb.threshold);
    // The clean sequence's frames stay under the threshold; the clip has a cut (pair 15)
    // whose neighbours are not flagged either.
    let worst = r.frames.iter().filter_map(|f| f.score).fold(0.0, f64::max);
    assert!(worst < r.threshold, "{worst}");
}

#[test]
fn mismatched_counts_and_sizes_name_the_frame() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let frames = source_frames(&clip);
    let d = tempfile::tempdir().unwrap();
    let styl = d.path().join("s");
    std::fs::create_dir_all(&styl).unwrap();
    // One frame short: the source's last frame has no partner.
    stylize_into(&styl, &frames[..FRAMES - 1], None);
    let err = run_check(&styl, &clip).unwrap_err().to_string();
    assert!(
        err.contains(&format!("has {} frames", FRAMES - 1)) && err.contains(&frames[FRAMES - 1].0),
        "{err}"
    );
    // A stylized frame under another name than its source frame.
    std::fs::rename(styl.join(&frames[3].0), styl.join("zz_extra.png")).unwrap();
    let err = run_check(&styl, &clip).unwrap_err().to_string();
    assert!(err.contains("no source frame of that name"), "{err}");
    // All stylized frames at another size than the source.
    let small = d.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    for (name, img) in &frames {
        let s = image::imageops::resize(img, 160, 68, image::imageops::FilterType::Triangle);
        write_png(&small.join(name), &Frame::opaque(s)).unwrap();
    }
    let err = run_check(&small, &clip).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.exit_code(), 2);
    assert!(
        msg.contains(&frames[0].0) && msg.contains("160x68") && msg.contains("--size 160x68"),
        "{msg}"
    );
}
