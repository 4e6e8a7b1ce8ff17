//! Seeded noise exactly as the Automatic1111 web UI draws it with its "NV" random source: a CPU
//! imitation of `torch.randn(..., device="cuda")` (Philox4x32-10 + Box-Muller), plus A1111's
//! seed / variation-seed ("subseed") mixing and the per-step noise of ancestral samplers.
//!
//! Sources (facts only, no code taken): A1111 `modules/rng_philox.py` (the generator),
//! `modules/rng.py` (`slerp`, `ImageRNG`), `modules/processing.py` (batch seeds),
//! `modules/sd_samplers_common.py` (`TorchHijack.randn_like` -> `p.rng.next()`).

use thiserror::Error;

/// Errors of the SD helpers (bad shapes, bad sampler settings).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SdError {
    /// A tensor shape that does not fit the operation or the data.
    #[error("bad shape {shape:?}: {why}")]
    Shape {
        /// The shape given.
        shape: Vec<usize>,
        /// What is wrong with it.
        why: String,
    },
    /// A sampler name that is not one of the accepted names.
    #[error("unknown sampler {name:?}; accepted: {accepted}")]
    UnknownSampler {
        /// The name given.
        name: String,
        /// The accepted names, comma separated.
        accepted: String,
    },
    /// A setting (steps, denoising strength, ...) outside its range.
    #[error("invalid {what}: {why}")]
    Setting {
        /// The setting.
        what: &'static str,
        /// Why it is rejected.
        why: String,
    },
}

// Philox4x32 constants (rng_philox.py: philox_m, philox_w).
const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Philox4x32 with ten rounds; the key is bumped by the Weyl constants between rounds (nine
/// bumps in all, none after the last round).
fn philox4x32_10(mut c: [u32; 4], mut k: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let p0 = u64::from(c[0]) * u64::from(PHILOX_M0);
        let p1 = u64::from(c[2]) * u64::from(PHILOX_M1);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// The first Box-Muller output of two 32-bit words, in float32 (the scale constants are the
/// float32 values `rng_philox.py` uses: 2.3283064e-10 and 2.3283064e-10 * 6.2831855).
fn box_muller_first(x: u32, y: u32) -> f32 {
    let inv: f32 = 2.328_306_4e-10;
    let inv_2pi: f32 = (2.328_306_4e-10_f64 * 6.283_185_5_f64) as f32;
    let u = x as f32 * inv + inv / 2.0;
    let v = y as f32 * inv_2pi + inv_2pi / 2.0;
    (-2.0 * u.ln()).sqrt() * v.sin()
}

/// The "NV" generator of A1111 (`rng_philox.Generator`): standard normal values matching
/// `torch.randn` on CUDA for the same seed.
///
/// Element `i` of a call uses counter `(offset, 0, i, 0)` and key `(seed lo, seed hi)`. As in
/// `rng_philox.py` (`Generator.randn`: `self.offset += 1` once per call, whatever the size),
/// every call advances `offset` by exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvRng {
    /// The 64-bit seed (the Philox key).
    pub seed: u64,
    /// Number of `randn` calls made so far (the first counter word of the next call).
    pub offset: u32,
}

impl NvRng {
    /// A fresh generator for `seed` at offset 0.
    pub fn new(seed: u64) -> Self {
        Self { seed, offset: 0 }
    }

    /// `n` standard normal values; advances `offset` by one.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let offset = self.offset;
        self.offset = self.offset.wrapping_add(1);
        (0..n)
            .map(|i| {
                let i = i as u64;
                // A1111 only fills counter word 2 (up to 2^32 values); beyond that we spill
                // into word 3, as its comment suggests.
                let g = philox4x32_10([offset, 0, i as u32, (i >> 32) as u32], key);
                box_muller_first(g[0], g[1])
            })
            .collect()
    }

    /// Standard normal values for a tensor of `shape` (row-major); advances `offset` by one.
    pub fn randn_shape(&mut self, shape: &[usize]) -> Vec<f32> {
        self.randn(shape.iter().product())
    }
}

