//! Single-file checkpoints (`.safetensors`, `.ckpt`) in the original LDM layout, separate VAE
//! files, architecture detection and key mapping.

mod common;

use common::{bits, randn};
mod ldm;

use common::Tiny;

use candle_core::{DType, Device, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::clip::text_model::{
    Activation, ClipTextConfig, ClipTextTransformer,
};
use candle_transformers::models::stable_diffusion::unet_2d::{
    BlockConfig, UNet2DConditionModel, UNet2DConditionModelConfig,
};
use candle_transformers::models::stable_diffusion::vae::{AutoEncoderKL, AutoEncoderKLConfig};
use image::{Rgba, RgbaImage};
use rotograph::stylize::{Img2ImgParams, Img2ImgRequest, Stylizer};
use rotograph_sd::img2img::SdStylizer;
use rotograph_sd::load::{load, LoadOptions, Loaded, VaeChoice};
use rotograph_sd::model::{ModelError, SdModel};
use rotograph_sd::noise::NvRng;
use rotograph_sd::single_file::{Arch, Op, SingleFile};
use rotograph_sd::Prediction;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Fixture {
    diffusers: PathBuf,
    safetensors: PathBuf,
    ckpt: PathBuf,
    ckpt_flat: PathBuf,
    /// Another VAE (other seed): diffusers folder, LDM file, LDM file with prefix.
    vae_dir: PathBuf,
    vae_file: PathBuf,
    vae_file_prefixed: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // A fixed folder under target/ (statics are never dropped, so a TempDir would leak).
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rotograph-sd-single-file");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let [u, v, c] = common::single_file_configs();
        let diffusers = root.join("tiny");
        common::write_model_with(&diffusers, [&u, &v, &c], [1, 2, 3]);
        let all = ldm::ldm_tensors(&diffusers, "first_stage_model.");
        let safetensors = root.join("tiny.safetensors");
        ldm::save(all.clone(), &safetensors);
        let ckpt = root.join("tiny.ckpt");
        ldm::save_ckpt(&all, true, &ckpt);
        let ckpt_flat = root.join("tiny-flat.ckpt");
        ldm::save_ckpt(&all, false, &ckpt_flat);

        let other = root.join("other");
        common::write_model_with(&other, [&u, &v, &c], [1, 22, 3]);
        let vae_dir = other.join("vae");
        let vae_t = ldm::load(&vae_dir.join("diffusion_pytorch_model.safetensors"));
        let vae_file = root.join("other-vae.safetensors");
        ldm::save(ldm::vae_tensors(&vae_t, ""), &vae_file);
        let vae_file_prefixed = root.join("other-vae.ckpt");
        ldm::save_ckpt(
            &ldm::vae_tensors(&vae_t, "first_stage_model."),
            false,
            &vae_file_prefixed,
        );
        Fixture {
            diffusers,
            safetensors,
            ckpt,
            ckpt_flat,
            vae_dir,
            vae_file,
            vae_file_prefixed,
        }
    })
}

fn open(path: &Path, vae: VaeChoice) -> Loaded {
    let opts = LoadOptions {
        vae,
        prediction: None,
        ..LoadOptions::default()
    };
    load(path, &opts, &Device::Cpu).unwrap()
}

/// Text encoder, UNet, VAE encode and decode outputs, as bits.
fn outputs(m: &SdModel) -> Vec<Vec<u32>> {
    let mut ids = vec![rotograph_sd::tokenizer::BOS, 320, 1125, 539];
    ids.resize(77, rotograph_sd::tokenizer::EOS);
    let ids = Tensor::from_vec(ids, (1, 77), &Device::Cpu).unwrap();
    let img = (randn(9, &[1, 3, 64, 64]) * 0.5).unwrap();
    let lat = randn(7, &[1, 4, 8, 8]);
    vec![
        bits(&m.encode_text(&ids).unwrap()),
        bits(&m.unet(&lat, 500.0, &randn(8, &[1, 77, 32])).unwrap()),
        bits(&m.encode_image(&img).unwrap()),
        bits(&m.decode_latents(&lat).unwrap()),
    ]
}

