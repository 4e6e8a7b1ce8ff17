//! Video mode: carries stylized keyframes through a frame folder (first version).
//!
//! Every key propagates frame by frame towards its neighbouring keys (forward to the next key,
//! backward to the previous one), each frame synthesized by [`propagate_with_error`] from the
//! key with three guides built from the video:
//!
//! - **colour**: the key's source frame → the current frame;
//! - **edges**: the blurred gradient magnitude of the key's source frame → the current frame's
//!   ([`edge_map`]), which holds strokes to the outlines they belong to;
//! - **position**: the identity coordinate map → that map advected by optical flow
//!   ([`crate::flow`]) from the key to the current frame, so patches stay near where the motion
//!   takes them;
//! - **temporal**: the key → the previous output warped into the current frame by flow, which
//!   keeps consecutive outputs consistent.
//!
//! Between two keys both sequences exist; they are blended per pixel with weights from their
//! (smoothed) match errors, so each pixel comes mostly from the key that explains it better,
//! and the blend's local contrast is restored to the inputs' (a histogram-preserving blend after
//! Jamriška et al.; see `blend.rs`), so the middle of a span is not washed out. With
//! [`Blend::Gradient`] (off by default) the paper's gradient-domain fix follows: each pixel
//! keeps the gradients of the lower-error side, the blend is the data term of a screened
//! Poisson solve, so no seam shows where the sides switch. Frames stream: the forward sequence
//! of a span goes to a hidden folder in the output and is blended while the backward sequence
//! is computed, so memory does not grow with the clip.
//!
//! Resume: the output folder holds a settings key ([`SETTINGS_KEY_FILE`]: a hash of the options
//! and of the names, sizes and modification times of the frames, keys and masks). A run with
//! the same key skips every span (a key, the frames before the first key, between two keys,
//! after the last key) whose output frames all exist and recomputes the others, except that
//! the chains before the first key and after the last one (unbounded in length) save their
//! state after every frame and go on from it; a run with another key first deletes the
//! earlier run's output frames and checkpoints.

use super::blend::{self, Blend};
use super::{propagate_with_error, Guide, PropagateParams, Synthesis};
use crate::error::{Error, Result};
use crate::flow::{compute_flow, warp, FlowParams, Pyramid};
use crate::frames::{list_frames, read_frame, write_png, Frame};
use crate::imageops::blur::gaussian_blur;
use crate::imageops::Plane;
use crate::loopback::file_stamps;
use crate::progress::{Event, Progress};
use image::{GrayImage, Rgba, RgbaImage};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Settings of [`propagate_video`].
#[derive(Debug, Clone)]
pub struct VideoOptions {
    /// The synthesis knobs (style weight, patch size, iterations...).
    pub params: PropagateParams,
    /// Weight of the colour guide (key's source frame → current frame).
    pub color_weight: f32,
    /// Weight of the edge guide ([`edge_map`] of the key's frame → of the current frame);
    /// 0 turns it off.
    pub edge_weight: f32,
    /// Weight of the positional guide (coordinates advected by flow); 0 turns it off.
    pub position_weight: f32,
    /// Weight of the temporal guide (previous output warped by flow); 0 turns it off.
    pub temporal_weight: f32,
    /// The optical flow settings for the positional and temporal guides.
    pub flow: FlowParams,
    /// Folder of masks named like the frames (white: stylize, black: keep the source frame);
    /// `None` stylizes everything.
    pub mask_dir: Option<PathBuf>,
    /// How the two results between two keys are combined (default: the histogram-preserving
    /// blend, without the gradient-domain fix).
    pub blend: Blend,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            params: PropagateParams::default(),
            color_weight: 6.0,
            edge_weight: EDGE_WEIGHT,
            position_weight: 2.0,
            temporal_weight: 1.0,
            flow: FlowParams::default(),
            mask_dir: None,
            blend: Blend::default(),
        }
    }
}

/// What [`propagate_video`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoReport {
    /// Frames written.
    pub frames: usize,
    /// Keys used.
    pub keys: usize,
    /// Frames found written by an earlier run with the same settings and skipped.
    pub skipped: usize,
    /// Whether an earlier run's output frames were deleted because its settings differed.
    pub discarded_stale: bool,
}

/// Default weight of the edge guide.
pub const EDGE_WEIGHT: f32 = 2.0;

/// Name of the settings key file in the output folder (see the module docs on resume).
pub const SETTINGS_KEY_FILE: &str = ".propagate-settings-key";
/// Checkpoints of the chains before the first key and after the last one.
const CHAIN_HEAD: &str = ".propagate-chain-head";
const CHAIN_TAIL: &str = ".propagate-chain-tail";

