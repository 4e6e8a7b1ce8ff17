//! The architectures: tiny SD 1.x, SD 2.x (v-prediction) and SDXL models load from diffusers
//! folders and run img2img; our UNet and CLIP match candle's on SD 1.x; the v denoiser, the
//! SDXL add-embedding and CLIP skip do what they should; bad configs name their file.

mod common;

use common::randn;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::clip::text_model::{
    Activation, ClipTextConfig, ClipTextTransformer,
};
use candle_transformers::models::stable_diffusion::unet_2d::{
    BlockConfig, UNet2DConditionModel, UNet2DConditionModelConfig,
};
use common::Tiny;
use image::{Rgba, RgbaImage};
use rotograph::stylize::{Img2ImgParams, Img2ImgRequest, Stylizer};
use rotograph_sd::img2img::SdStylizer;
use rotograph_sd::model::{
    pad_after_eos, Architecture, ModelError, Prediction, SdConfig, SdModel, TextCond,
};
use rotograph_sd::tokenizer::{BOS, EOS};
use rotograph_sd::unet::{Unet, UnetConfig, UnetInputs};
use std::path::Path;
use std::sync::OnceLock;

/// The tiny model folders, written once per test binary.
fn dir(arch: Tiny) -> &'static Path {
    static DIRS: OnceLock<[tempfile::TempDir; 3]> = OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        [Tiny::Sd1, Tiny::Sd2, Tiny::Sdxl].map(|a| {
            let d = tempfile::tempdir().unwrap();
            common::write_tiny(d.path(), a);
            d
        })
    });
    dirs[arch as usize].path()
}

fn model(arch: Tiny) -> SdModel {
    SdModel::load_diffusers(dir(arch), &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn chunk(words: &[u32]) -> (Vec<u32>, Vec<f32>) {
    let mut ids = vec![BOS];
    ids.extend_from_slice(words);
    ids.resize(77, EOS);
    (ids, vec![1.0; 77])
}

fn init(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8, 255])
    })
}

fn stylize(s: &SdStylizer, p: &Img2ImgParams, seed: u64) -> Vec<u8> {
    let img = init(64, 64);
    let req = Img2ImgRequest {
        init: &img,
        mask: None,
        controls: vec![],
        params: p,
        seed,
        subseed: 0,
    };
    let out = s.stylize(&req).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dimensions(), (64, 64));
    out[0].as_raw().clone()
}

fn params() -> Img2ImgParams {
    Img2ImgParams {
        prompt: "a (red:1.3) fox".into(),
        negative_prompt: "blurry".into(),
        seed: 1,
        subseed: 0,
        denoise: 0.6,
        steps: 4,
        cfg: 5.0,
        sampler: "Euler a".into(),
        ..Img2ImgParams::default()
    }
}