fn image(model: SdModel) -> RgbaImage {
    let init = RgbaImage::from_fn(64, 64, |x, y| {
        Rgba([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8, 255])
    });
    let params = Img2ImgParams {
        prompt: "a (red:1.3) fox".into(),
        negative_prompt: "blurry".into(),
        seed: 5,
        denoise: 0.6,
        steps: 3,
        cfg: 7.0,
        sampler: "Euler a".into(),
        ..Img2ImgParams::default()
    };
    let req = Img2ImgRequest {
        init: &init,
        mask: None,
        controls: vec![],
        params: &params,
        seed: 5,
        subseed: 0,
    };
    SdStylizer::new(model).stylize(&req).unwrap().remove(0)
}

#[test]
fn safetensors_single_file_gives_the_same_image_as_the_diffusers_folder() {
    let f = fixture();
    let a = open(&f.diffusers, VaeChoice::Model);
    let b = open(&f.safetensors, VaeChoice::Model);
    assert_eq!(a.arch, Arch::Sd1);
    assert_eq!(b.arch, Arch::Sd1);
    assert_eq!(b.prediction, Prediction::Epsilon);
    let (oa, ob) = (outputs(&a.model), outputs(&b.model));
    for (i, (x, y)) in oa.iter().zip(&ob).enumerate() {
        assert_eq!(x, y, "output {i} differs");
    }
    let (ia, ib) = (image(a.model), image(b.model));
    assert_eq!(ia.as_raw(), ib.as_raw());
    // The image is not trivially constant.
    assert!(ia.pixels().any(|p| p != ia.get_pixel(0, 0)));
}

#[test]
fn ckpt_loads_like_the_diffusers_folder_nested_or_flat() {
    let f = fixture();
    let reference = outputs(&open(&f.diffusers, VaeChoice::Model).model);
    for ckpt in [&f.ckpt, &f.ckpt_flat] {
        let m = open(ckpt, VaeChoice::Model);
        assert_eq!(m.arch, Arch::Sd1);
        assert_eq!(outputs(&m.model), reference, "{}", ckpt.display());
    }
}

#[test]
fn inferred_configs_match_the_diffusers_configs() {
    let f = fixture();
    let s = SingleFile::open(&f.safetensors).unwrap();
    assert!(!s.inpainting);
    let [u, v, c] = common::single_file_configs();
    let u: serde_json::Value = serde_json::from_str(&u).unwrap();
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    let c: serde_json::Value = serde_json::from_str(&c).unwrap();
    for key in [
        "in_channels",
        "out_channels",
        "block_out_channels",
        "layers_per_block",
        "attention_head_dim",
        "cross_attention_dim",
        "down_block_types",
        "up_block_types",
        "norm_num_groups",
    ] {
        assert_eq!(s.unet.config[key], u[key], "unet {key}");
    }
    let vae = s.vae.as_ref().unwrap();
    for key in [
        "block_out_channels",
        "layers_per_block",
        "latent_channels",
        "norm_num_groups",
    ] {
        assert_eq!(vae.config[key], v[key], "vae {key}");
    }
    for key in [
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "max_position_embeddings",
        "hidden_act",
    ] {
        assert_eq!(s.text_encoder.config[key], c[key], "clip {key}");
    }
    // The VAE's attention 1x1 convolutions are served as linears.
    let (src, op) = vae
        .weights
        .source("encoder.mid_block.attentions.0.to_q.weight")
        .unwrap();
    assert_eq!(src, "first_stage_model.encoder.mid.attn_1.q.weight");
    assert_eq!(op, Op::Squeeze);
    assert_eq!(
        vae.weights.shapes()["encoder.mid_block.attentions.0.to_q.weight"],
        vec![64, 64]
    );
}

