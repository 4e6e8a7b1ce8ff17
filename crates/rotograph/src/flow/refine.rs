//! Variational refinement of a dense flow on one level: minimises, for an increment (du, dv),
//!
//! E = Σ δ Ψ(β₀ (I_t + I_x du + I_y dv)²) + γ Ψ(β_x (I_xt + …)² + β_y (I_yt + …)²)
//!     + α Ψ(|∇(u + du)|² + |∇(v + dv)|²),
//!
//! with Ψ(s²) = √(s² + ε²), constancy terms normalised by the local gradient (β = 1 / (|∇|² + ζ²)),
//! solved by lagged-nonlinearity fixed-point iterations with red-black SOR inside (as in Brox et
//! al., ECCV 2004, and the refinement DIS borrows from EpicFlow).

use super::{bilinear, gradients, FlowField, FlowParams, Level};
use crate::imageops::Plane;
use rayon::prelude::*;

const EPS2: f32 = 1e-6;
const ZETA2: f32 = 0.01;
const OMEGA: f32 = 1.6;

/// Linearised data term of one pixel: A = [a11 a12; a12 a22] and b with its unit weights.
#[derive(Clone, Copy, Default)]
struct Px {
    ix: f32,
    iy: f32,
    it: f32,
    ixx: f32,
    ixy: f32,
    iyy: f32,
    ixt: f32,
    iyt: f32,
}

fn psi_prime(s2: f32) -> f32 {
    0.5 / (s2 + EPS2).sqrt()
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
    if w < 2 || h < 2 {
        return;
    }
    // Warp the second image and its derivatives by the current flow.
    let mut warped = Plane::scratch(w, h);
    {
        let (fu, fv) = (&flow.u, &flow.v);
        let bd = b.img.data();
        warped
            .data_mut()
            .par_chunks_mut(w)
            .enumerate()
            .for_each(|(y, row)| {
                for (x, o) in row.iter_mut().enumerate() {
                    let i = y * w + x;
                    *o = bilinear(bd, w, h, x as f32 + fu[i], y as f32 + fv[i]);
                }
            });
    }
    let (wx, wy) = gradients(&warped);
    let (wxx, wxy) = gradients(&wx);
    let (_, wyy) = gradients(&wy);
    let (axx, axy) = gradients(&a.gx);
    let (_, ayy) = gradients(&a.gy);
    let n = w * h;
    let mut px = vec![Px::default(); n];
    px.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, p) in row.iter_mut().enumerate() {
            let i = y * w + x;
            let (wxi, wyi) = (wx.data()[i], wy.data()[i]);
            let (axi, ayi) = (a.gx.data()[i], a.gy.data()[i]);
            *p = Px {
                ix: 0.5 * (wxi + axi),
                iy: 0.5 * (wyi + ayi),
                it: warped.data()[i] - a.img.data()[i],
                ixx: 0.5 * (wxx.data()[i] + axx.data()[i]),
                ixy: 0.5 * (wxy.data()[i] + axy.data()[i]),
                iyy: 0.5 * (wyy.data()[i] + ayy.data()[i]),
                ixt: wxi - axi,
                iyt: wyi - ayi,
            };
            // Pixels sampled from outside the second image carry no data.
            let sx = x as f32 + flow.u[i];
            let sy = y as f32 + flow.v[i];
            if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
                *p = Px::default();
            }
        }
    });

    let mut du = vec![0.0f32; n];
    let mut dv = vec![0.0f32; n];
    let mut next_u = vec![0.0f32; n];
    let mut next_v = vec![0.0f32; n];
    // Per pixel, from the lagged weights: the smoothness weights of the right and down edges,
    // then the SOR system (see `Sys`).
    let mut smooth = vec![0.0f32; n];
    let mut sys = vec![Sys::default(); n];
    for _ in 0..iterations {
        smooth.par_chunks_mut(w).enumerate().for_each(|(y, srow)| {
            for (x, s) in srow.iter_mut().enumerate() {
                let i = y * w + x;
                // Forward differences of the total flow (zero past the border).
                let r = if x + 1 < w { i + 1 } else { i };
                let d = if y + 1 < h { i + w } else { i };
                let uu = flow.u[i] + du[i];
                let vv = flow.v[i] + dv[i];
                let ux = flow.u[r] + du[r] - uu;
                let uy = flow.u[d] + du[d] - uu;
                let vx = flow.v[r] + dv[r] - vv;
                let vy = flow.v[d] + dv[d] - vv;
                *s = params.alpha * psi_prime(ux * ux + uy * uy + vx * vx + vy * vy);
            }
        });
        sys.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            for (x, out) in row.iter_mut().enumerate() {
                let i = y * w + x;
                let p = px[i];
                let (d1, d2) = (du[i], dv[i]);
                let b0 = 1.0 / (p.ix * p.ix + p.iy * p.iy + ZETA2);
                let bc = p.it + p.ix * d1 + p.iy * d2;
                let wd = params.delta * b0 * psi_prime(b0 * bc * bc);
                let bx = 1.0 / (p.ixx * p.ixx + p.ixy * p.ixy + ZETA2);
                let by = 1.0 / (p.ixy * p.ixy + p.iyy * p.iyy + ZETA2);
                let gx = p.ixt + p.ixx * d1 + p.ixy * d2;
                let gy = p.iyt + p.ixy * d1 + p.iyy * d2;
                let wg = params.gamma * psi_prime(bx * gx * gx + by * gy * gy);
                let (gxw, gyw) = (wg * bx, wg * by);
                let a11 = wd * p.ix * p.ix + gxw * p.ixx * p.ixx + gyw * p.ixy * p.ixy;
                let a12 = wd * p.ix * p.iy + gxw * p.ixx * p.ixy + gyw * p.ixy * p.iyy;
                let a22 = wd * p.iy * p.iy + gxw * p.ixy * p.ixy + gyw * p.iyy * p.iyy;
                let b1 = wd * p.ix * p.it + gxw * p.ixx * p.ixt + gyw * p.ixy * p.iyt;
                let b2 = wd * p.iy * p.it + gxw * p.ixy * p.ixt + gyw * p.iyy * p.iyt;
                // Edges: right and down carry this pixel's weight, left and up the
                // neighbour's (the weight belongs to the forward difference).
                let wr = if x + 1 < w { smooth[i] } else { 0.0 };
                let wl = if x > 0 { smooth[i - 1] } else { 0.0 };
                let wdn = if y + 1 < h { smooth[i] } else { 0.0 };
                let wup = if y > 0 { smooth[i - w] } else { 0.0 };
                let nb = Nb::at(x, y, w, h);
                let lap = |f: &[f32]| {
                    wl * f[nb.l] + wr * f[nb.r] + wup * f[nb.u] + wdn * f[nb.d]
                        - (wl + wr + wup + wdn) * f[i]
                };
                let sw = wl + wr + wup + wdn;
                let (d1, d2) = (a11 + sw, a22 + sw);
                *out = Sys {
                    w: [wl, wr, wup, wdn],
                    rhs: [lap(&flow.u) - b1, lap(&flow.v) - b2],
                    a12,
                    inv: [
                        if d1 > 1e-9 { 1.0 / d1 } else { 0.0 },
                        if d2 > 1e-9 { 1.0 / d2 } else { 0.0 },
                    ],
                };
            }
        });
        for _ in 0..params.sor_iterations {
            for colour in 0..2 {
                sor_half(w, h, colour, &sys, &du, &dv, &mut next_u, &mut next_v);
                std::mem::swap(&mut du, &mut next_u);
                std::mem::swap(&mut dv, &mut next_v);
            }
        }
    }
    flow.u
        .par_iter_mut()
        .zip(du.par_iter())
        .for_each(|(a, d)| *a += d);
    flow.v
        .par_iter_mut()
        .zip(dv.par_iter())
        .for_each(|(a, d)| *a += d);
}

