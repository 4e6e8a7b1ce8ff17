//! Per-frame inputs of loopback: masks and prompt files.

use crate::error::{Error, Result};
use crate::frames::{read_frame, Frame};
use image::{GrayImage, Luma};
use std::path::{Path, PathBuf};

/// Where the masks come from. Masks mark where to repaint (white) and where to keep the source
/// (black); they are matched to frames by frame, never by a name that changes between loops.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSource {
    /// A folder with one mask per frame, named like the source frame.
    Folder(PathBuf),
    /// One image for every frame.
    Single(PathBuf),
    /// The source frame's own alpha channel (opaque = repaint).
    Alpha,
}

impl MaskSource {
    /// The mask of the source frame named `name`, at the frame's size.
    pub fn mask_for(&self, name: &str, frame: &Frame) -> Result<GrayImage> {
        let (w, h) = frame.size();
        let (path, mask) = match self {
            MaskSource::Alpha => {
                if !frame.has_alpha {
                    return Err(Error::setting(
                        "mask_directory",
                        format!("frame {name} has no alpha channel to use as a mask; give a mask folder or file"),
                    ));
                }
                let mut m = GrayImage::new(w, h);
                for (o, p) in m.pixels_mut().zip(frame.image.pixels()) {
                    *o = Luma([p[3]]);
                }
                return Ok(m);
            }
            MaskSource::Folder(dir) => {
                let path = dir.join(name);
                if !path.is_file() {
                    return Err(Error::bad_input(
                        &path,
                        format!("no mask for frame {name}: the mask folder needs one image per frame, named like the frame"),
                    ));
                }
                (path.clone(), read_frame(&path)?)
            }
            MaskSource::Single(path) => (path.clone(), read_frame(path)?),
        };
        if mask.size() != (w, h) {
            return Err(Error::bad_input(
                &path,
                format!(
                    "mask is {}x{} but frame {name} is {w}x{h}; masks must match the frames' size",
                    mask.image.width(),
                    mask.image.height()
                ),
            ));
        }
        Ok(image::DynamicImage::ImageRgba8(mask.image).to_luma8())
    }
}

/// A prompt read from a frame's `.txt` file.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePrompt {
    /// The prompt.
    pub prompt: String,
    /// The negative prompt (the text after `--neg`), if the file has one.
    pub negative: Option<String>,
}

/// Reads `path` (`FRAME.txt`) as a frame prompt: the text before `--neg` is the prompt, the text
/// after it the negative prompt. A missing file is `None` (the global prompts apply).
pub fn read_prompt_file(path: &Path) -> Result<Option<FramePrompt>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    Ok(Some(match text.split_once("--neg") {
        Some((p, n)) => FramePrompt {
            prompt: p.trim().to_string(),
            negative: Some(n.trim().to_string()),
        },
        None => FramePrompt {
            prompt: text.trim().to_string(),
            negative: None,
        },
    }))
}
