//! Time and size of PNG encoder options on real frames (what `roto` pays to keep each frame):
//!   cargo run --release -p rotograph --example png_options -- FRAME_DIR
//! Prints the best of 3 passes over the folder's images, per frame.
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;
use std::time::Instant;
fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: png_options FRAME_DIR");
    let mut frames = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let img = image::open(e.unwrap().path()).unwrap().into_rgb8();
        frames.push(img);
    }
    let opts = [
        ("fast paeth", CompressionType::Fast, FilterType::Paeth),
        ("fast up", CompressionType::Fast, FilterType::Up),
        ("fast sub", CompressionType::Fast, FilterType::Sub),
        ("fast avg", CompressionType::Fast, FilterType::Avg),
        ("fast none", CompressionType::Fast, FilterType::NoFilter),
        ("fast adaptive", CompressionType::Fast, FilterType::Adaptive),
        (
            "uncompressed",
            CompressionType::Uncompressed,
            FilterType::NoFilter,
        ),
        ("level1 up", CompressionType::Level(1), FilterType::Up),
    ];
    for (name, c, f) in opts {
        let mut best = f64::MAX;
        let mut size = 0;
        for _ in 0..3 {
            let t = Instant::now();
            size = 0;
            for img in &frames {
                let mut out = Vec::new();
                let enc = PngEncoder::new_with_quality(&mut out, c, f);
                enc.write_image(
                    img.as_raw(),
                    img.width(),
                    img.height(),
                    image::ExtendedColorType::Rgb8,
                )
                .unwrap();
                size += out.len();
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name:14} {:6.2} ms/frame {:8.0} KB/frame",
            best * 1e3 / frames.len() as f64,
            size as f64 / 1e3 / frames.len() as f64
        );
    }
}
