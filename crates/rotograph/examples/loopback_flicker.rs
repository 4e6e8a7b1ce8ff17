//! Temporal consistency of plain stylization vs loopback, for BENCHMARKS.md:
//! `cargo run --release --example loopback_flicker -- FRAMES_DIR`.
//!
//! Backends: `toon`, and `toon+jitter` — toon plus a per-frame colour offset and per-pixel noise
//! drawn from the request's seed (seeds step per frame, so it flickers like a diffusion model
//! with an unfixed seed). Metrics: the warping error E_warp of `rotograph check`
//! ([`rotograph::temporal::check`]: mean squared RGB difference in 0..1 between each output
//! frame and the previous one warped along the source's optical flow, over reliable pixels),
//! and the mean absolute difference between consecutive output frames (RGB, 0..255), which
//! also counts real motion. Lower is steadier for both.
use image::RgbaImage;
use rotograph::frames::{list_frames, read_frame};
use rotograph::loopback::{
    self, FrameInputs, FrameStore, ImageF32, LoopbackSettings, MemoryStore, Plan,
};
use rotograph::progress::NoProgress;
use rotograph::stylize::toon::{Style, Toon};
use rotograph::stylize::Stylizer;
use rotograph::temporal::check::{CheckOptions, Checker};
use rotograph::testing::Jitter;
use rotograph::FrameInfo;
use std::path::Path;

fn flicker(frames: &[RgbaImage]) -> f64 {
    let mut total = 0.0;
    for w in frames.windows(2) {
        let d: u64 = w[0]
            .pixels()
            .zip(w[1].pixels())
            .map(|(a, b)| (0..3).map(|c| u64::from(a[c].abs_diff(b[c]))).sum::<u64>())
            .sum();
        total += d as f64 / (w[0].width() as f64 * w[0].height() as f64 * 3.0);
    }
    total / (frames.len() - 1) as f64
}

/// Mean E_warp of `outputs` along the motion of `source` (the `check` metric).
fn warp_error(source: &[RgbaImage], outputs: &[RgbaImage]) -> f64 {
    let mut checker = Checker::new(&CheckOptions::default(), Path::new("out"), Path::new("src"))
        .expect("checker");
    for (i, (s, o)) in source.iter().zip(outputs).enumerate() {
        let info = FrameInfo {
            index: i,
            name: format!("{:05}.png", i + 1),
            time: None,
        };
        checker.push((&info, s), (&info, o)).expect("check");
    }
    let report = checker.finish().expect("report");
    report.summary.mean.expect("reliable pixels")
}

fn run(
    frames: &[RgbaImage],
    backend: &dyn Stylizer,
    loops: usize,
    alpha: &str,
    list: &str,
) -> Vec<RgbaImage> {
    let mut s = LoopbackSettings {
        loop_n: loops,
        superimpose_alpha: alpha.into(),
        temporal_superimpose: list.into(),
        ..LoopbackSettings::default()
    };
    s.img2img.seed = 1234;
    s.img2img.subseed = 1;
    let plan = Plan::new(&s, frames.len()).expect("plan");
    let mut store = MemoryStore::with_source(frames.iter().map(ImageF32::from_rgba));
    let inputs = FrameInputs {
        mask: &|_| Ok(None),
        prompt: &|_| Ok(None),
        name: &|i| format!("{:05}.png", i + 1),
    };
    loopback::run(&plan, &mut store, &inputs, backend, &NoProgress).expect("loopback");
    (0..frames.len())
        .map(|i| store.get(loops, i).expect("frame").to_rgba())
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: loopback_flicker FRAMES_DIR")?;
    let frames: Vec<RgbaImage> = list_frames(dir.as_ref())?
        .iter()
        .map(|p| read_frame(p).map(|f| f.image))
        .collect::<Result<_, _>>()?;
    if frames.len() < 2 {
        return Err("need at least two frames".into());
    }
    let (w, h) = frames[0].dimensions();
    println!(
        "{} frames, {w}x{h}; source flicker {:.2}",
        frames.len(),
        flicker(&frames)
    );
    let toon = Toon::new(Style::Toon, 2);
    let jitter = Jitter(toon.clone());
    let settings = [
        ("plain stylize (loop_n 1, alpha 1, list 1)", 1, "1", "1"),
        ("loopback loop_n 3, alpha 0.5, list 1", 3, "0.5", "1"),
        (
            "loopback loop_n 3, alpha 0.5, list [1, 2, 1]",
            3,
            "0.5",
            "[1, 2, 1]",
        ),
    ];
    println!(
        "| setting | toon E_warp (x1e-3) | toon+jitter E_warp (x1e-3) | toon frame diff | \
         toon+jitter frame diff |\n|---|---:|---:|---:|---:|"
    );
    for (label, loops, alpha, list) in settings {
        let a = run(&frames, &toon, loops, alpha, list);
        let b = run(&frames, &jitter, loops, alpha, list);
        println!(
            "| {label} | {:.3} | {:.3} | {:.2} | {:.2} |",
            1e3 * warp_error(&frames, &a),
            1e3 * warp_error(&frames, &b),
            flicker(&a),
            flicker(&b)
        );
    }
    Ok(())
}
