//! The toon stylizer on real media: abstraction, strength, presets, alpha, determinism and
//! temporal steadiness. Photos and clips come from `../shared/media` (tests skip with a message
//! when it is absent); the temporal tests also run on the bundled sample clip.
//! On failure, the images involved are written to a temp folder whose path is printed.

mod common;

use image::RgbaImage;
use rotograph::imageops::blur::gaussian_blur;
use rotograph::imageops::color::{lab_to_rgba, rgba_to_lab};
use rotograph::imageops::quality::psnr;
use rotograph::imageops::quantize::hard_quantize;
use rotograph::imageops::Plane;
use rotograph::stylize::toon::{Preset, Style, Toon};
use rotograph::stylize::{Img2ImgParams, Img2ImgRequest, Stylizer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------- helpers

fn load(path: &Path) -> RgbaImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .to_rgba8()
}

/// Writes `images` into a kept temp folder and returns its path.
fn save_images(test: &str, images: &[(&str, &RgbaImage)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rotograph-test-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, img) in images {
        let _ = img.save(dir.join(format!("{name}.png")));
    }
    dir
}

/// Panics with `msg` after saving `images` when `ok` is false.
fn check(ok: bool, test: &str, images: &[(&str, &RgbaImage)], msg: String) {
    if !ok {
        let dir = save_images(test, images);
        panic!("{msg}\n  images saved in {}", dir.display());
    }
}

fn lightness(img: &RgbaImage) -> Plane {
    let [l, _, _] = rgba_to_lab(img);
    l
}

/// Gradient magnitude (central differences) of `p` after a light blur.
fn gradient(p: &Plane, sigma: f32) -> Plane {
    let b = gaussian_blur(p, sigma);
    let (w, h) = (p.width(), p.height());
    Plane::from_fn(w, h, |x, y| {
        let gx = b.get((x + 1).min(w - 1), y) - b.get(x.saturating_sub(1), y);
        let gy = b.get(x, (y + 1).min(h - 1)) - b.get(x, y.saturating_sub(1));
        0.5 * (gx * gx + gy * gy).sqrt()
    })
}

/// Local variance in a Gaussian window of σ 2.
fn local_variance(p: &Plane) -> Plane {
    let mean = gaussian_blur(p, 2.0);
    let sq = Plane::from_fn(p.width(), p.height(), |x, y| p.get(x, y).powi(2));
    let mean_sq = gaussian_blur(&sq, 2.0);
    Plane::from_fn(p.width(), p.height(), |x, y| {
        (mean_sq.get(x, y) - mean.get(x, y).powi(2)).max(0.0)
    })
}

fn percentile(values: &[f32], q: f64) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

fn median_where(p: &Plane, mask: &[bool]) -> f64 {
    let v: Vec<f32> = p
        .data()
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(&v, _)| v)
        .collect();
    percentile(&v, 0.5) as f64
}

fn mean_where(p: &Plane, mask: &[bool]) -> f64 {
    let (s, n) = p
        .data()
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .fold((0f64, 0usize), |(s, n), (&v, _)| (s + v as f64, n + 1));
    s / n.max(1) as f64
}

fn distinct_colours(img: &RgbaImage) -> usize {
    img.pixels()
        .map(|p| [p[0], p[1], p[2]])
        .collect::<HashSet<_>>()
        .len()
}

