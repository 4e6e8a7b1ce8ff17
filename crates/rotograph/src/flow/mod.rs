//! Dense optical flow on the CPU, in the class of Dense Inverse Search (DIS; Kroeger, Timofte,
//! Dai and Van Gool, "Fast Optical Flow using Dense Inverse Search", ECCV 2016).
//!
//! Per pyramid level, coarse to fine: (1) a grid of overlapping patches of the first image is
//! matched in the second by inverse-compositional Gauss-Newton search, started from the flow of
//! the coarser level (or a neighbouring patch, whichever matches better); (2) the patch flows are
//! densified by averaging, each weighted by how well it explains the pixel; (3) variational
//! refinement (brightness and gradient constancy, robust smoothness) polishes the dense field.
//!
//! A [`Pyramid`] is built once per frame and reused for both pairs the frame belongs to
//! ([`flow_sequence`]). [`forward_backward`] gives both directions and [`occlusion_mask`] the
//! forward-backward consistency check; [`warp`] resamples an image along a flow with a validity
//! mask. Flow fields read and write Middlebury `.flo` files ([`FlowField::read_flo`]) and render
//! with the standard colour wheel ([`FlowField::to_color`]).

mod dis;
mod flo;
mod refine;
mod sequence;

pub use sequence::{flow_sequence, SequenceOptions, SequenceReport};

use crate::error::{Error, Result};
use crate::imageops::Plane;
use image::{GrayImage, RgbaImage};
use rayon::prelude::*;
use std::borrow::Cow;

/// A dense flow field: pixel (x, y) of the first image moves to (x + u, y + v) in the second.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowField {
    width: usize,
    height: usize,
    u: Vec<f32>,
    v: Vec<f32>,
}

impl FlowField {
    /// A zero flow of the given size.
    pub fn zeros(width: usize, height: usize) -> Self {
        FlowField {
            width,
            height,
            u: vec![0.0; width * height],
            v: vec![0.0; width * height],
        }
    }

    /// A field from its horizontal and vertical planes (row-major, `width * height` each);
    /// `None` when the lengths do not match the size.
    pub fn from_planes(width: usize, height: usize, u: Vec<f32>, v: Vec<f32>) -> Option<Self> {
        (u.len() == width * height && v.len() == width * height).then_some(FlowField {
            width,
            height,
            u,
            v,
        })
    }

    /// A field whose vector at each pixel is `f(x, y)`.
    pub fn from_fn(
        width: usize,
        height: usize,
        mut f: impl FnMut(usize, usize) -> (f32, f32),
    ) -> Self {
        let mut out = FlowField::zeros(width, height);
        for y in 0..height {
            for x in 0..width {
                let (u, v) = f(x, y);
                out.u[y * width + x] = u;
                out.v[y * width + x] = v;
            }
        }
        out
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The flow vector at (x, y).
    pub fn get(&self, x: usize, y: usize) -> (f32, f32) {
        let i = y * self.width + x;
        (self.u[i], self.v[i])
    }

    /// Horizontal components, row-major.
    pub fn u(&self) -> &[f32] {
        &self.u
    }

    /// Vertical components, row-major.
    pub fn v(&self) -> &[f32] {
        &self.v
    }

    pub(crate) fn u_mut(&mut self) -> &mut [f32] {
        &mut self.u
    }

    pub(crate) fn v_mut(&mut self) -> &mut [f32] {
        &mut self.v
    }

    /// Bilinear sample of the flow at a real position (clamped to the field).
    pub fn sample(&self, x: f32, y: f32) -> (f32, f32) {
        (
            bilinear(&self.u, self.width, self.height, x, y),
            bilinear(&self.v, self.width, self.height, x, y),
        )
    }

    /// Mean endpoint error against a reference field, over the pixels where `valid` (if given)
    /// is non-zero and the reference is finite. `None` when the sizes differ or nothing counts.
    pub fn endpoint_error(&self, truth: &FlowField, valid: Option<&GrayImage>) -> Option<f64> {
        if self.width != truth.width || self.height != truth.height {
            return None;
        }
        if let Some(m) = valid {
            if (m.width() as usize, m.height() as usize) != (self.width, self.height) {
                return None;
            }
        }
        let mut sum = 0.0f64;
        let mut n = 0usize;
        for i in 0..self.u.len() {
            if valid.is_some_and(|m| m.as_raw()[i] == 0) {
                continue;
            }
            let (tu, tv) = (truth.u[i], truth.v[i]);
            if !tu.is_finite() || !tv.is_finite() || tu.abs() > 1e9 || tv.abs() > 1e9 {
                continue;
            }
            let du = (self.u[i] - tu) as f64;
            let dv = (self.v[i] - tv) as f64;
            sum += (du * du + dv * dv).sqrt();
            n += 1;
        }
        (n > 0).then(|| sum / n as f64)
    }
}

/// Speed/accuracy presets of [`FlowParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Stops at half resolution with a sparser patch grid.
    Fast,
    /// The default balance: half-resolution search and refinement, upsampled.
    #[default]
    Medium,
    /// Full resolution, dense patch grid, more refinement.
    Fine,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fast" => Ok(Preset::Fast),
            "medium" => Ok(Preset::Medium),
            "fine" => Ok(Preset::Fine),
            _ => Err(Error::setting(
                "preset",
                format!("`{s}` is not a flow preset; use fast, medium or fine"),
            )),
        }
    }
}

