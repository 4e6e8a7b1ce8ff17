//! Variational refinement of a dense flow on one level: minimises, for an increment (du, dv),
//!
//! E = Σ δ Ψ(β₀ (I_t + I_x du + I_y dv)²) + γ Ψ(β_x (I_xt + …)² + β_y (I_yt + …)²)
//!     + α Ψ(|∇(u + du)|² + |∇(v + dv)|²),
//!
//! with Ψ(s²) = √(s² + ε²), constancy terms normalised by the local gradient (β = 1 / (|∇|² + ζ²)),
//! solved by lagged-nonlinearity fixed-point iterations with red-black SOR inside (as in Brox et
//! al., ECCV 2004, and the refinement DIS borrows from EpicFlow).
//!
//! Layout, for speed: the linearised data term is computed once per call (it does not change
//! between fixed-point iterations), and the SOR unknowns and per-pixel systems are stored split
//! by colour ("red" pixels with (x + y) even, "black" ones odd), each colour packed into rows of
//! half width with a zero border of one element and one row on every side. A half sweep then
//! updates one colour in place from the other with contiguous, branch-free, vectorisable loops,
//! rows in parallel; the result does not depend on the thread count.

use super::{bilinear, gradients, FlowField, FlowParams, Level};
use crate::imageops::Plane;
use rayon::prelude::*;

const EPS2: f32 = 1e-6;
const ZETA2: f32 = 0.01;
const OMEGA: f32 = 1.6;

/// About this many values per parallel task: smaller tasks cost more in scheduling than they
/// gain on two cores.
const TASK: usize = 16 * 1024;

fn psi_prime(s2: f32) -> f32 {
    0.5 / (s2 + EPS2).sqrt()
}

/// Rows per parallel task for rows of `stride` values.
fn band_rows(stride: usize) -> usize {
    (TASK / stride.max(1)).max(1)
}

/// The packed layout of one colour: `stride` values a row (one pad, half a row, one pad) and
/// `h + 2` rows (one pad row above and below).
#[derive(Clone, Copy)]
struct Packed {
    w: usize,
    h: usize,
    stride: usize,
}

impl Packed {
    fn new(w: usize, h: usize) -> Self {
        Packed {
            w,
            h,
            stride: w.div_ceil(2) + 2,
        }
    }

    fn len(&self) -> usize {
        self.stride * (self.h + 2)
    }

    /// Offset of the first pixel of `colour` in row y, and how many there are.
    fn row_span(&self, colour: usize, y: usize) -> (usize, usize) {
        let o = (colour + y) % 2;
        (o, (self.w - o).div_ceil(2))
    }
}

/// Per-pixel constants of the linearised data term (see the module docs), row-major planes.
struct Data {
    ix: Plane,
    iy: Plane,
    it: Plane,
    ixx: Plane,
    ixy: Plane,
    iyy: Plane,
    ixt: Plane,
    iyt: Plane,
    /// β₀, β_x, β_y: the gradient normalisations.
    b0: Plane,
    bx: Plane,
    by: Plane,
}

