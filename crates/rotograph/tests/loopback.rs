//! The loopback engine with deterministic backends (issue 4's acceptance list, the parts that
//! the engine core covers).

mod common;

use image::{GrayImage, Luma, Rgba, RgbaImage};
use rotograph::frames::Frame;
use rotograph::loopback::{
    self, read_prompt_file, window_weights, FrameInputs, FramePrompt, FrameStore, ImageF32,
    LoopbackSettings, MaskSource, MemoryStore, Plan,
};
use rotograph::progress::NoProgress;
use rotograph::stylize::toon::{Style, Toon};
use rotograph::stylize::{Img2ImgRequest, Stylizer};
use rotograph::{Error, Result};
use std::sync::Mutex;

const W: u32 = 24;
const H: u32 = 16;

/// A deterministic clip of `n` frames with varied pixels.
fn clip(n: usize) -> Vec<RgbaImage> {
    (0..n)
        .map(|k| {
            RgbaImage::from_fn(W, H, |x, y| {
                let v = |m: u32| ((x * m + y * 11 + k as u32 * 53) % 256) as u8;
                Rgba([v(37), v(71), v(13), 255])
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    init: RgbaImage,
    seed: u64,
    subseed: u64,
    prompt: String,
    negative: String,
    batch: u32,
    masked: bool,
}

enum Mode {
    Passthrough,
    /// Every image one colour.
    Constant([u8; 4]),
    /// Batch images alternate black and white.
    BlackWhite,
    Toon(Toon),
}

/// A backend that records its requests.
struct Recorder {
    mode: Mode,
    calls: Mutex<Vec<Call>>,
}

impl Recorder {
    fn new(mode: Mode) -> Self {
        Recorder {
            mode,
            calls: Mutex::new(Vec::new()),
        }
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Stylizer for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn stylize(&self, r: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
        let batch = r.params.batch_size * r.params.batch_count;
        self.calls.lock().unwrap().push(Call {
            init: r.init.clone(),
            seed: r.seed,
            subseed: r.subseed,
            prompt: r.params.prompt.clone(),
            negative: r.params.negative_prompt.clone(),
            batch,
            masked: r.mask.is_some(),
        });
        let (w, h) = r.init.dimensions();
        Ok(match &self.mode {
            Mode::Passthrough => vec![r.init.clone(); batch as usize],
            Mode::Constant(c) => vec![RgbaImage::from_pixel(w, h, Rgba(*c)); batch as usize],
            Mode::BlackWhite => (0..batch)
                .map(|k| RgbaImage::from_pixel(w, h, Rgba([255 * (k % 2) as u8; 4])))
                .collect(),
            Mode::Toon(t) => t.stylize(r)?,
        })
    }
}

fn settings(loop_n: usize, alpha: &str, temporal: &str) -> LoopbackSettings {
    let mut s = LoopbackSettings {
        loop_n,
        superimpose_alpha: alpha.into(),
        temporal_superimpose: temporal.into(),
        ..LoopbackSettings::default()
    };
    s.img2img.seed = 1000;
    s.img2img.subseed = 7;
    s
}

fn no_mask(_: usize) -> Result<Option<GrayImage>> {
    Ok(None)
}

fn no_prompt(_: usize) -> Result<Option<FramePrompt>> {
    Ok(None)
}

fn name(i: usize) -> String {
    format!("{:05}.png", i + 1)
}

/// Runs loopback over `frames`; returns the store.
fn run_with(
    s: &LoopbackSettings,
    frames: &[RgbaImage],
    backend: &dyn Stylizer,
    mask: &dyn Fn(usize) -> Result<Option<GrayImage>>,
    prompt: &dyn Fn(usize) -> Result<Option<FramePrompt>>,
) -> MemoryStore {
    let plan = Plan::new(s, frames.len()).unwrap();
    let mut store = MemoryStore::with_source(frames.iter().map(ImageF32::from_rgba));
    let inputs = FrameInputs {
        mask,
        prompt,
        name: &name,
    };
    loopback::run(&plan, &mut store, &inputs, backend, &NoProgress).unwrap();
    store
}

fn last(store: &mut MemoryStore, loops: usize, n: usize) -> Vec<ImageF32> {
    (0..n).map(|i| store.get(loops, i).unwrap()).collect()
}

#[test]
fn one_loop_full_alpha_and_list_1_equals_plain_stylize() {
    let frames = clip(4);
    let toon = Toon::new(Style::Toon, 1);
    let backend = Recorder::new(Mode::Toon(toon.clone()));
    let s = settings(1, "1", "1");
    let mut store = run_with(&s, &frames, &backend, &no_mask, &no_prompt);
    for (i, f) in frames.iter().enumerate() {
        let params = Plan::new(&s, 4).unwrap().frame(1, i + 1).unwrap();
        let req = Img2ImgRequest {
            init: f,
            mask: None,
            controls: vec![],
            params: &params.img2img,
            seed: params.seed,
            subseed: params.subseed,
        };
        let plain = toon.stylize(&req).unwrap().remove(0);
        assert_eq!(store.get(1, i).unwrap().to_rgba(), plain, "frame {i}");
        assert_ne!(plain, *f, "the backend changes the frame");
    }
}

#[test]
fn alpha_zero_returns_the_input() {
    let frames = clip(3);
    let backend = Recorder::new(Mode::Constant([10, 200, 30, 255]));
    let mut store = run_with(
        &settings(3, "0", "[1, 2, 1]"),
        &frames,
        &backend,
        &no_mask,
        &no_prompt,
    );
    for (i, out) in last(&mut store, 3, 3).iter().enumerate() {
        assert_eq!(out.to_rgba(), frames[i]);
    }
    assert_eq!(
        backend.calls().len(),
        9,
        "every frame of every loop is still rendered"
    );
}

#[test]
fn source_weight_after_l_loops_is_one_minus_alpha_to_the_l() {
    let frames = clip(2);
    let c = [10u8, 200, 30, 255];
    let backend = Recorder::new(Mode::Constant(c));
    let (alpha, loops) = (0.3f64, 5usize);
    let mut store = run_with(
        &settings(loops, "0.3", "1"),
        &frames,
        &backend,
        &no_mask,
        &no_prompt,
    );
    let want = (1.0 - alpha).powi(loops as i32);
    let mut checked = 0;
    for (i, out) in last(&mut store, loops, 2).iter().enumerate() {
        let src = ImageF32::from_rgba(&frames[i]);
        for (k, (o, s)) in out.data().iter().zip(src.data()).enumerate() {
            let cv = f64::from(c[k % 4]);
            let d = f64::from(*s) - cv;
            if d.abs() >= 100.0 {
                let w = (f64::from(*o) - cv) / d;
                assert!((w - want).abs() < 1e-6, "weight {w}, want {want}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100);
}

#[test]
fn batch_images_are_averaged_in_float() {
    let frames = clip(1);
    let backend = Recorder::new(Mode::BlackWhite);
    let mut s = settings(1, "1", "1");
    s.img2img.batch_size = 2;
    let mut store = run_with(&s, &frames, &backend, &no_mask, &no_prompt);
    let out = store.get(1, 0).unwrap();
    assert!(
        out.data().iter().all(|v| *v == 127.5),
        "the average is not rounded"
    );
}

#[test]
fn temporal_weights_normalize_and_clip_at_the_ends() {
    let close = |got: Vec<(usize, f32)>, want: &[(usize, f32)]| {
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.0 == w.0 && (g.1 - w.1).abs() < 1e-7,
                "{got:?} vs {want:?}"
            );
        }
    };
    close(
        window_weights(&[1.0, 2.0, 1.0], 2, 5),
        &[(1, 0.25), (2, 0.5), (3, 0.25)],
    );
    close(
        window_weights(&[1.0, 2.0, 1.0], 0, 5),
        &[(0, 2.0 / 3.0), (1, 1.0 / 3.0)],
    );
    close(
        window_weights(&[1.0, 2.0, 1.0], 4, 5),
        &[(3, 1.0 / 3.0), (4, 2.0 / 3.0)],
    );
    close(
        window_weights(&[1.0, 1.0, 3.0, 1.0, 1.0], 1, 3),
        &[(0, 0.2), (1, 0.6), (2, 0.2)],
    );
    close(window_weights(&[1.0], 3, 5), &[(3, 1.0)]);
    close(window_weights(&[], 3, 5), &[(3, 1.0)]);
    close(window_weights(&[1.0, 2.0, 1.0], 0, 1), &[(0, 1.0)]);

    // The engine hands the backend the rounded blend of the previous loop's window.
    let frames = clip(3);
    let backend = Recorder::new(Mode::Passthrough);
    run_with(
        &settings(1, "0.5", "[1, 2, 1]"),
        &frames,
        &backend,
        &no_mask,
        &no_prompt,
    );
    let calls = backend.calls();
    let f = |k: usize| ImageF32::from_rgba(&frames[k]);
    let mut want0 = ImageF32::zeros(W, H);
    want0.add_scaled(&f(0), 2.0 / 3.0);
    want0.add_scaled(&f(1), 1.0 / 3.0);
    assert_eq!(calls[0].init, want0.to_rgba());
    let mut want1 = ImageF32::zeros(W, H);
    want1.add_scaled(&f(0), 0.25);
    want1.add_scaled(&f(1), 0.5);
    want1.add_scaled(&f(2), 0.25);
    assert_eq!(calls[1].init, want1.to_rgba());
}

/// Left half white (repaint), right half black (keep).
fn half_mask() -> GrayImage {
    GrayImage::from_fn(W, H, |x, _| Luma([if x < W / 2 { 255 } else { 0 }]))
}

fn check_kept(store: &mut MemoryStore, frames: &[RgbaImage], loops: usize) {
    for (i, f) in frames.iter().enumerate() {
        let out = store.get(loops, i).unwrap().to_rgba();
        for (x, y, p) in out.enumerate_pixels() {
            if x >= W / 2 {
                assert_eq!(p, f.get_pixel(x, y), "kept pixel ({x},{y}) of frame {i}");
            }
        }
        assert_ne!(
            out.get_pixel(0, 0),
            f.get_pixel(0, 0),
            "masked area is rendered"
        );
    }
}

#[test]
fn masks_from_folder_file_and_alpha_keep_unmasked_pixels_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let frames = clip(3);
    let backend = Recorder::new(Mode::Constant([250, 5, 128, 255]));
    let s = settings(3, "0.7", "[1, 1, 1]");
    let as_frame = |k: usize| Frame::opaque(frames[k].clone());

    // A folder with one mask per frame, named like the frames.
    let masks = dir.path().join("masks");
    std::fs::create_dir(&masks).unwrap();
    for i in 0..3 {
        image::DynamicImage::ImageLuma8(half_mask())
            .save(masks.join(name(i)))
            .unwrap();
    }
    let folder = MaskSource::Folder(masks.clone());
    let from_folder = |i: usize| folder.mask_for(&name(i), &as_frame(i)).map(Some);
    let mut store = run_with(&s, &frames, &backend, &from_folder, &no_prompt);
    check_kept(&mut store, &frames, 3);
    assert!(backend.calls().iter().all(|c| c.masked));

    // One file for all frames.
    let single = MaskSource::Single(masks.join(name(0)));
    let from_file = |i: usize| single.mask_for(&name(i), &as_frame(i)).map(Some);
    let mut store = run_with(&s, &frames, &backend, &from_file, &no_prompt);
    check_kept(&mut store, &frames, 3);

    // The frames' alpha channel: transparent = keep.
    let with_alpha: Vec<Frame> = frames
        .iter()
        .map(|f| {
            let mut img = f.clone();
            for (x, _, p) in img.enumerate_pixels_mut() {
                p[3] = if x < W / 2 { 255 } else { 0 };
            }
            Frame {
                image: img,
                has_alpha: true,
            }
        })
        .collect();
    let alpha_frames: Vec<RgbaImage> = with_alpha.iter().map(|f| f.image.clone()).collect();
    let from_alpha = |i: usize| {
        MaskSource::Alpha
            .mask_for(&name(i), &with_alpha[i])
            .map(Some)
    };
    let mut store = run_with(&s, &alpha_frames, &backend, &from_alpha, &no_prompt);
    check_kept(&mut store, &alpha_frames, 3);

    // Errors name the missing mask and the wrong size.
    let e = MaskSource::Folder(dir.path().into()).mask_for("00001.png", &as_frame(0));
    assert!(matches!(e, Err(Error::BadInput { .. })));
    let small = dir.path().join("small.png");
    image::DynamicImage::ImageLuma8(GrayImage::new(3, 3))
        .save(&small)
        .unwrap();
    let e = MaskSource::Single(small)
        .mask_for("00001.png", &as_frame(0))
        .unwrap_err();
    assert!(e.to_string().contains("3x3"), "{e}");
    assert!(MaskSource::Alpha
        .mask_for("00001.png", &as_frame(0))
        .is_err());
}

#[test]
fn seeds_step_by_batch_size_times_batch_count_per_frame() {
    let frames = clip(3);
    let mut s = settings(2, "0.5", "1");
    s.img2img.batch_size = 2;
    s.img2img.batch_count = 3;
    let backend = Recorder::new(Mode::Passthrough);
    run_with(&s, &frames, &backend, &no_mask, &no_prompt);
    let seeds: Vec<(u64, u64)> = backend
        .calls()
        .iter()
        .map(|c| (c.seed, c.subseed))
        .collect();
    let want: Vec<(u64, u64)> = (0..6).map(|k| (1000 + 6 * k, 7 + 6 * k)).collect();
    assert_eq!(seeds, want);

    // Fixed seed, stepping subseed.
    s.fix_seed = true;
    let backend = Recorder::new(Mode::Passthrough);
    run_with(&s, &frames, &backend, &no_mask, &no_prompt);
    let seeds: Vec<(u64, u64)> = backend
        .calls()
        .iter()
        .map(|c| (c.seed, c.subseed))
        .collect();
    assert_eq!(seeds, (0..6).map(|k| (1000, 7 + 6 * k)).collect::<Vec<_>>());

    // A scheduled batch count changes the step; a seed schedule sets the seed itself.
    s.fix_seed = false;
    s.img2img.batch_size = 1;
    s.batch_count = Some("1 if image_i == 1 else 2".into());
    s.subseed = Some("loop_i * 100 + image_i".into());
    let backend = Recorder::new(Mode::Passthrough);
    run_with(&s, &frames, &backend, &no_mask, &no_prompt);
    let calls = backend.calls();
    let seeds: Vec<u64> = calls.iter().map(|c| c.seed).collect();
    assert_eq!(seeds, vec![1000, 1001, 1003, 1005, 1006, 1008]);
    let subseeds: Vec<u64> = calls.iter().map(|c| c.subseed).collect();
    assert_eq!(subseeds, vec![101, 102, 103, 201, 202, 203]);
    assert_eq!(
        calls.iter().map(|c| c.batch).collect::<Vec<_>>(),
        vec![1, 2, 2, 1, 2, 2]
    );
}

#[test]
fn per_frame_prompts_with_and_without_neg_reach_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00001.txt"),
        "a cat, ink --neg blurry, text\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("00002.txt"), "a dog\n").unwrap();
    let frames = clip(3);
    let mut s = settings(1, "0.5", "1");
    s.img2img.prompt = "global".into();
    s.img2img.negative_prompt = "global neg".into();
    let backend = Recorder::new(Mode::Passthrough);
    let prompts = |i: usize| read_prompt_file(&dir.path().join(format!("{:05}.txt", i + 1)));
    run_with(&s, &frames, &backend, &no_mask, &prompts);
    let got: Vec<(String, String)> = backend
        .calls()
        .into_iter()
        .map(|c| (c.prompt, c.negative))
        .collect();
    let want = [
        ("a cat, ink", "blurry, text"),
        ("a dog", "global neg"),
        ("global", "global neg"),
    ];
    assert_eq!(
        got,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn prompt_schedules_reach_the_backend() {
    let frames = clip(2);
    let mut s = settings(2, "0.5", "1");
    s.prompt = Some("'cat' if loop_i == 1 else 'dog, frame ' + str(image_i)".into());
    let backend = Recorder::new(Mode::Passthrough);
    run_with(&s, &frames, &backend, &no_mask, &no_prompt);
    let prompts: Vec<String> = backend.calls().into_iter().map(|c| c.prompt).collect();
    assert_eq!(prompts, ["cat", "cat", "dog, frame 1", "dog, frame 2"]);
}

#[test]
fn schedules_are_checked_for_every_frame_before_rendering() {
    let mut s = settings(3, "0.5", "1");
    s.denoising = Some("0.5 if loop_i < 3 or image_i < 4 else 1.5".into());
    let e = Plan::new(&s, 5).unwrap_err().to_string();
    assert!(
        e.contains("denoising") && e.contains("loop_i=3, image_i=4"),
        "{e}"
    );
    s.denoising = Some("0.5 + 0 / (image_i - 5)".into());
    let e = Plan::new(&s, 5).unwrap_err().to_string();
    assert!(
        e.contains("division by zero") && e.contains("image_i=5"),
        "{e}"
    );
    s.denoising = None;
    s.temporal_superimpose = "[1, 2]".into();
    let e = Plan::new(&s, 5).unwrap_err().to_string();
    assert!(e.contains("odd number"), "{e}");
    s.temporal_superimpose = "[1, 2, 1] if loop_i == 1 else [1]".into();
    let e = Plan::new(&s, 5).unwrap_err().to_string();
    assert!(e.contains("same length"), "{e}");
    s.temporal_superimpose = "1".into();
    s.superimpose_alpha = "loop_i / 2".into();
    let e = Plan::new(&s, 5).unwrap_err().to_string();
    assert!(
        e.contains("superimpose_alpha") && e.contains("loop_i=3"),
        "{e}"
    );
}

#[test]
fn frames_already_stored_are_not_rendered_again() {
    let frames = clip(3);
    let s = settings(2, "0.5", "[1, 1, 1]");
    let plan = Plan::new(&s, 3).unwrap();
    let mut store = MemoryStore::with_source(frames.iter().map(ImageF32::from_rgba));
    let backend = Recorder::new(Mode::Constant([1, 2, 3, 255]));
    let inputs = FrameInputs {
        mask: &no_mask,
        prompt: &no_prompt,
        name: &name,
    };
    // A full run, for reference.
    let mut full = store.clone();
    loopback::run(&plan, &mut full, &inputs, &backend, &NoProgress).unwrap();
    // Loop 1 done and frame 1 of loop 2 done: only two frames are left.
    for i in 0..3 {
        store.put(1, i, full.get(1, i).unwrap()).unwrap();
    }
    store.put(2, 0, full.get(2, 0).unwrap()).unwrap();
    let resumed = Recorder::new(Mode::Constant([1, 2, 3, 255]));
    loopback::run(&plan, &mut store, &inputs, &resumed, &NoProgress).unwrap();
    let calls = resumed.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].seed,
        backend.calls()[4].seed,
        "seeds are those of the full run"
    );
    for i in 0..3 {
        assert_eq!(store.get(2, i).unwrap(), full.get(2, i).unwrap());
    }
}

#[test]
fn folder_store_round_trips_resumes_and_drops_old_loops() {
    use rotograph::loopback::FolderStore;
    let dir = tempfile::tempdir().unwrap();
    let frames = clip(3);
    let s = settings(3, "0.35", "[1, 2, 1]");
    let plan = Plan::new(&s, 3).unwrap();
    let inputs = FrameInputs {
        mask: &no_mask,
        prompt: &no_prompt,
        name: &name,
    };
    let backend = Recorder::new(Mode::Constant([9, 99, 199, 255]));
    let mut mem = MemoryStore::with_source(frames.iter().map(ImageF32::from_rgba));
    loopback::run(&plan, &mut mem, &inputs, &backend, &NoProgress).unwrap();

    let mut disk = FolderStore::open(dir.path()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        disk.put(0, i, ImageF32::from_rgba(f)).unwrap();
    }
    // Loop 1 and the first frame of loop 2 already rendered: a resumed run.
    for i in 0..3 {
        disk.put(1, i, mem.get(1, i).unwrap()).unwrap();
    }
    disk.put(2, 0, mem.get(2, 0).unwrap()).unwrap();
    let resumed = Recorder::new(Mode::Constant([9, 99, 199, 255]));
    loopback::run(&plan, &mut disk, &inputs, &resumed, &NoProgress).unwrap();
    assert_eq!(resumed.calls().len(), 2 + 3);
    for i in 0..3 {
        assert_eq!(
            disk.get(3, i).unwrap(),
            mem.get(3, i).unwrap(),
            "bit-exact f32"
        );
    }
    assert!(disk.contains(0, 0) && !disk.contains(1, 0) && !disk.contains(2, 0));

    // A damaged file is reported with its path.
    std::fs::write(dir.path().join("loop-03/00002.f32"), b"junk").unwrap();
    let e = disk.get(3, 1).unwrap_err().to_string();
    assert!(e.contains("00002.f32") && e.contains("delete it"), "{e}");
}

/// Records events and asks to stop once `stop_after` frames were rendered.
struct StopAfter {
    stop_after: usize,
    events: Mutex<Vec<rotograph::Event>>,
}

impl rotograph::Progress for StopAfter {
    fn event(&self, e: rotograph::Event) {
        self.events.lock().unwrap().push(e);
    }
    fn should_stop(&self) -> bool {
        let rendered = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, rotograph::Event::Frame { skipped: false, .. }))
            .count();
        rendered >= self.stop_after
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let frames = clip(3);
    let s = settings(2, "0.6", "[1, 2, 1]");
    let plan = Plan::new(&s, 3).unwrap();
    let inputs = FrameInputs {
        mask: &no_mask,
        prompt: &no_prompt,
        name: &name,
    };
    let backend = Recorder::new(Mode::Constant([40, 80, 120, 255]));
    let mut mem = MemoryStore::with_source(frames.iter().map(ImageF32::from_rgba));
    loopback::run(&plan, &mut mem, &inputs, &backend, &NoProgress).unwrap();

    let mut disk = rotograph::loopback::FolderStore::open(dir.path()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        disk.put(0, i, ImageF32::from_rgba(f)).unwrap();
    }
    let stop = StopAfter {
        stop_after: 4,
        events: Mutex::new(Vec::new()),
    };
    let e = loopback::run(&plan, &mut disk, &inputs, &backend, &stop).unwrap_err();
    assert!(matches!(e, Error::Interrupted), "{e}");
    let go_on = StopAfter {
        stop_after: usize::MAX,
        events: Mutex::new(Vec::new()),
    };
    loopback::run(&plan, &mut disk, &inputs, &backend, &go_on).unwrap();
    let events = go_on.events.lock().unwrap().clone();
    let frames_seen: Vec<(u64, String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            rotograph::Event::Frame {
                index,
                name,
                skipped,
                ..
            } => Some((*index, name.clone(), *skipped)),
            _ => None,
        })
        .collect();
    assert_eq!(frames_seen.len(), 6);
    assert_eq!(
        frames_seen.iter().filter(|f| f.2).count(),
        4,
        "{frames_seen:?}"
    );
    assert_eq!(frames_seen[4], (4, "loop-02/00002.png".to_string(), false));
    for i in 0..3 {
        assert_eq!(disk.get(2, i).unwrap(), mem.get(2, i).unwrap());
    }
}

#[test]
fn sources_are_thinned_cut_and_stored_as_loop_0() {
    use rotograph::frames::{write_png, FolderOptions, FolderSource};
    use rotograph::loopback::{store_source, RepeatImage};
    let dir = tempfile::tempdir().unwrap();
    let frames = clip(5);
    for (i, f) in frames.iter().enumerate() {
        write_png(&dir.path().join(name(i)), &Frame::opaque(f.clone())).unwrap();
    }
    let open = || FolderSource::open(dir.path(), &FolderOptions::default()).unwrap();

    let mut store = MemoryStore::default();
    let (kept, alpha) = store_source(&mut open(), &mut store, None, 2).unwrap();
    let names: Vec<&str> = kept.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["00001.png", "00003.png", "00005.png"]);
    assert_eq!(kept.iter().map(|k| k.index).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(!alpha);
    assert_eq!(store.get(0, 1).unwrap().to_rgba(), frames[2]);
    assert!(!store.contains(0, 3));

    let mut store = MemoryStore::default();
    let (kept, _) = store_source(&mut open(), &mut store, Some(2), 1).unwrap();
    assert_eq!(kept.len(), 2);
    assert!(store_source(&mut open(), &mut store, None, 0).is_err());

    // One image repeated max_frames times.
    let mut store = MemoryStore::default();
    let mut rep = RepeatImage::new(Frame::opaque(frames[0].clone()), 4);
    let (kept, _) = store_source(&mut rep, &mut store, Some(3), 1).unwrap();
    assert_eq!(kept.len(), 3);
    for i in 0..3 {
        assert_eq!(store.get(0, i).unwrap().to_rgba(), frames[0]);
    }
}

#[test]
fn video_input_reads_prompts_from_prompt_dir_by_extracted_frame_name() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mkv");
    common::make_clip(&video, 0.5, 8, 32, 24, false);
    let prompts = dir.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    std::fs::write(prompts.join("00002.txt"), "a bird --neg fog").unwrap();
    let mut s = rotograph::pipeline::Settings::default();
    s.extract.fps = None;
    s.img2img.seed = 1;
    s.img2img.subseed = 1;
    s.img2img.prompt = "global".into();
    s.loopback.loop_n = 2;
    s.loopback.read_prompt_from_txt = true;
    let out = dir.path().join("out");
    let backend = Recorder::new(Mode::Passthrough);
    let err = loopback::loopback_with(&video, &out, &s, &backend, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSetting { name, .. } if name == "prompt_dir"),
        "{err}"
    );
    assert!(backend.calls().is_empty());
    s.loopback.prompt_dir = Some(prompts);
    let r = loopback::loopback_with(&video, &out, &s, &backend, &NoProgress).unwrap();
    assert_eq!((r.frames, r.rendered), (4, 8));
    let got: Vec<(String, String)> = backend
        .calls()
        .into_iter()
        .map(|c| (c.prompt, c.negative))
        .collect();
    for (k, (p, n)) in got.iter().enumerate() {
        if k % 4 == 1 {
            assert_eq!((p.as_str(), n.as_str()), ("a bird", "fog"), "call {k}");
        } else {
            assert_eq!(p, "global", "call {k}");
        }
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(names.len(), 4);
    assert!(out.join("00004.png").is_file());
}

#[test]
fn job_masks_match_frames_by_name_and_keep_the_source_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let frames_dir = dir.path().join("frames");
    let masks = dir.path().join("masks");
    std::fs::create_dir_all(&frames_dir).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    let frames = clip(3);
    for (k, f) in frames.iter().enumerate() {
        let name = format!("shot_{}.png", k + 1);
        f.save(frames_dir.join(&name)).unwrap();
        // Frame k keeps its left k+1 columns (a different mask per frame).
        let m = GrayImage::from_fn(W, H, |x, _| Luma([if x <= k as u32 { 0 } else { 255 }]));
        m.save(masks.join(&name)).unwrap();
    }
    let mut s = rotograph::pipeline::Settings::default();
    s.img2img.seed = 1;
    s.img2img.subseed = 1;
    s.loopback.loop_n = 3;
    s.loopback.superimpose_alpha = "0.5".into();
    s.loopback.use_mask = true;
    s.loopback.mask_directory = Some(masks);
    let out = dir.path().join("out");
    let backend = Recorder::new(Mode::Constant([250, 10, 120, 255]));
    let r = loopback::loopback_with(&frames_dir, &out, &s, &backend, &NoProgress).unwrap();
    assert_eq!(r.rendered, 9);
    for (k, src) in frames.iter().enumerate() {
        let got = image::open(out.join(format!("shot_{}.png", k + 1)))
            .unwrap()
            .to_rgba8();
        for (x, y, p) in got.enumerate_pixels() {
            if x <= k as u32 {
                assert_eq!(p, src.get_pixel(x, y), "frame {k} kept pixel ({x},{y})");
            } else {
                assert_ne!(
                    p,
                    src.get_pixel(x, y),
                    "frame {k} repainted pixel ({x},{y})"
                );
            }
        }
    }
}

#[test]
fn a_frame_edited_in_place_is_rendered_again_on_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let frames_dir = dir.path().join("frames");
    std::fs::create_dir_all(&frames_dir).unwrap();
    let frames = clip(3);
    for (k, f) in frames.iter().enumerate() {
        f.save(frames_dir.join(name(k))).unwrap();
    }
    let mut s = rotograph::pipeline::Settings::default();
    s.img2img.seed = 1;
    s.img2img.subseed = 1;
    s.loopback.loop_n = 2;
    s.loopback.superimpose_alpha = "0.5".into();
    let out = dir.path().join("out");
    let backend = Recorder::new(Mode::Passthrough);
    let first = loopback::loopback_with(&frames_dir, &out, &s, &backend, &NoProgress).unwrap();
    assert_eq!(first.rendered, 6);
    // Unchanged: nothing renders.
    let again = loopback::loopback_with(&frames_dir, &out, &s, &backend, &NoProgress).unwrap();
    assert_eq!(again.rendered, 0);
    // The same name, new pixels: the stored loops are stale and the result follows the edit.
    let edited = RgbaImage::from_pixel(W, H, Rgba([7, 70, 170, 255]));
    edited.save(frames_dir.join(name(1))).unwrap();
    let after = loopback::loopback_with(&frames_dir, &out, &s, &backend, &NoProgress).unwrap();
    assert_eq!(after.rendered, 6);
    let got = image::open(out.join(name(1))).unwrap().to_rgba8();
    assert_eq!(got, edited, "passthrough of the edited frame");
}
