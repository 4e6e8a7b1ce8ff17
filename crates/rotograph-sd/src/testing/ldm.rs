//! Writers of the original (LDM/SGM) single-file layout for tests: an inverse of the loader's
//! naming written independently (diffusers → LDM), and [`write_single_file`], which turns a
//! diffusers folder into a `.safetensors` checkpoint.

use candle_core::{Device, Tensor};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

fn res_ldm(rest: &str) -> String {
    let (head, leaf) = rest.split_once('.').unwrap();
    let to = match head {
        "norm1" => "in_layers.0",
        "conv1" => "in_layers.2",
        "time_emb_proj" => "emb_layers.1",
        "norm2" => "out_layers.0",
        "conv2" => "out_layers.3",
        "conv_shortcut" => "skip_connection",
        other => panic!("unexpected resnet part {other}"),
    };
    format!("{to}.{leaf}")
}

/// The LDM name of a diffusers UNet tensor (`layers` resnets per down block; `up_attn` the up
/// blocks that have transformers).
pub fn unet_to_ldm(name: &str, layers: usize, up_attn: &BTreeSet<usize>) -> String {
    let p: Vec<&str> = name.split('.').collect();
    let tail = |i: usize| p[i..].join(".");
    let num = |i: usize| p[i].parse::<usize>().unwrap();
    let per = layers + 1;
    let lin = |s: &str| if s == "linear_1" { 0 } else { 2 };
    let s = match p[0] {
        "time_embedding" => format!("time_embed.{}.{}", lin(p[1]), tail(2)),
        "add_embedding" => format!("label_emb.0.{}.{}", lin(p[1]), tail(2)),
        "conv_in" => format!("input_blocks.0.0.{}", tail(1)),
        "conv_norm_out" => format!("out.0.{}", tail(1)),
        "conv_out" => format!("out.2.{}", tail(1)),
        "down_blocks" => {
            let b = num(1);
            match p[2] {
                "resnets" => format!(
                    "input_blocks.{}.0.{}",
                    1 + b * per + num(3),
                    res_ldm(&tail(4))
                ),
                "attentions" => format!("input_blocks.{}.1.{}", 1 + b * per + num(3), tail(4)),
                "downsamplers" => format!("input_blocks.{}.0.op.{}", (b + 1) * per, tail(5)),
                o => panic!("{o}"),
            }
        }
        "mid_block" => match (p[1], p[2]) {
            ("resnets", "0") => format!("middle_block.0.{}", res_ldm(&tail(3))),
            ("attentions", _) => format!("middle_block.1.{}", tail(3)),
            ("resnets", "1") => format!("middle_block.2.{}", res_ldm(&tail(3))),
            o => panic!("{o:?}"),
        },
        "up_blocks" => {
            let u = num(1);
            match p[2] {
                "resnets" => format!("output_blocks.{}.0.{}", u * per + num(3), res_ldm(&tail(4))),
                "attentions" => format!("output_blocks.{}.1.{}", u * per + num(3), tail(4)),
                "upsamplers" => format!(
                    "output_blocks.{}.{}.conv.{}",
                    u * per + layers,
                    if up_attn.contains(&u) { 2 } else { 1 },
                    tail(5)
                ),
                o => panic!("{o}"),
            }
        }
        o => panic!("unexpected UNet tensor {o}"),
    };
    format!("model.diffusion_model.{s}")
}

/// The LDM name of a diffusers VAE tensor (without prefix), and whether it is a linear weight
/// to store as a 1x1 convolution.
pub fn vae_to_ldm(name: &str, levels: usize) -> (String, bool) {
    let p: Vec<&str> = name.split('.').collect();
    let tail = |i: usize| p[i..].join(".");
    let vres = |s: String| s.replace("conv_shortcut", "nin_shortcut");
    if p[0] == "quant_conv" || p[0] == "post_quant_conv" {
        return (name.to_string(), false);
    }
    let mut conv = false;
    let inner = match p[1] {
        "conv_in" | "conv_out" => tail(1),
        "conv_norm_out" => format!("norm_out.{}", tail(2)),
        "mid_block" => match p[2] {
            "resnets" => format!(
                "mid.block_{}.{}",
                if p[3] == "0" { 1 } else { 2 },
                vres(tail(4))
            ),
            _ => {
                let (what, rest) = match p[4] {
                    "group_norm" => ("norm", tail(5)),
                    "query" | "to_q" => ("q", tail(5)),
                    "key" | "to_k" => ("k", tail(5)),
                    "value" | "to_v" => ("v", tail(5)),
                    "proj_attn" => ("proj_out", tail(5)),
                    "to_out" => ("proj_out", tail(6)),
                    o => panic!("{o}"),
                };
                conv = what != "norm" && rest == "weight";
                format!("mid.attn_1.{what}.{rest}")
            }
        },
        "down_blocks" => match p[3] {
            "resnets" => format!("down.{}.block.{}.{}", p[2], p[4], vres(tail(5))),
            _ => format!("down.{}.downsample.conv.{}", p[2], tail(6)),
        },
        "up_blocks" => {
            let b = levels - 1 - p[2].parse::<usize>().unwrap();
            match p[3] {
                "resnets" => format!("up.{b}.block.{}.{}", p[4], vres(tail(5))),
                _ => format!("up.{b}.upsample.conv.{}", tail(6)),
            }
        }
        o => panic!("unexpected VAE tensor {o}"),
    };
    (format!("{}.{inner}", p[0]), conv)
}

