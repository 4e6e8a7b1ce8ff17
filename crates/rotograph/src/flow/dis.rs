//! Patch search and densification of one pyramid level (the "inverse search" of DIS).

use super::{bilinear, FlowField, FlowParams, Level};
use rayon::prelude::*;

/// Top-left corners of patches of side `ps` every `stride` pixels along a side of `n` pixels;
/// the last patch is moved flush with the border so every pixel is covered.
fn grid(n: usize, ps: usize, stride: usize) -> Vec<usize> {
    if n <= ps {
        return vec![0];
    }
    let mut v: Vec<usize> = (0..=n - ps).step_by(stride).collect();
    if *v.last().expect("non-empty") != n - ps {
        v.push(n - ps);
    }
    v
}

/// For each pixel along a side, the range of grid indices whose patch covers it.
fn coverage(n: usize, starts: &[usize], ps: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(n);
    let mut lo = 0;
    for p in 0..n {
        while lo < starts.len() && starts[lo] + ps <= p {
            lo += 1;
        }
        let mut hi = lo;
        while hi + 1 < starts.len() && starts[hi + 1] <= p {
            hi += 1;
        }
        out.push((lo.min(starts.len() - 1), hi));
    }
    out
}

/// The templates (first image) of one row of patches, in flat buffers: for patch k, values
/// `k * ps² .. (k + 1) * ps²` of `t` (intensities), `gx`, `gy` (mean-free gradients).
struct TemplateRow {
    ps: usize,
    t: Vec<f32>,
    gx: Vec<f32>,
    gy: Vec<f32>,
    hinv: Vec<Option<[f32; 3]>>,
}

impl TemplateRow {
    /// The templates of the patches at `xs` with top row `py`.
    fn new(a: &Level, xs: &[usize], py: usize, ps: usize) -> Self {
        let n = ps * ps;
        let mut row = TemplateRow {
            ps,
            t: Vec::with_capacity(n * xs.len()),
            gx: Vec::with_capacity(n * xs.len()),
            gy: Vec::with_capacity(n * xs.len()),
            hinv: Vec::with_capacity(xs.len()),
        };
        for &px in xs {
            let k0 = row.t.len();
            for j in 0..ps {
                let (ri, rx, ry) = (a.img.row(py + j), a.gx.row(py + j), a.gy.row(py + j));
                row.t.extend_from_slice(&ri[px..px + ps]);
                row.gx.extend_from_slice(&rx[px..px + ps]);
                row.gy.extend_from_slice(&ry[px..px + ps]);
            }
            let (gx, gy) = (&mut row.gx[k0..], &mut row.gy[k0..]);
            // Mean-normalised matching (robust to a brightness offset): centre the gradients.
            let mx = gx.iter().sum::<f32>() / n as f32;
            let my = gy.iter().sum::<f32>() / n as f32;
            let (mut hxx, mut hxy, mut hyy) = (0.0f32, 0.0f32, 0.0f32);
            for (x, y) in gx.iter_mut().zip(gy.iter_mut()) {
                *x -= mx;
                *y -= my;
                hxx += *x * *x;
                hxy += *x * *y;
                hyy += *y * *y;
            }
            let det = hxx * hyy - hxy * hxy;
            row.hinv
                .push((det > 1e-3 * n as f32).then(|| [hyy / det, -hxy / det, hxx / det]));
        }
        row
    }

    /// The template of patch `k` of the row.
    fn get(&self, k: usize) -> Template<'_> {
        let n = self.ps * self.ps;
        let r = k * n..(k + 1) * n;
        Template {
            t: &self.t[r.clone()],
            gx: &self.gx[r.clone()],
            gy: &self.gy[r],
            hinv: self.hinv[k],
        }
    }
}

/// Per-patch data of the template (first image) that every iteration reuses.
struct Template<'a> {
    t: &'a [f32],
    gx: &'a [f32],
    gy: &'a [f32],
    /// Inverse of the 2x2 Gauss-Newton Hessian (xx, xy, yy), `None` for a flat patch.
    hinv: Option<[f32; 3]>,
}

