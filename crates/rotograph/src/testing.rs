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

/// Seeded flicker: a colour offset of ±24 levels per channel for the whole image and ±12 per
/// pixel, both drawn from the seed.
struct Noise {
    h: u64,
    offset: [i32; 3],
}

impl Noise {
    fn new(seed: u64) -> Self {
        let h = splitmix(seed);
        let offset = |c: u64| ((splitmix(h ^ c) % 49) as i32) - 24;
        Noise {
            h,
            offset: [offset(1), offset(2), offset(3)],
        }
    }

    /// What pixel `k` gets added, per channel.
    fn delta(&self, k: usize) -> [i32; 3] {
        let n = splitmix(self.h ^ (k as u64 + 17));
        std::array::from_fn(|c| self.offset[c] + ((n >> (8 * c)) % 25) as i32 - 12)
    }
}

/// Adds seeded jitter to an image in place: a colour offset of ±24 levels per channel for the
/// whole image and ±12 per pixel, both drawn from `seed` (the same seed gives the same jitter).
pub fn jitter(img: &mut RgbaImage, seed: u64) {
    let noise = Noise::new(seed);
    for (k, p) in img.pixels_mut().enumerate() {
        let d = noise.delta(k);
        for c in 0..3 {
            p[c] = (i32::from(p[c]) + d[c]).clamp(0, 255) as u8;
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

/// A model-free stand-in for a diffusion backend that flickers, img2img-like: at denoising
/// strength d the output keeps (1 - d) of the init image and replaces the rest with a
/// "generation", the toon stylization of the init plus [`jitter`]-like noise drawn from the
/// request's seed and the init's pixels (deterministic, but different every frame, as an
/// unfixed diffusion seed is).
pub struct JitterImg2Img(pub crate::stylize::toon::Toon);

impl JitterImg2Img {
    /// Over the toon preset with `jobs` threads.
    pub fn new(jobs: usize) -> Self {
        JitterImg2Img(crate::stylize::toon::Toon::new(
            crate::stylize::toon::Style::Toon,
            jobs,
        ))
    }
}

impl Stylizer for JitterImg2Img {
    fn name(&self) -> &str {
        "toon+jitter"
    }
    fn stylize(&self, r: &Img2ImgRequest<'_>) -> crate::Result<Vec<RgbaImage>> {
        let toon = self.0.stylize(r)?.remove(0);
        let noise = Noise::new(r.seed ^ content_hash(r.init.as_raw()));
        let d = r.params.denoise.clamp(0.0, 1.0);
        let mut out = r.init.clone();
        for (k, (o, t)) in out.pixels_mut().zip(toon.pixels()).enumerate() {
            let delta = noise.delta(k);
            for c in 0..3 {
                let gen = (i32::from(t[c]) + delta[c]).clamp(0, 255) as f32;
                o[c] = (f32::from(o[c]) * (1.0 - d) + gen * d).round() as u8;
            }
        }
        Ok(vec![out])
    }
}

/// A cheap content hash (FNV-1a over every 7th byte).
fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes.iter().step_by(7) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A deterministic, hash-like RGB texture (rich in unique patches, for patch synthesis and
/// flow tests), shifted `dx` pixels to the left: `texture(w, h, d)` shows at x what
/// `texture(w, h, 0)` shows at x + d.
pub fn hashed_texture(w: u32, h: u32, dx: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let x = x + dx;
        let v = ((x * 37 + y * 11) ^ (x * y / 7)) % 256;
        image::Rgba([
            v as u8,
            ((x * 5 + y * 3) % 256) as u8,
            ((y * 9) % 256) as u8,
            255,
        ])
    })
}

/// The RGB negative of an image, alpha set to 255: a simple deterministic "style".
pub fn invert(img: &RgbaImage) -> RgbaImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0 = [255 - p.0[0], 255 - p.0[1], 255 - p.0[2], 255];
    }
    out
}
