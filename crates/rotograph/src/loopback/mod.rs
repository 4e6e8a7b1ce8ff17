//! The Video Loopback engine (issue 4, in progress): the clip is re-rendered `loop_n` times;
//! each pass blends a temporal window of the previous pass into the init image, stylizes it,
//! averages the batch, and superimposes the result on the previous pass with
//! `superimpose_alpha`. Work is in f32 from the source's 8-bit values to the final rounding, so
//! nothing drifts loop after loop; schedules are evaluated per loop and frame and all of them
//! are checked before the first frame is rendered ([`Plan::new`]).
//!
//! Frames live in a [`FrameStore`] (loop 0 is the source); the engine reads only the temporal
//! window of the previous loop around the frame it renders, so its own memory does not grow
//! with the clip. Frames already in the store are skipped, which is how a run resumes.
//!
//! [`MemoryStore`] keeps frames in memory; [`FolderStore`] on disk (raw f32, written
//! atomically), keeping the source and the last two loops.
//!
//! [`store_source`] fills loop 0 from any frame source (folder, video, [`RepeatImage`]).
//!
//! [`loopback`] is the whole job behind `rotograph loopback` (settings: [`LoopbackConfig`], the
//! `[loopback]` table of `rotograph.toml`).

mod image32;
mod inputs;
mod job;
mod source;
mod store;

pub use image32::ImageF32;
pub use inputs::{read_prompt_file, FramePrompt, MaskSource};
pub(crate) use job::file_stamps;
pub use job::{loopback, loopback_with, LoopbackConfig, LoopbackReport, STORE_DIR};
pub use source::{store_source, RepeatImage};
pub use store::FolderStore;

use crate::error::{Error, Result};
use crate::progress::{Event, Progress};
use crate::schedule::{Expect, Schedule, Vars};
use crate::stylize::{Img2ImgParams, Img2ImgRequest, Stylizer};
use crate::temporal::warp_init::{self, ColorMatch};
use image::GrayImage;
use std::collections::HashMap;

/// Loopback settings, with Video Loopback's names. Schedules are expression texts (see the
/// README's "Schedules"); `None` keeps the value of [`LoopbackSettings::img2img`].
#[derive(Debug, Clone)]
pub struct LoopbackSettings {
    /// The img2img parameters; `seed` and `subseed` must be resolved (not -1).
    pub img2img: Img2ImgParams,
    /// Number of passes over the clip.
    pub loop_n: usize,
    /// Weight of the new render against the previous pass (schedule; 0..=1).
    pub superimpose_alpha: String,
    /// Temporal window weights: odd count, centre = current frame, left = previous frames,
    /// right = next ones; normalized, clipped at the clip's ends; `1` disables (schedule).
    pub temporal_superimpose: String,
    /// Keep the seed for every frame instead of stepping it.
    pub fix_seed: bool,
    /// Keep the subseed for every frame instead of stepping it.
    pub fix_subseed: bool,
    /// Mask binarization threshold in 0..=1: mask values below it keep the source.
    pub mask_threshold: f32,
    /// Schedule for `denoise`.
    pub denoising: Option<String>,
    /// Schedule for `cfg`.
    pub cfg: Option<String>,
    /// Schedule for `steps`.
    pub steps: Option<String>,
    /// Schedule for the seed (overrides stepping).
    pub seed: Option<String>,
    /// Schedule for the subseed (overrides stepping).
    pub subseed: Option<String>,
    /// Schedule for `subseed_strength`.
    pub subseed_strength: Option<String>,
    /// Prompt schedule (plain text or a string expression).
    pub prompt: Option<String>,
    /// Negative prompt schedule.
    pub negative_prompt: Option<String>,
    /// Schedule for `batch_count`.
    pub batch_count: Option<String>,
    /// Flow-warped init strength in 0..=1 (0 = off): the init of frame t is blended with this
    /// loop's output of frame t-1 warped along the source flow, where that flow is reliable.
    pub warp_init: f32,
    /// Histogram match of each stored frame, in Lab, to this loop's first frame or the source.
    pub color_match: ColorMatch,
}