impl Data {
    /// The data term of `a` against `b` warped by `flow`: derivatives of the average of the two
    /// images (the average of their derivatives) and temporal differences.
    fn new(a: &Level, b: &Level, flow: &FlowField) -> Self {
        let (w, h) = (a.img.width(), a.img.height());
        let (fu, fv) = (flow.u(), flow.v());
        let bd = b.img.data();
        // `avg` first holds the warped second image; `it` its difference to the first.
        let mut avg = Plane::scratch(w, h);
        let mut it = Plane::scratch(w, h);
        avg.data_mut()
            .par_chunks_mut(w * band_rows(w))
            .zip(it.data_mut().par_chunks_mut(w * band_rows(w)))
            .enumerate()
            .for_each(|(band, (ra, rt))| {
                let y0 = band * band_rows(w);
                for (j, (ra, rt)) in ra.chunks_mut(w).zip(rt.chunks_mut(w)).enumerate() {
                    let y = y0 + j;
                    let arow = a.img.row(y);
                    for x in 0..w {
                        let i = y * w + x;
                        let sx = x as f32 + fu[i];
                        let sy = y as f32 + fv[i];
                        let inside =
                            sx >= 0.0 && sy >= 0.0 && sx <= (w - 1) as f32 && sy <= (h - 1) as f32;
                        let s = if inside && sx < (w - 1) as f32 && sy < (h - 1) as f32 {
                            // Inside with a full 2x2 neighbourhood: no clamping needed.
                            let (x0, y0) = (sx as usize, sy as usize);
                            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                            let k = y0 * w + x0;
                            let top = bd[k] + (bd[k + 1] - bd[k]) * fx;
                            let bot = bd[k + w] + (bd[k + w + 1] - bd[k + w]) * fx;
                            top + (bot - top) * fy
                        } else {
                            bilinear(bd, w, h, sx, sy)
                        };
                        // Pixels sampled from outside the second image carry no data (NaN
                        // marks them for the last pass).
                        rt[x] = if inside { s - arow[x] } else { f32::NAN };
                        ra[x] = 0.5 * (s + arow[x]);
                    }
                }
            });
        let (ix, iy) = gradients(&avg);
        let (ixx, ixy) = gradients(&ix);
        let (_, iyy) = gradients(&iy);
        let mut d = Data {
            ixt: Plane::scratch(w, h),
            iyt: Plane::scratch(w, h),
            b0: Plane::scratch(w, h),
            bx: Plane::scratch(w, h),
            by: Plane::scratch(w, h),
            ix,
            iy,
            it,
            ixx,
            ixy,
            iyy,
        };
        let n = w * h;
        let step = w * band_rows(w);
        {
            let Data {
                ix,
                iy,
                it,
                ixx,
                ixy,
                iyy,
                ixt,
                iyt,
                b0,
                bx,
                by,
            } = &mut d;
            let mut outs: Vec<[&mut [f32]; 9]> = Vec::new();
            for ((((((((a0, a1), a2), a3), a4), a5), a6), a7), a8) in ix
                .data_mut()
                .chunks_mut(step)
                .zip(iy.data_mut().chunks_mut(step))
                .zip(it.data_mut().chunks_mut(step))
                .zip(ixx.data_mut().chunks_mut(step))
                .zip(ixy.data_mut().chunks_mut(step))
                .zip(iyy.data_mut().chunks_mut(step))
                .zip(ixt.data_mut().chunks_mut(step))
                .zip(iyt.data_mut().chunks_mut(step))
                .zip(b0.data_mut().chunks_mut(step))
            {
                outs.push([a0, a1, a2, a3, a4, a5, a6, a7, a8]);
            }
            let rest: Vec<(&mut [f32], &mut [f32])> = bx
                .data_mut()
                .chunks_mut(step)
                .zip(by.data_mut().chunks_mut(step))
                .collect();
            let (agx, agy) = (a.gx.data(), a.gy.data());
            outs.into_par_iter()
                .zip(rest)
                .enumerate()
                .for_each(|(band, (o, (bx, by)))| {
                    let [ix, iy, it, ixx, ixy, iyy, ixt, iyt, b0] = o;
                    let base = band * step;
                    for k in 0..ix.len().min(n - base) {
                        let i = base + k;
                        if it[k].is_nan() {
                            for p in [
                                &mut ix[k],
                                &mut iy[k],
                                &mut it[k],
                                &mut ixx[k],
                                &mut ixy[k],
                                &mut iyy[k],
                                &mut ixt[k],
                                &mut iyt[k],
                                &mut b0[k],
                                &mut bx[k],
                                &mut by[k],
                            ] {
                                *p = 0.0;
                            }
                            continue;
                        }
                        // The warped image's derivative is 2 * average - first image's.
                        ixt[k] = 2.0 * (ix[k] - agx[i]);
                        iyt[k] = 2.0 * (iy[k] - agy[i]);
                        b0[k] = 1.0 / (ix[k] * ix[k] + iy[k] * iy[k] + ZETA2);
                        bx[k] = 1.0 / (ixx[k] * ixx[k] + ixy[k] * ixy[k] + ZETA2);
                        by[k] = 1.0 / (ixy[k] * ixy[k] + iyy[k] * iyy[k] + ZETA2);
                    }
                });
        }
        d
    }
}

