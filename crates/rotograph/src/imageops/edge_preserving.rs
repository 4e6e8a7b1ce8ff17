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
//! Horizontal sweeps run on groups of rows in parallel (several rows and channels interleaved to
//! hide the recursion's latency); vertical sweeps run on strips of columns in parallel, walking
//! down whole row segments, which vectorizes and reads memory in order (no transpose).

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

/// Rows per horizontal task (interleaved for instruction-level parallelism).
const ROW_GROUP: usize = 4;
/// Columns per vertical strip.
const STRIP: usize = 128;

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
        let (dh, dv) = distances(guide.unwrap_or(&*planes), ratio);
        let n = self.iterations.min(16) as i32;
        for i in 0..n {
            // σ of iteration i (eq. 14 of the paper): the variances sum to σs².
            let sigma_i =
                self.sigma_s * 3f32.sqrt() * 2f32.powi(n - i - 1) / (4f32.powi(n) - 1.0).sqrt();
            let ln_a = -std::f32::consts::SQRT_2 / sigma_i;
            match planes.len() {
                3 => {
                    horizontal_pass::<3>(planes, &dh, ln_a);
                    vertical_pass::<3>(planes, &dv, ln_a);
                }
                _ => {
                    for p in planes.iter_mut() {
                        horizontal_pass::<1>(std::slice::from_mut(p), &dh, ln_a);
                        vertical_pass::<1>(std::slice::from_mut(p), &dv, ln_a);
                    }
                }
            }
        }
    }
}

/// Transformed-domain distances to the left neighbour (`dh`, column 0 unused) and to the upper
/// neighbour (`dv`, row 0 unused): `1 + ratio · Σc |ΔIc|`.
fn distances(guide: &[Plane], ratio: f32) -> (Plane, Plane) {
    let (w, h) = (guide[0].width(), guide[0].height());
    let mut dh = Plane::scratch(w, h);
    let mut dv = Plane::scratch(w, h);
    dh.par_rows_mut()
        .zip(dv.par_rows_mut())
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
            for d in hrow.iter_mut().chain(vrow.iter_mut()) {
                *d = 1.0 + ratio * *d;
            }
        });
    (dh, dv)
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

/// One causal + anti-causal horizontal sweep over all rows.
fn horizontal_pass<const C: usize>(planes: &mut [Plane], dh: &Plane, ln_a: f32) {
    let w = dh.width();
    let groups = group_chunks::<C>(planes, ROW_GROUP * w);
    groups
        .into_par_iter()
        .zip(dh.data().par_chunks(ROW_GROUP * w))
        .for_each_init(
            || vec![0f32; ROW_GROUP * w],
            |wbuf, (mut group, dist)| {
                let rows = dist.len() / w;
                let wts = &mut wbuf[..dist.len()];
                for (o, &d) in wts.iter_mut().zip(dist) {
                    *o = fastmath::exp(ln_a * d);
                }
                sweep_rows::<C>(&mut group, wts, w, rows);
            },
        );
}

/// Causal then anti-causal recursion along x for `rows` rows of `w` pixels, all `C` channels
/// interleaved. `wts[r*w + x]` links pixel x to x-1.
#[inline(always)]
fn sweep_rows<const C: usize>(group: &mut [&mut [f32]; C], wts: &[f32], w: usize, rows: usize) {
    let mut prev = [[0f32; C]; ROW_GROUP];
    for (r, p) in prev.iter_mut().enumerate().take(rows) {
        for c in 0..C {
            p[c] = group[c][r * w];
        }
    }
    for x in 1..w {
        for (r, pr) in prev.iter_mut().enumerate().take(rows) {
            let i = r * w + x;
            let wt = wts[i];
            for c in 0..C {
                let v = group[c][i];
                let j = (v - wt * v) + wt * pr[c];
                group[c][i] = j;
                pr[c] = j;
            }
        }
    }
    for (r, p) in prev.iter_mut().enumerate().take(rows) {
        for c in 0..C {
            p[c] = group[c][r * w + w - 1];
        }
    }
    for x in (0..w.saturating_sub(1)).rev() {
        for (r, pr) in prev.iter_mut().enumerate().take(rows) {
            let i = r * w + x;
            let wt = wts[i + 1];
            for c in 0..C {
                let v = group[c][i];
                let j = (v - wt * v) + wt * pr[c];
                group[c][i] = j;
                pr[c] = j;
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
fn vertical_pass<const C: usize>(planes: &mut [Plane], dv: &Plane, ln_a: f32) {
    let h = dv.height();
    let strips = column_strips::<C>(planes, STRIP);
    strips.into_par_iter().enumerate().for_each_init(
        || vec![0f32; STRIP * h],
        |wbuf, (s, mut strip)| {
            let x0 = s * STRIP;
            let sw = strip[0][0].len();
            // The strip's weights, computed once for both sweeps (row y links y to y-1).
            let wts = &mut wbuf[..sw * h];
            for (y, wrow) in wts.chunks_exact_mut(sw).enumerate().skip(1) {
                for (o, &d) in wrow.iter_mut().zip(&dv.row(y)[x0..x0 + sw]) {
                    *o = fastmath::exp(ln_a * d);
                }
            }
            for y in 1..h {
                let wrow = &wts[y * sw..(y + 1) * sw];
                for rows in strip.iter_mut() {
                    let (above, below) = rows.split_at_mut(y);
                    blend_row(below[0], above[y - 1], wrow);
                }
            }
            for y in (0..h.saturating_sub(1)).rev() {
                let wrow = &wts[(y + 1) * sw..(y + 2) * sw];
                for rows in strip.iter_mut() {
                    let (above, below) = rows.split_at_mut(y + 1);
                    blend_row(above[y], below[0], wrow);
                }
            }
        },
    );
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