impl Template<'_> {
    /// Σ g·e over the patch for the template gradients g (mean-free) and residual `e`: the
    /// right-hand side of a Gauss-Newton step.
    fn project(&self, e: &[f32]) -> (f32, f32) {
        let (mut bx, mut by) = (0.0f32, 0.0f32);
        for ((gx, gy), e) in self.gx.iter().zip(self.gy).zip(e) {
            bx += gx * e;
            by += gy * e;
        }
        (bx, by)
    }

    /// The right-hand side of a Gauss-Newton step at displacement (u, v). The template
    /// gradients are mean-free, so the residual's mean drops out and, when the patch lies
    /// inside the image, one fused pass samples and accumulates without storing the residual;
    /// near the border it goes through [`Template::border_differences`] (`d` is scratch).
    fn gradient_step(
        &self,
        b: &Level,
        at: (usize, usize),
        ps: usize,
        uv: (f32, f32),
        d: &mut [f32],
    ) -> (f32, f32) {
        let x0 = at.0 as f32 + uv.0;
        let y0 = at.1 as f32 + uv.1;
        if !inside(b, x0, y0, ps) {
            self.border_differences(b, at, ps, uv, d);
            return self.project(d);
        }
        let taps = Taps::new(x0, y0);
        let (mut ax, mut ay) = ([0.0f32; LANES], [0.0f32; LANES]);
        for j in 0..ps {
            let (r0, r1) = taps.rows(b, j, ps);
            let r = j * ps..(j + 1) * ps;
            let (t, gx, gy) = (&self.t[r.clone()], &self.gx[r.clone()], &self.gy[r]);
            lanes(ps, |i, k| {
                let e = taps.at(r0, r1, i) - t[i];
                ax[k] += gx[i] * e;
                ay[k] += gy[i] * e;
            });
        }
        (ax.iter().sum(), ay.iter().sum())
    }

    /// The flow of the patch at `at`: starts from the best-matching of `start` and the
    /// neighbours' flows, then runs up to `iters` inverse-compositional Gauss-Newton steps. The
    /// result is kept only when it explains the patch at least as well as the start and did
    /// not run more than a patch side away from it; otherwise the start is returned.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        b: &Level,
        at: (usize, usize),
        ps: usize,
        start: (f32, f32),
        anchor: (f32, f32),
        neighbour: Option<(f32, f32)>,
        iters: usize,
        d: &mut [f32],
    ) -> ((f32, f32), (f32, f32)) {
        let mut cand = start;
        let mut best = self.residual(b, at, ps, cand, d);
        if let Some(nb) = neighbour.filter(|&nb| nb != start) {
            let c = self.residual(b, at, ps, nb, d);
            if c < best {
                best = c;
                cand = nb;
            }
        }
        let anchor = if cand == start { anchor } else { cand };
        let Some(hi) = self.hinv else {
            return (cand, anchor);
        };
        // A patch displaced mostly outside the image matches only the clamped border: its
        // residual says nothing, so the search would wander off.
        let (w, h) = (b.img.width() as f32, b.img.height() as f32);
        let span = |p: f32, n: f32| ((p + ps as f32).min(n) - p.max(0.0)).max(0.0) / ps as f32;
        if span(at.0 as f32 + cand.0, w) * span(at.1 as f32 + cand.1, h) < 0.5 {
            return (cand, anchor);
        }
        let (mut u, mut v) = cand;
        for _ in 0..iters {
            let (bx, by) = self.gradient_step(b, at, ps, (u, v), d);
            let du = hi[0] * bx + hi[1] * by;
            let dv = hi[1] * bx + hi[2] * by;
            u -= du;
            v -= dv;
            if du * du + dv * dv < 1e-4 {
                break;
            }
        }
        let end = self.residual(b, at, ps, (u, v), d);
        let moved = (u - anchor.0).powi(2) + (v - anchor.1).powi(2);
        if end <= best && moved <= (ps * ps) as f32 {
            ((u, v), anchor)
        } else {
            (cand, anchor)
        }
    }

    /// The sum of squared differences between the template and the second image under the
    /// patch displaced by (u, v), after removing their mean difference (mean-normalised
    /// matching): Σe² − (Σe)²/n in one pass. `d` is scratch for patches near the border.
    fn residual(
        &self,
        b: &Level,
        at: (usize, usize),
        ps: usize,
        uv: (f32, f32),
        d: &mut [f32],
    ) -> f32 {
        let x0 = at.0 as f32 + uv.0;
        let y0 = at.1 as f32 + uv.1;
        let (mut s1, mut s2) = ([0.0f32; LANES], [0.0f32; LANES]);
        if inside(b, x0, y0, ps) {
            // One set of bilinear weights serves every pixel.
            let taps = Taps::new(x0, y0);
            for j in 0..ps {
                let (r0, r1) = taps.rows(b, j, ps);
                let t = &self.t[j * ps..(j + 1) * ps];
                lanes(ps, |i, k| {
                    let e = taps.at(r0, r1, i) - t[i];
                    s1[k] += e;
                    s2[k] += e * e;
                });
            }
        } else {
            self.border_differences(b, at, ps, uv, d);
            for row in d.chunks(ps) {
                lanes(ps, |i, k| {
                    s1[k] += row[i];
                    s2[k] += row[i] * row[i];
                });
            }
        }
        let (sum, sq) = (s1.iter().sum::<f32>(), s2.iter().sum::<f32>());
        (sq - sum * sum / (ps * ps) as f32).max(0.0)
    }

    /// Differences between the second image under the patch displaced by (u, v) and the
    /// template, into `d`, for a patch near the border: clamped taps, computed once per column
    /// and once per row.
    fn border_differences(
        &self,
        b: &Level,
        at: (usize, usize),
        ps: usize,
        uv: (f32, f32),
        d: &mut [f32],
    ) {
        let ((px, py), (u, v)) = (at, uv);
        let (w, h) = (b.img.width(), b.img.height());
        let data = b.img.data();
        let tap = |p: f32, n: usize| {
            let p = p.clamp(0.0, (n - 1) as f32);
            let p0 = p as usize;
            (p0, (p0 + 1).min(n - 1), p - p0 as f32)
        };
        let mut cols = [(0usize, 0usize, 0.0f32); 32];
        for (i, c) in cols.iter_mut().enumerate().take(ps) {
            *c = tap((px + i) as f32 + u, w);
        }
        for j in 0..ps {
            let (y0, y1, fy) = tap((py + j) as f32 + v, h);
            let (r0, r1) = (&data[y0 * w..(y0 + 1) * w], &data[y1 * w..(y1 + 1) * w]);
            for (i, &(x0, x1, fx)) in cols[..ps].iter().enumerate() {
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                let k = j * ps + i;
                d[k] = top + (bot - top) * fy - self.t[k];
            }
        }
    }
}

