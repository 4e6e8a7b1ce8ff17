//! Command-line arguments. Flags use the Automatic1111 / Video Loopback names in kebab-case;
//! every flag left out keeps the value of `--config` (or the default).

use clap::{Args, Parser, Subcommand, ValueEnum};
use rotograph::frames::{Exposure, Fit};
use rotograph::pipeline::{EncodeSettings, Settings};
use rotograph::stylize::toon::Style;
use rotograph::temporal::warp_init::ColorMatch;
use rotograph::video::{EncodeOptions, ExtractOptions};
use std::path::{Path, PathBuf};

/// rotograph: live-action footage to stylized animation, frame by frame.
#[derive(Debug, Parser)]
#[command(name = "rotograph", version, about, max_term_width = 100)]
#[command(after_help = "Exit codes: 0 ok, 1 failure, 2 bad usage or input, 130 interrupted.")]
pub struct Cli {
    /// Print nothing but errors.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Print progress as JSON lines on stdout (for scripts).
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Split a video into a PNG sequence.
    Extract(ExtractCmd),
    /// Assemble a frame folder into H.264 (.mp4), VP9 with alpha (.webm), GIF or APNG.
    Encode(EncodeCmd),
    /// Stylize every frame of a video or frame folder (batch img2img) into a resumable folder.
    Stylize(StylizeCmd),
    /// The whole job: extract, stylize and encode with the source audio.
    Roto(RotoCmd),
    /// Video Loopback: re-render the clip --loop-n times, blending each pass into the last.
    Loopback(Box<LoopbackCmd>),
    /// Dense optical flow between two images (.flo), or between consecutive frames of a folder
    /// or video (one .flo per pair).
    Flow(FlowCmd),
    /// Remove flicker from a stylized sequence, guided by the motion of its source.
    Deflicker(DeflickerCmd),
    /// Temporal-consistency report of a stylized sequence against its source: per-frame
    /// warping error, flagged bad frames, JSON report and plot.
    Check(CheckCmd),
    /// Suggest keyframes for propagation: scene changes and the rest poses between movements.
    Keys(KeysCmd),
    /// Keyframe propagation: synthesize a frame in the style of a stylized key, guided by
    /// image pairs (EbSynth-class patch synthesis).
    Propagate(PropagateCmd),
    /// Frame interpolation from optical flow: more frames for a folder or video (--factor or
    /// --fps), or in-betweens of two keyframe images (--count).
    Interpolate(InterpolateCmd),
}

/// `rotograph extract`.
#[derive(Debug, Args)]
pub struct ExtractCmd {
    /// The video.
    pub video: PathBuf,
    /// Output folder for the frames.
    #[arg(short, long)]
    pub output: PathBuf,
    /// File-name pattern of the frames.
    #[arg(long, default_value = "%05d.png")]
    pub pattern: String,
    #[command(flatten)]
    pub extract: ExtractArgs,
}

/// How frames are taken from a video.
#[derive(Debug, Args, Default)]
pub struct ExtractArgs {
    /// Frames per second to take from the video [default: 12]; `source` keeps every frame.
    #[arg(long, value_parser = parse_fps)]
    pub fps: Option<FpsArg>,
    /// Keep every n-th of those frames.
    #[arg(long, value_name = "N")]
    pub extract_nth_frame: Option<usize>,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<usize>,
    /// Start at this time (seconds).
    #[arg(long, value_name = "SECONDS")]
    pub start: Option<f64>,
    /// Take this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Frame size, rounded to --multiple.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// How frames are brought to --size.
    #[arg(long, value_enum)]
    pub fit: Option<FitArg>,
    /// Round sizes to this multiple (8 for SD 1.5/2.x, 64 for some models) [default: 8 with --size].
    #[arg(long, value_name = "8|64")]
    pub multiple: Option<u32>,
}

/// A `--fps` value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FpsArg {
    /// Keep every source frame.
    Source,
    /// Sample at this rate.
    Rate(f64),
}

fn parse_fps(s: &str) -> Result<FpsArg, String> {
    if s.eq_ignore_ascii_case("source") {
        return Ok(FpsArg::Source);
    }
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (
                a.trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a rate"))?,
                b.trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a rate"))?,
            );
            a / b
        }
        None => s
            .parse()
            .map_err(|_| format!("`{s}` is not a number (e.g. 12, 23.976, 30000/1001, source)"))?,
    };
    if v.is_finite() && v > 0.0 && v <= 1000.0 {
        Ok(FpsArg::Rate(v))
    } else {
        Err(format!("`{s}` must be a rate above 0 and at most 1000"))
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("`{s}` is not a size; write WIDTHxHEIGHT, e.g. 512x512");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
    let w: u32 = w.trim().parse().map_err(|_| err())?;
    let h: u32 = h.trim().parse().map_err(|_| err())?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(format!("`{s}`: width and height must be within 1..=16384"));
    }
    Ok((w, h))
}

/// `--fit` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FitArg {
    /// Scale to cover, crop the overflow.
    Crop,
    /// Scale to fit inside, pad with black.
    Pad,
    /// Scale to the size, changing the aspect ratio.
    Stretch,
}

