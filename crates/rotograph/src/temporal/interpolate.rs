//! Frame interpolation from bidirectional optical flow: in-betweens at any time τ in (0, 1)
//! between two frames A and B.
//!
//! 1. Both flows are computed, A → B and B → A, and the forward-backward check marks the pixels
//!    of each frame that stay visible in the other ([`crate::flow::occlusion_mask`]).
//! 2. *Flow projection*: every pixel of A is carried to where it is at time τ (x + τ F_AB) and
//!    every pixel of B back to where it was (x + (1 − τ) F_BA); each splats its A → B motion
//!    there (bilinear footprint). Pixels that fail the check (about to be covered) splat with a
//!    small weight, so a visible surface wins where two land on one place. Places nothing lands
//!    on are filled from their surroundings by push-pull (coarse-to-fine hole filling). This is
//!    the projection of Baker et al. ("A Database and Evaluation Methodology for Optical Flow",
//!    IJCV 2011) done from both ends.
//! 3. With the motion D through each pixel of the in-between, A is sampled at x − τ D and B at
//!    x + (1 − τ) D (backward warps, bicubic so that fine texture stays sharp), and the two are
//!    blended by temporal distance, (1 − τ) and τ, except where the check says one side sees
//!    something the other cannot: where A's sample is occluded in B, B's sample is dropped, and
//!    where B's sample was hidden in A, A's is.
//!
//! Everything is deterministic. [`interpolate_sequence`] streams a [`FrameSource`], building
//! each frame's pyramid once for both pairs it belongs to.

