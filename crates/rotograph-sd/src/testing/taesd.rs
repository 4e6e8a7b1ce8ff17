//! A tiny random-weight TAESD (the tiny autoencoder) in both published layouts, for tests.

use super::randn_scaled;
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// Channels of the tiny TAESD's blocks.
pub const C: usize = 8;

/// The published layout with one block per level: encoder `conv, block, (conv/2, block) x3,
/// conv`; decoder (diffusers numbering) `conv, relu, block, (up, conv, block) x3, conv`.
/// Returns (encoder, decoder) tensors named `N.*`, decoder without the clamp entry.
pub fn weights() -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let mut seed = 100;
    let mut conv =
        |m: &mut HashMap<String, Tensor>, name: String, cin: usize, cout: usize, bias: bool| {
            seed += 1;
            let w = randn_scaled(seed, &[cout, cin, 3, 3], (1.0 / (9.0 * cin as f32)).sqrt());
            m.insert(format!("{name}.weight"), w);
            if bias {
                m.insert(
                    format!("{name}.bias"),
                    randn_scaled(seed + 1000, &[cout], 0.1),
                );
            }
        };
    let mut enc = HashMap::new();
    conv(&mut enc, "0".into(), 3, C, true);
    for i in [1, 3, 5, 7] {
        for j in [0, 2, 4] {
            conv(&mut enc, format!("{i}.conv.{j}"), C, C, true);
        }
    }
    for i in [2, 4, 6] {
        conv(&mut enc, i.to_string(), C, C, false);
    }
    conv(&mut enc, "8".into(), C, 4, true);
    let mut dec = HashMap::new();
    conv(&mut dec, "0".into(), 4, C, true);
    for i in [2, 5, 8, 11] {
        for j in [0, 2, 4] {
            conv(&mut dec, format!("{i}.conv.{j}"), C, C, true);
        }
    }
    for i in [4, 7, 10] {
        conv(&mut dec, i.to_string(), C, C, false);
    }
    conv(&mut dec, "12".into(), C, 3, true);
    (enc, dec)
}

/// Writes tensors as safetensors.
pub fn save(m: &HashMap<String, Tensor>, path: &Path) {
    candle_core::safetensors::save(m, path).unwrap();
}

/// Writes the diffusers folder (`encoder.layers.N`, `decoder.layers.N`).
pub fn write_diffusers(dir: &Path) {
    let (enc, dec) = weights();
    std::fs::create_dir_all(dir).unwrap();
    let mut all = HashMap::new();
    for (k, v) in enc {
        all.insert(format!("encoder.layers.{k}"), v);
    }
    for (k, v) in dec {
        all.insert(format!("decoder.layers.{k}"), v);
    }
    save(&all, &dir.join("diffusion_pytorch_model.safetensors"));
    std::fs::write(
        dir.join("config.json"),
        r#"{"_class_name": "AutoencoderTiny", "latent_channels": 4, "scaling_factor": 1.0}"#,
    )
    .unwrap();
}

/// Writes the original pair (the decoder shifted by one for its clamp entry).
pub fn write_pair(dir: &Path) {
    let (enc, dec) = weights();
    std::fs::create_dir_all(dir).unwrap();
    save(&enc, &dir.join("taesd_encoder.safetensors"));
    let dec: HashMap<String, Tensor> = dec
        .into_iter()
        .map(|(k, v)| {
            let (i, rest) = k.split_once('.').unwrap();
            (format!("{}.{rest}", i.parse::<usize>().unwrap() + 1), v)
        })
        .collect();
    save(&dec, &dir.join("taesd_decoder.safetensors"));
}