/// Knobs of the flow engine. Start from [`FlowParams::preset`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlowParams {
    /// Finest pyramid level the patch search runs on (0: full resolution); finer levels get
    /// the flow upsampled from there and refined.
    pub finest_level: usize,
    /// Pyramid level the search starts from; `None` picks it from the image size.
    pub coarsest_level: Option<usize>,
    /// Side of the square patches in pixels.
    pub patch_size: usize,
    /// Distance between neighbouring patches (smaller: more overlap, slower, smoother).
    pub patch_stride: usize,
    /// Gauss-Newton iterations per patch, split between the two propagation passes (the first
    /// gets the odd one).
    pub patch_iterations: usize,
    /// Outer (fixed-point) iterations of the variational refinement per level (0: none).
    pub refine_iterations: usize,
    /// Inner SOR sweeps per fixed-point iteration.
    pub sor_iterations: usize,
    /// Fixed-point iterations of the variational refinement on the levels finer than
    /// `finest_level` (where the flow is upsampled, not searched); 0: none.
    pub upsampled_refine_iterations: usize,
    /// Weight of smoothness in the refinement.
    pub alpha: f32,
    /// Weight of brightness constancy in the refinement.
    pub delta: f32,
    /// Weight of gradient constancy in the refinement.
    pub gamma: f32,
}

impl Default for FlowParams {
    fn default() -> Self {
        FlowParams::preset(Preset::Medium)
    }
}

impl FlowParams {
    /// The parameters of a preset.
    pub fn preset(p: Preset) -> Self {
        let base = FlowParams {
            finest_level: 1,
            coarsest_level: None,
            patch_size: 8,
            patch_stride: 4,
            patch_iterations: 16,
            refine_iterations: 5,
            sor_iterations: 5,
            upsampled_refine_iterations: 0,
            alpha: 20.0,
            delta: 5.0,
            gamma: 10.0,
        };
        match p {
            Preset::Fast => FlowParams {
                finest_level: 2,
                patch_iterations: 12,
                ..base
            },
            // Like DIS MEDIUM: the search and refinement stop at half resolution and the flow
            // is upsampled from there (a full-resolution refinement pass cost 2x the time for
            // ~20 % lower EPE; see BENCHMARKS.md). With the search propagating both ways along
            // the rows, 8 Gauss-Newton steps (4 per pass) and 6 SOR sweeps stay below DIS
            // MEDIUM's EPE on both test sets (0.194 and 2.56 px against 20 steps and 8 sweeps'
            // 0.190 and 2.55) for ~10 % less CPU time.
            Preset::Medium => FlowParams {
                patch_stride: 3,
                patch_iterations: 8,
                sor_iterations: 6,
                ..base
            },
            Preset::Fine => FlowParams {
                finest_level: 0,
                patch_stride: 3,
                patch_iterations: 25,
                ..base
            },
        }
    }