#[test]
fn a_separate_vae_file_replaces_the_vae() {
    let f = fixture();
    let own = outputs(&open(&f.safetensors, VaeChoice::Model).model);
    let from_dir = outputs(&open(&f.safetensors, VaeChoice::File(f.vae_dir.clone())).model);
    let from_model_dir = outputs(
        &open(
            &f.safetensors,
            VaeChoice::File(f.vae_dir.parent().unwrap().to_path_buf()),
        )
        .model,
    );
    assert_eq!(from_dir, from_model_dir);
    let from_file = outputs(&open(&f.safetensors, VaeChoice::File(f.vae_file.clone())).model);
    let from_ckpt =
        outputs(&open(&f.diffusers, VaeChoice::File(f.vae_file_prefixed.clone())).model);
    // Text encoder and UNet untouched; encode and decode changed.
    assert_eq!(own[..2], from_file[..2]);
    assert_ne!(own[2], from_file[2]);
    assert_ne!(own[3], from_file[3]);
    // The LDM file equals the same VAE in the diffusers layout.
    assert_eq!(from_dir, from_file);
    assert_eq!(from_dir, from_ckpt);
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn errors_name_the_file() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let err_of = |p: &Path, vae: VaeChoice| {
        let opts = LoadOptions {
            vae,
            prediction: None,
            ..LoadOptions::default()
        };
        load(p, &opts, &Device::Cpu).unwrap_err()
    };
    // Missing file.
    let missing = dir.path().join("nope.safetensors");
    let e = err_of(&missing, VaeChoice::Model);
    assert!(
        matches!(e, ModelError::Io { .. }) && e.to_string().contains("nope.safetensors"),
        "{e}"
    );
    // Corrupt files.
    for name in ["bad.safetensors", "bad.ckpt"] {
        let p = dir.path().join(name);
        write(&p, b"definitely not a checkpoint");
        let e = err_of(&p, VaeChoice::Model);
        assert!(e.to_string().contains(name), "{e}");
    }
    // An unknown key set.
    let p = dir.path().join("unknown.safetensors");
    ldm::save(vec![("foo.weight".into(), randn(1, &[2, 2]))], &p);
    let e = err_of(&p, VaeChoice::Model);
    assert!(matches!(e, ModelError::Config { .. }), "{e}");
    assert!(
        e.to_string().contains("unknown.safetensors") && e.to_string().contains("UNet"),
        "{e}"
    );
    // Not a model file.
    let p = dir.path().join("notes.txt");
    write(&p, b"hi");
    assert!(err_of(&p, VaeChoice::Model)
        .to_string()
        .contains("notes.txt"));
    // A VAE file without a decoder.
    let e = err_of(
        &f.safetensors,
        VaeChoice::File(dir.path().join("unknown.safetensors")),
    );
    assert!(
        e.to_string().contains("unknown.safetensors") && e.to_string().contains("decoder"),
        "{e}"
    );
    // A missing VAE file.
    let e = err_of(&f.safetensors, VaeChoice::File(dir.path().join("vae.pt")));
    assert!(e.to_string().contains("vae.pt"), "{e}");
    // A checkpoint without a VAE, and no --vae.
    let all: Vec<(String, Tensor)> = ldm::ldm_tensors(&f.diffusers, "first_stage_model.")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("first_stage_model."))
        .collect();
    let p = dir.path().join("novae.safetensors");
    ldm::save(all, &p);
    let e = err_of(&p, VaeChoice::Model);
    assert!(
        e.to_string().contains("novae.safetensors") && e.to_string().contains("--vae"),
        "{e}"
    );
    // ... which loads with one.
    let m = open(&p, VaeChoice::File(f.vae_file.clone()));
    assert_eq!(
        outputs(&m.model)[3],
        outputs(&open(&f.safetensors, VaeChoice::File(f.vae_file.clone())).model)[3]
    );
    // --vae taesd without TAESD weights says where to put them.
    let e = err_of(&f.safetensors, VaeChoice::Taesd(None));
    let msg = e.to_string();
    assert!(
        msg.contains("taesd") && msg.contains("taesd_decoder.safetensors"),
        "{msg}"
    );
}

// ---- name-level tests for SD2 and SDXL key sets ----

