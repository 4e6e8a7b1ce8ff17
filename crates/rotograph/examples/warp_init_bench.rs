//! E_warp of plain stylize vs flow-warped init (two strengths) vs warp init + colour match, on a
//! real clip, for BENCHMARKS.md:
//!
//! `cargo run --profile test -p rotograph --example warp_init_bench -- CLIP [FRAMES] [WxH] [START]`
//!
//! Backends: `toon`, and `toon+jitter` (`rotograph::testing::JitterImg2Img`: img2img-like, keeps
//! 1 - denoise of the init and adds seeded per-frame colour noise, as an unfixed diffusion seed
//! flickers). Metric: mean E_warp (Lai et al. 2018, `temporal::WarpErrorMeter`) over consecutive
//! pairs, and the Lab mean gap between the last and the first output frame (colour drift).

use image::RgbaImage;
use rotograph::frames::{self, FolderOptions};
use rotograph::imageops::color::rgba_to_lab;
use rotograph::pipeline::{self, Settings};
use rotograph::stylize::Stylizer;
use rotograph::temporal::warp_init::ColorMatch;
use rotograph::temporal::WarpErrorMeter;
use rotograph::video::ExtractOptions;
use rotograph::NoProgress;
use std::path::Path;
use std::time::Instant;

fn parse_size(s: &str) -> (u32, u32) {
    let (w, h) = s.split_once('x').expect("size as WxH");
    (w.parse().expect("width"), h.parse().expect("height"))
}

fn read_all(dir: &Path) -> Vec<RgbaImage> {
    frames::list_frames(dir)
        .expect("frames")
        .iter()
        .map(|p| frames::read_frame(p).expect("frame").image)
        .collect()
}

fn mean_ewarp(source: &[RgbaImage], stylized: &[RgbaImage]) -> f64 {
    let mut meter = WarpErrorMeter::new(Default::default()).expect("meter");
    let mut v = Vec::new();
    for (s, t) in source.iter().zip(stylized) {
        if let Some((_, Some(e))) = meter.push(s, t).expect("E_warp") {
            v.push(e);
        }
    }
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn lab_gap(a: &RgbaImage, b: &RgbaImage) -> f64 {
    let (la, lb) = (rgba_to_lab(a), rgba_to_lab(b));
    (0..3).map(|c| (la[c].mean() - lb[c].mean()).abs()).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clip = Path::new(
        args.get(1)
            .expect("usage: warp_init_bench CLIP [FRAMES] [WxH] [START]"),
    );
    let n: usize = args.get(2).map_or(40, |s| s.parse().expect("frame count"));
    let size = args.get(3).map(|s| parse_size(s));
    let start: f64 = args
        .get(4)
        .map_or(0.0, |s| s.parse().expect("start seconds"));
    let base = {
        let mut s = Settings {
            jobs: 2,
            extract: ExtractOptions {
                fps: None,
                start: Some(start),
                max_frames: Some(n),
                size,
                ..ExtractOptions::default()
            },
            ..Settings::default()
        };
        s.img2img.seed = 11;
        s.img2img.subseed = 0;
        s.img2img.denoise = 0.6;
        s
    };
    let mut src =
        frames::open_source(clip, &FolderOptions::default(), &base.extract).expect("open clip");
    let mut source = Vec::new();
    while let Some((_, f)) = src.next_frame().expect("frame") {
        source.push(f.image);
    }
    let (w, h) = source[0].dimensions();
    println!(
        "clip {} : {} frames at {w}x{h}, denoise {}",
        clip.display(),
        source.len(),
        base.img2img.denoise
    );
    println!("| backend | warp_init | color_match | mean E_warp | vs plain | Lab drift last-first | s/frame |");
    println!("|---|---|---|---|---|---|---|");
    let configs = [
        (0.0, ColorMatch::None),
        (0.4, ColorMatch::None),
        (0.8, ColorMatch::None),
        (0.8, ColorMatch::First),
        (0.8, ColorMatch::Source),
        (0.0, ColorMatch::First),
    ];
    for backend in ["toon", "toon+jitter"] {
        let mut plain = None;
        for (strength, cm) in configs {
            let mut s = base.clone();
            s.warp_init = strength;
            s.color_match = cm;
            let out = tempfile::tempdir().expect("tempdir");
            let jitter_backend = |_: &Settings| -> rotograph::Result<Box<dyn Stylizer>> {
                Ok(Box::new(rotograph::testing::JitterImg2Img::new(2)))
            };
            let t = Instant::now();
            if backend == "toon" {
                pipeline::stylize(clip, out.path(), &s, &NoProgress).expect("stylize");
            } else {
                pipeline::stylize_with(clip, out.path(), &s, &jitter_backend, &NoProgress)
                    .expect("stylize");
            }
            let secs = t.elapsed().as_secs_f64() / source.len() as f64;
            let styl = read_all(out.path());
            let e = mean_ewarp(&source, &styl);
            let p = *plain.get_or_insert(e);
            let cm_name = match cm {
                ColorMatch::None => "none",
                ColorMatch::First => "first",
                ColorMatch::Source => "source",
            };
            println!(
                "| {backend} | {strength} | {cm_name} | {e:.3e} | {:.2}x | {:.2} | {secs:.3} |",
                e / p,
                lab_gap(&styl[styl.len() - 1], &styl[0])
            );
        }
    }
}
