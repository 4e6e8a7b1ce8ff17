//! Known-stylization acceptance tests of keyframe propagation on real footage: the toon
//! stylizer is the "style", the key is toon(frame 0), each later frame is synthesized with one
//! colour guide (frame 0 -> frame k) and scored against toon(frame k). Floors sit a little
//! below the measured figures (see BENCHMARKS.md) so that a regression fails. Clips come from
//! `../shared/media` (the tests skip with a message when it is absent).

mod common;

use image::RgbaImage;
use rotograph::imageops::quality::{psnr, ssim};
use rotograph::stylize::toon::{Style, Toon};
use rotograph::temporal::propagate::{propagate, Guide, PropagateParams};
use rotograph::testing::{hashed_texture, invert};
use std::path::{Path, PathBuf};

/// The first `n` frames of `clip`, scaled to `width` wide, starting at `start` seconds.
fn frames(clip: &Path, start: &str, width: u32, n: usize) -> Vec<RgbaImage> {
    let d = tempfile::tempdir().unwrap();
    let pattern = d.path().join("%05d.png");
    common::ffmpeg(&[
        "-ss",
        start,
        "-i",
        clip.to_str().unwrap(),
        "-vf",
        &format!("scale={width}:-2"),
        "-frames:v",
        &n.to_string(),
        pattern.to_str().unwrap(),
    ]);
    (1..=n)
        .map(|i| {
            image::open(d.path().join(format!("{i:05}.png")))
                .unwrap()
                .to_rgba8()
        })
        .collect()
}

fn one_guide<'a>(src: &'a RgbaImage, tgt: &'a RgbaImage) -> [Guide<'a>; 1] {
    [Guide {
        source: src,
        target: tgt,
        weight: 1.0,
    }]
}

#[test]
fn key_propagates_along_real_footage() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let f = frames(&clip, "2", 320, 5);
    let toon = Toon::new(Style::Toon, 1);
    let key = toon.apply(&f[0], 0.75);
    let params = PropagateParams::default();
    for (k, frame) in f.iter().enumerate().skip(1) {
        let truth = toon.apply(frame, 0.75);
        let out = propagate(&key, &one_guide(&f[0], frame), &params).unwrap();
        let (p, s) = (psnr(&out, &truth), ssim(&out, &truth));
        eprintln!("bikes frame {k}: PSNR {p:.2} dB, SSIM {s:.4}");
        assert!(p >= PSNR_FLOOR[k - 1], "frame {k}: PSNR {p:.2} dB");
        assert!(s >= SSIM_FLOOR[k - 1], "frame {k}: SSIM {s:.4}");
        // Not a copy of the key: the synthesis follows the motion better than the key itself.
        assert!(
            p > psnr(&key, &truth) + 1.0,
            "frame {k} no better than the key"
        );
    }
}

/// Floors for frames 1..=4 of `key_propagates_along_real_footage`, about 1 dB / 0.01 below the
/// measured 29.41, 28.62, 28.14, 27.78 dB and 0.960, 0.951, 0.943, 0.936.
const PSNR_FLOOR: [f64; 4] = [28.4, 27.6, 27.1, 26.8];
const SSIM_FLOOR: [f64; 4] = [0.950, 0.941, 0.933, 0.926];

#[test]
fn identity_on_a_real_frame_is_clean_to_the_borders() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let f = frames(&clip, "1", 320, 1);
    let key = Toon::new(Style::Toon, 1).apply(&f[0], 0.75);
    let out = propagate(&key, &one_guide(&f[0], &f[0]), &PropagateParams::default()).unwrap();
    let whole = psnr(&out, &key);
    // The outermost 4-pixel band alone, where the public engine fails.
    let (w, h) = key.dimensions();
    let band = |img: &RgbaImage| {
        let mut v = RgbaImage::new(w, 8);
        for x in 0..w {
            for y in 0..4 {
                v.put_pixel(x, y, *img.get_pixel(x, y));
                v.put_pixel(x, y + 4, *img.get_pixel(x, h - 1 - y));
            }
        }
        v
    };
    let edge = psnr(&band(&out), &band(&key));
    eprintln!("identity: whole frame {whole:.2} dB, top/bottom bands {edge:.2} dB");
    assert!(
        whole >= 40.0,
        "identity PSNR {whole:.2} dB over the whole frame"
    );
    assert!(edge >= 40.0, "identity PSNR {edge:.2} dB along the borders");
}