/// Decodes `count` frames of `clip` from frame `first` on, scaled to `w`x`h`, via ffmpeg.
fn decode_frames(clip: &Path, first: usize, count: usize, w: u32, h: u32) -> Vec<RgbaImage> {
    let vf = format!("trim=start_frame={first},setpts=PTS-STARTPTS,scale={w}:{h}:flags=area");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(clip)
        .args(["-vf", &vf, "-frames:v", &count.to_string()])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg must be installed for the tests (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg failed on {}: {}",
        clip.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let size = (w * h * 3) as usize;
    let frames: Vec<RgbaImage> = out
        .stdout
        .chunks_exact(size)
        .map(|rgb| {
            RgbaImage::from_fn(w, h, |x, y| {
                let i = ((y * w + x) * 3) as usize;
                image::Rgba([rgb[i], rgb[i + 1], rgb[i + 2], 255])
            })
        })
        .collect();
    assert_eq!(
        frames.len(),
        count,
        "decoded too few frames of {}",
        clip.display()
    );
    frames
}

/// The naive baseline: L of the input floored into `bands` bands over 0..100 (a, b kept).
fn hard_quantized(img: &RgbaImage, bands: f32) -> RgbaImage {
    let mut lab = rgba_to_lab(img);
    let step = 100.0 / bands;
    lab[0]
        .data_mut()
        .iter_mut()
        .for_each(|v| *v = hard_quantize(*v, step));
    lab_to_rgba(&lab, Some(img)).expect("same sizes")
}

fn mean_abs_diff(a: &RgbaImage, b: &RgbaImage) -> f64 {
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .enumerate()
        .filter(|(i, _)| i % 4 != 3)
        .map(|(_, (&x, &y))| x.abs_diff(y) as u64)
        .sum();
    s as f64 / (a.width() * a.height() * 3) as f64
}

// ---------------------------------------------------------------- single images

/// Real photographs the single-image tests run on.
const PHOTOS: [&str; 3] = [
    "media/photos/skimage_astronaut.png",
    "media/photos/skimage_chelsea.png",
    "media/photos/skimage_coffee.png",
];

#[test]
fn toon_flattens_regions_and_keeps_strong_edges() {
    for rel in PHOTOS {
        let path = shared_or_skip!(rel);
        let input = load(&path);
        let out = Toon::new(Style::Toon, 1).apply(&input, 0.75);
        assert_eq!(out.dimensions(), input.dimensions());

        let (lin, lout) = (lightness(&input), lightness(&out));
        let gin = gradient(&lin, 1.0);
        let gout = gradient(&lout, 1.0);
        // Flat areas: the lower half of the input's gradient; strong edges: its top 3 %.
        let (flat_t, edge_t) = (percentile(gin.data(), 0.5), percentile(gin.data(), 0.97));
        let flat: Vec<bool> = gin.data().iter().map(|&g| g <= flat_t).collect();
        let edge: Vec<bool> = gin.data().iter().map(|&g| g >= edge_t).collect();
        // Median: bands and lines add a few sharp steps to flat areas by design.
        let var_in = median_where(&local_variance(&lin), &flat);
        let var_out = median_where(&local_variance(&lout), &flat);
        let edge_in = mean_where(&gin, &edge);
        let edge_out = mean_where(&gout, &edge);
        eprintln!(
            "{rel}: flat median variance {var_in:.2} -> {var_out:.2}, edge gradient {edge_in:.2} -> \
             {edge_out:.2}"
        );
        let imgs = [("input", &input), ("toon", &out)];
        check(
            var_out < 0.6 * var_in,
            "toon_flat",
            &imgs,
            format!("{rel}: flat-area median variance {var_in:.2} -> {var_out:.2}, want < 60 %"),
        );
        check(
            edge_out > 0.8 * edge_in,
            "toon_edges",
            &imgs,
            format!("{rel}: strong-edge gradient {edge_in:.2} -> {edge_out:.2}, want > 80 %"),
        );
        // Edges stand out from flat areas more than before.
        let flat_g_in = mean_where(&gin, &flat);
        let flat_g_out = mean_where(&gout, &flat);
        check(
            edge_out / flat_g_out > edge_in / flat_g_in,
            "toon_contrast",
            &imgs,
            format!(
                "{rel}: edge/flat gradient ratio {:.1} -> {:.1}",
                edge_in / flat_g_in,
                edge_out / flat_g_out
            ),
        );
    }
}

#[test]
fn strength_zero_is_the_input_and_strength_grows_monotonically() {
    let path = shared_or_skip!("media/photos/skimage_astronaut.png");
    let input = load(&path);
    for style in [Style::Toon, Style::Ink, Style::Posterize] {
        let toon = Toon::new(style, 1);
        let zero = toon.apply(&input, 0.0);
        let p0 = psnr(&zero, &input);
        check(
            p0 > 30.0,
            "strength0",
            &[("input", &input), ("strength0", &zero)],
            format!("{style:?}: strength 0 PSNR {p0:.1} dB"),
        );
        let mut last = f64::INFINITY;
        for s in [0.05f32, 0.25, 0.5, 0.75, 1.0] {
            let out = toon.apply(&input, s);
            let p = psnr(&out, &input);
            eprintln!("{style:?} strength {s}: PSNR {p:.1} dB");
            if s == 0.05 {
                check(
                    p > 30.0,
                    "strength005",
                    &[("input", &input), ("out", &out)],
                    format!("{style:?}: strength 0.05 PSNR {p:.1} dB, want > 30"),
                );
            }
            // Bands and lines are at full opacity from 0.75 on; above it only the smoothing
            // grows, which may move PSNR either way a little.
            let slack = if s > 0.75 { 0.5 } else { 0.0 };
            check(
                p < last + slack,
                "strength_monotonic",
                &[("input", &input), ("out", &out)],
                format!("{style:?}: PSNR {p:.1} at strength {s} not below {last:.1}"),
            );
            last = p;
        }
    }
}

#[test]
fn ink_is_mostly_light_with_dark_lines() {
    for rel in [
        "media/photos/skimage_astronaut.png",
        "media/photos/skimage_chelsea.png",
    ] {
        let path = shared_or_skip!(rel);
        let input = load(&path);
        let out = Toon::new(Style::Ink, 1).apply(&input, 0.75);
        let l = lightness(&out);
        let n = l.data().len() as f64;
        let light = l.data().iter().filter(|&&v| v > 70.0).count() as f64 / n;
        let dark = l.data().iter().filter(|&&v| v < 30.0).count() as f64 / n;
        let [_, a, b] = rgba_to_lab(&out);
        let chroma = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(&a, &b)| ((a * a + b * b) as f64).sqrt())
            .sum::<f64>()
            / n;
        eprintln!("{rel}: light {light:.3}, dark {dark:.3}, mean chroma {chroma:.1}");
        let imgs = [("input", &input), ("ink", &out)];
        check(
            light > 0.7,
            "ink_light",
            &imgs,
            format!("{rel}: only {light:.2} of the ink image is light"),
        );
        check(
            dark > 0.01 && dark < 0.2,
            "ink_lines",
            &imgs,
            format!("{rel}: dark (line) fraction {dark:.3}, want 1..20 %"),
        );
        check(
            chroma < 8.0,
            "ink_colour",
            &imgs,
            format!("{rel}: mean chroma {chroma:.1}, want little colour"),
        );
    }
}