impl From<FitArg> for Fit {
    fn from(f: FitArg) -> Fit {
        match f {
            FitArg::Crop => Fit::Crop,
            FitArg::Pad => Fit::Pad,
            FitArg::Stretch => Fit::Stretch,
        }
    }
}

impl ExtractArgs {
    /// Overrides the options with the flags given.
    pub fn apply(&self, o: &mut ExtractOptions) {
        match self.fps {
            Some(FpsArg::Source) => o.fps = None,
            Some(FpsArg::Rate(r)) => o.fps = Some(r),
            None => {}
        }
        set(&mut o.extract_nth_frame, self.extract_nth_frame);
        if self.max_frames.is_some() {
            o.max_frames = self.max_frames;
        }
        if self.start.is_some() {
            o.start = self.start;
        }
        if self.duration.is_some() {
            o.duration = self.duration;
        }
        if self.size.is_some() {
            o.size = self.size;
        }
        set(&mut o.fit, self.fit.map(Fit::from));
        if self.multiple.is_some() {
            o.multiple = self.multiple;
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `rotograph encode`.
#[derive(Debug, Args)]
pub struct EncodeCmd {
    /// Folder of frames (natural order).
    pub frames: PathBuf,
    /// Output video: .mp4/.mov/.mkv (H.264), .webm (VP9, alpha kept), .gif, .apng.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output frame rate.
    #[arg(long, default_value_t = 12.0, value_parser = parse_rate)]
    pub fps: f64,
    /// Quality: lower is better (x264/VP9 CRF).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(0..=63))]
    pub crf: u32,
    /// Mux the audio of this video.
    #[arg(long, value_name = "VIDEO")]
    pub audio_from: Option<PathBuf>,
    /// Take the audio from this time (seconds).
    #[arg(long, value_name = "SECONDS", requires = "audio_from")]
    pub audio_start: Option<f64>,
    /// Take this many seconds of audio (default: the video's length).
    #[arg(long, value_name = "SECONDS", requires = "audio_from")]
    pub audio_duration: Option<f64>,
    #[command(flatten)]
    pub timing: TimingArgs,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match parse_fps(s)? {
        FpsArg::Rate(r) => Ok(r),
        FpsArg::Source => Err("give a number".into()),
    }
}

/// Holds and exposure sheets.
#[derive(Debug, Args, Default)]
pub struct TimingArgs {
    /// Exposure sheet: which frame each output frame shows, e.g. "1-8, 8x4, 9-16".
    #[arg(long, value_name = "SHEET")]
    pub exposure: Option<String>,
    /// Hold every frame N output frames (2 = on twos).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub on: Option<u32>,
}

impl EncodeCmd {
    /// The encoder options.
    pub fn options(&self) -> rotograph::Result<EncodeOptions> {
        Ok(EncodeOptions {
            fps: self.fps,
            crf: self.crf,
            audio_from: self.audio_from.clone(),
            audio_start: self.audio_start,
            audio_duration: self.audio_duration,
            exposure: self
                .timing
                .exposure
                .as_deref()
                .map(Exposure::parse)
                .transpose()?,
            on: self.timing.on.unwrap_or(1) as usize,
            container: None,
        })
    }
}

/// Backends.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// Classical cartoon stylizer, no model needed.
    Toon,
    /// Frames pass unchanged (re-timing, resizing, holds).
    None,
    /// Stable Diffusion img2img (needs --model).
    Sd,
}

/// What the sd backend's UNet predicts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PredictionArg {
    /// Decide from the model (a diffusers scheduler config, a `NAME.yaml`, or a probe for SD 2.x).
    Auto,
    /// The noise (SD 1.x, SD 2.x base, SDXL).
    Epsilon,
    /// The velocity (SD 2.x 768 px models).
    V,
}

/// Presets of the toon backend.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StyleArg {
    /// Flat colour regions, soft bands, ink lines.
    Toon,
    /// Ink lines on paper.
    Ink,
    /// Strong flat colour bands.
    Posterize,
}

impl From<StyleArg> for Style {
    fn from(s: StyleArg) -> Style {
        match s {
            StyleArg::Toon => Style::Toon,
            StyleArg::Ink => Style::Ink,
            StyleArg::Posterize => Style::Posterize,
        }
    }
}

/// Flags shared by `stylize` and `roto`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Read settings from this file (a run folder's rotograph.toml works); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub extract: ExtractArgs,
    #[command(flatten)]
    pub img2img: Img2ImgArgs,
    #[command(flatten)]
    pub warp_init: WarpInitArgs,
}