/// Number of planes of one colour's SOR system.
const SYS: usize = 9;
/// Plane indices of the SOR system: edge weights left, right, up, down; coupling a12; the
/// inverse diagonals for du and dv; the right-hand sides for du and dv. The update of a pixel:
/// du = (rhs_u + Σ w du_neighbour - a12 dv) / (a11 + Σ w), and likewise dv.
const WL: usize = 0;
const WR: usize = 1;
const WU: usize = 2;
const WD: usize = 3;
const A12: usize = 4;
const IU: usize = 5;
const IV: usize = 6;
const RU: usize = 7;
const RV: usize = 8;

/// Splits `buf` (`planes` planes of `len` values) into bands of `step` values: for each band,
/// its slice of every plane.
fn split_planes(buf: &mut [f32], planes: usize, len: usize, step: usize) -> Vec<Vec<&mut [f32]>> {
    let nb = len.div_ceil(step);
    let mut out: Vec<Vec<&mut [f32]>> = (0..nb).map(|_| Vec::with_capacity(planes)).collect();
    for plane in buf.chunks_mut(len).take(planes) {
        for (band, chunk) in plane.chunks_mut(step).enumerate() {
            out[band].push(chunk);
        }
    }
    out
}

/// Refines `flow` (from `a` to `b`, one level) in place with `iterations` fixed-point steps.
pub(super) fn refine(
    a: &Level,
    b: &Level,
    flow: &mut FlowField,
    params: &FlowParams,
    iterations: usize,
) {
    let (w, h) = (a.img.width(), a.img.height());
    if w < 2 || h < 2 || iterations == 0 {
        return;
    }
    let data = Data::new(a, b, flow);
    let pk = Packed::new(w, h);
    let plen = pk.len();
    // Unknowns of each colour (packed, zero borders), and their unpacked copies.
    let mut du = [Plane::new(pk.stride, h + 2), Plane::new(pk.stride, h + 2)];
    let mut dv = [Plane::new(pk.stride, h + 2), Plane::new(pk.stride, h + 2)];
    let mut full_u = Plane::new(w, h);
    let mut full_v = Plane::new(w, h);
    let mut smooth = Plane::scratch(w, h);
    // The systems of both colours, SYS planes each; borders stay zero (no weight, no update).
    let mut sys = [Plane::new(plen * SYS, 1), Plane::new(plen * SYS, 1)];
    let step_full = w * band_rows(w);
    for it in 0..iterations {
        if it > 0 {
            unpack(&pk, &du, &dv, &mut full_u, &mut full_v);
        }
        // Smoothness weight of each pixel's right and down edges, from the lagged total flow.
        {
            let (u0, v0) = (flow.u(), flow.v());
            let (du, dv) = (full_u.data(), full_v.data());
            smooth
                .data_mut()
                .par_chunks_mut(step_full)
                .enumerate()
                .for_each(|(band, s)| {
                    for (j, srow) in s.chunks_mut(w).enumerate() {
                        let y = band * band_rows(w) + j;
                        // Forward differences; zero past the last row and column.
                        let yd = (y + 1).min(h - 1);
                        let row = |p, y| row_of(p, w, y);
                        let (u, ud, eu, eud) = (row(u0, y), row(u0, yd), row(du, y), row(du, yd));
                        let (v, vd, ev, evd) = (row(v0, y), row(v0, yd), row(dv, y), row(dv, yd));
                        for (x, s) in srow.iter_mut().enumerate() {
                            let xr = (x + 1).min(w - 1);
                            let uu = u[x] + eu[x];
                            let vv = v[x] + ev[x];
                            let ux = u[xr] + eu[xr] - uu;
                            let uy = ud[x] + eud[x] - uu;
                            let vx = v[xr] + ev[xr] - vv;
                            let vy = vd[x] + evd[x] - vv;
                            *s = params.alpha * psi_prime(ux * ux + uy * uy + vx * vx + vy * vy);
                        }
                    }
                });
        }
        build_systems(
            &pk, &data, flow, &full_u, &full_v, &smooth, params, &mut sys,
        );
        for _ in 0..params.sor_iterations {
            for colour in 0..2 {
                half_sweep(&pk, colour, &sys, &mut du, &mut dv);
            }
        }
    }
    unpack(&pk, &du, &dv, &mut full_u, &mut full_v);
    let step = w * band_rows(w);
    flow.u_mut()
        .par_chunks_mut(step)
        .zip(full_u.data().par_chunks(step))
        .for_each(|(a, d)| a.iter_mut().zip(d).for_each(|(a, d)| *a += d));
    flow.v_mut()
        .par_chunks_mut(step)
        .zip(full_v.data().par_chunks(step))
        .for_each(|(a, d)| a.iter_mut().zip(d).for_each(|(a, d)| *a += d));
}

