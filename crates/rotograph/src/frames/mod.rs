//! Frames: the in-memory frame type, frame sources (image folders, videos), fitting to a size,
//! frame naming, and PNG output.

mod exposure;
mod fit;
mod folder;
pub mod png;

pub use exposure::{Exposure, MAX_EXPOSURE_FRAMES};
pub use fit::{fit_frame, fit_image, fitted_size, round_to_multiple, Fit};
pub use folder::{
    image_header, is_run_file, list_frames, natural_cmp, FolderOptions, FolderSource,
};

use crate::error::{Error, Result};
use image::RgbaImage;
use std::path::Path;
use std::sync::Mutex;

/// Pixel buffers of finished frames, reused by [`frame_buffer`]: a 720p frame is 3.7 MB, and a
/// fresh allocation of that size is zeroed (and page-faulted) for every decoded frame.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// At most this many pooled buffers...
const POOL_BUFFERS: usize = 8;
/// ...and this many bytes.
const POOL_BYTES: usize = 64 << 20;

/// Hands a finished frame's pixel buffer back, so that a decoder can reuse it (bounded pool).
pub fn recycle(frame: Frame) {
    let buf = frame.image.into_raw();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = pool.iter().map(Vec::capacity).sum();
    if pool.len() < POOL_BUFFERS && held + buf.capacity() <= POOL_BYTES {
        pool.push(buf);
    }
}

/// A buffer of `len` bytes for a new frame: a recycled one of that length when there is one (its
/// contents are an earlier frame's: the caller overwrites all of it), else a zeroed one.
pub fn frame_buffer(len: usize) -> Vec<u8> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match pool.iter().position(|b| b.len() == len) {
        Some(i) => pool.swap_remove(i),
        None => vec![0; len],
    }
}

/// One frame in memory: RGBA8 pixels and whether the alpha channel carries information.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Pixels. Frames without alpha have alpha 255 everywhere.
    pub image: RgbaImage,
    /// True when the frame's alpha is meaningful (decoded from RGBA sources).
    pub has_alpha: bool,
}

impl Frame {
    /// An opaque frame from RGBA pixels.
    pub fn opaque(image: RgbaImage) -> Self {
        Frame {
            image,
            has_alpha: false,
        }
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.image.dimensions()
    }
}

/// Where a frame sits in its sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    /// 0-based position in the sequence as delivered.
    pub index: usize,
    /// File name for outputs of this frame (`00001.png`, or the input's stem + `.png`).
    pub name: String,
    /// Presentation time in seconds from the start of the source, when known (videos).
    pub time: Option<f64>,
}

/// A sequence of frames delivered in order.
pub trait FrameSource: Send {
    /// Number of frames, when known in advance.
    fn len_hint(&self) -> Option<usize>;
    /// Size of the frames this source delivers.
    fn frame_size(&self) -> (u32, u32);
    /// The next frame, or `None` at the end.
    fn next_frame(&mut self) -> Result<Option<(FrameInfo, Frame)>>;
    /// Whether every frame will carry alpha, when known before the first frame (a video's
    /// pixel format); `None` when only the frames tell (a folder).
    fn has_alpha(&self) -> Option<bool> {
        None
    }
}

/// Default frame-name pattern.
pub const DEFAULT_PATTERN: &str = "%05d.png";

/// Formats a printf-style frame-name pattern (`%05d.png`, `frame_%d.png`) for a 1-based number.
pub fn format_pattern(pattern: &str, number: usize) -> Result<String> {
    let bad = || {
        Error::setting(
            "pattern",
            format!(
                "`{pattern}` must contain exactly one %d or %0Nd and end in .png (e.g. %05d.png)"
            ),
        )
    };
    let start = pattern.find('%').ok_or_else(bad)?;
    let rest = &pattern[start + 1..];
    let d = rest.find('d').ok_or_else(bad)?;
    let spec = &rest[..d];
    if !spec.chars().all(|c| c.is_ascii_digit()) || rest[d + 1..].contains('%') {
        return Err(bad());
    }
    if !pattern.to_ascii_lowercase().ends_with(".png") {
        return Err(bad());
    }
    let width: usize = if spec.is_empty() {
        0
    } else {
        spec.parse().map_err(|_| bad())?
    };
    Ok(format!(
        "{}{:0width$}{}",
        &pattern[..start],
        number,
        &rest[d + 1..],
        width = width
    ))
}