/// img2img flags, as Automatic1111 names them.
#[derive(Debug, Args)]
pub struct Img2ImgArgs {
    /// Stylizer backend [default: toon].
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Preset of the toon backend [default: toon].
    #[arg(long, value_enum)]
    pub style: Option<StyleArg>,
    /// Model of the sd backend: a diffusers folder, a .safetensors/.ckpt checkpoint, or a hub
    /// id (owner/name) already in the local Hugging Face cache (nothing is downloaded).
    #[arg(long, value_name = "PATH|ID")]
    pub model: Option<String>,
    /// Autoencoder of the sd backend: model (its own), taesd (a taesd/ folder inside or beside
    /// the model), or a VAE .safetensors/.ckpt file or folder [default: model].
    #[arg(long, value_name = "model|taesd|PATH")]
    pub vae: Option<String>,
    /// What the sd backend's UNet predicts [default: auto].
    #[arg(long, value_enum)]
    pub prediction: Option<PredictionArg>,
    /// Compute the sd backend's attention this many batch x head rows at a time: less memory
    /// at large sizes, the same result up to rounding [default: all at once].
    #[arg(long, value_name = "N")]
    pub attention_slice: Option<usize>,
    /// Prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Negative prompt.
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Seed; -1 = random (recorded, and reused when the run resumes) [default: -1].
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// Variation seed [default: -1].
    #[arg(long, allow_negative_numbers = true)]
    pub subseed: Option<i64>,
    /// Variation strength 0..1 [default: 0].
    #[arg(long)]
    pub subseed_strength: Option<f32>,
    /// Denoising strength 0..1: how far frames move from the source (toon: abstraction
    /// strength) [default: 0.75].
    #[arg(long)]
    pub denoise: Option<f32>,
    /// Sampling steps [default: 20].
    #[arg(long)]
    pub steps: Option<u32>,
    /// CFG scale [default: 7].
    #[arg(long)]
    pub cfg: Option<f32>,
    /// Sampler [default: "Euler a"].
    #[arg(long)]
    pub sampler: Option<String>,
    /// Images per batch [default: 1].
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Number of batches [default: 1].
    #[arg(long)]
    pub batch_count: Option<u32>,
    /// Clip skip (A1111): condition on the text encoder's layer -N; 1 = last layer, 2 is
    /// common for anime SD 1.x models; SDXL ignores it [default: 1].
    #[arg(long)]
    pub clip_skip: Option<u32>,
    /// Folder of masks named like the frames: white = stylize, black = keep the source.
    #[arg(long, value_name = "DIR")]
    pub mask_dir: Option<PathBuf>,
    /// Mask threshold 0..1 [default: 0.5].
    #[arg(long)]
    pub mask_threshold: Option<f32>,
    /// Frames stylized at once [default: number of cores].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Fit frames of other sizes to the first one instead of failing.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub allow_mixed_sizes: Option<bool>,
}

impl CommonArgs {
    /// The effective settings: defaults, then `--config`, then the flags given.
    pub fn settings(
        &self,
        input: Option<&Path>,
        output: Option<&Path>,
    ) -> rotograph::Result<Settings> {
        let mut s = match &self.config {
            Some(p) => Settings::load(p)?,
            None => Settings::default(),
        };
        if let Some(i) = input {
            s.input = Some(i.to_path_buf());
        }
        if let Some(o) = output {
            s.output = Some(o.to_path_buf());
        }
        self.extract.apply(&mut s.extract);
        let a = &self.img2img;
        if let Some(b) = a.backend {
            s.backend = match b {
                BackendArg::Toon => "toon".into(),
                BackendArg::None => "none".into(),
                BackendArg::Sd => "sd".into(),
            };
        }
        if a.model.is_some() {
            s.model = a.model.clone();
        }
        if a.vae.is_some() {
            s.vae = a.vae.clone();
        }
        if a.attention_slice.is_some() {
            s.attention_slice = a.attention_slice;
        }
        if let Some(p) = a.prediction {
            s.prediction = Some(
                match p {
                    PredictionArg::Auto => "auto",
                    PredictionArg::Epsilon => "epsilon",
                    PredictionArg::V => "v",
                }
                .into(),
            );
        }
        set(&mut s.style, a.style.map(Style::from));
        let p = &mut s.img2img;
        set(&mut p.prompt, a.prompt.clone());
        set(&mut p.negative_prompt, a.negative_prompt.clone());
        set(&mut p.seed, a.seed);
        set(&mut p.subseed, a.subseed);
        set(&mut p.subseed_strength, a.subseed_strength);
        set(&mut p.denoise, a.denoise);
        set(&mut p.steps, a.steps);
        set(&mut p.cfg, a.cfg);
        set(&mut p.sampler, a.sampler.clone());
        set(&mut p.batch_size, a.batch_size);
        set(&mut p.batch_count, a.batch_count);
        set(&mut p.clip_skip, a.clip_skip);
        if a.mask_dir.is_some() {
            s.mask_dir = a.mask_dir.clone();
        }
        set(&mut s.mask_threshold, a.mask_threshold);
        set(&mut s.jobs, a.jobs);
        set(&mut s.allow_mixed_sizes, a.allow_mixed_sizes);
        self.warp_init.apply(&mut s);
        s.validate()?;
        Ok(s)
    }
}

