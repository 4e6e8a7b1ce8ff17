//! Batch stylize and the whole `roto` job: a frame source through a stylizer into a resumable run
//! folder, optionally streaming the finished frames, in order, into an encoder.
//!
//! Frames flow through three kinds of threads joined by bounded channels: one reads the source,
//! `jobs` workers stylize (or find the frame already done in the run folder), and the calling
//! thread puts results back in order, hands them to the sink and reports progress. A fixed number
//! of tokens bounds the frames in flight, so memory depends on `jobs`, not on the clip's length.

use crate::error::{Error, Result};
use crate::flow::Pyramid;
use crate::frames::{self, FolderOptions, Frame, FrameInfo, FrameSource};
use crate::progress::{Event, Progress};
use crate::run::{self, RunFolder};
use crate::stylize::toon::{Style, Toon};
use crate::stylize::{apply_mask, binarize_mask, Img2ImgParams, Img2ImgRequest, Stylizer};
use crate::temporal::warp_init::{self, ColorMatch};
use crate::temporal::SourceMotion;
use crate::video::{EncodeOptions, Encoder, ExtractOptions};
use crossbeam_channel::bounded;
use image::{GrayImage, RgbaImage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Everything a stylize or roto run depends on: what `rotograph.toml` holds. Names are the CLI
/// flags in snake_case; the command line overrides a `--config` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Input video or frame folder.
    pub input: Option<PathBuf>,
    /// Output folder (stylize) or video (roto).
    pub output: Option<PathBuf>,
    /// Backend: `toon` (default), `none` (frames pass unchanged) or `sd` (Stable Diffusion,
    /// made by the `rotograph-sd` crate).
    pub backend: String,
    /// Model of the `sd` backend: a model folder, a single-file checkpoint, or a hub id
    /// (`owner/name`) found in the local Hugging Face cache.
    pub model: Option<String>,
    /// Autoencoder of the `sd` backend: `model` (its own; the default), `taesd`, or a VAE file
    /// or folder. Its files are part of the model identity.
    pub vae: Option<String>,
    /// What the `sd` backend's UNet predicts: `auto` (the default: decided from the model),
    /// `epsilon` or `v`. The resolved type is part of the model identity.
    pub prediction: Option<String>,
    /// Attention of the `sd` backend computed this many batch x head rows at a time: a smaller
    /// score tensor at large sizes, the same result up to float rounding. Absent = all at once.
    pub attention_slice: Option<usize>,
    /// Content identity of the backend's model, written by the run (see
    /// [`Stylizer::identity`]); part of every frame's key. A value read from a file is replaced.
    pub model_identity: Option<String>,
    /// Preset of the toon backend.
    pub style: Style,
    /// Frames stylized at once on CPU backends (0 = one per core).
    pub jobs: usize,
    /// Folder of masks named like the frames (white = stylize, black = keep the source).
    pub mask_dir: Option<PathBuf>,
    /// Mask binarization threshold in 0..=1.
    pub mask_threshold: f32,
    /// Fit frames of other sizes instead of failing.
    pub allow_mixed_sizes: bool,
    /// How frames are taken from a video input.
    pub extract: ExtractOptions,
    /// The img2img parameters.
    pub img2img: Img2ImgParams,
    /// How `roto` encodes the result.
    pub encode: EncodeSettings,
    /// The `loopback` command's parameters.
    pub loopback: crate::loopback::LoopbackConfig,
    /// Flow-warped init strength in 0..=1 (0 = off): the init image of frame t is the source
    /// blended with the stylized frame t-1 warped along the source flow, where that flow is
    /// reliable. Frames then depend on the previous output and are stylized in order.
    pub warp_init: f32,
    /// Histogram match of each output, in Lab, to the first stylized frame or its source.
    pub color_match: ColorMatch,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            input: None,
            output: None,
            backend: "toon".into(),
            model: None,
            vae: None,
            prediction: None,
            attention_slice: None,
            model_identity: None,
            style: Style::Toon,
            jobs: 0,
            mask_dir: None,
            mask_threshold: 0.5,
            allow_mixed_sizes: false,
            extract: ExtractOptions::default(),
            img2img: Img2ImgParams::default(),
            encode: EncodeSettings::default(),
            loopback: crate::loopback::LoopbackConfig::default(),
            warp_init: 0.0,
            color_match: ColorMatch::None,
        }
    }
}

/// Encoding settings of `roto` (the `[encode]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeSettings {
    /// Output frame rate; `None` = the extraction rate divided by `extract_nth_frame`.
    pub output_frame_rate: Option<f64>,
    /// H.264 / VP9 quality (lower is better).
    pub crf: u32,
    /// Exposure sheet, e.g. `"1-8, 8x4, 9-16"`.
    pub exposure: Option<String>,
    /// Hold every frame this many output frames (`2` = on twos).
    pub on: usize,
    /// Keep the source's audio.
    pub audio: bool,
    /// Keep the stylized frames in the run folder (PNG + manifest), so that a re-run resumes.
    /// `false` streams frames straight into the encoder and writes no run folder: cheaper (no
    /// PNG compression, no hashing), but an interrupted run starts over. Not with `exposure`.
    pub keep_frames: bool,
}

impl Default for EncodeSettings {
    fn default() -> Self {
        EncodeSettings {
            output_frame_rate: None,
            crf: 25,
            exposure: None,
            on: 1,
            audio: true,
            keep_frames: true,
        }
    }
}

impl Settings {
    /// Parses a settings file's text; errors name the file.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::bad_input(path, format!("not a valid rotograph settings file: {e}"))
        })
    }

    /// Reads a settings file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// The settings as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings serialize to TOML")
    }

    /// Checks every value; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        self.img2img.validate()?;
        if self.attention_slice == Some(0) {
            return Err(Error::setting(
                "attention_slice",
                "must be at least 1 (leave it out to compute attention all at once)",
            ));
        }
        if !(0.0..=1.0).contains(&self.mask_threshold) {
            return Err(Error::setting("mask_threshold", "must be within 0..=1"));
        }
        warp_init::check_strength(self.warp_init)?;
        crate::video::check_extract_options(&self.extract)?;
        if self.encode.on == 0 {
            return Err(Error::setting("on", "must be at least 1"));
        }
        if let Some(r) = self.encode.output_frame_rate {
            if !(r > 0.0 && r <= 1000.0) {
                return Err(Error::setting(
                    "output_frame_rate",
                    format!("{r} is not within (0, 1000]"),
                ));
            }
        }
        if let Some(dir) = &self.mask_dir {
            if !dir.is_dir() {
                return Err(Error::bad_input(
                    dir,
                    "the mask folder does not exist; give a folder of masks named like the frames",
                ));
            }
        }
        if self.encode.crf > 63 {
            return Err(Error::setting("crf", "must be within 0..=63"));
        }
        Ok(())
    }

    /// Effective number of parallel frames.
    pub fn effective_jobs(&self) -> usize {
        if self.jobs > 0 {
            self.jobs
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }

    /// Resolves `seed`/`subseed` = -1: reuses the seed an earlier run of the same folder
    /// recorded (so re-running resumes), else picks a random one.
    pub fn resolve_seeds(&mut self, previous: Option<&Settings>) {
        fn pick(value: &mut i64, previous: Option<i64>, salt: u64) {
            if *value >= 0 {
                return;
            }
            *value = match previous.filter(|p| *p >= 0) {
                Some(p) => p,
                None => random_seed(salt),
            };
        }
        pick(&mut self.img2img.seed, previous.map(|p| p.img2img.seed), 1);
        pick(
            &mut self.img2img.subseed,
            previous.map(|p| p.img2img.subseed),
            2,
        );
    }

    /// Hash of what decides the pixels of a frame (not paths, jobs or encoding).
    pub fn render_hash(&self) -> String {
        #[derive(Serialize)]
        struct Key<'a> {
            version: u32,
            backend: &'a str,
            // Absent for model-free backends, so their keys did not change when it came.
            #[serde(skip_serializing_if = "Option::is_none")]
            model: Option<&'a str>,
            style: Style,
            mask_threshold: f32,
            img2img: &'a Img2ImgParams,
            // Absent when off, so that runs without them keep their keys.
            #[serde(skip_serializing_if = "is_zero")]
            warp_init: f32,
            #[serde(skip_serializing_if = "ColorMatch::is_none")]
            color_match: ColorMatch,
        }
        fn is_zero(v: &f32) -> bool {
            *v == 0.0
        }
        let key = Key {
            // Bump when a backend's output changes for the same settings.
            version: 1,
            backend: &self.backend,
            model: self.model_identity.as_deref(),
            style: self.style,
            mask_threshold: self.mask_threshold,
            img2img: &self.img2img,
            warp_init: self.warp_init,
            color_match: self.color_match,
        };
        run::hash_bytes(
            serde_json::to_string(&key)
                .expect("key serializes")
                .as_bytes(),
        )
    }

    /// Options for reading a frame folder.
    pub fn folder_options(&self) -> FolderOptions {
        FolderOptions {
            allow_mixed_sizes: self.allow_mixed_sizes,
            size: self.extract.size,
            fit: self.extract.fit,
            multiple: self.extract.multiple,
            max_frames: self.extract.max_frames,
        }
    }
}