#[test]
fn architectures_are_detected_from_the_configs() {
    let c1 = SdConfig::read_diffusers(dir(Tiny::Sd1)).unwrap();
    assert_eq!(c1.architecture, Architecture::Sd1);
    assert_eq!(c1.prediction, Prediction::Epsilon);
    assert_eq!(c1.scaling_factor, 0.18215);
    assert_eq!(c1.text_encoders.len(), 1);
    assert_eq!(c1.text_encoders[0].pad_id, EOS);

    let c2 = SdConfig::read_diffusers(dir(Tiny::Sd2)).unwrap();
    assert_eq!(c2.architecture, Architecture::Sd2);
    assert_eq!(c2.prediction, Prediction::V);
    assert_eq!(c2.text_encoders[0].pad_id, 0, "OpenCLIP pads with '!'");
    assert!(c2.unet.use_linear_projection);
    assert_eq!(
        c2.unet.blocks.iter().map(|b| b.heads).collect::<Vec<_>>(),
        [2, 4]
    );

    let cx = SdConfig::read_diffusers(dir(Tiny::Sdxl)).unwrap();
    assert_eq!(cx.architecture, Architecture::Sdxl);
    assert_eq!(cx.prediction, Prediction::Epsilon);
    assert_eq!(cx.scaling_factor, 0.13025, "the SDXL default");
    assert_eq!(cx.text_encoders.len(), 2);
    assert_eq!(cx.text_encoders[1].clip.projection_dim, Some(40));
    assert_eq!(
        cx.unet
            .blocks
            .iter()
            .map(|b| b.transformer_layers)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(cx.unet.mid_transformer_layers, 2);
    let tt = cx.unet.text_time.unwrap();
    assert_eq!((tt.time_embed_dim, tt.pooled_dim()), (8, 40));
}

#[test]
fn each_architecture_runs_img2img_deterministically() {
    for arch in [Tiny::Sd1, Tiny::Sd2, Tiny::Sdxl] {
        let s = SdStylizer::new(model(arch));
        let p = params();
        let a = stylize(&s, &p, 42);
        assert_eq!(a, stylize(&s, &p, 42), "{arch:?}: same seed, same bytes");
        assert_ne!(a, stylize(&s, &p, 43), "{arch:?}: the seed matters");
        // Turbo-style settings: 1 step of Euler a at cfg 1, empty negative prompt.
        let turbo = Img2ImgParams {
            steps: 1,
            cfg: 1.0,
            negative_prompt: String::new(),
            denoise: 0.5,
            ..p.clone()
        };
        let t = stylize(&s, &turbo, 42);
        assert_eq!(t, stylize(&s, &turbo, 42), "{arch:?}");
    }
}

/// candle's SD 1.x UNet config for the tiny SD1 model (`common::UNET_CONFIG`) with 32 norm
/// groups (candle's blocks use 32 whatever the config says), by hand.
fn candle_sd1_config() -> UNet2DConditionModelConfig {
    let block = |out_channels, cross: bool| BlockConfig {
        out_channels,
        use_cross_attn: cross.then_some(1),
        attention_head_dim: 8,
    };
    UNet2DConditionModelConfig {
        blocks: vec![block(32, true), block(64, false)],
        layers_per_block: 1,
        norm_num_groups: 32,
        cross_attention_dim: 32,
        ..UNet2DConditionModelConfig::default()
    }
}

#[test]
fn our_unet_matches_candles_on_sd1() {
    // Our UNet with candle's choices (32 resnet groups, tanh GELU) and candle's, on the same
    // random weights.
    let mut cfg = SdConfig::read_diffusers(dir(Tiny::Sd1)).unwrap().unet;
    cfg.norm_num_groups = 32;
    cfg.gelu_approximate = true;
    let vm = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    Unet::new(vb.clone(), &cfg).unwrap(); // creates the variables
    common::fill_deterministic(&vm, 9);
    let ours = Unet::new(vb.clone(), &cfg).unwrap();
    let theirs = UNet2DConditionModel::new(vb.clone(), 4, 4, false, candle_sd1_config()).unwrap();
    // Even and odd latent sizes (the odd one exercises the upsample-to-skip-size path).
    for (i, (h, w)) in [(8, 8), (7, 9)].into_iter().enumerate() {
        let x = randn(10 + i as u64, &[2, 4, h, w]);
        let ctx = randn(20 + i as u64, &[2, 77, 32]);
        let a = ours
            .forward(&x, 321.5, &ctx, UnetInputs::default())
            .unwrap();
        let b = theirs.forward(&x, 321.5, &ctx).unwrap();
        let d = max_abs_diff(&a, &b);
        assert!(d <= 1e-6, "{h}x{w}: max abs diff {d}");
        assert!(values(&a).iter().any(|&v| v != 0.0));
    }

    // ControlNet residuals: the same as candle's forward_with_additional_residuals.
    let x = randn(30, &[1, 4, 8, 8]);
    let ctx = randn(31, &[1, 77, 32]);
    let shapes: [&[usize]; 4] = [
        &[1, 32, 8, 8],
        &[1, 32, 8, 8],
        &[1, 32, 4, 4],
        &[1, 64, 4, 4],
    ];
    let down: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| randn(40 + i as u64, s))
        .collect();
    let mid = randn(50, &[1, 64, 4, 4]);
    let inputs = UnetInputs {
        down_residuals: Some(&down),
        mid_residual: Some(&mid),
        ..UnetInputs::default()
    };
    let a = ours.forward(&x, 500.0, &ctx, inputs).unwrap();
    let b = theirs
        .forward_with_additional_residuals(&x, 500.0, &ctx, Some(&down), Some(&mid))
        .unwrap();
    assert!(max_abs_diff(&a, &b) <= 1e-6);
    let plain = ours
        .forward(&x, 500.0, &ctx, UnetInputs::default())
        .unwrap();
    assert!(max_abs_diff(&a, &plain) > 1e-3, "the residuals are used");

    // Sliced attention (1 and 3 heads at a time, 3 leaving a remainder) computes the same.
    for slice in [1, 3] {
        let sliced = UnetConfig {
            sliced_attention_size: Some(slice),
            ..cfg.clone()
        };
        let c = Unet::new(vb.clone(), &sliced)
            .unwrap()
            .forward(&x, 500.0, &ctx, UnetInputs::default())
            .unwrap();
        let d = max_abs_diff(&c, &plain);
        assert!(d <= 1e-5, "sliced attention {slice}: max abs diff {d}");
    }
    // diffusers' exact GELU is a small but real difference.
    let exact = UnetConfig {
        gelu_approximate: false,
        ..cfg.clone()
    };
    let e = Unet::new(vb, &exact)
        .unwrap()
        .forward(&x, 500.0, &ctx, UnetInputs::default())
        .unwrap();
    let d = max_abs_diff(&e, &plain);
    assert!(d > 0.0 && d < 0.05, "exact vs tanh GELU: {d}");
}

