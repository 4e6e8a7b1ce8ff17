//! Criterion benchmarks of the yuv420p ↔ RGBA conversions of the ffmpeg pipes at 1280x720
//! (`cargo bench -p rotograph --bench yuv`). Content does not change the cost (no branches on
//! pixel values), so the frame is synthetic.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rotograph::video::yuv::{rgba_to_yuv420p_bt709, yuv420p_len, yuv420p_to_rgba, Matrix, Range};

fn bench(c: &mut Criterion) {
    let (w, h) = (1280u32, 720u32);
    let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 37 % 251) as u8).collect();
    let mut yuv = Vec::new();
    rgba_to_yuv420p_bt709(&rgba, w, h, &mut yuv);
    assert_eq!(yuv.len(), yuv420p_len(w, h));
    let mut g = c.benchmark_group("yuv 1280x720");
    g.throughput(Throughput::Elements(u64::from(w * h)));
    g.bench_function("rgba_to_yuv420p_bt709", |b| {
        let mut out = Vec::new();
        b.iter(|| rgba_to_yuv420p_bt709(&rgba, w, h, &mut out))
    });
    g.bench_function("yuv420p_to_rgba", |b| {
        let mut out = vec![0u8; rgba.len()];
        b.iter(|| yuv420p_to_rgba(&yuv, w, h, Matrix::Bt709, Range::Limited, &mut out))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