    /// Checks the knobs; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        if self.patch_size < 4 || self.patch_size > 32 {
            return Err(Error::setting(
                "patch-size",
                format!(
                    "{} is out of range; use 4 to 32 (8 is typical)",
                    self.patch_size
                ),
            ));
        }
        if self.patch_stride == 0 || self.patch_stride > self.patch_size {
            return Err(Error::setting(
                "patch-stride",
                format!(
                    "{} is out of range; use 1 to the patch size ({})",
                    self.patch_stride, self.patch_size
                ),
            ));
        }
        for (name, v) in [
            ("alpha", self.alpha),
            ("delta", self.delta),
            ("gamma", self.gamma),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::setting(name, "must be a finite number >= 0"));
            }
        }
        Ok(())
    }
}

/// One pyramid level: the grey image (0-255 scale) and its spatial derivatives.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub img: Plane,
    pub gx: Plane,
    pub gy: Plane,
}

/// A grey image pyramid (each level half the size of the one below) with gradients, built once
/// per frame and shared by every pair the frame is part of.
#[derive(Debug, Clone)]
pub struct Pyramid {
    levels: Vec<Level>,
}

impl Pyramid {
    /// Builds the pyramid of an RGBA image (converted to luma; alpha ignored) with `levels`
    /// levels at most (fewer when the image gets too small).
    pub fn new(image: &RgbaImage, levels: usize) -> Self {
        Self::build(luma(image), levels, 0)
    }

    /// Builds the pyramid of a grey plane (0-255 scale).
    pub fn from_plane(base: Plane, levels: usize) -> Self {
        Self::build(base, levels, 0)
    }

    /// The pyramid with gradients on the levels from `grad_from` up (the finer levels keep
    /// only their image; [`Pyramid::level`] computes their gradients if they are asked for).
    fn build(base: Plane, levels: usize, grad_from: usize) -> Self {
        let mut imgs = vec![base];
        while imgs.len() < levels.max(1) {
            let last = imgs.last().expect("one level");
            if last.width() < 8 || last.height() < 8 {
                break;
            }
            let next = downsample(last);
            imgs.push(next);
        }
        let levels = imgs
            .into_iter()
            .enumerate()
            .map(|(l, img)| {
                let (gx, gy) = if l >= grad_from {
                    gradients(&img)
                } else {
                    (Plane::scratch(0, 0), Plane::scratch(0, 0))
                };
                Level { img, gx, gy }
            })
            .collect();
        Pyramid { levels }
    }

    /// The number of levels a pyramid for `params` should have at this size.
    pub fn levels_for(width: usize, height: usize, params: &FlowParams) -> usize {
        coarsest_level(width, height, params) + 1
    }

    /// Builds the pyramid `params` needs for this image.
    ///
    /// The levels finer than the patch search's finest one get no gradients unless the
    /// parameters refine there (the flow is only upsampled through them): at 640x480 with the
    /// `medium` preset that saves the full-resolution gradient pass of every frame.
    pub fn for_params(image: &RgbaImage, params: &FlowParams) -> Self {
        let n = Self::levels_for(image.width() as usize, image.height() as usize, params);
        let grad_from = if params.upsampled_refine_iterations > 0 {
            0
        } else {
            params.finest_level
        };
        Self::build(luma(image), n, grad_from)
    }

    /// The pyramids of two images, built in parallel.
    pub fn pair(a: &RgbaImage, b: &RgbaImage, params: &FlowParams) -> (Pyramid, Pyramid) {
        rayon::join(
            || Pyramid::for_params(a, params),
            || Pyramid::for_params(b, params),
        )
    }