/// Spherical interpolation as A1111's `rng.slerp(val, low, high)` does it on a tensor of
/// `shape` (at least two dimensions, row-major): vectors are taken along dimension 1
/// (`torch.norm(low, dim=1)`), so for an image latent `[C, H, W]` each `(c, w)` column over `H`
/// is interpolated with its own angle.
///
/// When the mean cosine over all those vectors exceeds 0.9995, A1111 falls back to
/// `low * val + high * (1 - val)` — note the weights are the reverse of the slerp's (`val = 0`
/// gives `high`); this is mirrored on purpose. Cosines are clamped to `[-1, 1]` before `acos`
/// (A1111 would produce NaN there).
pub fn slerp(val: f32, low: &[f32], high: &[f32], shape: &[usize]) -> Result<Vec<f32>, SdError> {
    let n: usize = shape.iter().product();
    if shape.len() < 2 || n != low.len() || n != high.len() {
        return Err(SdError::Shape {
            shape: shape.to_vec(),
            why: format!(
                "slerp needs at least 2 dimensions whose product matches both inputs \
                 ({} and {} values)",
                low.len(),
                high.len()
            ),
        });
    }
    let (outer, mid) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    let idx = |o: usize, m: usize, i: usize| (o * mid + m) * inner + i;

    // Cosine between low and high for each (outer, inner) vector along dim 1.
    let mut dots = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let (mut ll, mut hh, mut lh) = (0f64, 0f64, 0f64);
            for m in 0..mid {
                let (l, h) = (low[idx(o, m, i)] as f64, high[idx(o, m, i)] as f64);
                ll += l * l;
                hh += h * h;
                lh += l * h;
            }
            dots.push((lh / (ll.sqrt() * hh.sqrt())) as f32);
        }
    }
    let mean = dots.iter().map(|&d| d as f64).sum::<f64>() / dots.len().max(1) as f64;
    if mean > 0.9995 {
        return Ok(low
            .iter()
            .zip(high)
            .map(|(&l, &h)| l * val + h * (1.0 - val))
            .collect());
    }
    let mut out = vec![0f32; n];
    for o in 0..outer {
        for i in 0..inner {
            let omega = dots[o * inner + i].clamp(-1.0, 1.0).acos();
            let so = omega.sin();
            let wl = ((1.0 - val) * omega).sin() / so;
            let wh = (val * omega).sin() / so;
            for m in 0..mid {
                let k = idx(o, m, i);
                out[k] = wl * low[k] + wh * high[k];
            }
        }
    }
    Ok(out)
}

/// The initial noise of one image as A1111's `ImageRNG.first()` makes it (without
/// seed-resize): with a non-zero `subseed_strength` the subseed noise is drawn first (a fresh
/// generator for `subseed`), then the seed noise (a fresh generator for `seed`), and the result
/// is `slerp(subseed_strength, noise, subnoise)`.
pub fn image_noise(
    shape: &[usize],
    seed: u64,
    subseed: u64,
    subseed_strength: f32,
) -> Result<Vec<f32>, SdError> {
    let subnoise = (subseed_strength != 0.0).then(|| NvRng::new(subseed).randn_shape(shape));
    let noise = NvRng::new(seed).randn_shape(shape);
    match subnoise {
        Some(sub) => slerp(subseed_strength, &noise, &sub, shape),
        None => Ok(noise),
    }
}

/// Seeds and subseeds of `count` images as A1111's `processing.py` assigns them: subseeds are
/// `subseed + k`; seeds are `seed + k` only when `subseed_strength == 0`, otherwise every image
/// keeps `seed` (variations then come from the subseeds alone).
pub fn batch_seeds(
    seed: u64,
    subseed: u64,
    subseed_strength: f32,
    count: usize,
) -> Vec<(u64, u64)> {
    (0..count as u64)
        .map(|k| {
            let s = if subseed_strength == 0.0 {
                seed.wrapping_add(k)
            } else {
                seed
            };
            (s, subseed.wrapping_add(k))
        })
        .collect()
}

/// The per-step noise of one image for ancestral/SDE-style samplers, mirroring
/// `ImageRNG.next()` after its first call: A1111 makes the image's initial noise with a
/// generator created for `seed` (which leaves it at offset 1) and then serves every
/// `randn_like` the sampler asks for (`TorchHijack.randn_like` -> `p.rng.next()`) from that same
/// generator. With a non-zero "eta noise seed delta" (ENSD) the generator is replaced by a
/// fresh one for `seed + delta` right after the initial noise.
#[derive(Debug, Clone)]
pub struct StepNoise {
    shape: Vec<usize>,
    rng: NvRng,
}

impl StepNoise {
    /// The step-noise source of an image whose initial noise was drawn with `seed` (offset 0);
    /// `eta_noise_seed_delta` is A1111's ENSD setting (0 by default).
    pub fn new(shape: &[usize], seed: u64, eta_noise_seed_delta: u64) -> Self {
        let rng = if eta_noise_seed_delta != 0 {
            NvRng::new(seed.wrapping_add(eta_noise_seed_delta))
        } else {
            NvRng { seed, offset: 1 }
        };
        Self {
            shape: shape.to_vec(),
            rng,
        }
    }

    /// The next noise tensor (one `randn` call of the image's shape).
    pub fn next_noise(&mut self) -> Vec<f32> {
        self.rng.randn_shape(&self.shape)
    }

    /// The generator's current state.
    pub fn rng(&self) -> &NvRng {
        &self.rng
    }
}

/// A batch's noise as A1111's `ImageRNG` serves it: the first [`ImageRng::next_noise`] (A1111: `ImageRNG.next()`) gives each
/// image's initial noise ([`image_noise`]), later calls the per-step noise ([`StepNoise`]).
#[derive(Debug, Clone)]
pub struct ImageRng {
    shape: Vec<usize>,
    seeds: Vec<(u64, u64)>,
    subseed_strength: f32,
    steps: Option<Vec<StepNoise>>,
    eta_noise_seed_delta: u64,
}