/// A seed in A1111's range (below 2^32) from the clock and process id.
fn random_seed(salt: u64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = blake3::Hasher::new();
    h.update(&now.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&salt.to_le_bytes());
    let b = h.finalize();
    i64::from(u32::from_le_bytes([
        b.as_bytes()[0],
        b.as_bytes()[1],
        b.as_bytes()[2],
        b.as_bytes()[3],
    ]))
}

/// Makes the stylizer a run's settings name; called once per run, after the settings were
/// validated (so a model is loaded once). [`make_stylizer`] knows the built-in backends; crates
/// with more (`rotograph_sd::make_stylizer`) wrap it.
pub type StylizerFactory = dyn Fn(&Settings) -> Result<Box<dyn Stylizer>>;

/// Creates the stylizer the settings name, for the built-in backends (`toon`, `none`).
pub fn make_stylizer(settings: &Settings) -> Result<Box<dyn Stylizer>> {
    match settings.backend.as_str() {
        "toon" => Ok(Box::new(Toon::new(
            settings.style,
            settings.effective_jobs(),
        ))),
        "none" => Ok(Box::new(crate::stylize::Passthrough)),
        "sd" => Err(Error::setting(
            "backend",
            "the sd backend is not part of this build (it lives in the rotograph-sd crate; \
             the rotograph binary has it unless built without its `sd` feature)",
        )),
        other => Err(Error::setting(
            "backend",
            format!("unknown backend `{other}`; available: toon, none"),
        )),
    }
}

/// What a stylize run did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Report {
    /// Frames in the sequence.
    pub frames: usize,
    /// Frames stylized by this run.
    pub rendered: usize,
    /// Frames found finished from an earlier run.
    pub skipped: usize,
    /// Frame images in the run folder that this run did not produce (left by an earlier run of
    /// a longer or other input); `encode` of the folder would include them.
    pub stale: usize,
    /// Output names of this run's frames, in sequence order.
    #[serde(skip)]
    pub names: Vec<String>,
}

/// Receives finished frames in sequence order.
pub type Sink<'a> = dyn FnMut(&FrameInfo, &Frame) -> Result<()> + 'a;

/// Looks for the mask of frame `name` in `dir` (same stem, any image extension).
fn find_mask(dir: &Path, name: &str) -> Result<PathBuf> {
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in ["png", "jpg", "jpeg", "webp", "PNG", "JPG", "JPEG", "WEBP"] {
        let p = dir.join(format!("{stem}.{ext}"));
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::bad_input(
        dir,
        format!(
            "no mask for frame {name}: expected {stem}.png (or .jpg/.webp) in this folder; \
             masks are named like the frames"
        ),
    ))
}

/// The mask of frame `name` in `dir` (named like the frame, any image format), as grey; errors
/// name the file when it is missing, unreadable or not of `size`.
pub fn load_mask(dir: &Path, name: &str, size: (u32, u32)) -> Result<GrayImage> {
    let path = find_mask(dir, name)?;
    let img = image::ImageReader::open(&path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::io(&path, e))?
        .decode()
        .map_err(|e| Error::bad_input(&path, format!("cannot decode mask image ({e})")))?
        .into_luma8();
    if img.dimensions() != size {
        return Err(Error::bad_input(
            &path,
            format!(
                "mask is {}x{} but frame {name} is {}x{}; masks must match the frame size",
                img.width(),
                img.height(),
                size.0,
                size.1
            ),
        ));
    }
    Ok(img)
}

/// Output name of batch image `k` (0-based) of a frame: the frame name for the first, and
/// `batch-<k+1>/<name>` for the others, so each batch position forms its own sequence.
pub fn batch_output_name(name: &str, k: usize) -> String {
    if k == 0 {
        name.to_string()
    } else {
        format!("batch-{}/{name}", k + 1)
    }
}

struct Done {
    info: FrameInfo,
    frame: Option<Frame>,
    skipped: bool,
    /// The frame's key when its PNG is left to the run's writer thread (written after the frame
    /// went to the sink); `None` when it is already committed or there is no run folder.
    deferred: Option<String>,
}

/// A frame a worker finished, or (when frames depend on the previous output) prepared for the
/// in-order thread to stylize.
enum Ready {
    Done(Done),
    Prepared(Prepared),
}

enum Msg {
    Ready(Box<Ready>),
    Failed(Error),
    Dropped,
}

/// A source frame with what its stylization needs besides the previous output.
struct Prepared {
    info: FrameInfo,
    frame: Frame,
    /// The mask, binarized at the threshold.
    mask: Option<GrayImage>,
    /// The frame's own key (settings, pixels, mask); `None` without a run folder.
    key: Option<String>,
    /// The previous source frame (warp init only; `None` for the first frame).
    prev_source: Option<Arc<RgbaImage>>,
    /// The source motion from this frame to the previous one, computed ahead by a worker.
    motion: Option<SourceMotion>,
}

/// An output frame kept for the next frame: in memory, or in the run folder (resumed).
#[derive(Clone)]
enum Output {
    Image(RgbaImage),
    File(PathBuf),
}

impl Output {
    fn image(&mut self) -> Result<&RgbaImage> {
        if let Output::File(path) = self {
            *self = Output::Image(frames::read_frame(path)?.image);
        }
        match self {
            Output::Image(img) => Ok(img),
            Output::File(_) => unreachable!("loaded above"),
        }
    }
}

/// The state of a run whose frames depend on earlier outputs (warp init, colour match to the
/// first frame), advanced frame by frame in sequence order. Each frame's key chains the
/// previous frame's key, so a changed earlier frame re-renders everything after it.
struct Chain<'a> {
    run: Option<&'a RunFolder>,
    settings: &'a Settings,
    stylizer: &'a dyn Stylizer,
    want_frames: bool,
    /// Leave each frame's PNG to the writer thread ([`Done::deferred`]).
    defer: bool,
    prev_key: String,
    prev: Option<Output>,
    first: Option<Output>,
    started: bool,
}

