//! Frame folders: natural-order listing, validation, and a [`FrameSource`] over them.
// STUB: to be implemented (issue 2, frames & video helper).

use super::{Fit, Frame, FrameInfo, FrameSource};
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Options for reading a folder of frames.
#[derive(Debug, Clone, Default)]
pub struct FolderOptions {
    /// Fit frames of other sizes to the first frame's size (or `size`) instead of failing.
    pub allow_mixed_sizes: bool,
    /// Target size; `None` keeps the first frame's size.
    pub size: Option<(u32, u32)>,
    /// How frames are fitted to the target size.
    pub fit: Fit,
    /// Round the target size to this multiple (None: keep as is).
    pub multiple: Option<u32>,
    /// Read at most this many frames.
    pub max_frames: Option<usize>,
}

/// True for files rotograph itself keeps in a run folder (settings, manifest, temp files), which
/// frame listings skip.
pub fn is_run_file(name: &str) -> bool {
    name.starts_with('.') || name == "rotograph.toml" || name == crate::run::MANIFEST_NAME
}

/// Lists the image files (PNG, JPEG, WebP) of a folder in natural order (`2.png` before
/// `10.png`). A file that is not an image is an error naming it; run files and sub-folders are
/// skipped.
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    let _ = dir;
    unimplemented!()
}

/// A [`FrameSource`] over a folder of images.
pub struct FolderSource {
    _private: (),
}

impl FolderSource {
    /// Lists and validates the folder (every file an image, all one size unless
    /// `allow_mixed_sizes`). Frames are decoded lazily.
    pub fn open(dir: &Path, opts: &FolderOptions) -> Result<Self> {
        let _ = (dir, opts);
        unimplemented!()
    }
}

impl FrameSource for FolderSource {
    fn len_hint(&self) -> Option<usize> {
        unimplemented!()
    }
    fn frame_size(&self) -> (u32, u32) {
        unimplemented!()
    }
    fn next_frame(&mut self) -> Result<Option<(FrameInfo, Frame)>> {
        let _: Option<Frame> = None;
        unimplemented!()
    }
}