impl Default for LoopbackSettings {
    fn default() -> Self {
        LoopbackSettings {
            img2img: Img2ImgParams::default(),
            loop_n: 10,
            superimpose_alpha: "0.25".into(),
            temporal_superimpose: "1".into(),
            fix_seed: false,
            fix_subseed: false,
            mask_threshold: 0.5,
            denoising: None,
            cfg: None,
            steps: None,
            seed: None,
            subseed: None,
            subseed_strength: None,
            prompt: None,
            negative_prompt: None,
            batch_count: None,
            warp_init: 0.0,
            color_match: ColorMatch::None,
        }
    }
}

/// Everything that varies per loop and frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameParams {
    /// The request's parameters (scheduled fields filled in).
    pub img2img: Img2ImgParams,
    /// Superimpose alpha.
    pub alpha: f32,
    /// Temporal window weights as given (not yet normalized or clipped).
    pub temporal: Vec<f64>,
    /// Seed of this frame's first image.
    pub seed: u64,
    /// Subseed of this frame's first image.
    pub subseed: u64,
}

/// Parsed, fully checked settings for a clip of a known length.
#[derive(Debug, Clone)]
pub struct Plan {
    settings: LoopbackSettings,
    image_n: usize,
    schedules: Schedules,
    /// (seed, subseed) per generation, loop-major.
    seeds: Vec<(u64, u64)>,
}

#[derive(Debug, Clone)]
struct Schedules {
    alpha: Schedule,
    temporal: Schedule,
    denoising: Option<Schedule>,
    cfg: Option<Schedule>,
    steps: Option<Schedule>,
    seed: Option<Schedule>,
    subseed: Option<Schedule>,
    subseed_strength: Option<Schedule>,
    prompt: Option<Schedule>,
    negative_prompt: Option<Schedule>,
    batch_count: Option<Schedule>,
}

impl Schedules {
    fn parse(settings: &LoopbackSettings) -> Result<Schedules> {
        Ok(Schedules {
            alpha: Schedule::parse("superimpose_alpha", &settings.superimpose_alpha)?,
            temporal: Schedule::parse("temporal_superimpose", &settings.temporal_superimpose)?,
            denoising: opt("denoising", &settings.denoising, false)?,
            cfg: opt("cfg", &settings.cfg, false)?,
            steps: opt("steps", &settings.steps, false)?,
            seed: opt("seed", &settings.seed, false)?,
            subseed: opt("subseed", &settings.subseed, false)?,
            subseed_strength: opt("subseed_strength", &settings.subseed_strength, false)?,
            prompt: opt("prompt", &settings.prompt, true)?,
            negative_prompt: opt("negative_prompt", &settings.negative_prompt, true)?,
            batch_count: opt("batch_count", &settings.batch_count, false)?,
        })
    }
}

impl LoopbackSettings {
    /// Parses every schedule (syntax and names only; [`Plan::new`] also evaluates them), so
    /// that a malformed expression is reported before the clip is even read.
    pub fn check_syntax(&self) -> Result<()> {
        Schedules::parse(self).map(|_| ())
    }
}

fn opt(name: &str, text: &Option<String>, prompt: bool) -> Result<Option<Schedule>> {
    text.as_deref()
        .map(|t| {
            if prompt {
                Schedule::parse_prompt(name, t)
            } else {
                Schedule::parse(name, t)
            }
        })
        .transpose()
}

fn in_range(s: &Schedule, v: f64, lo: f64, hi: f64, vars: &Vars) -> Result<f64> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Error::setting(
            s.param(),
            format!("the schedule gives {v} at {vars}; it must be within {lo}..={hi}"),
        ))
    }
}

