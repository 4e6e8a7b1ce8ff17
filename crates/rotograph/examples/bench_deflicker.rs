//! Deflicker benchmark for BENCHMARKS.md (run by `scripts/bench_deflicker.sh`):
//! `cargo run --release --example bench_deflicker -- SOURCE_FRAMES WORK_DIR [STRENGTH [ANCHOR]]`.
//!
//! In one run: stylizes the source frames with toon (the clean reference), makes a flickering
//! copy (seeded per-frame colour offset ±24 and per-pixel noise ±12, `temporal::deflicker::
//! testing::jitter`), then deflickers the flickering copy with rotograph's deflicker, a plain
//! flow-guided blend (0.3 of the new frame, 0.7 of the warped previous output, on reliable
//! pixels) and ffmpeg's `deflicker` and `tmix` filters (as whole processes over PNG folders).
//! Reports, per method, E_warp (`temporal::consistency`, mean over consecutive pairs), PSNR to
//! the clean stylization (mean over frames) and time per frame. The source motion is computed
//! once (flow preset medium) and shared by the measurement and the flow-based methods; its
//! time is reported on its own line and counted in rotograph's time per frame.
use image::RgbaImage;
use rotograph::flow::{warp, FlowParams, Preset, Pyramid};
use rotograph::frames::{list_frames, read_frame};
use rotograph::stylize::toon::Style;
use rotograph::temporal::deflicker::testing::{jitter, psnr};
use rotograph::temporal::deflicker::{Deflicker, DeflickerParams};
use rotograph::temporal::{warp_error, SourceMotion};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn read_dir(dir: &Path) -> Res<Vec<RgbaImage>> {
    Ok(list_frames(dir)?
        .iter()
        .map(|p| read_frame(p).map(|f| f.image))
        .collect::<Result<_, _>>()?)
}

fn write_dir(dir: &Path, frames: &[RgbaImage]) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    for (i, f) in frames.iter().enumerate() {
        f.save(dir.join(format!("{:05}.png", i + 1)))?;
    }
    Ok(())
}

/// Mean E_warp over consecutive pairs and mean PSNR to `clean`.
fn score(frames: &[RgbaImage], clean: &[RgbaImage], motions: &[SourceMotion]) -> Res<(f64, f64)> {
    let mut e = 0.0;
    for (k, m) in motions.iter().enumerate() {
        e += warp_error(&frames[k], &frames[k + 1], m)?.unwrap_or(0.0);
    }
    let p: f64 = frames.iter().zip(clean).map(|(a, b)| psnr(a, b)).sum();
    Ok((e / motions.len() as f64, p / frames.len() as f64))
}

