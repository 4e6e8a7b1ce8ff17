//! End-to-end tests of `rotograph stylize --backend sd` on a tiny random-weight model written by
//! `rotograph_sd::testing`, over real frames (the shared cockatoo clip, or the bundled sample).

#![cfg(feature = "sd")]

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// `(rendered, skipped)` from the `done` event of a `--json` run.
fn counts(o: &Output) -> (u64, u64) {
    assert!(o.status.success(), "{}", stderr(o));
    let r = done_report(o);
    (
        r["rendered"].as_u64().unwrap(),
        r["skipped"].as_u64().unwrap(),
    )
}

/// The tiny model and `n` real frames (extracted at `size`, or at the clip's size).
struct Fixture {
    dir: tempfile::TempDir,
    model: PathBuf,
    frames: PathBuf,
}

fn fixture(n: usize, size: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    rotograph_sd::testing::write_tiny_model(&model);
    let clip = common::shared("media/video/cockatoo.mp4").unwrap_or_else(common::sample_clip);
    let frames = dir.path().join("clip");
    let n_s = n.to_string();
    let mut args = vec![
        "extract",
        s(&clip),
        "-o",
        s(&frames),
        "--fps",
        "4",
        "--max-frames",
        &n_s,
    ];
    if let Some(sz) = size {
        args.extend(["--size", sz]);
    }
    let o = run(&args);
    assert!(o.status.success(), "extract failed: {}", stderr(&o));
    assert_eq!(pngs(&frames).len(), n);
    Fixture { dir, model, frames }
}

