//! ffmpeg process plumbing: locating the binaries, probing, decoding to raw RGB(A) through a pipe,
//! encoding H.264 / VP9-with-alpha / GIF / APNG, and muxing the source audio.
//!
//! The binaries are `ffmpeg` and `ffprobe` on the `PATH`, or the paths in `ROTOGRAPH_FFMPEG` /
//! `ROTOGRAPH_FFPROBE` (read at every start of a process).

mod decode;
mod encode;
mod probe;
mod process;
pub mod yuv;

pub(crate) use decode::check_options as check_extract_options;
pub use decode::{extract, VideoSource};
pub use encode::{encode_files, encode_folder, Encoder};
pub use probe::probe;

use crate::frames::{Exposure, Fit};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `ffprobe` tells about a video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Average frame rate.
    pub fps: f64,
    /// Duration in seconds, when known.
    pub duration: Option<f64>,
    /// Whether an audio stream exists.
    pub has_audio: bool,
    /// Whether the video stream has an alpha channel (e.g. yuva420p VP9).
    pub has_alpha: bool,
    /// Video codec name (`h264`, `vp9`...).
    pub codec: String,
    /// Decoded pixel format (`yuv420p`...), empty when unknown.
    pub pix_fmt: String,
    /// YUV matrix tag (`bt709`, `smpte170m`...), when the stream has one.
    pub color_space: Option<String>,
    /// Value range tag (`tv` or `pc`), when the stream has one.
    pub color_range: Option<String>,
}

/// How frames are taken from a video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractOptions {
    /// Frames per second to sample at (`-r 12/1`); `None` keeps every source frame (written
    /// `fps = "source"` in settings files, so that it survives a round trip).
    #[serde(with = "fps_setting")]
    pub fps: Option<f64>,
    /// Keep every n-th of the sampled frames (1 = all).
    pub extract_nth_frame: usize,
    /// Stop after this many frames.
    pub max_frames: Option<usize>,
    /// Start time in seconds.
    pub start: Option<f64>,
    /// Duration in seconds.
    pub duration: Option<f64>,
    /// Target size; `None` keeps the source size.
    pub size: Option<(u32, u32)>,
    /// How frames are fitted to `size`.
    pub fit: Fit,
    /// Round the size to this multiple (8 or 64). `None`: 8 when `size` is given, else unchanged.
    pub multiple: Option<u32>,
}

/// `fps` in settings files: a number, or `"source"` for the source's own rate.
mod fps_setting {
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Fps {
        Rate(f64),
        Word(String),
    }

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(r) => Fps::Rate(*r).serialize(s),
            None => Fps::Word("source".into()).serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Fps::deserialize(d)? {
            Fps::Rate(r) => Ok(Some(r)),
            Fps::Word(w) if w == "source" => Ok(None),
            Fps::Word(w) => Err(de::Error::custom(format!(
                "fps = \"{w}\": give a number of frames per second or \"source\""
            ))),
        }
    }
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            fps: Some(12.0),
            extract_nth_frame: 1,
            max_frames: None,
            start: None,
            duration: None,
            size: None,
            fit: Fit::Crop,
            multiple: None,
        }
    }
}

/// Output container/codec, chosen from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    /// H.264 (libx264, yuv420p) in MP4/MOV/MKV.
    H264,
    /// VP9 (libvpx-vp9) in WebM; yuva420p when frames have alpha.
    Vp9,
    /// Animated GIF with a generated palette.
    Gif,
    /// Animated PNG.
    Apng,
}

/// How frames are encoded into a video.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    /// Output frame rate.
    pub fps: f64,
    /// x264/VP9 constant rate factor (H.264 default 25).
    pub crf: u32,
    /// Mux the audio of this video.
    pub audio_from: Option<PathBuf>,
    /// Start of the audio span to take, seconds.
    pub audio_start: Option<f64>,
    /// Length of the audio span, seconds (default: the video's length).
    pub audio_duration: Option<f64>,
    /// Which frame each output frame shows; `None` shows each once.
    pub exposure: Option<Exposure>,
    /// Hold each frame this many output frames (`--on 2`). Ignored when `exposure` is set.
    pub on: usize,
    /// Force a container; `None` picks from the extension.
    pub container: Option<Container>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            fps: 12.0,
            crf: 25,
            audio_from: None,
            audio_start: None,
            audio_duration: None,
            exposure: None,
            on: 1,
            container: None,
        }
    }
}
