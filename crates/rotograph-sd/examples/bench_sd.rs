//! The candle side of the SD benchmarks in BENCHMARKS.md (twin of `scripts/bench_sd.py`).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p rotograph-sd --example bench_sd -- \
//!     /tmp/sd15-full --op unet [--size 512] [--steps 20] [--denoise 0.5] [--sampler Euler] \
//!     [--cfg 7] [--vae full|taesd]
//! ```
//!
//! Loads a diffusers folder (e.g. the random full-size weights `bench_sd.py make-weights`
//! writes), runs one op and prints one JSON line with its wall and process CPU seconds (the op
//! only, weights already loaded). Ops: `unet` (one evaluation on `size/8` latents, at batch 2
//! for CFG or batch 1 at `--cfg 1`), `vae-enc`, `vae-dec` (one `size`x`size` image),
//! `img2img` (one frame through [`SdStylizer`]: prompts, VAE encode, the sampler over A1111's
//! img2img schedule with CFG (one batch-1 UNet pass per step at `--cfg 1`), VAE decode).
//! `--vae taesd` loads the folder's `taesd/` instead of the full VAE
//! ([`VaeChoice::Taesd`]). Threads: candle's CPU kernels follow `RAYON_NUM_THREADS`.

use candle_core::{Device, Tensor};
use rotograph::stylize::{Img2ImgParams, Img2ImgRequest, Stylizer};
use rotograph_sd::img2img::SdStylizer;
use rotograph_sd::noise::NvRng;
use rotograph_sd::{LoadOptions, VaeChoice};
use std::path::PathBuf;
use std::time::Instant;

/// Process CPU time (user + system, all threads) from `/proc/self/stat`, in seconds; Linux
/// only (0 elsewhere). Clock ticks are taken as 100 Hz, the Linux `USER_HZ`.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

struct Args {
    model: PathBuf,
    op: String,
    size: usize,
    steps: u32,
    denoise: f32,
    sampler: String,
    cfg: f32,
    vae: String,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        model: PathBuf::new(),
        op: String::new(),
        size: 512,
        steps: 20,
        denoise: 0.5,
        sampler: "Euler".into(),
        cfg: 7.0,
        vae: "full".into(),
    };
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--op" => a.op = val("--op")?,
            "--size" => a.size = val("--size")?.parse().map_err(|e| format!("--size: {e}"))?,
            "--steps" => {
                a.steps = val("--steps")?
                    .parse()
                    .map_err(|e| format!("--steps: {e}"))?
            }
            "--denoise" => {
                a.denoise = val("--denoise")?
                    .parse()
                    .map_err(|e| format!("--denoise: {e}"))?
            }
            "--sampler" => a.sampler = val("--sampler")?,
            "--cfg" => a.cfg = val("--cfg")?.parse().map_err(|e| format!("--cfg: {e}"))?,
            "--vae" => a.vae = val("--vae")?,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => a.model = PathBuf::from(s),
        }
    }
    if a.model.as_os_str().is_empty() || a.op.is_empty() {
        return Err("usage: bench_sd MODEL_DIR --op unet|vae-enc|vae-dec|img2img".into());
    }
    if a.vae != "full" && a.vae != "taesd" {
        return Err(format!("--vae {}: use full or taesd", a.vae));
    }
    if a.size == 0 || a.size % 8 != 0 {
        return Err("--size must be a positive multiple of 8".into());
    }
    Ok(a)
}

fn randn(rng: &mut NvRng, shape: &[usize]) -> Result<Tensor, Box<dyn std::error::Error>> {
    Ok(Tensor::from_vec(
        rng.randn_shape(shape),
        shape,
        &Device::Cpu,
    )?)
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let vae = match a.vae.as_str() {
        "taesd" => VaeChoice::Taesd(None),
        _ => VaeChoice::Model,
    };
    let options = LoadOptions {
        vae,
        ..LoadOptions::default()
    };
    let sd = SdStylizer::load_with(&a.model, &options)?;
    let model = sd.model();
    let mut rng = NvRng::new(0);
    let lat = a.size / 8;
    let hidden = model.config.unet.cross_attention_dim;
    let mut img = image::RgbaImage::new(a.size as u32, a.size as u32);
    let px = rng.randn(img.len());
    for (p, v) in img.iter_mut().zip(px) {
        *p = (128.0 + 60.0 * v).clamp(0.0, 255.0) as u8;
    }
    let image = rotograph_sd::img2img::image_to_tensor(&img, &Device::Cpu)?;
    let (start, cpu0);
    match a.op.as_str() {
        "unet" => {
            // CFG evaluates uncond and cond in one batch; at cfg 1 only cond runs.
            let batch = if a.cfg == 1.0 { 1 } else { 2 };
            let x = randn(&mut rng, &[batch, 4, lat, lat])?;
            let ctx = randn(&mut rng, &[batch, 77, hidden])?;
            (start, cpu0) = (Instant::now(), cpu_seconds());
            model.unet(&x, 500.0, &ctx)?;
        }
        "vae-enc" => {
            (start, cpu0) = (Instant::now(), cpu_seconds());
            model.encode_image(&image)?;
        }
        "vae-dec" => {
            let x = randn(&mut rng, &[1, 4, lat, lat])?;
            (start, cpu0) = (Instant::now(), cpu_seconds());
            model.decode_latents(&x)?;
        }
        "img2img" => {
            let params = Img2ImgParams {
                prompt: "a watercolor painting of a street".into(),
                negative_prompt: "blurry, lowres".into(),
                denoise: a.denoise,
                steps: a.steps,
                cfg: a.cfg,
                sampler: a.sampler.clone(),
                ..Img2ImgParams::default()
            };
            let req = Img2ImgRequest {
                init: &img,
                mask: None,
                controls: Vec::new(),
                params: &params,
                seed: 1,
                subseed: 0,
            };
            (start, cpu0) = (Instant::now(), cpu_seconds());
            sd.stylize(&req)?;
        }
        other => return Err(format!("unknown --op {other}").into()),
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "{{\"impl\": \"candle\", \"op\": \"{}\", \"size\": {}, \"threads\": \"{threads}\", \
         \"vae\": \"{}\", \"steps\": {}, \"cfg\": {}, \"wall_s\": {wall:.3}, \"cpu_s\": {cpu:.3}}}",
        a.op, a.size, a.vae, a.steps, a.cfg
    );
    Ok(())
}

fn main() {
    let result = parse_args().map_err(|e| e.into()).and_then(|a| run(&a));
    if let Err(e) = result {
        eprintln!("bench_sd: {e}");
        std::process::exit(2);
    }
}
