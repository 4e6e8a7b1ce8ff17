//! Decoding a video into frames through an ffmpeg raw pipe, and extracting frames to PNG.

use super::process::{failure_text, file_arg, read_full, Process};
use super::yuv::{yuv420p_len, yuv420p_to_rgba, Matrix, Range};
use super::{probe, ExtractOptions, VideoInfo};
use crate::error::{Error, Result};
use crate::frames::{
    fitted_size, format_pattern, frame_buffer, write_png, Fit, Frame, FrameInfo, FrameSource,
    DEFAULT_PATTERN,
};
use crate::progress::{Event, Progress};
use image::RgbaImage;
use rayon::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ChildStdout;

/// Largest frame side accepted for `size`.
const MAX_SIDE: u32 = 16384;

/// Decodes a video into frames through an ffmpeg raw pipe.
///
/// Frames are RGB (alpha 255) unless the video has alpha, in which case they are RGBA with
/// `has_alpha` set. Dropping the source stops ffmpeg.
pub struct VideoSource {
    path: PathBuf,
    info: VideoInfo,
    size: (u32, u32),
    alpha: bool,
    process: Option<Process>,
    stdout: Option<ChildStdout>,
    /// How the pipe's bytes become RGBA: `None` when ffmpeg sends RGBA itself, else the YUV
    /// matrix and range of the `yuv420p` frames it sends.
    yuv: Option<(Matrix, Range)>,
    /// One frame as it comes from the pipe.
    buf: Vec<u8>,
    next: usize,
    max_frames: Option<usize>,
    start: f64,
    /// Seconds between delivered frames, when known.
    step: Option<f64>,
    len_hint: Option<usize>,
    /// What ffmpeg complained about while still finishing successfully.
    warning: Option<String>,
}

/// Checks extraction options; errors name the setting.
pub(crate) fn check_options(opts: &ExtractOptions) -> Result<()> {
    if let Some(f) = opts.fps {
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            return Err(Error::setting(
                "fps",
                format!("{f} is not a positive frame rate; give e.g. 12, or leave it unset to keep every frame"),
            ));
        }
    }
    if opts.extract_nth_frame == 0 {
        return Err(Error::setting(
            "extract_nth_frame",
            "must be at least 1 (1 keeps every sampled frame, 2 every second one...)",
        ));
    }
    if let Some(s) = opts.start {
        if !(s.is_finite() && s >= 0.0) {
            return Err(Error::setting(
                "start",
                format!("{s} is not a time; give seconds from the start of the video (e.g. 1.5)"),
            ));
        }
    }
    if let Some(d) = opts.duration {
        if !(d.is_finite() && d > 0.0) {
            return Err(Error::setting(
                "duration",
                format!("{d} is not a positive number of seconds"),
            ));
        }
    }
    if opts.multiple == Some(0) {
        return Err(Error::setting(
            "multiple",
            "must be at least 1 (e.g. 8 or 64)",
        ));
    }
    if let Some((w, h)) = opts.size {
        if w > MAX_SIDE || h > MAX_SIDE {
            return Err(Error::setting(
                "size",
                format!("{w}x{h} is larger than {MAX_SIDE} pixels on a side"),
            ));
        }
    }
    Ok(())
}

/// The frame size delivered for a source of `src` size under `opts`.
pub(super) fn target_size(src: (u32, u32), opts: &ExtractOptions) -> (u32, u32) {
    match (opts.size, opts.multiple) {
        (Some(size), m) => fitted_size(src, Some(size), m.unwrap_or(8)),
        (None, Some(m)) => fitted_size(src, None, m),
        (None, None) => src,
    }
}

