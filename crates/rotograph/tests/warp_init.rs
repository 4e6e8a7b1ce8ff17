//! Flow-warped init and colour match (issue 5, item 2) on a real clip: E_warp drops with warp
//! init, strength 0 is plain stylize byte for byte, an interrupted run resumes to the same
//! frames as an uninterrupted one, colour match pulls a drifting sequence back to its
//! reference, and loopback takes warp init too.

#[path = "common/mod.rs"]
mod common;

use image::RgbaImage;
use rotograph::frames::{self, FolderOptions};
use rotograph::imageops::color::rgba_to_lab;
use rotograph::pipeline::{self, Settings};
use rotograph::stylize::{Img2ImgRequest, Stylizer};
use rotograph::temporal::warp_init::ColorMatch;
use rotograph::temporal::WarpErrorMeter;
use rotograph::testing::JitterImg2Img;
use rotograph::video::ExtractOptions;
use rotograph::{Error, Event, NoProgress, Progress};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const FRAMES: usize = 10;

fn settings(warp_init: f32, color_match: ColorMatch) -> Settings {
    let mut s = Settings {
        jobs: 2,
        warp_init,
        color_match,
        extract: ExtractOptions {
            fps: Some(25.0), // bikes.mp4's own rate
            start: Some(2.0),
            max_frames: Some(FRAMES),
            size: Some((320, 136)),
            ..ExtractOptions::default()
        },
        ..Settings::default()
    };
    s.img2img.seed = 11;
    s.img2img.subseed = 0;
    s.img2img.denoise = 0.6;
    s
}

fn jitter_factory(_: &Settings) -> rotograph::Result<Box<dyn Stylizer>> {
    Ok(Box::new(JitterImg2Img::new(2)))
}

fn stylize(clip: &Path, out: &Path, s: &Settings, jitter: bool) -> pipeline::Report {
    if jitter {
        pipeline::stylize_with(clip, out, s, &jitter_factory, &NoProgress).unwrap()
    } else {
        pipeline::stylize(clip, out, s, &NoProgress).unwrap()
    }
}

fn source_frames(clip: &Path, s: &Settings) -> Vec<RgbaImage> {
    let mut src = frames::open_source(clip, &FolderOptions::default(), &s.extract).unwrap();
    let mut out = Vec::new();
    while let Some((_, f)) = src.next_frame().unwrap() {
        out.push(f.image);
    }
    out
}

fn output_frames(dir: &Path) -> Vec<RgbaImage> {
    frames::list_frames(dir)
        .unwrap()
        .iter()
        .map(|p| frames::read_frame(p).unwrap().image)
        .collect()
}

fn output_bytes(dir: &Path) -> Vec<Vec<u8>> {
    frames::list_frames(dir)
        .unwrap()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Mean E_warp of a stylized sequence along its source's flow.
fn mean_warp_error(source: &[RgbaImage], stylized: &[RgbaImage]) -> f64 {
    assert_eq!(source.len(), stylized.len());
    let mut meter = WarpErrorMeter::new(Default::default()).unwrap();
    let mut errors = Vec::new();
    for (s, t) in source.iter().zip(stylized) {
        if let Some((_, Some(e))) = meter.push(s, t).unwrap() {
            errors.push(e);
        }
    }
    assert_eq!(errors.len(), source.len() - 1);
    errors.iter().sum::<f64>() / errors.len() as f64
}

#[test]
fn warp_init_lowers_the_warping_error_on_a_real_clip() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let source = source_frames(&clip, &settings(0.0, ColorMatch::None));
    assert_eq!(source.len(), FRAMES);
    for jitter in [true, false] {
        let mut errors = Vec::new();
        for strength in [0.0, 0.7] {
            let out = tempfile::tempdir().unwrap();
            let r = stylize(
                &clip,
                out.path(),
                &settings(strength, ColorMatch::None),
                jitter,
            );
            assert_eq!(r.rendered, FRAMES);
            errors.push(mean_warp_error(&source, &output_frames(out.path())));
        }
        eprintln!(
            "jitter {jitter}: E_warp plain {:.3e}, warp init 0.7 {:.3e}",
            errors[0], errors[1]
        );
        let bound = if jitter { 0.8 } else { 0.9 };
        assert!(
            errors[1] < bound * errors[0],
            "jitter backend {jitter}: warp init E_warp {:.3e} is not below {bound} x plain {:.3e}",
            errors[1],
            errors[0]
        );
    }
}

