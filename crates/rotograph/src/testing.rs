//! Helpers for tests, examples and benchmarks (not a stable API): a flickering test backend.

use crate::stylize::{Img2ImgRequest, Stylizer};
use image::RgbaImage;

/// SplitMix64: a small, well-mixed hash for seeded test noise.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Adds seeded jitter to an image in place: a colour offset of ±24 levels per channel for the
/// whole image and ±12 per pixel, both drawn from `seed` (the same seed gives the same jitter).
pub fn jitter(img: &mut RgbaImage, seed: u64) {
    let h = splitmix(seed);
    let offset = |c: u64| ((splitmix(h ^ c) % 49) as i32) - 24;
    let off = [offset(1), offset(2), offset(3)];
    for (k, p) in img.pixels_mut().enumerate() {
        let n = splitmix(h ^ (k as u64 + 17));
        for c in 0..3 {
            let noise = ((n >> (8 * c)) % 25) as i32 - 12;
            p[c] = (i32::from(p[c]) + off[c] + noise).clamp(0, 255) as u8;
        }
    }
}

/// A backend plus [`jitter`] seeded by the request's seed (`toon+jitter` over the toon
/// backend): seeds step per frame, so it flickers like a diffusion model with an unfixed seed.
pub struct Jitter<S>(pub S);

impl<S: Stylizer> Stylizer for Jitter<S> {
    fn name(&self) -> &str {
        "toon+jitter"
    }
    fn stylize(&self, r: &Img2ImgRequest<'_>) -> crate::Result<Vec<RgbaImage>> {
        let mut out = self.0.stylize(r)?;
        for img in &mut out {
            jitter(img, r.seed);
        }
        Ok(out)
    }
}
