//! Blind deflicker in the spirit of Bonneel, Tompkin, Sunkavalli, Sun, Paris and Pfister,
//! "Blind Video Temporal Consistency" (SIGGRAPH Asia 2015): each output frame O_t keeps the
//! gradients (the details) of the processed frame P_t and is pulled toward the previous *output*
//! warped along the *source* flow, W_t = warp(O_{t-1}), wherever that flow is reliable:
//!
//! ```text
//! min_O  Σ |∇O − ∇P_t|²  +  Σ a_i (O_i − W_i)²  +  Σ e_i (O_i − P_i)²
//! a_i = strength · M_i · T_i,   e_i = max(anchor, strength / (k_i + prior)) · M_i + ε
//! ```
//!
//! M is the reliability mask of [`SourceMotion`] (forward-backward check, inside the frame) and
//! the user mask; T (optional, [`DeflickerParams::source_sigma`]) fades the pull where the
//! source itself changed; k is the length of the pixel's reliable history along the flow. The
//! anchor term keeps the output's overall colour following the processed frames (a purely
//! gradient-domain solve leaves the mean colour to the temporal term alone and locks onto the
//! first frame's); it starts strong and weakens as the history grows, so a new chain starts as
//! a running mean of its frames.
//!
//! Written for the correction D = O − P, the normal equations are the screened Poisson system
//! `(a + e − Δ) D = a (W − P)`: D is 0 for strength 0 (the input comes back exactly), a smooth
//! field where the reliable pixels pin it, and a membrane across occlusions. It is solved per
//! frame by a cascadic multigrid: the system is restricted down a pyramid (weights and
//! right-hand sides summed over 2x2 blocks, which keeps the energy of smooth fields), solved on
//! the coarsest level, and each level's solution is upsampled as the start of a few damped
//! Jacobi sweeps on the next finer one. Rows run in parallel; results do not depend on the
//! thread count.

use super::SourceMotion;
use crate::error::{Error, Result};
use crate::flow::{warp, FlowParams, Pyramid};
use crate::frames::{Frame, FrameSource};
use crate::imageops::poisson::{add_correction, multigrid, System};
use crate::progress::{Event, Progress};
use image::{GrayImage, RgbaImage};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Knobs of [`Deflicker`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeflickerParams {
    /// Weight of the pull toward the warped previous output, against the gradients of the
    /// processed frame (per pixel, in the units of the discrete Laplacian). 0 returns the
    /// processed frames unchanged; about 1 removes colour flicker but keeps fine noise; 10..40
    /// also averages fine detail over time. Default 20.
    pub strength: f32,
    /// Weight of the pull toward the processed frame itself, on reliable pixels, once a
    /// pixel's history is long: how fast the overall colour follows the processed frames
    /// (0 keeps the first frame's colour for ever). The overall colour is about a running
    /// mean over (strength + anchor) / anchor frames. Default 0.3 x strength.
    pub anchor: f32,
    /// Frames of history a pixel is credited with when its chain starts: the anchor weight is
    /// `strength / (prior + history length)`, down to `anchor`. 0: a new chain starts as the
    /// running mean of its frames (least lag, most early flicker); large: `anchor` from the
    /// start.
    pub prior: f32,
    /// Source-change tolerance in levels (0..255): the temporal pull of a pixel is scaled by
    /// exp(−r²/2σ²), r the mean absolute RGB difference between the source frame and the
    /// previous source frame warped along the flow, so that lighting changes and flow errors
    /// in the source pass through to the output. 0 (the default): off; it helps on clean
    /// (rendered) sources and hurts on noisy footage.
    pub source_sigma: f32,
    /// Damped Jacobi sweeps on the finest level of the solve (level k, each half the size of
    /// the one below, gets k + 1 times as many; the coarsest 8 times as many).
    pub sweeps: usize,
    /// Flow engine knobs for the source motion.
    pub flow: FlowParams,
}

impl Default for DeflickerParams {
    fn default() -> Self {
        DeflickerParams {
            strength: 20.0,
            anchor: 6.0,
            prior: 1.0,
            source_sigma: 0.0,
            sweeps: 6,
            flow: FlowParams::default(),
        }
    }
}

/// Weight of the membrane's pull toward the processed frame everywhere (keeps the system
/// well-posed where no pixel is reliable; a correction fades over ~1/√ε = 30 pixels).
const EPSILON: f32 = 1e-3;

impl DeflickerParams {
    /// Checks the knobs; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("strength", self.strength),
            ("anchor", self.anchor),
            ("prior", self.prior),
            ("source-sigma", self.source_sigma),
        ] {
            if !(v.is_finite() && (0.0..=1000.0).contains(&v)) {
                return Err(Error::setting(
                    name,
                    format!("{v} is out of range; use a number from 0 to 1000"),
                ));
            }
        }
        if self.sweeps == 0 || self.sweeps > 1000 {
            return Err(Error::setting(
                "sweeps",
                format!("{} is out of range; use 1 to 1000", self.sweeps),
            ));
        }
        self.flow.validate()
    }
}

