use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;
fn main() {
    let img = image::open(std::env::args().nth(1).unwrap())
        .unwrap()
        .to_rgb8();
    let (w, h) = img.dimensions();
    for (cn, c) in [
        ("fast", CompressionType::Fast),
        ("default", CompressionType::Default),
    ] {
        for (fname, f) in [
            ("none", FilterType::NoFilter),
            ("sub", FilterType::Sub),
            ("up", FilterType::Up),
            ("paeth", FilterType::Paeth),
            ("adaptive", FilterType::Adaptive),
        ] {
            let t = std::time::Instant::now();
            let mut size = 0;
            for _ in 0..10 {
                let mut out = Vec::new();
                PngEncoder::new_with_quality(&mut out, c, f)
                    .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                    .unwrap();
                size = out.len();
            }
            println!(
                "{cn:8} {fname:9} {:6.1} ms  {:5} KB",
                t.elapsed().as_secs_f64() * 100.0,
                size / 1024
            );
        }
    }
}