/// The edge guide of a frame: the gradient magnitude of its luma after a Gaussian blur of
/// σ = 1 px, times 2 (so a sharp black-white step reaches about 200), blurred again by σ = 1 px
/// so patches feel an edge a little before they reach it; grey, opaque.
pub fn edge_map(frame: &RgbaImage) -> RgbaImage {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let luma = Plane::from_vec(
        w,
        h,
        frame
            .pixels()
            .map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32)
            .collect(),
    )
    .expect("luma plane size");
    let l = gaussian_blur(&luma, 1.0);
    let at = |x: usize, y: usize| l.data()[y * w + x];
    let mag = Plane::from_fn(w, h, |x, y| {
        let gx = at((x + 1).min(w - 1), y) - at(x.saturating_sub(1), y);
        let gy = at(x, (y + 1).min(h - 1)) - at(x, y.saturating_sub(1));
        (gx * gx + gy * gy).sqrt()
    });
    let mag = gaussian_blur(&mag, 1.0);
    RgbaImage::from_fn(frame.width(), frame.height(), |x, y| {
        let v = mag.data()[y as usize * w + x as usize]
            .round()
            .clamp(0.0, 255.0) as u8;
        Rgba([v, v, v, 255])
    })
}

/// The resume key of a job: its options and the stamps of its input files.
fn settings_key(frames_dir: &Path, keys_dir: &Path, opts: &VideoOptions) -> String {
    let mut files = file_stamps(frames_dir);
    files.extend(file_stamps(keys_dir));
    if let Some(m) = &opts.mask_dir {
        files.extend(file_stamps(m));
    }
    let files = serde_json::to_string(&files).expect("file stamps serialize");
    crate::run::hash_bytes(format!("propagate-video 1\n{opts:?}\n{files}").as_bytes())
}

/// File stem of a path, for matching keys and masks to frames.
fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The images of a folder by stem.
fn by_stem(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    Ok(list_frames(dir)?
        .into_iter()
        .map(|p| (stem(&p), p))
        .collect())
}

/// Coordinates as colours: red = x, green = y (0..=255 across the frame).
fn position_map(w: u32, h: u32) -> RgbaImage {
    let sx = 255.0 / (w.max(2) - 1) as f32;
    let sy = 255.0 / (h.max(2) - 1) as f32;
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([
            (x as f32 * sx).round() as u8,
            (y as f32 * sy).round() as u8,
            0,
            255,
        ])
    })
}

/// The job's inputs, checked up front.
struct Job<'a> {
    frames: Vec<PathBuf>,
    /// Sorted frame indices of the keys, with the key files.
    keys: Vec<(usize, PathBuf)>,
    masks: Option<HashMap<String, PathBuf>>,
    size: (u32, u32),
    out_dir: &'a Path,
    opts: &'a VideoOptions,
}