impl Chain<'_> {
    fn step(&mut self, mut p: Prepared) -> Result<Done> {
        let key = p.key.as_deref().map(|k| {
            let mut h = blake3::Hasher::new();
            h.update(self.prev_key.as_bytes());
            h.update(b"/");
            h.update(k.as_bytes());
            h.finalize().to_hex().to_string()
        });
        self.prev_key = key.clone().unwrap_or_default();
        let is_first = !self.started;
        if let Some(done) = resumed(self.run, &p.info, key.as_deref(), self.want_frames)? {
            let path = self.run.map(|r| r.dir().join(&p.info.name));
            let out = match (&done.frame, path) {
                (Some(f), _) => Output::Image(f.image.clone()),
                (None, Some(path)) => Output::File(path),
                (None, None) => unreachable!("a resumed frame has a run folder"),
            };
            self.keep(out, is_first);
            frames::recycle(p.frame);
            return Ok(done);
        }
        let init = match (self.settings.warp_init > 0.0, self.prev.as_mut()) {
            (true, Some(prev)) => {
                let motion = match (p.motion.take(), &p.prev_source) {
                    (Some(m), _) => m,
                    (None, Some(before)) => motion_between(before, &p.frame.image)?,
                    (None, None) => unreachable!("frames after the first carry their previous"),
                };
                Some(
                    warp_init::blend_init(
                        &p.frame.image,
                        prev.image()?,
                        &motion,
                        self.settings.warp_init,
                    )
                    .map_err(|e| Error::bad_input(&p.info.name, e.to_string()))?,
                )
            }
            _ => None,
        };
        let first = match (self.settings.color_match, self.first.as_mut()) {
            (ColorMatch::First, Some(f)) => Some(f.image()?),
            _ => None,
        };
        let mut done = render_frame(
            Prepared {
                key: key.clone(),
                ..p
            },
            init.as_ref(),
            first,
            self.run,
            self.settings,
            self.stylizer,
            true,
            self.defer,
        )?;
        let image = done.frame.as_ref().map(|f| f.image.clone());
        if !self.want_frames {
            done.frame = None;
        }
        if let Some(img) = image {
            self.keep(Output::Image(img), is_first);
        }
        Ok(done)
    }

    /// Keeps a frame's output as the previous one (and as the first when it is).
    fn keep(&mut self, out: Output, is_first: bool) {
        if is_first && self.settings.color_match == ColorMatch::First {
            self.first = Some(out.clone());
        }
        self.started = true;
        if self.settings.warp_init > 0.0 {
            self.prev = Some(out);
        }
    }
}

/// The source motion from frame t (`cur`) to frame t-1 (`before`), with warp init's flow.
fn motion_between(before: &RgbaImage, cur: &RgbaImage) -> Result<SourceMotion> {
    let params = warp_init::flow_params();
    let (a, b) = Pyramid::pair(before, cur, &params);
    SourceMotion::between(&a, &b, &params)
}

/// Stylizes every frame of `source` into the run folder `run`. Frames already finished with the
/// same input and settings are skipped; `sink`, when given, receives every frame (new or
/// resumed) in order. Stops with [`Error::Interrupted`] after the frames in flight when
/// `progress.should_stop()`.
pub fn stylize_source(
    source: Box<dyn FrameSource>,
    run: &RunFolder,
    settings: &Settings,
    stylizer: &dyn Stylizer,
    progress: &dyn Progress,
    sink: Option<&mut Sink<'_>>,
) -> Result<Report> {
    stylize_frames(source, Some(run), settings, stylizer, progress, sink)
}