/// `rotograph stylize`.
#[derive(Debug, Args)]
pub struct StylizeCmd {
    /// A video or a folder of frames.
    pub input: Option<PathBuf>,
    /// Output folder (a run folder: frames, rotograph.toml, manifest).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Encoding flags of `roto`.
#[derive(Debug, Args)]
pub struct RotoEncodeArgs {
    /// Output frame rate [default: the extraction rate / --extract-nth-frame].
    #[arg(long, value_parser = parse_rate)]
    pub output_frame_rate: Option<f64>,
    /// Quality: lower is better [default: 25].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=63))]
    pub crf: Option<u32>,
    /// Do not copy the source's audio.
    #[arg(long)]
    pub no_audio: bool,
    /// Do not keep the stylized frames (no run folder): faster, but a re-run starts over.
    #[arg(long)]
    pub no_keep_frames: bool,
    #[command(flatten)]
    pub timing: TimingArgs,
}

impl RotoEncodeArgs {
    /// Overrides the encode settings with the flags given.
    pub fn apply(&self, e: &mut EncodeSettings) {
        if self.output_frame_rate.is_some() {
            e.output_frame_rate = self.output_frame_rate;
        }
        set(&mut e.crf, self.crf);
        if self.no_audio {
            e.audio = false;
        }
        if self.no_keep_frames {
            e.keep_frames = false;
        }
        if self.timing.exposure.is_some() {
            e.exposure = self.timing.exposure.clone();
        }
        set(&mut e.on, self.timing.on.map(|n| n as usize));
    }
}

/// `rotograph roto`.
#[derive(Debug, Args)]
pub struct RotoCmd {
    /// The source video.
    pub input: Option<PathBuf>,
    /// Output video (.mp4, .webm, .gif, .apng).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Run folder for the stylized frames [default: OUTPUT's name + .rotograph, beside it].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub encode: RotoEncodeArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `rotograph loopback`.
#[derive(Debug, Args)]
pub struct LoopbackCmd {
    /// A frame folder, a video, or one image (repeated --max-frames times).
    pub input: Option<PathBuf>,
    /// Output folder: the last loop's frames, named like the input frames.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub loopback: LoopbackArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Video Loopback's parameters (the `[loopback]` table).
#[derive(Debug, Args)]
pub struct LoopbackArgs {
    /// Number of passes over the clip [default: 10].
    #[arg(long, value_name = "N")]
    pub loop_n: Option<usize>,
    /// Weight of each new render against the previous pass, 0..1: a number or a schedule
    /// [default: 0.25].
    #[arg(long, value_name = "EXPR")]
    pub superimpose_alpha: Option<String>,
    /// Temporal window weights, odd count, centre = this frame, e.g. `1,2,1`; `1` disables
    /// (a list schedule works too) [default: 1].
    #[arg(long, value_name = "LIST")]
    pub temporal_superimpose_alpha_list: Option<String>,
    /// Keep the seed for every frame instead of stepping it by batch_size*batch_count.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub fix_seed: Option<bool>,
    /// Keep the subseed for every frame.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub fix_subseed: Option<bool>,
    /// Also write every loop's frames to OUT/loop-K/ (and a video per loop with a video output).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub save_every_loop: Option<bool>,
    /// Keep the source where the mask is black (masks: --mask-directory, else the alpha channel).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub use_mask: Option<bool>,
    /// A folder of masks named like the frames, or one mask image for all frames.
    #[arg(long, value_name = "PATH")]
    pub mask_directory: Option<PathBuf>,
    /// Read each frame's prompt from FRAME.txt (text after `--neg` = negative prompt).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub read_prompt_from_txt: Option<bool>,
    /// Folder of the .txt prompts, named like the extracted frames (needed for a video input).
    #[arg(long, value_name = "DIR")]
    pub prompt_dir: Option<PathBuf>,
    /// Output frame rate; also writes OUT/loopback.mp4 unless --output-video names the video.
    #[arg(long, value_parser = parse_rate)]
    pub output_frame_rate: Option<f64>,
    /// Also encode the result into this video (.mp4, .webm, .gif, .apng).
    #[arg(long, value_name = "FILE")]
    pub output_video: Option<PathBuf>,
    /// Video quality: lower is better [default: 25].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=63))]
    pub crf: Option<u32>,
    /// Schedule for the denoising strength, e.g. `max(0.1, 0.4-0.02*loop_i)`.
    #[arg(long, value_name = "EXPR")]
    pub denoising_schedule: Option<String>,
    /// Schedule for the CFG scale.
    #[arg(long, value_name = "EXPR")]
    pub cfg_schedule: Option<String>,
    /// Schedule for the sampling steps.
    #[arg(long, value_name = "EXPR")]
    pub steps_schedule: Option<String>,
    /// Schedule for the seed.
    #[arg(long, value_name = "EXPR")]
    pub seed_schedule: Option<String>,
    /// Schedule for the subseed.
    #[arg(long, value_name = "EXPR")]
    pub subseed_schedule: Option<String>,
    /// Schedule for the subseed strength.
    #[arg(long, value_name = "EXPR")]
    pub subseed_strength_schedule: Option<String>,
    /// Schedule for the prompt (plain text or a string expression).
    #[arg(long, value_name = "EXPR")]
    pub prompt_schedule: Option<String>,
    /// Schedule for the negative prompt.
    #[arg(long, value_name = "EXPR")]
    pub negative_prompt_schedule: Option<String>,
    /// Schedule for the batch count.
    #[arg(long, value_name = "EXPR")]
    pub batch_count_schedule: Option<String>,
}

impl LoopbackCmd {
    /// The effective settings: defaults, then `--config`, then the flags given.
    pub fn settings(&self) -> rotograph::Result<Settings> {
        let mut s = self
            .common
            .settings(self.input.as_deref(), Some(&self.output))?;
        let a = &self.loopback;
        if a.output_frame_rate.is_some() {
            s.encode.output_frame_rate = a.output_frame_rate;
        }
        set(&mut s.encode.crf, a.crf);
        // `--mask-dir` of the other commands means the same here.
        if let Some(d) = s.mask_dir.take() {
            s.loopback.mask_directory = Some(d);
            s.loopback.use_mask = true;
        }
        let l = &mut s.loopback;
        set(&mut l.loop_n, a.loop_n);
        set(&mut l.superimpose_alpha, a.superimpose_alpha.clone());
        set(
            &mut l.temporal_superimpose_alpha_list,
            a.temporal_superimpose_alpha_list.clone(),
        );
        set(&mut l.fix_seed, a.fix_seed);
        set(&mut l.fix_subseed, a.fix_subseed);
        set(&mut l.save_every_loop, a.save_every_loop);
        set(&mut l.use_mask, a.use_mask);
        set(&mut l.read_prompt_from_txt, a.read_prompt_from_txt);
        for (slot, value) in [
            (&mut l.mask_directory, &a.mask_directory),
            (&mut l.prompt_dir, &a.prompt_dir),
            (&mut l.output_video, &a.output_video),
        ] {
            if value.is_some() {
                *slot = value.clone();
            }
        }
        for (slot, value) in [
            (&mut l.denoising_schedule, &a.denoising_schedule),
            (&mut l.cfg_schedule, &a.cfg_schedule),
            (&mut l.steps_schedule, &a.steps_schedule),
            (&mut l.seed_schedule, &a.seed_schedule),
            (&mut l.subseed_schedule, &a.subseed_schedule),
            (
                &mut l.subseed_strength_schedule,
                &a.subseed_strength_schedule,
            ),
            (&mut l.prompt_schedule, &a.prompt_schedule),
            (&mut l.negative_prompt_schedule, &a.negative_prompt_schedule),
            (&mut l.batch_count_schedule, &a.batch_count_schedule),
        ] {
            if value.is_some() {
                *slot = value.clone();
            }
        }
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_and_size_parsing() {
        assert_eq!(parse_fps("12").unwrap(), FpsArg::Rate(12.0));
        assert_eq!(parse_fps("source").unwrap(), FpsArg::Source);
        match parse_fps("30000/1001").unwrap() {
            FpsArg::Rate(r) => assert!((r - 29.97).abs() < 0.01),
            _ => panic!(),
        }
        assert!(parse_fps("0").is_err());
        assert!(parse_fps("fast").is_err());
        assert_eq!(parse_size("512x288").unwrap(), (512, 288));
        assert!(parse_size("512").is_err());
        assert!(parse_size("0x5").is_err());
    }

    #[test]
    fn flags_override_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "style = \"ink\"\n[img2img]\ndenoise = 0.3\nseed = 5\nclip_skip = 3\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "rotograph",
            "stylize",
            "in",
            "-o",
            "out",
            "--config",
            cfg.to_str().unwrap(),
            "--seed",
            "9",
            "--clip-skip",
            "2",
        ]);
        let Cmd::Stylize(a) = cli.cmd else { panic!() };
        let s = a
            .common
            .settings(a.input.as_deref(), Some(&a.output))
            .unwrap();
        assert_eq!(s.style, Style::Ink);
        assert_eq!(s.img2img.denoise, 0.3);
        assert_eq!(s.img2img.seed, 9);
        assert_eq!(s.img2img.clip_skip, 2);
    }
}

/// `rotograph flow`.
#[derive(Debug, Args)]
pub struct FlowCmd {
    /// Two images (flow from the first to the second), or one frame folder or video.
    #[arg(required = true, num_args = 1..=2, value_name = "A [B] | DIR | VIDEO")]
    pub inputs: Vec<PathBuf>,
    /// Output: a .flo file for two images, a folder for a sequence.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Colour-wheel PNG of the flow: a file for two images; for a sequence, a flag that writes
    /// NAME.png beside each NAME.flo.
    #[arg(long, value_name = "PNG", num_args = 0..=1)]
    #[allow(clippy::option_option)]
    pub viz: Option<Option<PathBuf>>,
    /// Also write the backward flow (second → first): B.flo-style `NAME.back.flo` for a
    /// sequence, `<output stem>.back.flo` for two images.
    #[arg(long)]
    pub backward: bool,
    /// Speed/accuracy preset.
    #[arg(long, value_enum, default_value_t = FlowPresetArg::Medium)]
    pub preset: FlowPresetArg,
    /// Finest pyramid level of the patch search (0: full resolution).
    #[arg(long, value_name = "N")]
    pub finest_level: Option<usize>,
    /// Patch side in pixels.
    #[arg(long, value_name = "PX")]
    pub patch_size: Option<usize>,
    /// Distance between patches in pixels.
    #[arg(long, value_name = "PX")]
    pub patch_stride: Option<usize>,
    /// Gauss-Newton iterations per patch.
    #[arg(long, value_name = "N")]
    pub patch_iterations: Option<usize>,
    /// Variational refinement iterations per level (0: off).
    #[arg(long, value_name = "N")]
    pub refine_iterations: Option<usize>,
    /// Smoothness weight of the refinement.
    #[arg(long)]
    pub alpha: Option<f32>,
    /// Refinement iterations on the levels finer than --finest-level (0: off).
    #[arg(long, value_name = "N")]
    pub upsampled_refine_iterations: Option<usize>,
    /// Inner SOR sweeps per refinement iteration.
    #[arg(long, value_name = "N")]
    pub sor_iterations: Option<usize>,
    #[command(flatten)]
    pub extract: ExtractArgs,
}

/// `--preset` values of `rotograph flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowPresetArg {
    /// Half resolution, sparser patches.
    Fast,
    /// The default.
    Medium,
    /// Full resolution patch search.
    Fine,
}