#[test]
fn posterize_has_fewer_colours_than_the_input_and_toon() {
    for rel in PHOTOS {
        let path = shared_or_skip!(rel);
        let input = load(&path);
        let toon = Toon::new(Style::Toon, 1).apply(&input, 0.75);
        let post = Toon::new(Style::Posterize, 1).apply(&input, 0.75);
        let (ci, ct, cp) = (
            distinct_colours(&input),
            distinct_colours(&toon),
            distinct_colours(&post),
        );
        eprintln!("{rel}: distinct colours input {ci}, toon {ct}, posterize {cp}");
        check(
            cp < ct && cp < ci,
            "posterize_colours",
            &[("input", &input), ("toon", &toon), ("posterize", &post)],
            format!("{rel}: posterize has {cp} colours, toon {ct}, input {ci}"),
        );
    }
}

#[test]
fn alpha_is_kept_and_sizes_are_any() {
    let path = shared_or_skip!("media/photos/skimage_coffee.png");
    let mut input = load(&path);
    let w = input.width();
    for (x, _, p) in input.enumerate_pixels_mut() {
        p[3] = (x * 255 / (w - 1)) as u8;
    }
    for style in [Style::Toon, Style::Ink, Style::Posterize] {
        let out = Toon::new(style, 1).apply(&input, 0.8);
        let same = out.pixels().zip(input.pixels()).all(|(a, b)| a[3] == b[3]);
        check(
            same,
            "alpha",
            &[("input", &input), ("out", &out)],
            format!("{style:?} changed alpha"),
        );
    }
    // Degenerate and odd sizes do not panic.
    for (w, h) in [(0, 0), (1, 1), (1, 7), (9, 1), (3, 2)] {
        let img = RgbaImage::from_pixel(w, h, image::Rgba([200, 30, 40, 128]));
        let out = Toon::new(Style::Toon, 1).apply(&img, 1.0);
        assert_eq!(out.dimensions(), (w, h));
        assert!(out.pixels().all(|p| p[3] == 128));
    }
    // Out-of-range strengths are clamped, NaN is 0.
    let small = RgbaImage::from_pixel(8, 8, image::Rgba([10, 200, 30, 255]));
    let t = Toon::new(Style::Toon, 1);
    assert_eq!(t.apply(&small, f32::NAN), small);
    assert_eq!(t.apply(&small, 5.0), t.apply(&small, 1.0));
}

