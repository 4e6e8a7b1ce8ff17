//! The whole `rotograph loopback` job: a frame folder, video or single image through
//! [`run`](super::run) into an output folder of PNG frames named like the inputs (plus, on
//! request, a video and every loop's frames), resuming only work done with the same settings.

use super::{
    read_prompt_file, run, store_source, FolderStore, FrameInputs, FrameStore, LoopbackSettings,
    MaskSource, Plan, RepeatImage,
};
use crate::error::{Error, Result};
use crate::frames::{self, Frame, FrameSource};
use crate::pipeline::{make_stylizer, Settings};
use crate::progress::{Event, Progress};
use crate::run::{atomic_write, hash_bytes, SETTINGS_NAME};
use crate::stylize::Stylizer;
use crate::video::{EncodeOptions, ExtractOptions};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `[loopback]` table of `rotograph.toml`: Video Loopback's parameters in snake_case.
/// `max_frames`, `extract_nth_frame` and `output_frame_rate` are the `[extract]` / `[encode]`
/// settings, `mask_threshold` and the img2img parameters the top-level ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopbackConfig {
    /// Number of passes over the clip.
    pub loop_n: usize,
    /// Weight of the new render against the previous pass: a number or a schedule.
    pub superimpose_alpha: String,
    /// Temporal window weights, e.g. `1,2,1` or a list schedule; `1` or empty disables.
    pub temporal_superimpose_alpha_list: String,
    /// Keep the seed for every frame.
    pub fix_seed: bool,
    /// Keep the subseed for every frame.
    pub fix_subseed: bool,
    /// Write every loop's frames to `loop-K/` (and a video per loop when one is written).
    pub save_every_loop: bool,
    /// Keep the source where the mask is black.
    pub use_mask: bool,
    /// Masks: a folder (one per frame, named like the frames) or one image; none = alpha.
    pub mask_directory: Option<PathBuf>,
    /// Read each frame's prompt from a `.txt` named like the frame.
    pub read_prompt_from_txt: bool,
    /// Folder of the `.txt` prompts (needed for a video input); default: beside the frames.
    pub prompt_dir: Option<PathBuf>,
    /// Output video (any container `encode` knows); default `OUT/loopback.mp4` when
    /// `output_frame_rate` is set, else none.
    pub output_video: Option<PathBuf>,
    /// Schedule for the denoising strength.
    pub denoising_schedule: Option<String>,
    /// Schedule for the CFG scale.
    pub cfg_schedule: Option<String>,
    /// Schedule for the sampling steps.
    pub steps_schedule: Option<String>,
    /// Schedule for the seed.
    pub seed_schedule: Option<String>,
    /// Schedule for the subseed.
    pub subseed_schedule: Option<String>,
    /// Schedule for the subseed strength.
    pub subseed_strength_schedule: Option<String>,
    /// Schedule for the prompt.
    pub prompt_schedule: Option<String>,
    /// Schedule for the negative prompt.
    pub negative_prompt_schedule: Option<String>,
    /// Schedule for the batch count.
    pub batch_count_schedule: Option<String>,
}

impl Default for LoopbackConfig {
    fn default() -> Self {
        let d = LoopbackSettings::default();
        LoopbackConfig {
            loop_n: d.loop_n,
            superimpose_alpha: d.superimpose_alpha,
            temporal_superimpose_alpha_list: d.temporal_superimpose,
            fix_seed: false,
            fix_subseed: false,
            save_every_loop: false,
            use_mask: false,
            mask_directory: None,
            read_prompt_from_txt: false,
            prompt_dir: None,
            output_video: None,
            denoising_schedule: None,
            cfg_schedule: None,
            steps_schedule: None,
            seed_schedule: None,
            subseed_schedule: None,
            subseed_strength_schedule: None,
            prompt_schedule: None,
            negative_prompt_schedule: None,
            batch_count_schedule: None,
        }
    }
}