/// A flow-guided blend: `new` of the processed frame, the rest from the warped previous
/// output, where the source motion is reliable.
fn blend(jit: &[RgbaImage], motions: &[SourceMotion], new: f32) -> Res<Vec<RgbaImage>> {
    let mut out = vec![jit[0].clone()];
    for (k, m) in motions.iter().enumerate() {
        let (w, inside) = warp(&out[k], &m.flow)?;
        let mut o = jit[k + 1].clone();
        for (i, px) in o.pixels_mut().enumerate() {
            if m.mask.as_raw()[i] != 0 && inside.as_raw()[i] != 0 {
                let q = w.as_raw();
                for c in 0..3 {
                    let v = new * px[c] as f32 + (1.0 - new) * q[i * 4 + c] as f32;
                    px[c] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out.push(o);
    }
    Ok(out)
}

/// The source motion between each pair of consecutive frames (one pyramid per frame).
fn source_motion(source: &[RgbaImage], flow: &FlowParams) -> Res<Vec<SourceMotion>> {
    let pyrs: Vec<Pyramid> = source
        .iter()
        .map(|s| Pyramid::for_params(s, flow))
        .collect();
    Ok(pyrs
        .windows(2)
        .map(|p| SourceMotion::between(&p[0], &p[1], flow))
        .collect::<Result<_, _>>()?)
}

/// rotograph's deflicker over the jittered frames with the precomputed source motion.
fn run_ours(
    source: &[RgbaImage],
    jit: &[RgbaImage],
    motions: &[SourceMotion],
    strength: f32,
    anchor: f32,
    prior: Option<f32>,
    sigma: Option<f32>,
) -> Res<Vec<RgbaImage>> {
    let defaults = DeflickerParams::default();
    let mut engine = Deflicker::new(DeflickerParams {
        strength,
        anchor,
        prior: prior.unwrap_or(defaults.prior),
        source_sigma: sigma.unwrap_or(defaults.source_sigma),
        ..defaults
    })?;
    let mut out = vec![engine.push_with_motion(&source[0], &jit[0], None, None)?];
    for (k, m) in motions.iter().enumerate() {
        out.push(engine.push_with_motion(&source[k + 1], &jit[k + 1], Some(m), None)?);
    }
    Ok(out)
}

/// Runs ffmpeg with `filter` over `input/%05d.png` into `output/`; returns the seconds taken.
fn ffmpeg(filter: &str, input: &Path, output: &Path) -> Res<f64> {
    std::fs::create_dir_all(output)?;
    let t = Instant::now();
    let st = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-framerate",
            "25",
        ])
        .arg("-i")
        .arg(input.join("%05d.png"))
        .args(["-vf", filter, "-threads", "2"])
        .arg(output.join("%05d.png"))
        .status()?;
    if !st.success() {
        return Err(format!("ffmpeg {filter} failed").into());
    }
    Ok(t.elapsed().as_secs_f64())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: bench_deflicker SOURCE_FRAMES WORK_DIR [STRENGTH [ANCHOR]]".into());
    }
    let work = Path::new(&args[1]);
    let defaults = DeflickerParams::default();
    let strength: f32 = args.get(2).map_or(Ok(defaults.strength), |s| s.parse())?;
    let anchor: f32 = args.get(3).map_or(Ok(0.3 * strength), |s| s.parse())?;
    let source = read_dir(Path::new(&args[0]))?;
    if source.len() < 2 {
        return Err("need at least two source frames".into());
    }
    let n = source.len();
    let (w, h) = source[0].dimensions();
    let preset = Style::Toon.preset();
    let clean: Vec<RgbaImage> = source.iter().map(|s| preset.apply(s, 0.75)).collect();
    let jit: Vec<RgbaImage> = clean
        .iter()
        .enumerate()
        .map(|(i, c)| jitter(c, 1000 + i as u64, 24, 12))
        .collect();
    write_dir(&work.join("jitter"), &jit)?;

    // Source motion, once.
    let t = Instant::now();
    let motions = source_motion(&source, &FlowParams::default())?;
    let flow_s = t.elapsed().as_secs_f64() / n as f64;
    let coverage: f64 = motions.iter().map(|m| m.coverage()).sum::<f64>() / motions.len() as f64;

    // rotograph deflicker: the solve per frame (the motion above is its flow).
    let t = Instant::now();
    let ours = run_ours(&source, &jit, &motions, strength, anchor, None, None)?;
    let solve_s = t.elapsed().as_secs_f64() / n as f64;
    write_dir(&work.join("ours"), &ours)?;
    let t = Instant::now();
    let blended = blend(&jit, &motions, 0.3)?;
    let blend_s = t.elapsed().as_secs_f64() / n as f64;
    // rotograph deflicker on the `fast` flow preset (scored with the `medium` motion as all).
    let t = Instant::now();
    let fast_motions = source_motion(&source, &FlowParams::preset(Preset::Fast))?;
    let ours_fast = run_ours(&source, &jit, &fast_motions, strength, anchor, None, None)?;
    let fast_s = t.elapsed().as_secs_f64() / n as f64;

    let dfl_s = ffmpeg("deflicker", &work.join("jitter"), &work.join("ffdeflicker"))?;
    let tmix_s = ffmpeg("tmix=frames=3", &work.join("jitter"), &work.join("tmix"))?;
    let ffdfl = read_dir(&work.join("ffdeflicker"))?;
    let tmix = read_dir(&work.join("tmix"))?;

    println!(
        "{n} frames, {w}x{h}; reliable source motion on {:.0}% of pixels; flow (both \
         directions, medium) {:.1} ms/frame; deflicker strength {strength}, anchor {anchor}",
        100.0 * coverage,
        1e3 * flow_s
    );
    println!("| method | E_warp (1e-3) | PSNR to clean (dB) | ms/frame |\n|---|---:|---:|---:|");
    let rows: [(&str, &[RgbaImage], Option<f64>); 7] = [
        ("clean toon (reference)", &clean, None),
        ("jittered (input)", &jit, None),
        ("ffmpeg deflicker", &ffdfl, Some(dfl_s / n as f64)),
        ("ffmpeg tmix=frames=3", &tmix, Some(tmix_s / n as f64)),
        ("flow blend 0.3", &blended, Some(flow_s + blend_s)),
        ("rotograph deflicker", &ours, Some(flow_s + solve_s)),
        ("rotograph deflicker, flow fast", &ours_fast, Some(fast_s)),
    ];
    for (name, frames, time) in rows {
        if frames.len() != n {
            return Err(format!("{name}: {} frames, expected {n}", frames.len()).into());
        }
        let (e, p) = score(frames, &clean, &motions)?;
        let p = if name.starts_with("clean") {
            "-".to_string()
        } else {
            format!("{p:.2}")
        };
        let time = time.map_or("-".into(), |t| format!("{:.1}", 1e3 * t));
        println!("| {name} | {:.3} | {p} | {time} |", 1e3 * e);
    }
    println!(
        "(rotograph deflicker solve alone: {:.1} ms/frame)",
        1e3 * solve_s
    );
    let steady = run_ours(&source, &clean, &motions, strength, anchor, None, None)?;
    let (e, p) = score(&steady, &clean, &motions)?;
    println!(
        "(rotograph deflicker on the clean frames: E_warp {:.3}e-3, {p:.2} dB)",
        1e3 * e
    );
    // DEFLICKER_SWEEP="STRENGTH:ANCHOR:PRIOR:SIGMA,..." adds rows for other knobs (for tuning).
    let sweep = std::env::var("DEFLICKER_SWEEP").unwrap_or_default();
    for spec in sweep.split(',').filter(|s| !s.is_empty()) {
        let v: Vec<f32> = spec.split(':').map(str::parse).collect::<Result<_, _>>()?;
        let [s, a, k, sg] = v[..] else {
            continue;
        };
        let out = run_ours(&source, &jit, &motions, s, a, Some(k), Some(sg))?;
        let (e, p) = score(&out, &clean, &motions)?;
        let label = format!("strength {s}, anchor {a}, prior {k}, source sigma {sg}");
        println!("| {label} | {:.3} | {p:.2} | |", 1e3 * e);
    }
    Ok(())
}
