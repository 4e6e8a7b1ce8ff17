//! The nearest-neighbour field and its PatchMatch search (Barnes et al., "PatchMatch", SIGGRAPH
//! 2009): scan-order propagation from neighbours plus random search of halving radius, here in
//! fixed bands of rows that run in parallel (see the module docs of `propagate`).

use super::pyramid::Plane;
use super::vote;
use super::PropagateParams;
use rayon::prelude::*;

/// Rows per band of the parallel scan. Fixed (not derived from the thread count) so that the
/// result is the same on any machine.
const BAND_ROWS: usize = 8;

/// For every target pixel, the source pixel its patch is matched to (patch centres).
#[derive(Debug, Clone)]
pub(crate) struct Nnf {
    width: usize,
    height: usize,
    map: Vec<[i32; 2]>,
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0xD1B5_4A32_D192_ED03);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n >= 1`).
    fn below(&mut self, n: u32) -> i32 {
        (((self.next() >> 32) * n as u64) >> 32) as i32
    }
}

impl Nnf {
    /// A uniformly random field of `tw x th` into a `sw x sh` source.
    pub fn random(tw: usize, th: usize, sw: usize, sh: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let map = (0..tw * th)
            .map(|_| [rng.below(sw as u32), rng.below(sh as u32)])
            .collect();
        Nnf {
            width: tw,
            height: th,
            map,
        }
    }

    /// This (coarser) field scaled to a `tw x th` target into a `sw x sh` source: each fine
    /// pixel takes its coarse parent's match, doubled, plus its own offset within the parent.
    pub fn upsample(&self, tw: usize, th: usize, sw: usize, sh: usize) -> Self {
        let mut map = Vec::with_capacity(tw * th);
        for y in 0..th {
            let cy = (y / 2).min(self.height - 1);
            for x in 0..tw {
                let cx = (x / 2).min(self.width - 1);
                let [nx, ny] = self.map[cy * self.width + cx];
                map.push([
                    (2 * nx + (x & 1) as i32).clamp(0, sw as i32 - 1),
                    (2 * ny + (y & 1) as i32).clamp(0, sh as i32 - 1),
                ]);
            }
        }
        Nnf {
            width: tw,
            height: th,
            map,
        }
    }

    /// Target width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Target height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The match of target pixel `(x, y)`.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> [i32; 2] {
        self.map[y * self.width + x]
    }
}

/// One pyramid level's images. [`synthesize_level`] empties the guide lists once it has built
/// its feature buffers from them, to keep peak memory down.
pub(crate) struct LevelInputs<'a> {
    pub style: Plane,
    pub source_guides: Vec<Plane>,
    pub target_guides: Vec<Plane>,
    pub guide_weights: &'a [f32],
}

/// Feature channels of one side, interleaved per pixel (style RGB, then each guide's RGB) as
/// 8-bit values (the images' own precision; pyramid averages and the voted estimate rounded),
/// padded by `r` pixels of edge replication on every side. A byte a channel keeps the source
/// features of a random candidate in a quarter of the cache lines floats would take: the search
/// is bound by those misses. Each channel's weight applies in [`patch_dist`].
struct Features {
    stride: usize,
    channels: usize,
    data: Vec<u8>,
}

/// Rounds a 0..=255 float channel value to a byte.
#[inline]
fn quantize(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

impl Features {
    /// Pads `planes` (all one size).
    fn build(planes: &[&Plane], width: usize, height: usize, r: usize) -> Self {
        let channels = planes.len() * 3;
        let (pw, ph) = (width + 2 * r, height + 2 * r);
        let mut data = vec![0u8; pw * ph * channels];
        data.par_chunks_mut(pw * channels)
            .enumerate()
            .for_each(|(py, row)| {
                let y = py.saturating_sub(r).min(height - 1);
                for px in 0..pw {
                    let x = px.saturating_sub(r).min(width - 1);
                    for (k, plane) in planes.iter().enumerate() {
                        let i = (y * width + x) * 3;
                        for c in 0..3 {
                            row[px * channels + k * 3 + c] = quantize(plane.data[i + c]);
                        }
                    }
                }
            });
        Features {
            stride: pw,
            channels,
            data,
        }
    }

    /// Replaces the first three channels (the style estimate) with `plane`.
    fn set_style(&mut self, plane: &Plane, r: usize) {
        let (w, h) = (plane.width, plane.height);
        let (stride, channels) = (self.stride, self.channels);
        self.data
            .par_chunks_mut(stride * channels)
            .enumerate()
            .for_each(|(py, row)| {
                let y = py.saturating_sub(r).min(h - 1);
                for px in 0..stride {
                    let x = px.saturating_sub(r).min(w - 1);
                    let i = (y * w + x) * 3;
                    for c in 0..3 {
                        row[px * channels + c] = quantize(plane.data[i + c]);
                    }
                }
            });
    }
}

/// Weighted sum of squared differences over the patches whose top-left padded pixels are `t`
/// and `s`, channels `ch0..`; `lane_w` holds each value's weight along one patch row (its
/// channel's weight, repeated per pixel). Stops early (returning a value >= `bound`) once it
/// reaches `bound`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn patch_dist(
    tf: &Features,
    sf: &Features,
    t: (usize, usize),
    s: (usize, usize),
    ps: usize,
    ch0: usize,
    lane_w: &[f32],
    bound: f32,
) -> f32 {
    let c = tf.channels;
    let row_len = ps * c;
    let mut sum = 0.0f32;
    for dy in 0..ps {
        let ti = ((t.1 + dy) * tf.stride + t.0) * c;
        let si = ((s.1 + dy) * sf.stride + s.0) * c;
        let tr = &tf.data[ti..ti + row_len];
        let sr = &sf.data[si..si + row_len];
        if ch0 == 0 {
            let mut acc = [0.0f32; 8];
            let (tc, sc, wc) = (
                tr.chunks_exact(8),
                sr.chunks_exact(8),
                lane_w.chunks_exact(8),
            );
            let (trem, srem, wrem) = (tc.remainder(), sc.remainder(), wc.remainder());
            for ((a, b), w) in tc.zip(sc).zip(wc) {
                for i in 0..8 {
                    let d = a[i] as f32 - b[i] as f32;
                    acc[i] += w[i] * (d * d);
                }
            }
            for ((a, b), w) in trem.iter().zip(srem).zip(wrem) {
                let d = *a as f32 - *b as f32;
                acc[0] += w * (d * d);
            }
            sum += acc.iter().sum::<f32>();
        } else {
            for k in 0..ps {
                for ch in ch0..c {
                    let d = tr[k * c + ch] as f32 - sr[k * c + ch] as f32;
                    sum += lane_w[ch] * (d * d);
                }
            }
        }
        if sum >= bound {
            return sum;
        }
    }
    sum
}

/// Adds `v[x]` into the `2r+1` positions around each `x` (clamped), along rows then columns:
/// the use count of every source pixel, patch footprints replicated at the edges like the
/// features are. With `gather`, sums over the footprint instead.
fn box_clamped(v: &[f32], w: usize, h: usize, r: usize, gather: bool) -> Vec<f32> {
    let r = r as isize;
    let mut tmp = vec![0.0f32; w * h];
    let clampx = |x: isize| x.clamp(0, w as isize - 1) as usize;
    let clampy = |y: isize| y.clamp(0, h as isize - 1) as usize;
    for y in 0..h {
        for x in 0..w {
            for o in -r..=r {
                let xx = clampx(x as isize + o);
                if gather {
                    tmp[y * w + x] += v[y * w + xx];
                } else {
                    tmp[y * w + xx] += v[y * w + x];
                }
            }
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        for o in -r..=r {
            let yy = clampy(y as isize + o);
            for x in 0..w {
                if gather {
                    out[y * w + x] += tmp[yy * w + x];
                } else {
                    out[yy * w + x] += tmp[y * w + x];
                }
            }
        }
    }
    out
}

/// The uniformity term's inputs: per source pixel, the current use of its patch footprint and
/// the use a perfectly even field would give.
struct Uniformity {
    weight: f32,
    /// Use added by one more patch (the patch area).
    own: f32,
    /// Per source pixel, `[used, fair]` side by side: a candidate's cost then reads one cache
    /// line, not two (the lookup of a random candidate is mostly a cache miss).
    use_fair: Vec<[f32; 2]>,
}

impl Uniformity {
    fn new(weight: f32, field: &Nnf, sw: usize, sh: usize, r: usize) -> Self {
        let ratio = (field.width * field.height) as f32 / (sw * sh) as f32;
        let even = vec![ratio; sw * sh];
        let fair = box_clamped(&box_clamped(&even, sw, sh, r, false), sw, sh, r, true);
        let mut u = Uniformity {
            weight,
            own: ((2 * r + 1) * (2 * r + 1)) as f32,
            use_fair: fair.into_iter().map(|f| [0.0, f]).collect(),
        };
        u.update(field, sw, sh, r);
        u
    }

    fn update(&mut self, field: &Nnf, sw: usize, sh: usize, r: usize) {
        if self.weight == 0.0 {
            return;
        }
        let mut centres = vec![0.0f32; sw * sh];
        for &[x, y] in &field.map {
            centres[y as usize * sw + x as usize] += 1.0;
        }
        let used = box_clamped(&box_clamped(&centres, sw, sh, r, false), sw, sh, r, true);
        for (uf, u) in self.use_fair.iter_mut().zip(used) {
            uf[0] = u;
        }
    }

    /// The term for source centre `i`; `current` when the patch being scored already counts.
    #[inline(always)]
    fn cost(&self, i: usize, current: bool) -> f32 {
        if self.weight == 0.0 {
            return 0.0;
        }
        let [used, fair] = self.use_fair[i];
        let used = used + if current { 0.0 } else { self.own };
        self.weight * used / fair
    }
}

/// One band of a sweep: its first row, the row next to it that it propagates from (see
/// [`Sweep::band`]), the scan direction and the seed of its random search.
#[derive(Clone, Copy)]
struct BandJob<'a> {
    edge: Option<&'a [[i32; 2]]>,
    y0: usize,
    fwd: bool,
    seed: u64,
}

/// Everything one PatchMatch sweep reads.
struct Sweep<'a> {
    tf: &'a Features,
    sf: &'a Features,
    /// Weight of each value of a patch row (see [`patch_dist`]).
    lane_w: &'a [f32],
    uni: &'a Uniformity,
    ps: usize,
    ch0: usize,
    sw: i32,
    sh: i32,
    tw: usize,
    th: usize,
}

impl Sweep<'_> {
    /// (total cost, patch error) of matching target `(x, y)` to source `c`, or infinite totals
    /// when it cannot beat `best`.
    #[inline(always)]
    fn score(&self, x: usize, y: usize, c: [i32; 2], current: bool, best: f32) -> (f32, f32) {
        let si = c[1] as usize * self.sw as usize + c[0] as usize;
        let occ = self.uni.cost(si, current);
        if occ >= best {
            return (f32::INFINITY, f32::INFINITY);
        }
        let d = patch_dist(
            self.tf,
            self.sf,
            (x, y),
            (c[0] as usize, c[1] as usize),
            self.ps,
            self.ch0,
            self.lane_w,
            best - occ,
        );
        if d + occ >= best {
            (f32::INFINITY, d)
        } else {
            (d + occ, d)
        }
    }

    #[inline(always)]
    fn clamp(&self, c: [i32; 2]) -> [i32; 2] {
        [c[0].clamp(0, self.sw - 1), c[1].clamp(0, self.sh - 1)]
    }

    /// One sweep over rows `job.y0..job.y0 + out.len() / tw` of the field: `out`/`dist` are the
    /// band's rows (in: the field before the sweep; out: improved), `job.edge` the row next to
    /// the band that the sweep propagates from (above it forward, below it backward) as it was
    /// before the sweep, if inside the image.
    fn band(&self, job: &BandJob<'_>, out: &mut [[i32; 2]], dist: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.band_avx2(job, out, dist) };
        }
        self.band_any(job, out, dist)
    }

    /// [`Sweep::band`] compiled for AVX2: the same code (no fused multiply-add, so the same
    /// results bit for bit), its patch distances vectorized by the compiler 8 floats wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn band_avx2(&self, job: &BandJob<'_>, out: &mut [[i32; 2]], dist: &mut [f32]) {
        self.band_any(job, out, dist)
    }

    /// Tries source centre `c` (clamped) for target `(x, y)`; keeps it if it beats the best.
    #[inline(always)]
    fn consider(
        &self,
        (x, y): (usize, usize),
        c: [i32; 2],
        best_n: &mut [i32; 2],
        best: &mut f32,
        best_d: &mut f32,
    ) {
        let c = self.clamp(c);
        if c == *best_n {
            return;
        }
        let (t, d) = self.score(x, y, c, false, *best);
        if t < *best {
            *best = t;
            *best_d = d;
            *best_n = c;
        }
    }

    #[inline(always)]
    fn band_any(&self, job: &BandJob<'_>, out: &mut [[i32; 2]], dist: &mut [f32]) {
        let BandJob {
            edge,
            y0,
            fwd,
            seed,
        } = *job;
        let tw = self.tw;
        let rows = out.len() / tw;
        let mut rng = Rng::new(seed);
        let radius0 = self.sw.max(self.sh);
        for k in 0..rows {
            let ly = if fwd { k } else { rows - 1 - k };
            let y = y0 + ly;
            for j in 0..tw {
                let x = if fwd { j } else { tw - 1 - j };
                let i = ly * tw + x;
                let mut best_n = out[i];
                let (mut best, mut best_d) = self.score(x, y, best_n, true, f32::INFINITY);
                // Propagation from the neighbours already visited in this sweep.
                let step: i32 = if fwd { 1 } else { -1 };
                let nx = x as isize - step as isize;
                if nx >= 0 && (nx as usize) < tw {
                    let n = out[ly * tw + nx as usize];
                    self.consider(
                        (x, y),
                        [n[0] + step, n[1]],
                        &mut best_n,
                        &mut best,
                        &mut best_d,
                    );
                }
                let ny = y as isize - step as isize;
                if ny >= 0 && (ny as usize) < self.th {
                    let lny = ny - y0 as isize;
                    let n = if lny >= 0 && (lny as usize) < rows {
                        out[lny as usize * tw + x]
                    } else {
                        edge.expect("edge row of a band inside the image")[x]
                    };
                    self.consider(
                        (x, y),
                        [n[0], n[1] + step],
                        &mut best_n,
                        &mut best,
                        &mut best_d,
                    );
                }
                // Random search around the best match at halving radii.
                let mut radius = radius0;
                while radius >= 1 {
                    let span = 2 * radius as u32 + 1;
                    let c = [
                        best_n[0] + rng.below(span) - radius,
                        best_n[1] + rng.below(span) - radius,
                    ];
                    self.consider((x, y), c, &mut best_n, &mut best, &mut best_d);
                    radius /= 2;
                }
                out[i] = best_n;
                dist[i] = best_d;
            }
        }
    }
}

/// Runs the search-vote iterations of one level from `field` (and the current synthesis, if
/// any); returns the final field, the synthesis and each target pixel's patch error.
pub(crate) fn synthesize_level(
    inputs: &mut LevelInputs<'_>,
    mut field: Nnf,
    mut estimate: Option<Plane>,
    ps: usize,
    params: &PropagateParams,
    seed: u64,
) -> (Nnf, Plane, Vec<f32>) {
    let r = ps / 2;
    let (sw, sh) = (inputs.style.width, inputs.style.height);
    let style = &inputs.style;
    let (tw, th) = (field.width, field.height);
    // Each channel's weight: the style's and each guide's weight spread over its 3 channels.
    let channel_w: Vec<f32> = std::iter::once(params.style_weight)
        .chain(inputs.guide_weights.iter().copied())
        .flat_map(|w| [w / 3.0; 3])
        .collect();
    let lane_w: Vec<f32> = (0..ps).flat_map(|_| channel_w.iter().copied()).collect();

    // The target's style channels are filled from the estimate each iteration.
    let zeros = Plane::zeros(tw, th);
    let mut src_planes = vec![style];
    let mut tgt_planes = vec![&zeros];
    for k in 0..inputs.guide_weights.len() {
        src_planes.push(&inputs.source_guides[k]);
        tgt_planes.push(&inputs.target_guides[k]);
    }
    let sf = Features::build(&src_planes, sw, sh, r);
    let mut tf = Features::build(&tgt_planes, tw, th, r);
    drop(src_planes);
    drop(tgt_planes);
    drop(zeros);
    inputs.source_guides = Vec::new();
    inputs.target_guides = Vec::new();
    let style = &inputs.style;
    let mut uni = Uniformity::new(params.uniformity, &field, sw, sh, r);
    let mut dist = vec![0.0f32; tw * th];

    for sv in 0..params.search_vote_iters {
        let ch0 = match &estimate {
            Some(e) if params.style_weight > 0.0 => {
                tf.set_style(e, r);
                0
            }
            _ => 3,
        };
        let iters = params.patchmatch_iters.max(1);
        for pm in 0..iters {
            if pm > 0 || sv > 0 {
                uni.update(&field, sw, sh, r);
            }
            let sweep = Sweep {
                tf: &tf,
                sf: &sf,
                lane_w: &lane_w,
                uni: &uni,
                ps,
                ch0,
                sw: sw as i32,
                sh: sh as i32,
                tw,
                th,
            };
            let fwd = pm % 2 == 0;
            // The rows the bands propagate from across their edges, before the sweep.
            let bands = th.div_ceil(BAND_ROWS);
            let edges: Vec<Option<Vec<[i32; 2]>>> = (0..bands)
                .map(|b| {
                    let y = if fwd {
                        (b * BAND_ROWS).checked_sub(1)
                    } else {
                        Some((b + 1) * BAND_ROWS).filter(|&y| y < th)
                    };
                    y.map(|y| field.map[y * tw..(y + 1) * tw].to_vec())
                })
                .collect();
            let sweep_seed = seed ^ ((sv * 64 + pm) as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F);
            field
                .map
                .par_chunks_mut(BAND_ROWS * tw)
                .zip(dist.par_chunks_mut(BAND_ROWS * tw))
                .enumerate()
                .for_each(|(b, (out, d))| {
                    let band_seed = sweep_seed ^ (b as u64 + 1).wrapping_mul(0xE703_7ED1_A0B4_28DB);
                    let job = BandJob {
                        edge: edges[b].as_deref(),
                        y0: b * BAND_ROWS,
                        fwd,
                        seed: band_seed,
                    };
                    sweep.band(&job, out, d);
                });
        }
        estimate = Some(vote::vote(&field, Some(&dist), style, ps));
    }
    let est = estimate.expect("search_vote_iters >= 1");
    (field, est, dist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_clamped_scatter_and_gather_count_footprints() {
        // One centre in the corner of a 4x4 image with r = 1: its 3x3 footprint clamps onto
        // (0,0) four times, (1,0) and (0,1) twice, (1,1) once.
        let mut v = vec![0.0; 16];
        v[0] = 1.0;
        let s = box_clamped(&v, 4, 4, 1, false);
        assert_eq!(&s[..2], &[4.0, 2.0]);
        assert_eq!(s[4], 2.0);
        assert_eq!(s[5], 1.0);
        assert_eq!(s.iter().sum::<f32>(), 9.0);
        let g = box_clamped(&[1.0; 16], 4, 4, 1, true);
        assert!(g.iter().all(|&x| x == 9.0));
    }

    #[test]
    fn upsampled_field_keeps_the_offset() {
        let f = Nnf {
            width: 2,
            height: 1,
            map: vec![[3, 0], [1, 0]],
        };
        let u = f.upsample(4, 2, 8, 2);
        assert_eq!(u.at(0, 0), [6, 0]);
        assert_eq!(u.at(1, 1), [7, 1]);
        assert_eq!(u.at(3, 0), [3, 0]);
    }
}
