//! Temporal consistency as the warping error E_warp of Lai et al., "Learning Blind Video
//! Temporal Consistency" (ECCV 2018): the stylized frame t-1 is warped into frame t along the
//! optical flow of the *source* video, and the two are compared where the flow is reliable
//! (the forward-backward check of [`crate::flow::occlusion_mask`] passes). A steady stylization
//! moves with its source and scores near 0; flicker raises the error of the frames it hits.
//!
//! Our figure is the mean squared difference per colour channel (RGB in 0..1, alpha ignored)
//! over the reliable pixels.

use crate::error::{Error, Result};
use crate::flow::{compute_flow, occlusion_mask, warp, FlowField, FlowParams, Pyramid};
use image::{GrayImage, RgbaImage};
use rayon::prelude::*;

/// Squared-pixel tolerance of the forward-backward check used for the reliability mask.
pub const OCCLUSION_TOLERANCE: f32 = 0.5;

/// The motion of the source between frame t-1 and frame t, as needed to compare stylized
/// frames: the flow from t to t-1 (to warp frame t-1 into t) and the mask of pixels of t whose
/// motion is reliable (255) or occluded/unreliable (0).
#[derive(Debug, Clone)]
pub struct SourceMotion {
    /// Flow from frame t to frame t-1.
    pub flow: FlowField,
    /// 255 where frame t's pixel is visible in frame t-1 and the flow passes the
    /// forward-backward check; 0 elsewhere.
    pub mask: GrayImage,
}

impl SourceMotion {
    /// The motion between the pyramids of the source frames t-1 (`prev`) and t (`cur`).
    pub fn between(prev: &Pyramid, cur: &Pyramid, params: &FlowParams) -> Result<Self> {
        let (to_prev, to_cur) = rayon::join(
            || compute_flow(cur, prev, params),
            || compute_flow(prev, cur, params),
        );
        let flow = to_prev?;
        let mask = occlusion_mask(&flow, &to_cur?, OCCLUSION_TOLERANCE);
        Ok(SourceMotion { flow, mask })
    }

    /// Fraction of the frame whose motion is reliable (0..1).
    pub fn coverage(&self) -> f64 {
        let n = self.mask.as_raw().len().max(1);
        self.mask.as_raw().iter().filter(|&&m| m != 0).count() as f64 / n as f64
    }
}

/// E_warp between two consecutive stylized frames given the source motion between them: the
/// mean squared difference per RGB channel (0..1 scale) between `cur` and `prev` warped along
/// `motion.flow`, over the pixels where `motion.mask` is set and the warp stays in the frame.
/// `None` when no pixel is reliable. Sizes must match.
pub fn warp_error(prev: &RgbaImage, cur: &RgbaImage, motion: &SourceMotion) -> Result<Option<f64>> {
    if prev.dimensions() != cur.dimensions() || cur.dimensions() != motion.mask.dimensions() {
        return Err(Error::setting(
            "frames",
            format!(
                "frames of {}x{} and {}x{} with source motion of {}x{}: stylized frames must \
                 have the size of their source frames",
                prev.width(),
                prev.height(),
                cur.width(),
                cur.height(),
                motion.mask.width(),
                motion.mask.height()
            ),
        ));
    }
    let (warped, inside) = warp(prev, &motion.flow)?;
    let w = cur.width() as usize;
    let (sum, count) = cur
        .as_raw()
        .par_chunks(w * 4)
        .zip(warped.as_raw().par_chunks(w * 4))
        .zip(motion.mask.as_raw().par_chunks(w))
        .zip(inside.as_raw().par_chunks(w))
        .map(|(((c, p), m), v)| {
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for x in 0..m.len() {
                if m[x] == 0 || v[x] == 0 {
                    continue;
                }
                count += 1;
                for ch in 0..3 {
                    let d = (c[x * 4 + ch] as f64 - p[x * 4 + ch] as f64) / 255.0;
                    sum += d * d;
                }
            }
            (sum, count)
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Ok((count > 0).then(|| sum / (3 * count) as f64))
}

/// Streams a stylized sequence with its source and yields E_warp per consecutive pair, building
/// each source frame's pyramid once.
#[derive(Debug)]
pub struct WarpErrorMeter {
    params: FlowParams,
    prev: Option<(Pyramid, RgbaImage)>,
}

impl WarpErrorMeter {
    /// A meter using these flow parameters for the source motion.
    pub fn new(params: FlowParams) -> Result<Self> {
        params.validate()?;
        Ok(WarpErrorMeter { params, prev: None })
    }

    /// Feeds the next source frame and its stylized frame. Returns the source motion and the
    /// E_warp between the previous stylized frame and this one (`None` for the first frame; the
    /// error is `None` when no pixel is reliable).
    pub fn push(
        &mut self,
        source: &RgbaImage,
        stylized: &RgbaImage,
    ) -> Result<Option<(SourceMotion, Option<f64>)>> {
        if source.dimensions() != stylized.dimensions() {
            return Err(Error::setting(
                "frames",
                format!(
                    "a stylized frame of {}x{} for a source frame of {}x{}: they must be of \
                     one size (extract the source at the stylized size)",
                    stylized.width(),
                    stylized.height(),
                    source.width(),
                    source.height()
                ),
            ));
        }
        let pyr = Pyramid::for_params(source, &self.params);
        let out = match self.prev.take() {
            Some((ppyr, pstyl)) => {
                let motion = SourceMotion::between(&ppyr, &pyr, &self.params)?;
                let err = warp_error(&pstyl, stylized, &motion)?;
                Some((motion, err))
            }
            None => None,
        };
        self.prev = Some((pyr, stylized.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: u32, h: u32, shift: f32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let fx = x as f32 - shift;
            let v = 128.0 + 60.0 * (fx * 0.31).sin() + 50.0 * (y as f32 * 0.23 + fx * 0.07).cos();
            let g = 128.0 + 70.0 * ((fx + y as f32) * 0.17).sin();
            image::Rgba([v as u8, g as u8, (255.0 - v) as u8, 255])
        })
    }

    #[test]
    fn steady_stylization_scores_lower_than_flicker() {
        let params = FlowParams::default();
        let mut meter = WarpErrorMeter::new(params).unwrap();
        let src: Vec<_> = (0..3).map(|i| textured(96, 64, 2.0 * i as f32)).collect();
        // "Stylized" = the source itself (moves with it) vs. a brightness flicker on frame 1.
        let mut steady = vec![];
        for s in &src {
            if let Some((_, e)) = meter.push(s, s).unwrap() {
                steady.push(e.unwrap());
            }
        }
        let mut meter = WarpErrorMeter::new(FlowParams::default()).unwrap();
        let mut flicker = vec![];
        for (i, s) in src.iter().enumerate() {
            let mut st = s.clone();
            if i == 1 {
                st.pixels_mut().for_each(|p| p[0] = p[0].saturating_add(40));
            }
            if let Some((m, e)) = meter.push(s, &st).unwrap() {
                assert!(m.coverage() > 0.5, "coverage {}", m.coverage());
                flicker.push(e.unwrap());
            }
        }
        assert!(steady.iter().all(|&e| e < 2e-3), "{steady:?}");
        assert!(
            flicker.iter().all(|&e| e > 5.0 * steady[0].max(1e-4)),
            "{flicker:?} vs {steady:?}"
        );
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let mut meter = WarpErrorMeter::new(FlowParams::default()).unwrap();
        let err = meter.push(&textured(32, 32, 0.0), &textured(40, 32, 0.0));
        assert!(err.is_err());
    }
}
