//! Edge-preserving smoothing: the recursive-filter (RF) domain transform of Gastal & Oliveira,
//! "Domain Transform for Edge-Aware Image and Video Processing" (SIGGRAPH 2011).
//!
//! The image is smoothed by a first-order recursive filter whose feedback weight between two
//! neighbours is `a^d`, where `d = 1 + (σs/σr)·Σc |ΔIc|` is their distance in the transformed
//! domain: across a strong edge the distance is large and almost nothing leaks through; in flat
//! areas the filter behaves like a Gaussian-ish blur of standard deviation σs. Each iteration runs
//! a causal and an anti-causal sweep horizontally, then vertically, with σ halving per iteration
//! so that the total variance stays σs². Cost is O(1) per pixel whatever σs.
//!
//! Since σ halves from one iteration to the next, the weights of iteration i + 1 are the squares
//! of those of iteration i: the exponentials are evaluated once per frame.
//!
//! Horizontal sweeps run on groups of 8 rows in parallel, transposed in cache so that the 8 rows
//! are SIMD lanes (the recursion along x is serial, across rows it is not); vertical sweeps run
//! on wide strips of columns in parallel, walking down whole row segments, which vectorizes and
//! reads memory in order (no full-image transpose).

use super::{fastmath, Plane};
use rayon::prelude::*;

/// Parameters of the domain-transform recursive filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainTransform {
    /// Spatial standard deviation in pixels (0 = no smoothing).
    pub sigma_s: f32,
    /// Range standard deviation, in the image's units (Lab: ~5..40). Edges much stronger than
    /// this are kept.
    pub sigma_r: f32,
    /// Number of horizontal+vertical iterations (3 is the paper's recommendation).
    pub iterations: u32,
}

impl Default for DomainTransform {
    fn default() -> Self {
        DomainTransform {
            sigma_s: 6.0,
            sigma_r: 20.0,
            iterations: 3,
        }
    }
}

/// Rows per horizontal task, interleaved as SIMD lanes.
const LANES: usize = 8;

impl DomainTransform {
    /// Smooths `planes` in place (all the same size). Edges are found in `guide` when given (a
    /// joint/cross filter, same size), else in `planes` themselves.
    ///
    /// # Panics
    /// When the planes (and guide planes) differ in size.
    pub fn apply(&self, planes: &mut [Plane], guide: Option<&[Plane]>) {
        let Some(first) = planes.first() else {
            return;
        };
        let (w, h) = (first.width(), first.height());
        assert!(
            planes.iter().all(|p| p.same_size(first))
                && guide.is_none_or(|g| g.iter().all(|p| p.same_size(first))),
            "domain transform: planes differ in size"
        );
        if self.sigma_s.is_nan() || self.sigma_s <= 0.0 || self.iterations == 0 || w == 0 || h == 0
        {
            return;
        }
        let ratio = self.sigma_s / self.sigma_r.max(1e-6);
        let n = self.iterations.min(16) as i32;
        // σ of iteration i (eq. 14 of the paper; the variances sum to σs²) halves from one
        // iteration to the next, so the feedback weight a^d of iteration i + 1 is the square of
        // that of iteration i: the exponentials are computed once, then squared in place.
        let sigma_0 = self.sigma_s * 3f32.sqrt() * 2f32.powi(n - 1) / (4f32.powi(n) - 1.0).sqrt();
        let ln_a0 = -std::f32::consts::SQRT_2 / sigma_0;
        let (mut wh, mut wv) = feedback_weights(guide.unwrap_or(&*planes), ratio, ln_a0);
        for _ in 0..n {
            match planes.len() {
                3 => {
                    horizontal_pass::<3>(planes, &wh);
                    vertical_pass::<3>(planes, &wv);
                }
                _ => {
                    for p in planes.iter_mut() {
                        horizontal_pass::<1>(std::slice::from_mut(p), &wh);
                        vertical_pass::<1>(std::slice::from_mut(p), &wv);
                    }
                }
            }
            rayon::join(|| square_in_place(&mut wh), || square_in_place(&mut wv));
        }
    }
}

