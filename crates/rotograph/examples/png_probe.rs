//! Times PNG encoding of real frames: rotograph's own encoder (`frames::png`, what
//! `frames::encode_png` uses) side by side with the `png` crate's fastest compressing mode through
//! `image` (`Fast` = fdeflate, Paeth, RGBA packed to RGB first: the previous `encode_png`). Median
//! of 15 runs each, ms and KB a frame; each new file is decoded back and checked pixel-exact.
//! With `--sweep`, every compression and filter setting of the `png` crate instead.
//! BENCHMARKS.md, `roto` overhead, "Kept-frame PNG encoder".
//!
//!     cargo run --release -p rotograph --example png_probe -- [--sweep] FRAME.png [FRAME.png ...]

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbaImage};
use std::time::Instant;

/// Runs of each measurement; the median is reported.
const RUNS: usize = 15;

/// The `png` crate path: pack to RGB (when opaque), encode with `compression` and `filter`.
fn png_crate(
    rgba: &RgbaImage,
    alpha: bool,
    compression: CompressionType,
    filter: FilterType,
) -> Vec<u8> {
    let (w, h) = rgba.dimensions();
    let mut out = Vec::new();
    let enc = PngEncoder::new_with_quality(&mut out, compression, filter);
    if alpha {
        enc.write_image(rgba.as_raw(), w, h, image::ExtendedColorType::Rgba8)
    } else {
        let mut rgb = Vec::new();
        rotograph::frames::rgb_bytes(rgba, &mut rgb);
        enc.write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
    }
    .expect("the png crate encodes");
    out
}

/// Median milliseconds of `RUNS` calls of `f`, and the length of its last output.
fn time(mut f: impl FnMut() -> Vec<u8>) -> (f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut len = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        len = f().len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], len)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    let sweep = paths.iter().any(|p| p == "--sweep");
    paths.retain(|p| p != "--sweep");
    if paths.is_empty() {
        return Err("usage: png_probe [--sweep] FRAME.png [FRAME.png ...]".into());
    }
    if sweep {
        return run_sweep(&paths);
    }
    println!(
        "| frame | alpha | png crate (Fast, Paeth) ms | KB | rotograph ms | KB | speed-up | size |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for path in &paths {
        let rgba = image::open(path)?.to_rgba8();
        for alpha in [false, true] {
            let (old_ms, old_len) =
                time(|| png_crate(&rgba, alpha, CompressionType::Fast, FilterType::Paeth));
            let (new_ms, new_len) =
                time(|| rotograph::frames::png::encode(&rgba, alpha).expect("rotograph encodes"));
            let back = image::load_from_memory(&rotograph::frames::png::encode(&rgba, alpha)?)?;
            let exact = if alpha {
                back.to_rgba8() == rgba
            } else {
                back.to_rgb8() == image::DynamicImage::ImageRgba8(rgba.clone()).to_rgb8()
            };
            if !exact {
                return Err(format!("{path}: rotograph's PNG does not decode to the frame").into());
            }
            println!(
                "| {path} | {alpha} | {old_ms:.2} | {} | {new_ms:.2} | {} | {:.2}x | {:+.1}% |",
                old_len / 1024,
                new_len / 1024,
                old_ms / new_ms,
                100.0 * (new_len as f64 / old_len as f64 - 1.0)
            );
        }
    }
    Ok(())
}

/// Every compression and filter setting of the `png` crate (RGB), median ms and KB.
fn run_sweep(paths: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let compressions = [
        ("fast", CompressionType::Fast),
        ("none", CompressionType::Uncompressed),
        ("level1", CompressionType::Level(1)),
    ];
    let filters = [
        ("none", FilterType::NoFilter),
        ("sub", FilterType::Sub),
        ("up", FilterType::Up),
        ("avg", FilterType::Avg),
        ("paeth", FilterType::Paeth),
        ("adaptive", FilterType::Adaptive),
    ];
    println!("| frame | compression | filter | median ms | KB |");
    println!("|---|---|---|---:|---:|");
    for path in paths {
        let rgba = image::open(path)?.to_rgba8();
        for (cname, compression) in compressions {
            for (fname, filter) in filters {
                let (ms, len) = time(|| png_crate(&rgba, false, compression, filter));
                println!("| {path} | {cname} | {fname} | {ms:.2} | {} |", len / 1024);
            }
        }
    }
    Ok(())
}