impl FlowCmd {
    /// The engine parameters: the preset with the knobs given.
    pub fn params(&self) -> rotograph::flow::FlowParams {
        use rotograph::flow::FlowParams;
        let mut p = FlowParams::preset(self.preset.preset());
        set(&mut p.finest_level, self.finest_level);
        set(&mut p.patch_size, self.patch_size);
        set(&mut p.patch_stride, self.patch_stride);
        set(&mut p.patch_iterations, self.patch_iterations);
        set(&mut p.refine_iterations, self.refine_iterations);
        set(&mut p.alpha, self.alpha);
        set(
            &mut p.upsampled_refine_iterations,
            self.upsampled_refine_iterations,
        );
        set(&mut p.sor_iterations, self.sor_iterations);
        p
    }
}

/// Flow-warped init and colour match (shared by `stylize`, `roto` and `loopback`).
#[derive(Debug, Args)]
pub struct WarpInitArgs {
    /// Blend the previous stylized frame, warped along the source's optical flow, into each
    /// frame's init image with this weight 0..1 where the flow is reliable (0 = off). Frames
    /// are then stylized in order [default: 0].
    #[arg(long, value_name = "STRENGTH")]
    pub warp_init: Option<f32>,
    /// Histogram-match each output in Lab to the first stylized frame or to its source frame,
    /// against colour drift [default: none].
    #[arg(long, value_enum)]
    pub color_match: Option<ColorMatchArg>,
}