// ---------------------------------------------------------------- video mode

use rotograph::temporal::propagate::{propagate_video, VideoOptions};
use rotograph::NoProgress;

/// Writes `images` as `dir/NNNNN.png` (1-based, like `extract`).
fn write_all(dir: &Path, images: &[(usize, &RgbaImage)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, img) in images {
        img.save(dir.join(format!("{i:05}.png"))).unwrap();
    }
}

#[test]
fn video_mode_between_two_keys_tracks_the_truth() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let d = tempfile::tempdir().unwrap();
    let (f, fd, kd) = two_key_span(&clip, d.path());
    let od = d.path().join("o");
    let r = propagate_video(&fd, &kd, &od, &VideoOptions::default(), &NoProgress).unwrap();
    assert_eq!((r.frames, r.keys), (7, 2));
    assert!(
        !od.join(".propagate-forward").exists(),
        "temporary folder left behind"
    );
    for (k, (p, s)) in score_two_key_run(&od, &f).into_iter().enumerate() {
        let i = k + 1;
        eprintln!("video frame {i}: PSNR {p:.2} dB, SSIM {s:.4}");
        assert!(p >= VIDEO_PSNR_FLOOR, "frame {i}: PSNR {p:.2} dB");
        assert!(s >= VIDEO_SSIM_FLOOR, "frame {i}: SSIM {s:.4}");
    }
}

/// bikes.mp4 from 2 s, 7 frames 320 px wide, written as frames 1-7 into `dir/f`, and the toon
/// stylizations of the first and the last as keys in `dir/k`; returns the frames and the two
/// folders.
fn two_key_span(clip: &Path, dir: &Path) -> (Vec<RgbaImage>, PathBuf, PathBuf) {
    let f = frames(clip, "2", 320, 7);
    let toon = Toon::new(Style::Toon, 1);
    let (fd, kd) = (dir.join("f"), dir.join("k"));
    write_all(
        &fd,
        &f.iter()
            .enumerate()
            .map(|(i, x)| (i + 1, x))
            .collect::<Vec<_>>(),
    );
    let (k0, k6) = (toon.apply(&f[0], 0.75), toon.apply(&f[6], 0.75));
    write_all(&kd, &[(1, &k0), (7, &k6)]);
    (f, fd, kd)
}

/// PSNR and SSIM of frames 2-6 of a run over [`two_key_span`] (output folder `od`) against the
/// toon stylization of each frame; the two keys must come through unchanged.
fn score_two_key_run(od: &Path, f: &[RgbaImage]) -> Vec<(f64, f64)> {
    let toon = Toon::new(Style::Toon, 1);
    let mut scores = Vec::new();
    for (i, frame) in f.iter().enumerate() {
        let out = image::open(od.join(format!("{:05}.png", i + 1)))
            .unwrap()
            .to_rgba8();
        let truth = toon.apply(frame, 0.75);
        if i == 0 || i == f.len() - 1 {
            assert_eq!(out, truth, "keys are copied through");
        } else {
            scores.push((psnr(&out, &truth), ssim(&out, &truth)));
        }
    }
    scores
}

/// Floors of `video_mode_between_two_keys_tracks_the_truth`: its worst frame (33.49 dB, SSIM
/// 0.980) less about 1 dB / 0.01.
const VIDEO_PSNR_FLOOR: f64 = 32.4;
const VIDEO_SSIM_FLOOR: f64 = 0.970;

/// A small textured frame that moves right by `t` pixels.
fn moving(t: u32) -> RgbaImage {
    hashed_texture(48, 40, 100 - t)
}