    /// Size of the full-resolution level.
    pub fn size(&self) -> (usize, usize) {
        (self.levels[0].img.width(), self.levels[0].img.height())
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Always false (a pyramid has at least its base level).
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Level `l` with its gradients (computed here when the pyramid was built without them
    /// for this level, i.e. for other parameters).
    pub(crate) fn level(&self, l: usize) -> Cow<'_, Level> {
        let lv = &self.levels[l];
        if lv.gx.width() == lv.img.width() {
            Cow::Borrowed(lv)
        } else {
            let (gx, gy) = gradients(&lv.img);
            Cow::Owned(Level {
                img: lv.img.clone(),
                gx,
                gy,
            })
        }
    }
}

/// The coarsest level for an image size: the patch grid keeps a few patches across.
fn coarsest_level(width: usize, height: usize, params: &FlowParams) -> usize {
    if let Some(c) = params.coarsest_level {
        return c;
    }
    // About four patches across the larger side at the coarsest level (the rule OpenCV's DIS
    // uses too): coarser levels hold too little texture to match.
    let big = width.max(height) as f32 / (4 * params.patch_size) as f32;
    let l = if big > 1.0 {
        big.log2().round() as usize
    } else {
        0
    };
    l.max(params.finest_level)
}

/// The luma (Rec. 601 weights, 0-255 scale) of an RGBA image; alpha is ignored.
fn luma(image: &RgbaImage) -> Plane {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut base = Plane::scratch(w, h);
    base.data_mut()
        .par_chunks_mut(w.max(1))
        .zip(image.as_raw().par_chunks(4 * w.max(1)))
        .for_each(|(row, px)| {
            for (o, p) in row.iter_mut().zip(px.chunks_exact(4)) {
                *o = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
            }
        });
    base
}

/// 2x2 box downsampling (odd sizes round up; the last row/column is repeated).
fn downsample(src: &Plane) -> Plane {
    let (w, h) = (src.width(), src.height());
    let (nw, nh) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = Plane::scratch(nw, nh);
    out.data_mut()
        .par_chunks_mut(nw)
        .enumerate()
        .for_each(|(y, row)| {
            let y0 = (2 * y).min(h - 1);
            let y1 = (2 * y + 1).min(h - 1);
            let (r0, r1) = (src.row(y0), src.row(y1));
            for (x, o) in row.iter_mut().enumerate() {
                let x0 = (2 * x).min(w - 1);
                let x1 = (2 * x + 1).min(w - 1);
                *o = 0.25 * (r0[x0] + r0[x1] + r1[x0] + r1[x1]);
            }
        });
    out
}

/// Central-difference derivatives (one-sided at the borders).
pub(crate) fn gradients(img: &Plane) -> (Plane, Plane) {
    let (w, h) = (img.width(), img.height());
    let mut gx = Plane::scratch(w, h);
    let mut gy = Plane::scratch(w, h);
    gx.data_mut()
        .par_chunks_mut(w)
        .zip(gy.data_mut().par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (rx, ry))| {
            let r = img.row(y);
            let up = img.row(y.saturating_sub(1));
            let down = img.row((y + 1).min(h - 1));
            // Branch-free interior (vectorises); one-sided differences at the borders.
            let sy = if y == 0 || y + 1 == h { 1.0 } else { 0.5 };
            for ((o, d), u) in ry.iter_mut().zip(down).zip(up) {
                *o = (d - u) * sy;
            }
            if w < 2 {
                rx.fill(0.0);
                return;
            }
            for (o, win) in rx[1..w - 1].iter_mut().zip(r.windows(3)) {
                *o = 0.5 * (win[2] - win[0]);
            }
            rx[0] = r[1] - r[0];
            rx[w - 1] = r[w - 1] - r[w - 2];
        });
    (gx, gy)
}

/// Bilinear sample of a row-major plane at a real position, clamped to the borders.
#[inline]
pub(crate) fn bilinear(data: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let x0 = x as usize;
    let y0 = y as usize;
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let fx = x - x0 as f32;
    let fy = y - y0 as f32;
    let a = data[y0 * w + x0];
    let b = data[y0 * w + x1];
    let c = data[y1 * w + x0];
    let d = data[y1 * w + x1];
    let top = a + (b - a) * fx;
    let bot = c + (d - c) * fx;
    top + (bot - top) * fy
}

/// For each output position along a side of `n` pixels, resampled from a side of `m` with
/// pixel centres aligned: the two source indices (clamped) and the weight of the second.
fn resample_taps(n: usize, m: usize) -> Vec<(usize, usize, f32)> {
    let scale = m as f32 / n as f32;
    (0..n)
        .map(|x| {
            let f = ((x as f32 + 0.5) * scale - 0.5).clamp(0.0, (m - 1) as f32);
            let x0 = f as usize;
            (x0, (x0 + 1).min(m - 1), f - x0 as f32)
        })
        .collect()
}