impl ImageRng {
    /// Noise for images of `shape` with the given `(seed, subseed)` pairs (see
    /// [`batch_seeds`]).
    pub fn new(
        shape: &[usize],
        seeds: &[(u64, u64)],
        subseed_strength: f32,
        eta_noise_seed_delta: u64,
    ) -> Self {
        Self {
            shape: shape.to_vec(),
            seeds: seeds.to_vec(),
            subseed_strength,
            steps: None,
            eta_noise_seed_delta,
        }
    }

    /// One noise tensor per image: the initial noise on the first call, step noise after.
    pub fn next_noise(&mut self) -> Result<Vec<Vec<f32>>, SdError> {
        if let Some(steps) = &mut self.steps {
            return Ok(steps.iter_mut().map(StepNoise::next_noise).collect());
        }
        let first = self
            .seeds
            .iter()
            .map(|&(s, sub)| image_noise(&self.shape, s, sub, self.subseed_strength))
            .collect::<Result<Vec<_>, _>>()?;
        self.steps = Some(
            self.seeds
                .iter()
                .map(|&(s, _)| StepNoise::new(&self.shape, s, self.eta_noise_seed_delta))
                .collect(),
        );
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_advances_once_per_call() {
        let mut g = NvRng::new(7);
        let a = g.randn(5);
        assert_eq!(g.offset, 1);
        let b = g.randn(5);
        assert_eq!(g.offset, 2);
        assert_ne!(a, b);
        // Same counters, same values.
        let mut h = NvRng::new(7);
        assert_eq!(h.randn(3), a[..3].to_vec());
    }

    #[test]
    fn rng_philox_docstring_example() {
        // The expected output printed in rng_philox.py's docstring (seed 0, shape (3, 4)).
        let want: [f64; 12] = [
            -0.924_662_59,
            -0.425_344_15,
            -2.643_845_7,
            0.145_183_88,
            -0.120_866_47,
            -0.579_725_64,
            -0.622_851_22,
            -0.328_387_09,
            -1.074_542_31,
            -0.363_144_07,
            -1.671_050_67,
            2.265_504_97,
        ];
        let got = NvRng::new(0).randn_shape(&[3, 4]);
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn slerp_endpoints_and_errors() {
        let shape = [1, 4, 2];
        let a = NvRng::new(1).randn_shape(&shape);
        let b = NvRng::new(2).randn_shape(&shape);
        let s0 = slerp(0.0, &a, &b, &shape).unwrap();
        let s1 = slerp(1.0, &a, &b, &shape).unwrap();
        for k in 0..a.len() {
            assert!((s0[k] - a[k]).abs() < 1e-5);
            assert!((s1[k] - b[k]).abs() < 1e-5);
        }
        // Parallel vectors take A1111's lerp fallback, weights reversed.
        let l = slerp(
            0.25,
            &a,
            &a.iter().map(|x| x * 2.0).collect::<Vec<_>>(),
            &shape,
        )
        .unwrap();
        for k in 0..a.len() {
            assert!((l[k] - (a[k] * 0.25 + 2.0 * a[k] * 0.75)).abs() < 1e-5);
        }
        assert!(slerp(0.5, &a, &b, &[8]).is_err());
        assert!(slerp(0.5, &a, &b[..4], &shape).is_err());
    }

    #[test]
    fn batch_seed_rules() {
        assert_eq!(
            batch_seeds(10, 20, 0.0, 3),
            vec![(10, 20), (11, 21), (12, 22)]
        );
        assert_eq!(
            batch_seeds(10, 20, 0.3, 3),
            vec![(10, 20), (10, 21), (10, 22)]
        );
    }

    #[test]
    fn step_noise_continues_the_image_generator() {
        let shape = [4, 2, 2];
        let mut g = NvRng::new(42);
        let init = g.randn_shape(&shape);
        let s1 = g.randn_shape(&shape);
        let s2 = g.randn_shape(&shape);
        let mut rng = ImageRng::new(&shape, &[(42, 0)], 0.0, 0);
        assert_eq!(rng.next_noise().unwrap(), vec![init]);
        assert_eq!(rng.next_noise().unwrap(), vec![s1]);
        assert_eq!(rng.next_noise().unwrap(), vec![s2]);
        // ENSD: a fresh generator for seed + delta.
        let mut e = StepNoise::new(&shape, 42, 31337);
        assert_eq!(e.next_noise(), NvRng::new(42 + 31337).randn_shape(&shape));
    }

    #[test]
    fn subseed_strength_zero_is_plain_noise() {
        let shape = [4, 3, 3];
        let n = image_noise(&shape, 5, 6, 0.0).unwrap();
        assert_eq!(n, NvRng::new(5).randn_shape(&shape));
        let v = image_noise(&shape, 5, 6, 1.0).unwrap();
        let sub = NvRng::new(6).randn_shape(&shape);
        for k in 0..v.len() {
            assert!((v[k] - sub[k]).abs() < 1e-5);
        }
    }
}