#[test]
fn video_mode_masks_many_keys_and_bad_keys() {
    let d = tempfile::tempdir().unwrap();
    let (fd, kd, md, od) = (
        d.path().join("f"),
        d.path().join("k"),
        d.path().join("m"),
        d.path().join("o"),
    );
    let n = 203;
    let frames: Vec<RgbaImage> = (0..n).map(|t| moving(t as u32 % 20)).collect();
    write_all(&fd, &frames.iter().enumerate().collect::<Vec<_>>());
    // 102 keys: every other frame.
    let keys: Vec<(usize, RgbaImage)> =
        (0..n).step_by(2).map(|i| (i, invert(&frames[i]))).collect();
    write_all(&kd, &keys.iter().map(|(i, k)| (*i, k)).collect::<Vec<_>>());
    // Masks: stylize the left half only.
    let mask =
        image::GrayImage::from_fn(48, 40, |x, _| image::Luma([if x < 24 { 255 } else { 0 }]));
    std::fs::create_dir_all(&md).unwrap();
    for i in 0..n {
        mask.save(md.join(format!("{i:05}.png"))).unwrap();
    }
    let opts = VideoOptions {
        mask_dir: Some(md.clone()),
        ..Default::default()
    };
    let r = propagate_video(&fd, &kd, &od, &opts, &NoProgress).unwrap();
    assert_eq!((r.frames, r.keys), (n, keys.len()));
    for (i, frame) in frames.iter().enumerate() {
        let out = image::open(od.join(format!("{i:05}.png")))
            .unwrap()
            .to_rgba8();
        for (x, y, p) in out.enumerate_pixels() {
            if x >= 24 {
                assert_eq!(
                    p,
                    frame.get_pixel(x, y),
                    "frame {i} ({x},{y}) outside the mask"
                );
            }
        }
        let left = |img: &RgbaImage| image::imageops::crop_imm(img, 0, 0, 24, 40).to_image();
        let p = psnr(&left(&out), &left(&invert(frame)));
        assert!(p >= 25.0, "frame {i}: PSNR {p:.2} dB inside the mask");
    }

    // A key with no frame of its name, and a key of the wrong size, are errors naming them.
    let bad = d.path().join("bad");
    write_all(&bad, &[(9999, &keys[0].1)]);
    let e = propagate_video(&fd, &bad, &od, &VideoOptions::default(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("09999.png"), "{e}");
    let bad2 = d.path().join("bad2");
    let small = RgbaImage::new(10, 10);
    write_all(&bad2, &[(3, &small)]);
    let e = propagate_video(&fd, &bad2, &od, &VideoOptions::default(), &NoProgress).unwrap_err();
    assert!(
        e.to_string().contains("00003.png") && e.to_string().contains("10x10"),
        "{e}"
    );
    // A corrupt key after a good one fails the run before any frame is written.
    let bad3 = d.path().join("bad3");
    write_all(&bad3, &[(0, &keys[0].1), (4, &keys[2].1), (8, &keys[4].1)]);
    let png = std::fs::read(bad3.join("00008.png")).unwrap();
    std::fs::write(bad3.join("00008.png"), &png[..png.len() / 2]).unwrap();
    let od3 = d.path().join("o3");
    let e = propagate_video(&fd, &bad3, &od3, &VideoOptions::default(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("00008.png"), "{e}");
    let written = std::fs::read_dir(&od3).map_or(0, |r| {
        r.filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count()
    });
    assert_eq!(
        written, 0,
        "frames were written before the bad key was found"
    );
}

/// Stops the run after `limit` frame events (like Ctrl-C part way through).
struct StopAfter {
    limit: usize,
    seen: std::sync::atomic::AtomicUsize,
}

impl rotograph::progress::Progress for StopAfter {
    fn event(&self, e: rotograph::progress::Event) {
        if matches!(e, rotograph::progress::Event::Frame { .. }) {
            self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    fn should_stop(&self) -> bool {
        self.seen.load(std::sync::atomic::Ordering::Relaxed) >= self.limit
    }
}

/// The output frames of a run, by name.
fn outputs(dir: &Path, n: usize) -> Vec<Option<RgbaImage>> {
    (0..n)
        .map(|i| {
            image::open(dir.join(format!("{i:05}.png")))
                .ok()
                .map(|x| x.to_rgba8())
        })
        .collect()
}

#[test]
fn video_mode_resumes_an_interrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let (fd, kd, od, full) = (
        d.path().join("f"),
        d.path().join("k"),
        d.path().join("o"),
        d.path().join("full"),
    );
    let n = 12;
    let frames: Vec<RgbaImage> = (0..n).map(|t| moving(t as u32)).collect();
    write_all(&fd, &frames.iter().enumerate().collect::<Vec<_>>());
    write_all(&kd, &[(2, &invert(&frames[2])), (6, &invert(&frames[6]))]);
    let opts = VideoOptions::default();
    // The reference: one uninterrupted run.
    let r = propagate_video(&fd, &kd, &full, &opts, &NoProgress).unwrap();
    assert_eq!((r.skipped, r.discarded_stale), (0, false));
    let reference = outputs(&full, n);
    assert!(reference.iter().all(Option::is_some));

    // Interrupted after 4 frames: key 2, frames 1 and 0, then frame 5 of the span 3..=5.
    let stop = StopAfter {
        limit: 4,
        seen: Default::default(),
    };
    let e = propagate_video(&fd, &kd, &od, &opts, &stop).unwrap_err();
    assert!(matches!(e, rotograph::Error::Interrupted), "{e}");
    assert!(od.join(".propagate-settings-key").exists());
    let partial = outputs(&od, n);
    let written = partial.iter().filter(|x| x.is_some()).count();

    assert_eq!(written, 4);
    // The resumed run skips the finished spans (key 2, frames 0-1) and recomputes the rest;
    // every frame equals the uninterrupted run's.
    let r = propagate_video(&fd, &kd, &od, &opts, &NoProgress).unwrap();
    assert_eq!(r.skipped, 3, "{r:?}");
    assert!(!r.discarded_stale);
    assert_eq!(outputs(&od, n), reference);

    // Everything done: all skipped.
    let r = propagate_video(&fd, &kd, &od, &opts, &NoProgress).unwrap();
    assert_eq!(r.skipped, n);

    // Interrupted inside the chain after the last key (key 2, 1, 0, 5, 4, 3, key 6, 7, 8): the
    // chain's checkpoint lets the resumed run go on from frame 9 with the same results.
    let od2 = d.path().join("o2");
    let stop = StopAfter {
        limit: 9,
        seen: Default::default(),
    };
    propagate_video(&fd, &kd, &od2, &opts, &stop).unwrap_err();
    assert!(od2.join(".propagate-chain-tail").exists());
    let r = propagate_video(&fd, &kd, &od2, &opts, &NoProgress).unwrap();
    assert_eq!(r.skipped, 9, "{r:?}");
    assert_eq!(outputs(&od2, n), reference);
    assert!(!od2.join(".propagate-chain-tail").exists());

    // Other settings: the old frames are deleted first, then everything is recomputed.
    let other = VideoOptions {
        edge_weight: 0.0,
        ..Default::default()
    };
    let stop = StopAfter {
        limit: 1,
        seen: Default::default(),
    };
    propagate_video(&fd, &kd, &od, &other, &stop).unwrap_err();
    assert!(
        outputs(&od, n).iter().filter(|x| x.is_some()).count() < n,
        "stale frames must not survive a settings change"
    );
    let r = propagate_video(&fd, &kd, &od, &other, &NoProgress).unwrap();
    assert_eq!((r.skipped, r.discarded_stale), (1, false), "{r:?}");
    let r = propagate_video(&fd, &kd, &od, &opts, &NoProgress).unwrap();
    assert_eq!((r.skipped, r.discarded_stale), (0, true), "{r:?}");
    assert_eq!(outputs(&od, n), reference);

    // The output may not be the frames or keys folder (it would delete or mix with them).
    for bad in [&fd, &kd] {
        let e = propagate_video(&fd, &kd, bad, &opts, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("folder of its own"), "{e}");
    }
    assert_eq!(outputs(&fd, n).iter().filter(|x| x.is_some()).count(), n);
}

/// A seeded texture of uncorrelated pixels in 64..=191.
fn noise(seed: u64, w: u32, h: u32) -> RgbaImage {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    RgbaImage::from_fn(w, h, |_, _| {
        let mut v = [0u8; 4];
        for c in v.iter_mut().take(3) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *c = 64 + (s >> 57) as u8;
        }
        v[3] = 255;
        image::Rgba(v)
    })
}

/// Standard deviation of the RGB values of an image.
fn rgb_std(img: &RgbaImage) -> f64 {
    let v: Vec<f64> = img
        .pixels()
        .flat_map(|p| p.0[..3].iter().map(|&c| c as f64).collect::<Vec<_>>())
        .collect();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
}

#[test]
fn video_mode_blend_between_disagreeing_keys_keeps_contrast() {
    // A still shot with two keys of unrelated texture: each side reproduces its own key, equally
    // well, so the middle frame is an even blend of two uncorrelated textures. A cross-fade
    // would keep ~71% of their contrast.
    let d = tempfile::tempdir().unwrap();
    let (fd, kd, od) = (d.path().join("f"), d.path().join("k"), d.path().join("o"));
    let still = moving(0);
    write_all(&fd, &(0..7).map(|i| (i, &still)).collect::<Vec<_>>());
    let (a, b) = (noise(11, 48, 40), noise(12, 48, 40));
    write_all(&kd, &[(0, &a), (6, &b)]);
    propagate_video(&fd, &kd, &od, &VideoOptions::default(), &NoProgress).unwrap();
    let input = (rgb_std(&a) + rgb_std(&b)) / 2.0;
    let mid = image::open(od.join("00003.png")).unwrap().to_rgba8();
    let kept = rgb_std(&mid) / input;
    eprintln!("middle frame keeps {kept:.3} of the keys' contrast");
    assert!(
        (0.95..=1.05).contains(&kept),
        "middle frame keeps {kept:.3} of the contrast"
    );
    // And it is a blend, not one of the keys.
    assert!(psnr(&mid, &a) < 20.0 && psnr(&mid, &b) < 20.0);
}

// ------------------------------------------------ gradient-domain fix of the blend

use rotograph::temporal::propagate::{blend_syntheses, propagate_with_error, Blend};

/// Seam energy of a blend: the mean of |∇ G_σ(img − truth)|² (σ = 2 px, so the independent
/// pixel noise of the syntheses does not count, steps and blotches do; forward differences,
/// summed over RGB) over the pixels within 2 of a switch of `selection` (the blend's seams),
/// and their count.
fn seam_energy(img: &RgbaImage, truth: &RgbaImage, selection: &image::GrayImage) -> (f64, usize) {
    use rotograph::imageops::{blur::gaussian_blur, Plane};
    let (w, h) = img.dimensions();
    let diff: Vec<Plane> = (0..3)
        .map(|c| {
            let p = Plane::from_fn(w as usize, h as usize, |x, y| {
                img.get_pixel(x as u32, y as u32).0[c] as f32
                    - truth.get_pixel(x as u32, y as u32).0[c] as f32
            });
            gaussian_blur(&p, 2.0)
        })
        .collect();
    let d = |x: u32, y: u32, c: usize| diff[c].data()[(y * w + x) as usize] as f64;
    let s = |x: u32, y: u32| selection.get_pixel(x, y).0[0];
    let (mut sum, mut n) = (0.0, 0);
    for y in 2..h - 3 {
        for x in 2..w - 3 {
            if (x - 2..=x + 2).any(|u| (y - 2..=y + 2).any(|v| s(u, v) != s(x, y))) {
                for c in 0..3 {
                    sum += (d(x + 1, y, c) - d(x, y, c)).powi(2)
                        + (d(x, y + 1, c) - d(x, y, c)).powi(2);
                }
                n += 1;
            }
        }
    }
    (sum / n.max(1) as f64, n)
}

/// Floors of the gradient-domain fix on real footage against the histogram-preserving blend
/// alone, per frame: it measured up to 1.0 dB PSNR and 0.0085 SSIM below it (two-key blends) and
/// up to 1.3 dB / 0.005 (video mode); see BENCHMARKS.md. The tests fail past these.
const FIX_PSNR_LOSS: f64 = 1.5;
const FIX_SSIM_LOSS: f64 = 0.015;

#[test]
fn gradient_fix_on_real_footage_two_key_blends() {
    // Keys toon(frame 0) and toon(frame 6) each synthesize frames 1-5 (one colour guide); the
    // two results are blended with and without the fix and scored against toon(frame).
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let f = frames(&clip, "2", 320, 7);
    let toon = Toon::new(Style::Toon, 1);
    let (k0, k6) = (toon.apply(&f[0], 0.75), toon.apply(&f[6], 0.75));
    let params = PropagateParams::default();
    for (t, frame) in f.iter().enumerate().take(6).skip(1) {
        let truth = toon.apply(frame, 0.75);
        let a = propagate_with_error(&k0, &one_guide(&f[0], frame), &params).unwrap();
        let b = propagate_with_error(&k6, &one_guide(&f[6], frame), &params).unwrap();
        let hist = blend_syntheses(&a, &b, Blend::Histogram).unwrap();
        let grad = blend_syntheses(&a, &b, Blend::Gradient).unwrap();
        assert_eq!(hist.selection, grad.selection, "one selection for both");
        let (sh, n) = seam_energy(&hist.image, &truth, &hist.selection);
        let (sg, _) = seam_energy(&grad.image, &truth, &grad.selection);
        let (ph, pg) = (psnr(&hist.image, &truth), psnr(&grad.image, &truth));
        let (qh, qg) = (ssim(&hist.image, &truth), ssim(&grad.image, &truth));
        eprintln!(
            "frame {t}: seam energy {sh:.2} -> {sg:.2} over {n} px; PSNR {ph:.2} -> {pg:.2} dB; \
             SSIM {qh:.4} -> {qg:.4}"
        );
        // The fix acts (it is not the blend)...
        assert!(
            psnr(&grad.image, &hist.image) < 45.0,
            "frame {t}: no change"
        );
        // ...and costs at most the measured amount.
        assert!(
            pg >= ph - FIX_PSNR_LOSS,
            "frame {t}: PSNR {pg:.2} from {ph:.2}"
        );
        assert!(
            qg >= qh - FIX_SSIM_LOSS,
            "frame {t}: SSIM {qg:.4} from {qh:.4}"
        );
    }
}

#[test]
fn video_mode_gradient_fix_scores_against_the_truth() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let d = tempfile::tempdir().unwrap();
    let (f, fd, kd) = two_key_span(&clip, d.path());
    let mut scores = Vec::new();
    for blend in [Blend::Histogram, Blend::Gradient] {
        let od = d.path().join(format!("{blend:?}"));
        let opts = VideoOptions {
            blend,
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        propagate_video(&fd, &kd, &od, &opts, &NoProgress).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let (p, s): (Vec<f64>, Vec<f64>) = score_two_key_run(&od, &f).into_iter().unzip();
        eprintln!("{blend:?}: {secs:.2} s wall, PSNR {p:.2?}, SSIM {s:.4?}");
        scores.push((p, s));
    }
    let ((ph, sh), (pg, sg)) = (&scores[0], &scores[1]);
    for i in 0..5 {
        assert!(
            pg[i] >= VIDEO_PSNR_FLOOR - 1.3,
            "frame {}: PSNR {:.2}",
            i + 1,
            pg[i]
        );
        assert!(
            pg[i] >= ph[i] - FIX_PSNR_LOSS,
            "frame {}: PSNR {:.2}",
            i + 1,
            pg[i]
        );
        assert!(
            sg[i] >= sh[i] - FIX_SSIM_LOSS,
            "frame {}: SSIM {:.4}",
            i + 1,
            sg[i]
        );
        assert!(pg[i] != ph[i], "frame {}: the fix changed nothing", i + 1);
    }
}

#[test]
fn video_mode_gradient_fix_keeps_the_source_outside_the_mask() {
    let d = tempfile::tempdir().unwrap();
    let (fd, kd, md) = (d.path().join("f"), d.path().join("k"), d.path().join("m"));
    let n = 7;
    let frames: Vec<RgbaImage> = (0..n).map(|t| moving(3 * t as u32)).collect();
    write_all(&fd, &frames.iter().enumerate().collect::<Vec<_>>());
    // Two keys of different styles, so the two sides disagree and the fix has work to do.
    let mut dark = invert(&frames[6]);
    dark.pixels_mut()
        .for_each(|p| (0..3).for_each(|c| p.0[c] /= 2));
    write_all(&kd, &[(0, &invert(&frames[0])), (6, &dark)]);
    let mask = image::GrayImage::from_fn(48, 40, |x, y| {
        image::Luma([if x < 30 && y > 8 { 255 } else { 0 }])
    });
    std::fs::create_dir_all(&md).unwrap();
    for i in 0..n {
        mask.save(md.join(format!("{i:05}.png"))).unwrap();
    }
    let run = |blend: Blend, out: &str| {
        let od = d.path().join(out);
        let opts = VideoOptions {
            mask_dir: Some(md.clone()),
            blend,
            ..Default::default()
        };
        propagate_video(&fd, &kd, &od, &opts, &NoProgress).unwrap();
        outputs(&od, n)
    };
    let (grad, hist) = (run(Blend::Gradient, "g"), run(Blend::Histogram, "h"));
    let mut changed = 0;
    for (i, frame) in frames.iter().enumerate() {
        let (g, h) = (grad[i].as_ref().unwrap(), hist[i].as_ref().unwrap());
        for (x, y, p) in g.enumerate_pixels() {
            if mask.get_pixel(x, y).0[0] == 0 {
                assert_eq!(
                    p,
                    frame.get_pixel(x, y),
                    "frame {i} ({x},{y}) outside the mask"
                );
            } else if p != h.get_pixel(x, y) {
                changed += 1;
            }
        }
    }
    assert!(
        changed > 100,
        "the fix changed only {changed} masked pixels"
    );
}