#[test]
fn output_is_deterministic_across_runs_and_thread_counts() {
    let path = shared_or_skip!("media/photos/skimage_astronaut.png");
    let input = load(&path);
    for style in [Style::Toon, Style::Ink, Style::Posterize] {
        let toon = Toon::new(style, 1);
        let a = toon.apply(&input, 0.7);
        let b = toon.apply(&input, 0.7);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        let c = pool.install(|| toon.apply(&input, 0.7));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let d = one.install(|| toon.apply(&input, 0.7));
        check(
            a.as_raw() == b.as_raw() && a.as_raw() == c.as_raw() && a.as_raw() == d.as_raw(),
            "determinism",
            &[
                ("run1", &a),
                ("run2", &b),
                ("threads3", &c),
                ("threads1", &d),
            ],
            format!("{style:?}: outputs differ between runs"),
        );
    }
}

#[test]
fn stylizer_trait_uses_denoise_as_strength() {
    let img = RgbaImage::from_fn(64, 48, |x, y| {
        image::Rgba([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8, 255])
    });
    let params = Img2ImgParams {
        denoise: 0.6,
        ..Default::default()
    };
    let req = Img2ImgRequest {
        init: &img,
        mask: None,
        controls: vec![],
        params: &params,
        seed: 1,
        subseed: 2,
    };
    let toon = Toon::new(Style::Toon, 3);
    let out = toon.stylize(&req).expect("stylize");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0], toon.apply(&img, 0.6));
    assert_eq!(toon.name(), "toon");
    assert_eq!(toon.max_parallel_frames(), 3);
    assert!(toon.ignored_fields().contains(&"prompt"));
}

// ---------------------------------------------------------------- temporal steadiness

/// Frame-to-frame statistics of a stylized sequence against its input.
struct Steadiness {
    /// Mean |Δ output| / mean |Δ input| over consecutive frames.
    relative_change: f64,
    /// Pixels (per frame pair, per million) whose output L jumps by half a band or more while
    /// the input L changed by less than 1.
    pops_per_million: f64,
}

fn steadiness(inputs: &[RgbaImage], outputs: &[RgbaImage], bands: f32) -> Steadiness {
    let step = 100.0 / bands;
    let (mut d_in, mut d_out, mut pops, mut n) = (0f64, 0f64, 0usize, 0usize);
    let lin: Vec<Plane> = inputs.iter().map(lightness).collect();
    let lout: Vec<Plane> = outputs.iter().map(lightness).collect();
    for t in 1..inputs.len() {
        d_in += mean_abs_diff(&inputs[t - 1], &inputs[t]);
        d_out += mean_abs_diff(&outputs[t - 1], &outputs[t]);
        for i in 0..lin[t].data().len() {
            let di = (lin[t].data()[i] - lin[t - 1].data()[i]).abs();
            let dout = (lout[t].data()[i] - lout[t - 1].data()[i]).abs();
            if di < 1.0 && dout >= 0.5 * step {
                pops += 1;
            }
        }
        n += lin[t].data().len();
    }
    Steadiness {
        relative_change: d_out / d_in,
        pops_per_million: pops as f64 * 1e6 / n as f64,
    }
}