/// One frame's solve: `processed` pulled toward `warped_prev` where `age` (the length of the
/// pixel's reliable history; 0: unreliable or outside the user mask) is set. Returns the output
/// frame (alpha of `processed`). All images must be of one size (the caller checks).
fn solve_frame(
    processed: &RgbaImage,
    warped_prev: &RgbaImage,
    age: &[f32],
    trust: &[f32],
    params: &DeflickerParams,
) -> RgbaImage {
    let (w, h) = (processed.width() as usize, processed.height() as usize);
    let (p, q) = (processed.as_raw(), warped_prev.as_raw());
    let mut a = vec![0.0f32; w * h];
    let mut e = vec![0.0f32; w * h];
    let mut b = vec![[0.0f32; 3]; w * h];
    a.par_chunks_mut(w)
        .zip(e.par_chunks_mut(w))
        .zip(b.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, ((ar, er), br))| {
            for x in 0..w {
                let i = y * w + x;
                if age[i] > 0.0 {
                    ar[x] = params.strength * trust[i];
                    er[x] =
                        (params.strength / (age[i] + params.prior)).max(params.anchor) + EPSILON;
                } else {
                    er[x] = EPSILON;
                }
                for c in 0..3 {
                    br[x][c] = ar[x] * (q[i * 4 + c] as f32 - p[i * 4 + c] as f32);
                }
            }
        });
    let d = multigrid(System { w, h, a, e, b }, params.sweeps);
    add_correction(processed, &d)
}

/// Streaming deflicker: feed source frames and their processed (stylized) frames in order with
/// [`Deflicker::push`]; each call returns the output frame. Holds one source pyramid, one
/// output frame and its history map, so memory does not grow with the clip.
///
/// The pull toward the processed frame (the anchor) starts as strong as the temporal pull and
/// weakens as a pixel's motion-compensated history grows: after k reliable frames the overall
/// colour of a pixel is the running mean of k + 1 processed frames, until the weight reaches
/// [`DeflickerParams::anchor`]. So the first frame's colour is not locked in, and new content
/// (occlusions) starts from its processed colour.
#[derive(Debug)]
pub struct Deflicker {
    params: DeflickerParams,
    source: Option<Pyramid>,
    prev_source: Option<RgbaImage>,
    prev: Option<(RgbaImage, Vec<f32>)>,
    coverage: Option<f64>,
}

impl Deflicker {
    /// A deflicker with these knobs (checked).
    pub fn new(params: DeflickerParams) -> Result<Self> {
        params.validate()?;
        Ok(Deflicker {
            params,
            source: None,
            prev_source: None,
            prev: None,
            coverage: None,
        })
    }

    /// The knobs.
    pub fn params(&self) -> &DeflickerParams {
        &self.params
    }

    /// Fraction of the last pushed frame whose source motion was reliable (`None` before the
    /// second frame, and at strength 0 where no motion is computed).
    pub fn last_coverage(&self) -> Option<f64> {
        self.coverage
    }

