//! Known-style benchmark of keyframe propagation (`scripts/bench_propagate.sh` runs it).
//!
//!     cargo run --release -p rotograph --example propagate_bench -- DIR [--weight W]
//!         [--patch P] [--sv N] [--pm N] [--extra] [--frames N] [--video]
//!         [--two-keys] [--blend histogram|gradient]
//!
//! DIR comes from `scripts/make_propagate_set.py` (frames/NNNNN.png, flow/NNNNN.flo = true flow
//! from frame k to frame 0). The style is the toon stylizer: key = toon(frame 0); each frame k
//! is synthesized with one colour guide (frame 0 -> frame k) and scored (PSNR, SSIM) against
//! toon(frame k), next to the key warped by the true motion. Prints one line per frame, the
//! means and the CPU seconds of the synthesis per frame. With `--video` the frames are
//! synthesized by the video mode instead (`propagate_video`, one key at frame 0, flow-based
//! guides; the CPU seconds are then the whole run's, flow included, divided by the frames).
//! Each run saves the key as DIR/key.png; `--engine-only` then only synthesizes frame 1 from
//! it, without the stylizer or scoring, so the process's peak memory is the engine's.
//! `--identity` also synthesizes frame 0 onto itself and prints the PSNR against the key over
//! the whole frame and without a 32-pixel border.
//! `--two-keys` (video mode) adds a second key, toon(last frame), so that frames 1..N-2 are
//! blends of the two keys' sequences (scored: frames 1..N-2), and times one blend of the middle
//! frame's two syntheses with each blend; `--blend gradient` turns the gradient-domain fix on.

use rotograph::flow::{warp, FlowField};
use rotograph::frames::read_frame;
use rotograph::stylize::toon::{Style, Toon};
use rotograph::temporal::propagate::{
    blend_syntheses, propagate_video, propagate_with_error, Blend, VideoOptions,
};
use rotograph::temporal::propagate::{propagate, quality, Guide, PropagateParams};
use std::path::PathBuf;