#[test]
fn our_text_encoder_matches_candles_on_sd1_and_clip_skip_changes_it() {
    let m = model(Tiny::Sd1);
    let file = dir(Tiny::Sd1).join("text_encoder/model.safetensors");
    // SAFETY: a test file nothing else writes.
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, &Device::Cpu) }.unwrap();
    let cfg = ClipTextConfig {
        vocab_size: 49408,
        embed_dim: 32,
        activation: Activation::QuickGelu,
        intermediate_size: 64,
        max_position_embeddings: 77,
        pad_with: None,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        projection_dim: 32,
    };
    let old = ClipTextTransformer::new(vb.pp("text_model"), &cfg).unwrap();
    let (ids, w) = chunk(&[320, 1125, 539]);
    let t = Tensor::from_vec(ids.clone(), (1, 77), &Device::Cpu).unwrap();
    let old_z = old.forward_with_mask(&t, usize::MAX).unwrap();

    let skip1 = m.encode_chunk(&ids, &w, 1).unwrap();
    let d = max_abs_diff(&skip1.context, &old_z);
    assert!(d <= 1e-5, "clip skip 1 is the old path: max abs diff {d}");
    assert!(skip1.pooled.is_none());
    let skip2 = m.encode_chunk(&ids, &w, 2).unwrap();
    assert!(max_abs_diff(&skip1.context, &skip2.context) > 1e-3);

    // Too deep for a 2-layer encoder: a setting error.
    let err = m.encode_chunk(&ids, &w, 3).unwrap_err();
    assert!(matches!(err, ModelError::Setting { .. }), "{err}");
    assert!(err.to_string().contains("clip_skip"), "{err}");

    // Through img2img: clip skip 2 gives another picture; 0 is rejected by validation.
    let s = SdStylizer::new(m);
    let p = params();
    let two = Img2ImgParams {
        clip_skip: 2,
        ..p.clone()
    };
    assert_ne!(stylize(&s, &p, 3), stylize(&s, &two, 3));
    let zero = Img2ImgParams { clip_skip: 0, ..p };
    let img = init(64, 64);
    let req = Img2ImgRequest {
        init: &img,
        mask: None,
        controls: vec![],
        params: &zero,
        seed: 1,
        subseed: 0,
    };
    let err = s.stylize(&req).unwrap_err();
    assert!(err.to_string().contains("clip_skip"), "{err}");
}