impl WarpInitArgs {
    /// Overrides the settings with the flags given.
    pub fn apply(&self, s: &mut Settings) {
        set(&mut s.warp_init, self.warp_init);
        set(&mut s.color_match, self.color_match.map(ColorMatch::from));
    }
}

/// `--color-match` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorMatchArg {
    /// The first stylized frame.
    First,
    /// Each frame's source frame.
    Source,
    /// No colour matching.
    None,
}

impl From<ColorMatchArg> for ColorMatch {
    fn from(c: ColorMatchArg) -> Self {
        match c {
            ColorMatchArg::First => ColorMatch::First,
            ColorMatchArg::Source => ColorMatch::Source,
            ColorMatchArg::None => ColorMatch::None,
        }
    }
}

/// `rotograph check`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 report made (also when frames are flagged, unless \
--fail-on-flagged), 3 frames flagged with --fail-on-flagged, 1 failure, 2 bad usage or input \
(mismatched frames or sizes), 130 interrupted."
)]
pub struct CheckCmd {
    /// The stylized frames: a folder or a video.
    #[arg(value_name = "STYLIZED")]
    pub stylized: PathBuf,
    /// The source they were made from: a folder or a video (read with the frame flags below).
    #[arg(long, value_name = "ORIGINAL")]
    pub source: PathBuf,
    /// Write the report as JSON to this file (the global --json prints progress and the
    /// report as JSON lines on stdout instead).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write a PNG plot of the warping error over time, flagged frames in red.
    #[arg(long, value_name = "PNG")]
    pub plot: Option<PathBuf>,
    /// Size of the plot.
    #[arg(long, value_name = "WxH", value_parser = parse_size, default_value = "960x320")]
    pub plot_size: (u32, u32),
    /// Flag a frame when both of its pairs exceed K times the warping error around it.
    #[arg(long, value_name = "K", default_value_t = rotograph::temporal::check::DEFAULT_THRESHOLD)]
    pub threshold: f64,
    /// Optical flow preset for the source motion.
    #[arg(long, value_enum, default_value_t = FlowPresetArg::Medium)]
    pub flow_preset: FlowPresetArg,
    /// How stylized frames are paired with source frames.
    #[arg(long = "match", value_enum, default_value_t = MatchArg::Auto)]
    pub matching: MatchArg,
    /// Exit with code 3 when any frame is flagged (for scripts).
    #[arg(long)]
    pub fail_on_flagged: bool,
    #[command(flatten)]
    pub extract: ExtractArgs,
}

/// `--match` values of `rotograph check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchArg {
    /// By name when the first frames' names agree, else by order.
    Auto,
    /// Every stylized frame has its source frame's name.
    Name,
    /// The n-th stylized frame goes with the n-th source frame.
    Order,
}