use super::consistency::OCCLUSION_TOLERANCE;
use crate::error::{Error, Result};
use crate::flow::{compute_flow, occlusion_mask, FlowField, FlowParams, Pyramid};
use crate::frames::{Frame, FrameSource};
use crate::progress::{Event, Progress};
use image::RgbaImage;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Splat weight of a pixel that fails the forward-backward check (relative to 1 for a reliable
/// one): enough to fill a place nothing reliable reaches, too little to cover a visible surface.
const UNRELIABLE_WEIGHT: f32 = 0.05;

/// The motion between two frames A and B that in-betweens are made from: both flows and the
/// visibility of each frame's pixels in the other.
#[derive(Debug, Clone)]
pub struct PairMotion {
    forward: FlowField,
    backward: FlowField,
    /// 0..1 per pixel of A: visible in B (passes the forward-backward check).
    visible_a: Vec<f32>,
    /// 0..1 per pixel of B: visible in A.
    visible_b: Vec<f32>,
}

impl PairMotion {
    /// The motion between the pyramids of frames A and B (both flows, computed in parallel).
    pub fn between(a: &Pyramid, b: &Pyramid, params: &FlowParams) -> Result<Self> {
        let (forward, backward) =
            rayon::join(|| compute_flow(a, b, params), || compute_flow(b, a, params));
        Self::from_flows(forward?, backward?)
    }

    /// The motion from given flows: `forward` from A to B, `backward` from B to A (one size).
    pub fn from_flows(forward: FlowField, backward: FlowField) -> Result<Self> {
        if (forward.width(), forward.height()) != (backward.width(), backward.height()) {
            return Err(Error::setting(
                "flow",
                format!(
                    "the forward flow is {}x{} but the backward flow is {}x{}; they must be of \
                     one size",
                    forward.width(),
                    forward.height(),
                    backward.width(),
                    backward.height()
                ),
            ));
        }
        let unit = |m: image::GrayImage| -> Vec<f32> {
            m.into_raw().into_iter().map(|v| v as f32 / 255.0).collect()
        };
        let (ma, mb) = rayon::join(
            || occlusion_mask(&forward, &backward, OCCLUSION_TOLERANCE),
            || occlusion_mask(&backward, &forward, OCCLUSION_TOLERANCE),
        );
        Ok(PairMotion {
            visible_a: unit(ma),
            visible_b: unit(mb),
            forward,
            backward,
        })
    }

    /// Frame size (width, height).
    pub fn size(&self) -> (usize, usize) {
        (self.forward.width(), self.forward.height())
    }

    /// Fraction of A's pixels that pass the forward-backward check (0..1).
    pub fn coverage(&self) -> f64 {
        let n = self.visible_a.len().max(1);
        self.visible_a.iter().map(|&v| v as f64).sum::<f64>() / n as f64
    }

    /// The A → B motion of the trajectory through each pixel of the in-between at `tau`
    /// (projected from both frames, holes filled). A's pixel for it is at x − τ D, B's at
    /// x + (1 − τ) D.
    pub fn motion_at(&self, tau: f32) -> FlowField {
        let (w, h) = self.size();
        let (acc_a, acc_b) = rayon::join(
            || splat(&self.forward, &self.visible_a, tau, 1.0),
            || splat(&self.backward, &self.visible_b, 1.0 - tau, -1.0),
        );
        let mut acc = acc_a;
        for (x, y) in acc.iter_mut().zip(acc_b) {
            x.0 += y.0;
            x.1 += y.1;
            x.2 += y.2;
        }
        let (u, v) = push_pull(acc, w, h);
        FlowField::from_planes(w, h, u, v).expect("planes of the frame size")
    }

    /// The in-between of `a` and `b` at time `tau` (0: `a`, 1: `b`). Both images must have the
    /// size of the flows.
    pub fn frame_at(&self, a: &RgbaImage, b: &RgbaImage, tau: f32) -> Result<RgbaImage> {
        let (w, h) = self.size();
        for (name, img) in [("first", a), ("second", b)] {
            if (img.width() as usize, img.height() as usize) != (w, h) {
                return Err(Error::setting(
                    "frames",
                    format!(
                        "the {name} frame is {}x{} but the motion is {w}x{h}; give the frames \
                         the flow was computed on",
                        img.width(),
                        img.height()
                    ),
                ));
            }
        }
        if !(tau.is_finite() && (0.0..=1.0).contains(&tau)) {
            return Err(Error::setting(
                "time",
                format!("{tau} is not a time between the two frames; use 0 to 1"),
            ));
        }
        let d = self.motion_at(tau);
        let (ra, rb) = (a.as_raw(), b.as_raw());
        let mut out = vec![0u8; w * h * 4];
        out.par_chunks_mut(w * 4).enumerate().for_each(|(y, row)| {
            for x in 0..w {
                let (du, dv) = d.get(x, y);
                let (x0, y0) = (x as f32 - tau * du, y as f32 - tau * dv);
                let (x1, y1) = (x as f32 + (1.0 - tau) * du, y as f32 + (1.0 - tau) * dv);
                let m0 = sample1(&self.visible_a, w, h, x0, y0);
                let m1 = sample1(&self.visible_b, w, h, x1, y1);
                // A's sample hidden in B: B shows the occluder there, drop it (and vice versa).
                let w0 = (1.0 - tau) * (1.0 - m0 * (1.0 - m1));
                let w1 = tau * (1.0 - m1 * (1.0 - m0));
                let sum = w0 + w1;
                let (w0, w1) = if sum > 1e-6 {
                    (w0 / sum, w1 / sum)
                } else {
                    (1.0 - tau, tau)
                };
                let (pa, pb) = (cubic4(ra, w, h, x0, y0), cubic4(rb, w, h, x1, y1));
                for c in 0..4 {
                    row[x * 4 + c] = (w0 * pa[c] + w1 * pb[c]).round().clamp(0.0, 255.0) as u8;
                }
            }
        });
        Ok(RgbaImage::from_raw(w as u32, h as u32, out).expect("image size"))
    }
}

/// Bilinear corners and fractions of a position clamped to a `w` x `h` grid.
#[inline]
fn corners(w: usize, h: usize, x: f32, y: f32) -> ([usize; 4], f32, f32) {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    (
        [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1],
        x - x0 as f32,
        y - y0 as f32,
    )
}

fn sample1(data: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let ([a, b, c, d], fx, fy) = corners(w, h, x, y);
    let top = data[a] + (data[b] - data[a]) * fx;
    let bot = data[c] + (data[d] - data[c]) * fx;
    top + (bot - top) * fy
}

/// Catmull-Rom weights of the four taps around a fraction `t` in 0..1.
#[inline]
fn catmull_rom(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// Bicubic (Catmull-Rom) sample of an RGBA image at a real position, clamped to the borders.
fn cubic4(raw: &[u8], w: usize, h: usize, x: f32, y: f32) -> [f32; 4] {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (fx, fy) = (x.floor(), y.floor());
    let (kx, ky) = (catmull_rom(x - fx), catmull_rom(y - fy));
    let (ix, iy) = (fx as isize, fy as isize);
    let col = |d: isize| (ix + d).clamp(0, w as isize - 1) as usize;
    let cols = [col(-1), col(0), col(1), col(2)];
    let mut out = [0.0f32; 4];
    for (j, wy) in ky.iter().enumerate() {
        let r = (iy + j as isize - 1).clamp(0, h as isize - 1) as usize * w;
        for (k, wx) in kx.iter().enumerate() {
            let p = &raw[(r + cols[k]) * 4..(r + cols[k]) * 4 + 4];
            let wt = wx * wy;
            for c in 0..4 {
                out[c] += wt * p[c] as f32;
            }
        }
    }
    out
}

/// Forward-splats `sign * flow` from each pixel to `pixel + t * flow` with a bilinear footprint,
/// weighted by the pixel's visibility. Returns (Σ w u, Σ w v, Σ w) per pixel.
fn splat(flow: &FlowField, visible: &[f32], t: f32, sign: f32) -> Vec<(f32, f32, f32)> {
    let (w, h) = (flow.width(), flow.height());
    let mut acc = vec![(0.0f32, 0.0f32, 0.0f32); w * h];
    let (fu, fv) = (flow.u(), flow.v());
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (u, v) = (fu[i], fv[i]);
            let (px, py) = (x as f32 + t * u, y as f32 + t * v);
            if !(px > -1.0 && py > -1.0 && px < w as f32 && py < h as f32) {
                continue;
            }
            let rel = UNRELIABLE_WEIGHT + (1.0 - UNRELIABLE_WEIGHT) * visible[i];
            let (fx, fy) = (px.floor(), py.floor());
            let (ax, ay) = (px - fx, py - fy);
            let (ix, iy) = (fx as isize, fy as isize);
            for (dx, dy, wt) in [
                (0, 0, (1.0 - ax) * (1.0 - ay)),
                (1, 0, ax * (1.0 - ay)),
                (0, 1, (1.0 - ax) * ay),
                (1, 1, ax * ay),
            ] {
                let (qx, qy) = (ix + dx, iy + dy);
                if qx < 0 || qy < 0 || qx >= w as isize || qy >= h as isize {
                    continue;
                }
                let wt = wt * rel;
                let o = &mut acc[qy as usize * w + qx as usize];
                o.0 += wt * sign * u;
                o.1 += wt * sign * v;
                o.2 += wt;
            }
        }
    }
    acc
}