    /// Deflickers the next frame: `source` is the original frame, `processed` its stylized
    /// frame, `mask` (optional, same size) limits the change to its pixels >= 128; elsewhere the
    /// processed pixel passes unchanged. The first frame (and every frame at strength 0) comes
    /// back as it went in.
    pub fn push(
        &mut self,
        source: &RgbaImage,
        processed: &RgbaImage,
        mask: Option<&GrayImage>,
    ) -> Result<RgbaImage> {
        if self.params.strength == 0.0 {
            return self.push_with_motion(source, processed, None, mask);
        }
        let pyr = Pyramid::for_params(source, &self.params.flow);
        let motion =
            match self.source.take() {
                Some(ppyr) if ppyr.size() == pyr.size() => {
                    let m = SourceMotion::between(&ppyr, &pyr, &self.params.flow)?;
                    self.coverage = Some(m.coverage());
                    Some(m)
                }
                Some(_) => return Err(Error::setting(
                    "frames",
                    "the frame size changed within the sequence; all frames must be of one size",
                )),
                None => None,
            };
        self.source = Some(pyr);
        self.push_with_motion(source, processed, motion.as_ref(), mask)
    }

    /// [`Deflicker::push`] with the source motion from this frame to the previous one already
    /// computed (as by [`SourceMotion::between`]); `None` starts a new chain (first frame, or a
    /// cut): the frame comes back unchanged.
    pub fn push_with_motion(
        &mut self,
        source: &RgbaImage,
        processed: &RgbaImage,
        motion: Option<&SourceMotion>,
        mask: Option<&GrayImage>,
    ) -> Result<RgbaImage> {
        check_mask(processed, mask)?;
        let size = processed.dimensions();
        if source.dimensions() != size {
            return Err(Error::setting(
                "frames",
                format!(
                    "a processed frame of {}x{} for a source frame of {}x{}: they must be of \
                     one size (extract the source at the processed size)",
                    size.0,
                    size.1,
                    source.width(),
                    source.height()
                ),
            ));
        }
        let n = size.0 as usize * size.1 as usize;
        if self.params.strength == 0.0 {
            return Ok(processed.clone());
        }
        let prev_source = self.prev_source.replace(source.clone());
        let (out, age) = match (self.prev.take(), motion, prev_source) {
            (Some((prev_out, age)), Some(motion), Some(prev_source)) => {
                if prev_out.dimensions() != size || motion.mask.dimensions() != size {
                    return Err(Error::setting(
                        "frames",
                        format!(
                            "a processed frame of {}x{}, previous output of {}x{} and source \
                             motion of {}x{}: all must be of one size",
                            size.0,
                            size.1,
                            prev_out.width(),
                            prev_out.height(),
                            motion.mask.width(),
                            motion.mask.height()
                        ),
                    ));
                }
                let trust = self.trust(&prev_source, source, motion)?;
                self.step(&prev_out, &age, processed, motion, &trust, mask)?
            }
            _ => (processed.clone(), vec![0.0; n]),
        };
        self.prev = Some((out.clone(), age));
        Ok(out)
    }

    /// Per pixel, how far the source itself stayed the same along the flow (1: unchanged).
    fn trust(
        &self,
        prev_source: &RgbaImage,
        source: &RgbaImage,
        motion: &SourceMotion,
    ) -> Result<Vec<f32>> {
        let n = source.as_raw().len() / 4;
        if self.params.source_sigma <= 0.0 {
            return Ok(vec![1.0; n]);
        }
        let (warped, _) = warp(prev_source, &motion.flow)?;
        let k = -1.0 / (2.0 * self.params.source_sigma * self.params.source_sigma);
        Ok(source
            .as_raw()
            .par_chunks(4)
            .zip(warped.as_raw().par_chunks(4))
            .map(|(a, b)| {
                let r = (0..3).map(|c| a[c].abs_diff(b[c]) as f32).sum::<f32>() / 3.0;
                (k * r * r).exp()
            })
            .collect())
    }

