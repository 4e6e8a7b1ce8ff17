//! A [`FrameStore`] on disk: each loop's f32 frames in `DIR/loop-NN/NNNNN.f32`, written
//! atomically, so an interrupted run resumes at the first missing frame.

use super::{FrameStore, ImageF32};
use crate::error::{Error, Result};
use crate::run::atomic_write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RGF32v1\0";

/// Frames of every loop as raw f32 files under one folder. Loop 0 (the source) is stored too,
/// so that masks can restore source pixels exactly. When loop L is complete, loop L-1's folder
/// is deleted unless `keep_every_loop` is set: the disk holds the source plus two loops.
#[derive(Debug, Clone)]
pub struct FolderStore {
    dir: PathBuf,
    /// Keep every loop's frames instead of only the latest two.
    pub keep_every_loop: bool,
}

impl FolderStore {
    /// A store in `dir` (created when missing).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::run::clean_stale_temps(dir)?;
        Ok(FolderStore {
            dir: dir.to_path_buf(),
            keep_every_loop: false,
        })
    }

    fn loop_dir(&self, loop_i: usize) -> PathBuf {
        self.dir.join(format!("loop-{loop_i:02}"))
    }

    fn path(&self, loop_i: usize, index: usize) -> PathBuf {
        self.loop_dir(loop_i).join(format!("{:05}.f32", index + 1))
    }
}

impl FrameStore for FolderStore {
    fn get(&mut self, loop_i: usize, index: usize) -> Result<ImageF32> {
        let path = self.path(loop_i, index);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let bad = || {
            Error::bad_input(
                &path,
                "not a loopback frame file (damaged?): delete it to render the frame again",
            )
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad());
        }
        let word =
            |k: usize| u32::from_le_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
        let (w, h) = (word(8), word(12));
        let n = w as usize * h as usize * 4;
        if bytes.len() != 16 + 4 * n {
            return Err(bad());
        }
        let data = bytes[16..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        ImageF32::from_raw(w, h, data).ok_or_else(bad)
    }

    fn put(&mut self, loop_i: usize, index: usize, image: ImageF32) -> Result<()> {
        let dir = self.loop_dir(loop_i);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut bytes = Vec::with_capacity(16 + image.data().len() * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&image.width().to_le_bytes());
        bytes.extend_from_slice(&image.height().to_le_bytes());
        for v in image.data() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        atomic_write(&self.path(loop_i, index), &bytes)
    }

    fn contains(&self, loop_i: usize, index: usize) -> bool {
        self.path(loop_i, index).is_file()
    }

    fn loop_done(&mut self, loop_i: usize) -> Result<()> {
        if self.keep_every_loop || loop_i < 2 {
            return Ok(());
        }
        let old = self.loop_dir(loop_i - 1);
        match std::fs::remove_dir_all(&old) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&old, e)),
            _ => Ok(()),
        }
    }
}