/// The `-vf` filter chain: frame-rate sampling, every n-th, then size and fit.
pub(super) fn filter_chain(
    opts: &ExtractOptions,
    src: (u32, u32),
    target: (u32, u32),
    alpha: bool,
) -> Vec<String> {
    let mut chain = Vec::new();
    if let Some(f) = opts.fps {
        // round=up: output frame k shows the source frame on screen at time k/fps (the last one
        // starting at or before it), which is what `FrameInfo::time` reports.
        chain.push(format!("fps={f}:round=up"));
    }
    if opts.extract_nth_frame > 1 {
        chain.push(format!("select=not(mod(n\\,{}))", opts.extract_nth_frame));
    }
    if target != src {
        let (w, h) = target;
        match opts.fit {
            Fit::Crop => {
                chain.push(format!(
                    "scale={w}:{h}:force_original_aspect_ratio=increase:flags=lanczos"
                ));
                chain.push(format!("crop={w}:{h}"));
            }
            Fit::Pad => {
                chain.push(format!(
                    "scale={w}:{h}:force_original_aspect_ratio=decrease:flags=lanczos"
                ));
                let color = if alpha { "black@0" } else { "black" };
                chain.push(format!("pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color={color}"));
            }
            Fit::Stretch => chain.push(format!("scale={w}:{h}:flags=lanczos")),
        }
        chain.push("setsar=1".into());
    }
    chain
}

/// Whether frames can come through the pipe as `yuv420p` and be converted here (2.7x fewer pipe
/// bytes than RGBA, and ffmpeg's converter stays idle): for 8-bit 4:2:0 limited-range streams of
/// the BT.601 or BT.709 matrix, without alpha (the caller also requires an even size, unscaled). Untagged streams are BT.601, as ffmpeg converts
/// them. Anything else goes through ffmpeg's own RGBA conversion.
pub(super) fn yuv_pipe_format(info: &VideoInfo) -> Option<(Matrix, Range)> {
    if info.has_alpha || info.pix_fmt != "yuv420p" {
        return None;
    }
    if !matches!(info.color_range.as_deref(), None | Some("tv")) {
        return None;
    }
    match info.color_space.as_deref() {
        None | Some("bt470bg" | "smpte170m") => Some((Matrix::Bt601, Range::Limited)),
        Some("bt709") => Some((Matrix::Bt709, Range::Limited)),
        Some(_) => None,
    }
}

/// The decoder's arguments when the probe finds the common case (an even-sized 8-bit 4:2:0
/// stream without alpha, piped as its own yuv420p), for starting it while ffprobe runs; `None`
/// when the arguments depend on the probe anyway (`size`, `multiple`).
fn guessed_args(path: &Path, opts: &ExtractOptions) -> Option<Vec<OsString>> {
    let yuv = Some((Matrix::Bt601, Range::Limited));
    (opts.size.is_none() && opts.multiple.is_none())
        .then(|| decoder_args(path, opts, "", (0, 0), (0, 0), false, yuv))
}

/// A decoder's arguments, its frame size and its pipe's YUV format (`None`: RGBA).
type DecoderPlan = (Vec<OsString>, (u32, u32), Option<(Matrix, Range)>);

/// The decoder's arguments for a probed video, with the delivered frame size and the pipe's
/// YUV format (`None`: RGBA).
fn probed_args(path: &Path, opts: &ExtractOptions, info: &VideoInfo) -> DecoderPlan {
    let src = (info.width, info.height);
    let size = target_size(src, opts);
    // RGBA when ffmpeg must convert (its converter fills the alpha byte faster than a copy
    // here would); else the stream's own yuv420p, converted here.
    // Not at odd sizes: ffmpeg converts those through its scaler (interpolated chroma), not
    // the nearest-chroma path that yuv420p_to_rgba follows. Not when resizing: scaled in
    // yuv420p, the frame would keep only a quarter of the scaled size's chroma, where
    // scaling straight to RGBA keeps it all.
    let even = size.0 % 2 == 0 && size.1 % 2 == 0;
    let yuv = yuv_pipe_format(info).filter(|_| even && size == src);
    let args = decoder_args(path, opts, &info.codec, src, size, info.has_alpha, yuv);
    (args, size, yuv)
}