impl Plan {
    /// Parses every schedule and evaluates all of them for every loop and frame of a clip of
    /// `image_n` frames, so that any error surfaces before rendering.
    pub fn new(settings: &LoopbackSettings, image_n: usize) -> Result<Plan> {
        if settings.loop_n == 0 {
            return Err(Error::setting("loop_n", "must be at least 1"));
        }
        if image_n == 0 {
            return Err(Error::setting("max_frames", "the clip has no frames"));
        }
        if !(0.0..=1.0).contains(&settings.mask_threshold) {
            return Err(Error::setting("mask_threshold", "must be within 0..=1"));
        }
        settings.img2img.validate()?;
        crate::temporal::warp_init::check_strength(settings.warp_init)?;
        if settings.img2img.seed < 0 || settings.img2img.subseed < 0 {
            return Err(Error::setting(
                "seed",
                "resolve -1 (random) to a seed before planning the loops",
            ));
        }
        let schedules = Schedules::parse(settings)?;
        schedules
            .temporal
            .check_all(settings.loop_n, image_n, Expect::List)?;
        let mut plan = Plan {
            settings: settings.clone(),
            image_n,
            schedules,
            seeds: Vec::with_capacity(settings.loop_n * image_n),
        };
        // Evaluate everything once, in render order; seeds step by the images generated.
        let (mut seed, mut subseed) = (
            settings.img2img.seed as u64,
            settings.img2img.subseed as u64,
        );
        for loop_i in 1..=settings.loop_n {
            for image_i in 1..=image_n {
                let p = plan.evaluate(loop_i, image_i)?;
                let step = u64::from(p.img2img.batch_size) * u64::from(p.img2img.batch_count);
                let s = match p.img2img.seed {
                    -1 => seed,
                    v => v as u64,
                };
                let ss = match p.img2img.subseed {
                    -1 => subseed,
                    v => v as u64,
                };
                plan.seeds.push((s, ss));
                if !settings.fix_seed {
                    seed = seed.wrapping_add(step);
                }
                if !settings.fix_subseed {
                    subseed = subseed.wrapping_add(step);
                }
            }
        }
        Ok(plan)
    }

    /// Number of loops.
    pub fn loop_n(&self) -> usize {
        self.settings.loop_n
    }

    /// Number of frames.
    pub fn image_n(&self) -> usize {
        self.image_n
    }

    /// The parameters of frame `image_i` in loop `loop_i` (both 1-based).
    pub fn frame(&self, loop_i: usize, image_i: usize) -> Result<FrameParams> {
        let mut p = self.evaluate(loop_i, image_i)?;
        let k = (loop_i - 1) * self.image_n + (image_i - 1);
        let (seed, subseed) = self.seeds.get(k).copied().ok_or_else(|| {
            Error::setting(
                "loop_n",
                format!("loop {loop_i}, frame {image_i} is outside the plan"),
            )
        })?;
        p.seed = seed;
        p.subseed = subseed;
        p.img2img.seed = seed as i64;
        p.img2img.subseed = subseed as i64;
        Ok(p)
    }