impl Job<'_> {
    fn read_sized(&self, path: &Path, what: &str) -> Result<RgbaImage> {
        let img = read_frame(path)?.image;
        if img.dimensions() != self.size {
            return Err(Error::bad_input(
                path,
                format!(
                    "this {what} is {}x{} but the frames are {}x{}; it must match the frame it \
                     belongs to",
                    img.width(),
                    img.height(),
                    self.size.0,
                    self.size.1
                ),
            ));
        }
        Ok(img)
    }

    fn out_path(&self, t: usize) -> PathBuf {
        self.out_dir.join(format!("{}.png", stem(&self.frames[t])))
    }

    /// Applies frame `t`'s mask (if any) and writes the output frame.
    fn write(&self, t: usize, mut image: RgbaImage, source: &RgbaImage) -> Result<()> {
        if let Some(masks) = &self.masks {
            let name = stem(&self.frames[t]);
            let path = masks.get(&name).ok_or_else(|| {
                Error::bad_input(
                    &self.frames[t],
                    "has no mask of the same name in the mask folder; add one or leave out \
                     --mask-dir",
                )
            })?;
            let mask: GrayImage =
                image::DynamicImage::ImageRgba8(self.read_sized(path, "mask")?).to_luma8();
            crate::stylize::apply_mask(&mut image, source, &mask, 0.5);
        }
        write_png(&self.out_path(t), &Frame::opaque(image))
    }

    /// Propagates key `k` (frame index) over `targets` (consecutive, moving away from `k`),
    /// handing each synthesis to `sink` with the target frame. With `resume`, the chain goes on
    /// from that state (and `targets` start after its frame); with `checkpoint`, the state
    /// after each frame is saved there.
    fn chain(
        &self,
        k: usize,
        key: &RgbaImage,
        targets: impl Iterator<Item = usize>,
        mut sink: impl FnMut(usize, Synthesis, &RgbaImage) -> Result<()>,
        progress: &dyn Progress,
        (resume, checkpoint): (Option<ChainState>, Option<&Path>),
    ) -> Result<()> {
        let o = self.opts;
        let key_frame = self.read_sized(&self.frames[k], "frame")?;
        let key_edges = edge_map(&key_frame);
        let identity = position_map(self.size.0, self.size.1);
        let (mut prev_pyr, mut prev_out, mut pos) = match resume {
            Some(st) => {
                let frame = self.read_sized(&self.frames[st.t], "frame")?;
                (Pyramid::for_params(&frame, &o.flow), st.out, st.pos)
            }
            None => (
                Pyramid::for_params(&key_frame, &o.flow),
                key.clone(),
                identity.clone(),
            ),
        };
        for t in targets {
            if progress.should_stop() {
                return Err(Error::Interrupted);
            }
            let cur = self.read_sized(&self.frames[t], "frame")?;
            let cur_pyr = Pyramid::for_params(&cur, &o.flow);
            let back = compute_flow(&cur_pyr, &prev_pyr, &o.flow)?;
            let (warped_out, _) = warp(&prev_out, &back)?;
            let (pos_t, _) = warp(&pos, &back)?;
            let cur_edges = edge_map(&cur);
            let candidates = [
                (&key_frame, &cur, o.color_weight),
                (&key_edges, &cur_edges, o.edge_weight),
                (&identity, &pos_t, o.position_weight),
                (key, &warped_out, o.temporal_weight),
            ];
            let guides: Vec<Guide> = candidates
                .iter()
                .filter(|(_, _, w)| *w > 0.0)
                .map(|&(source, target, weight)| Guide {
                    source,
                    target,
                    weight,
                })
                .collect();
            let syn = propagate_with_error(key, &guides, &o.params)?;
            prev_out = syn.image.clone();
            pos = pos_t;
            prev_pyr = cur_pyr;
            sink(t, syn, &cur)?;
            if let Some(path) = checkpoint {
                ChainState::save(path, t, &prev_out, &pos)?;
            }
        }
        Ok(())
    }
}

/// Where a single-sided chain (before the first key, after the last) stands after frame `t`:
/// its last output before masking and the advected positions, all the state it carries, so
/// an interrupted chain resumes exactly where it stopped.
struct ChainState {
    t: usize,
    out: RgbaImage,
    pos: RgbaImage,
}

impl ChainState {
    /// Saves the state atomically: `t`, width, height (u64/u32/u32 little-endian), then the
    /// raw RGBA bytes of the output and of the positions.
    fn save(path: &Path, t: usize, out: &RgbaImage, pos: &RgbaImage) -> Result<()> {
        let mut bytes = Vec::with_capacity(16 + out.as_raw().len() * 2);
        bytes.extend_from_slice(&(t as u64).to_le_bytes());
        bytes.extend_from_slice(&out.width().to_le_bytes());
        bytes.extend_from_slice(&out.height().to_le_bytes());
        bytes.extend_from_slice(out.as_raw());
        bytes.extend_from_slice(pos.as_raw());
        crate::run::atomic_write(path, &bytes)
    }

    /// The saved state, if there is one of frames of `size` (anything else counts as none).
    fn load(path: &Path, size: (u32, u32)) -> Option<ChainState> {
        let bytes = std::fs::read(path).ok()?;
        let t = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
        let w = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
        let h = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?);
        let len = (w as usize) * (h as usize) * 4;
        if (w, h) != size || bytes.len() != 16 + 2 * len {
            return None;
        }
        let out = RgbaImage::from_raw(w, h, bytes[16..16 + len].to_vec())?;
        let pos = RgbaImage::from_raw(w, h, bytes[16 + len..].to_vec())?;
        Some(ChainState { t, out, pos })
    }
}

