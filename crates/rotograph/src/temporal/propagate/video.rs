//! Video mode: carries stylized keyframes through a frame folder (first version).
//!
//! Every key propagates frame by frame towards its neighbouring keys (forward to the next key,
//! backward to the previous one), each frame synthesized by [`propagate_with_error`] from the
//! key with three guides built from the video:
//!
//! - **colour**: the key's source frame → the current frame;
//! - **position**: the identity coordinate map → that map advected by optical flow
//!   ([`crate::flow`]) from the key to the current frame, so patches stay near where the motion
//!   takes them;
//! - **temporal**: the key → the previous output warped into the current frame by flow, which
//!   keeps consecutive outputs consistent.
//!
//! Between two keys both sequences exist; they are blended per pixel with weights from their
//! (smoothed) match errors, so each pixel comes mostly from the key that explains it better.
//! Not yet done: the histogram-preserving blend and gradient-domain fix of Jamriška et al. and
//! an edge guide. Frames stream: the forward sequence of a span goes to a hidden folder in the
//! output and is blended while the backward sequence is computed, so memory does not grow
//! with the clip.

use super::{propagate_with_error, Guide, PropagateParams, Synthesis};
use crate::error::{Error, Result};
use crate::flow::{compute_flow, warp, FlowParams, Pyramid};
use crate::frames::{list_frames, read_frame, write_png, Frame};
use crate::imageops::blur::gaussian_blur;
use crate::imageops::Plane;
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
    /// Weight of the positional guide (coordinates advected by flow); 0 turns it off.
    pub position_weight: f32,
    /// Weight of the temporal guide (previous output warped by flow); 0 turns it off.
    pub temporal_weight: f32,
    /// The optical flow settings for the positional and temporal guides.
    pub flow: FlowParams,
    /// Folder of masks named like the frames (white: stylize, black: keep the source frame);
    /// `None` stylizes everything.
    pub mask_dir: Option<PathBuf>,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            params: PropagateParams::default(),
            color_weight: 6.0,
            position_weight: 2.0,
            temporal_weight: 1.0,
            flow: FlowParams::default(),
            mask_dir: None,
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
    /// handing each synthesis to `sink` with the target frame.
    fn chain(
        &self,
        k: usize,
        key: &RgbaImage,
        targets: impl Iterator<Item = usize>,
        mut sink: impl FnMut(usize, Synthesis, &RgbaImage) -> Result<()>,
        progress: &dyn Progress,
    ) -> Result<()> {
        let o = self.opts;
        let key_frame = self.read_sized(&self.frames[k], "frame")?;
        let identity = position_map(self.size.0, self.size.1);
        let mut prev_pyr = Pyramid::for_params(&key_frame, &o.flow);
        let mut prev_out = key.clone();
        let mut pos = identity.clone();
        for t in targets {
            if progress.should_stop() {
                return Err(Error::Interrupted);
            }
            let cur = self.read_sized(&self.frames[t], "frame")?;
            let cur_pyr = Pyramid::for_params(&cur, &o.flow);
            let back = compute_flow(&cur_pyr, &prev_pyr, &o.flow)?;
            let (warped_out, _) = warp(&prev_out, &back)?;
            let (pos_t, _) = warp(&pos, &back)?;
            let candidates = [
                (&key_frame, &cur, o.color_weight),
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
        }
        Ok(())
    }
}

/// Smoothed error plane of a synthesis.
fn smooth_error(error: Vec<f32>, w: u32, h: u32) -> Plane {
    let plane = Plane::from_vec(w as usize, h as usize, error).expect("error plane size");
    gaussian_blur(&plane, 2.0)
}