fn names_of(vm: &VarMap) -> HashMap<String, Tensor> {
    let data = vm.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    // Distinct values per tensor so that misplacements show.
    let mut rng = NvRng::new(11);
    names
        .into_iter()
        .map(|n| {
            let dims = data[n].as_tensor().dims().to_vec();
            let count = dims.iter().product();
            (
                n.clone(),
                Tensor::from_vec(rng.randn(count), dims, &Device::Cpu).unwrap(),
            )
        })
        .collect()
}

fn tiny_unet(blocks: &[(usize, Option<usize>)], cross: usize) -> HashMap<String, Tensor> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let cfg = UNet2DConditionModelConfig {
        blocks: blocks
            .iter()
            .map(|&(c, depth)| BlockConfig {
                out_channels: c,
                use_cross_attn: depth,
                attention_head_dim: (c / 64).max(1),
            })
            .collect(),
        layers_per_block: 2,
        norm_num_groups: 32,
        cross_attention_dim: cross,
        use_linear_projection: true,
        ..UNet2DConditionModelConfig::default()
    };
    UNet2DConditionModel::new(vb, 4, 4, false, cfg).unwrap();
    names_of(&vm)
}

fn tiny_vae() -> HashMap<String, Tensor> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let cfg = AutoEncoderKLConfig {
        block_out_channels: vec![32, 64],
        layers_per_block: 1,
        latent_channels: 4,
        norm_num_groups: 32,
        use_quant_conv: true,
        use_post_quant_conv: true,
    };
    AutoEncoderKL::new(vb, 3, 3, cfg).unwrap();
    names_of(&vm)
}

fn tiny_clip(width: usize, layers: usize, projection: Option<usize>) -> HashMap<String, Tensor> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let cfg = ClipTextConfig {
        vocab_size: 100,
        embed_dim: width,
        activation: Activation::QuickGelu,
        intermediate_size: 2 * width,
        max_position_embeddings: 77,
        pad_with: None,
        num_hidden_layers: layers,
        num_attention_heads: 1,
        projection_dim: width,
    };
    ClipTextTransformer::new(vb.pp("text_model"), &cfg).unwrap();
    let mut t = names_of(&vm);
    if let Some(p) = projection {
        t.insert("text_projection.weight".into(), randn(3, &[p, width]));
    }
    t
}

fn shapes(t: &HashMap<String, Tensor>) -> BTreeMap<String, Vec<usize>> {
    t.iter()
        .map(|(k, v)| (k.clone(), v.dims().to_vec()))
        .collect()
}

/// Writes `parts` as one LDM file and opens it.
fn single(dir: &Path, parts: Vec<Vec<(String, Tensor)>>) -> SingleFile {
    let p = dir.join("model.safetensors");
    ldm::save(parts.into_iter().flatten().collect(), &p);
    SingleFile::open(&p).unwrap()
}