#[test]
fn denoisers_recover_the_clean_latent_from_exact_predictions() {
    // x = x0 + sigma * n. An exact eps model outputs n; an exact v model outputs
    // v = alpha * n - sigma_t * x0 with alpha = 1/sqrt(sigma^2+1), sigma_t = sigma * alpha.
    let x0 = [0.7f64, -1.3, 0.05, 2.0];
    let n = [-0.4f64, 1.1, 0.9, -2.2];
    for sigma in [0.03, 0.5, 1.0, 4.0, 14.6] {
        let alpha = 1.0 / (sigma * sigma + 1.0f64).sqrt();
        for i in 0..4 {
            let x = x0[i] + sigma * n[i];
            let (s, o) = Prediction::Epsilon.scalings(sigma);
            assert!((s * x + o * n[i] - x0[i]).abs() < 1e-12);
            let v = alpha * n[i] - sigma * alpha * x0[i];
            let (s, o) = Prediction::V.scalings(sigma);
            assert!((s * x + o * v - x0[i]).abs() < 1e-12, "sigma {sigma}");
        }
        assert!((Prediction::c_in(sigma) - alpha).abs() < 1e-15);
    }
}

#[test]
fn v_prediction_model_applies_the_v_denoiser_and_cfg_one_skips_uncond() {
    let mut m = model(Tiny::Sd2);
    assert_eq!(m.prediction(), Prediction::V);
    let (ids, w) = chunk(&[320, 1125]);
    let cond = m.encode_chunk(&ids, &w, 1).unwrap();
    let (ids, w) = chunk(&[2368]);
    let uncond = m.encode_chunk(&ids, &w, 1).unwrap();
    let x = randn(60, &[1, 4, 8, 8]);
    let (sigma, t) = (2.5f64, 700.0f64);

    // Oracle: the raw UNet output through k-diffusion's v scalings, computed here.
    let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
    let out = m.unet(&(&x * c_in).unwrap(), t, &cond.context).unwrap();
    let s2 = sigma * sigma + 1.0;
    let want = ((&x * (1.0 / s2)).unwrap() + (&out * (-sigma / s2.sqrt())).unwrap()).unwrap();
    let got = m.denoised(&x, sigma, t, &uncond, &cond, 1.0).unwrap();
    assert!(max_abs_diff(&got, &want) <= 1e-5);
    // cfg 1 never looks at the unconditional prompt.
    let other = m.denoised(&x, sigma, t, &cond, &cond, 1.0).unwrap();
    assert_eq!(values(&got), values(&other));
    // cfg != 1 does.
    let g1 = m.denoised(&x, sigma, t, &uncond, &cond, 3.0).unwrap();
    let g2 = m.denoised(&x, sigma, t, &cond, &cond, 3.0).unwrap();
    assert!(max_abs_diff(&g1, &g2) > 1e-4);
    assert!(
        max_abs_diff(&g2, &got) <= 1e-5,
        "uncond == cond: guidance is a no-op"
    );

    // The same weights read as epsilon give x - sigma * out instead.
    m.config.prediction = Prediction::Epsilon;
    let eps = m.denoised(&x, sigma, t, &uncond, &cond, 1.0).unwrap();
    let want = (&x - (&out * sigma).unwrap()).unwrap();
    assert!(max_abs_diff(&eps, &want) <= 1e-5);
    assert!(max_abs_diff(&eps, &got) > 1e-2);
}