/// Whether a patch of side `ps` with its top-left corner at (x0, y0) has all its bilinear
/// samples inside the image of `b`.
#[inline]
fn inside(b: &Level, x0: f32, y0: f32, ps: usize) -> bool {
    x0 >= 0.0
        && y0 >= 0.0
        && x0 + ((ps + 1) as f32) < b.img.width() as f32
        && y0 + ((ps + 1) as f32) < b.img.height() as f32
}

/// Width of the accumulators of the patch loops. Sums are kept per lane (pixel index modulo
/// `LANES`) and added up at the end, a fixed order that the compiler can vectorise (one running
/// sum would be a chain of dependent additions, which it may not reorder).
const LANES: usize = 8;

/// Calls `f(i, lane)` for i in 0..n, with `lane` = i % LANES, in whole blocks of LANES (fully
/// unrolled) and then the rest.
#[inline(always)]
fn lanes(n: usize, mut f: impl FnMut(usize, usize)) {
    let mut i = 0;
    while i + LANES <= n {
        for k in 0..LANES {
            f(i + k, k);
        }
        i += LANES;
    }
    for k in 0..n - i {
        f(i + k, k);
    }
}

/// Bilinear taps of a patch lying inside the image: the top-left sample and the weights that
/// every pixel of the patch shares.
struct Taps {
    ix: usize,
    iy: usize,
    w: [f32; 4],
}