fn served(r: &rotograph_sd::single_file::Renamed, name: &str) -> Tensor {
    r.get_unchecked(name, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn sd2_keys_are_detected_and_map_to_the_diffusers_names() {
    let dir = tempfile::tempdir().unwrap();
    let unet = tiny_unet(&[(64, Some(1)), (128, Some(1))], 64);
    let vae = tiny_vae();
    let clip = tiny_clip(64, 2, None);
    // The LDM file holds one more resblock, which SD2 skips (penultimate layer).
    let mut clip_ldm = tiny_clip(64, 3, None);
    clip_ldm.retain(|k, _| {
        !k.starts_with("text_model.encoder.layers.0.")
            && !k.starts_with("text_model.encoder.layers.1.")
    });
    clip_ldm.extend(clip.clone());
    let s = single(
        dir.path(),
        vec![
            ldm::unet_tensors(&unet),
            ldm::vae_tensors(&vae, "first_stage_model."),
            ldm::open_clip_tensors(&clip_ldm, "cond_stage_model.model."),
        ],
    );
    assert_eq!(s.arch, Arch::Sd2);
    assert!(s.text_encoder_2.is_none());
    assert_eq!(s.unet.weights.shapes(), &shapes(&unet));
    assert_eq!(s.text_encoder.weights.shapes(), &shapes(&clip));
    // The VAE's old attention names (query/key/value/proj_attn) are served as to_q/...
    let vae_names: BTreeMap<String, Vec<usize>> = shapes(&vae)
        .into_iter()
        .map(|(k, v)| {
            let k = k
                .replace(".query.", ".to_q.")
                .replace(".key.", ".to_k.")
                .replace(".value.", ".to_v.")
                .replace(".proj_attn.", ".to_out.0.");
            (k, v)
        })
        .collect();
    assert_eq!(s.vae.as_ref().unwrap().weights.shapes(), &vae_names);
    assert_eq!(s.unet.config["use_linear_projection"], true);
    assert_eq!(
        s.unet.config["attention_head_dim"],
        serde_json::json!([1, 2])
    );
    assert_eq!(s.unet.config["cross_attention_dim"], 64);
    assert_eq!(s.unet.config["layers_per_block"], 2);
    assert_eq!(s.text_encoder.config["num_hidden_layers"], 2);
    assert_eq!(s.text_encoder.config["num_attention_heads"], 1);
    assert_eq!(s.text_encoder.config["hidden_act"], "gelu");
    // Values land where they belong.
    for name in [
        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "up_blocks.0.upsamplers.0.conv.weight",
        "mid_block.resnets.1.conv2.weight",
    ] {
        assert_eq!(
            bits(&served(&s.unet.weights, name)),
            bits(&unet[name]),
            "{name}"
        );
    }
}

#[test]
fn open_clip_qkv_split_puts_each_row_block_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let unet = tiny_unet(&[(64, None), (128, Some(2)), (128, Some(3))], 128);
    let mut unet_xl = unet.clone();
    unet_xl.insert(
        "add_embedding.linear_1.weight".into(),
        randn(4, &[256, 32 + 6 * 8]),
    );
    unet_xl.insert("add_embedding.linear_1.bias".into(), randn(5, &[256]));
    unet_xl.insert(
        "add_embedding.linear_2.weight".into(),
        randn(6, &[256, 256]),
    );
    unet_xl.insert("add_embedding.linear_2.bias".into(), randn(7, &[256]));
    let vae = tiny_vae();
    let clip = tiny_clip(64, 2, None);
    let clip2 = tiny_clip(64, 2, Some(32));
    let clip_ldm: Vec<(String, Tensor)> = clip
        .iter()
        .map(|(k, t)| {
            (
                format!("conditioner.embedders.0.transformer.{k}"),
                t.clone(),
            )
        })
        .collect();
    let s = single(
        dir.path(),
        vec![
            ldm::unet_tensors(&unet_xl),
            ldm::vae_tensors(&vae, "first_stage_model."),
            clip_ldm,
            ldm::open_clip_tensors(&clip2, "conditioner.embedders.1.model."),
        ],
    );
    assert_eq!(s.arch, Arch::Sdxl);
    assert_eq!(s.unet.weights.shapes(), &shapes(&unet_xl));
    assert_eq!(s.text_encoder.weights.shapes(), &shapes(&clip));
    let te2 = s.text_encoder_2.as_ref().unwrap();
    assert_eq!(te2.weights.shapes(), &shapes(&clip2));
    assert_eq!(
        s.unet.config["transformer_layers_per_block"],
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(
        s.unet.config["down_block_types"],
        serde_json::json!([
            "DownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D"
        ])
    );
    assert_eq!(s.unet.config["projection_class_embeddings_input_dim"], 80);
    assert_eq!(s.unet.config["addition_time_embed_dim"], 8);
    assert_eq!(te2.config["projection_dim"], 32);
    assert_eq!(te2.config["num_hidden_layers"], 2);
    assert_eq!(s.vae.as_ref().unwrap().config["scaling_factor"], 0.13025);
    // q, k and v come out of the fused in_proj in that order; the projection transposed back.
    for layer in 0..2 {
        for p in ["q_proj", "k_proj", "v_proj"] {
            for leaf in ["weight", "bias"] {
                let name = format!("text_model.encoder.layers.{layer}.self_attn.{p}.{leaf}");
                assert_eq!(
                    bits(&served(&te2.weights, &name)),
                    bits(&clip2[&name]),
                    "{name}"
                );
            }
        }
    }
    let name = "text_projection.weight";
    assert_eq!(bits(&served(&te2.weights, name)), bits(&clip2[name]));
    let name = "text_model.embeddings.position_embedding.weight";
    assert_eq!(bits(&served(&te2.weights, name)), bits(&clip2[name]));
}

#[test]
fn inpainting_unets_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let mut unet = tiny_unet(&[(64, Some(1)), (128, Some(1))], 32);
    unet.insert("conv_in.weight".into(), randn(1, &[64, 9, 3, 3]));
    let clip = tiny_clip(32, 1, None);
    let clip_ldm: Vec<(String, Tensor)> = clip
        .iter()
        .map(|(k, t)| (format!("cond_stage_model.transformer.{k}"), t.clone()))
        .collect();
    let s = single(
        dir.path(),
        vec![
            ldm::unet_tensors(&unet),
            ldm::vae_tensors(&tiny_vae(), "first_stage_model."),
            clip_ldm,
        ],
    );
    assert_eq!(s.arch, Arch::Sd1);
    assert!(s.inpainting);
    // Such a UNet loads (its config says 9 input channels); img2img refuses it with a setting
    // error (tests/arch.rs).
    assert_eq!(s.unet.config["in_channels"], 9);
}

#[test]
fn sd2_prediction_follows_the_yaml_beside_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    assert_eq!(rotograph_sd::single_file::yaml_says_v(&p), None);
    std::fs::write(
        dir.path().join("m.yaml"),
        "model:\n  params:\n    parameterization: \"v\"\n",
    )
    .unwrap();
    assert_eq!(rotograph_sd::single_file::yaml_says_v(&p), Some(true));
    std::fs::write(
        dir.path().join("m.yaml"),
        "model:\n  params:\n    parameterization: eps\n",
    )
    .unwrap();
    assert_eq!(rotograph_sd::single_file::yaml_says_v(&p), Some(false));
    // A1111's probe: mean(out - 0.5) < -1 means v.
    let out = (Tensor::ones((1, 4, 8, 8), DType::F32, &Device::Cpu).unwrap() * -0.6).unwrap();
    assert!(rotograph_sd::single_file::v_prediction_probe(&out).unwrap());
    let out = (Tensor::ones((1, 4, 8, 8), DType::F32, &Device::Cpu).unwrap() * 0.4).unwrap();
    assert!(!rotograph_sd::single_file::v_prediction_probe(&out).unwrap());
    assert_eq!("v".parse::<Prediction>().unwrap(), Prediction::V);
    assert_eq!(
        "epsilon".parse::<Prediction>().unwrap(),
        Prediction::Epsilon
    );
    assert!("x".parse::<Prediction>().is_err());
    assert_eq!(VaeChoice::parse("taesd"), VaeChoice::Taesd(None));
    assert_eq!(
        VaeChoice::parse("a/vae.pt"),
        VaeChoice::File("a/vae.pt".into())
    );
}