/// Propagates the keys in `keys_dir` (stylized frames named like the frames of `frames_dir`
/// they belong to) to every frame, writing `out_dir/NAME.png` for each frame `NAME`. Keys are
/// copied through (masked). A key without a frame of its name, a key, frame or mask of the
/// wrong size, or a frame without a mask (with a mask folder) is an error naming the file.
pub fn propagate_video(
    frames_dir: &Path,
    keys_dir: &Path,
    out_dir: &Path,
    opts: &VideoOptions,
    progress: &dyn Progress,
) -> Result<VideoReport> {
    opts.params.validate()?;
    opts.flow.validate()?;
    for (name, w) in [
        ("color-weight", opts.color_weight),
        ("edge-weight", opts.edge_weight),
        ("position-weight", opts.position_weight),
        ("temporal-weight", opts.temporal_weight),
    ] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::setting(
                name,
                format!("{w} is not a finite number >= 0"),
            ));
        }
    }
    let frames = list_frames(frames_dir)?;
    if frames.is_empty() {
        return Err(Error::bad_input(frames_dir, "holds no frames"));
    }
    let index: HashMap<String, usize> = frames
        .iter()
        .enumerate()
        .map(|(i, p)| (stem(p), i))
        .collect();
    let mut keys = Vec::new();
    for key in list_frames(keys_dir)? {
        let Some(&i) = index.get(&stem(&key)) else {
            return Err(Error::bad_input(
                &key,
                format!(
                    "no frame named {} in {}; name each key like the frame it stylizes",
                    stem(&key),
                    frames_dir.display()
                ),
            ));
        };
        keys.push((i, key));
    }
    if keys.is_empty() {
        return Err(Error::bad_input(
            keys_dir,
            "holds no keys; put at least one stylized frame there, named like its frame",
        ));
    }
    keys.sort();
    let masks = opts.mask_dir.as_deref().map(by_stem).transpose()?;
    let size = crate::frames::image_header(&frames[0])?.0;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    // The output frames are named like the frames (and keys), and a run with new settings
    // deletes the old ones: the output must be a folder of its own.
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let out_c = canonical(out_dir);
    for (what, dir) in [("frames", frames_dir), ("keys", keys_dir)]
        .into_iter()
        .chain(opts.mask_dir.as_deref().map(|m| ("masks", m)))
    {
        if canonical(dir) == out_c {
            return Err(Error::bad_input(
                out_dir,
                format!("is also the {what} folder; write the output to a folder of its own"),
            ));
        }
    }
    let job = Job {
        frames,
        keys,
        masks,
        size,
        out_dir,
        opts,
    };
    // Every key is decoded and checked before any work, so that a bad key late in the clip
    // fails the run at once; afterwards at most two keys are held at a time.
    for (_, p) in &job.keys {
        job.read_sized(p, "key")?;
    }
    let n = job.frames.len();
    // Resume: outputs count as done only under the same settings key; other settings' outputs
    // are deleted before the new key is written, so they can never be taken for done later.
    let settings = settings_key(frames_dir, keys_dir, opts);
    let key_path = out_dir.join(SETTINGS_KEY_FILE);
    let same = std::fs::read_to_string(&key_path).is_ok_and(|k| k == settings);
    let mut discarded_stale = false;
    let done: Vec<bool> = (0..n)
        .map(|t| -> Result<bool> {
            let path = job.out_path(t);
            if !path.exists() {
                return Ok(false);
            }
            if same {
                return Ok(true);
            }
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            discarded_stale = true;
            Ok(false)
        })
        .collect::<Result<_>>()?;
    let checkpoints = [CHAIN_HEAD, CHAIN_TAIL].map(|name| out_dir.join(name));
    if !same {
        for c in checkpoints.iter().filter(|c| c.exists()) {
            std::fs::remove_file(c).map_err(|e| Error::io(c, e))?;
        }
        crate::run::atomic_write(&key_path, settings.as_bytes())?;
    }
    progress.event(Event::Start {
        stage: "propagate".into(),
        total: Some(n as u64),
    });
    let counter = std::sync::atomic::AtomicU64::new(0);
    let skipped = std::sync::atomic::AtomicUsize::new(0);
    let report = |t: usize, was_done: bool| {
        if was_done {
            skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        progress.event(Event::Frame {
            stage: "propagate".into(),
            index: counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            name: stem(&job.frames[t]),
            skipped: was_done,
        })
    };
    // A span whose outputs all exist is skipped (reported as such); `true` if it was.
    let skip_if_done = |span: std::ops::Range<usize>| {
        let all = span.clone().all(|t| done[t]);
        if all {
            span.for_each(|t| report(t, true));
        }
        all
    };
    let write_out = |t: usize, s: Synthesis, src: &RgbaImage| {
        job.write(t, s.image, src)?;
        report(t, false);
        Ok(())
    };
    // A single-sided chain (`targets` in chain order) resumes from its checkpoint when every
    // output up to the checkpoint's frame exists.
    let single = |k: usize, key: &RgbaImage, targets: Vec<usize>, ckpt: &Path| -> Result<()> {
        let state = ChainState::load(ckpt, size).and_then(|st| {
            let p = targets.iter().position(|&t| t == st.t)?;
            targets[..=p].iter().all(|&t| done[t]).then_some((p, st))
        });
        let rest = match &state {
            Some((p, _)) => {
                targets[..=*p].iter().for_each(|&t| report(t, true));
                &targets[p + 1..]
            }
            None => &targets[..],
        };
        let resume = state.map(|(_, st)| st);
        job.chain(
            k,
            key,
            rest.iter().copied(),
            write_out,
            progress,
            (resume, Some(ckpt)),
        )?;
        std::fs::remove_file(ckpt).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(Error::io(ckpt, e)),
        })
    };
    let tmp = out_dir.join(".propagate-forward");
    // Keys are read one ahead (this key and the next), never all at once: memory does not grow
    // with the number of keys.
    let mut next_key = match job.keys.first() {
        Some((_, p)) => Some(job.read_sized(p, "key")?),
        None => None,
    };
    for (j, (k, _)) in job.keys.iter().enumerate() {
        let k = *k;
        let key = next_key.take().expect("read ahead of its turn");
        next_key = match job.keys.get(j + 1) {
            Some((_, p)) => Some(job.read_sized(p, "key")?),
            None => None,
        };
        let key = &key;
        if !skip_if_done(k..k + 1) {
            let source = job.read_sized(&job.frames[k], "frame")?;
            job.write(k, key.clone(), &source)?;
            report(k, false);
        }
        // Frames before the first key: backward from it alone.
        if j == 0 && !skip_if_done(0..k) {
            single(k, key, (0..k).rev().collect(), &checkpoints[0])?;
        }
        let next = job.keys.get(j + 1).map(|(i, _)| *i);
        match next {
            // Frames after the last key: forward from it alone.
            None if !skip_if_done(k + 1..n) => {
                single(k, key, (k + 1..n).collect(), &checkpoints[1])?
            }
            Some(b) if b > k + 1 && !skip_if_done(k + 1..b) => {
                std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
                let tmp_path = |t: usize, ext: &str| tmp.join(format!("{t}.{ext}"));
                job.chain(
                    k,
                    key,
                    k + 1..b,
                    |t, s, _| {
                        write_png(&tmp_path(t, "png"), &Frame::opaque(s.image))?;
                        crate::run::atomic_write(
                            &tmp_path(t, "err"),
                            bytemuck::cast_slice(&s.error),
                        )
                    },
                    progress,
                    (None, None),
                )?;
                job.chain(
                    b,
                    next_key.as_ref().expect("a next key exists in this arm"),
                    (k + 1..b).rev(),
                    |t, s, src| {
                        let fwd = read_frame(&tmp_path(t, "png"))?.image;
                        let bytes = std::fs::read(tmp_path(t, "err"))
                            .map_err(|e| Error::io(tmp_path(t, "err"), e))?;
                        let err_f: Vec<f32> = bytes
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                        let fwd = Synthesis {
                            image: fwd,
                            error: err_f,
                        };
                        let out = blend::blend_syntheses(&fwd, &s, opts.blend)?.image;
                        job.write(t, out, src)?;
                        report(t, false);
                        Ok(())
                    },
                    progress,
                    (None, None),
                )?;
                std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            _ => {}
        }
    }
    progress.event(Event::Finish {
        stage: "propagate".into(),
    });
    Ok(VideoReport {
        frames: n,
        keys: job.keys.len(),
        skipped: skipped.into_inner(),
        discarded_stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_map_marks_edges_and_not_flat_areas() {
        let step = RgbaImage::from_fn(40, 30, |x, _| {
            let v = if x < 20 { 20 } else { 230 };
            Rgba([v, v, v, 255])
        });
        let e = edge_map(&step);
        for y in 0..30 {
            assert!(e.get_pixel(19, y).0[0] >= 100, "weak edge at row {y}");
            assert!(e.get_pixel(20, y).0[0] >= 100, "weak edge at row {y}");
            for x in (0..14).chain(26..40) {
                assert_eq!(e.get_pixel(x, y).0, [0, 0, 0, 255], "({x},{y}) is flat");
            }
        }
    }

    #[test]
    fn edge_weight_is_checked() {
        let d = std::env::temp_dir();
        let opts = VideoOptions {
            edge_weight: -1.0,
            ..Default::default()
        };
        let e = propagate_video(&d, &d, &d, &opts, &crate::NoProgress).unwrap_err();
        assert!(e.to_string().contains("edge-weight"), "{e}");
    }
}