/// Feedback weights `a^d` of the first iteration towards the left neighbour (`wh`, column 0
/// unused) and the upper neighbour (`wv`, row 0 unused), where `d = 1 + ratio · Σc |ΔIc|` is the
/// transformed-domain distance and `a = e^ln_a`.
fn feedback_weights(guide: &[Plane], ratio: f32, ln_a: f32) -> (Plane, Plane) {
    let (w, h) = (guide[0].width(), guide[0].height());
    let mut wh = Plane::scratch(w, h);
    let mut wv = Plane::scratch(w, h);
    wh.par_rows_mut()
        .zip(wv.par_rows_mut())
        .enumerate()
        .for_each(|(y, (hrow, vrow))| {
            hrow.fill(0.0);
            vrow.fill(0.0);
            for g in guide {
                let cur = g.row(y);
                for x in 1..w {
                    hrow[x] += (cur[x] - cur[x - 1]).abs();
                }
                if y > 0 {
                    let up = g.row(y - 1);
                    for ((d, &c), &u) in vrow.iter_mut().zip(cur).zip(up) {
                        *d += (c - u).abs();
                    }
                }
            }
            for d in hrow.iter_mut() {
                *d = fastmath::exp(ln_a * (1.0 + ratio * *d));
            }
            for d in vrow.iter_mut() {
                *d = fastmath::exp(ln_a * (1.0 + ratio * *d));
            }
        });
    (wh, wv)
}

fn square_in_place(p: &mut Plane) {
    p.data_mut().par_chunks_mut(1 << 16).for_each(|c| {
        for v in c {
            *v *= *v;
        }
    });
}

/// Splits each of the `C` planes into chunks of `chunk` values and groups the i-th chunks.
fn group_chunks<const C: usize>(planes: &mut [Plane], chunk: usize) -> Vec<[&mut [f32]; C]> {
    let mut iters: Vec<_> = planes
        .iter_mut()
        .map(|p| p.data_mut().chunks_mut(chunk))
        .collect();
    let mut out = Vec::new();
    loop {
        let group: [Option<&mut [f32]>; C] = std::array::from_fn(|c| iters[c].next());
        if group.iter().any(Option::is_none) {
            return out;
        }
        out.push(group.map(|g| g.unwrap_or_default()));
    }
}

/// One causal + anti-causal horizontal sweep over all rows. Rows are processed [`LANES`] at a
/// time, interleaved (`buf[x·C + c][row]`), so that every step of the recursion is one SIMD
/// operation over the rows instead of a scalar dependency chain.
fn horizontal_pass<const C: usize>(planes: &mut [Plane], wh: &Plane) {
    let w = wh.width();
    let groups = group_chunks::<C>(planes, LANES * w);
    groups
        .into_par_iter()
        .zip(wh.data().par_chunks(LANES * w))
        .for_each_init(
            || (vec![[0f32; LANES]; w * C], vec![[0f32; LANES]; w]),
            |(buf, wb), (mut group, wts)| {
                let rows = wts.len() / w;
                if rows == LANES {
                    // Interleave: x outer, so that the stores are contiguous and the reads
                    // are LANES·C sequential streams.
                    for x in 0..w {
                        wb[x] = std::array::from_fn(|r| wts[r * w + x]);
                        for c in 0..C {
                            let plane = &group[c];
                            buf[x * C + c] = std::array::from_fn(|r| plane[r * w + x]);
                        }
                    }
                } else {
                    // The last, partial group: missing rows get zero weights.
                    for x in 0..w {
                        wb[x] =
                            std::array::from_fn(|r| if r < rows { wts[r * w + x] } else { 0.0 });
                        for c in 0..C {
                            let plane = &group[c];
                            buf[x * C + c] =
                                std::array::from_fn(
                                    |r| if r < rows { plane[r * w + x] } else { 0.0 },
                                );
                        }
                    }
                }
                sweep_interleaved::<C>(buf, wb);
                for x in 0..w {
                    for (c, plane) in group.iter_mut().enumerate() {
                        let v = &buf[x * C + c];
                        for (r, &vr) in v.iter().enumerate().take(rows) {
                            plane[r * w + x] = vr;
                        }
                    }
                }
            },
        );
}