/// Upsamples a flow field to `(w, h)` (bilinear), scaling the vectors by the size ratio.
pub(crate) fn upsample_flow(f: &FlowField, w: usize, h: usize) -> FlowField {
    let sx = w as f32 / f.width as f32;
    let sy = h as f32 / f.height as f32;
    // The taps are separable: computed once per column and once per row.
    let tx = resample_taps(w, f.width);
    let ty = resample_taps(h, f.height);
    let mut u = vec![0.0; w * h];
    let mut v = vec![0.0; w * h];
    let fw = f.width;
    u.par_chunks_mut(w)
        .zip(v.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (ru, rv))| {
            let (y0, y1, fy) = ty[y];
            for (plane, out, scale) in [(&f.u, ru, sx), (&f.v, rv, sy)] {
                let (r0, r1) = (
                    &plane[y0 * fw..(y0 + 1) * fw],
                    &plane[y1 * fw..(y1 + 1) * fw],
                );
                for (o, &(x0, x1, fx)) in out.iter_mut().zip(&tx) {
                    let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                    let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                    *o = (top + (bot - top) * fy) * scale;
                }
            }
        });
    FlowField {
        width: w,
        height: h,
        u,
        v,
    }
}

/// Flow from the image of `p0` to the image of `p1`. Both pyramids must be of one size; build
/// them with [`Pyramid::for_params`] (or with at least [`Pyramid::levels_for`] levels).
pub fn compute_flow(p0: &Pyramid, p1: &Pyramid, params: &FlowParams) -> Result<FlowField> {
    on_pool(|| compute_flow_here(p0, p1, params))
}

/// Runs `f` on a thread of the current rayon pool (the global one outside any pool), so that
/// the many short parallel loops inside start from a pool thread: from outside, each would
/// wake a pool thread and put the caller to sleep, which measured ~12 % of the flow's CPU time.
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        let mut out = None;
        rayon::scope(|_| out = Some(f()));
        out.expect("the scope ran")
    }
}

/// [`compute_flow`] on the current thread.
fn compute_flow_here(p0: &Pyramid, p1: &Pyramid, params: &FlowParams) -> Result<FlowField> {
    params.validate()?;
    if p0.size() != p1.size() {
        return Err(Error::setting(
            "images",
            format!(
                "the two images differ in size ({}x{} and {}x{}); flow needs images of one size",
                p0.size().0,
                p0.size().1,
                p1.size().0,
                p1.size().1
            ),
        ));
    }
    let (w, h) = p0.size();
    let top = coarsest_level(w, h, params)
        .min(p0.len() - 1)
        .min(p1.len() - 1);
    let finest = params.finest_level.min(top);
    let mut flow: Option<FlowField> = None;
    for l in (finest..=top).rev() {
        let (a, b) = (p0.level(l), p1.level(l));
        let (lw, lh) = (a.img.width(), a.img.height());
        let init = match &flow {
            Some(f) => upsample_flow(f, lw, lh),
            None => FlowField::zeros(lw, lh),
        };
        let mut dense = dis::patch_flow(&a, &b, &init, params);
        if params.refine_iterations > 0 {
            refine::refine(&a, &b, &mut dense, params, params.refine_iterations);
        }
        flow = Some(dense);
    }
    let mut flow = flow.unwrap_or_else(|| FlowField::zeros(w, h));
    for l in (0..finest).rev() {
        let img = &p0.levels[l].img;
        flow = upsample_flow(&flow, img.width(), img.height());
        if params.upsampled_refine_iterations > 0 {
            refine::refine(
                &p0.level(l),
                &p1.level(l),
                &mut flow,
                params,
                params.upsampled_refine_iterations,
            );
        }
    }
    Ok(flow)
}

/// Flow from image `a` to image `b` (builds both pyramids).
pub fn flow(a: &RgbaImage, b: &RgbaImage, params: &FlowParams) -> Result<FlowField> {
    let (p0, p1) = Pyramid::pair(a, b, params);
    compute_flow(&p0, &p1, params)
}

/// Forward (p0 → p1) and backward (p1 → p0) flow.
#[derive(Debug, Clone)]
pub struct FlowPair {
    /// From the first image to the second.
    pub forward: FlowField,
    /// From the second image to the first.
    pub backward: FlowField,
}

