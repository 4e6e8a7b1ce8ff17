//! Encoding frames through ffmpeg's stdin (H.264, VP9 with alpha, GIF, APNG) and muxing audio.

use super::process::{failure_text, file_arg, Process};
use super::{Container, EncodeOptions};
use crate::error::{Error, Result};
use crate::frames::{image_header, list_frames, read_frame, Exposure, Frame};
use crate::progress::{Event, Progress};
use crate::run::TempFile;
use rayon::prelude::*;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ChildStdin;

/// Extensions accepted for outputs, with their container and ffmpeg muxer.
const OUTPUTS: [(&str, Container, &str); 8] = [
    ("mp4", Container::H264, "mp4"),
    ("m4v", Container::H264, "mp4"),
    ("mov", Container::H264, "mov"),
    ("mkv", Container::H264, "matroska"),
    ("webm", Container::Vp9, "webm"),
    ("gif", Container::Gif, "gif"),
    ("apng", Container::Apng, "apng"),
    ("png", Container::Apng, "apng"),
];

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn accepted_list() -> String {
    let exts: Vec<String> = OUTPUTS.iter().map(|(e, _, _)| format!(".{e}")).collect();
    exts.join(", ")
}

impl Container {
    /// Picks the container from a file extension; the error lists the accepted ones.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = extension(path);
        OUTPUTS
            .iter()
            .find(|(e, _, _)| Some(*e) == ext.as_deref())
            .map(|(_, c, _)| *c)
            .ok_or_else(|| {
                Error::setting(
                    "output",
                    format!(
                        "cannot tell the video format of {} from its extension; use one of {}",
                        path.display(),
                        accepted_list()
                    ),
                )
            })
    }

    /// The ffmpeg muxer for this container when the extension does not name one.
    fn default_muxer(self) -> &'static str {
        match self {
            Container::H264 => "mp4",
            Container::Vp9 => "webm",
            Container::Gif => "gif",
            Container::Apng => "apng",
        }
    }

    /// Can this container hold the codec written by `muxer`?
    fn fits_muxer(self, muxer: &str) -> bool {
        match muxer {
            "gif" => self == Container::Gif,
            "apng" => self == Container::Apng,
            "webm" => self == Container::Vp9,
            // MP4/MOV/Matroska hold H.264 and VP9.
            _ => matches!(self, Container::H264 | Container::Vp9),
        }
    }
}

/// The container and muxer for an output path under the options.
fn choose_format(out: &Path, forced: Option<Container>) -> Result<(Container, &'static str)> {
    let by_ext = extension(out).and_then(|ext| {
        OUTPUTS
            .iter()
            .find(|(e, _, _)| *e == ext)
            .map(|(_, c, m)| (*c, *m))
    });
    match (forced, by_ext) {
        (None, Some(found)) => Ok(found),
        (None, None) => Container::from_path(out).map(|c| (c, c.default_muxer())),
        (Some(c), None) => Ok((c, c.default_muxer())),
        (Some(c), Some((_, muxer))) if c.fits_muxer(muxer) => Ok((c, muxer)),
        (Some(c), Some(_)) => Err(Error::setting(
            "container",
            format!(
                "{c:?} cannot be written into {}; change the extension or the container",
                out.display()
            ),
        )),
    }
}

/// Whether frames go through the pipe as BT.709 limited-range `yuv420p`, converted here
/// ([`super::yuv::rgba_to_yuv420p_bt709`]), rather than RGB(A) converted by ffmpeg: for H.264 and
/// VP9 without alpha at even sizes (the output is yuv420p anyway; odd sizes need ffmpeg's pad).
fn pipes_yuv(container: Container, width: u32, height: u32, alpha: bool) -> bool {
    let codec =
        matches!(container, Container::H264) || (matches!(container, Container::Vp9) && !alpha);
    codec && width % 2 == 0 && height % 2 == 0
}