impl Fixture {
    /// `rotograph --json stylize clip/ -o OUT --backend sd --model tiny/ --seed 1234
    /// --denoise 0.4 --size 64x64 EXTRA...`, where EXTRA may replace the seed and denoise.
    fn stylize(&self, out: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "--json",
            "stylize",
            s(&self.frames),
            "-o",
            s(out),
            "--backend",
            "sd",
            "--model",
            s(&self.model),
            "--size",
            "64x64",
        ];
        for (flag, value) in [("--seed", "1234"), ("--denoise", "0.4")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        run(&args)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn same_files(a: &Path, b: &Path) {
    let (x, y) = (pngs(a), pngs(b));
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(&y) {
        assert_eq!(p.file_name(), q.file_name());
        assert!(
            fs::read(p).unwrap() == fs::read(q).unwrap(),
            "{} differs",
            q.display()
        );
    }
}

#[test]
fn sd_stylize_resumes_rerenders_on_change_and_repeats_exactly() {
    let f = fixture(3, None);
    let out = f.out("styled");
    assert_eq!(counts(&f.stylize(&out, &[])), (3, 0));
    let first = pngs(&out);
    assert_eq!(first.len(), 3);
    let img = image::open(&first[0]).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    let toml = fs::read_to_string(out.join("rotograph.toml")).unwrap();
    assert!(toml.contains("backend = \"sd\""), "{toml}");
    assert!(toml.contains("model_identity = \"blake3:"), "{toml}");

    assert_eq!(
        counts(&f.stylize(&out, &[])),
        (0, 3),
        "unchanged: renders nothing"
    );
    // The same model under another path is the same model.
    let moved = f.dir.path().join("tiny-moved");
    fs::rename(&f.model, &moved).unwrap();
    let mut args = vec!["--json", "stylize", "--config"];
    let cfg = out.join("rotograph.toml");
    args.push(s(&cfg));
    args.extend(["-o", s(&out), "--model", s(&moved)]);
    assert_eq!(counts(&run(&args)), (0, 3), "a moved model is not a change");
    fs::rename(&moved, &f.model).unwrap();

    // Same seed in a fresh folder: identical bytes.
    let again = f.out("again");
    assert_eq!(counts(&f.stylize(&again, &[])), (3, 0));
    same_files(&out, &again);

    let before = fs::read(&first[1]).unwrap();
    assert_eq!(
        counts(&f.stylize(&out, &["--denoise", "0.5"])),
        (3, 0),
        "changed denoise re-renders"
    );
    assert_ne!(fs::read(&first[1]).unwrap(), before);
}

#[test]
fn sd_sigkill_then_rerun_gives_the_uninterrupted_frames() {
    let f = fixture(24, None);
    let clean = f.out("clean");
    assert_eq!(counts(&f.stylize(&clean, &["--jobs", "1"])), (24, 0));

    let killed = f.out("killed");
    let mut child = bin()
        .args([
            "stylize",
            s(&f.frames),
            "-o",
            s(&killed),
            "--backend",
            "sd",
            "--model",
            s(&f.model),
            "--seed",
            "1234",
            "--denoise",
            "0.4",
            "--size",
            "64x64",
            "--jobs",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while (!killed.exists() || pngs(&killed).len() < 2) && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = pngs(&killed).len();
    assert!(
        (2..24).contains(&partial),
        "the kill must land mid-run ({partial} of 24 frames done)"
    );
    let (rendered, skipped) = counts(&f.stylize(&killed, &["--jobs", "1"]));
    assert!(skipped >= (partial - 1) as u64, "{skipped} skipped");
    assert_eq!(rendered + skipped, 24);
    same_files(&clean, &killed);
    let left: Vec<_> = fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn sd_batches_and_masks() {
    let f = fixture(2, Some("64x64"));
    // Batch of 2 x 2: the frame's own name plus batch-2..4, seeds 1234..1237.
    let out = f.out("batch");
    let o = f.stylize(
        &out,
        &[
            "--batch-size",
            "2",
            "--batch-count",
            "2",
            "--sampler",
            "DDIM",
            "--steps",
            "10",
        ],
    );
    assert_eq!(counts(&o), (2, 0));
    let mut all = Vec::new();
    for k in ["", "batch-2/", "batch-3/", "batch-4/"] {
        let p = out.join(format!("{k}00001.png"));
        all.push(fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    }
    for i in 0..4 {
        for j in i + 1..4 {
            assert_ne!(all[i], all[j], "batch images {i} and {j}");
        }
    }
    // Batch image 2 is what seed 1235 alone gives.
    let alone = f.out("alone");
    let o = f.stylize(
        &alone,
        &["--seed", "1235", "--sampler", "DDIM", "--steps", "10"],
    );
    assert_eq!(counts(&o), (2, 0));
    assert_eq!(fs::read(alone.join("00001.png")).unwrap(), all[1]);

    // Masks: the left half is kept exactly, the right half is stylized.
    let masks = f.out("masks");
    fs::create_dir_all(&masks).unwrap();
    for name in ["00001.png", "00002.png"] {
        image::GrayImage::from_fn(64, 64, |x, _| image::Luma([if x >= 32 { 255 } else { 0 }]))
            .save(masks.join(name))
            .unwrap();
    }
    let masked = f.out("masked");
    let o = f.stylize(&masked, &["--mask-dir", s(&masks), "--denoise", "0.8"]);
    assert_eq!(counts(&o), (2, 0));
    for name in ["00001.png", "00002.png"] {
        let src = image::open(f.frames.join(name)).unwrap().to_rgba8();
        let got = image::open(masked.join(name)).unwrap().to_rgba8();
        let mut changed = 0;
        for (x, y, p) in got.enumerate_pixels() {
            if x < 32 {
                assert_eq!(p, src.get_pixel(x, y), "{name} ({x}, {y}) must be kept");
            } else if p != src.get_pixel(x, y) {
                changed += 1;
            }
        }
        assert!(
            changed > 500,
            "{name}: only {changed} masked pixels changed"
        );
    }
}

#[test]
fn sd_bad_models_exit_2_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("clip");
    fs::create_dir_all(&frames).unwrap();
    image::RgbaImage::new(16, 16)
        .save(frames.join("00001.png"))
        .unwrap();
    let out = dir.path().join("out");
    let stylize = |model: &str| {
        bin()
            .args(["stylize", s(&frames), "-o", s(&out), "--backend", "sd"])
            .args(["--model", model])
            .env("HF_HUB_CACHE", dir.path().join("hf-cache"))
            .output()
            .unwrap()
    };
    let missing = dir.path().join("no-such-model");
    let o = stylize(s(&missing));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-model"), "{}", stderr(&o));

    // A hub id that is not in the local cache: no download, a clear error.
    let o = stylize("someone/uncached-model");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("huggingface-cli download someone/uncached-model"),
        "{}",
        stderr(&o)
    );

    // No model at all.
    let o = bin()
        .args(["stylize", s(&frames), "-o", s(&out), "--backend", "sd"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    assert!(!out.join("rotograph.toml").exists(), "nothing was started");
}

#[test]
fn sd_roto_streams_into_a_video() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    rotograph_sd::testing::write_tiny_model(&model);
    let out = dir.path().join("sd.mp4");
    let o = run(&[
        "roto",
        s(&common::sample_clip()),
        "-o",
        s(&out),
        "--fps",
        "4",
        "--max-frames",
        "3",
        "--size",
        "64x64",
        "--backend",
        "sd",
        "--model",
        s(&model),
        "--seed",
        "7",
        "--steps",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(common::count_frames(&out), 3);
    let work = dir.path().join("sd.rotograph");
    assert_eq!(pngs(&work).len(), 3);
    let toml = fs::read_to_string(work.join("rotograph.toml")).unwrap();
    assert!(toml.contains("model_identity"), "{toml}");
}

/// A single-file checkpoint renders exactly as the diffusers folder it was written from;
/// `--vae taesd` takes the `taesd/` folder beside it, is recorded and re-keys the frames, and
/// `--prediction` is recorded and keys the frames: `v` renders the same file as a
/// v-prediction model (different pictures), and an SD 2.x v-prediction folder runs with `auto`.
#[test]
fn sd_single_file_vae_and_prediction() {
    use rotograph_sd::testing;
    let f = fixture(2, None);
    // The single-file conventions (GroupNorm 32, 64-wide text heads) in both layouts.
    let folder = f.out("tiny-sf");
    let [u, v, c] = testing::single_file_configs();
    testing::write_model_with(&folder, [&u, &v, &c], [1, 2, 3]);
    let file = f.out("tiny.safetensors");
    testing::ldm::write_single_file(&folder, &file);

    let with = |out: &Path, model: &Path, extra: &[&str]| {
        let mut args = vec!["--json", "stylize", s(&f.frames), "-o", s(out)];
        args.extend(["--backend", "sd", "--model", s(model), "--size", "64x64"]);
        args.extend(["--seed", "1234", "--denoise", "0.4"]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let from_folder = f.out("from-folder");
    assert_eq!(counts(&with(&from_folder, &folder, &[])), (2, 0));
    let from_file = f.out("from-file");
    assert_eq!(
        counts(&with(&from_file, &file, &["--prediction", "epsilon"])),
        (2, 0)
    );
    same_files(&from_folder, &from_file);
    let toml = fs::read_to_string(from_file.join("rotograph.toml")).unwrap();
    assert!(toml.contains("prediction = \"epsilon\""), "{toml}");
    let plain_identity = |dir: &Path| {
        let t = fs::read_to_string(dir.join("rotograph.toml")).unwrap();
        rotograph::pipeline::Settings::from_toml(&t, Path::new("rotograph.toml"))
            .unwrap()
            .model_identity
            .expect("identity recorded")
    };
    let file_identity = plain_identity(&from_file);

    // --vae taesd without the weights: exit code and a message that says where to put them.
    let tiny_vae = f.out("with-taesd");
    let o = with(&tiny_vae, &file, &["--vae", "taesd"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("taesd"), "{}", stderr(&o));

    testing::taesd::write_diffusers(&f.out("taesd"));
    assert_eq!(counts(&with(&tiny_vae, &file, &["--vae", "taesd"])), (2, 0));
    let toml = fs::read_to_string(tiny_vae.join("rotograph.toml")).unwrap();
    assert!(toml.contains("vae = \"taesd\""), "{toml}");
    assert_ne!(
        plain_identity(&tiny_vae),
        file_identity,
        "the VAE keys the frames"
    );
    let differs = pngs(&tiny_vae)
        .iter()
        .zip(pngs(&from_file))
        .any(|(a, b)| fs::read(a).unwrap() != fs::read(b).unwrap());
    assert!(differs, "TAESD decodes differently from the model's VAE");
    // Same settings: resumed; back to the model's VAE in the same folder: re-rendered.
    assert_eq!(counts(&with(&tiny_vae, &file, &["--vae", "taesd"])), (0, 2));
    assert_eq!(counts(&with(&tiny_vae, &file, &["--vae", "model"])), (2, 0));
    same_files(&from_file, &tiny_vae);

    // v-prediction: rendered, recorded, its own identity and different pictures.
    let v = f.out("v");
    assert_eq!(counts(&with(&v, &file, &["--prediction", "v"])), (2, 0));
    let toml = fs::read_to_string(v.join("rotograph.toml")).unwrap();
    assert!(toml.contains("prediction = \"v\""), "{toml}");
    assert_ne!(
        plain_identity(&v),
        file_identity,
        "the prediction keys the frames"
    );
    let differs = pngs(&v)
        .iter()
        .zip(pngs(&from_file))
        .any(|(a, b)| fs::read(a).unwrap() != fs::read(b).unwrap());
    assert!(differs, "v-prediction samples differently");

    // An SD 2.x folder whose scheduler says v_prediction runs with the default `auto`.
    let sd2 = f.out("tiny-sd2");
    testing::write_tiny(&sd2, testing::Tiny::Sd2);
    let sd2_out = f.out("sd2");
    assert_eq!(counts(&with(&sd2_out, &sd2, &[])), (2, 0));
    assert_eq!(pngs(&sd2_out).len(), 2);
}

#[test]
fn sd_attention_slice_gives_the_same_frames_and_rejects_zero() {
    let f = fixture(2, None);
    let whole = f.out("whole");
    assert_eq!(counts(&f.stylize(&whole, &[])), (2, 0));
    let sliced = f.out("sliced");
    assert_eq!(
        counts(&f.stylize(&sliced, &["--attention-slice", "1"])),
        (2, 0)
    );
    let toml = fs::read_to_string(sliced.join("rotograph.toml")).unwrap();
    assert!(toml.contains("attention_slice = 1"), "{toml}");
    // Slicing changes the order of float operations only: at most one 8-bit level apart.
    for (a, b) in pngs(&whole).iter().zip(pngs(&sliced)) {
        let (a, b) = (
            image::open(a).unwrap().to_rgba8(),
            image::open(&b).unwrap().to_rgba8(),
        );
        let worst = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(worst <= 1, "sliced attention differs by {worst} levels");
    }
    let o = f.stylize(&f.out("zero"), &["--attention-slice", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("attention_slice"), "{}", stderr(&o));
}