/// Diffusers UNet tensors → LDM tensors.
pub fn unet_tensors(unet: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    let layers = (0..)
        .take_while(|j| unet.contains_key(&format!("down_blocks.0.resnets.{j}.conv1.weight")))
        .count();
    let up_attn: BTreeSet<usize> = unet
        .keys()
        .filter_map(|k| {
            let r = k.strip_prefix("up_blocks.")?;
            let (u, r) = r.split_once('.')?;
            r.starts_with("attentions.").then(|| u.parse().unwrap())
        })
        .collect();
    unet.iter()
        .map(|(k, t)| (unet_to_ldm(k, layers, &up_attn), t.clone()))
        .collect()
}

/// Diffusers VAE tensors → LDM tensors below `prefix`.
pub fn vae_tensors(vae: &HashMap<String, Tensor>, prefix: &str) -> Vec<(String, Tensor)> {
    let levels = (0..)
        .take_while(|b| vae.contains_key(&format!("decoder.up_blocks.{b}.resnets.0.conv1.weight")))
        .count();
    vae.iter()
        .map(|(k, t)| {
            let (n, conv) = vae_to_ldm(k, levels);
            let t = if conv {
                let (o, i) = t.dims2().unwrap();
                t.reshape((o, i, 1, 1)).unwrap()
            } else {
                t.clone()
            };
            (format!("{prefix}{n}"), t)
        })
        .collect()
}

/// Transformers CLIP tensors (`text_model.*`, optional `text_projection.weight`) → OpenCLIP
/// tensors below `prefix` (q/k/v fused by rows, projection transposed).
pub fn open_clip_tensors(clip: &HashMap<String, Tensor>, prefix: &str) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    let mut fused: BTreeMap<(usize, String), [Option<Tensor>; 3]> = BTreeMap::new();
    for (k, t) in clip {
        let name = if k == "text_projection.weight" {
            out.push((
                format!("{prefix}text_projection"),
                t.t().unwrap().contiguous().unwrap(),
            ));
            continue;
        } else if k == "text_model.embeddings.token_embedding.weight" {
            "token_embedding.weight".to_string()
        } else if k == "text_model.embeddings.position_embedding.weight" {
            "positional_embedding".to_string()
        } else if let Some(r) = k.strip_prefix("text_model.final_layer_norm.") {
            format!("ln_final.{r}")
        } else {
            let r = k.strip_prefix("text_model.encoder.layers.").unwrap();
            let (n, r) = r.split_once('.').unwrap();
            let n: usize = n.parse().unwrap();
            if let Some(q) = r.strip_prefix("self_attn.") {
                let (which, leaf) = q.split_once('.').unwrap();
                let idx = match which {
                    "q_proj" => Some(0),
                    "k_proj" => Some(1),
                    "v_proj" => Some(2),
                    _ => None,
                };
                if let Some(i) = idx {
                    fused.entry((n, leaf.to_string())).or_default()[i] = Some(t.clone());
                    continue;
                }
                format!("transformer.resblocks.{n}.attn.{which}.{leaf}")
            } else {
                let r = r
                    .replace("layer_norm1", "ln_1")
                    .replace("layer_norm2", "ln_2")
                    .replace("mlp.fc1", "mlp.c_fc")
                    .replace("mlp.fc2", "mlp.c_proj");
                format!("transformer.resblocks.{n}.{r}")
            }
        };
        out.push((format!("{prefix}{name}"), t.clone()));
    }
    for ((n, leaf), parts) in fused {
        let parts: Vec<Tensor> = parts.into_iter().map(Option::unwrap).collect();
        out.push((
            format!("{prefix}transformer.resblocks.{n}.attn.in_proj_{leaf}"),
            Tensor::cat(&parts, 0).unwrap(),
        ));
    }
    out
}

/// Loads a safetensors file.
pub fn load(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// Writes tensors as safetensors.
pub fn save(tensors: Vec<(String, Tensor)>, path: &Path) {
    let map: HashMap<String, Tensor> = tensors.into_iter().collect();
    candle_core::safetensors::save(&map, path).unwrap();
}

/// All tensors of the SD1 diffusers folder `dir` under their LDM names, the VAE's below
/// `vae_prefix` (`first_stage_model.` in a checkpoint).
pub fn ldm_tensors(dir: &Path, vae_prefix: &str) -> Vec<(String, Tensor)> {
    let mut all = unet_tensors(&load(&dir.join("unet/diffusion_pytorch_model.safetensors")));
    all.extend(vae_tensors(
        &load(&dir.join("vae/diffusion_pytorch_model.safetensors")),
        vae_prefix,
    ));
    for (k, t) in load(&dir.join("text_encoder/model.safetensors")) {
        all.push((format!("cond_stage_model.transformer.{k}"), t));
    }
    all
}

/// Writes the SD1 diffusers folder `dir` as one LDM-layout `.safetensors` checkpoint `path`.
/// The folder should use the conventions a single file cannot record
/// ([`super::single_file_configs`]), or the two load as different models.
pub fn write_single_file(dir: &Path, path: &Path) {
    save(ldm_tensors(dir, "first_stage_model."), path);
}
