//! Times PNG encoding of real frames: rotograph's own encoder (`frames::png`, what
//! `frames::encode_png` uses) side by side with the `png` crate's fastest compressing mode through
//! `image` (`Fast` = fdeflate, Paeth, RGBA packed to RGB first: the previous `encode_png`). Median
//! of 15 rounds, the two called in turn, ms and KB a frame; each new file is decoded back and checked pixel-exact.
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
    let [(ms, len)] = time_alternating([&mut f]);
    (ms, len)
}

/// Median milliseconds and last output length of each function over `RUNS` rounds, the
/// functions called in turn within a round (so that both see the same machine load).
fn time_alternating<const N: usize>(mut fs: [&mut dyn FnMut() -> Vec<u8>; N]) -> [(f64, usize); N] {
    let mut times = [(); N].map(|_| Vec::with_capacity(RUNS));
    let mut lens = [0; N];
    for _ in 0..RUNS {
        for (k, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            lens[k] = f().len();
            times[k].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut out = [(0.0, 0); N];
    for k in 0..N {
        times[k].sort_by(f64::total_cmp);
        out[k] = (times[k][RUNS / 2], lens[k]);
    }
    out
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
            let mut old = || png_crate(&rgba, alpha, CompressionType::Fast, FilterType::Paeth);
            let mut new =
                || rotograph::frames::png::encode(&rgba, alpha).expect("rotograph encodes");
            let [(old_ms, old_len), (new_ms, new_len)] = time_alternating([&mut old, &mut new]);
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