/// Encodes a frame as PNG bytes (RGBA when it has alpha, RGB otherwise) with rotograph's own
/// fast encoder ([`png::encode`]): lossless, standard PNG.
pub fn encode_png(frame: &Frame) -> Result<Vec<u8>> {
    png::encode(&frame.image, frame.has_alpha)
}

/// Replaces `out` with the image's RGB bytes (alpha dropped), 3 bytes a pixel.
pub fn rgb_bytes(image: &RgbaImage, out: &mut Vec<u8>) {
    let src = image.as_raw();
    out.clear();
    out.resize(src.len() / 4 * 3, 0);
    png::pack_rgb(src, out);
}

/// Writes a frame as PNG atomically (temp file + rename).
pub fn write_png(path: &Path, frame: &Frame) -> Result<()> {
    let bytes = encode_png(frame)?;
    crate::run::atomic_write(path, &bytes)
}

/// Reads an image file as a frame; errors name the file.
pub fn read_frame(path: &Path) -> Result<Frame> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let img = reader.decode().map_err(|e| {
        Error::bad_input(
            path,
            format!("cannot decode image ({e}); replace or remove the file"),
        )
    })?;
    let has_alpha = img.color().has_alpha();
    Ok(Frame {
        image: img.into_rgba8(),
        has_alpha,
    })
}

/// Opens a frame source: a folder of images, or a video file decoded through ffmpeg.
pub fn open_source(
    path: &Path,
    folder: &FolderOptions,
    video: &crate::video::ExtractOptions,
) -> Result<Box<dyn FrameSource>> {
    if path.is_dir() {
        Ok(Box::new(FolderSource::open(path, folder)?))
    } else if path.is_file() {
        Ok(Box::new(crate::video::VideoSource::open(path, video)?))
    } else {
        Err(Error::bad_input(
            path,
            "no such file or folder; give a video file or a folder of frames",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(format_pattern("%05d.png", 1).unwrap(), "00001.png");
        assert_eq!(format_pattern("f_%d.png", 42).unwrap(), "f_42.png");
        assert_eq!(format_pattern("a%3d.PNG", 7).unwrap(), "a007.PNG");
        assert!(format_pattern("frame.png", 1).is_err());
        assert!(format_pattern("%05d.jpg", 1).is_err());
        assert!(format_pattern("%05d_%d.png", 1).is_err());
        assert!(format_pattern("%xd.png", 1).is_err());
    }

    #[test]
    fn recycled_buffers_come_back_with_their_length() {
        // Odd length: no other test's frame has it.
        let len = 4 * 7 * 13;
        let frame = Frame::opaque(RgbaImage::from_pixel(7, 13, image::Rgba([9, 9, 9, 9])));
        let ptr = frame.image.as_raw().as_ptr();
        recycle(frame);
        let again = frame_buffer(len);
        assert_eq!(again.len(), len);
        assert_eq!(again.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(
            frame_buffer(len),
            vec![0; len],
            "an empty pool gives a zeroed buffer"
        );
    }

    #[test]
    fn png_round_trip_keeps_alpha_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = RgbaImage::new(5, 3);
        img.put_pixel(1, 1, image::Rgba([10, 20, 30, 40]));
        for alpha in [false, true] {
            let f = Frame {
                image: img.clone(),
                has_alpha: alpha,
            };
            let p = dir.path().join(format!("{alpha}.png"));
            write_png(&p, &f).unwrap();
            let back = read_frame(&p).unwrap();
            assert_eq!(back.has_alpha, alpha);
            assert_eq!(back.image.get_pixel(1, 1)[0], 10);
            if alpha {
                assert_eq!(back.image, img);
            }
        }
    }
}