/// One red-black half sweep of `colour` over the packed unknowns of both colours.
fn half_sweep(
    pk: &Packed,
    colour: usize,
    sys: &[Plane; 2],
    du: &mut [Plane; 2],
    dv: &mut [Plane; 2],
) {
    let (mine_u, other_u) = split_colour(du, colour);
    let (mine_v, other_v) = split_colour(dv, colour);
    sweep(
        pk,
        colour,
        sys[colour].data(),
        mine_u.data_mut(),
        mine_v.data_mut(),
        other_u.data(),
        other_v.data(),
    );
}

/// Row y of a row-major plane of width w.
fn row_of(p: &[f32], w: usize, y: usize) -> &[f32] {
    &p[y * w..(y + 1) * w]
}

/// The colour being updated (mutable) and the other one.
fn split_colour(pair: &mut [Plane; 2], colour: usize) -> (&mut Plane, &Plane) {
    let [red, black] = pair;
    if colour == 0 {
        (red, black)
    } else {
        (black, red)
    }
}

/// Copies the packed unknowns of both colours into row-major planes.
fn unpack(pk: &Packed, du: &[Plane; 2], dv: &[Plane; 2], fu: &mut Plane, fv: &mut Plane) {
    let w = pk.w;
    fu.data_mut()
        .par_chunks_mut(w)
        .zip(fv.data_mut().par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (ru, rv))| {
            let p = (y + 1) * pk.stride + 1;
            for c in 0..2 {
                let (o, n) = pk.row_span(c, y);
                let (su, sv) = (&du[c].data()[p..p + n], &dv[c].data()[p..p + n]);
                for k in 0..n {
                    ru[2 * k + o] = su[k];
                    rv[2 * k + o] = sv[k];
                }
            }
        });
}