/// Causal then anti-causal recursion along x over interleaved rows (`wb[x]` links x to x-1).
#[inline(always)]
fn sweep_interleaved<const C: usize>(buf: &mut [[f32; LANES]], wb: &[[f32; LANES]]) {
    let w = wb.len();
    for x in 1..w {
        let wt = wb[x];
        for c in 0..C {
            let prev = buf[(x - 1) * C + c];
            let cur = &mut buf[x * C + c];
            for l in 0..LANES {
                cur[l] = (cur[l] - wt[l] * cur[l]) + wt[l] * prev[l];
            }
        }
    }
    for x in (0..w.saturating_sub(1)).rev() {
        let wt = wb[x + 1];
        for c in 0..C {
            let next = buf[(x + 1) * C + c];
            let cur = &mut buf[x * C + c];
            for l in 0..LANES {
                cur[l] = (cur[l] - wt[l] * cur[l]) + wt[l] * next[l];
            }
        }
    }
}

/// Column strips: for strip s, channel c, the row segments `[y][x0..x1]`.
type Strip<'a, const C: usize> = [Vec<&'a mut [f32]>; C];

fn column_strips<const C: usize>(planes: &mut [Plane], strip: usize) -> Vec<Strip<'_, C>> {
    let (w, h) = (planes[0].width(), planes[0].height());
    let n = w.div_ceil(strip);
    let mut strips: Vec<Strip<'_, C>> = (0..n)
        .map(|_| std::array::from_fn(|_| Vec::with_capacity(h)))
        .collect();
    for (c, p) in planes.iter_mut().enumerate().take(C) {
        for row in p.data_mut().chunks_mut(w) {
            for (s, seg) in row.chunks_mut(strip).enumerate() {
                strips[s][c].push(seg);
            }
        }
    }
    strips
}

/// One causal + anti-causal vertical sweep, strips of columns in parallel.
fn vertical_pass<const C: usize>(planes: &mut [Plane], wv: &Plane) {
    let h = wv.height();
    // Wide strips keep the hardware prefetcher effective (each row segment is a long sequential
    // run); two per thread leave some room for work stealing on a busy machine.
    let w = wv.width();
    let strips_wanted = 2 * rayon::current_num_threads();
    let strip_w = w.div_ceil(strips_wanted).next_multiple_of(16).max(64);
    let strips = column_strips::<C>(planes, strip_w);
    strips
        .into_par_iter()
        .enumerate()
        .for_each(|(s, mut strip)| {
            let x0 = s * strip_w;
            let sw = strip[0][0].len();
            let wrow = |y: usize| &wv.row(y)[x0..x0 + sw];
            for y in 1..h {
                for rows in strip.iter_mut() {
                    let (above, below) = rows.split_at_mut(y);
                    blend_row(below[0], above[y - 1], wrow(y));
                }
            }
            for y in (0..h.saturating_sub(1)).rev() {
                for rows in strip.iter_mut() {
                    let (above, below) = rows.split_at_mut(y + 1);
                    blend_row(above[y], below[0], wrow(y + 1));
                }
            }
        });
}