/// User + system CPU seconds of this process (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, s)| s);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: propagate_bench DIR [options]")?);
    let mut params = PropagateParams::default();
    let (mut weight, mut frames, mut video, mut engine_only) = (1.0f32, 10usize, false, false);
    let (mut identity, mut two_keys, mut blend) = (false, false, Blend::Histogram);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--weight" => weight = val()?.parse()?,
            "--patch" => params.patch_size = val()?.parse()?,
            "--sv" => params.search_vote_iters = val()?.parse()?,
            "--pm" => params.patchmatch_iters = val()?.parse()?,
            "--frames" => frames = val()?.parse()?,
            "--extra" => params.extra_pass_3x3 = true,
            "--video" => video = true,
            "--engine-only" => engine_only = true,
            "--identity" => identity = true,
            "--two-keys" => two_keys = true,
            "--blend" => {
                blend = match val()?.as_str() {
                    "histogram" => Blend::Histogram,
                    "gradient" => Blend::Gradient,
                    other => return Err(format!("unknown blend {other}").into()),
                }
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let toon = Toon::new(Style::Toon, 1);
    let frame = |k: usize| read_frame(&dir.join("frames").join(format!("{k:05}.png")));
    let f0 = frame(0)?.image;
    if engine_only {
        let key = read_frame(&dir.join("key.png"))?.image;
        let f1 = frame(1)?.image;
        let t0 = cpu_seconds();
        let g = [Guide {
            source: &f0,
            target: &f1,
            weight,
        }];
        let out = propagate(&key, &g, &params)?;
        println!(
            "engine only: {}x{} in {:.2} CPU-s",
            out.width(),
            out.height(),
            cpu_seconds() - t0
        );
        return Ok(());
    }
    let key = toon.apply(&f0, 0.75);
    key.save(dir.join("key.png"))?;
    if identity {
        let g = [Guide {
            source: &f0,
            target: &f0,
            weight,
        }];
        let out = propagate(&key, &g, &params)?;
        let (w, h) = key.dimensions();
        let inner = |img: &image::RgbaImage| {
            image::imageops::crop_imm(img, 32, 32, w - 64, h - 64).to_image()
        };
        println!(
            "identity (frame 0 onto itself): {:.2} dB whole frame, {:.2} dB without a 32 px border",
            quality::psnr(&out, &key),
            quality::psnr(&inner(&out), &inner(&key))
        );
    }
    // Video mode: all frames at once into a temporary folder, scored below.
    let work = std::env::temp_dir().join(format!("propagate-bench-{}", std::process::id()));
    let mut video_cpu = 0.0;
    if video {
        let (fd, kd, od) = (work.join("f"), work.join("k"), work.join("o"));
        for d in [&fd, &kd] {
            std::fs::create_dir_all(d)?;
        }
        for k in 0..frames {
            let name = format!("{k:05}.png");
            std::fs::copy(dir.join("frames").join(&name), fd.join(&name))?;
        }
        key.save(kd.join("00000.png"))?;
        if two_keys {
            let last = toon.apply(&frame(frames - 1)?.image, 0.75);
            last.save(kd.join(format!("{:05}.png", frames - 1)))?;
        }
        let opts = VideoOptions {
            params: params.clone(),
            blend,
            ..Default::default()
        };
        let t0 = cpu_seconds();
        propagate_video(&fd, &kd, &od, &opts, &rotograph::NoProgress)?;
        video_cpu = (cpu_seconds() - t0) / (frames - 1 - usize::from(two_keys)) as f64;
    }
    // The blend step alone, on the middle frame (one colour guide from each key).
    if video && two_keys {
        let (m, last) = (frames / 2, frames - 1);
        let (fm, fl) = (frame(m)?.image, frame(last)?.image);
        let g = |src| {
            [Guide {
                source: src,
                target: &fm,
                weight,
            }]
        };
        let a = propagate_with_error(&key, &g(&f0), &params)?;
        let b = propagate_with_error(&toon.apply(&fl, 0.75), &g(&fl), &params)?;
        for mode in [Blend::Histogram, Blend::Gradient] {
            let (reps, t0) = (5, cpu_seconds());
            let wall = std::time::Instant::now();
            for _ in 0..reps {
                blend_syntheses(&a, &b, mode)?;
            }
            println!(
                "blend {mode:?} of frame {m}: {:.3} CPU-s, {:.3} s wall per frame",
                (cpu_seconds() - t0) / reps as f64,
                wall.elapsed().as_secs_f64() / reps as f64
            );
        }
    }
    // With two keys the last frame is a key: scored are the blended frames only.
    let frames = if video && two_keys {
        frames - 1
    } else {
        frames
    };
    let (mut sums, mut n, mut cpu_total) = ([0.0f64; 4], 0.0, 0.0);
    println!("frame  psnr_dB  ssim    cpu_s   warp_psnr_dB  warp_ssim");
    for k in 1..frames {
        let fk = frame(k)?.image;
        let truth = toon.apply(&fk, 0.75);
        let t0 = cpu_seconds();
        let out = if video {
            read_frame(&work.join("o").join(format!("{k:05}.png")))?.image
        } else {
            propagate(
                &key,
                &[Guide {
                    source: &f0,
                    target: &fk,
                    weight,
                }],
                &params,
            )?
        };
        let cpu = if video { video_cpu } else { cpu_seconds() - t0 };
        let flow = FlowField::read_flo(&dir.join("flow").join(format!("{k:05}.flo")))?;
        let (warped, _) = warp(&key, &flow)?;
        let s = [
            quality::psnr(&out, &truth),
            quality::ssim(&out, &truth),
            quality::psnr(&warped, &truth),
            quality::ssim(&warped, &truth),
        ];
        println!(
            "{k:5}  {:7.2}  {:.4}  {cpu:6.2}  {:12.2}  {:.4}",
            s[0], s[1], s[2], s[3]
        );
        for (acc, v) in sums.iter_mut().zip(s) {
            *acc += v;
        }
        n += 1.0;
        cpu_total += cpu;
    }
    if video {
        std::fs::remove_dir_all(&work)?;
    }
    println!(
        "mean   {:7.2}  {:.4}  {:6.2}  {:12.2}  {:.4}",
        sums[0] / n,
        sums[1] / n,
        cpu_total / n,
        sums[2] / n,
        sums[3] / n
    );
    Ok(())
}