impl LoopbackConfig {
    /// The engine's settings; `settings.img2img` must have its seeds resolved.
    pub fn engine_settings(&self, settings: &Settings) -> LoopbackSettings {
        let list = self.temporal_superimpose_alpha_list.trim();
        // Video Loopback writes the list bare (`1,2,1`); the schedule language wants `[1,2,1]`.
        let temporal = if list.is_empty() {
            "[]".to_string()
        } else if list.contains(',') && !list.starts_with('[') && !list.contains(" if ") {
            format!("[{list}]")
        } else {
            list.to_string()
        };
        LoopbackSettings {
            img2img: settings.img2img.clone(),
            loop_n: self.loop_n,
            superimpose_alpha: self.superimpose_alpha.clone(),
            temporal_superimpose: temporal,
            fix_seed: self.fix_seed,
            fix_subseed: self.fix_subseed,
            mask_threshold: settings.mask_threshold,
            denoising: self.denoising_schedule.clone(),
            cfg: self.cfg_schedule.clone(),
            steps: self.steps_schedule.clone(),
            seed: self.seed_schedule.clone(),
            subseed: self.subseed_schedule.clone(),
            subseed_strength: self.subseed_strength_schedule.clone(),
            prompt: self.prompt_schedule.clone(),
            negative_prompt: self.negative_prompt_schedule.clone(),
            batch_count: self.batch_count_schedule.clone(),
            warp_init: settings.warp_init,
            color_match: settings.color_match,
        }
    }
}

/// What a loopback job did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopbackReport {
    /// Frames in the clip.
    pub frames: usize,
    /// Loops.
    pub loops: usize,
    /// (loop, frame) renders done by this run.
    pub rendered: usize,
    /// (loop, frame) renders found done by an earlier run with the same settings.
    pub skipped: usize,
    /// Whether an earlier run's stored frames were discarded because the settings changed.
    pub discarded_stale: bool,
    /// The videos written.
    pub videos: Vec<PathBuf>,
}

/// Name of the folder inside the output that holds the loops' f32 frames.
pub const STORE_DIR: &str = ".loopback-store";
const KEY_FILE: &str = "settings-key";

/// Counts rendered and skipped frames while passing events on.
struct Counting<'a> {
    inner: &'a dyn Progress,
    rendered: AtomicUsize,
    skipped: AtomicUsize,
}

impl Progress for Counting<'_> {
    fn event(&self, e: Event) {
        if let Event::Frame { skipped, .. } = &e {
            let c = if *skipped {
                &self.skipped
            } else {
                &self.rendered
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.event(e);
    }
    fn should_stop(&self) -> bool {
        self.inner.should_stop()
    }
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg", "webp"].contains(&e.to_ascii_lowercase().as_str()))
}

/// What identifies a file's content without reading it: its path, length and modification time.
#[derive(Serialize)]
pub(crate) struct FileStamp {
    path: PathBuf,
    len: u64,
    modified_ns: u128,
}

/// Stamps of `path` (a file) or of every file directly in it (a folder: frames, masks, prompt
/// files), sorted by name, so that editing, adding or removing one changes the resume key.
pub(crate) fn file_stamps(path: &Path) -> Vec<FileStamp> {
    let stamp = |p: PathBuf| {
        let meta = std::fs::metadata(&p).ok()?;
        meta.is_file().then(|| FileStamp {
            len: meta.len(),
            modified_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
            path: p,
        })
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        entries.into_iter().filter_map(stamp).collect()
    } else {
        stamp(path.to_path_buf()).into_iter().collect()
    }
}

/// Hash of everything that decides the stored loop frames: the render settings, the loopback
/// parameters, the input, how frames are taken from it, masks and prompt files.
fn store_key(input: &Path, settings: &Settings) -> String {
    #[derive(Serialize)]
    struct Key<'a> {
        version: u32,
        render: String,
        input: PathBuf,
        extract: &'a ExtractOptions,
        allow_mixed_sizes: bool,
        loopback: LoopbackConfig,
        files: Vec<FileStamp>,
    }
    let mut loopback = settings.loopback.clone();
    // Where the results go does not change them.
    loopback.output_video = None;
    let mut files = file_stamps(input);
    for p in [&loopback.mask_directory, &loopback.prompt_dir]
        .into_iter()
        .flatten()
    {
        files.extend(file_stamps(p));
    }
    let key = Key {
        version: 2,
        render: settings.render_hash(),
        input: input.canonicalize().unwrap_or_else(|_| input.to_path_buf()),
        extract: &settings.extract,
        allow_mixed_sizes: settings.allow_mixed_sizes,
        loopback,
        files,
    };
    hash_bytes(
        serde_json::to_string(&key)
            .expect("key serializes")
            .as_bytes(),
    )
}