    /// Evaluates the schedules; `img2img.seed`/`subseed` are -1 unless scheduled.
    fn evaluate(&self, loop_i: usize, image_i: usize) -> Result<FrameParams> {
        let s = &self.schedules;
        let vars = Vars {
            loop_i: loop_i as i64,
            image_i: image_i as i64,
            loop_n: self.settings.loop_n as i64,
            image_n: self.image_n as i64,
        };
        let mut p = self.settings.img2img.clone();
        let alpha = in_range(&s.alpha, s.alpha.eval_f64(&vars)?, 0.0, 1.0, &vars)? as f32;
        let temporal = s.temporal.eval_list(&vars)?;
        if temporal.len() % 2 == 0 && !temporal.is_empty() {
            return Err(Error::setting(
                "temporal_superimpose",
                format!("needs an odd number of weights (the centre is the current frame), got {} at {vars}", temporal.len()),
            ));
        }
        if temporal.iter().any(|w| *w < 0.0) {
            return Err(Error::setting(
                "temporal_superimpose",
                format!("weights must not be negative (at {vars})"),
            ));
        }
        if let Some(d) = &s.denoising {
            p.denoise = in_range(d, d.eval_f64(&vars)?, 0.0, 1.0, &vars)? as f32;
        }
        if let Some(c) = &s.cfg {
            p.cfg = in_range(c, c.eval_f64(&vars)?, 0.0, 100.0, &vars)? as f32;
        }
        if let Some(st) = &s.steps {
            p.steps = in_range(st, st.eval_i64(&vars)? as f64, 1.0, 1000.0, &vars)? as u32;
        }
        if let Some(ss) = &s.subseed_strength {
            p.subseed_strength = in_range(ss, ss.eval_f64(&vars)?, 0.0, 1.0, &vars)? as f32;
        }
        if let Some(b) = &s.batch_count {
            p.batch_count = in_range(b, b.eval_i64(&vars)? as f64, 1.0, 100.0, &vars)? as u32;
        }
        p.seed = -1;
        p.subseed = -1;
        if let Some(sd) = &s.seed {
            p.seed = in_range(sd, sd.eval_i64(&vars)? as f64, 0.0, 9.0e18, &vars)? as i64;
        }
        if let Some(sd) = &s.subseed {
            p.subseed = in_range(sd, sd.eval_i64(&vars)? as f64, 0.0, 9.0e18, &vars)? as i64;
        }
        if let Some(t) = &s.prompt {
            p.prompt = t.eval_str(&vars)?;
        }
        if let Some(t) = &s.negative_prompt {
            p.negative_prompt = t.eval_str(&vars)?;
        }
        Ok(FrameParams {
            img2img: p,
            alpha,
            temporal,
            seed: 0,
            subseed: 0,
        })
    }
}

/// The normalized weights of the temporal window around frame `index` (0-based) of a clip of
/// `len` frames: `(frame index, weight)` pairs summing to 1, neighbours past the clip's ends
/// dropped before normalizing. An empty list, or all-zero weights, is the frame alone.
pub fn window_weights(weights: &[f64], index: usize, len: usize) -> Vec<(usize, f32)> {
    let r = weights.len() / 2;
    let mut out: Vec<(usize, f64)> = Vec::new();
    for (k, w) in weights.iter().enumerate() {
        let j = index as i64 + k as i64 - r as i64;
        if j >= 0 && (j as usize) < len && *w > 0.0 {
            out.push((j as usize, *w));
        }
    }
    let total: f64 = out.iter().map(|(_, w)| w).sum();
    if out.is_empty() || total <= 0.0 {
        return vec![(index, 1.0)];
    }
    out.into_iter()
        .map(|(j, w)| (j, (w / total) as f32))
        .collect()
}

/// Where the loops' frames live: loop 0 is the source clip, loop L the output of pass L.
pub trait FrameStore {
    /// Frame `index` (0-based) of loop `loop_i`.
    fn get(&mut self, loop_i: usize, index: usize) -> Result<ImageF32>;
    /// Stores frame `index` of loop `loop_i`.
    fn put(&mut self, loop_i: usize, index: usize, image: ImageF32) -> Result<()>;
    /// Whether frame `index` of loop `loop_i` is already stored (resume).
    fn contains(&self, loop_i: usize, index: usize) -> bool;
    /// Called when every frame of loop `loop_i` is stored (a store may drop older loops:
    /// only loop 0 and the latest loop are read again).
    fn loop_done(&mut self, _loop_i: usize) -> Result<()> {
        Ok(())
    }
}

/// A [`FrameStore`] in memory (tests, short clips).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    loops: HashMap<(usize, usize), ImageF32>,
}

impl MemoryStore {
    /// A store with `source` as loop 0.
    pub fn with_source(source: impl IntoIterator<Item = ImageF32>) -> Self {
        MemoryStore {
            loops: source
                .into_iter()
                .enumerate()
                .map(|(i, f)| ((0, i), f))
                .collect(),
        }
    }
}

