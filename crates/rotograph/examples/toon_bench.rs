//! Throughput of the toon stylizer: `toon_bench [--style S] [--strength X] [--reps N] FRAME.png...`
//! (no frames: a synthetic 1280x720 image). Prints one line per repetition and the median
//! frames/s; used by `scripts/bench_toon.sh`.
use rotograph::stylize::toon::{Style, Toon};
use std::time::Instant;

fn synthetic() -> image::RgbaImage {
    image::RgbaImage::from_fn(1280, 720, |x, y| {
        let r = ((x as f32 / 40.0).sin() * 60.0 + 128.0) as u8;
        let g = ((y as f32 / 25.0).cos() * 60.0 + 128.0) as u8;
        let b = (((x + y) / 7) % 256) as u8;
        image::Rgba([r, g, b, 255])
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut style = Style::Toon;
    let mut strength = 0.75f32;
    let mut reps = 5usize;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--style" => {
                style = match args.next().as_deref() {
                    Some("toon") => Style::Toon,
                    Some("ink") => Style::Ink,
                    Some("posterize") => Style::Posterize,
                    other => return Err(format!("bad style {other:?}").into()),
                }
            }
            "--strength" => strength = args.next().ok_or("--strength X")?.parse()?,
            "--reps" => reps = args.next().ok_or("--reps N")?.parse()?,
            _ => paths.push(a),
        }
    }
    let frames: Vec<image::RgbaImage> = if paths.is_empty() {
        vec![synthetic()]
    } else {
        paths
            .iter()
            .map(|p| image::open(p).map(|i| i.to_rgba8()))
            .collect::<Result<_, _>>()?
    };
    let toon = Toon::new(style, 1);
    // Warm-up: thread pool, lookup tables, allocator.
    for f in &frames {
        std::hint::black_box(toon.apply(f, strength));
    }
    let mut fps = Vec::new();
    for r in 0..reps.max(1) {
        let t = Instant::now();
        for f in &frames {
            std::hint::black_box(toon.apply(f, strength));
        }
        let v = frames.len() as f64 / t.elapsed().as_secs_f64();
        println!("rep {r}: {v:.2} frames/s");
        fps.push(v);
    }
    fps.sort_by(f64::total_cmp);
    println!(
        "toon median: {:.2} frames/s ({} frames of {}x{}, {} threads)",
        fps[fps.len() / 2],
        frames.len(),
        frames[0].width(),
        frames[0].height(),
        rayon::current_num_threads()
    );
    Ok(())
}