/// Encoder arguments after the raw input: codec, pixel format and filters.
fn codec_args(container: Container, crf: u32, width: u32, height: u32, alpha: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    let yuv_in = pipes_yuv(container, width, height, alpha);
    match container {
        Container::H264 => {
            if !yuv_in {
                // yuv420p needs even sizes: pad odd ones by a black row/column.
                let mut vf = String::new();
                if width % 2 == 1 || height % 2 == 1 {
                    vf.push_str("pad=ceil(iw/2)*2:ceil(ih/2)*2,");
                }
                vf.push_str("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p");
                push(&["-vf", &vf]);
            }
            push(&["-c:v", "libx264", "-crf", &crf.to_string()]);
            push(&["-pix_fmt", "yuv420p"]);
            push(&["-colorspace", "bt709", "-color_primaries", "bt709"]);
            push(&["-color_trc", "bt709", "-color_range", "tv"]);
        }
        Container::Vp9 => {
            let fmt = if alpha { "yuva420p" } else { "yuv420p" };
            if !yuv_in {
                let vf = format!("scale=out_color_matrix=bt709:out_range=tv,format={fmt}");
                push(&["-vf", &vf]);
            }
            push(&["-c:v", "libvpx-vp9", "-pix_fmt", fmt]);
            push(&["-b:v", "0", "-crf", &crf.to_string()]);
            push(&["-deadline", "good", "-cpu-used", "2", "-row-mt", "1"]);
            push(&["-colorspace", "bt709", "-color_primaries", "bt709"]);
            push(&["-color_trc", "bt709", "-color_range", "tv"]);
            if alpha {
                push(&["-auto-alt-ref", "0"]);
            }
        }
        Container::Gif => {
            let reserve = if alpha { 1 } else { 0 };
            let vf = format!(
                "split[a][b];[a]palettegen=stats_mode=full:reserve_transparent={reserve}[p];\
                 [b][p]paletteuse"
            );
            push(&["-vf", &vf, "-loop", "0"]);
        }
        Container::Apng => {
            let fmt = if alpha { "rgba" } else { "rgb24" };
            push(&["-c:v", "apng", "-pix_fmt", fmt, "-plays", "0"]);
        }
    }
    a
}

/// The audio muxed into the output.
#[derive(Debug, Clone)]
struct AudioPlan {
    from: PathBuf,
    start: Option<f64>,
    duration: Option<f64>,
}