impl FlowPresetArg {
    /// The flow engine's preset.
    pub fn preset(self) -> rotograph::flow::Preset {
        use rotograph::flow::Preset;
        match self {
            FlowPresetArg::Fast => Preset::Fast,
            FlowPresetArg::Medium => Preset::Medium,
            FlowPresetArg::Fine => Preset::Fine,
        }
    }
}

impl CheckCmd {
    /// The library options.
    pub fn options(&self) -> rotograph::temporal::check::CheckOptions {
        use rotograph::temporal::check::{CheckOptions, Matching};
        CheckOptions {
            params: rotograph::flow::FlowParams::preset(self.flow_preset.preset()),
            threshold: self.threshold,
            matching: match self.matching {
                MatchArg::Auto => Matching::Auto,
                MatchArg::Name => Matching::Name,
                MatchArg::Order => Matching::Order,
            },
        }
    }
}

/// `rotograph keys`.
#[derive(Debug, Args)]
pub struct KeysCmd {
    /// The frames: a folder or a video.
    #[arg(value_name = "FRAMES")]
    pub input: PathBuf,
    /// Write the key list here (one line per key: `NAME reason[,reason]`).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the keys and every frame's measures as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also a key every N frames.
    #[arg(long, value_name = "N")]
    pub every: Option<usize>,
    /// Fewest frames between a motion key and any other key.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub min_gap: usize,
    /// Colour-histogram change (0..1) that starts a new shot.
    #[arg(long, value_name = "C", default_value_t = 0.35)]
    pub cut_threshold: f64,
    /// Rise and fall of the motion around a rest pose, as a fraction of the shot's largest.
    #[arg(long, value_name = "F", default_value_t = 0.25)]
    pub motion_delta: f64,
    /// Optical flow preset for the motion.
    #[arg(long, value_enum, default_value_t = FlowPresetArg::Fast)]
    pub flow_preset: FlowPresetArg,
    #[command(flatten)]
    pub extract: ExtractArgs,
}

impl KeysCmd {
    /// The library options.
    pub fn options(&self) -> rotograph::temporal::keys::KeyOptions {
        rotograph::temporal::keys::KeyOptions {
            params: rotograph::flow::FlowParams::preset(self.flow_preset.preset()),
            cut_threshold: self.cut_threshold,
            motion_delta: self.motion_delta,
            min_gap: self.min_gap,
            every: self.every,
        }
    }
}

/// `rotograph propagate`.
#[derive(Debug, Args)]
pub struct PropagateCmd {
    /// The stylized keyframe (single-image mode).
    #[arg(long, value_name = "PNG", required_unless_present = "frames")]
    pub style: Option<PathBuf>,
    /// A guide pair: the image aligned with the key, then the one aligned with the output.
    /// Repeat for more guides (single-image mode).
    #[arg(
        long,
        num_args = 2,
        value_names = ["SOURCE", "TARGET"],
        required_unless_present = "frames"
    )]
    pub guide: Vec<PathBuf>,
    /// Video mode: the folder of source frames.
    #[arg(long, value_name = "DIR", requires = "keys", conflicts_with_all = ["style", "guide", "weight"])]
    pub frames: Option<PathBuf>,
    /// Video mode: the folder of stylized keys, each named like the frame it stylizes.
    #[arg(long, value_name = "DIR", requires = "frames")]
    pub keys: Option<PathBuf>,
    /// Video mode: masks named like the frames (white: stylize; black: the source frame shows).
    #[arg(long, value_name = "DIR", requires = "frames")]
    pub mask_dir: Option<PathBuf>,
    /// Video mode: weight of the colour guide (key's frame → current frame).
    #[arg(long, default_value_t = 6.0)]
    pub color_weight: f32,
    /// Video mode: weight of the edge guide (blurred gradient magnitude of the frames); 0: off.
    #[arg(long, default_value_t = rotograph::temporal::propagate::video::EDGE_WEIGHT)]
    pub edge_weight: f32,
    /// Video mode: weight of the positional guide (coordinates carried by optical flow).
    #[arg(long, default_value_t = 2.0)]
    pub position_weight: f32,
    /// Video mode: weight of the temporal guide (previous output warped by optical flow).
    #[arg(long, default_value_t = 1.0)]
    pub temporal_weight: f32,
    /// Video mode: how the results of two keys are blended between them.
    #[arg(long, value_enum, default_value_t = BlendArg::Histogram)]
    pub blend: BlendArg,
    /// Weight of a guide, in the order of the --guide flags (the first --weight is guide 1's,
    /// and so on); guides without one weigh 1.
    #[arg(long, value_name = "W")]
    pub weight: Vec<f32>,
    /// Output image (PNG); in video mode, the output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Weight of the style term (the synthesis against the key).
    #[arg(long, default_value_t = 1.0)]
    pub style_weight: f32,
    /// Patch side in pixels (odd).
    #[arg(long, default_value_t = 5)]
    pub patch_size: usize,
    /// Pyramid levels (default: automatic, the coarsest level keeps 2·patch+1 pixels).
    #[arg(long, value_name = "N")]
    pub pyramid_levels: Option<usize>,
    /// Search-vote iterations per pyramid level.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub search_vote_iters: usize,
    /// PatchMatch iterations per search.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub patchmatch_iters: usize,
    /// Weight of the uniformity term (stops one key patch from being used everywhere).
    #[arg(long, default_value_t = 3500.0)]
    pub uniformity: f32,
    /// Finish with an extra pass of 3x3 patches.
    #[arg(long)]
    pub extra_pass_3x3: bool,
    /// Seed of the random search (same seed, same output).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl PropagateCmd {
    /// The engine parameters.
    pub fn params(&self) -> rotograph::temporal::propagate::PropagateParams {
        rotograph::temporal::propagate::PropagateParams {
            patch_size: self.patch_size,
            pyramid_levels: self.pyramid_levels,
            search_vote_iters: self.search_vote_iters,
            patchmatch_iters: self.patchmatch_iters,
            uniformity: self.uniformity,
            style_weight: self.style_weight,
            extra_pass_3x3: self.extra_pass_3x3,
            seed: self.seed,
        }
    }
}