/// `cur = cur + wts · (other − cur)`, vectorized.
#[inline(always)]
fn blend_row(cur: &mut [f32], other: &[f32], wts: &[f32]) {
    for ((c, &o), &wt) in cur.iter_mut().zip(other).zip(wts) {
        *c = (*c - wt * *c) + wt * o;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imageops::blur::gaussian_blur;

    /// Step from 20 to 80 at x = w/2 plus uniform noise of ±`amp`.
    fn noisy_step(w: usize, h: usize, amp: f32) -> Plane {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        Plane::from_fn(w, h, |x, _| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let n = (s % 10_000) as f32 / 10_000.0 * 2.0 - 1.0;
            (if x < w / 2 { 20.0 } else { 80.0 }) + amp * n
        })
    }

    fn flat_std(p: &Plane, x0: usize, x1: usize) -> f64 {
        let vals: Vec<f64> = (0..p.height())
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .map(|(x, y)| p.get(x, y) as f64)
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt()
    }

    /// 10%–90% rise width of the mean row profile, in pixels.
    fn rise_width(p: &Plane) -> usize {
        let w = p.width();
        let profile: Vec<f32> = (0..w)
            .map(|x| (0..p.height()).map(|y| p.get(x, y)).sum::<f32>() / p.height() as f32)
            .collect();
        let lo = 20.0 + 0.1 * 60.0;
        let hi = 20.0 + 0.9 * 60.0;
        let first_above_lo = profile.iter().position(|&v| v > lo).unwrap_or(0);
        let first_above_hi = profile.iter().position(|&v| v > hi).unwrap_or(w);
        first_above_hi.saturating_sub(first_above_lo)
    }

    #[test]
    fn keeps_step_sharp_while_flattening_noise() {
        let (w, h) = (96, 64);
        let src = noisy_step(w, h, 5.0);
        let mut dt = [src.clone()];
        DomainTransform {
            sigma_s: 8.0,
            sigma_r: 20.0,
            iterations: 3,
        }
        .apply(&mut dt, None);
        let gauss = gaussian_blur(&src, 8.0);
        let (std_in, std_dt) = (flat_std(&src, 4, 40), flat_std(&dt[0], 4, 40));
        eprintln!(
            "noise std {std_in:.2} -> {std_dt:.2}; rise width dt {} gauss {}",
            rise_width(&dt[0]),
            rise_width(&gauss)
        );
        assert!(std_dt < std_in / 3.0, "noise {std_in} -> {std_dt}");
        assert!(
            rise_width(&dt[0]) <= 2,
            "edge blurred to {}",
            rise_width(&dt[0])
        );
        assert!(rise_width(&gauss) >= 10, "sanity: gaussian blurs the step");
        // The plateaus stay at their levels (no leaking across the edge).
        let left = dt[0].get(w / 2 - 3, h / 2);
        let right = dt[0].get(w / 2 + 2, h / 2);
        assert!(
            (left - 20.0).abs() < 3.0 && (right - 80.0).abs() < 3.0,
            "{left} {right}"
        );
    }

    /// Straightforward f64 implementation of the paper's recursive filter (per-iteration
    /// exponentials, row by row, column by column) to check the optimized one against.
    fn reference(planes: &[Plane], dt: &DomainTransform) -> Vec<Vec<f64>> {
        let (w, h) = (planes[0].width(), planes[0].height());
        let mut img: Vec<Vec<f64>> = planes
            .iter()
            .map(|p| p.data().iter().map(|&v| v as f64).collect())
            .collect();
        let ratio = dt.sigma_s as f64 / dt.sigma_r as f64;
        let dist = |i: usize, j: usize| {
            1.0 + ratio
                * planes
                    .iter()
                    .map(|p| (p.data()[i] as f64 - p.data()[j] as f64).abs())
                    .sum::<f64>()
        };
        let n = dt.iterations as i32;
        for it in 0..n {
            let sigma_i = dt.sigma_s as f64 * 3f64.sqrt() * 2f64.powi(n - it - 1)
                / (4f64.powi(n) - 1.0).sqrt();
            let a = (-(2f64.sqrt()) / sigma_i).exp();
            for c in img.iter_mut() {
                for y in 0..h {
                    for x in 1..w {
                        let (i, j) = (y * w + x, y * w + x - 1);
                        let wt = a.powf(dist(i, j));
                        c[i] += wt * (c[j] - c[i]);
                    }
                    for x in (0..w - 1).rev() {
                        let (i, j) = (y * w + x, y * w + x + 1);
                        let wt = a.powf(dist(i, j));
                        c[i] += wt * (c[j] - c[i]);
                    }
                }
                for x in 0..w {
                    for y in 1..h {
                        let (i, j) = (y * w + x, (y - 1) * w + x);
                        let wt = a.powf(dist(i, j));
                        c[i] += wt * (c[j] - c[i]);
                    }
                    for y in (0..h - 1).rev() {
                        let (i, j) = (y * w + x, (y + 1) * w + x);
                        let wt = a.powf(dist(i, j));
                        c[i] += wt * (c[j] - c[i]);
                    }
                }
            }
        }
        img
    }

    #[test]
    fn matches_a_direct_implementation_of_the_paper() {
        // Odd sizes: partial row groups and partial column strips.
        let (w, h) = (101, 37);
        let a = noisy_step(w, h, 8.0);
        let b = Plane::from_fn(w, h, |x, y| ((x * 7 + y * 13) % 23) as f32 * 2.0);
        let c = Plane::from_fn(w, h, |x, y| {
            if (x / 9 + y / 7) % 2 == 0 {
                -30.0
            } else {
                25.0
            }
        });
        let dt = DomainTransform {
            sigma_s: 7.0,
            sigma_r: 15.0,
            iterations: 3,
        };
        let src = [a, b, c];
        let want = reference(&src, &dt);
        let mut got = src.clone();
        dt.apply(&mut got, None);
        for (ch, (g, r)) in got.iter().zip(&want).enumerate() {
            let worst = g
                .data()
                .iter()
                .zip(r)
                .map(|(&g, &r)| (g as f64 - r).abs())
                .fold(0f64, f64::max);
            assert!(
                worst < 2e-3,
                "channel {ch} differs from the reference by {worst}"
            );
        }
        // Single channel path too.
        let one = [src[0].clone()];
        let want = reference(&one, &dt);
        let mut got = one.clone();
        dt.apply(&mut got, None);
        let worst = got[0]
            .data()
            .iter()
            .zip(&want[0])
            .map(|(&g, &r)| (g as f64 - r).abs())
            .fold(0f64, f64::max);
        assert!(worst < 2e-3, "single channel differs by {worst}");
    }

    #[test]
    fn flat_input_stays_flat_and_sigma_zero_is_identity() {
        let mut flat = [Plane::from_fn(40, 30, |_, _| 7.5)];
        DomainTransform::default().apply(&mut flat, None);
        assert!(flat[0].data().iter().all(|&v| (v - 7.5).abs() < 1e-4));
        let src = noisy_step(33, 21, 10.0);
        let mut same = [src.clone()];
        DomainTransform {
            sigma_s: 0.0,
            ..Default::default()
        }
        .apply(&mut same, None);
        assert_eq!(same[0], src);
    }

    #[test]
    fn three_channels_match_single_channel_with_shared_guide() {
        // Filtering three planes jointly equals filtering each with the same 3-plane guide.
        let a = noisy_step(50, 23, 6.0);
        let b = Plane::from_fn(50, 23, |x, y| ((x * 7 + y * 3) % 17) as f32);
        let c = Plane::from_fn(50, 23, |x, y| (x as f32 - y as f32) * 0.5);
        let guide = [a.clone(), b.clone(), c.clone()];
        let dt = DomainTransform::default();
        let mut joint = guide.clone();
        dt.apply(&mut joint, None);
        for (i, p) in [a, b, c].into_iter().enumerate() {
            let mut single = [p];
            dt.apply(&mut single, Some(&guide));
            let worst = single[0]
                .data()
                .iter()
                .zip(joint[i].data())
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "channel {i} differs by {worst}");
        }
    }

    #[test]
    fn mean_is_roughly_preserved_on_smooth_input() {
        let src = Plane::from_fn(80, 60, |x, y| {
            (x as f32 * 0.3).sin() * 10.0 + y as f32 * 0.2
        });
        let mut out = [src.clone()];
        DomainTransform {
            sigma_s: 5.0,
            sigma_r: 1000.0,
            iterations: 3,
        }
        .apply(&mut out, None);
        assert!((out[0].mean() - src.mean()).abs() < 0.2);
        // The oscillation (period ~21 px) is strongly attenuated (a Gaussian of σ 5: to 0.32).
        let amp = |p: &Plane| {
            let r = p.row(30);
            r[20..60].iter().cloned().fold(f32::MIN, f32::max)
                - r[20..60].iter().cloned().fold(f32::MAX, f32::min)
        };
        assert!(
            amp(&out[0]) < amp(&src) * 0.5,
            "{} {}",
            amp(&out[0]),
            amp(&src)
        );
    }
}