/// Streams frames into ffmpeg; the output appears (atomically) on [`Encoder::finish`].
///
/// Dropping an encoder without finishing stops ffmpeg and leaves nothing at the output path.
/// The encoder holds frames `on` times but does not apply `exposure` (it receives frames in
/// order); [`encode_folder`] applies exposure sheets.
pub struct Encoder {
    // Field order matters for drop: close the pipe and stop ffmpeg before the temp file goes.
    stdin: Option<ChildStdin>,
    process: Option<Process>,
    temp: TempFile,
    out: PathBuf,
    container: Container,
    width: u32,
    height: u32,
    alpha: bool,
    /// Frames go to ffmpeg as yuv420p ([`pipes_yuv`]).
    yuv: bool,
    on: usize,
    /// Frames written to ffmpeg (holds counted).
    written: usize,
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts ffmpeg for `out` with frames of `width` x `height` (with alpha when `alpha`).
    ///
    /// GIF and APNG outputs carry no audio: `audio_from` is ignored for them.
    pub fn start(
        out: &Path,
        opts: &EncodeOptions,
        width: u32,
        height: u32,
        alpha: bool,
    ) -> Result<Self> {
        let (container, muxer) = choose_format(out, opts.container)?;
        if !(opts.fps.is_finite() && opts.fps > 0.0 && opts.fps <= 1000.0) {
            return Err(Error::setting(
                "fps",
                format!(
                    "{} is not a usable output frame rate; give e.g. 12 or 24",
                    opts.fps
                ),
            ));
        }
        if opts.on == 0 {
            return Err(Error::setting(
                "on",
                "must be at least 1 (1 = every frame once, 2 = on twos)",
            ));
        }
        let max_crf = match container {
            Container::H264 => 51,
            Container::Vp9 => 63,
            Container::Gif | Container::Apng => u32::MAX,
        };
        if opts.crf > max_crf {
            return Err(Error::setting(
                "crf",
                format!(
                    "{} is out of range for {container:?} (0..={max_crf}; lower is better quality)",
                    opts.crf
                ),
            ));
        }
        if width == 0 || height == 0 {
            return Err(Error::bad_input(
                out,
                format!("cannot encode {width}x{height} frames; frames must not be empty"),
            ));
        }
        let audio = match (&opts.audio_from, container) {
            (Some(from), Container::H264 | Container::Vp9) => {
                if !from.is_file() {
                    return Err(Error::bad_input(
                        from,
                        "the audio source does not exist; check the path given for the audio",
                    ));
                }
                Some(AudioPlan {
                    from: from.clone(),
                    start: opts.audio_start.filter(|s| s.is_finite() && *s > 0.0),
                    duration: opts.audio_duration.filter(|d| d.is_finite() && *d > 0.0),
                })
            }
            _ => None,
        };
        let temp = TempFile::new(out)?;
        let mut args: Vec<OsString> = Vec::new();
        let yuv = pipes_yuv(container, width, height, alpha);
        let pix_fmt = match (yuv, alpha) {
            (true, _) => "yuv420p",
            (false, true) => "rgba",
            (false, false) => "rgb24",
        };
        let size = format!("{width}x{height}");
        let rate = format!("{}", opts.fps);
        for a in [
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-s",
            &size,
            "-framerate",
            &rate,
        ] {
            args.push(a.into());
        }
        if yuv {
            // What rgba_to_yuv420p_bt709 writes, so that ffmpeg converts nothing.
            for a in ["-color_range", "tv", "-colorspace", "bt709"] {
                args.push(a.into());
            }
        }
        args.extend(["-i".into(), "pipe:0".into()]);
        if let Some(audio) = &audio {
            // The audio goes in the same pass: its span is cut from the source, padded with
            // silence when shorter, and `-shortest` ends it with the last video frame.
            if let Some(s) = audio.start {
                args.extend(["-ss".into(), format!("{s}").into()]);
            }
            if let Some(d) = audio.duration {
                args.extend(["-t".into(), format!("{d}").into()]);
            }
            args.extend(["-i".into(), file_arg(&audio.from)]);
            let codec = if muxer == "webm" { "libopus" } else { "aac" };
            for a in [
                "-map",
                "0:v",
                "-map",
                "1:a?",
                "-c:a",
                codec,
                "-af",
                "apad",
                "-shortest",
            ] {
                args.push(a.into());
            }
        }
        for a in codec_args(container, opts.crf, width, height, alpha) {
            args.push(a.into());
        }
        if muxer == "mp4" || muxer == "mov" {
            args.extend(["-movflags".into(), "+faststart".into()]);
        }
        args.extend(["-f".into(), muxer.into(), file_arg(temp.path())]);
        let mut process = Process::spawn(&args, true, false)?;
        let stdin = process.take_stdin();
        let frame_len = match (yuv, alpha) {
            (true, _) => super::yuv::yuv420p_len(width, height),
            (false, true) => width as usize * height as usize * 4,
            (false, false) => width as usize * height as usize * 3,
        };
        Ok(Encoder {
            stdin,
            process: Some(process),
            temp,
            out: out.to_path_buf(),
            container,
            width,
            height,
            alpha,
            yuv,
            on: opts.on,
            written: 0,
            buf: Vec::with_capacity(frame_len),
        })
    }

    /// The container being written.
    pub fn container(&self) -> Container {
        self.container
    }

    /// Number of frames sent so far (holds included).
    pub fn frames_written(&self) -> usize {
        self.written
    }

    /// Whether `frame` has the size and alpha this encoder was started for.
    pub fn fits(&self, frame: &Frame) -> bool {
        frame.size() == (self.width, self.height) && frame.has_alpha == self.alpha
    }

    /// Sends one frame (held `on` times when set in the options).
    pub fn push(&mut self, frame: &Frame) -> Result<()> {
        self.push_times(frame, self.on)
    }

