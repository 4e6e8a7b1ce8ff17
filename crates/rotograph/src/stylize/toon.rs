//! toon: the embedded, model-free default backend — a classical video abstraction after
//! Winnemöller, Olsen & Gooch, "Real-Time Video Abstraction" (SIGGRAPH 2006).
//!
//! Per frame, in CIE Lab (f32):
//! 1. edge-preserving smoothing of L, a, b with the domain-transform recursive filter
//!    ([`DomainTransform`], Gastal & Oliveira 2011), O(1) per pixel;
//! 2. soft luminance quantization ([`soft_quantize`]) whose sharpness adapts to the local
//!    luminance gradient: soft ramps in flat areas (no band popping between frames), crisp steps
//!    where the image already has an edge;
//! 3. difference-of-Gaussians ink lines on the smoothed luminance with a soft tanh threshold
//!    ([`Dog`]), multiplied into the colour.
//!
//! Strength (`denoise`, 0..=1) maps to abstraction: the smoothing σ grows linearly with it (0 =
//! no smoothing), and bands, lines and colour changes fade in with `smoothstep(strength / 0.75)`,
//! so 0 returns the input unchanged, the default 0.75 gives exactly the preset, and 0.75..1 only
//! smooths more.
//!
//! Alpha is copied from the input. Spatial parameters are given for a 720-pixel short side and
//! scale with the image (short side / 720, at least 0.5), so a preset looks the same at any
//! resolution. Output is deterministic: the same input gives the same bytes whatever the thread
//! count.

