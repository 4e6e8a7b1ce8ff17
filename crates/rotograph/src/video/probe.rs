//! `ffprobe -of json` into [`VideoInfo`].

use super::process::{file_arg, run_output, tail_of, Tool};
use super::VideoInfo;
use crate::error::{Error, Result};
use serde_json::Value;
use std::ffi::OsString;
use std::path::Path;

/// Runs `ffprobe` on a video. A missing ffprobe is [`crate::Error::FfmpegMissing`]; a file that is
/// not a video is [`crate::Error::BadInput`].
pub fn probe(path: &Path) -> Result<VideoInfo> {
    if !path.exists() {
        return Err(Error::bad_input(
            path,
            "no such file; check the path of the video",
        ));
    }
    if path.is_dir() {
        return Err(Error::bad_input(
            path,
            "is a folder, not a video file; give a video file (or use the folder as frames)",
        ));
    }
    let mut args: Vec<OsString> = ["-of", "json", "-show_format", "-show_streams", "-i"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(file_arg(path));
    let out = run_output(Tool::Ffprobe, &args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let msg = tail_of(&stderr).replace('\n', "; ");
        return Err(Error::bad_input(
            path,
            format!(
                "not a readable video: {}; check that the file is a complete video (it may be \
                 damaged, or not a video at all)",
                if msg.is_empty() {
                    "ffprobe could not read it"
                } else {
                    &msg
                }
            ),
        ));
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::bad_input(
            path,
            format!("not a readable video: ffprobe printed no usable description ({e})"),
        )
    })?;
    parse_probe(path, &json)
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn num_field(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// Parses `num/den` (or a plain number); `None` for `0/0` and the like.
fn parse_rate(s: &str) -> Option<f64> {
    let r = match s.split_once('/') {
        Some((n, d)) => {
            let n: f64 = n.trim().parse().ok()?;
            let d: f64 = d.trim().parse().ok()?;
            if d == 0.0 {
                return None;
            }
            n / d
        }
        None => s.trim().parse().ok()?,
    };
    (r.is_finite() && r > 0.0).then_some(r)
}

/// Pixel formats that carry alpha.
fn pix_fmt_has_alpha(fmt: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya8", "ya16",
    ];
    PREFIXES.iter().any(|p| fmt.starts_with(p))
}

fn tag<'a>(stream: &'a Value, name: &str) -> Option<&'a str> {
    stream
        .get("tags")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// Rotation in degrees from the display matrix (or the legacy `rotate` tag).
fn rotation(stream: &Value) -> i64 {
    let from_side = stream
        .get("side_data_list")
        .and_then(Value::as_array)
        .and_then(|list| list.iter().find_map(|sd| num_field(sd, "rotation")));
    let deg = from_side.or_else(|| tag(stream, "rotate").and_then(|r| r.trim().parse().ok()));
    deg.map_or(0, |d: f64| d.round() as i64)
}

/// A colour field, `None` when absent or `unknown`.
fn tag_value(stream: &Value, key: &str) -> Option<String> {
    str_field(stream, key)
        .filter(|v| !v.is_empty() && *v != "unknown")
        .map(str::to_string)
}

pub(super) fn parse_probe(path: &Path, json: &Value) -> Result<VideoInfo> {
    let streams: &[Value] = json
        .get("streams")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let is_cover = |s: &Value| {
        s.get("disposition")
            .and_then(|d| d.get("attached_pic"))
            .and_then(Value::as_i64)
            == Some(1)
    };
    let video = streams
        .iter()
        .find(|s| str_field(s, "codec_type") == Some("video") && !is_cover(s))
        .ok_or_else(|| {
            Error::bad_input(
                path,
                "has no video stream (only audio or data?); give a video file",
            )
        })?;
    let has_audio = streams
        .iter()
        .any(|s| str_field(s, "codec_type") == Some("audio"));
    let (mut width, mut height) = (
        num_field(video, "width").unwrap_or(0.0) as u32,
        num_field(video, "height").unwrap_or(0.0) as u32,
    );
    if width == 0 || height == 0 {
        return Err(Error::bad_input(
            path,
            "not a readable video: ffprobe found no frame size; the file may be damaged",
        ));
    }
    if rotation(video).rem_euclid(180) == 90 {
        // ffmpeg rotates frames upright when decoding.
        std::mem::swap(&mut width, &mut height);
    }
    let fps = str_field(video, "avg_frame_rate")
        .and_then(parse_rate)
        .or_else(|| str_field(video, "r_frame_rate").and_then(parse_rate))
        .unwrap_or(0.0);
    let duration = num_field(video, "duration")
        .or_else(|| json.get("format").and_then(|f| num_field(f, "duration")))
        .filter(|d| *d > 0.0);
    let pix_fmt = str_field(video, "pix_fmt").unwrap_or("");
    let has_alpha = pix_fmt_has_alpha(pix_fmt) || tag(video, "alpha_mode") == Some("1");
    Ok(VideoInfo {
        width,
        height,
        fps,
        duration,
        has_audio,
        has_alpha,
        codec: str_field(video, "codec_name")
            .unwrap_or("unknown")
            .to_string(),
        pix_fmt: pix_fmt.to_string(),
        color_space: tag_value(video, "color_space"),
        color_range: tag_value(video, "color_range"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_streams() {
        let j = json!({
            "streams": [
                {"codec_type": "video", "codec_name": "mjpeg", "width": 10, "height": 10,
                 "disposition": {"attached_pic": 1}},
                {"codec_type": "video", "codec_name": "vp9", "width": 640, "height": 360,
                 "avg_frame_rate": "0/0", "r_frame_rate": "30000/1001", "pix_fmt": "yuv420p",
                 "tags": {"ALPHA_MODE": "1"},
                 "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
                {"codec_type": "audio"}
            ],
            "format": {"duration": "2.5"}
        });
        let info = parse_probe(Path::new("x.webm"), &j).unwrap();
        assert_eq!((info.width, info.height), (360, 640));
        assert!((info.fps - 29.97).abs() < 0.01);
        assert_eq!(info.duration, Some(2.5));
        assert!(info.has_audio && info.has_alpha);
        assert_eq!(info.codec, "vp9");
        assert_eq!(info.pix_fmt, "yuv420p");
        assert_eq!(info.color_space, None);
    }

    #[test]
    fn no_video_stream_is_bad_input() {
        let j = json!({"streams": [{"codec_type": "audio"}]});
        let e = parse_probe(Path::new("a.mp3"), &j).unwrap_err();
        assert!(matches!(e, Error::BadInput { .. }), "{e}");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("25/1"), Some(25.0));
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("12.5"), Some(12.5));
        assert!(pix_fmt_has_alpha("yuva420p") && !pix_fmt_has_alpha("yuv420p"));
    }
}