/// Fills both colours' SOR systems for the current increment `(fu, fv)` and edge weights.
#[allow(clippy::too_many_arguments)]
fn build_systems(
    pk: &Packed,
    d: &Data,
    flow: &FlowField,
    fu: &Plane,
    fv: &Plane,
    smooth: &Plane,
    params: &FlowParams,
    sys: &mut [Plane; 2],
) {
    let (w, h) = (pk.w, pk.h);
    let plen = pk.len();
    let rows = band_rows(pk.stride * SYS);
    let step = rows * pk.stride;
    let [red, black] = sys;
    let red = split_planes(red.data_mut(), SYS, plen, step);
    let black = split_planes(black.data_mut(), SYS, plen, step);
    let (u0, v0, s) = (flow.u(), flow.v(), smooth.data());
    let (du, dv) = (fu.data(), fv.data());
    let zeros = vec![0.0f32; w];
    red.into_par_iter()
        .zip(black)
        .enumerate()
        .for_each(|(band, (mut red, mut black))| {
            // One image row of the system, unpacked; then split by colour.
            let mut tmp = vec![0.0f32; SYS * w];
            let mut pad_u = vec![0.0f32; w + 2];
            let mut pad_v = vec![0.0f32; w + 2];
            // Packed rows r of this band; image row y = r - 1 (pad rows are skipped).
            for r in band * rows..((band + 1) * rows).min(h + 2) {
                if r == 0 || r == h + 1 {
                    continue;
                }
                let y = r - 1;
                let row = |p, y| row_of(p, w, y);
                let (yu, yd) = (y.saturating_sub(1), (y + 1).min(h - 1));
                // Edge weights: right and down edges carry this pixel's weight, left and up the
                // neighbour's (the weight belongs to the forward difference); none past the
                // border.
                let srow = row(s, y);
                let up_w = if y > 0 { row(s, yu) } else { &zeros };
                let dn_w = if y + 1 < h { srow } else { &zeros };
                // The lagged flow's rows, the current one padded by repeating its ends (their
                // weight is zero) so that left and right neighbours are plain shifted slices.
                pad_u[1..=w].copy_from_slice(row(u0, y));
                pad_v[1..=w].copy_from_slice(row(v0, y));
                (pad_u[0], pad_u[w + 1]) = (pad_u[1], pad_u[w]);
                (pad_v[0], pad_v[w + 1]) = (pad_v[1], pad_v[w]);
                let (uu, ud, vu, vd) = (row(u0, yu), row(u0, yd), row(v0, yu), row(v0, yd));
                let (d1s, d2s) = (row(du, y), row(dv, y));
                let [ix, iy, it, ixx, ixy, iyy, ixt, iyt, b0, bx, by] = [
                    &d.ix, &d.iy, &d.it, &d.ixx, &d.ixy, &d.iyy, &d.ixt, &d.iyt, &d.b0, &d.bx,
                    &d.by,
                ]
                .map(|p| row(p.data(), y));
                // In the order of the plane indices WL..RV.
                let (twl, rest) = tmp.split_at_mut(w);
                let (twr, rest) = rest.split_at_mut(w);
                let (twu, rest) = rest.split_at_mut(w);
                let (twd, rest) = rest.split_at_mut(w);
                let (ta12, rest) = rest.split_at_mut(w);
                let (tiu, rest) = rest.split_at_mut(w);
                let (tiv, rest) = rest.split_at_mut(w);
                let (tru, trv) = rest.split_at_mut(w);
                twl[0] = 0.0;
                twl[1..].copy_from_slice(&srow[..w - 1]);
                twr.copy_from_slice(srow);
                twr[w - 1] = 0.0;
                twu.copy_from_slice(up_w);
                twd.copy_from_slice(dn_w);
                // Every slice exactly w long, so the loop below has no bounds checks and
                // vectorises.
                let (ul, uc, ur) = (&pad_u[..w], &pad_u[1..=w], &pad_u[2..w + 2]);
                let (vl, vc, vr) = (&pad_v[..w], &pad_v[1..=w], &pad_v[2..w + 2]);
                let [uu, ud, vu, vd, d1s, d2s] = [uu, ud, vu, vd, d1s, d2s].map(|p| &p[..w]);
                let [ix, iy, it, ixx, ixy, iyy, ixt, iyt, b0, bx, by] =
                    [ix, iy, it, ixx, ixy, iyy, ixt, iyt, b0, bx, by].map(|p| &p[..w]);
                let (twl, twr, twu, twd) = (&twl[..w], &twr[..w], &twu[..w], &twd[..w]);
                let (ta12, tiu, tiv) = (&mut ta12[..w], &mut tiu[..w], &mut tiv[..w]);
                let (tru, trv) = (&mut tru[..w], &mut trv[..w]);
                for x in 0..w {
                    let (d1, d2) = (d1s[x], d2s[x]);
                    let bc = it[x] + ix[x] * d1 + iy[x] * d2;
                    let wdat = params.delta * b0[x] * psi_prime(b0[x] * bc * bc);
                    let gx = ixt[x] + ixx[x] * d1 + ixy[x] * d2;
                    let gy = iyt[x] + ixy[x] * d1 + iyy[x] * d2;
                    let wg = params.gamma * psi_prime(bx[x] * gx * gx + by[x] * gy * gy);
                    let (gxw, gyw) = (wg * bx[x], wg * by[x]);
                    let (ix, iy, ixx, ixy, iyy) = (ix[x], iy[x], ixx[x], ixy[x], iyy[x]);
                    let a11 = wdat * ix * ix + gxw * ixx * ixx + gyw * ixy * ixy;
                    let a22 = wdat * iy * iy + gxw * ixy * ixy + gyw * iyy * iyy;
                    ta12[x] = wdat * ix * iy + gxw * ixx * ixy + gyw * ixy * iyy;
                    let b1 = wdat * ix * it[x] + gxw * ixx * ixt[x] + gyw * ixy * iyt[x];
                    let b2 = wdat * iy * it[x] + gxw * ixy * ixt[x] + gyw * iyy * iyt[x];
                    let (wl, wr, wu, wd) = (twl[x], twr[x], twu[x], twd[x]);
                    let sw = wl + wr + wu + wd;
                    let lap_u = wl * ul[x] + wr * ur[x] + wu * uu[x] + wd * ud[x] - sw * uc[x];
                    let lap_v = wl * vl[x] + wr * vr[x] + wu * vu[x] + wd * vd[x] - sw * vc[x];
                    let (e1, e2) = (a11 + sw, a22 + sw);
                    tiu[x] = if e1 > 1e-9 { 1.0 / e1 } else { 0.0 };
                    tiv[x] = if e2 > 1e-9 { 1.0 / e2 } else { 0.0 };
                    tru[x] = lap_u - b1;
                    trv[x] = lap_v - b2;
                }
                // Split the row by colour into the packed systems.
                let rb = (r - band * rows) * pk.stride + 1;
                for (c, out) in [&mut red, &mut black].into_iter().enumerate() {
                    let (o, n) = pk.row_span(c, y);
                    for (plane, src) in out.iter_mut().zip(tmp.chunks(w)) {
                        let dst = &mut plane[rb..rb + n];
                        for (k, v) in dst.iter_mut().enumerate() {
                            *v = src[2 * k + o];
                        }
                    }
                }
            }
        });
}