/// The linear system of one pixel for SOR: (a11 + Σw) du + a12 dv = rhs_u + Σ w du_neighbour.
#[derive(Clone, Copy, Default)]
struct Sys {
    /// Edge weights: left, right, up, down (0 past the border).
    w: [f32; 4],
    /// Right-hand sides for du and dv (smoothness of the current flow minus the data term).
    rhs: [f32; 2],
    a12: f32,
    /// 1 / (a11 + Σw), 1 / (a22 + Σw).
    inv: [f32; 2],
}

/// Neighbour indices, clamped at the border (their weights are 0 there).
struct Nb {
    l: usize,
    r: usize,
    u: usize,
    d: usize,
}

impl Nb {
    #[inline]
    fn at(x: usize, y: usize, w: usize, h: usize) -> Nb {
        let i = y * w + x;
        Nb {
            l: if x > 0 { i - 1 } else { i },
            r: if x + 1 < w { i + 1 } else { i },
            u: if y > 0 { i - w } else { i },
            d: if y + 1 < h { i + w } else { i },
        }
    }
}

/// One red-black half sweep: pixels with (x + y) % 2 == `colour` are updated from their
/// neighbours (of the other colour) into `nu`/`nv`; the others are copied.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn sor_half(
    w: usize,
    h: usize,
    colour: usize,
    sys: &[Sys],
    du: &[f32],
    dv: &[f32],
    nu: &mut [f32],
    nv: &mut [f32],
) {
    nu.par_chunks_mut(w)
        .zip(nv.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (ru, rv))| {
            let base = y * w;
            ru.copy_from_slice(&du[base..base + w]);
            rv.copy_from_slice(&dv[base..base + w]);
            let update = |x: usize, nb: Nb, ru: &mut [f32], rv: &mut [f32]| {
                let i = base + x;
                let s = &sys[i];
                let su =
                    s.w[0] * du[nb.l] + s.w[1] * du[nb.r] + s.w[2] * du[nb.u] + s.w[3] * du[nb.d];
                let sv =
                    s.w[0] * dv[nb.l] + s.w[1] * dv[nb.r] + s.w[2] * dv[nb.u] + s.w[3] * dv[nb.d];
                let v = dv[i];
                let u = du[i] + OMEGA * ((s.rhs[0] + su - s.a12 * v) * s.inv[0] - du[i]);
                ru[x] = u;
                rv[x] = v + OMEGA * ((s.rhs[1] + sv - s.a12 * u) * s.inv[1] - v);
            };
            let first = (colour + y) % 2;
            if y == 0 || y + 1 == h || w < 3 {
                for x in (first..w).step_by(2) {
                    update(x, Nb::at(x, y, w, h), ru, rv);
                }
                return;
            }
            // Interior row: neighbours need no clamping except at the two ends.
            let mut x = first;
            if x == 0 {
                update(0, Nb::at(0, y, w, h), ru, rv);
                x = 2;
            }
            while x + 1 < w {
                let i = base + x;
                update(
                    x,
                    Nb {
                        l: i - 1,
                        r: i + 1,
                        u: i - w,
                        d: i + w,
                    },
                    ru,
                    rv,
                );
                x += 2;
            }
            if x == w - 1 {
                update(x, Nb::at(x, y, w, h), ru, rv);
            }
        });
}