use super::{Img2ImgRequest, Stylizer};
use crate::error::Result;
use crate::imageops::color::{lab_to_linear_in_place, rgba_to_lab, SrgbEncoder};
use crate::imageops::dog::{soft_threshold, Dog};
use crate::imageops::edge_preserving::DomainTransform;
use crate::imageops::quantize::soft_quantize;
use crate::imageops::Plane;
use image::RgbaImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Named presets (numbers in [`Style::preset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Smooth colour regions, soft luminance bands, ink lines: smoothing σs 8 px / σr 20,
    /// 8 luminance bands with soft (flat areas) to crisp (edges) steps, chroma ×1.15, DoG lines
    /// (σ 1.5 px) with a gentle threshold that keeps them steady from frame to frame.
    #[default]
    Toon,
    /// Black ink lines on paper-white, little colour: the banded tone is lifted to a light wash
    /// (a quarter of its darkness, 4 bands), chroma ×0.15, bolder and more numerous DoG lines
    /// (σ 1.2 px, lower threshold, sharper ramp) at full opacity.
    Ink,
    /// Strong flat colour bands, thin lines: heavier smoothing (σs 12 px / σr 25), 5 sharp
    /// luminance bands, chroma ×1.3 and itself banded (steps of 12), thin faint lines (σ 0.8 px).
    Posterize,
}

/// The numbers behind a [`Style`], at full strength and a 720-pixel short side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Domain-transform spatial σ (pixels) at strength 1; it scales linearly with strength.
    pub sigma_s: f32,
    /// Domain-transform range σ (Lab units).
    pub sigma_r: f32,
    /// Domain-transform iterations.
    pub iterations: u32,
    /// Number of luminance bands over L = 0..100.
    pub bands: f32,
    /// Quantization sharpness in flat areas, as φ·(band width)/2 (0 = no quantization).
    pub sharpness_flat: f32,
    /// Quantization sharpness where the luminance gradient reaches `edge_gradient`.
    pub sharpness_edge: f32,
    /// Luminance gradient (L units per pixel at 720p) at which `sharpness_edge` is reached.
    pub edge_gradient: f32,
    /// Chroma (a, b) gain.
    pub chroma: f32,
    /// Width of chroma bands (a and b soft-quantized alike; 0 = off).
    pub chroma_step: f32,
    /// Line extractor (σ in pixels at 720p).
    pub dog: Dog,
    /// Line opacity, 0..=1.
    pub line: f32,
    /// Ink rendering: the shading keeps this fraction of the banded tone's darkness below
    /// paper-white (`None` for colour styles).
    pub ink_tone: Option<f32>,
}

impl Style {
    /// The preset's parameters.
    pub fn preset(self) -> Preset {
        match self {
            Style::Toon => Preset {
                sigma_s: 8.0,
                sigma_r: 20.0,
                iterations: 3,
                bands: 8.0,
                sharpness_flat: 2.5,
                sharpness_edge: 6.0,
                edge_gradient: 4.0,
                chroma: 1.15,
                chroma_step: 0.0,
                dog: Dog {
                    sigma: 1.5,
                    k: 1.6,
                    tau: 1.0,
                    epsilon: 0.8,
                    phi: 0.4,
                },
                line: 0.9,
                ink_tone: None,
            },
            Style::Ink => Preset {
                sigma_s: 6.0,
                sigma_r: 20.0,
                iterations: 3,
                bands: 4.0,
                sharpness_flat: 1.5,
                sharpness_edge: 4.0,
                edge_gradient: 4.0,
                chroma: 0.15,
                chroma_step: 0.0,
                dog: Dog {
                    sigma: 1.2,
                    k: 1.6,
                    tau: 1.0,
                    epsilon: 0.3,
                    phi: 0.8,
                },
                line: 1.0,
                ink_tone: Some(0.25),
            },
            Style::Posterize => Preset {
                sigma_s: 12.0,
                sigma_r: 25.0,
                iterations: 3,
                bands: 5.0,
                sharpness_flat: 4.0,
                sharpness_edge: 8.0,
                edge_gradient: 4.0,
                chroma: 1.3,
                chroma_step: 12.0,
                dog: Dog {
                    sigma: 0.8,
                    k: 1.6,
                    tau: 1.0,
                    epsilon: 1.0,
                    phi: 0.5,
                },
                line: 0.7,
                ink_tone: None,
            },
        }
    }
}

/// The toon stylizer.
#[derive(Debug, Clone)]
pub struct Toon {
    /// Preset.
    pub style: Style,
    /// Frames to run at once.
    pub jobs: usize,
}

/// Short side of the reference resolution the presets' spatial parameters are tuned for.
const REFERENCE_SHORT_SIDE: f32 = 720.0;

/// Strength at and above which bands, lines and colour changes are at full opacity (below it
/// they fade in smoothly; smoothing grows linearly over the whole range). It is the default
/// `denoise`, so the default gives exactly the preset.
const FULL_EFFECT_STRENGTH: f32 = 0.75;

impl Toon {
    /// A toon stylizer with a preset.
    pub fn new(style: Style, jobs: usize) -> Self {
        Toon {
            style,
            jobs: jobs.max(1),
        }
    }

    /// Stylizes one image at abstraction `strength` in 0..=1 (`--denoise`): 0 returns the input,
    /// 1 is the strongest. Out-of-range values are clamped, NaN counts as 0.
    pub fn apply(&self, img: &RgbaImage, strength: f32) -> RgbaImage {
        self.style.preset().apply(img, strength)
    }
}

impl Preset {
    /// Stylizes one image with these parameters at `strength` in 0..=1 (see [`Toon::apply`]).
    pub fn apply(&self, img: &RgbaImage, strength: f32) -> RgbaImage {
        let s = if strength.is_nan() {
            0.0
        } else {
            strength.clamp(0.0, 1.0)
        };
        let (w, h) = (img.width() as usize, img.height() as usize);
        if s == 0.0 || w == 0 || h == 0 {
            return img.clone();
        }
        let p = *self;
        let scale = (w.min(h) as f32 / REFERENCE_SHORT_SIDE).clamp(0.5, 8.0);
        // Ease in (smoothstep) so that small strengths stay close to the input.
        let t = (s / FULL_EFFECT_STRENGTH).min(1.0);
        let mix = t * t * (3.0 - 2.0 * t);

        let mut lab = rgba_to_lab(img);
        DomainTransform {
            sigma_s: p.sigma_s * s * scale,
            sigma_r: p.sigma_r,
            iterations: p.iterations,
        }
        .apply(&mut lab, None);

        let dog = Dog {
            sigma: (p.dog.sigma * scale).max(0.5),
            ..p.dog
        };
        let response = dog.response_plane(&lab[0]);
        let ctx = Combine {
            p,
            mix,
            scale,
            dog,
            lab: &lab,
            response: &response,
        };
        let mut out = RgbaImage::new(w as u32, h as u32);
        let src: &[u8] = img.as_raw();
        let dst: &mut [u8] = &mut out;
        dst.par_chunks_exact_mut(4 * w)
            .zip(src.par_chunks_exact(4 * w))
            .enumerate()
            .for_each_init(
                || [vec![0f32; w], vec![0f32; w], vec![0f32; w], vec![0f32; w]],
                |bufs, (y, (drow, srow))| ctx.row(y, drow, srow, bufs),
            );
        out
    }
}

/// Everything the final per-pixel pass needs.
struct Combine<'a> {
    p: Preset,
    mix: f32,
    scale: f32,
    dog: Dog,
    lab: &'a [Plane; 3],
    response: &'a Plane,
}

impl Combine<'_> {
    /// Bands, lines and colour for row `y`, written as RGBA with the source's alpha. The loops
    /// are branch-free over row buffers so that they vectorize.
    fn row(&self, y: usize, dst: &mut [u8], src: &[u8], bufs: &mut [Vec<f32>; 4]) {
        let p = &self.p;
        let [lp, ap, bp] = self.lab;
        let (w, h) = (lp.width(), lp.height());
        let l = lp.row(y);
        let up = lp.row(y.saturating_sub(1));
        let down = lp.row((y + 1).min(h - 1));
        let (a, b, resp) = (ap.row(y), bp.row(y), self.response.row(y));
        let [lo, ao, bo, ink] = bufs;
        let (lo, ao, bo, ink) = (&mut lo[..w], &mut ao[..w], &mut bo[..w], &mut ink[..w]);

        // Horizontal central differences (one-sided at the ends), into `ink` for now.
        ink[0] = l[1.min(w - 1)] - l[0];
        ink[w - 1] = l[w - 1] - l[w.saturating_sub(2)];
        for x in 1..w.saturating_sub(1) {
            ink[x] = l[x + 1] - l[x - 1];
        }

        let step = 100.0 / p.bands;
        let inv_half = 2.0 / step;
        let chroma = 1.0 + self.mix * (p.chroma - 1.0);
        // Gradient per 720p pixel (central differences span 2 pixels of this image).
        let grad_scale = 0.5 * self.scale / p.edge_gradient;
        let line_opacity = self.mix * p.line;
        let (ink_k, tone) = match p.ink_tone {
            Some(t) => (1.0, t),
            None => (0.0, 0.0),
        };
        let phi_e = self.dog.phi;
        for x in 0..w {
            let l0 = l[x];
            let gy = down[x] - up[x];
            let g = ((ink[x] * ink[x] + gy * gy).sqrt() * grad_scale).min(1.0);
            let sharp = p.sharpness_flat + g * (p.sharpness_edge - p.sharpness_flat);
            let lq = soft_quantize(l0, step, sharp * inv_half);
            // Ink: paper-white with a faint copy of the bands.
            let target = lq + ink_k * ((100.0 - tone * (100.0 - lq)) - lq);
            lo[x] = l0 + self.mix * (target - l0);
            ao[x] = a[x] * chroma;
            bo[x] = b[x] * chroma;
            let e = soft_threshold(resp[x], phi_e);
            ink[x] = 1.0 - line_opacity * (1.0 - e);
        }
        if p.chroma_step > 0.0 {
            let phi = p.sharpness_flat / (0.5 * p.chroma_step);
            // Two plain loops (a chained iterator would not vectorize).
            for v in ao.iter_mut() {
                *v += self.mix * (soft_quantize(*v, p.chroma_step, phi) - *v);
            }
            for v in bo.iter_mut() {
                *v += self.mix * (soft_quantize(*v, p.chroma_step, phi) - *v);
            }
        }
        for x in 0..w {
            lo[x] *= ink[x];
            ao[x] *= ink[x];
            bo[x] *= ink[x];
        }
        lab_to_linear_in_place(lo, ao, bo);
        SrgbEncoder::get().encode_row(lo, ao, bo, Some(src), dst);
    }
}

impl Stylizer for Toon {
    fn name(&self) -> &str {
        "toon"
    }
    fn ignored_fields(&self) -> &[&'static str] {
        super::MODEL_FIELDS
    }
    fn max_parallel_frames(&self) -> usize {
        self.jobs
    }
    fn stylize(&self, request: &Img2ImgRequest<'_>) -> Result<Vec<RgbaImage>> {
        Ok(vec![self.apply(request.init, request.params.denoise)])
    }
}