/// One red-black half sweep: the pixels of `colour` (unknowns `mu`, `mv`, packed) are updated
/// in place from their neighbours of the other colour (`ou`, `ov`).
fn sweep(
    pk: &Packed,
    colour: usize,
    sys: &[f32],
    mu: &mut [f32],
    mv: &mut [f32],
    ou: &[f32],
    ov: &[f32],
) {
    let plen = pk.len();
    let st = pk.stride;
    let rows = band_rows(st * (SYS + 10));
    let plane = |j: usize| &sys[j * plen..(j + 1) * plen];
    let (wl, wr, wu, wd) = (plane(WL), plane(WR), plane(WU), plane(WD));
    let (a12, iu, iv, ru, rv) = (plane(A12), plane(IU), plane(IV), plane(RU), plane(RV));
    mu.par_chunks_mut(rows * st)
        .zip(mv.par_chunks_mut(rows * st))
        .enumerate()
        .for_each(|(band, (bu, bv))| {
            for (j, (rowu, rowv)) in bu.chunks_mut(st).zip(bv.chunks_mut(st)).enumerate() {
                let r = band * rows + j;
                if r == 0 || r == pk.h + 1 {
                    continue;
                }
                let (o, n) = pk.row_span(colour, r - 1);
                let p = r * st + 1;
                // Left neighbour of packed k: other colour's packed k - 1 + o; right: k + o;
                // up and down: k (indices before the +1 border shift).
                let (ul, ur) = (&ou[p - 1 + o..p - 1 + o + n], &ou[p + o..p + o + n]);
                let (uu, ud) = (&ou[p - st..p - st + n], &ou[p + st..p + st + n]);
                let (vl, vr) = (&ov[p - 1 + o..p - 1 + o + n], &ov[p + o..p + o + n]);
                let (vu, vd) = (&ov[p - st..p - st + n], &ov[p + st..p + st + n]);
                let (cwl, cwr) = (&wl[p..p + n], &wr[p..p + n]);
                let (cwu, cwd) = (&wu[p..p + n], &wd[p..p + n]);
                let (ca, ciu, civ) = (&a12[p..p + n], &iu[p..p + n], &iv[p..p + n]);
                let (cru, crv) = (&ru[p..p + n], &rv[p..p + n]);
                let (mu, mv) = (&mut rowu[1..1 + n], &mut rowv[1..1 + n]);
                for k in 0..n {
                    let su = cwl[k] * ul[k] + cwr[k] * ur[k] + cwu[k] * uu[k] + cwd[k] * ud[k];
                    let sv = cwl[k] * vl[k] + cwr[k] * vr[k] + cwu[k] * vu[k] + cwd[k] * vd[k];
                    let (u0, v0) = (mu[k], mv[k]);
                    let u = u0 + OMEGA * ((cru[k] + su - ca[k] * v0) * ciu[k] - u0);
                    mu[k] = u;
                    mv[k] = v0 + OMEGA * ((crv[k] + sv - ca[k] * u) * civ[k] - v0);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic pseudo-random sequence in [0, 1).
    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The packed sweeps agree with a plain row-major red-black SOR on grids of odd and even
    /// sizes (the colour layout's neighbour indexing and borders).
    #[test]
    fn packed_sweeps_match_plain_red_black_sor() {
        for (w, h) in [(7, 5), (8, 6), (2, 3), (9, 2)] {
            let mut seed = (w * 31 + h) as u64;
            let n = w * h;
            let mut planes: Vec<Vec<f32>> = (0..SYS)
                .map(|_| (0..n).map(|_| lcg(&mut seed)).collect())
                .collect();
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    if x == 0 {
                        planes[WL][i] = 0.0;
                    }
                    if x + 1 == w {
                        planes[WR][i] = 0.0;
                    }
                    if y == 0 {
                        planes[WU][i] = 0.0;
                    }
                    if y + 1 == h {
                        planes[WD][i] = 0.0;
                    }
                    planes[A12][i] -= 0.5;
                }
            }
            let mut ref_u: Vec<f32> = (0..n).map(|_| lcg(&mut seed) - 0.5).collect();
            let mut ref_v: Vec<f32> = (0..n).map(|_| lcg(&mut seed) - 0.5).collect();
            // Pack the systems and the starting unknowns.
            let pk = Packed::new(w, h);
            let mut sys = [Plane::new(pk.len() * SYS, 1), Plane::new(pk.len() * SYS, 1)];
            let mut du = [Plane::new(pk.stride, h + 2), Plane::new(pk.stride, h + 2)];
            let mut dv = [Plane::new(pk.stride, h + 2), Plane::new(pk.stride, h + 2)];
            for y in 0..h {
                for x in 0..w {
                    let (i, c) = (y * w + x, (x + y) % 2);
                    let k = (y + 1) * pk.stride + 1 + x / 2;
                    for (j, p) in planes.iter().enumerate() {
                        sys[c].data_mut()[j * pk.len() + k] = p[i];
                    }
                    du[c].data_mut()[k] = ref_u[i];
                    dv[c].data_mut()[k] = ref_v[i];
                }
            }
            for _ in 0..3 {
                for colour in 0..2 {
                    half_sweep(&pk, colour, &sys, &mut du, &mut dv);
                    // The plain version, pixel by pixel.
                    for y in 0..h {
                        for x in (0..w).filter(|x| (x + y) % 2 == colour) {
                            let i = y * w + x;
                            let nb = |f: &[f32]| {
                                let at = |ok: bool, j: usize| if ok { f[j] } else { 0.0 };
                                planes[WL][i] * at(x > 0, i.wrapping_sub(1))
                                    + planes[WR][i] * at(x + 1 < w, i + 1)
                                    + planes[WU][i] * at(y > 0, i.wrapping_sub(w))
                                    + planes[WD][i] * at(y + 1 < h, i + w)
                            };
                            let (su, sv) = (nb(&ref_u), nb(&ref_v));
                            let (u0, v0) = (ref_u[i], ref_v[i]);
                            let u = u0
                                + OMEGA
                                    * ((planes[RU][i] + su - planes[A12][i] * v0) * planes[IU][i]
                                        - u0);
                            ref_u[i] = u;
                            ref_v[i] = v0
                                + OMEGA
                                    * ((planes[RV][i] + sv - planes[A12][i] * u) * planes[IV][i]
                                        - v0);
                        }
                    }
                }
            }
            let mut fu = Plane::new(w, h);
            let mut fv = Plane::new(w, h);
            unpack(&pk, &du, &dv, &mut fu, &mut fv);
            for i in 0..n {
                assert!(
                    (fu.data()[i] - ref_u[i]).abs() < 1e-4
                        && (fv.data()[i] - ref_v[i]).abs() < 1e-4,
                    "{w}x{h} pixel {i}: ({}, {}) vs ({}, {})",
                    fu.data()[i],
                    fv.data()[i],
                    ref_u[i],
                    ref_v[i]
                );
            }
        }
    }
}