/// The engine's schedule names as the `[loopback]` table spells them.
const USER_NAMES: [(&str, &str); 10] = [
    ("temporal_superimpose", "temporal_superimpose_alpha_list"),
    ("denoising", "denoising_schedule"),
    ("cfg", "cfg_schedule"),
    ("steps", "steps_schedule"),
    ("seed", "seed_schedule"),
    ("subseed", "subseed_schedule"),
    ("subseed_strength", "subseed_strength_schedule"),
    ("prompt", "prompt_schedule"),
    ("negative_prompt", "negative_prompt_schedule"),
    ("batch_count", "batch_count_schedule"),
];

/// Renames the engine's parameter names in `err` to the settings' (and so the flags') names.
fn user_names(err: Error) -> Error {
    let rename = |text: &str| -> String {
        for (engine, user) in USER_NAMES {
            if text == engine {
                return user.to_string();
            }
            let quoted = format!("`{engine}`");
            if text.contains(&quoted) {
                return text.replace(&quoted, &format!("`{user}`"));
            }
        }
        text.to_string()
    };
    match err {
        Error::InvalidSetting { name, message } => Error::InvalidSetting {
            name: rename(&name),
            message,
        },
        Error::Parse {
            what,
            text,
            column,
            message,
        } => Error::Parse {
            what: rename(&what),
            text,
            column,
            message,
        },
        Error::Evaluate {
            what,
            text,
            column,
            message,
        } => Error::Evaluate {
            what: rename(&what),
            text,
            column,
            message,
        },
        other => other,
    }
}

/// Points an error in a bare list (`1,2,1`, handed to the engine as `[1,2,1]`) at the text
/// the user wrote.
fn unwrap_list_column(err: Error, wrapped: bool) -> Error {
    let list = "`temporal_superimpose_alpha_list`";
    match err {
        Error::Parse {
            what,
            text,
            column,
            message,
        } if wrapped && what.contains(list) => Error::Parse {
            what,
            text: unbracket(&text),
            column: column.saturating_sub(1).max(1),
            message,
        },
        Error::Evaluate {
            what,
            text,
            column,
            message,
        } if wrapped && what.contains(list) => Error::Evaluate {
            what,
            text: unbracket(&text),
            column: column.saturating_sub(1).max(1),
            message,
        },
        other => other,
    }
}

fn unbracket(text: &str) -> String {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
        .to_string()
}

/// Opens the store in `OUT/.loopback-store`, emptying it first when it holds frames of other
/// settings. Returns the store and whether stale frames were discarded.
fn open_store(output: &Path, key: &str, keep_every_loop: bool) -> Result<(FolderStore, bool)> {
    let dir = output.join(STORE_DIR);
    let key_path = dir.join(KEY_FILE);
    let mut stale = false;
    if dir.exists() {
        let old = std::fs::read_to_string(&key_path).unwrap_or_default();
        if old.trim() != key {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            stale = true;
        }
    }
    let mut store = FolderStore::open(&dir)?;
    store.keep_every_loop = keep_every_loop;
    if !key_path.is_file() {
        atomic_write(&key_path, key.as_bytes())?;
    }
    Ok((store, stale))
}

