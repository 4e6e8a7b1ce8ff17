//! A model-free stand-in for a diffusion backend that flickers, for warp-init tests and the
//! `warp_init_bench` example (included with `#[path]`).
//!
//! Like img2img at denoising strength d, the output keeps (1 - d) of the init image and replaces
//! the rest with a "generation": the toon stylization of the init plus seeded noise (a
//! per-channel colour offset of up to ±24 levels and ±12 per pixel). The noise is drawn from the
//! request's seed and the init image's pixels, so it is deterministic but differs from frame to
//! frame, as an unfixed diffusion seed does.
#![allow(dead_code)]

use image::RgbaImage;
use rotograph::stylize::toon::{Style, Toon};
use rotograph::stylize::{Img2ImgRequest, Stylizer};

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Toon + seeded, init-dependent jitter, blended with the init by the denoising strength.
pub struct JitterImg2Img(pub Toon);

impl JitterImg2Img {
    /// The toon preset with `jobs` threads.
    pub fn new(jobs: usize) -> Self {
        JitterImg2Img(Toon::new(Style::Toon, jobs))
    }
}

impl Stylizer for JitterImg2Img {
    fn name(&self) -> &str {
        "toon+jitter"
    }
    fn stylize(&self, r: &Img2ImgRequest<'_>) -> rotograph::Result<Vec<RgbaImage>> {
        let toon = self.0.stylize(r)?.remove(0);
        let h = splitmix(r.seed ^ u64::from_le_bytes(content_hash(r.init.as_raw())));
        let offset = |c: u64| ((splitmix(h ^ c) % 49) as i32) - 24;
        let off = [offset(1), offset(2), offset(3)];
        let d = r.params.denoise.clamp(0.0, 1.0);
        let mut out = r.init.clone();
        for (k, (o, t)) in out.pixels_mut().zip(toon.pixels()).enumerate() {
            let n = splitmix(h ^ (k as u64 + 17));
            for c in 0..3 {
                let noise = ((n >> (8 * c)) % 25) as i32 - 12;
                let gen = (i32::from(t[c]) + off[c] + noise).clamp(0, 255) as f32;
                o[c] = (f32::from(o[c]) * (1.0 - d) + gen * d).round() as u8;
            }
        }
        Ok(vec![out])
    }
}

/// A cheap content hash (FNV-1a over every 7th byte).
fn content_hash(bytes: &[u8]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes.iter().step_by(7) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_le_bytes()
}