impl Taps {
    fn new(x0: f32, y0: f32) -> Self {
        let (ix, iy) = (x0 as usize, y0 as usize);
        let (fx, fy) = (x0 - ix as f32, y0 - iy as f32);
        Taps {
            ix,
            iy,
            w: [
                (1.0 - fx) * (1.0 - fy),
                fx * (1.0 - fy),
                (1.0 - fx) * fy,
                fx * fy,
            ],
        }
    }

    /// The two image rows under patch row `j` (ps + 1 samples each).
    #[inline(always)]
    fn rows<'a>(&self, b: &'a Level, j: usize, ps: usize) -> (&'a [f32], &'a [f32]) {
        let (w, data) = (b.img.width(), b.img.data());
        let o = (self.iy + j) * w + self.ix;
        (&data[o..o + ps + 1], &data[o + w..o + w + ps + 1])
    }

    /// The sample under patch pixel i of a row.
    #[inline(always)]
    fn at(&self, r0: &[f32], r1: &[f32], i: usize) -> f32 {
        self.w[0] * r0[i] + self.w[1] * r0[i + 1] + self.w[2] * r1[i] + self.w[3] * r1[i + 1]
    }
}

/// Sparse patch flows on the grid, then densified: the dense flow of level `a` → `b`.
///
/// Each row of patches is searched twice, as in DIS's spatial propagation but along rows only:
/// left to right, where a patch may start from its left neighbour's flow instead of the coarser
/// level's when that matches better, then right to left from its right neighbour's. Each pass
/// spends half the Gauss-Newton iterations. Without the second pass a good match found late in
/// a row never reaches the patches before it, which costs most at the large displacements of a
/// stereo pair. (Propagating across rows as well, within stripes, measured worse on both test
/// sets; see BENCHMARKS.md.) Rows are independent, so the result does not depend on the
/// thread count.
pub(super) fn patch_flow(a: &Level, b: &Level, init: &FlowField, params: &FlowParams) -> FlowField {
    let (w, h) = (a.img.width(), a.img.height());
    let ps = params.patch_size.min(w).min(h);
    let xs = grid(w, ps, params.patch_stride);
    let ys = grid(h, ps, params.patch_stride);
    let half = ps as f32 / 2.0 - 0.5;
    let first_iters = params.patch_iterations.div_ceil(2);
    let second_iters = params.patch_iterations - first_iters;
    let nx = xs.len();
    let rows: Vec<Vec<(f32, f32)>> = ys
        .par_iter()
        .map(|&py| {
            let mut d = vec![0.0f32; ps * ps];
            let tpl = TemplateRow::new(a, &xs, py, ps);
            let mut out = Vec::with_capacity(nx);
            let mut anchors = Vec::with_capacity(nx);
            for (c, &px) in xs.iter().enumerate() {
                let start = init.sample(px as f32 + half, py as f32 + half);
                let left = out.last().copied();
                let (f, anchor) =
                    tpl.get(c)
                        .search(b, (px, py), ps, start, start, left, first_iters, &mut d);
                out.push(f);
                anchors.push(anchor);
            }
            if second_iters > 0 {
                for (c, &px) in xs.iter().enumerate().rev() {
                    let right = out.get(c + 1).copied();
                    out[c] = tpl
                        .get(c)
                        .search(
                            b,
                            (px, py),
                            ps,
                            out[c],
                            anchors[c],
                            right,
                            second_iters,
                            &mut d,
                        )
                        .0;
                }
            }
            out
        })
        .collect();
    densify(a, b, &xs, &ys, ps, &rows)
}