/// ffmpeg's arguments for decoding `path` to raw frames of `size` on stdout: the stream's own
/// yuv420p when `yuv` is set, else RGBA. `codec` and `alpha` come from the probe.
fn decoder_args(
    path: &Path,
    opts: &ExtractOptions,
    codec: &str,
    src: (u32, u32),
    size: (u32, u32),
    alpha: bool,
    yuv: Option<(Matrix, Range)>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |s: &str| args.push(s.into());
    if let Some(s) = opts.start {
        push("-ss");
        push(&format!("{s}"));
    }
    if let Some(d) = opts.duration {
        push("-t");
        push(&format!("{d}"));
    }
    if alpha {
        // ffmpeg's native VP8/VP9 decoders drop the alpha channel; libvpx keeps it.
        match codec {
            "vp9" => ["-c:v", "libvpx-vp9"].iter().for_each(|s| push(s)),
            "vp8" => ["-c:v", "libvpx"].iter().for_each(|s| push(s)),
            _ => {}
        }
    }
    args.push("-i".into());
    args.push(file_arg(path));
    let mut push = |s: &str| args.push(s.into());
    push("-map");
    push("0:v:0");
    let chain = filter_chain(opts, src, size, alpha);
    if !chain.is_empty() {
        push("-vf");
        push(&chain.join(","));
    }
    push("-vsync");
    push("passthrough");
    if let Some(m) = opts.max_frames {
        push("-frames:v");
        push(&m.to_string());
    }
    push("-pix_fmt");
    push(if yuv.is_some() { "yuv420p" } else { "rgba" });
    push("-f");
    push("rawvideo");
    push("pipe:1");
    args
}

/// Estimated number of delivered frames.
fn estimate_len(info: &VideoInfo, opts: &ExtractOptions) -> Option<usize> {
    let rate = opts.fps.unwrap_or(info.fps);
    let start = opts.start.unwrap_or(0.0);
    let available = info.duration.map(|d| (d - start).max(0.0));
    let span = match (available, opts.duration) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    };
    let estimate = span.filter(|_| rate > 0.0).map(|s| {
        let sampled = (s * rate - 1e-6).ceil().max(0.0) as usize;
        sampled.div_ceil(opts.extract_nth_frame.max(1))
    });
    match (estimate, opts.max_frames) {
        (Some(e), Some(m)) => Some(e.min(m)),
        (None, Some(0)) => Some(0),
        (e, _) => e,
    }
}

impl VideoSource {
    /// Probes the video and starts ffmpeg.
    ///
    /// When the frame size does not depend on the probe (no `size`, no `multiple`), ffmpeg is
    /// started for the common case (the stream's own yuv420p) while ffprobe runs, and kept when
    /// the probe confirms it: the two start-ups overlap instead of adding up.
    pub fn open(path: &Path, opts: &ExtractOptions) -> Result<Self> {
        check_options(opts)?;
        let spawn = |args: &[OsString]| -> Result<Option<Process>> {
            match opts.max_frames {
                Some(0) => Ok(None),
                _ => Process::spawn(args, false, true).map(Some),
            }
        };
        let guess = guessed_args(path, opts);
        let early = match &guess {
            Some(args) => spawn(args)?,
            None => None,
        };
        let info = probe(path)?;
        if let (Some(s), Some(d)) = (opts.start, info.duration) {
            if s >= d {
                return Err(Error::setting(
                    "start",
                    format!(
                        "{s} s is past the end of {} ({d:.2} s long); give an earlier start",
                        path.display()
                    ),
                ));
            }
        }
        let (args, size, yuv) = probed_args(path, opts, &info);
        let alpha = info.has_alpha;
        // The early start is kept only when it was started with exactly these arguments.
        let mut process = match early {
            Some(p) if guess.as_ref() == Some(&args) => Some(p),
            wrong => {
                drop(wrong);
                spawn(&args)?
            }
        };
        let stdout = process.as_mut().and_then(Process::take_stdout);
        let frame_bytes = match yuv {
            Some(_) => yuv420p_len(size.0, size.1),
            None => size.0 as usize * size.1 as usize * 4,
        };
        let len_hint = estimate_len(&info, opts);
        let rate = opts.fps.unwrap_or(info.fps);
        let step = (rate > 0.0).then(|| opts.extract_nth_frame as f64 / rate);
        Ok(VideoSource {
            path: path.to_path_buf(),
            info,
            size,
            alpha,
            process,
            stdout,
            yuv,
            buf: vec![0; frame_bytes],
            next: 0,
            max_frames: opts.max_frames,
            start: opts.start.unwrap_or(0.0),
            step,
            len_hint,
            warning: None,
        })
    }