#[test]
fn strength_zero_is_plain_stylize_byte_for_byte() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let plain = tempfile::tempdir().unwrap();
    let zero = tempfile::tempdir().unwrap();
    let half = tempfile::tempdir().unwrap();
    // Plain: the settings as they were before warp init existed (the TOML without the keys).
    let toml: String = settings(0.0, ColorMatch::None)
        .to_toml()
        .lines()
        .filter(|l| !l.starts_with("warp_init") && !l.starts_with("color_match"))
        .map(|l| format!("{l}\n"))
        .collect();
    let plain_settings = Settings::from_toml(&toml, Path::new("plain.toml")).unwrap();
    stylize(&clip, plain.path(), &plain_settings, true);
    stylize(&clip, zero.path(), &settings(0.0, ColorMatch::None), true);
    assert!(output_bytes(plain.path()) == output_bytes(zero.path()));
    assert_eq!(output_bytes(plain.path()).len(), FRAMES);
    // The flag is not ignored: a non-zero strength changes every frame after the first.
    stylize(&clip, half.path(), &settings(0.5, ColorMatch::None), true);
    let (a, b) = (output_bytes(plain.path()), output_bytes(half.path()));
    assert_eq!(a[0], b[0], "the first frame has no previous frame to warp");
    assert!(a[1..].iter().zip(&b[1..]).all(|(x, y)| x != y));
}