/// Dense flow: every pixel averages the flows of the patches covering it, each weighted by
/// 1 / max(1, |photometric error of that flow at the pixel|).
fn densify(
    a: &Level,
    b: &Level,
    xs: &[usize],
    ys: &[usize],
    ps: usize,
    patches: &[Vec<(f32, f32)>],
) -> FlowField {
    let (w, h) = (a.img.width(), a.img.height());
    let cx = coverage(w, xs, ps);
    let cy = coverage(h, ys, ps);
    let mut u = vec![0.0f32; w * h];
    let mut v = vec![0.0f32; w * h];
    let bd = b.img.data();
    // Each patch's displacement split into whole pixels and bilinear fractions, once.
    let split: Vec<Vec<Shift>> = patches
        .iter()
        .map(|row| row.iter().map(|&(pu, pv)| Shift::new(pu, pv)).collect())
        .collect();
    u.par_chunks_mut(w)
        .zip(v.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (ru, rv))| {
            let a_row = a.img.row(y);
            let (j0, j1) = cy[y];
            for x in 0..w {
                let (i0, i1) = cx[x];
                let (mut su, mut sv, mut sw) = (0.0f32, 0.0f32, 0.0f32);
                for (row, srow) in patches[j0..=j1].iter().zip(&split[j0..=j1]) {
                    for (&(pu, pv), sh) in row[i0..=i1].iter().zip(&srow[i0..=i1]) {
                        let s = match sh.sample(bd, w, h, x, y) {
                            Some(s) => s,
                            None => bilinear(bd, w, h, x as f32 + pu, y as f32 + pv),
                        };
                        let wt = 1.0 / (s - a_row[x]).abs().max(1.0);
                        su += wt * pu;
                        sv += wt * pv;
                        sw += wt;
                    }
                }
                ru[x] = su / sw;
                rv[x] = sv / sw;
            }
        });
    FlowField::from_planes(w, h, u, v).expect("sizes")
}

/// A displacement as whole pixels plus bilinear fractions, to sample many integer positions
/// displaced by it without converting each.
struct Shift {
    ox: isize,
    oy: isize,
    fx: f32,
    fy: f32,
}

impl Shift {
    fn new(u: f32, v: f32) -> Self {
        let (fu, fv) = (u.floor(), v.floor());
        // Far-off (or non-finite) shifts take the clamped path of `sample`.
        let ok = fu.abs() < 1e6 && fv.abs() < 1e6;
        Shift {
            ox: if ok { fu as isize } else { isize::MIN / 2 },
            oy: if ok { fv as isize } else { isize::MIN / 2 },
            fx: u - fu,
            fy: v - fv,
        }
    }

    /// `data` bilinearly sampled at (x, y) + the shift, or `None` when the 2x2 neighbourhood
    /// is not inside the plane (the caller then clamps).
    #[inline]
    fn sample(&self, data: &[f32], w: usize, h: usize, x: usize, y: usize) -> Option<f32> {
        let sx = x as isize + self.ox;
        let sy = y as isize + self.oy;
        if sx < 0 || sy < 0 || sx + 1 >= w as isize || sy + 1 >= h as isize {
            return None;
        }
        let i = sy as usize * w + sx as usize;
        let (a, b) = (data[i], data[i + 1]);
        let (c, d) = (data[i + w], data[i + w + 1]);
        let top = a + (b - a) * self.fx;
        let bot = c + (d - c) * self.fx;
        Some(top + (bot - top) * self.fy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_every_pixel() {
        for (n, ps, s) in [(20, 8, 3), (8, 8, 4), (5, 8, 2), (33, 8, 4)] {
            let g = grid(n, ps.min(n), s);
            let c = coverage(n, &g, ps.min(n));
            for (p, &(lo, hi)) in c.iter().enumerate() {
                for &start in &g[lo..=hi] {
                    assert!(
                        start <= p && p < start + ps.min(n),
                        "n={n} p={p} start={start}"
                    );
                }
            }
        }
    }
}