/// Push-pull hole filling (Gortler et al., "The Lumigraph", SIGGRAPH 1996): turns splatted sums
/// into a dense field. Confidence is the splat weight capped at 1; each coarser level averages
/// 2x2 cells, and on the way back a pixel keeps its own value in proportion to its confidence
/// and takes the rest from the coarser level.
fn push_pull(acc: Vec<(f32, f32, f32)>, w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    // Each level: (width, height, premultiplied u, v, confidence in 0..1).
    type Level = (usize, usize, Vec<(f32, f32, f32)>);
    let cap = |(u, v, c): (f32, f32, f32)| {
        if c > 1.0 {
            (u / c, v / c, 1.0)
        } else {
            (u, v, c)
        }
    };
    let mut levels: Vec<Level> = vec![(w, h, acc.into_iter().map(cap).collect())];
    loop {
        let (lw, lh, cur) = levels.last().expect("base level");
        if *lw <= 1 && *lh <= 1 {
            break;
        }
        let (nw, nh) = (lw.div_ceil(2), lh.div_ceil(2));
        let mut next = vec![(0.0, 0.0, 0.0); nw * nh];
        for (y, row) in next.chunks_mut(nw).enumerate() {
            for (x, o) in row.iter_mut().enumerate() {
                let mut s = (0.0, 0.0, 0.0);
                for (sx, sy) in [(2 * x, 2 * y), (2 * x + 1, 2 * y), (2 * x, 2 * y + 1)]
                    .into_iter()
                    .chain([(2 * x + 1, 2 * y + 1)])
                {
                    if sx < *lw && sy < *lh {
                        let p = cur[sy * lw + sx];
                        s = (s.0 + p.0, s.1 + p.1, s.2 + p.2);
                    }
                }
                *o = cap(s);
            }
        }
        levels.push((nw, nh, next));
    }
    // Pull: fill each level from the (already filled) coarser one.
    for l in (0..levels.len() - 1).rev() {
        let (upper, lower) = levels.split_at_mut(l + 1);
        let (lw, _, fine) = &mut upper[l];
        let (cw, _, coarse) = &lower[0];
        for (i, p) in fine.iter_mut().enumerate() {
            if p.2 >= 1.0 {
                continue;
            }
            let (x, y) = (i % *lw, i / *lw);
            let c = coarse[(y / 2) * cw + x / 2];
            let (cu, cv) = if c.2 > 0.0 {
                (c.0 / c.2, c.1 / c.2)
            } else {
                (0.0, 0.0)
            };
            let rest = 1.0 - p.2;
            *p = (p.0 + rest * cu, p.1 + rest * cv, 1.0);
        }
    }
    let base = levels.swap_remove(0).2;
    let top = base.iter().map(|p| if p.2 > 0.0 { p.0 / p.2 } else { 0.0 });
    let u: Vec<f32> = top.collect();
    let v: Vec<f32> = base
        .iter()
        .map(|p| if p.2 > 0.0 { p.1 / p.2 } else { 0.0 })
        .collect();
    (u, v)
}