    /// One step: `prev_out` warped along `motion.flow`, `processed` pulled toward it on the
    /// reliable pixels; returns the output and its history map.
    fn step(
        &self,
        prev_out: &RgbaImage,
        prev_age: &[f32],
        processed: &RgbaImage,
        motion: &SourceMotion,
        trust: &[f32],
        mask: Option<&GrayImage>,
    ) -> Result<(RgbaImage, Vec<f32>)> {
        let (warped, inside) = warp(prev_out, &motion.flow)?;
        let (w, h) = (processed.width() as usize, processed.height() as usize);
        let reliable = |i: usize| {
            motion.mask.as_raw()[i] != 0
                && inside.as_raw()[i] != 0
                && mask.is_none_or(|m| m.as_raw()[i] >= 128)
        };
        // History length along the flow (nearest pixel of the previous frame), 0 where the
        // chain breaks.
        let mut age = vec![0.0f32; w * h];
        age.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            for (x, a) in row.iter_mut().enumerate() {
                let i = y * w + x;
                if reliable(i) {
                    let (u, v) = motion.flow.get(x, y);
                    let px = (x as f32 + u).round().clamp(0.0, (w - 1) as f32) as usize;
                    let py = (y as f32 + v).round().clamp(0.0, (h - 1) as f32) as usize;
                    *a = prev_age[py * w + px] + 1.0;
                }
            }
        });
        let mut out = solve_frame(processed, &warped, &age, trust, &self.params);
        if let Some(m) = mask {
            for ((o, p), &mv) in out
                .pixels_mut()
                .zip(processed.pixels())
                .zip(m.as_raw().iter())
            {
                if mv < 128 {
                    *o = *p;
                }
            }
        }
        Ok((out, age))
    }
}

/// Errors unless `mask` (when given) has the frame's size.
fn check_mask(frame: &RgbaImage, mask: Option<&GrayImage>) -> Result<()> {
    match mask.filter(|m| m.dimensions() != frame.dimensions()) {
        Some(m) => Err(Error::setting(
            "mask",
            format!(
                "a mask of {}x{} for a frame of {}x{}: masks must match the frame size",
                m.width(),
                m.height(),
                frame.width(),
                frame.height()
            ),
        )),
        None => Ok(()),
    }
}

/// Where [`deflicker_sequence`] finds masks.
#[derive(Debug, Clone, Default)]
pub struct SequenceOptions {
    /// Deflicker knobs.
    pub params: DeflickerParams,
    /// A folder of masks named like the processed frames (white: deflicker, black: keep the
    /// processed pixel); `None` deflickers everywhere.
    pub mask_dir: Option<PathBuf>,
}

/// Summary of a [`deflicker_sequence`] run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SequenceReport {
    /// Frames written.
    pub frames: usize,
    /// Mean fraction of each frame (after the first) whose source motion was reliable.
    pub mean_coverage: f64,
}