/// [`stylize_source`], with the run folder optional: without one, every frame is stylized and
/// handed to `sink` only (nothing is hashed, compressed or written).
fn stylize_frames(
    mut source: Box<dyn FrameSource>,
    run: Option<&RunFolder>,
    settings: &Settings,
    stylizer: &dyn Stylizer,
    progress: &dyn Progress,
    mut sink: Option<&mut Sink<'_>>,
) -> Result<Report> {
    let settings_hash = settings.render_hash();
    let jobs = settings
        .effective_jobs()
        .min(stylizer.max_parallel_frames())
        .max(1);
    let want_frames = sink.is_some();
    let mut ignored: Vec<&str> = settings
        .img2img
        .changed_fields()
        .into_iter()
        .filter(|f| stylizer.ignored_fields().contains(f))
        .collect();
    if stylizer.identity().is_none() {
        for (name, given) in [
            ("model", settings.model.is_some()),
            ("vae", settings.vae.is_some()),
            ("prediction", settings.prediction.is_some()),
            ("attention_slice", settings.attention_slice.is_some()),
        ] {
            if given {
                ignored.push(name);
            }
        }
    }
    if !ignored.is_empty() {
        progress.event(Event::Warning {
            message: format!(
                "backend `{}` ignores {}; those settings have no effect",
                stylizer.name(),
                ignored.join(", ")
            ),
        });
    }
    progress.event(Event::Start {
        stage: "stylize".into(),
        total: source.len_hint().map(|n| n as u64),
    });

    let abort = AtomicBool::new(false);
    // Sequential mode: set once the emitter renders a frame (no longer a resumed prefix).
    let rendering = AtomicBool::new(false);
    let interrupted = AtomicBool::new(false);
    // Tokens bound the frames between the reader and the in-order emitter.
    let in_flight = 2 * jobs + 2;
    let (tok_tx, tok_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        tok_tx.send(()).expect("token channel has room");
    }
    // Warp init and colour match to the first frame make each frame depend on earlier outputs:
    // workers then only prepare frames (masks, keys, the source flow, ahead and in parallel)
    // and this thread stylizes them in order.
    let sequential = settings.warp_init > 0.0 || settings.color_match == ColorMatch::First;
    let warp = settings.warp_init > 0.0;
    // With a sink (roto: frames go on to the video encoder), kept frames are compressed and
    // written by one writer thread at a lower CPU priority, after the frame went to the sink:
    // the encoder is fed first, and the PNGs use the CPU time it leaves idle.
    let defer = run.is_some() && want_frames;
    let mut chain = Chain {
        run,
        settings,
        stylizer,
        want_frames,
        defer,
        prev_key: String::new(),
        prev: None,
        first: None,
        started: false,
    };
    type Work = (FrameInfo, Frame, Option<Arc<RgbaImage>>);
    let (work_tx, work_rx) = bounded::<Work>(jobs);
    let (done_tx, done_rx) = bounded::<(usize, Msg)>(in_flight);
    let mut report = Report::default();
    let mut first_error: Option<Error> = None;
    let (write_tx, write_rx) = bounded::<(String, String, Frame)>(jobs + 1);
    let write_error: Mutex<Option<Error>> = Mutex::new(None);

    std::thread::scope(|s| {
        // Writer: compresses and commits deferred frames in order.
        let writer = match (defer, run) {
            (true, Some(run)) => {
                let (abort, write_error) = (&abort, &write_error);
                Some(s.spawn(move || {
                    lower_thread_priority();
                    for (name, key, frame) in write_rx.iter() {
                        let failed = write_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .is_some();
                        if !failed {
                            let written = frames::encode_png(&frame)
                                .and_then(|bytes| run.commit(&name, &key, &bytes));
                            if let Err(e) = written {
                                abort.store(true, Ordering::SeqCst);
                                *write_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                            }
                        }
                        frames::recycle(frame);
                    }
                }))
            }
            _ => {
                drop(write_rx);
                None
            }
        };
        // Reader.
        {
            let done_tx = done_tx.clone();
            let (abort, interrupted) = (&abort, &interrupted);
            s.spawn(move || {
                let mut index = 0usize;
                let mut last: Option<Arc<RgbaImage>> = None;
                loop {
                    if tok_rx.recv().is_err() {
                        break;
                    }
                    if abort.load(Ordering::SeqCst) {
                        break;
                    }
                    if progress.should_stop() {
                        interrupted.store(true, Ordering::SeqCst);
                        break;
                    }
                    match source.next_frame() {
                        Ok(Some((info, frame))) => {
                            index = info.index + 1;
                            let before = if warp {
                                last.replace(Arc::new(frame.image.clone()))
                            } else {
                                None
                            };
                            if work_tx.send((info, frame, before)).is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = done_tx.send((index, Msg::Failed(e)));
                            break;
                        }
                    }
                }
            });
        }
        // Workers.
        for _ in 0..jobs {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let (abort, interrupted, settings_hash) = (&abort, &interrupted, &settings_hash);
            let rendering = &rendering;
            s.spawn(move || {
                for (info, frame, before) in work_rx.iter() {
                    let index = info.index;
                    if abort.load(Ordering::SeqCst) {
                        let _ = done_tx.send((index, Msg::Dropped));
                        continue;
                    }
                    if progress.should_stop() {
                        interrupted.store(true, Ordering::SeqCst);
                        let _ = done_tx.send((index, Msg::Dropped));
                        continue;
                    }
                    let ready = if sequential {
                        let resuming = !rendering.load(Ordering::SeqCst);
                        prepare_ahead(info, frame, before, run, settings, settings_hash, resuming)
                            .map(Ready::Prepared)
                    } else {
                        process_frame(
                            info,
                            frame,
                            run,
                            settings,
                            settings_hash,
                            stylizer,
                            want_frames,
                            defer,
                        )
                        .map(Ready::Done)
                    };
                    let msg = match ready {
                        Ok(r) => Msg::Ready(Box::new(r)),
                        Err(e) => Msg::Failed(e),
                    };
                    if done_tx.send((index, msg)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(work_rx);
        drop(done_tx);

        // In-order emitter (this thread).
        let mut pending: BTreeMap<usize, Ready> = BTreeMap::new();
        let mut next = 0usize;
        for (index, msg) in done_rx.iter() {
            match msg {
                Msg::Ready(d) => {
                    pending.insert(index, *d);
                }
                Msg::Failed(e) => {
                    abort.store(true, Ordering::SeqCst);
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                    let _ = tok_tx.send(());
                }
                Msg::Dropped => {
                    let _ = tok_tx.send(());
                }
            }
            while let Some(ready) = pending.remove(&next) {
                next += 1;
                let _ = tok_tx.send(());
                let d = match ready {
                    Ready::Done(d) => d,
                    Ready::Prepared(p) => {
                        if first_error.is_some() || interrupted.load(Ordering::SeqCst) {
                            continue;
                        }
                        if progress.should_stop() {
                            interrupted.store(true, Ordering::SeqCst);
                            abort.store(true, Ordering::SeqCst);
                            continue;
                        }
                        match chain.step(p) {
                            Ok(d) => {
                                if !d.skipped {
                                    rendering.store(true, Ordering::SeqCst);
                                }
                                d
                            }
                            Err(e) => {
                                abort.store(true, Ordering::SeqCst);
                                first_error = Some(e);
                                continue;
                            }
                        }
                    }
                };
                report.names.push(d.info.name.clone());
                if d.skipped {
                    report.skipped += 1;
                } else {
                    report.rendered += 1;
                }
                let sent = match (first_error.is_none(), sink.as_mut(), &d.frame) {
                    (true, Some(sink), Some(frame)) => sink(&d.info, frame),
                    _ => Ok(()),
                };
                // Stylized frames are kept even after an error elsewhere.
                let kept = keep_deferred(&write_tx, d.info.name.clone(), d.deferred, d.frame);
                if first_error.is_some() {
                    continue;
                }
                if let Err(e) = sent.and(kept) {
                    abort.store(true, Ordering::SeqCst);
                    first_error = Some(e);
                    continue;
                }
                progress.event(Event::Frame {
                    stage: "stylize".into(),
                    index: d.info.index as u64,
                    name: d.info.name.clone(),
                    skipped: d.skipped,
                });
            }
        }
        // Frames finished after a gap (an interruption or error) are on disk but not emitted.
        let finished = pending.values().filter_map(|r| match r {
            Ready::Done(d) => Some(d.skipped),
            Ready::Prepared(_) => None,
        });
        report.rendered += finished.clone().filter(|skipped| !skipped).count();
        report.skipped += finished.filter(|skipped| *skipped).count();
        for ready in std::mem::take(&mut pending).into_values() {
            if let Ready::Done(d) = ready {
                let _ = keep_deferred(&write_tx, d.info.name, d.deferred, d.frame);
            }
        }
        drop(tok_tx);
        drop(write_tx);
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    });
    if let Some(e) = write_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        first_error.get_or_insert(e);
    }

    report.frames = report.rendered + report.skipped;
    if let Some(e) = first_error {
        return Err(e);
    }
    if interrupted.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    let Some(run) = run else {
        progress.event(Event::Finish {
            stage: "stylize".into(),
        });
        return Ok(report);
    };
    let produced: std::collections::HashSet<&str> =
        report.names.iter().map(String::as_str).collect();
    report.stale = frames::list_frames(run.dir())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
        .filter(|n| !produced.contains(n))
        .count();
    if report.stale > 0 {
        progress.event(Event::Warning {
            message: format!(
                "{} holds {} frame image(s) this run did not produce (from an earlier run of                  other input?); `rotograph encode` of that folder would include them: remove                  them or use a fresh output folder",
                run.dir().display(),
                report.stale
            ),
        });
    }
    progress.event(Event::Finish {
        stage: "stylize".into(),
    });
    Ok(report)
}

/// Hands a frame whose PNG was deferred to the writer thread (blocking while it is behind);
/// recycles any other frame.
fn keep_deferred(
    writer: &crossbeam_channel::Sender<(String, String, Frame)>,
    name: String,
    deferred: Option<String>,
    frame: Option<Frame>,
) -> Result<()> {
    match (deferred, frame) {
        (Some(key), Some(frame)) => writer.send((name, key, frame)).map_err(|e| {
            let name = e.into_inner().0;
            Error::io(name, std::io::Error::other("the frame writer stopped"))
        }),
        (_, Some(frame)) => {
            frames::recycle(frame);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Lowers the calling thread's CPU priority (Linux: nice +10 for this thread only), so that
/// background work yields to the stylizer and the video encoder; elsewhere a no-op.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
        let tid = unsafe { libc::gettid() };
        // A failure leaves the thread at normal priority, which is only slower elsewhere.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) };
    }
}

#[allow(clippy::too_many_arguments)]
fn process_frame(
    info: FrameInfo,
    frame: Frame,
    run: Option<&RunFolder>,
    settings: &Settings,
    settings_hash: &str,
    stylizer: &dyn Stylizer,
    want_frame: bool,
    defer: bool,
) -> Result<Done> {
    let p = prepare_frame(info, frame, run, settings_hash, settings)?;
    if let Some(done) = resumed(run, &p.info, p.key.as_deref(), want_frame)? {
        frames::recycle(p.frame);
        return Ok(done);
    }
    render_frame(p, None, None, run, settings, stylizer, want_frame, defer)
}

/// Loads a frame's mask and computes its key.
fn prepare_frame(
    info: FrameInfo,
    frame: Frame,
    run: Option<&RunFolder>,
    settings_hash: &str,
    settings: &Settings,
) -> Result<Prepared> {
    let mask = match &settings.mask_dir {
        Some(dir) => Some(load_mask(dir, &info.name, frame.size())?),
        None => None,
    };
    // Without a run folder there is nothing to resume from or record into: no key.
    let key = run.map(|_| run::frame_key(settings_hash, &frame.image, mask.as_ref()));
    // The backend sees the mask as the pixel keeping below will apply it.
    let mask = mask.map(|m| binarize_mask(&m, settings.mask_threshold));
    Ok(Prepared {
        info,
        frame,
        mask,
        key,
        prev_source: None,
        motion: None,
    })
}

/// [`prepare_frame`] for a run whose frames depend on earlier outputs: also computes the source
/// motion to the previous frame (warp init), unless the run is `resuming` (only skipped frames
/// so far) and the frame's output is in the run folder: then it is most likely resumed too, and
/// [`Chain::step`] computes the motion if not.
fn prepare_ahead(
    info: FrameInfo,
    frame: Frame,
    before: Option<Arc<RgbaImage>>,
    run: Option<&RunFolder>,
    settings: &Settings,
    settings_hash: &str,
    resuming: bool,
) -> Result<Prepared> {
    let mut p = prepare_frame(info, frame, run, settings_hash, settings)?;
    let likely_done = resuming && run.is_some_and(|r| r.dir().join(&p.info.name).is_file());
    if let (Some(before), false) = (&before, likely_done) {
        p.motion = Some(motion_between(before, &p.frame.image)?);
    }
    p.prev_source = before;
    Ok(p)
}

/// The finished frame when the run folder holds it with `key` (read back when `want_frame`).
fn resumed(
    run: Option<&RunFolder>,
    info: &FrameInfo,
    key: Option<&str>,
    want_frame: bool,
) -> Result<Option<Done>> {
    let (Some(run), Some(key)) = (run, key) else {
        return Ok(None);
    };
    if !run.is_done(&info.name, key) {
        return Ok(None);
    }
    let frame = if want_frame {
        Some(frames::read_frame(&run.dir().join(&info.name))?)
    } else {
        None
    };
    Ok(Some(Done {
        info: info.clone(),
        frame,
        skipped: true,
        deferred: None,
    }))
}

/// Stylizes a prepared frame from `init` (the source frame when `None`), colour-matches it
/// (`first`: the first output, for [`ColorMatch::First`]), keeps the source where masked, and
/// commits it to the run folder under the prepared key.
#[allow(clippy::too_many_arguments)]
fn render_frame(
    p: Prepared,
    init: Option<&RgbaImage>,
    first: Option<&RgbaImage>,
    run: Option<&RunFolder>,
    settings: &Settings,
    stylizer: &dyn Stylizer,
    want_frame: bool,
    defer: bool,
) -> Result<Done> {
    let Prepared {
        info,
        frame,
        mask,
        key,
        ..
    } = p;
    let request = Img2ImgRequest {
        init: init.unwrap_or(&frame.image),
        mask: mask.as_ref(),
        controls: Vec::new(),
        params: &settings.img2img,
        seed: settings.img2img.seed.max(0) as u64,
        subseed: settings.img2img.subseed.max(0) as u64,
    };
    let images = stylizer.stylize(&request).map_err(|e| match e {
        Error::Backend { .. } => e,
        other => Error::Backend {
            backend: stylizer.name().into(),
            frame: info.name.clone(),
            message: other.to_string(),
        },
    })?;
    if images.is_empty() {
        return Err(Error::Backend {
            backend: stylizer.name().into(),
            frame: info.name.clone(),
            message: "returned no image".into(),
        });
    }
    let mut first_out = None;
    let mut deferred = None;
    // Extra batch images first, the frame's own name last: a recorded main name implies the rest.
    for (k, mut img) in images.into_iter().enumerate().rev() {
        if img.dimensions() != frame.image.dimensions() {
            img = image::imageops::resize(
                &img,
                frame.image.width(),
                frame.image.height(),
                image::imageops::FilterType::Lanczos3,
            );
        }
        if let Some(matched) =
            warp_init::apply_color_match(settings.color_match, &img, first, &frame.image)
        {
            img = matched;
        }
        if let Some(m) = &mask {
            apply_mask(&mut img, &frame.image, m, settings.mask_threshold);
        }
        let out = Frame {
            image: img,
            has_alpha: frame.has_alpha,
        };
        if let (Some(run), Some(key)) = (run, key.as_deref()) {
            if k == 0 && defer {
                deferred = Some(key.to_string());
            } else {
                let bytes = frames::encode_png(&out)?;
                run.commit(&batch_output_name(&info.name, k), key, &bytes)?;
            }
        } else if k > 0 {
            // Without a run folder only the frame's own image goes on (to the encoder).
            continue;
        }
        if k == 0 {
            first_out = Some(out);
        }
    }
    frames::recycle(frame);
    Ok(Done {
        info,
        frame: if want_frame || deferred.is_some() {
            first_out
        } else {
            None
        },
        skipped: false,
        deferred,
    })
}

/// Opens (or resumes) the run folder `dir` for `settings`: reuses seeds recorded there when the
/// settings ask for random ones, writes the effective settings, and returns the folder.
/// Seeds are resolved only for backends that use them, so that a seedless backend's settings stay
/// as the user wrote them.
pub fn open_run(dir: &Path, settings: &mut Settings, stylizer: &dyn Stylizer) -> Result<RunFolder> {
    if !stylizer.ignored_fields().contains(&"seed") {
        let previous = RunFolder::previous_settings(dir)
            .and_then(|t| Settings::from_toml(&t, &dir.join(run::SETTINGS_NAME)).ok());
        settings.resolve_seeds(previous.as_ref());
    }
    settings.validate()?;
    RunFolder::open(dir, &settings.to_toml())
}

/// The run's settings with its input and output recorded, validated, and its stylizer (whose
/// model identity the settings then record).
fn prepare(
    input: &Path,
    output: &Path,
    settings: &Settings,
    make: &StylizerFactory,
) -> Result<(Settings, Box<dyn Stylizer>)> {
    let mut settings = settings.clone();
    settings.input = Some(input.to_path_buf());
    settings.output = Some(output.to_path_buf());
    settings.validate()?;
    let stylizer = make(&settings)?;
    settings.model_identity = stylizer.identity();
    Ok((settings, stylizer))
}

/// `rotograph stylize`: stylizes a frame folder or a video (decoded on the fly, nothing left
/// behind) into the run folder `output`, resuming an earlier run there. Built-in backends only;
/// see [`stylize_with`].
pub fn stylize(
    input: &Path,
    output: &Path,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<Report> {
    stylize_with(input, output, settings, &make_stylizer, progress)
}

/// [`stylize`] with the backends `make` knows.
pub fn stylize_with(
    input: &Path,
    output: &Path,
    settings: &Settings,
    make: &StylizerFactory,
    progress: &dyn Progress,
) -> Result<Report> {
    let (mut settings, stylizer) = prepare(input, output, settings, make)?;
    let source = frames::open_source(input, &settings.folder_options(), &settings.extract)?;
    check_not_inside(input, output)?;
    let run = open_run(output, &mut settings, stylizer.as_ref())?;
    stylize_source(source, &run, &settings, stylizer.as_ref(), progress, None)
}

fn check_not_inside(input: &Path, output: &Path) -> Result<()> {
    if input.is_dir() {
        let a = input.canonicalize().map_err(|e| Error::io(input, e))?;
        if let Ok(b) = output.canonicalize() {
            if a == b {
                return Err(Error::bad_input(
                    output,
                    "the output folder is the input folder; choose another -o",
                ));
            }
        }
    }
    Ok(())
}

/// Default run folder of `roto` for an output video: `clip.mp4` → `clip.rotograph/` beside it.
pub fn default_work_dir(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    output.with_file_name(format!("{stem}.rotograph"))
}

/// What `roto` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RotoReport {
    /// The stylize stage.
    pub stylize: Report,
    /// The run folder.
    pub work_dir: PathBuf,
    /// Whether the stylized frames were kept in `work_dir` (see [`EncodeSettings::keep_frames`]).
    pub kept_frames: bool,
    /// Output frame rate used.
    pub fps: f64,
}

/// `rotograph roto`: extract, stylize and encode with the source audio in one pass. Frames stream
/// from the decoder through the stylizer into the encoder; the stylized frames stay in `work_dir`
/// so a re-run resumes. Built-in backends only; see [`roto_with`].
pub fn roto(
    input: &Path,
    output: &Path,
    work_dir: &Path,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<RotoReport> {
    roto_with(input, output, work_dir, settings, &make_stylizer, progress)
}

/// [`roto`] with the backends `make` knows.
pub fn roto_with(
    input: &Path,
    output: &Path,
    work_dir: &Path,
    settings: &Settings,
    make: &StylizerFactory,
    progress: &dyn Progress,
) -> Result<RotoReport> {
    crate::video::Container::from_path(output)?;
    let (mut settings, stylizer) = prepare(input, output, settings, make)?;
    let exposure = settings
        .encode
        .exposure
        .as_deref()
        .map(frames::Exposure::parse)
        .transpose()?;
    let is_video = input.is_file();
    let source = frames::open_source(input, &settings.folder_options(), &settings.extract)?;
    let fps = match (settings.encode.output_frame_rate, settings.extract.fps) {
        (Some(r), _) => r,
        (None, Some(f)) if is_video => f / settings.extract.extract_nth_frame as f64,
        (None, None) if is_video => crate::video::probe(input)?.fps,
        _ => 12.0,
    };
    let mut enc_opts = EncodeOptions {
        fps,
        crf: settings.encode.crf,
        on: settings.encode.on,
        ..EncodeOptions::default()
    };
    if is_video && settings.encode.audio {
        enc_opts.audio_from = Some(input.to_path_buf());
        enc_opts.audio_start = settings.extract.start;
        enc_opts.audio_duration = settings.extract.duration;
    }
    if !settings.encode.keep_frames {
        if exposure.is_some() {
            return Err(Error::setting(
                "keep_frames",
                "an exposure sheet needs the kept frames (it picks frames out of order); drop \
                 --no-keep-frames or the exposure sheet",
            ));
        }
        if !stylizer.ignored_fields().contains(&"seed") {
            settings.resolve_seeds(None);
        }
        settings.validate()?;
    }
    let run = if settings.encode.keep_frames {
        Some(open_run(work_dir, &mut settings, stylizer.as_ref())?)
    } else {
        None
    };

    let report = if let (Some(exposure), Some(run)) = (exposure, run.as_ref()) {
        // An exposure sheet needs random access: stylize first, then encode the folder.
        let report = stylize_source(source, run, &settings, stylizer.as_ref(), progress, None)?;
        enc_opts.exposure = Some(exposure);
        // This run's frames only: the folder may hold frames of an earlier, longer run.
        let files: Vec<PathBuf> = report.names.iter().map(|n| work_dir.join(n)).collect();
        crate::video::encode_files(&files, output, &enc_opts, progress)?;
        report
    } else {
        // A video tells its frames' size and alpha up front: ffmpeg's encoder then starts
        // while the first frame is decoded and stylized, not after. Output frames keep their
        // input's size and alpha (`render_frame`); a wrong guess is replaced at the first frame.
        let mut encoder: Option<Encoder> = match source.has_alpha() {
            Some(alpha) => {
                let (w, h) = source.frame_size();
                Some(Encoder::start(output, &enc_opts, w, h, alpha)?)
            }
            None => None,
        };
        let mut pushed = 0usize;
        let mut sink = |_: &FrameInfo, frame: &Frame| -> Result<()> {
            if pushed == 0 && !encoder.as_ref().is_some_and(|e| e.fits(frame)) {
                encoder = None;
                let (w, h) = frame.size();
                encoder = Some(Encoder::start(output, &enc_opts, w, h, frame.has_alpha)?);
            }
            pushed += 1;
            encoder.as_mut().expect("started above").push(frame)
        };
        let report = stylize_frames(
            source,
            run.as_ref(),
            &settings,
            stylizer.as_ref(),
            progress,
            Some(&mut sink),
        )?;
        match encoder.filter(|_| pushed > 0) {
            Some(enc) => {
                progress.event(Event::Start {
                    stage: "encode".into(),
                    total: None,
                });
                enc.finish()?;
                progress.event(Event::Finish {
                    stage: "encode".into(),
                });
            }
            None => {
                return Err(Error::bad_input(
                    input,
                    "no frames were read; check --start/--duration/--max-frames",
                ))
            }
        }
        report
    };
    Ok(RotoReport {
        stylize: report,
        work_dir: work_dir.to_path_buf(),
        kept_frames: settings.encode.keep_frames,
        fps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use image::{Rgba, RgbaImage};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    struct MemSource {
        frames: Vec<RgbaImage>,
        next: usize,
        fail_at: Option<usize>,
    }

    impl FrameSource for MemSource {
        fn len_hint(&self) -> Option<usize> {
            Some(self.frames.len())
        }
        fn frame_size(&self) -> (u32, u32) {
            self.frames[0].dimensions()
        }
        fn next_frame(&mut self) -> Result<Option<(FrameInfo, Frame)>> {
            if Some(self.next) == self.fail_at {
                return Err(Error::bad_input("clip", "broken frame"));
            }
            let Some(img) = self.frames.get(self.next) else {
                return Ok(None);
            };
            let info = FrameInfo {
                index: self.next,
                name: frames::format_pattern(frames::DEFAULT_PATTERN, self.next + 1)?,
                time: None,
            };
            self.next += 1;
            Ok(Some((info, Frame::opaque(img.clone()))))
        }
    }

    /// Inverts colours scaled by denoise; counts calls; sleeps to shuffle completion order.
    struct Invert {
        calls: AtomicUsize,
    }

    impl Invert {
        fn new() -> Self {
            Invert {
                calls: AtomicUsize::new(0),
            }
        }
    }

    impl Stylizer for Invert {
        fn name(&self) -> &str {
            "invert"
        }
        fn max_parallel_frames(&self) -> usize {
            4
        }
        fn stylize(&self, r: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis((7 * n as u64) % 5));
            let mut out = r.init.clone();
            let d = r.params.denoise;
            for p in out.pixels_mut() {
                for c in 0..3 {
                    p[c] = (p[c] as f32 * (1.0 - d) + (255 - p[c]) as f32 * d).round() as u8;
                }
            }
            Ok(vec![out])
        }
    }

    fn clip(n: usize) -> Vec<RgbaImage> {
        (0..n)
            .map(|i| RgbaImage::from_pixel(8, 6, Rgba([i as u8 * 10, 50, 100, 255])))
            .collect()
    }

    fn settings(jobs: usize) -> Settings {
        Settings {
            jobs,
            img2img: Img2ImgParams {
                seed: 7,
                subseed: 0,
                denoise: 1.0,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn source(n: usize) -> Box<dyn FrameSource> {
        Box::new(MemSource {
            frames: clip(n),
            next: 0,
            fail_at: None,
        })
    }

    #[test]
    fn renders_in_order_then_resumes_and_rerenders_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(3);
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        let order = Mutex::new(Vec::new());
        let mut sink = |i: &FrameInfo, f: &Frame| {
            order
                .lock()
                .unwrap()
                .push((i.index, f.image.get_pixel(0, 0)[0]));
            Ok(())
        };
        let r = stylize_source(source(9), &run, &s, &st, &NoProgress, Some(&mut sink)).unwrap();
        assert_eq!((r.frames, r.rendered, r.skipped), (9, 9, 0));
        let order = order.into_inner().unwrap();
        assert_eq!(
            order.iter().map(|o| o.0).collect::<Vec<_>>(),
            (0..9).collect::<Vec<_>>()
        );
        assert_eq!(order[3].1, 255 - 30);
        let f = frames::read_frame(&dir.path().join("00004.png")).unwrap();
        assert_eq!(f.image.get_pixel(0, 0)[0], 255 - 30);

        // Unchanged: nothing rendered.
        let r = stylize_source(source(9), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!((r.rendered, r.skipped), (0, 9));
        assert_eq!(st.calls.load(Ordering::SeqCst), 9);

        // Changed denoise: everything re-rendered.
        s.img2img.denoise = 0.5;
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        let r = stylize_source(source(9), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!((r.rendered, r.skipped), (9, 0));
    }

    #[test]
    fn a_kept_frame_that_cannot_be_written_fails_the_run_with_its_name() {
        // With a sink (as in roto) the PNGs are written by the writer thread: its errors must
        // still end the run, naming the file, with the frames before it on disk.
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(2);
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        std::fs::create_dir(dir.path().join("00003.png")).unwrap();
        let mut sent = 0;
        let mut sink = |_: &FrameInfo, _: &Frame| {
            sent += 1;
            Ok(())
        };
        let err =
            stylize_source(source(9), &run, &s, &st, &NoProgress, Some(&mut sink)).unwrap_err();
        assert!(err.to_string().contains("00003.png"), "{err}");
        for name in ["00001.png", "00002.png"] {
            assert!(frames::read_frame(&dir.path().join(name)).is_ok(), "{name}");
        }
        assert!(
            sent >= 2,
            "frames went to the sink before the failure ({sent})"
        );
        // Without a sink the worker writes the frame itself: same error.
        let err = stylize_source(source(9), &run, &s, &st, &NoProgress, None).unwrap_err();
        assert!(err.to_string().contains("00003.png"), "{err}");
    }

    #[test]
    fn frames_left_by_a_longer_earlier_run_are_counted_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(2);
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        let r = stylize_source(source(6), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!(r.stale, 0);
        assert_eq!(r.names.len(), 6);
        let r = stylize_source(source(4), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!((r.frames, r.stale), (4, 2));
        assert_eq!(
            r.names,
            ["00001.png", "00002.png", "00003.png", "00004.png"]
        );
    }

    #[test]
    fn random_seed_is_recorded_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let st = Invert::new();
        let mut s = settings(1);
        s.img2img.seed = -1;
        open_run(dir.path(), &mut s, &st).unwrap();
        assert!(s.img2img.seed >= 0);
        let mut again = settings(1);
        again.img2img.seed = -1;
        open_run(dir.path(), &mut again, &st).unwrap();
        assert_eq!(again.img2img.seed, s.img2img.seed);
        assert_eq!(again.render_hash(), s.render_hash());
        // A seedless backend keeps -1 as written.
        let dir = tempfile::tempdir().unwrap();
        let mut none = settings(1);
        none.img2img.seed = -1;
        open_run(dir.path(), &mut none, &crate::stylize::Passthrough).unwrap();
        assert_eq!(none.img2img.seed, -1);
    }

    struct StopAfter(AtomicUsize);
    impl Progress for StopAfter {
        fn event(&self, _: Event) {}
        fn should_stop(&self) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst) > 6
        }
    }

    #[test]
    fn stop_request_keeps_finished_frames_and_resume_completes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(2);
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        let err = stylize_source(
            source(20),
            &run,
            &s,
            &st,
            &StopAfter(AtomicUsize::new(0)),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Interrupted));
        let done = run.finished();
        assert!(done > 0 && done < 20, "{done} frames finished");
        let r = stylize_source(source(20), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!(r.skipped, done);
        assert_eq!(r.rendered, 20 - done);
    }

    #[test]
    fn source_error_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(2);
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        let src = Box::new(MemSource {
            frames: clip(10),
            next: 0,
            fail_at: Some(4),
        });
        let err = stylize_source(src, &run, &s, &st, &NoProgress, None).unwrap_err();
        assert!(err.to_string().contains("broken frame"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn masks_keep_source_pixels_and_bad_masks_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let masks = tempfile::tempdir().unwrap();
        for i in 1..=3 {
            let mut m = GrayImage::new(8, 6);
            for y in 0..6 {
                for x in 4..8 {
                    m.put_pixel(x, y, image::Luma([255]));
                }
            }
            m.save(masks.path().join(format!("{i:05}.png"))).unwrap();
        }
        let mut s = settings(1);
        s.mask_dir = Some(masks.path().to_path_buf());
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        stylize_source(source(3), &run, &s, &st, &NoProgress, None).unwrap();
        let f = frames::read_frame(&dir.path().join("00002.png")).unwrap();
        assert_eq!(
            f.image.get_pixel(0, 0)[0],
            10,
            "unmasked pixel is the source"
        );
        assert_eq!(f.image.get_pixel(5, 0)[0], 245, "masked pixel is stylized");

        // A wrong-sized mask names the file.
        GrayImage::new(3, 3)
            .save(masks.path().join("00003.png"))
            .unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        let run = open_run(dir2.path(), &mut s, &st).unwrap();
        let err = stylize_source(source(3), &run, &s, &st, &NoProgress, None).unwrap_err();
        assert!(err.to_string().contains("00003.png"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    /// A backend with a model identity: recorded by the run and part of the frame keys.
    struct WithModel(&'static str);
    impl Stylizer for WithModel {
        fn name(&self) -> &str {
            "with-model"
        }
        fn identity(&self) -> Option<String> {
            Some(self.0.into())
        }
        fn stylize(&self, r: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
            Ok(vec![r.init.clone()])
        }
    }

    #[test]
    fn model_identity_is_recorded_and_keys_the_frames() {
        let frames = tempfile::tempdir().unwrap();
        for (i, img) in clip(3).iter().enumerate() {
            img.save(frames.path().join(format!("{:05}.png", i + 1)))
                .unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let s = settings(1);
        let go = |id: &'static str| {
            let make =
                move |_: &Settings| -> Result<Box<dyn Stylizer>> { Ok(Box::new(WithModel(id))) };
            stylize_with(frames.path(), out.path(), &s, &make, &NoProgress).unwrap()
        };
        assert_eq!(go("model-a").rendered, 3);
        let saved = Settings::load(&out.path().join(run::SETTINGS_NAME)).unwrap();
        assert_eq!(saved.model_identity.as_deref(), Some("model-a"));
        assert_eq!(go("model-a").skipped, 3, "same model: nothing to do");
        assert_eq!(go("model-b").rendered, 3, "another model re-renders");
        // Without an identity the key is as before identities existed.
        let mut none = s.clone();
        none.model_identity = None;
        let mut some = s.clone();
        some.model_identity = Some("x".into());
        assert_ne!(none.render_hash(), some.render_hash());
    }

    struct Warnings(Mutex<Vec<String>>);
    impl Progress for Warnings {
        fn event(&self, e: Event) {
            if let Event::Warning { message } = e {
                self.0.lock().unwrap().push(message);
            }
        }
    }

    #[test]
    fn a_model_given_to_a_model_free_backend_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(1);
        s.model = Some("models/sd15".into());
        s.vae = Some("taesd".into());
        let st = Invert::new();
        let run = open_run(dir.path(), &mut s, &st).unwrap();
        let w = Warnings(Mutex::new(Vec::new()));
        stylize_source(source(1), &run, &s, &st, &w, None).unwrap();
        let w = w.0.into_inner().unwrap();
        assert!(
            w.iter()
                .any(|m| m.contains("ignores") && m.contains("model, vae")),
            "{w:?}"
        );
        // A backend with a model does not warn.
        let w2 = Warnings(Mutex::new(Vec::new()));
        let m = WithModel("m");
        let dir = tempfile::tempdir().unwrap();
        let run = open_run(dir.path(), &mut s, &m).unwrap();
        stylize_source(source(1), &run, &s, &m, &w2, None).unwrap();
        assert!(w2.0.into_inner().unwrap().is_empty());
    }

    #[test]
    fn masks_reach_the_backend_binarized_at_the_threshold() {
        let m = GrayImage::from_raw(4, 1, vec![0, 100, 128, 255]).unwrap();
        assert_eq!(binarize_mask(&m, 0.5).into_raw(), vec![0, 0, 255, 255]);
        assert_eq!(binarize_mask(&m, 0.0).into_raw(), vec![0, 255, 255, 255]);
        assert_eq!(binarize_mask(&m, 1.0).into_raw(), vec![0, 0, 0, 255]);
        // apply_mask with the binarized mask keeps exactly what it keeps with the raw one.
        let init = RgbaImage::from_pixel(4, 1, Rgba([1, 2, 3, 255]));
        for t in [0.0, 0.3, 0.5, 1.0] {
            let mut a = RgbaImage::from_pixel(4, 1, Rgba([9, 9, 9, 255]));
            let mut b = a.clone();
            apply_mask(&mut a, &init, &m, t);
            apply_mask(&mut b, &init, &binarize_mask(&m, t), t);
            assert_eq!(a, b, "threshold {t}");
        }
    }

    /// A textured clip panning right by 2 px a frame (flow has something to track).
    fn panning(n: usize) -> Vec<RgbaImage> {
        (0..n)
            .map(|i| {
                RgbaImage::from_fn(48, 32, |x, y| {
                    let fx = x as f32 - 2.0 * i as f32;
                    let v = 128.0 + 60.0 * (fx * 0.31).sin() + 50.0 * (y as f32 * 0.23).cos();
                    Rgba([v as u8, (255.0 - v) as u8, (y * 6) as u8, 255])
                })
            })
            .collect()
    }

    fn panning_source(frames: &[RgbaImage]) -> Box<dyn FrameSource> {
        Box::new(MemSource {
            frames: frames.to_vec(),
            next: 0,
            fail_at: None,
        })
    }

    fn folder_bytes(dir: &Path) -> Vec<Vec<u8>> {
        frames::list_frames(dir)
            .unwrap()
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// Asks to stop once three frames were reported.
    struct StopAfterFrames(AtomicUsize);
    impl Progress for StopAfterFrames {
        fn event(&self, e: Event) {
            if matches!(e, Event::Frame { .. }) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn should_stop(&self) -> bool {
            self.0.load(Ordering::SeqCst) >= 3
        }
    }

    #[test]
    fn warp_init_chains_frames_in_order_and_resumes_exactly() {
        let clip = panning(8);
        let mut s = settings(3);
        s.img2img.denoise = 0.3;
        s.warp_init = 0.8;
        s.color_match = ColorMatch::First;
        let st = Invert::new();
        let whole = tempfile::tempdir().unwrap();
        let run = open_run(whole.path(), &mut s, &st).unwrap();
        let order = Mutex::new(Vec::new());
        let mut sink = |i: &FrameInfo, _: &Frame| {
            order.lock().unwrap().push(i.index);
            Ok(())
        };
        let r = stylize_source(
            panning_source(&clip),
            &run,
            &s,
            &st,
            &NoProgress,
            Some(&mut sink),
        )
        .unwrap();
        assert_eq!(r.rendered, 8);
        assert_eq!(order.into_inner().unwrap(), (0..8).collect::<Vec<_>>());
        // Not the plain result: frames after the first depend on their predecessor.
        let plain_dir = tempfile::tempdir().unwrap();
        let mut plain = settings(3);
        plain.img2img.denoise = 0.3;
        let prun = open_run(plain_dir.path(), &mut plain, &st).unwrap();
        stylize_source(panning_source(&clip), &prun, &plain, &st, &NoProgress, None).unwrap();
        let (w, p) = (folder_bytes(whole.path()), folder_bytes(plain_dir.path()));
        assert_eq!(w[0], p[0]);
        assert!(w[1..].iter().zip(&p[1..]).all(|(a, b)| a != b));

        // Interrupted, then resumed: the same bytes as the uninterrupted run.
        let cut = tempfile::tempdir().unwrap();
        let run = open_run(cut.path(), &mut s, &st).unwrap();
        let stop = StopAfterFrames(AtomicUsize::new(0));
        let err = stylize_source(panning_source(&clip), &run, &s, &st, &stop, None).unwrap_err();
        assert!(matches!(err, Error::Interrupted));
        let done = run.finished();
        assert_eq!(done, 3, "the emitter checks before each render");
        let r = stylize_source(panning_source(&clip), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!((r.skipped, r.rendered), (done, 8 - done));
        assert_eq!(folder_bytes(cut.path()), w);

        // A changed source frame re-renders it and every frame after it (keys chain).
        let mut changed = clip.clone();
        changed[5].put_pixel(0, 0, Rgba([1, 2, 3, 255]));
        let r = stylize_source(panning_source(&changed), &run, &s, &st, &NoProgress, None).unwrap();
        assert_eq!((r.skipped, r.rendered), (5, 3));
    }

    #[test]
    fn settings_round_trip_through_toml() {
        let mut s = settings(2);
        s.encode.exposure = Some("1-3, 3x2".into());
        s.extract.size = Some((512, 288));
        let back = Settings::from_toml(&s.to_toml(), Path::new("x.toml")).unwrap();
        assert_eq!(back, s);
        // The source's own rate (no fps) survives too, and integer rates read back.
        s.extract.fps = None;
        let text = s.to_toml();
        assert!(text.contains("fps = \"source\""), "{text}");
        assert_eq!(Settings::from_toml(&text, Path::new("x.toml")).unwrap(), s);
        let fps = |t: &str| Settings::from_toml(t, Path::new("x.toml")).map(|s| s.extract.fps);
        assert_eq!(fps("[extract]\nfps = 24\n").unwrap(), Some(24.0));
        assert!(fps("[extract]\nfps = \"film\"\n").is_err());
        let err = Settings::from_toml("denoize = 0.3\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("denoize"), "{err}");
    }
}