/// `count` evenly spaced in-betweens of `a` and `b` (at τ = 1/(count+1), 2/(count+1), ...),
/// for the two-keyframe mode. The images must be of one size.
pub fn inbetweens(
    a: &RgbaImage,
    b: &RgbaImage,
    count: usize,
    params: &FlowParams,
) -> Result<Vec<RgbaImage>> {
    params.validate()?;
    if a.dimensions() != b.dimensions() {
        return Err(Error::setting(
            "images",
            format!(
                "the two images differ in size ({}x{} and {}x{}); in-betweens need images of \
                 one size",
                a.width(),
                a.height(),
                b.width(),
                b.height()
            ),
        ));
    }
    if count == 0 {
        return Err(Error::setting(
            "count",
            "0 in-betweens asked for; use 1 or more",
        ));
    }
    let (pa, pb) = Pyramid::pair(a, b, params);
    let motion = PairMotion::between(&pa, &pb, params)?;
    (1..=count)
        .map(|k| motion.frame_at(a, b, k as f32 / (count + 1) as f32))
        .collect()
}

/// How many frames [`interpolate_sequence`] makes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// N times the frame rate: N − 1 in-betweens after every frame but the last.
    Factor(usize),
    /// Resample to this frame rate (frames per second); source frames whose time falls on the
    /// new grid are copied.
    Fps(f64),
}

/// Options of [`interpolate_sequence`].
#[derive(Debug, Clone)]
pub struct InterpolateOptions {
    /// Flow engine knobs.
    pub params: FlowParams,
    /// How many frames to make.
    pub timing: Timing,
    /// Frame rate of the source when its frames carry no time (image folders); needed by
    /// [`Timing::Fps`] for them.
    pub source_fps: Option<f64>,
}