/// Asks to stop once a number of frames were reported.
struct StopAfter(AtomicUsize, usize);
impl Progress for StopAfter {
    fn event(&self, e: Event) {
        if matches!(e, Event::Frame { .. }) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn should_stop(&self) -> bool {
        self.0.load(Ordering::SeqCst) >= self.1
    }
}

#[test]
fn an_interrupted_warp_init_run_resumes_to_the_uninterrupted_frames() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let s = settings(0.6, ColorMatch::First);
    let whole = tempfile::tempdir().unwrap();
    stylize(&clip, whole.path(), &s, true);
    let cut = tempfile::tempdir().unwrap();
    let err = pipeline::stylize_with(
        &clip,
        cut.path(),
        &s,
        &jitter_factory,
        &StopAfter(AtomicUsize::new(0), 4),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    let done = output_bytes(cut.path()).len();
    assert_eq!(done, 4, "frames before the stop");
    let r = stylize(&clip, cut.path(), &s, true);
    assert_eq!((r.skipped, r.rendered), (done, FRAMES - done));
    assert!(output_bytes(cut.path()) == output_bytes(whole.path()));
    // Nothing left to do on a third run.
    assert_eq!(stylize(&clip, cut.path(), &s, true).skipped, FRAMES);
    // Another strength is another key: everything renders again.
    let r = stylize(&clip, cut.path(), &settings(0.3, ColorMatch::First), true);
    assert_eq!(r.rendered, FRAMES);
}

/// A backend whose colours drift: frame k (in call order) is tinted by 6k levels of red and
/// loses 4k of blue, on top of the toon stylization.
struct Drift {
    inner: JitterImg2Img,
    calls: AtomicUsize,
}
impl Stylizer for Drift {
    fn name(&self) -> &str {
        "drift"
    }
    fn stylize(&self, r: &Img2ImgRequest<'_>) -> rotograph::Result<Vec<RgbaImage>> {
        let k = self.calls.fetch_add(1, Ordering::SeqCst) as i32;
        let mut img = self.inner.0.stylize(r)?.remove(0);
        for p in img.pixels_mut() {
            p[0] = (i32::from(p[0]) + 6 * k).clamp(0, 255) as u8;
            p[2] = (i32::from(p[2]) - 4 * k).clamp(0, 255) as u8;
        }
        Ok(vec![img])
    }
}

fn lab_means(img: &RgbaImage) -> [f64; 3] {
    rgba_to_lab(img).map(|p| p.mean())
}

/// L1 distance between the 32-bin histograms of Lab's `a` channel (-128..128).
fn a_histogram_distance(x: &RgbaImage, y: &RgbaImage) -> f64 {
    let hist = |img: &RgbaImage| {
        let mut h = [0f64; 32];
        let a = &rgba_to_lab(img)[1];
        for v in a.data() {
            h[((v + 128.0) / 8.0).clamp(0.0, 31.0) as usize] += 1.0 / a.data().len() as f64;
        }
        h
    };
    let (hx, hy) = (hist(x), hist(y));
    hx.iter().zip(&hy).map(|(a, b)| (a - b).abs()).sum()
}

#[test]
fn colour_match_pulls_a_drifting_sequence_back_to_its_reference() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let drift = |_: &Settings| -> rotograph::Result<Box<dyn Stylizer>> {
        Ok(Box::new(Drift {
            inner: JitterImg2Img::new(1),
            calls: AtomicUsize::new(0),
        }))
    };
    let run = |mode: ColorMatch| {
        let out = tempfile::tempdir().unwrap();
        let mut s = settings(0.0, mode);
        s.jobs = 1; // the drift follows the call order
        pipeline::stylize_with(&clip, out.path(), &s, &drift, &NoProgress).unwrap();
        output_frames(out.path())
    };
    let source = source_frames(&clip, &settings(0.0, ColorMatch::None));
    let drifted = run(ColorMatch::None);
    let first = run(ColorMatch::First);
    let to_source = run(ColorMatch::Source);
    let last = FRAMES - 1;
    let gap = |a: [f64; 3], b: [f64; 3]| (0..3).map(|c| (a[c] - b[c]).abs()).sum::<f64>();
    // Without matching the last frame has drifted far from the first.
    let drifted_gap = gap(lab_means(&drifted[last]), lab_means(&drifted[0]));
    let matched_gap = gap(lab_means(&first[last]), lab_means(&first[0]));
    eprintln!("Lab mean gap to frame 1: drifted {drifted_gap:.2}, matched {matched_gap:.2}");
    assert!(drifted_gap > 10.0, "the drift is visible: {drifted_gap}");
    assert!(
        matched_gap < 0.25 * drifted_gap,
        "{matched_gap} vs {drifted_gap}"
    );
    assert_eq!(
        first[0], drifted[0],
        "the reference frame itself is not changed"
    );
    let hd = a_histogram_distance(&drifted[last], &drifted[0]);
    let hm = a_histogram_distance(&first[last], &first[0]);
    assert!(hm < 0.5 * hd, "a-histogram distance {hm} vs {hd}");
    // Matching to the source: every frame's means are close to its source frame's.
    for k in [0, last] {
        let to_src = gap(lab_means(&to_source[k]), lab_means(&source[k]));
        let unmatched = gap(lab_means(&drifted[k]), lab_means(&source[k]));
        assert!(
            to_src < 2.0 && to_src < unmatched,
            "frame {k}: {to_src} vs {unmatched}"
        );
    }
}

#[test]
fn loopback_takes_warp_init_and_colour_match() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let source = source_frames(&clip, &settings(0.0, ColorMatch::None));
    let run = |strength: f32, mode: ColorMatch| {
        let out = tempfile::tempdir().unwrap();
        let mut s = settings(strength, mode);
        s.loopback.loop_n = 2;
        s.loopback.superimpose_alpha = "0.8".into();
        let backend = JitterImg2Img::new(2);
        let r = rotograph::loopback::loopback_with(&clip, out.path(), &s, &backend, &NoProgress)
            .unwrap();
        assert_eq!((r.frames, r.rendered), (FRAMES, 2 * FRAMES));
        // A re-run with the same settings resumes everything.
        let again =
            rotograph::loopback::loopback_with(&clip, out.path(), &s, &backend, &NoProgress)
                .unwrap();
        assert_eq!(again.rendered, 0);
        (output_frames(out.path()), out)
    };
    let (plain, _a) = run(0.0, ColorMatch::None);
    let (warped, _b) = run(0.7, ColorMatch::None);
    let (matched, _c) = run(0.7, ColorMatch::Source);
    let (ep, ew) = (
        mean_warp_error(&source, &plain),
        mean_warp_error(&source, &warped),
    );
    eprintln!("loopback E_warp plain {ep:.3e}, warp init 0.7 {ew:.3e}");
    assert!(ew < 0.8 * ep, "{ew} vs {ep}");
    assert_ne!(warped, matched, "colour match changes the loopback frames");
}
