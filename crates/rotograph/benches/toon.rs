//! Criterion benchmarks of the toon stylizer and its image operations on a real 1280x720 frame
//! (frame 50 of `../shared/media/video/bigbuckbunny.mp4`, extracted with ffmpeg; a synthetic
//! frame when shared media or ffmpeg are missing). `cargo bench -p rotograph --bench toon`.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use image::RgbaImage;
use rotograph::imageops::color::{lab_to_rgba, rgba_to_lab};
use rotograph::imageops::dog::Dog;
use rotograph::imageops::edge_preserving::DomainTransform;
use rotograph::stylize::toon::{Style, Toon};
use std::process::Command;

fn synthetic() -> RgbaImage {
    RgbaImage::from_fn(1280, 720, |x, y| {
        let r = ((x as f32 / 40.0).sin() * 60.0 + 128.0) as u8;
        let g = ((y as f32 / 25.0).cos() * 60.0 + 128.0) as u8;
        let b = (((x + y) / 7) % 256) as u8;
        image::Rgba([r, g, b, 255])
    })
}

/// A real 1280x720 frame, or a synthetic one (with a note) when that is not possible.
fn frame() -> RgbaImage {
    let Some(clip) = common::shared("media/video/bigbuckbunny.mp4") else {
        eprintln!("benchmarking a synthetic 1280x720 frame");
        return synthetic();
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("frame.png");
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-vf", "select=eq(n\\,50),scale=1280:720", "-frames:v", "1"])
        .arg(&png)
        .status()
        .is_ok_and(|s| s.success());
    match ok.then(|| image::open(&png)) {
        Some(Ok(img)) => img.to_rgba8(),
        _ => {
            eprintln!("ffmpeg could not extract a frame; benchmarking a synthetic frame");
            synthetic()
        }
    }
}

fn bench_toon(c: &mut Criterion) {
    let img = frame();
    let mut g = c.benchmark_group("toon_1280x720");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    for (name, style) in [
        ("toon", Style::Toon),
        ("ink", Style::Ink),
        ("posterize", Style::Posterize),
    ] {
        let t = Toon::new(style, 1);
        g.bench_function(name, |b| b.iter(|| t.apply(&img, 0.75)));
    }
    g.finish();

    let mut g = c.benchmark_group("imageops_1280x720");
    g.sample_size(20);
    let lab = rgba_to_lab(&img);
    g.bench_function("rgba_to_lab", |b| b.iter(|| rgba_to_lab(&img)));
    g.bench_function("lab_to_rgba", |b| b.iter(|| lab_to_rgba(&lab, Some(&img))));
    let dt = DomainTransform {
        sigma_s: 6.0,
        sigma_r: 20.0,
        iterations: 3,
    };
    g.bench_function("domain_transform_3ch_sigma6", |b| {
        b.iter(|| {
            let mut planes = lab.clone();
            dt.apply(&mut planes, None);
            planes
        })
    });
    let dog = Style::Toon.preset().dog;
    g.bench_function("dog_response", |b| {
        b.iter(|| Dog { ..dog }.response_plane(&lab[0]))
    });
    g.finish();
}

criterion_group!(benches, bench_toon);
criterion_main!(benches);
