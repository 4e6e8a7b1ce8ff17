//! Stylizes one image:
//! `cargo run --release --example toon_one -- IN OUT [toon|ink|posterize] [STRENGTH]`.
//! `TOON_PARAMS="bands=6,line=0.5,dog_sigma=1.2"` overrides preset fields (for tuning).
use rotograph::stylize::toon::{Preset, Style};

fn override_preset(p: &mut Preset, spec: &str) -> Result<(), String> {
    for kv in spec.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or(format!("bad override {kv}"))?;
        let v: f32 = v.parse().map_err(|e| format!("{kv}: {e}"))?;
        match k {
            "sigma_s" => p.sigma_s = v,
            "sigma_r" => p.sigma_r = v,
            "iterations" => p.iterations = v as u32,
            "bands" => p.bands = v,
            "sharpness_flat" => p.sharpness_flat = v,
            "sharpness_edge" => p.sharpness_edge = v,
            "edge_gradient" => p.edge_gradient = v,
            "chroma" => p.chroma = v,
            "chroma_step" => p.chroma_step = v,
            "dog_sigma" => p.dog.sigma = v,
            "dog_k" => p.dog.k = v,
            "dog_tau" => p.dog.tau = v,
            "dog_epsilon" => p.dog.epsilon = v,
            "dog_phi" => p.dog.phi = v,
            "line" => p.line = v,
            "ink_tone" => p.ink_tone = Some(v),
            _ => return Err(format!("unknown field {k}")),
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: toon_one IN OUT [toon|ink|posterize] [STRENGTH]".into());
    }
    let style = match args.get(2).map(String::as_str) {
        None | Some("toon") => Style::Toon,
        Some("ink") => Style::Ink,
        Some("posterize") => Style::Posterize,
        Some(other) => return Err(format!("unknown style {other}").into()),
    };
    let strength: f32 = args.get(3).map_or(Ok(0.75), |s| s.parse())?;
    let mut preset = style.preset();
    if let Ok(spec) = std::env::var("TOON_PARAMS") {
        override_preset(&mut preset, &spec)?;
    }
    let img = image::open(&args[0])?.to_rgba8();
    let t = std::time::Instant::now();
    let out = preset.apply(&img, strength);
    eprintln!("{:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    out.save(&args[1])?;
    Ok(())
}
