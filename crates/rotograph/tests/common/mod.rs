//! Shared test helpers: finding `../shared` media and generating clips with ffmpeg.
//! Included by integration tests of every crate (`#[path = ...] mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("Cargo.lock").exists() || p.join(".ci").exists())
        .unwrap_or(here)
        .to_path_buf()
}

/// `../shared/<rel>` beside the project checkout, or `None` with a clear skip message.
/// `ROTOGRAPH_SHARED` overrides where `shared/` is.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("ROTOGRAPH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("..").join("shared"));
    let p = base.join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: shared media {} not found (expected ../shared beside the checkout, \
             or set ROTOGRAPH_SHARED)",
            p.display()
        );
        None
    }
}

/// Returns early from a test when a shared file is missing.
#[macro_export]
macro_rules! shared_or_skip {
    ($rel:expr) => {
        match common::shared($rel) {
            Some(p) => p,
            None => return,
        }
    };
}

/// The sample clip shipped in the repository.
pub fn sample_clip() -> PathBuf {
    workspace_root().join("samples").join("bigbuckbunny-4s.mp4")
}

/// Runs ffmpeg with `args` (quiet, overwrite), panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed for the tests (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generates a test clip: `seconds` of testsrc2 at `fps` and `w`x`h`, with a 440 Hz tone when
/// `audio`. Frame n carries its number in two grey strips at the top (rows 0-7: `n % 32`, rows
/// 8-15: `n / 32`, 8 grey levels per step), so tests can tell which source frame an extracted
/// frame came from (see [`frame_number_of`]).
pub fn make_clip(path: &Path, seconds: f64, fps: u32, w: u32, h: u32, audio: bool) {
    let secs = format!("{seconds}");
    let src = format!("testsrc2=size={w}x{h}:rate={fps}:duration={secs}");
    let strip = "drawbox=x=0:y=0:w=iw:h=16:color=black:t=fill,\
                 geq=lum='if(lt(Y,8),16+mod(N,32)*8*219/255,if(lt(Y,16),16+floor(N/32)*8*219/255,lum(X,Y)))':cb='if(lt(Y,16),128,cb(X,Y))':cr='if(lt(Y,16),128,cr(X,Y))'";
    let ps = path.to_string_lossy().into_owned();
    let mut args: Vec<String> = vec!["-f".into(), "lavfi".into(), "-i".into(), src];
    if audio {
        args.extend(["-f", "lavfi", "-i"].map(String::from));
        args.push(format!("sine=frequency=440:duration={secs}"));
    }
    args.extend(["-vf".into(), strip.into()]);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "mkv" => args.extend(["-c:v", "ffv1"].map(String::from)),
        _ => args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-qp",
                "0",
                "-pix_fmt",
                "yuv444p",
            ]
            .map(String::from),
        ),
    }
    if audio {
        args.extend(["-c:a", "aac", "-shortest"].map(String::from));
    }
    args.push(ps);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&refs);
}

/// Reads back the source frame number a [`make_clip`] frame carries (from its top strips); the
/// frame must be at the clip's own size (not resized).
pub fn frame_number_of(img: &image::RgbaImage) -> usize {
    let w = img.width();
    let grey = |y: u32| {
        let mut sum = 0u32;
        for x in w / 4..3 * w / 4 {
            sum += img.get_pixel(x, y)[1] as u32;
        }
        sum as f64 / (w / 2) as f64
    };
    let lo = (grey(3) / 8.0).round() as usize % 32;
    let hi = (grey(12) / 8.0).round() as usize;
    hi * 32 + lo
}

/// Duration of a media file's first stream of `kind` (`v` or `a`) in seconds, via ffprobe.
pub fn stream_duration(path: &Path, kind: &str) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args(["-show_entries", "stream=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Number of frames in the first video stream, counted by decoding.
pub fn count_frames(path: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("cannot count frames of {}", path.display()))
}
