//! Times PNG encoding of real frames with each compression and filter setting of the `png`
//! crate (through `image`), RGBA packed to RGB first as `frames::encode_png` does: the cost of
//! keeping frames in a run folder (BENCHMARKS.md, `roto` overhead).
//!
//!     cargo run --release -p rotograph --example png_probe -- FRAME.png [FRAME.png ...]

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: png_probe FRAME.png [FRAME.png ...]".into());
    }
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
    for path in &paths {
        let rgba = image::open(path)?.to_rgba8();
        let (w, h) = rgba.dimensions();
        for (cname, compression) in compressions {
            for (fname, filter) in filters {
                let mut times = Vec::new();
                let mut len = 0;
                for _ in 0..15 {
                    let t = Instant::now();
                    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
                    for p in rgba.as_raw().chunks_exact(4) {
                        rgb.extend_from_slice(&p[..3]);
                    }
                    let mut out = Vec::new();
                    PngEncoder::new_with_quality(&mut out, compression, filter).write_image(
                        &rgb,
                        w,
                        h,
                        image::ExtendedColorType::Rgb8,
                    )?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                    len = out.len();
                }
                times.sort_by(f64::total_cmp);
                println!(
                    "| {path} | {cname} | {fname} | {:.2} | {} |",
                    times[times.len() / 2],
                    len / 1024
                );
            }
        }
    }
    Ok(())
}