impl FrameStore for MemoryStore {
    fn get(&mut self, loop_i: usize, index: usize) -> Result<ImageF32> {
        self.loops.get(&(loop_i, index)).cloned().ok_or_else(|| {
            Error::setting(
                "loop_n",
                format!("frame {} of loop {loop_i} is not in the store", index + 1),
            )
        })
    }
    fn put(&mut self, loop_i: usize, index: usize, image: ImageF32) -> Result<()> {
        self.loops.insert((loop_i, index), image);
        Ok(())
    }
    fn contains(&self, loop_i: usize, index: usize) -> bool {
        self.loops.contains_key(&(loop_i, index))
    }
}

/// Per-frame inputs besides the pixels: masks and prompt files.
pub struct FrameInputs<'a> {
    /// Mask of frame `index` (255 = repaint, 0 = keep the source), already at the frame's size;
    /// `None` for no mask.
    pub mask: &'a dyn Fn(usize) -> Result<Option<GrayImage>>,
    /// Prompt of frame `index` from its `.txt` file, overriding the prompt schedule.
    pub prompt: &'a dyn Fn(usize) -> Result<Option<FramePrompt>>,
    /// Frame names for error messages.
    pub name: &'a dyn Fn(usize) -> String,
}

/// Stage name of loopback's progress events.
pub const STAGE: &str = "loopback";

/// Runs every loop of `plan`: loop L's frames are rendered from loop L-1's and stored as loop L.
/// Frames already in `store` are kept (resume). Progress events count every (loop, frame) in
/// render order, named `loop-NN/FRAME`; when `progress` asks to stop, the run ends with
/// [`Error::Interrupted`] before the next frame, and running it again resumes.
pub fn run(
    plan: &Plan,
    store: &mut dyn FrameStore,
    inputs: &FrameInputs<'_>,
    stylizer: &dyn Stylizer,
    progress: &dyn Progress,
) -> Result<()> {
    let n = plan.image_n();
    let threshold = (plan.settings.mask_threshold * 255.0).round() as u8;
    progress.event(Event::Start {
        stage: STAGE.into(),
        total: Some((plan.loop_n() * n) as u64),
    });
    // The latest complete loop: the loops before it are not needed again (a store may have
    // dropped them), so they count as done.
    let complete = (1..=plan.loop_n())
        .rev()
        .find(|&l| (0..n).all(|i| store.contains(l, i)))
        .unwrap_or(0);
    let warp = plan.settings.warp_init > 0.0;
    // The source pyramid of the frame before the one rendered (warp init), reused per pair.
    let mut source_pyramids = warp.then(|| SourcePyramids::new(warp_init::flow_params()));
    for loop_i in 1..=plan.loop_n() {
        // The previous loop's frames around the current one (the temporal window).
        let mut window: HashMap<usize, ImageF32> = HashMap::new();
        for index in 0..n {
            let frame_event = |skipped| Event::Frame {
                stage: STAGE.into(),
                index: ((loop_i - 1) * n + index) as u64,
                name: format!("loop-{loop_i:02}/{}", (inputs.name)(index)),
                skipped,
            };
            if loop_i <= complete || store.contains(loop_i, index) {
                progress.event(frame_event(true));
                continue;
            }
            if progress.should_stop() {
                return Err(Error::Interrupted);
            }
            let p = plan.frame(loop_i, index + 1)?;
            let weights = window_weights(&p.temporal, index, n);
            let lo = weights
                .iter()
                .map(|w| w.0)
                .min()
                .unwrap_or(index)
                .min(index);
            window.retain(|j, _| *j >= lo);
            for &(j, _) in weights.iter().chain(std::iter::once(&(index, 1.0))) {
                if let std::collections::hash_map::Entry::Vacant(slot) = window.entry(j) {
                    slot.insert(store.get(loop_i - 1, j)?);
                }
            }
            let current = &window[&index];
            let mut init = ImageF32::zeros(current.width(), current.height());
            for (j, w) in &weights {
                init.add_scaled(&window[j], *w);
            }
            let mut init8 = init.to_rgba();
            if let (Some(pyramids), true) = (source_pyramids.as_mut(), index > 0) {
                // Warp init: this loop's previous output, carried along the source motion.
                let motion = pyramids.motion(store, index)?;
                let before = store.get(loop_i, index - 1)?.to_rgba();
                init8 = warp_init::blend_init(&init8, &before, &motion, plan.settings.warp_init)?;
            }
            let mask = (inputs.mask)(index)?.map(|m| binarize(&m, threshold));
            let mut params = p.img2img.clone();
            if let Some(fp) = (inputs.prompt)(index)? {
                params.prompt = fp.prompt;
                if let Some(neg) = fp.negative {
                    params.negative_prompt = neg;
                }
            }
            let request = Img2ImgRequest {
                init: &init8,
                mask: mask.as_ref(),
                controls: Vec::new(),
                params: &params,
                seed: p.seed,
                subseed: p.subseed,
            };
            let images = stylizer.stylize(&request)?;
            let backend_error = |message: String| Error::Backend {
                backend: stylizer.name().to_string(),
                frame: (inputs.name)(index),
                message,
            };
            if images.is_empty() {
                return Err(backend_error("returned no image".into()));
            }
            let mut generated = ImageF32::zeros(current.width(), current.height());
            let share = 1.0 / images.len() as f32;
            for img in &images {
                if img.dimensions() != (current.width(), current.height()) {
                    return Err(backend_error(format!(
                        "returned a {}x{} image for a {}x{} frame",
                        img.width(),
                        img.height(),
                        current.width(),
                        current.height()
                    )));
                }
                generated.add_scaled(&ImageF32::from_rgba(img), share);
            }
            let mut out = current.clone();
            out.lerp_to(&generated, p.alpha);
            let color_match = plan.settings.color_match;
            // The first frame of a loop is its own `first` reference: left as it is.
            let reference = match color_match {
                ColorMatch::None => None,
                ColorMatch::First if index == 0 => None,
                ColorMatch::First => Some(store.get(loop_i, 0)?),
                ColorMatch::Source => Some(store.get(0, index)?),
            };
            if let Some(reference) = reference {
                out = ImageF32::from_rgba(&warp_init::match_colors(
                    &out.to_rgba(),
                    &reference.to_rgba(),
                ));
            }
            if let Some(m) = &mask {
                let source = store.get(0, index)?;
                out.keep_where_unmasked(&source, m);
            }
            store.put(loop_i, index, out)?;
            progress.event(frame_event(false));
        }
        if loop_i > complete {
            store.loop_done(loop_i)?;
        }
    }
    progress.event(Event::Finish {
        stage: STAGE.into(),
    });
    Ok(())
}

