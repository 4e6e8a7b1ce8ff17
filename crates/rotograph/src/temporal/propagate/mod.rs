//! Keyframe propagation: guided patch-based synthesis in the class of Jamriška et al., "Stylizing
//! Video by Example" (SIGGRAPH 2019) and the public ebsynth engine.
//!
//! Given a stylized keyframe (the *style*, aligned with the *source* side of every guide) and one
//! or more guide pairs (source image, target image, weight), [`propagate`] synthesizes the target
//! frame's stylization: every target patch takes the style of the source patch whose guides and
//! style match best. Coarse to fine over an image pyramid, each level alternates
//!
//! 1. a PatchMatch search (`nnf.rs`) of the nearest-neighbour field: propagation from the scan
//!    neighbours plus a random search of shrinking radius, under the patch error
//!    `Σ style_weight/3·|ΔRGB|² + Σ_guides weight/3·|ΔRGB|²` plus a uniformity term
//!    `uniformity · (use of the source patch / its fair share)` that stops patches from being
//!    overused, and
//! 2. a weighted vote (`vote.rs`): each target pixel averages the style pixels the overlapping
//!    patches map it to, weighted by `1/(1 + patch error)`.
//!
//! Borders are handled by edge replication on both sides, so a patch centred on the first or
//! last row still has a full footprint and the identity (a frame onto itself) is a zero-error
//! match everywhere; the public engine, whose patch centres stay `patch/2` pixels inside, blurs a
//! band along the borders instead.
//!
//! Multi-core and deterministic: the scan runs in fixed bands of rows in parallel, each band
//! Gauss-Seidel in scan order with its own random stream derived from the seed, neighbours in
//! other bands read from the previous iteration's field, and the uniformity counts are frozen
//! per PatchMatch iteration. Results depend on the seed only, not on the thread count.

mod blend;
mod nnf;
mod pyramid;
pub use crate::imageops::quality;
pub mod video;
mod vote;

use crate::error::{Error, Result};
pub use blend::{blend_syntheses, Blend, Blended};
use image::RgbaImage;
use pyramid::Plane;
pub use video::{propagate_video, VideoOptions, VideoReport};

/// One guide pair: the source-side image (aligned with the style keyframe) and the target-side
/// image (aligned with the frame being synthesized), with its weight in the patch error.
#[derive(Debug, Clone, Copy)]
pub struct Guide<'a> {
    /// Guide image on the style key's side (same size as the style).
    pub source: &'a RgbaImage,
    /// Guide image on the target side (same size as every other target guide).
    pub target: &'a RgbaImage,
    /// Weight of this guide's RGB difference in the patch error (ebsynth's `-weight`).
    pub weight: f32,
}

/// The synthesis knobs, named and defaulting like the public ebsynth engine's command line.
#[derive(Debug, Clone, PartialEq)]
pub struct PropagateParams {
    /// Patch side in pixels, odd, >= 3 (ebsynth `-patchsize`, default 5).
    pub patch_size: usize,
    /// Pyramid levels; `None` = as many as keep the coarsest level's short side at least
    /// `2·patch_size + 1` pixels (ebsynth `-pyramidlevels`, default automatic). A larger count
    /// is reduced to that automatic one.
    pub pyramid_levels: Option<usize>,
    /// Search-vote iterations per level (ebsynth `-searchvoteiters`, default 6).
    pub search_vote_iters: usize,
    /// PatchMatch iterations per search (ebsynth `-patchmatchiters`, default 4).
    pub patchmatch_iters: usize,
    /// Weight of the uniformity term (ebsynth `-uniformity`, default 3500).
    pub uniformity: f32,
    /// Weight of the style term, the difference between the current synthesis and the key
    /// (ebsynth's `-weight` before any guide, default 1).
    pub style_weight: f32,
    /// Finish with an extra pass of 3x3 patches at full resolution (ebsynth `-extrapass3x3`).
    pub extra_pass_3x3: bool,
    /// Seed of the random initialisation and search; same seed, same output.
    pub seed: u64,
}

impl Default for PropagateParams {
    fn default() -> Self {
        PropagateParams {
            patch_size: 5,
            pyramid_levels: None,
            search_vote_iters: 6,
            patchmatch_iters: 4,
            uniformity: 3500.0,
            style_weight: 1.0,
            extra_pass_3x3: false,
            seed: 1,
        }
    }
}

impl PropagateParams {
    /// Checks ranges; errors name the setting as the CLI spells it.
    pub fn validate(&self) -> Result<()> {
        if self.patch_size < 3 || self.patch_size % 2 == 0 || self.patch_size > 31 {
            return Err(Error::setting(
                "patch-size",
                format!(
                    "{} is not an odd number in 3..=31; use 5 (the default) or 7",
                    self.patch_size
                ),
            ));
        }
        if self.pyramid_levels == Some(0) {
            return Err(Error::setting(
                "pyramid-levels",
                "must be at least 1; leave it out for the automatic count",
            ));
        }
        if self.search_vote_iters == 0 {
            return Err(Error::setting("search-vote-iters", "must be at least 1"));
        }
        if !(self.uniformity.is_finite() && self.uniformity >= 0.0) {
            return Err(Error::setting(
                "uniformity",
                format!("{} is not a finite number >= 0", self.uniformity),
            ));
        }
        if !(self.style_weight.is_finite() && self.style_weight >= 0.0) {
            return Err(Error::setting(
                "style-weight",
                format!("{} is not a finite number >= 0", self.style_weight),
            ));
        }
        Ok(())
    }