/// Deflickers a processed sequence against its source into `out_dir`: one PNG per processed
/// frame, named like it, written atomically. The two sequences are paired in order and must
/// have the same frame size; a source shorter than the processed sequence is an error naming
/// the first frame without a source, source frames past the end are ignored. Stops with [`Error::Interrupted`] after the frame in
/// flight when `progress.should_stop()`.
pub fn deflicker_sequence(
    processed: &mut dyn FrameSource,
    source: &mut dyn FrameSource,
    out_dir: &Path,
    opts: &SequenceOptions,
    progress: &dyn Progress,
) -> Result<SequenceReport> {
    let mut engine = Deflicker::new(opts.params.clone())?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    progress.event(Event::Start {
        stage: "deflicker".into(),
        total: processed.len_hint().map(|n| n as u64),
    });
    let mut frames = 0;
    let mut coverage = 0.0;
    while let Some((info, frame)) = processed.next_frame()? {
        let Some((_, src)) = source.next_frame()? else {
            return Err(Error::setting(
                "source",
                format!(
                    "the source has {frames} frames but the processed sequence goes on with \
                     {}; give the source the processed frames were made from",
                    info.name
                ),
            ));
        };
        if src.size() != frame.size() {
            return Err(Error::setting(
                "source",
                format!(
                    "source frame {} is {}x{} but processed frame {} is {}x{}; give the source \
                     at the processed size",
                    frames + 1,
                    src.size().0,
                    src.size().1,
                    info.name,
                    frame.size().0,
                    frame.size().1
                ),
            ));
        }
        let mask = match &opts.mask_dir {
            Some(dir) => Some(crate::pipeline::load_mask(dir, &info.name, frame.size())?),
            None => None,
        };
        let out = engine.push(&src.image, &frame.image, mask.as_ref())?;
        if frames > 0 {
            coverage += engine.last_coverage().unwrap_or(0.0);
        }
        let name = Path::new(&info.name).with_extension("png");
        crate::frames::write_png(
            &out_dir.join(&name),
            &Frame {
                image: out,
                has_alpha: frame.has_alpha,
            },
        )?;
        progress.event(Event::Frame {
            stage: "deflicker".into(),
            index: frames as u64,
            name: name.to_string_lossy().into_owned(),
            skipped: false,
        });
        frames += 1;
        if progress.should_stop() {
            return Err(Error::Interrupted);
        }
    }
    progress.event(Event::Finish {
        stage: "deflicker".into(),
    });
    if frames == 0 {
        return Err(Error::setting(
            "input",
            "the processed sequence has no frames",
        ));
    }
    Ok(SequenceReport {
        frames,
        mean_coverage: if frames > 1 {
            coverage / (frames - 1) as f64
        } else {
            0.0
        },
    })
}

/// Test and benchmark helpers (not part of the stable API).
#[doc(hidden)]
pub mod testing {
    use image::RgbaImage;

    use crate::testing::splitmix;

    /// PSNR of `a` against `b` over RGB (infinite for equal images).
    pub use crate::imageops::quality::psnr;