impl InterpolateOptions {
    /// Checks the options; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        self.params.validate()?;
        match self.timing {
            Timing::Factor(n) if n < 2 => Err(Error::setting(
                "factor",
                format!("{n} does not add frames; use 2 or more"),
            )),
            Timing::Fps(f) if !(f.is_finite() && f > 0.0 && f <= 1000.0) => Err(Error::setting(
                "fps",
                format!("{f} is not a frame rate; use a number above 0 and at most 1000"),
            )),
            _ => match self.source_fps {
                Some(f) if !(f.is_finite() && f > 0.0 && f <= 1000.0) => Err(Error::setting(
                    "input-fps",
                    format!("{f} is not a frame rate; use a number above 0 and at most 1000"),
                )),
                _ => Ok(()),
            },
        }
    }
}

/// Summary of an [`interpolate_sequence`] run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InterpolateReport {
    /// Frames read.
    pub frames_in: usize,
    /// Frames written.
    pub frames_out: usize,
    /// Of those, in-betweens made from flow (the rest are copies of source frames).
    pub interpolated: usize,
    /// Frame rate of the output, when the source's is known.
    pub fps: Option<f64>,
}

/// Writes the output frames as `%05d.png` from 00001 and reports progress.
struct Writer<'a> {
    dir: &'a Path,
    progress: &'a dyn Progress,
    written: usize,
    interpolated: usize,
    alpha: bool,
}

impl Writer<'_> {
    fn write(&mut self, image: RgbaImage, made: bool) -> Result<()> {
        let name = crate::frames::format_pattern(crate::frames::DEFAULT_PATTERN, self.written + 1)?;
        let frame = Frame {
            image,
            has_alpha: self.alpha,
        };
        crate::frames::write_png(&self.dir.join(&name), &frame)?;
        self.progress.event(Event::Frame {
            stage: "interpolate".into(),
            index: self.written as u64,
            name,
            skipped: false,
        });
        self.written += 1;
        self.interpolated += made as usize;
        Ok(())
    }
}