#[test]
fn sdxl_time_ids_and_pooled_embedding_change_the_unet_output() {
    let m = model(Tiny::Sdxl);
    let (ids, w) = chunk(&[320, 1125, 539]);
    let cond = m.encode_chunk(&ids, &w, 1).unwrap();
    assert_eq!(cond.context.dims(), &[1, 77, 80], "32 + 48 features");
    let pooled = cond.pooled.clone().unwrap();
    assert_eq!(pooled.dims(), &[1, 40]);
    // SDXL ignores clip skip.
    let skip3 = m.encode_chunk(&ids, &w, 3).unwrap();
    assert_eq!(values(&cond.context), values(&skip3.context));

    let x = randn(70, &[1, 4, 8, 8]);
    let run = |pooled: &Tensor, time: [f32; 6]| {
        let time = Tensor::from_vec(time.to_vec(), (1, 6), &Device::Cpu).unwrap();
        let inputs = UnetInputs {
            text_time: Some((pooled, &time)),
            ..UnetInputs::default()
        };
        m.unet_with(&x, 400.0, &cond.context, inputs).unwrap()
    };
    let base = run(&pooled, SdModel::time_ids(64, 64));
    assert_eq!(
        SdModel::time_ids(64, 96),
        [64.0, 96.0, 0.0, 0.0, 64.0, 96.0]
    );
    assert!(max_abs_diff(&base, &run(&pooled, SdModel::time_ids(64, 96))) > 1e-4);
    assert!(max_abs_diff(&base, &run(&pooled, [64.0, 64.0, 8.0, 0.0, 64.0, 64.0])) > 1e-4);
    let other_pooled = randn(71, &[1, 40]);
    assert!(max_abs_diff(&base, &run(&other_pooled, SdModel::time_ids(64, 64))) > 1e-4);
    // The SDXL UNet refuses to run without them.
    assert!(m.unet(&x, 400.0, &cond.context).is_err());
    // denoised() passes the image size of the latent (8x8 cells = 64x64 px).
    let den = m.denoised(&x, 0.0, 400.0, &cond, &cond, 1.0).unwrap();
    assert!(max_abs_diff(&den, &x) <= 1e-6, "sigma 0 keeps x (eps)");
    // Two chunks: contexts joined on the token axis, the first chunk's pooled embedding.
    let (ids2, w2) = chunk(&[2368]);
    let second = m.encode_chunk(&ids2, &w2, 1).unwrap();
    let both = TextCond::concat(&[cond.clone(), second]).unwrap();
    assert_eq!(both.context.dims(), &[1, 154, 80]);
    assert_eq!(values(both.pooled.as_ref().unwrap()), values(&pooled));
    let zeros = both.zeros_like().unwrap();
    assert!(values(&zeros.context).iter().all(|&v| v == 0.0));
    assert!(values(zeros.pooled.as_ref().unwrap())
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn openclip_encoders_pad_after_the_first_eos() {
    let (ids, _) = chunk(&[320, 1125]);
    let padded = pad_after_eos(&ids, 0);
    assert_eq!(&padded[..4], &[BOS, 320, 1125, EOS]);
    assert!(padded[4..].iter().all(|&t| t == 0));
    assert_eq!(pad_after_eos(&ids, EOS), ids);
}

/// Writes `arch`'s configs with `(sub, from, to)` replacements into a fresh folder.
fn configs_with(arch: Tiny, edit: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    common::write_configs(d.path(), arch);
    for (sub, from, to) in edit {
        let path = d.path().join(sub);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{sub} lacks {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
    d
}

fn config_error(d: &tempfile::TempDir) -> String {
    let err = SdConfig::read_diffusers(d.path()).unwrap_err();
    assert!(matches!(err, ModelError::Config { .. }), "{err}");
    err.to_string()
}

#[test]
fn bad_configs_name_their_file() {
    let cases: &[(Tiny, (&str, &str, &str), &str)] = &[
        (
            Tiny::Sd2,
            (
                "scheduler/scheduler_config.json",
                "\"v_prediction\"",
                "\"sample\"",
            ),
            "scheduler_config.json",
        ),
        (
            Tiny::Sd2,
            ("text_encoder/config.json", "\"gelu\"", "\"relu\""),
            "text_encoder/config.json",
        ),
        (
            Tiny::Sdxl,
            (
                "text_encoder_2/config.json",
                "\"projection_dim\": 40",
                "\"projection_dim\": 0",
            ),
            "text_encoder_2/config.json",
        ),
        (
            Tiny::Sdxl,
            (
                "unet/config.json",
                "\"projection_class_embeddings_input_dim\": 88",
                "\"projection_class_embeddings_input_dim\": 90",
            ),
            "unet/config.json",
        ),
        (
            Tiny::Sdxl,
            ("unet/config.json", "\"text_time\"", "\"text\""),
            "unet/config.json",
        ),
        (
            Tiny::Sdxl,
            (
                "unet/config.json",
                "\"transformer_layers_per_block\": [1, 2]",
                "\"transformer_layers_per_block\": [1, 2, 3]",
            ),
            "unet/config.json",
        ),
        (
            Tiny::Sdxl,
            (
                "unet/config.json",
                "\"cross_attention_dim\": 80",
                "\"cross_attention_dim\": 48",
            ),
            "unet/config.json",
        ),
    ];
    for (arch, (sub, from, to), names) in cases {
        let d = configs_with(*arch, &[(sub, from, to)]);
        let e = config_error(&d);
        assert!(e.contains(names), "{arch:?} {to}: {e}");
    }

    // An SDXL UNet without text_encoder_2, and text_encoder_2 with an SD UNet.
    let d = configs_with(Tiny::Sdxl, &[]);
    std::fs::remove_dir_all(d.path().join("text_encoder_2")).unwrap();
    let e = config_error(&d);
    assert!(
        e.contains("unet/config.json") && e.contains("text_encoder_2"),
        "{e}"
    );
    let d = configs_with(Tiny::Sd1, &[]);
    std::fs::create_dir_all(d.path().join("text_encoder_2")).unwrap();
    std::fs::write(
        d.path().join("text_encoder_2/config.json"),
        common::SDXL_CLIP2_CONFIG,
    )
    .unwrap();
    let e = config_error(&d);
    assert!(
        e.contains("unet/config.json") && e.contains("text_time"),
        "{e}"
    );
}

#[test]
fn inpainting_unets_load_but_img2img_refuses_them() {
    let d = tempfile::tempdir().unwrap();
    common::write_tiny(d.path(), Tiny::Sd1);
    let cfg_path = d.path().join("unet/config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text.replace("\"in_channels\": 4", "\"in_channels\": 9"),
    )
    .unwrap();
    let cfg = SdConfig::read_diffusers(d.path()).unwrap();
    assert_eq!(cfg.unet.in_channels, 9);
    let vm = candle_nn::VarMap::new();
    Unet::new(
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
        &cfg.unet,
    )
    .unwrap();
    common::fill_deterministic(&vm, 5);
    vm.save(d.path().join("unet/diffusion_pytorch_model.safetensors"))
        .unwrap();
    let m = SdModel::load_diffusers(d.path(), &Device::Cpu).unwrap();
    let ctx = randn(81, &[1, 77, 32]);
    let out = m.unet(&randn(80, &[1, 9, 8, 8]), 10.0, &ctx).unwrap();
    assert_eq!(out.dims(), &[1, 4, 8, 8]);
    let cond = TextCond {
        context: ctx,
        pooled: None,
    };
    let x = randn(82, &[1, 4, 8, 8]);
    let err = m.denoised(&x, 1.0, 500.0, &cond, &cond, 7.0).unwrap_err();
    assert!(err.to_string().contains("inpainting"), "{err}");
}