    /// Seeded flicker like a diffusion model with an unfixed seed: a colour offset per channel
    /// (±`offset` levels, one per frame) plus per-pixel noise (±`noise` levels).
    pub fn jitter(image: &RgbaImage, seed: u64, offset: i32, noise: i32) -> RgbaImage {
        let mut img = image.clone();
        let h = splitmix(seed);
        let span = |r: i32| (2 * r + 1).max(1) as u64;
        let off: Vec<i32> = (1..=3)
            .map(|c| (splitmix(h ^ c) % span(offset)) as i32 - offset)
            .collect();
        for (k, p) in img.pixels_mut().enumerate() {
            let n = splitmix(h ^ (k as u64 + 17));
            for c in 0..3 {
                let v = ((n >> (16 * c)) % span(noise)) as i32 - noise;
                p[c] = (i32::from(p[c]) + off[c] + v).clamp(0, 255) as u8;
            }
        }
        img
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{jitter, psnr};
    use super::*;
    use crate::temporal::WarpErrorMeter;

    fn textured(w: u32, h: u32, shift: f32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let fx = x as f32 - shift;
            let fy = y as f32 - 0.5 * shift;
            let v = 128.0 + 60.0 * (fx * 0.21).sin() + 50.0 * (fy * 0.17 + fx * 0.05).cos();
            let g = 128.0 + 70.0 * ((fx + fy) * 0.11).sin();
            image::Rgba([v as u8, g as u8, (255.0 - v) as u8, 255])
        })
    }

    fn fast() -> DeflickerParams {
        DeflickerParams {
            flow: FlowParams::preset(crate::flow::Preset::Fast),
            ..DeflickerParams::default()
        }
    }

    #[test]
    fn strength_zero_returns_the_input_exactly() {
        let mut d = Deflicker::new(DeflickerParams {
            strength: 0.0,
            ..fast()
        })
        .unwrap();
        for i in 0..3 {
            let src = textured(64, 48, i as f32);
            let p = jitter(&src, i, 20, 10);
            assert_eq!(d.push(&src, &p, None).unwrap(), p);
        }
    }

    #[test]
    fn jittered_sequence_gets_steadier_and_closer_to_the_clean_one() {
        let params = fast();
        let mut d = Deflicker::new(params.clone()).unwrap();
        let mut before = WarpErrorMeter::new(params.flow.clone()).unwrap();
        let mut after = WarpErrorMeter::new(params.flow.clone()).unwrap();
        let (mut e0, mut e1, mut p0, mut p1) = (0.0, 0.0, 0.0, 0.0);
        let n = 10;
        for i in 0..n {
            let src = textured(128, 96, 1.5 * i as f32);
            let jit = jitter(&src, 100 + i as u64, 24, 12);
            let out = d.push(&src, &jit, None).unwrap();
            if let Some((_, e)) = before.push(&src, &jit).unwrap() {
                e0 += e.unwrap();
            }
            if let Some((_, e)) = after.push(&src, &out).unwrap() {
                e1 += e.unwrap();
            }
            p0 += psnr(&jit, &src);
            p1 += psnr(&out, &src);
        }
        let (p0, p1) = (p0 / n as f64, p1 / n as f64);
        assert!(e1 < 0.25 * e0, "E_warp {e1} from {e0}");
        assert!(p1 > p0 + 1.0, "PSNR {p1} from {p0}");
    }

    #[test]
    fn pixels_outside_the_mask_pass_unchanged() {
        let mut d = Deflicker::new(fast()).unwrap();
        let mask = GrayImage::from_fn(96, 64, |x, _| image::Luma([if x < 48 { 255 } else { 0 }]));
        let mut changed = 0;
        for i in 0..3 {
            let src = textured(96, 64, i as f32);
            let p = jitter(&src, 7 + i, 24, 8);
            let out = d.push(&src, &p, Some(&mask)).unwrap();
            for (x, y, px) in out.enumerate_pixels() {
                if x >= 48 {
                    assert_eq!(*px, *p.get_pixel(x, y), "({x}, {y}) of frame {i}");
                } else if px != p.get_pixel(x, y) {
                    changed += 1;
                }
            }
        }
        assert!(changed > 1000, "only {changed} masked pixels changed");
    }

    #[test]
    fn size_mismatches_are_errors() {
        let mut d = Deflicker::new(fast()).unwrap();
        let src = textured(64, 48, 0.0);
        assert!(d.push(&src, &textured(48, 48, 0.0), None).is_err());
        let mask = GrayImage::new(10, 10);
        assert!(d.push(&src, &src, Some(&mask)).is_err());
        d.push(&src, &src, None).unwrap();
        let err = d.push(&textured(32, 32, 0.0), &textured(32, 32, 0.0), None);
        assert!(err.is_err());
    }

    #[test]
    fn source_sigma_lets_a_lighting_change_through() {
        // The source (and its faithful "stylization") brightens by 40 levels at frame 2.
        let frames: Vec<RgbaImage> = (0..3)
            .map(|i| {
                let mut f = textured(96, 64, i as f32);
                if i == 2 {
                    f.pixels_mut().for_each(|p| p[1] = p[1].saturating_add(40));
                }
                f
            })
            .collect();
        let fidelity = |sigma: f32| {
            let mut d = Deflicker::new(DeflickerParams {
                source_sigma: sigma,
                ..fast()
            })
            .unwrap();
            let mut out = None;
            for f in &frames {
                out = Some(d.push(f, f, None).unwrap());
            }
            psnr(&out.unwrap(), &frames[2])
        };
        let (off, on) = (fidelity(0.0), fidelity(6.0));
        assert!(
            on > off + 5.0,
            "PSNR to the brightened frame: {on} with, {off} without"
        );
    }

    #[test]
    fn bad_knobs_are_setting_errors() {
        for p in [
            DeflickerParams {
                strength: -1.0,
                ..fast()
            },
            DeflickerParams {
                anchor: f32::NAN,
                ..fast()
            },
            DeflickerParams {
                sweeps: 0,
                ..fast()
            },
        ] {
            assert!(Deflicker::new(p).is_err());
        }
    }
}