/// Interpolates the frames of `source` into `out_dir` as `00001.png`, `00002.png`, ... (each
/// written atomically): with [`Timing::Factor`] N, every source frame followed by N − 1
/// in-betweens (the last frame alone); with [`Timing::Fps`], frames at the new rate from the
/// first frame's time to the last's. Each frame's pyramid is built once and serves both of its
/// pairs, and no flow is computed for a pair that needs no in-between. Stops with
/// [`Error::Interrupted`] after the pair in flight when `progress.should_stop()`.
pub fn interpolate_sequence(
    source: &mut dyn FrameSource,
    out_dir: &Path,
    opts: &InterpolateOptions,
    progress: &dyn Progress,
) -> Result<InterpolateReport> {
    opts.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let total = match opts.timing {
        Timing::Factor(n) => source
            .len_hint()
            .map(|len| (len.saturating_sub(1) * n + 1) as u64),
        Timing::Fps(_) => None,
    };
    progress.event(Event::Start {
        stage: "interpolate".into(),
        total,
    });
    let mut out = Writer {
        dir: out_dir,
        progress,
        written: 0,
        interpolated: 0,
        alpha: false,
    };
    // Previous frame: image, pyramid, time.
    let mut prev: Option<(RgbaImage, Pyramid, f64)> = None;
    let mut first_time = 0.0;
    let mut frames_in = 0usize;
    let mut source_fps = opts.source_fps;
    // Index of the next output frame on the --fps grid.
    let mut next_out = 0usize;
    while let Some((info, frame)) = source.next_frame()? {
        frames_in += 1;
        out.alpha |= frame.has_alpha;
        let time = match (info.time, opts.source_fps) {
            (Some(t), _) => t,
            (None, Some(f)) => info.index as f64 / f,
            (None, None) => match opts.timing {
                Timing::Factor(_) => info.index as f64,
                Timing::Fps(_) => {
                    return Err(Error::setting(
                        "input-fps",
                        "the frames carry no time (an image folder); give the frame rate \
                         they were taken at, e.g. --input-fps 24",
                    ))
                }
            },
        };
        if info.time.is_some() && frames_in == 2 {
            if let Some((_, _, t0)) = &prev {
                source_fps = source_fps.or((time > *t0).then(|| 1.0 / (time - t0)));
            }
        }
        let pyr = Pyramid::for_params(&frame.image, &opts.params);
        let Some((pimg, ppyr, ptime)) = prev.take() else {
            first_time = time;
            out.write(frame.image.clone(), false)?;
            next_out = 1;
            prev = Some((frame.image, pyr, time));
            continue;
        };
        // The times τ of this pair's in-betweens, and whether the current frame is on the grid.
        let (taus, copy_cur): (Vec<f32>, bool) = match opts.timing {
            Timing::Factor(n) => ((1..n).map(|k| k as f32 / n as f32).collect(), true),
            Timing::Fps(fps) => {
                let span = time - ptime;
                if span <= 0.0 {
                    return Err(Error::bad_input(
                        info.name.as_str(),
                        format!(
                            "frame {} does not come after the one before it in time; \
                             interpolation needs increasing frame times",
                            info.index + 1
                        ),
                    ));
                }
                let eps = 1e-6 * span;
                let mut taus = Vec::new();
                loop {
                    let t = first_time + next_out as f64 / fps;
                    if t >= time - eps {
                        break;
                    }
                    taus.push(((t - ptime) / span).max(0.0) as f32);
                    next_out += 1;
                }
                let t = first_time + next_out as f64 / fps;
                let on_grid = (t - time).abs() <= eps;
                if on_grid {
                    next_out += 1;
                }
                (taus, on_grid)
            }
        };
        if !taus.is_empty() {
            let motion = PairMotion::between(&ppyr, &pyr, &opts.params)?;
            for tau in taus {
                let img = if tau <= 1e-6 {
                    pimg.clone()
                } else {
                    motion.frame_at(&pimg, &frame.image, tau)?
                };
                out.write(img, tau > 1e-6)?;
            }
        }
        if copy_cur {
            out.write(frame.image.clone(), false)?;
        }
        prev = Some((frame.image, pyr, time));
        if progress.should_stop() {
            return Err(Error::Interrupted);
        }
    }
    progress.event(Event::Finish {
        stage: "interpolate".into(),
    });
    if frames_in < 2 {
        return Err(Error::setting(
            "input",
            format!("interpolation needs at least two frames but the input has {frames_in}"),
        ));
    }
    let fps = match opts.timing {
        Timing::Factor(n) => source_fps.map(|f| f * n as f64),
        Timing::Fps(f) => Some(f),
    };
    Ok(InterpolateReport {
        frames_in,
        frames_out: out.written,
        interpolated: out.interpolated,
        fps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth texture shifted by (dx, dy).
    fn textured(w: u32, h: u32, dx: f32, dy: f32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let (x, y) = (x as f32 - dx, y as f32 - dy);
            let a = (x * 0.17).sin() * (y * 0.11).cos() + 0.5 * ((x + 2.0 * y) * 0.051).sin();
            let b = (x * 0.07 - y * 0.13).cos();
            image::Rgba([
                (128.0 + 90.0 * a) as u8,
                (128.0 + 90.0 * b) as u8,
                (128.0 + 45.0 * (a + b)) as u8,
                255,
            ])
        })
    }

    fn mean_abs(a: &RgbaImage, b: &RgbaImage, margin: u32) -> f64 {
        let (w, h) = a.dimensions();
        let mut s = 0.0;
        let mut n = 0;
        for y in margin..h - margin {
            for x in margin..w - margin {
                for c in 0..3 {
                    s += (a.get_pixel(x, y)[c] as f64 - b.get_pixel(x, y)[c] as f64).abs();
                    n += 1;
                }
            }
        }
        s / n as f64
    }

    #[test]
    fn midpoint_of_a_shift_is_the_half_shift() {
        let (a, b) = (textured(96, 64, 0.0, 0.0), textured(96, 64, 4.0, 2.0));
        let truth = textured(96, 64, 2.0, 1.0);
        let mid = inbetweens(&a, &b, 1, &FlowParams::default()).unwrap();
        assert_eq!(mid.len(), 1);
        let ours = mean_abs(&mid[0], &truth, 8);
        let fade = mean_abs(
            &RgbaImage::from_fn(96, 64, |x, y| {
                let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
                image::Rgba(std::array::from_fn(|c| {
                    ((p[c] as u16 + q[c] as u16) / 2) as u8
                }))
            }),
            &truth,
            8,
        );
        assert!(ours < 2.0, "mean abs error {ours}");
        assert!(ours < fade / 4.0, "ours {ours} vs cross-fade {fade}");
    }

    #[test]
    fn ends_reproduce_the_keyframes() {
        let (a, b) = (textured(64, 48, 0.0, 0.0), textured(64, 48, 3.0, 0.0));
        let params = FlowParams::default();
        let (pa, pb) = Pyramid::pair(&a, &b, &params);
        let m = PairMotion::between(&pa, &pb, &params).unwrap();
        assert!(mean_abs(&m.frame_at(&a, &b, 0.0).unwrap(), &a, 4) < 1.0);
        assert!(mean_abs(&m.frame_at(&a, &b, 1.0).unwrap(), &b, 4) < 1.0);
        assert!(m.frame_at(&a, &b, 1.5).is_err());
        assert!(m.frame_at(&a, &textured(32, 48, 0.0, 0.0), 0.5).is_err());
    }

    #[test]
    fn moving_square_over_texture_keeps_its_place_and_the_revealed_background() {
        // A flat square moves right by 8 px over a static texture: left of the square at the
        // midpoint lies background hidden in A but shown in B.
        let bg = textured(80, 60, 0.0, 0.0);
        let with_square = |x0: u32| {
            let mut img = bg.clone();
            for y in 20..40 {
                for x in x0..x0 + 20 {
                    img.put_pixel(x, y, image::Rgba([250, 20, 20, 255]));
                }
            }
            img
        };
        let (a, b, truth) = (with_square(24), with_square(32), with_square(28));
        let mid = inbetweens(&a, &b, 1, &FlowParams::preset(crate::flow::Preset::Fine)).unwrap();
        let fade = RgbaImage::from_fn(80, 60, |x, y| {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            image::Rgba(std::array::from_fn(|c| {
                ((p[c] as u16 + q[c] as u16) / 2) as u8
            }))
        });
        // The strip left of the square (x 20..32): revealed background and the square's edge.
        let strip = |img: &RgbaImage| image::imageops::crop_imm(img, 20, 18, 12, 24).to_image();
        let (ours, theirs) = (
            mean_abs(&strip(&mid[0]), &strip(&truth), 0),
            mean_abs(&strip(&fade), &strip(&truth), 0),
        );
        assert!(
            ours < theirs / 3.0,
            "strip: ours {ours}, cross-fade {theirs}"
        );
        let (ours, theirs) = (mean_abs(&mid[0], &truth, 4), mean_abs(&fade, &truth, 4));
        assert!(
            ours < 4.0 && ours < theirs / 2.0,
            "ours {ours}, cross-fade {theirs}"
        );
    }

    #[test]
    fn push_pull_fills_holes_from_neighbours() {
        let (w, h) = (8, 6);
        let mut acc = vec![(0.0, 0.0, 0.0); w * h];
        // Only the left half is known: u = 3, v = -1.
        for y in 0..h {
            for x in 0..w / 2 {
                acc[y * w + x] = (3.0, -1.0, 1.0);
            }
        }
        let (u, v) = push_pull(acc, w, h);
        assert!(u.iter().all(|&x| (x - 3.0).abs() < 1e-5), "{u:?}");
        assert!(v.iter().all(|&x| (x + 1.0).abs() < 1e-5), "{v:?}");
    }

    #[test]
    fn options_are_checked() {
        let mut o = InterpolateOptions {
            params: FlowParams::default(),
            timing: Timing::Factor(1),
            source_fps: None,
        };
        assert!(o.validate().is_err());
        o.timing = Timing::Fps(0.0);
        assert!(o.validate().is_err());
        o.timing = Timing::Fps(50.0);
        assert!(o.validate().is_ok());
        o.source_fps = Some(f64::NAN);
        assert!(o.validate().is_err());
    }
}