/// The source motion between consecutive source frames (loop 0), keeping the pyramid of the
/// last frame so that walking the clip in order builds each pyramid once.
struct SourcePyramids {
    params: crate::flow::FlowParams,
    last: Option<(usize, crate::flow::Pyramid)>,
}

impl SourcePyramids {
    fn new(params: crate::flow::FlowParams) -> Self {
        SourcePyramids { params, last: None }
    }

    /// The motion from source frame `index` to `index - 1`.
    fn motion(
        &mut self,
        store: &mut dyn FrameStore,
        index: usize,
    ) -> Result<crate::temporal::SourceMotion> {
        let pyramid = |store: &mut dyn FrameStore, i: usize, params| -> Result<_> {
            Ok(crate::flow::Pyramid::for_params(
                &store.get(0, i)?.to_rgba(),
                params,
            ))
        };
        let before = match self.last.take() {
            Some((i, p)) if i == index - 1 => p,
            _ => pyramid(store, index - 1, &self.params)?,
        };
        let cur = pyramid(store, index, &self.params)?;
        let motion = crate::temporal::SourceMotion::between(&before, &cur, &self.params)?;
        self.last = Some((index, cur));
        Ok(motion)
    }
}

/// 255 where the mask is at or above the threshold (repaint), 0 elsewhere (keep).
fn binarize(mask: &GrayImage, threshold: u8) -> GrayImage {
    let mut out = mask.clone();
    for p in out.pixels_mut() {
        p[0] = if p[0] >= threshold.max(1) { 255 } else { 0 };
    }
    out
}