/// Per-pixel blend of the forward (`a`) and backward (`b`) syntheses: each pixel weighs the
/// two by the other's smoothed error, so the better-explained one dominates.
fn blend(a: &RgbaImage, ea: &Plane, b: &RgbaImage, eb: &Plane) -> RgbaImage {
    let mut out = a.clone();
    for (i, (p, q)) in out.pixels_mut().zip(b.pixels()).enumerate() {
        let (x, y) = (ea.data()[i].max(0.0), eb.data()[i].max(0.0));
        let wa = if x + y > 0.0 { y / (x + y) } else { 0.5 };
        for c in 0..3 {
            p.0[c] = (wa * p.0[c] as f32 + (1.0 - wa) * q.0[c] as f32).round() as u8;
        }
        p.0[3] = 255;
    }
    out
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
    let job = Job {
        frames,
        keys,
        masks,
        size,
        out_dir,
        opts,
    };
    progress.event(Event::Start {
        stage: "propagate".into(),
        total: Some(job.frames.len() as u64),
    });
    let done = std::sync::atomic::AtomicU64::new(0);
    let report = |t: usize| {
        progress.event(Event::Frame {
            stage: "propagate".into(),
            index: done.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            name: stem(&job.frames[t]),
            skipped: false,
        })
    };
    let n = job.frames.len();
    let tmp = out_dir.join(".propagate-forward");
    let key_images: Vec<RgbaImage> = job
        .keys
        .iter()
        .map(|(_, p)| job.read_sized(p, "key"))
        .collect::<Result<_>>()?;
    for (j, ((k, _), key)) in job.keys.iter().zip(&key_images).enumerate() {
        let source = job.read_sized(&job.frames[*k], "frame")?;
        job.write(*k, key.clone(), &source)?;
        report(*k);
        // Frames before the first key: backward from it alone.
        if j == 0 {
            job.chain(
                *k,
                key,
                (0..*k).rev(),
                |t, s, src| {
                    job.write(t, s.image, src)?;
                    report(t);
                    Ok(())
                },
                progress,
            )?;
        }
        let next = job.keys.get(j + 1).map(|(i, _)| *i);
        match next {
            // Frames after the last key: forward from it alone.
            None => job.chain(
                *k,
                key,
                *k + 1..n,
                |t, s, src| {
                    job.write(t, s.image, src)?;
                    report(t);
                    Ok(())
                },
                progress,
            )?,
            Some(b) if b > k + 1 => {
                std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
                let tmp_path = |t: usize, ext: &str| tmp.join(format!("{t}.{ext}"));
                job.chain(
                    *k,
                    key,
                    *k + 1..b,
                    |t, s, _| {
                        write_png(&tmp_path(t, "png"), &Frame::opaque(s.image))?;
                        crate::run::atomic_write(
                            &tmp_path(t, "err"),
                            bytemuck::cast_slice(&s.error),
                        )
                    },
                    progress,
                )?;
                let (w, h) = size;
                job.chain(
                    b,
                    &key_images[j + 1],
                    (*k + 1..b).rev(),
                    |t, s, src| {
                        let fwd = read_frame(&tmp_path(t, "png"))?.image;
                        let bytes = std::fs::read(tmp_path(t, "err"))
                            .map_err(|e| Error::io(tmp_path(t, "err"), e))?;
                        let err_f: Vec<f32> = bytes
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                        let out = blend(
                            &fwd,
                            &smooth_error(err_f, w, h),
                            &s.image,
                            &smooth_error(s.error, w, h),
                        );
                        job.write(t, out, src)?;
                        report(t);
                        Ok(())
                    },
                    progress,
                )?;
                std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            Some(_) => {}
        }
    }
    progress.event(Event::Finish {
        stage: "propagate".into(),
    });
    Ok(VideoReport {
        frames: n,
        keys: job.keys.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_prefers_the_lower_error() {
        let a = RgbaImage::from_pixel(2, 1, Rgba([200, 0, 0, 255]));
        let b = RgbaImage::from_pixel(2, 1, Rgba([0, 0, 200, 255]));
        let ea = Plane::from_vec(2, 1, vec![0.0, 30.0]).unwrap();
        let eb = Plane::from_vec(2, 1, vec![10.0, 10.0]).unwrap();
        let out = blend(&a, &ea, &b, &eb);
        assert_eq!(out.get_pixel(0, 0).0, [200, 0, 0, 255]);
        assert_eq!(out.get_pixel(1, 0).0, [50, 0, 150, 255]);
    }
}