fn max_diff(a: &[u32], b: &[u32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f32::from_bits(x) - f32::from_bits(y)).abs())
        .fold(0.0, f32::max)
}

#[test]
fn half_precision_file_with_the_older_text_encoder_prefix_loads() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    // fp16 as most civitai files are, and `cond_stage_model.transformer.embeddings.*` without
    // the `text_model.` level, as some older SD1 files have it.
    let all: Vec<(String, Tensor)> = ldm::ldm_tensors(&f.diffusers, "first_stage_model.")
        .into_iter()
        .map(|(k, t)| {
            let k = k.replace(
                "cond_stage_model.transformer.text_model.",
                "cond_stage_model.transformer.",
            );
            (k, t.to_dtype(DType::F16).unwrap())
        })
        .collect();
    let p = dir.path().join("half.safetensors");
    ldm::save(all, &p);
    let half = outputs(&open(&p, VaeChoice::Model).model);
    let full = outputs(&open(&f.safetensors, VaeChoice::Model).model);
    for (i, (h, x)) in half.iter().zip(&full).enumerate() {
        assert_eq!(h.len(), x.len());
        let scale = x
            .iter()
            .map(|&v| f32::from_bits(v).abs())
            .fold(0.0, f32::max);
        let d = max_diff(h, x);
        // f16 weights: a relative error of a few 1e-3, far from a wrong mapping's O(1).
        assert!(
            d <= 0.02 * scale.max(1.0),
            "output {i}: {d} against scale {scale}"
        );
        assert_ne!(h, x, "output {i} should carry the f16 rounding");
    }
}