/// Both directions of the flow between two frames, computed in parallel.
pub fn forward_backward(p0: &Pyramid, p1: &Pyramid, params: &FlowParams) -> Result<FlowPair> {
    // The two directions are independent: computed in parallel.
    let (forward, backward) = rayon::join(
        || compute_flow(p0, p1, params),
        || compute_flow(p1, p0, params),
    );
    Ok(FlowPair {
        forward: forward?,
        backward: backward?,
    })
}

/// Forward-backward consistency check (Sundaram, Brox and Keutzer, ECCV 2010): a pixel of the
/// first image is valid (255) when following `forward` and then `backward` comes back near where
/// it started, |f + b|² <= 0.01 (|f|² + |b|²) + `tolerance`, and it lands inside the frame;
/// occluded or unreliable pixels are 0. `tolerance` is in squared pixels (0.5 is usual).
pub fn occlusion_mask(forward: &FlowField, backward: &FlowField, tolerance: f32) -> GrayImage {
    let (w, h) = (forward.width, forward.height);
    let mut out = vec![0u8; w * h];
    out.par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            for (x, o) in row.iter_mut().enumerate() {
                let (fu, fv) = forward.get(x, y);
                let tx = x as f32 + fu;
                let ty = y as f32 + fv;
                if tx < 0.0 || ty < 0.0 || tx > (w - 1) as f32 || ty > (h - 1) as f32 {
                    continue;
                }
                let (bu, bv) = backward.sample(tx, ty);
                let (su, sv) = (fu + bu, fv + bv);
                let lhs = su * su + sv * sv;
                let rhs = 0.01 * (fu * fu + fv * fv + bu * bu + bv * bv) + tolerance;
                if lhs <= rhs {
                    *o = 255;
                }
            }
        });
    GrayImage::from_raw(w as u32, h as u32, out).expect("mask size")
}

/// Backward warping: output pixel (x, y) is `image` sampled bilinearly at (x + u, y + v). To
/// bring frame t-1 into frame t, pass the flow from t to t-1. The mask is 255 where the sample
/// position lies inside `image`, 0 where it falls outside (the pixel is then clamped to the
/// border). Sizes must match.
pub fn warp(image: &RgbaImage, flow: &FlowField) -> Result<(RgbaImage, GrayImage)> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if (w, h) != (flow.width, flow.height) {
        return Err(Error::setting(
            "flow",
            format!(
                "the flow is {}x{} but the image is {w}x{h}; they must be of one size",
                flow.width, flow.height
            ),
        ));
    }
    let src = image.as_raw();
    let mut out = vec![0u8; w * h * 4];
    let mut mask = vec![0u8; w * h];
    out.par_chunks_mut(w * 4)
        .zip(mask.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (row, mrow))| {
            for x in 0..w {
                let (u, v) = flow.get(x, y);
                let sx = x as f32 + u;
                let sy = y as f32 + v;
                let inside = sx > -0.5 && sy > -0.5 && sx < w as f32 - 0.5 && sy < h as f32 - 0.5;
                mrow[x] = if inside { 255 } else { 0 };
                let cx = sx.clamp(0.0, (w - 1) as f32);
                let cy = sy.clamp(0.0, (h - 1) as f32);
                let x0 = cx as usize;
                let y0 = cy as usize;
                let x1 = (x0 + 1).min(w - 1);
                let y1 = (y0 + 1).min(h - 1);
                let fx = cx - x0 as f32;
                let fy = cy - y0 as f32;
                for c in 0..4 {
                    let a = src[(y0 * w + x0) * 4 + c] as f32;
                    let b = src[(y0 * w + x1) * 4 + c] as f32;
                    let d = src[(y1 * w + x0) * 4 + c] as f32;
                    let e = src[(y1 * w + x1) * 4 + c] as f32;
                    let top = a + (b - a) * fx;
                    let bot = d + (e - d) * fx;
                    row[x * 4 + c] = (top + (bot - top) * fy).round().clamp(0.0, 255.0) as u8;
                }
            }
        });
    Ok((
        RgbaImage::from_raw(w as u32, h as u32, out).expect("image size"),
        GrayImage::from_raw(w as u32, h as u32, mask).expect("mask size"),
    ))
}