    /// Sends one frame `times` times.
    pub fn push_times(&mut self, frame: &Frame, times: usize) -> Result<()> {
        if frame.size() != (self.width, self.height) {
            let (w, h) = frame.size();
            return Err(Error::bad_input(
                &self.out,
                format!(
                    "frame {} is {w}x{h} but the video is {}x{}; all frames must be one size",
                    self.written + 1,
                    self.width,
                    self.height
                ),
            ));
        }
        if self.yuv {
            let (w, h) = (self.width, self.height);
            super::yuv::rgba_to_yuv420p_bt709(frame.image.as_raw(), w, h, &mut self.buf);
        } else if self.alpha {
            self.buf.clear();
            self.buf.extend_from_slice(frame.image.as_raw());
        } else {
            crate::frames::rgb_bytes(&frame.image, &mut self.buf);
        }
        for _ in 0..times {
            let Some(stdin) = self.stdin.as_mut() else {
                return Err(self.failed("ffmpeg's input is closed"));
            };
            if let Err(e) = stdin.write_all(&self.buf) {
                return Err(self.failed(&format!("writing a frame to ffmpeg failed ({e})")));
            }
            self.written += 1;
        }
        Ok(())
    }

    /// ffmpeg stopped taking frames: reap it and quote its last lines.
    fn failed(&mut self, what: &str) -> Error {
        self.stdin = None;
        let tail = match self.process.take() {
            Some(p) => match p.wait() {
                Ok((status, tail)) => failure_text(status, &tail),
                Err(e) => e.to_string(),
            },
            None => String::new(),
        };
        Error::Ffmpeg {
            path: self.out.clone(),
            message: format!("{what}: {tail}"),
        }
    }

    /// Closes the pipe, waits for ffmpeg, and renames the result into place.
    pub fn finish(mut self) -> Result<()> {
        self.stdin = None;
        let Some(process) = self.process.take() else {
            return Err(Error::Ffmpeg {
                path: self.out.clone(),
                message: "the encoder already failed".into(),
            });
        };
        if self.written == 0 {
            drop(process);
            return Err(Error::bad_input(
                &self.out,
                "no frames were given to encode; nothing was written",
            ));
        }
        let (status, tail) = process.wait()?;
        if !status.success() {
            return Err(Error::Ffmpeg {
                path: self.out.clone(),
                message: failure_text(status, &tail),
            });
        }
        self.temp.commit()
    }
}

/// Encodes a folder of frames (natural order, exposure sheet applied) into `out`.
///
/// All frames must be one size; the video has alpha when any frame has an alpha channel.
/// Progress is reported as stage `encode`, one event per output frame.
pub fn encode_folder(
    dir: &Path,
    out: &Path,
    opts: &EncodeOptions,
    progress: &dyn Progress,
) -> Result<()> {
    // Settings first: a wrong extension should not wait for (or hide behind) a frame check.
    if opts.container.is_none() {
        Container::from_path(out)?;
    }
    let files = list_frames(dir)?;
    encode_files(&files, out, opts, progress)
}