/// `rotograph loopback`: loops `input` (a frame folder, a video, or one image repeated
/// `max_frames` times) `loop_n` times into `output`, a folder of PNGs named like the input
/// frames. Every schedule is checked before anything is read or rendered; a re-run with the
/// same settings resumes per loop and frame, a re-run with other settings renders again.
pub fn loopback(
    input: &Path,
    output: &Path,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<LoopbackReport> {
    let stylizer = make_stylizer(settings)?;
    loopback_with(input, output, settings, stylizer.as_ref(), progress)
}

/// [`loopback`] on a given backend (`settings.backend` names it in the stored settings and
/// the resume key; pass the backend it names, or a test backend).
pub fn loopback_with(
    input: &Path,
    output: &Path,
    settings: &Settings,
    stylizer: &dyn Stylizer,
    progress: &dyn Progress,
) -> Result<LoopbackReport> {
    let mut settings = settings.clone();
    settings.input = Some(input.to_path_buf());
    settings.output = Some(output.to_path_buf());
    let previous = std::fs::read_to_string(output.join(SETTINGS_NAME))
        .ok()
        .and_then(|t| Settings::from_toml(&t, &output.join(SETTINGS_NAME)).ok());
    settings.resolve_seeds(previous.as_ref());
    settings.validate()?;
    let lb = settings.loopback.clone();
    let engine = lb.engine_settings(&settings);
    // Parse errors before touching any file; evaluation errors once the clip's length is known.
    let wrapped = engine.temporal_superimpose != lb.temporal_superimpose_alpha_list;
    let user_names = |e: Error| unwrap_list_column(user_names(e), wrapped);
    engine.check_syntax().map_err(user_names)?;
    let is_image = input.is_file() && is_image_file(input);
    let is_video = input.is_file() && !is_image;
    if lb.read_prompt_from_txt && is_video && lb.prompt_dir.is_none() {
        return Err(Error::setting(
            "prompt_dir",
            "read_prompt_from_txt with a video input needs --prompt-dir, a folder of .txt files named like the extracted frames (00001.txt, ...)",
        ));
    }
    let mask_source = if lb.use_mask {
        Some(match &lb.mask_directory {
            None => MaskSource::Alpha,
            Some(p) if p.as_os_str().is_empty() => MaskSource::Alpha,
            Some(p) if p.is_dir() => MaskSource::Folder(p.clone()),
            Some(p) if p.is_file() => MaskSource::Single(p.clone()),
            Some(p) => {
                return Err(Error::bad_input(
                    p,
                    "mask_directory: no such folder or file; give a mask folder, one mask image, or nothing for the alpha channel",
                ))
            }
        })
    } else {
        None
    };
    std::fs::create_dir_all(output).map_err(|e| Error::io(output, e))?;
    if input.is_dir() && input.canonicalize().ok() == output.canonicalize().ok() {
        return Err(Error::bad_input(
            output,
            "the output folder is the input folder; choose another -o",
        ));
    }
    atomic_write(&output.join(SETTINGS_NAME), settings.to_toml().as_bytes())?;
    let key = store_key(input, &settings);
    let (mut store, stale) = open_store(output, &key, lb.save_every_loop)?;

    // Loop 0: the source, thinned and cut here (not by the reader) so every input kind agrees.
    let max_frames = settings.extract.max_frames;
    let mut source: Box<dyn FrameSource> = if is_image {
        let count = max_frames.ok_or_else(|| {
            Error::setting(
                "max_frames",
                "a single-image input is repeated max_frames times; give --max-frames",
            )
        })?;
        Box::new(RepeatImage::new(frames::read_frame(input)?, count))
    } else {
        let mut folder = settings.folder_options();
        folder.max_frames = None;
        let mut extract = settings.extract.clone();
        extract.max_frames = None;
        extract.extract_nth_frame = 1;
        frames::open_source(input, &folder, &extract)?
    };
    let (infos, has_alpha) = store_source(
        source.as_mut(),
        &mut store,
        max_frames,
        settings.extract.extract_nth_frame,
    )?;
    drop(source);
    let n = infos.len();
    let plan = Plan::new(&engine, n).map_err(user_names)?;

    let names: Vec<String> = infos.iter().map(|i| i.name.clone()).collect();
    let reader = RefCell::new(FolderStore::open(&output.join(STORE_DIR))?);
    let mask = |index: usize| -> Result<Option<image::GrayImage>> {
        let Some(ms) = &mask_source else {
            return Ok(None);
        };
        let src = reader.borrow_mut().get(0, index)?;
        let frame = Frame {
            image: src.to_rgba(),
            has_alpha,
        };
        ms.mask_for(&names[index], &frame).map(Some)
    };
    let prompt_dir: Option<PathBuf> = match (&lb.prompt_dir, is_image) {
        (Some(d), _) => Some(d.clone()),
        (None, true) => input.parent().map(Path::to_path_buf),
        (None, false) => Some(input.to_path_buf()),
    };
    let prompt = |index: usize| -> Result<Option<super::FramePrompt>> {
        if !lb.read_prompt_from_txt {
            return Ok(None);
        }
        let stem = if is_image {
            input.file_stem()
        } else {
            Path::new(&names[index]).file_stem()
        }
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
        let dir = prompt_dir.clone().unwrap_or_default();
        read_prompt_file(&dir.join(format!("{stem}.txt")))
    };
    let name = |index: usize| names[index].clone();
    let inputs = FrameInputs {
        mask: &mask,
        prompt: &prompt,
        name: &name,
    };
    let counting = Counting {
        inner: progress,
        rendered: AtomicUsize::new(0),
        skipped: AtomicUsize::new(0),
    };
    run(&plan, &mut store, &inputs, stylizer, &counting)?;

    // Outputs: the last loop in OUT, every loop in OUT/loop-K when asked, and videos.
    let video = lb.output_video.clone().or_else(|| {
        settings
            .encode
            .output_frame_rate
            .map(|_| output.join("loopback.mp4"))
    });
    let enc_opts = EncodeOptions {
        fps: settings.encode.output_frame_rate.unwrap_or(12.0),
        crf: settings.encode.crf,
        on: settings.encode.on,
        ..EncodeOptions::default()
    };
    let mut videos = Vec::new();
    let loops: Vec<usize> = if lb.save_every_loop {
        (1..=plan.loop_n()).collect()
    } else {
        vec![plan.loop_n()]
    };
    for loop_i in loops {
        let last = loop_i == plan.loop_n();
        let dirs: Vec<PathBuf> = if last && lb.save_every_loop {
            vec![output.to_path_buf(), output.join(format!("loop-{loop_i}"))]
        } else if last {
            vec![output.to_path_buf()]
        } else {
            vec![output.join(format!("loop-{loop_i}"))]
        };
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        for (index, info) in infos.iter().enumerate() {
            let img = store.get(loop_i, index)?;
            let png = frames::encode_png(&Frame {
                image: img.to_rgba(),
                has_alpha,
            })?;
            let file = Path::new(&info.name).with_extension("png");
            for dir in &dirs {
                atomic_write(&dir.join(&file), &png)?;
            }
        }
        if let Some(v) = &video {
            let target = if last {
                v.clone()
            } else {
                let stem = v.file_stem().unwrap_or_default().to_string_lossy();
                let ext = v.extension().unwrap_or_default().to_string_lossy();
                v.with_file_name(format!("{stem}-loop-{loop_i}.{ext}"))
            };
            let dir = dirs.last().expect("one folder at least");
            let files: Vec<PathBuf> = infos
                .iter()
                .map(|i| dir.join(Path::new(&i.name).with_extension("png")))
                .collect();
            crate::video::encode_files(&files, &target, &enc_opts, progress)?;
            videos.push(target);
        }
    }
    Ok(LoopbackReport {
        frames: n,
        loops: plan.loop_n(),
        rendered: counting.rendered.into_inner(),
        skipped: counting.skipped.into_inner(),
        discarded_stale: stale,
        videos,
    })
}