/// Toon (soft bands, soft lines) flickers less than hard quantization on real footage: relative
/// frame-to-frame change and "band pops" (half-band output jumps where the input hardly moved).
fn assert_steadier_than_hard_quantization(label: &str, frames: &[RgbaImage]) {
    let preset = Style::Toon.preset();
    let toon: Vec<RgbaImage> = frames.iter().map(|f| preset.apply(f, 0.75)).collect();
    let hard: Vec<RgbaImage> = frames
        .iter()
        .map(|f| hard_quantized(f, preset.bands))
        .collect();
    // Ablation: the same pipeline with the quantization made hard.
    let hard_preset = Preset {
        sharpness_flat: 200.0,
        sharpness_edge: 200.0,
        ..preset
    };
    let toon_hard: Vec<RgbaImage> = frames.iter().map(|f| hard_preset.apply(f, 0.75)).collect();

    let s_toon = steadiness(frames, &toon, preset.bands);
    let s_hard = steadiness(frames, &hard, preset.bands);
    let s_ablate = steadiness(frames, &toon_hard, preset.bands);
    eprintln!(
        "{label}: relative change toon {:.3} / hard {:.3} / toon-with-hard-bands {:.3}; \
         pops per million toon {:.0} / hard {:.0} / toon-with-hard-bands {:.0}",
        s_toon.relative_change,
        s_hard.relative_change,
        s_ablate.relative_change,
        s_toon.pops_per_million,
        s_hard.pops_per_million,
        s_ablate.pops_per_million
    );
    let imgs = [
        ("frame0", &frames[0]),
        ("frame1", &frames[1]),
        ("toon0", &toon[0]),
        ("toon1", &toon[1]),
        ("hard0", &hard[0]),
        ("hard1", &hard[1]),
    ];
    check(
        s_toon.relative_change < s_hard.relative_change,
        "temporal",
        &imgs,
        format!(
            "{label}: toon relative change {:.3} not below hard quantization {:.3}",
            s_toon.relative_change, s_hard.relative_change
        ),
    );
    check(
        s_toon.pops_per_million < 0.25 * s_hard.pops_per_million,
        "temporal_pops",
        &imgs,
        format!(
            "{label}: toon band pops {:.0}/M, hard quantization {:.0}/M (want < 1/4)",
            s_toon.pops_per_million, s_hard.pops_per_million
        ),
    );
    check(
        s_toon.pops_per_million < s_ablate.pops_per_million,
        "temporal_ablation",
        &imgs,
        format!(
            "{label}: soft bands pop {:.0}/M, hard bands in the same pipeline {:.0}/M",
            s_toon.pops_per_million, s_ablate.pops_per_million
        ),
    );
}

#[test]
fn toon_is_temporally_steadier_than_hard_quantization_on_the_sample_clip() {
    let clip = common::sample_clip();
    let frames = decode_frames(&clip, 10, 8, 640, 360);
    assert_steadier_than_hard_quantization("bigbuckbunny-4s", &frames);
}

#[test]
fn toon_is_temporally_steadier_than_hard_quantization_on_real_footage() {
    for (rel, first, w, h) in [
        ("media/video/cockatoo.mp4", 40, 1280, 720),
        ("media/video/vtest.avi", 100, 768, 576),
        ("media/video/bikes.mp4", 40, 640, 272),
        ("media/video/balle-jbart.mp4", 40, 720, 576),
    ] {
        let clip = shared_or_skip!(rel);
        let frames = decode_frames(&clip, first, 8, w, h);
        assert_steadier_than_hard_quantization(rel, &frames);
    }
}