/// Encodes these frame files, in this order (exposure sheet applied, numbers counting from 1 in
/// this list), into `out`. All frames must be one size; the video has alpha when any frame has.
pub fn encode_files(
    files: &[PathBuf],
    out: &Path,
    opts: &EncodeOptions,
    progress: &dyn Progress,
) -> Result<()> {
    if opts.container.is_none() {
        Container::from_path(out)?;
    }
    if files.is_empty() {
        return Err(Error::bad_input(
            out,
            "no frames to encode; nothing was written",
        ));
    }
    let mut size = (0, 0);
    let mut alpha = false;
    for (i, f) in files.iter().enumerate() {
        let (s, a) = image_header(f)?;
        alpha |= a;
        if i == 0 {
            size = s;
        } else if s != size {
            return Err(Error::bad_input(
                f,
                format!(
                    "is {}x{} but the first frame ({}) is {}x{}; a video needs frames of one \
                     size: resize or remove this frame",
                    s.0,
                    s.1,
                    files[0].display(),
                    size.0,
                    size.1
                ),
            ));
        }
    }
    let sheet = match &opts.exposure {
        Some(e) => {
            e.check(files.len())?;
            e.clone()
        }
        None => {
            if opts.on == 0 {
                return Err(Error::setting(
                    "on",
                    "must be at least 1 (1 = every frame once, 2 = on twos)",
                ));
            }
            Exposure::on(files.len(), 1)
        }
    };
    // With a sheet each entry is one output frame; without, the encoder holds frames `on` times.
    let hold = if opts.exposure.is_some() { 1 } else { opts.on };
    let encoder_opts = EncodeOptions {
        on: 1,
        exposure: None,
        ..opts.clone()
    };
    let mut encoder = Encoder::start(out, &encoder_opts, size.0, size.1, alpha)?;
    let stage = "encode".to_string();
    progress.event(Event::Start {
        stage: stage.clone(),
        total: Some((sheet.len() * hold) as u64),
    });
    // Consecutive repeats of one source frame are one run: decoded once, sent `times` times.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &number in &sheet.0 {
        match runs.last_mut() {
            Some((n, times)) if *n == number => *times += hold,
            _ => runs.push((number, hold)),
        }
    }
    let batch_len = rayon::current_num_threads().clamp(1, 16) * 2;
    std::thread::scope(|scope| -> Result<()> {
        // PNGs are decoded in parallel batches on a reader thread, delivered in order.
        let (tx, rx) = crossbeam_channel::bounded::<Result<Frame>>(batch_len);
        let (files, runs) = (&files, &runs);
        scope.spawn(move || {
            for chunk in runs.chunks(batch_len) {
                let decoded: Vec<Result<Frame>> = chunk
                    .par_iter()
                    .map(|&(number, _)| read_frame(&files[number - 1]))
                    .collect();
                for item in decoded {
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            }
        });
        let mut index = 0u64;
        for &(number, times) in runs {
            if progress.should_stop() {
                return Err(Error::Interrupted);
            }
            let path = &files[number - 1];
            let frame = rx.recv().map_err(|_| Error::Ffmpeg {
                path: out.to_path_buf(),
                message: "the frame reader stopped unexpectedly".into(),
            })??;
            if frame.size() != size {
                return Err(Error::bad_input(
                    path,
                    format!(
                        "changed size while encoding ({}x{} instead of {}x{})",
                        frame.size().0,
                        frame.size().1,
                        size.0,
                        size.1
                    ),
                ));
            }
            encoder.push_times(&frame, times)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for _ in 0..times {
                progress.event(Event::Frame {
                    stage: stage.clone(),
                    index,
                    name: name.clone(),
                    skipped: false,
                });
                index += 1;
            }
        }
        Ok(())
    })?;
    encoder.finish()?;
    progress.event(Event::Finish { stage });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_from_extensions() {
        assert_eq!(
            Container::from_path(Path::new("a.MP4")).unwrap(),
            Container::H264
        );
        assert_eq!(
            Container::from_path(Path::new("a.webm")).unwrap(),
            Container::Vp9
        );
        assert_eq!(
            Container::from_path(Path::new("a.png")).unwrap(),
            Container::Apng
        );
        let e = Container::from_path(Path::new("a.avi")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(".mp4") && msg.contains(".webm") && msg.contains(".gif"),
            "{msg}"
        );
        assert_eq!(e.exit_code(), crate::error::EXIT_BAD_INPUT);
    }

    #[test]
    fn forced_containers() {
        assert_eq!(
            choose_format(Path::new("x.mkv"), Some(Container::Vp9)).unwrap(),
            (Container::Vp9, "matroska")
        );
        assert_eq!(
            choose_format(Path::new("x.bin"), Some(Container::Gif)).unwrap(),
            (Container::Gif, "gif")
        );
        assert!(choose_format(Path::new("x.webm"), Some(Container::H264)).is_err());
    }

    #[test]
    fn odd_sizes_are_padded_for_h264() {
        let a = codec_args(Container::H264, 25, 33, 20, false).join(" ");
        assert!(a.contains("pad=ceil(iw/2)*2"), "{a}");
        let a = codec_args(Container::H264, 25, 32, 20, false).join(" ");
        assert!(!a.contains("pad="), "{a}");
        // Even sizes come as yuv420p converted here: ffmpeg gets no conversion filter.
        assert!(
            pipes_yuv(Container::H264, 32, 20, false) && !a.contains("-vf"),
            "{a}"
        );
        assert!(!pipes_yuv(Container::H264, 33, 20, false));
        assert!(pipes_yuv(Container::Vp9, 32, 20, false));
        assert!(!pipes_yuv(Container::Vp9, 32, 20, true));
        assert!(!pipes_yuv(Container::Gif, 32, 20, false));
        let v = codec_args(Container::Vp9, 30, 32, 20, true).join(" ");
        assert!(
            v.contains("yuva420p") && v.contains("-auto-alt-ref 0"),
            "{v}"
        );
    }
}