    /// The number of pyramid levels used for images of these sizes.
    pub fn levels_for(&self, source: (u32, u32), target: (u32, u32)) -> usize {
        let short = source.0.min(source.1).min(target.0).min(target.1) as usize;
        let max_auto = {
            let min_side = 2 * self.patch_size + 1;
            let mut levels = 1;
            while (short >> levels) >= min_side {
                levels += 1;
            }
            levels
        };
        match self.pyramid_levels {
            // Never shrink a level below one patch.
            Some(n) => n.min(max_auto.max(1)).max(1),
            None => max_auto,
        }
    }
}

/// Checks the inputs' sizes and weights: every source guide must match the style's size, every
/// target guide the first target guide's size. Errors name the guide (1-based, in the order
/// given) and say what to do.
pub fn check_inputs(style: &RgbaImage, guides: &[Guide<'_>]) -> Result<()> {
    if style.width() == 0 || style.height() == 0 {
        return Err(Error::setting("style", "the style image is empty"));
    }
    let Some(first) = guides.first() else {
        return Err(Error::setting(
            "guide",
            "at least one guide pair (source image, target image) is needed",
        ));
    };
    let tsize = first.target.dimensions();
    if tsize.0 == 0 || tsize.1 == 0 {
        return Err(Error::setting("guide 1", "the target guide is empty"));
    }
    for (i, g) in guides.iter().enumerate() {
        let name = format!("guide {}", i + 1);
        if g.source.dimensions() != style.dimensions() {
            return Err(Error::setting(
                name,
                format!(
                    "its source image is {}x{} but the style is {}x{}; source guides must be \
                     the size of the style key (resize them to match)",
                    g.source.width(),
                    g.source.height(),
                    style.width(),
                    style.height()
                ),
            ));
        }
        if g.target.dimensions() != tsize {
            return Err(Error::setting(
                name,
                format!(
                    "its target image is {}x{} but guide 1's target is {}x{}; all target \
                     guides must have one size",
                    g.target.width(),
                    g.target.height(),
                    tsize.0,
                    tsize.1
                ),
            ));
        }
        if !(g.weight.is_finite() && g.weight >= 0.0) {
            return Err(Error::setting(
                format!("weight of {name}"),
                format!("{} is not a finite number >= 0", g.weight),
            ));
        }
    }
    Ok(())
}

/// Synthesizes the target frame in the style of `style` under `guides` (see the module docs).
/// The output has the target guides' size and is opaque; the style's alpha is ignored.
pub fn propagate(
    style: &RgbaImage,
    guides: &[Guide<'_>],
    params: &PropagateParams,
) -> Result<RgbaImage> {
    propagate_with_error(style, guides, params).map(|s| s.image)
}

/// A synthesized frame and how well each of its pixels is explained by the key.
#[derive(Debug, Clone)]
pub struct Synthesis {
    /// The synthesized frame (opaque, the target guides' size).
    pub image: RgbaImage,
    /// Per pixel (row-major), the weighted patch error of its final match (guides and style,
    /// without the uniformity term): low where the key has a good match, high where the
    /// target shows something the key does not.
    pub error: Vec<f32>,
}

/// [`propagate`], also returning the per-pixel match error (for blending several keys).
pub fn propagate_with_error(
    style: &RgbaImage,
    guides: &[Guide<'_>],
    params: &PropagateParams,
) -> Result<Synthesis> {
    params.validate()?;
    check_inputs(style, guides)?;
    let tsize = guides[0].target.dimensions();
    let levels = params.levels_for(style.dimensions(), tsize);

    // Pyramids run fine to coarse; popping hands out the levels coarse to fine, and each
    // level's planes are freed once used.
    let mut style_pyr = pyramid::build(&Plane::from_rgb(style), levels);
    let mut src_guides = Vec::with_capacity(guides.len());
    let mut tgt_guides = Vec::with_capacity(guides.len());
    for g in guides {
        src_guides.push(pyramid::build(&Plane::from_rgb(g.source), levels));
        tgt_guides.push(pyramid::build(&Plane::from_rgb(g.target), levels));
    }
    let weights: Vec<f32> = guides.iter().map(|g| g.weight).collect();
    let pop = |pyr: &mut Vec<Plane>| pyr.pop().expect("one plane per level");

    let mut state: Option<(nnf::Nnf, Plane, Vec<f32>)> = None;
    for level in (0..levels).rev() {
        let mut inputs = nnf::LevelInputs {
            style: pop(&mut style_pyr),
            source_guides: src_guides.iter_mut().map(pop).collect(),
            target_guides: tgt_guides.iter_mut().map(pop).collect(),
            guide_weights: &weights,
        };
        let (tw, th) = (
            inputs.target_guides[0].width,
            inputs.target_guides[0].height,
        );
        let (sw, sh) = (inputs.style.width, inputs.style.height);
        let (field, estimate) = match state.take() {
            None => (nnf::Nnf::random(tw, th, sw, sh, params.seed), None),
            Some((coarse, _, _)) => {
                let field = coarse.upsample(tw, th, sw, sh);
                let est = vote::vote(&field, None, &inputs.style, params.patch_size);
                (field, Some(est))
            }
        };
        let seed = params.seed ^ (level as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        state = Some(nnf::synthesize_level(
            &mut inputs,
            field,
            estimate,
            params.patch_size,
            params,
            seed,
        ));
        if level == 0 && params.extra_pass_3x3 {
            // The level consumed its guide planes; level 0's are the images themselves.
            inputs.source_guides = guides.iter().map(|g| Plane::from_rgb(g.source)).collect();
            inputs.target_guides = guides.iter().map(|g| Plane::from_rgb(g.target)).collect();
            let (field, est, _) = state.take().expect("level result");
            state = Some(nnf::synthesize_level(
                &mut inputs,
                field,
                Some(est),
                3,
                params,
                seed ^ 0x3333,
            ));
        }
    }
    let (_, estimate, error) = state.expect("at least one level");
    Ok(Synthesis {
        image: estimate.to_rgba(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{hashed_texture as textured, invert};

    #[test]
    fn identity_is_exact_including_borders() {
        let src = textured(48, 40, 0);
        let style = invert(&src);
        let out = propagate(
            &style,
            &[Guide {
                source: &src,
                target: &src,
                weight: 1.0,
            }],
            &PropagateParams::default(),
        )
        .unwrap();
        let psnr = quality::psnr(&out, &style);
        assert!(psnr >= 40.0, "identity PSNR {psnr:.2} dB");
    }

    #[test]
    fn shifted_target_follows_the_guide() {
        let src = textured(64, 48, 0);
        let tgt = textured(64, 48, 3);
        let style = invert(&src);
        let truth = invert(&tgt);
        let out = propagate(
            &style,
            &[Guide {
                source: &src,
                target: &tgt,
                weight: 2.0,
            }],
            &PropagateParams::default(),
        )
        .unwrap();
        // Away from the right border, whose content is not in the key, the shift is exact.
        let crop = |img: &RgbaImage| image::imageops::crop_imm(img, 0, 0, 56, 48).to_image();
        let psnr = quality::psnr(&crop(&out), &crop(&truth));
        assert!(psnr >= 30.0, "shift PSNR {psnr:.2} dB");
    }

    #[test]
    fn deterministic_for_a_seed() {
        let src = textured(40, 32, 0);
        let tgt = textured(40, 32, 2);
        let style = invert(&src);
        let g = [Guide {
            source: &src,
            target: &tgt,
            weight: 1.0,
        }];
        let p = PropagateParams {
            extra_pass_3x3: true,
            ..Default::default()
        };
        let a = propagate(&style, &g, &p).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| propagate(&style, &g, &p).unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn mismatched_sizes_are_setting_errors() {
        let src = textured(40, 32, 0);
        let small = textured(20, 32, 0);
        let style = invert(&src);
        let err = propagate(
            &style,
            &[Guide {
                source: &small,
                target: &src,
                weight: 1.0,
            }],
            &PropagateParams::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("guide 1"), "{err}");
        let err = propagate(
            &style,
            &[
                Guide {
                    source: &src,
                    target: &src,
                    weight: 1.0,
                },
                Guide {
                    source: &src,
                    target: &small,
                    weight: 1.0,
                },
            ],
            &PropagateParams::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("guide 2"), "{err}");
        assert!(propagate(&style, &[], &PropagateParams::default()).is_err());
        let bad = PropagateParams {
            patch_size: 4,
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("patch-size"));
    }

    #[test]
    fn tiny_and_differently_sized_images_work() {
        for (sw, sh, tw, th) in [(1, 1, 1, 1), (2, 3, 7, 1), (9, 4, 3, 12)] {
            let src = textured(sw, sh, 0);
            let tgt = textured(tw, th, 1);
            let out = propagate(
                &invert(&src),
                &[Guide {
                    source: &src,
                    target: &tgt,
                    weight: 1.0,
                }],
                &PropagateParams {
                    extra_pass_3x3: true,
                    pyramid_levels: Some(4),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(out.dimensions(), (tw, th));
        }
    }

    #[test]
    fn auto_levels_match_the_public_engine_count() {
        let p = PropagateParams::default();
        assert_eq!(p.levels_for((512, 512), (512, 512)), 6);
        assert_eq!(p.levels_for((8, 8), (8, 8)), 1);
    }
}