/// `arch`'s tiny configs with the conventions a single file cannot record: GroupNorm 32, UNet
/// heads `channels / 64` and text-encoder heads `width / 64` (at least 1).
fn single_file_configs(arch: Tiny) -> Vec<(&'static str, &'static str, String)> {
    arch.configs()
        .into_iter()
        .map(|(sub, file, c)| {
            let c = c
                .replace("\"norm_num_groups\": 8", "\"norm_num_groups\": 32")
                .replace(
                    "\"attention_head_dim\": [2, 4]",
                    "\"attention_head_dim\": [1, 1]",
                )
                .replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 1");
            (sub, file, c)
        })
        .collect()
}

/// `clip` with one more encoder layer (layer 0's weights, scaled), as an OpenCLIP SD2 text
/// encoder has: diffusers' converted SD2 models leave it out, and so does the loader.
fn with_extra_layer(clip: &HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    let layers = (0..)
        .take_while(|n| clip.contains_key(&format!("text_model.encoder.layers.{n}.mlp.fc1.weight")))
        .count();
    let mut out = clip.clone();
    for (k, t) in clip {
        if let Some(r) = k.strip_prefix("text_model.encoder.layers.0.") {
            out.insert(
                format!("text_model.encoder.layers.{layers}.{r}"),
                (t * 3.0).unwrap(),
            );
        }
    }
    out
}

/// A tiny model of `arch` written as a diffusers folder and as an LDM/SGM `.safetensors`
/// under `dir`: `(folder, file)`.
fn both_layouts(dir: &Path, arch: Tiny) -> (PathBuf, PathBuf) {
    let diffusers = dir.join("tiny");
    common::write_model_from(&diffusers, &single_file_configs(arch), [1, 2, 3]);
    let mut all = ldm::unet_tensors(&ldm::load(
        &diffusers.join("unet/diffusion_pytorch_model.safetensors"),
    ));
    all.extend(ldm::vae_tensors(
        &ldm::load(&diffusers.join("vae/diffusion_pytorch_model.safetensors")),
        "first_stage_model.",
    ));
    let te = ldm::load(&diffusers.join("text_encoder/model.safetensors"));
    match arch {
        Tiny::Sd1 => all.extend(
            te.into_iter()
                .map(|(k, t)| (format!("cond_stage_model.transformer.{k}"), t)),
        ),
        Tiny::Sd2 => all.extend(ldm::open_clip_tensors(
            &with_extra_layer(&te),
            "cond_stage_model.model.",
        )),
        Tiny::Sdxl => {
            all.extend(
                te.into_iter()
                    .map(|(k, t)| (format!("conditioner.embedders.0.transformer.{k}"), t)),
            );
            let te2 = ldm::load(&diffusers.join("text_encoder_2/model.safetensors"));
            all.extend(ldm::open_clip_tensors(
                &te2,
                "conditioner.embedders.1.model.",
            ));
        }
    }
    let file = dir.join("tiny.safetensors");
    ldm::save(all, &file);
    (diffusers, file)
}

