//! Loopback's source: any [`FrameSource`] (folder, video) or one image repeated, thinned by
//! `extract_nth_frame` and cut at `max_frames`, stored as loop 0.

use super::{FrameStore, ImageF32};
use crate::error::{Error, Result};
use crate::frames::{Frame, FrameInfo, FrameSource};

/// One image delivered `count` times (Video Loopback's single-image input), named `00001.png`...
#[derive(Debug, Clone)]
pub struct RepeatImage {
    frame: Frame,
    count: usize,
    next: usize,
}

impl RepeatImage {
    /// `frame` repeated `count` times.
    pub fn new(frame: Frame, count: usize) -> Self {
        RepeatImage {
            frame,
            count,
            next: 0,
        }
    }
}

impl FrameSource for RepeatImage {
    fn len_hint(&self) -> Option<usize> {
        Some(self.count)
    }
    fn frame_size(&self) -> (u32, u32) {
        self.frame.size()
    }
    fn next_frame(&mut self) -> Result<Option<(FrameInfo, Frame)>> {
        if self.next >= self.count {
            return Ok(None);
        }
        self.next += 1;
        let info = FrameInfo {
            index: self.next - 1,
            name: format!("{:05}.png", self.next),
            time: None,
        };
        Ok(Some((info, self.frame.clone())))
    }
}

/// Reads `source`, keeping every `extract_nth_frame`-th frame (the first, then every n-th) up
/// to `max_frames`, and stores the kept frames as loop 0 (frames already stored are not
/// rewritten). Returns the kept frames' infos, re-indexed from 0, and whether any has alpha.
pub fn store_source(
    source: &mut dyn FrameSource,
    store: &mut dyn FrameStore,
    max_frames: Option<usize>,
    extract_nth_frame: usize,
) -> Result<(Vec<FrameInfo>, bool)> {
    if extract_nth_frame == 0 {
        return Err(Error::setting(
            "extract_nth_frame",
            "must be at least 1 (1 keeps every frame)",
        ));
    }
    let mut kept = Vec::new();
    let mut has_alpha = false;
    let mut k = 0usize;
    while max_frames.is_none_or(|m| kept.len() < m) {
        let Some((mut info, frame)) = source.next_frame()? else {
            break;
        };
        k += 1;
        if (k - 1) % extract_nth_frame != 0 {
            continue;
        }
        let index = kept.len();
        has_alpha |= frame.has_alpha;
        if !store.contains(0, index) {
            store.put(0, index, ImageF32::from_rgba(&frame.image))?;
        }
        info.index = index;
        kept.push(info);
    }
    if kept.is_empty() {
        return Err(Error::setting(
            "input_directory",
            "the input has no frames to loop over",
        ));
    }
    Ok((kept, has_alpha))
}