    /// What the probe found.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// ffmpeg's complaints when it finished the stream despite errors (a damaged or truncated
    /// file): the frames it delivered were decodable, but some may be missing. Known once
    /// [`FrameSource::next_frame`] returned `None`.
    pub fn decode_warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Stops ffmpeg early (enough frames read).
    fn stop(&mut self) {
        self.stdout = None;
        if let Some(p) = self.process.take() {
            let _ = p.kill();
        }
    }

    /// The stream ended: reap ffmpeg and report a failure.
    fn end(&mut self, partial: usize) -> Result<()> {
        self.stdout = None;
        let Some(p) = self.process.take() else {
            return Ok(());
        };
        let (status, tail) = p.wait()?;
        if !status.success() {
            return Err(Error::Ffmpeg {
                path: self.path.clone(),
                message: format!(
                    "decoding stopped after {} frames: {}",
                    self.next,
                    failure_text(status, &tail)
                ),
            });
        }
        if partial > 0 {
            return Err(Error::Ffmpeg {
                path: self.path.clone(),
                message: format!(
                    "ffmpeg delivered an incomplete frame {} ({partial} of {} bytes){}",
                    self.next + 1,
                    self.buf.len(),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; its last lines:\n{tail}")
                    }
                ),
            });
        }
        if self.next == 0 && !tail.is_empty() {
            return Err(Error::bad_input(
                &self.path,
                format!("no frame could be decoded; ffmpeg said:\n{tail}"),
            ));
        }
        if !tail.is_empty() {
            self.warning = Some(tail);
        }
        Ok(())
    }

    /// The filled buffer as a frame: converted from YUV, or handed over (a fresh buffer takes
    /// its place).
    fn take_frame(&mut self) -> Frame {
        let (w, h) = self.size;
        let rgba_len = w as usize * h as usize * 4;
        // Recycled buffers hold old pixels: both arms overwrite every byte.
        let bytes = match self.yuv {
            Some((matrix, range)) => {
                let mut rgba = frame_buffer(rgba_len);
                yuv420p_to_rgba(&self.buf, w, h, matrix, range, &mut rgba);
                rgba
            }
            None => std::mem::replace(&mut self.buf, frame_buffer(rgba_len)),
        };
        Frame {
            // The buffer length is w*h*4 by construction.
            image: RgbaImage::from_raw(w, h, bytes).unwrap_or_else(|| RgbaImage::new(w, h)),
            has_alpha: self.alpha,
        }
    }
}

impl FrameSource for VideoSource {
    fn len_hint(&self) -> Option<usize> {
        self.len_hint
    }

    fn frame_size(&self) -> (u32, u32) {
        self.size
    }

    fn has_alpha(&self) -> Option<bool> {
        Some(self.alpha)
    }

    fn next_frame(&mut self) -> Result<Option<(FrameInfo, Frame)>> {
        if self.max_frames.is_some_and(|m| self.next >= m) {
            self.stop();
            return Ok(None);
        }
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(None);
        };
        let n = read_full(stdout, &mut self.buf).map_err(|e| Error::io(&self.path, e))?;
        if n < self.buf.len() {
            self.end(n)?;
            return Ok(None);
        }
        let frame = self.take_frame();
        let index = self.next;
        self.next += 1;
        let info = FrameInfo {
            index,
            name: format_pattern(DEFAULT_PATTERN, index + 1)?,
            time: self.step.map(|s| self.start + index as f64 * s),
        };
        Ok(Some((info, frame)))
    }
}