/// The text conditioning of a short prompt at `clip_skip`, as bits (context, pooled).
fn cond_bits(m: &SdModel, clip_skip: usize) -> (Vec<u32>, Option<Vec<u32>>) {
    let mut ids = vec![
        rotograph_sd::tokenizer::BOS,
        320,
        1125,
        539,
        rotograph_sd::tokenizer::EOS,
    ];
    ids.resize(77, rotograph_sd::tokenizer::EOS);
    let c = m.encode_chunk(&ids, &[1.0; 77], clip_skip).unwrap();
    (bits(&c.context), c.pooled.as_ref().map(bits))
}

#[test]
fn sd2_single_file_gives_the_same_image_as_the_diffusers_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, file) = both_layouts(dir.path(), Tiny::Sd2);
    // A1111's YAML beside the checkpoint says v (the folder's scheduler config says so too).
    std::fs::write(
        dir.path().join("tiny.yaml"),
        "model:\n  params:\n    parameterization: \"v\"\n",
    )
    .unwrap();
    let a = open(&folder, VaeChoice::Model);
    let b = open(&file, VaeChoice::Model);
    for m in [&a, &b] {
        assert_eq!(m.arch, Arch::Sd2);
        assert_eq!(m.prediction, Prediction::V);
        assert_eq!(m.model.config.prediction, Prediction::V);
    }
    // The file's last OpenCLIP layer is dropped, so clip skip counts the same layers in both.
    assert_eq!(b.model.config.text_encoders[0].clip.num_hidden_layers, 3);
    for skip in [1, 2, 3] {
        assert_eq!(
            cond_bits(&a.model, skip),
            cond_bits(&b.model, skip),
            "clip skip {skip}"
        );
    }
    assert_ne!(cond_bits(&a.model, 1), cond_bits(&a.model, 2));
    assert!(b.model.encode_chunk(&[0; 77], &[1.0; 77], 4).is_err());
    let img = image(b.model);
    assert_eq!(image(a.model), img);

    // Without the YAML the prediction is what the caller says (or the probe decides).
    std::fs::remove_file(dir.path().join("tiny.yaml")).unwrap();
    let opts = LoadOptions {
        vae: VaeChoice::Model,
        prediction: Some(Prediction::Epsilon),
        ..LoadOptions::default()
    };
    let eps = load(&file, &opts, &Device::Cpu).unwrap();
    assert_eq!(eps.model.config.prediction, Prediction::Epsilon);
    assert_ne!(
        image(eps.model),
        img,
        "the prediction type reaches the sampler"
    );
    // Auto without a YAML: A1111's probe of the UNet decides.
    let auto = open(&file, VaeChoice::Model);
    let half =
        |shape: &[usize]| (Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap() * 0.5).unwrap();
    let out = auto
        .model
        .unet(&half(&[1, 4, 8, 8]), 999.0, &half(&[1, 2, 32]))
        .unwrap();
    let v = rotograph_sd::single_file::v_prediction_probe(&out).unwrap();
    let expected = if v {
        Prediction::V
    } else {
        Prediction::Epsilon
    };
    assert_eq!(auto.prediction, expected);
    assert_eq!(auto.model.prediction(), expected);
    // The stylizer's loader applies the options the same way.
    let s = SdStylizer::load_with(&file, &opts).unwrap();
    assert_eq!(s.model().prediction(), Prediction::Epsilon);
}

#[test]
fn sdxl_single_file_gives_the_same_image_as_the_diffusers_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, file) = both_layouts(dir.path(), Tiny::Sdxl);
    let a = open(&folder, VaeChoice::Model);
    let b = open(&file, VaeChoice::Model);
    for m in [&a, &b] {
        assert_eq!(m.arch, Arch::Sdxl);
        assert_eq!(m.prediction, Prediction::Epsilon);
        assert_eq!(m.model.config.text_encoders.len(), 2);
        assert_eq!(m.model.config.scaling_factor, 0.13025);
    }
    let (ctx, pooled) = cond_bits(&b.model, 1);
    assert_eq!(
        (ctx.len(), pooled.as_ref().map(Vec::len)),
        (77 * 80, Some(40))
    );
    assert_eq!(cond_bits(&a.model, 1), (ctx, pooled));
    assert_eq!(image(a.model), image(b.model));
}