/// `rotograph propagate --blend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BlendArg {
    /// Error-aware weights and the histogram-preserving blend.
    Histogram,
    /// The histogram-preserving blend plus the gradient-domain fix (the gradients of the
    /// lower-error side, screened Poisson solve).
    Gradient,
}

impl From<BlendArg> for rotograph::temporal::propagate::Blend {
    fn from(b: BlendArg) -> Self {
        match b {
            BlendArg::Histogram => Self::Histogram,
            BlendArg::Gradient => Self::Gradient,
        }
    }
}

/// `rotograph interpolate`.
#[derive(Debug, Args)]
pub struct InterpolateCmd {
    /// A frame folder or video (with --factor or --fps), or two keyframe images (with --count).
    #[arg(required = true, num_args = 1..=2, value_name = "DIR | VIDEO | A B")]
    pub inputs: Vec<PathBuf>,
    /// Output folder; frames are written as 00001.png, 00002.png, ...
    #[arg(short, long)]
    pub output: PathBuf,
    /// Multiply the frame rate by N: N-1 in-betweens after every frame but the last.
    #[arg(long, value_name = "N", conflicts_with = "fps")]
    pub factor: Option<usize>,
    /// Resample to this frame rate (frames per second).
    #[arg(long, value_name = "FPS")]
    pub fps: Option<f64>,
    /// Two-image mode: the number of in-betweens to make between A and B.
    #[arg(long, value_name = "N", conflicts_with_all = ["factor", "fps"])]
    pub count: Option<usize>,
    /// Frame rate of an image folder (videos carry theirs); needed with --fps for folders.
    #[arg(long, value_name = "FPS")]
    pub input_fps: Option<f64>,
    /// Read at most this many source frames.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<usize>,
    /// Bring the frames to this size first.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Flow speed/accuracy preset (fast wins on quality and speed in BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = FlowPresetArg::Fast)]
    pub preset: FlowPresetArg,
}

/// `rotograph deflicker`.
#[derive(Debug, Args)]
pub struct DeflickerCmd {
    /// The stylized frames: a folder of images (or a video).
    pub stylized: PathBuf,
    /// The original footage they were made from: a frame folder or video, taken at the
    /// stylized frames' size unless --size is given (use the --fps etc. used to extract it).
    #[arg(long, value_name = "DIR|VIDEO")]
    pub source: PathBuf,
    /// Output folder: one PNG per stylized frame, named like it.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Pull toward the motion-compensated previous output: 0 = off (exact copy), about 1
    /// removes colour flicker, 10..40 also steadies fine detail [default: 20].
    #[arg(long)]
    pub strength: Option<f32>,
    /// How fast the overall colour follows the stylized frames (0: keep the first frame's)
    /// [default: 0.3 x strength].
    #[arg(long)]
    pub anchor: Option<f32>,
    /// Let changes of the source itself through: the pull fades where the source differs from
    /// its previous frame along the flow by about this many levels (0..255). Helps on clean
    /// rendered sources, hurts on noisy footage [default: 0, off].
    #[arg(long, value_name = "LEVELS")]
    pub source_sigma: Option<f32>,
    /// Masks named like the frames: white = deflicker, black = keep the stylized pixel.
    #[arg(long, value_name = "DIR")]
    pub mask_dir: Option<PathBuf>,
    /// Speed/accuracy preset of the source flow.
    #[arg(long, value_enum, default_value_t = FlowPresetArg::Medium)]
    pub flow_preset: FlowPresetArg,
    #[command(flatten)]
    pub extract: ExtractArgs,
}

impl DeflickerCmd {
    /// The deflicker knobs: the defaults with the flags given.
    pub fn params(&self) -> rotograph::temporal::deflicker::DeflickerParams {
        use rotograph::flow::FlowParams;
        let mut p = rotograph::temporal::deflicker::DeflickerParams {
            flow: FlowParams::preset(self.flow_preset.preset()),
            ..Default::default()
        };
        if let Some(s) = self.strength {
            p.strength = s;
            p.anchor = 0.3 * s;
        }
        set(&mut p.anchor, self.anchor);
        set(&mut p.source_sigma, self.source_sigma);
        p
    }
}