/// Decodes on a reader thread while PNGs are encoded and written in parallel batches; frames are
/// reported in order. Returns the number written.
fn write_frames(
    source: &mut VideoSource,
    out_dir: &Path,
    pattern: &str,
    progress: &dyn Progress,
    stage: &str,
) -> Result<usize> {
    let batch_len = rayon::current_num_threads().clamp(1, 16) * 2;
    std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded(batch_len);
        scope.spawn(move || {
            while let Some(item) = source.next_frame().transpose() {
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        let mut count = 0;
        loop {
            if progress.should_stop() {
                // Dropping the receiver stops the reader thread.
                return Err(Error::Interrupted);
            }
            let mut batch = Vec::with_capacity(batch_len);
            match rx.recv() {
                Ok(item) => batch.push(item?),
                Err(_) => break,
            }
            while batch.len() < batch_len {
                match rx.try_recv() {
                    Ok(item) => batch.push(item?),
                    Err(_) => break,
                }
            }
            let written: Vec<Result<String>> = batch
                .par_iter()
                .map(|(info, frame)| {
                    let name = format_pattern(pattern, info.index + 1)?;
                    write_png(&out_dir.join(&name), frame)?;
                    Ok(name)
                })
                .collect();
            for ((info, _), name) in batch.iter().zip(written) {
                progress.event(Event::Frame {
                    stage: stage.to_string(),
                    index: info.index as u64,
                    name: name?,
                    skipped: false,
                });
                count += 1;
            }
        }
        Ok(count)
    })
}

/// Extracts frames of a video into `out_dir` as PNG named by `pattern`; returns the count.
///
/// Each PNG is written atomically; PNG encoding runs in parallel with decoding. Progress is
/// reported as stage `extract`; a stop request ends with [`Error::Interrupted`] once the frames
/// in flight are written (and reported).
pub fn extract(
    video: &Path,
    out_dir: &Path,
    opts: &ExtractOptions,
    pattern: &str,
    progress: &dyn Progress,
) -> Result<usize> {
    format_pattern(pattern, 1)?;
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(Error::bad_input(
            out_dir,
            "the output must be a folder, but a file of that name exists; choose another folder",
        ));
    }
    let mut source = VideoSource::open(video, opts)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let stage = "extract".to_string();
    progress.event(Event::Start {
        stage: stage.clone(),
        total: source.len_hint().map(|n| n as u64),
    });
    let count = write_frames(&mut source, out_dir, pattern, progress, &stage)?;
    if let Some(w) = source.decode_warning() {
        progress.event(Event::Warning {
            message: format!(
                "{}: ffmpeg reported problems while decoding (the file may be damaged or cut \
                 short); the {count} frames it delivered were kept:\n{w}",
                video.display()
            ),
        });
    }
    if count == 0 && opts.max_frames != Some(0) {
        return Err(Error::bad_input(
            video,
            "no frames were extracted; check start and duration against the video's length",
        ));
    }
    progress.event(Event::Finish { stage });
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(duration: Option<f64>) -> VideoInfo {
        VideoInfo {
            width: 640,
            height: 272,
            fps: 25.0,
            duration,
            has_audio: false,
            has_alpha: false,
            codec: "h264".into(),
            pix_fmt: "yuv420p".into(),
            color_space: None,
            color_range: None,
        }
    }

    #[test]
    fn early_decoder_start_is_kept_only_when_the_probe_agrees() {
        let path = Path::new("clip.mp4");
        let opts = ExtractOptions {
            fps: Some(12.0),
            start: Some(0.5),
            max_frames: Some(10),
            ..Default::default()
        };
        let guess = guessed_args(path, &opts).expect("no size: the arguments can be guessed");
        let mut bt709 = info(Some(4.0));
        bt709.color_space = Some("bt709".into());
        // A common stream (BT.601 or 709, limited range): the early start is used as it is.
        assert_eq!(probed_args(path, &opts, &info(Some(4.0))).0, guess);
        assert_eq!(probed_args(path, &opts, &bt709).0, guess);
        // Anything else needs other arguments: the early start is replaced.
        let mut other = info(Some(4.0));
        other.has_alpha = true;
        assert_ne!(probed_args(path, &opts, &other).0, guess);
        let mut odd = info(Some(4.0));
        odd.width = 641;
        assert_ne!(probed_args(path, &opts, &odd).0, guess);
        let mut full = info(Some(4.0));
        full.color_range = Some("pc".into());
        assert_ne!(probed_args(path, &opts, &full).0, guess);
        // A size to fit depends on the probe: nothing is started early.
        let sized = ExtractOptions {
            size: Some((512, 512)),
            ..opts.clone()
        };
        assert!(guessed_args(path, &sized).is_none());
    }

    #[test]
    fn yuv_pipe_only_for_streams_converted_like_ffmpeg() {
        let base = info(Some(1.0));
        assert_eq!(
            yuv_pipe_format(&base),
            Some((Matrix::Bt601, Range::Limited))
        );
        let with = |f: &dyn Fn(&mut VideoInfo)| {
            let mut i = base.clone();
            f(&mut i);
            yuv_pipe_format(&i)
        };
        assert_eq!(
            with(&|i| i.color_space = Some("bt709".into())),
            Some((Matrix::Bt709, Range::Limited))
        );
        assert_eq!(with(&|i| i.color_space = Some("bt2020nc".into())), None);
        assert_eq!(with(&|i| i.color_range = Some("pc".into())), None);
        assert_eq!(with(&|i| i.pix_fmt = "yuv444p".into()), None);
        assert_eq!(with(&|i| i.has_alpha = true), None);
    }

    #[test]
    fn chains() {
        let mut o = ExtractOptions::default();
        assert_eq!(
            filter_chain(&o, (64, 64), (64, 64), false),
            ["fps=12:round=up"]
        );
        o.fps = None;
        o.extract_nth_frame = 3;
        o.fit = Fit::Pad;
        let c = filter_chain(&o, (64, 48), (32, 32), true);
        assert_eq!(c[0], "select=not(mod(n\\,3))");
        assert!(
            c[2].starts_with("pad=32:32:") && c[2].ends_with("black@0"),
            "{c:?}"
        );
    }

    #[test]
    fn sizes_round_to_multiples() {
        let mut o = ExtractOptions::default();
        assert_eq!(target_size((640, 272), &o), (640, 272));
        o.multiple = Some(64);
        assert_eq!(target_size((640, 272), &o), (640, 256));
        o.multiple = None;
        o.size = Some((500, 300));
        assert_eq!(target_size((640, 272), &o), (504, 304));
    }

    #[test]
    fn length_estimates() {
        let mut o = ExtractOptions {
            fps: Some(12.5),
            ..Default::default()
        };
        assert_eq!(estimate_len(&info(Some(3.0)), &o), Some(38));
        o.extract_nth_frame = 2;
        assert_eq!(estimate_len(&info(Some(3.0)), &o), Some(19));
        o.max_frames = Some(5);
        assert_eq!(estimate_len(&info(Some(3.0)), &o), Some(5));
        o.max_frames = None;
        o.fps = None;
        o.extract_nth_frame = 1;
        o.start = Some(1.0);
        o.duration = Some(0.5);
        assert_eq!(estimate_len(&info(Some(3.0)), &o), Some(13));
        assert_eq!(estimate_len(&info(None), &ExtractOptions::default()), None);
    }

    #[test]
    fn bad_options_are_settings_errors() {
        for o in [
            ExtractOptions {
                fps: Some(0.0),
                ..Default::default()
            },
            ExtractOptions {
                extract_nth_frame: 0,
                ..Default::default()
            },
            ExtractOptions {
                start: Some(-1.0),
                ..Default::default()
            },
            ExtractOptions {
                duration: Some(f64::NAN),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                check_options(&o),
                Err(Error::InvalidSetting { .. })
            ));
        }
    }
}
