//! The screened Poisson solve shared by [`crate::temporal::deflicker`] and the gradient-domain
//! blend of keyframe propagation: `(a + e − Δ) D = b` per RGB channel on a pixel grid with
//! Neumann borders (Δ the 4-neighbour graph Laplacian), by a cascadic multigrid. The system is
//! restricted down a pyramid (weights and right-hand sides summed over 2x2 blocks, which keeps
//! the energy of smooth fields), solved on the coarsest level by many damped Jacobi sweeps, and
//! each level's solution is upsampled as the start of a few sweeps on the next finer one. Rows
//! run in parallel and every sweep is double-buffered, so results do not depend on the thread
//! count.

use image::RgbaImage;
use rayon::prelude::*;

/// Damping of the Jacobi sweeps (below 1 so that the checkerboard mode decays too).
const DAMPING: f32 = 0.8;
/// Levels stop halving below this side.
const COARSEST_SIDE: usize = 8;

/// The system `(a + e − Δ) D = b` on a `w` x `h` grid with Neumann borders (`a + e` is the
/// screening weight per pixel, kept as two terms because deflicker builds it so; rows of `w`).
pub(crate) struct System {
    /// Width of the grid.
    pub w: usize,
    /// Height of the grid.
    pub h: usize,
    /// Weight per pixel (deflicker: the temporal pull).
    pub a: Vec<f32>,
    /// Further weight per pixel (deflicker: the anchor; propagation: the data term).
    pub e: Vec<f32>,
    /// Right-hand side per pixel and channel.
    pub b: Vec<[f32; 3]>,
}

impl System {
    /// The system on the grid of half the size: weights and right-hand sides summed over each
    /// 2x2 block (odd borders fold into the last block); the Laplacian keeps its stencil.
    fn restrict(&self) -> System {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut a = vec![0.0f32; cw * ch];
        let mut e = vec![0.0f32; cw * ch];
        let mut b = vec![[0.0f32; 3]; cw * ch];
        a.par_chunks_mut(cw)
            .zip(e.par_chunks_mut(cw))
            .zip(b.par_chunks_mut(cw))
            .enumerate()
            .for_each(|(cy, ((ar, er), br))| {
                for y in 2 * cy..(2 * cy + 2).min(self.h) {
                    for x in 0..self.w {
                        let (i, cx) = (y * self.w + x, x / 2);
                        ar[cx] += self.a[i];
                        er[cx] += self.e[i];
                        for (o, v) in br[cx].iter_mut().zip(self.b[i]) {
                            *o += v;
                        }
                    }
                }
            });
        System {
            w: cw,
            h: ch,
            a,
            e,
            b,
        }
    }

    /// `sweeps` damped Jacobi sweeps on `d`, in place (double-buffered).
    fn relax(&self, d: &mut Vec<[f32; 3]>, sweeps: usize) {
        let (w, h) = (self.w, self.h);
        let mut next = vec![[0.0f32; 3]; w * h];
        for _ in 0..sweeps {
            let cur = &*d;
            next.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
                for (x, o) in row.iter_mut().enumerate() {
                    let i = y * w + x;
                    let mut sum = [0.0f32; 3];
                    let mut deg = 0.0f32;
                    neighbours((x, y), (w, h), |j| {
                        deg += 1.0;
                        for c in 0..3 {
                            sum[c] += cur[j][c];
                        }
                    });
                    let inv = 1.0 / (self.a[i] + self.e[i] + deg);
                    for c in 0..3 {
                        let jac = (self.b[i][c] + sum[c]) * inv;
                        o[c] = cur[i][c] + DAMPING * (jac - cur[i][c]);
                    }
                }
            });
            std::mem::swap(d, &mut next);
        }
    }
}

/// Calls `f` with the index of each 4-neighbour of pixel `(x, y)` inside a `w` x `h` grid (the
/// edges of the Laplacian with Neumann borders): left, right, up, down.
#[inline(always)]
pub(crate) fn neighbours((x, y): (usize, usize), (w, h): (usize, usize), mut f: impl FnMut(usize)) {
    let i = y * w + x;
    if x > 0 {
        f(i - 1);
    }
    if x + 1 < w {
        f(i + 1);
    }
    if y > 0 {
        f(i - w);
    }
    if y + 1 < h {
        f(i + w);
    }
}

/// `image` with the solved correction `d` (one `[f32; 3]` per pixel, rows of the image's
/// width) added to its RGB channels, rounded and clamped to 0..=255; alpha is kept.
pub(crate) fn add_correction(image: &RgbaImage, d: &[[f32; 3]]) -> RgbaImage {
    let w = image.width() as usize;
    let mut out = image.clone();
    out.as_mut()
        .par_chunks_mut(w * 4)
        .zip(d.par_chunks(w))
        .for_each(|(row, dr)| {
            for (px, dv) in row.chunks_exact_mut(4).zip(dr) {
                for c in 0..3 {
                    px[c] = (px[c] as f32 + dv[c]).round().clamp(0.0, 255.0) as u8;
                }
            }
        });
    out
}

/// Cascadic multigrid: solve the coarsest level, then upsample and relax level by level.
pub(crate) fn multigrid(fine: System, sweeps: usize) -> Vec<[f32; 3]> {
    let mut levels = vec![fine];
    while let Some(last) = levels.last() {
        if last.w.min(last.h) < 2 * COARSEST_SIDE {
            break;
        }
        let next = last.restrict();
        levels.push(next);
    }
    let coarsest = levels.last().expect("one level");
    let mut d = vec![[0.0f32; 3]; coarsest.w * coarsest.h];
    coarsest.relax(&mut d, 8 * sweeps);
    for k in (0..levels.len() - 1).rev() {
        let (fine, coarse) = (&levels[k], &levels[k + 1]);
        d = upsample(&d, coarse.w, coarse.h, fine.w, fine.h);
        // Coarser levels cost a quarter as much each: give them more sweeps.
        fine.relax(&mut d, sweeps * (1 + k));
    }
    d
}

/// Bilinear upsampling by 2 (cell-centred) of a `cw` x `ch` field to `w` x `h`.
fn upsample(d: &[[f32; 3]], cw: usize, ch: usize, w: usize, h: usize) -> Vec<[f32; 3]> {
    let mut out = vec![[0.0f32; 3]; w * h];
    let coord = |x: usize, n: usize| -> (usize, usize, f32) {
        let s = ((x as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (n - 1) as f32);
        let i0 = s as usize;
        (i0, (i0 + 1).min(n - 1), s - i0 as f32)
    };
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (y0, y1, fy) = coord(y, ch);
        for (x, o) in row.iter_mut().enumerate() {
            let (x0, x1, fx) = coord(x, cw);
            for c in 0..3 {
                let top = d[y0 * cw + x0][c] + (d[y0 * cw + x1][c] - d[y0 * cw + x0][c]) * fx;
                let bot = d[y1 * cw + x0][c] + (d[y1 * cw + x1][c] - d[y1 * cw + x0][c]) * fx;
                o[c] = top + (bot - top) * fy;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Residual norm of the system for `d`, relative to the right-hand side.
    #[allow(clippy::needless_range_loop)]
    fn residual(s: &System, d: &[[f32; 3]]) -> f64 {
        let (mut r2, mut b2) = (0.0f64, 0.0f64);
        for y in 0..s.h {
            for x in 0..s.w {
                let i = y * s.w + x;
                for c in 0..3 {
                    let mut lap = 0.0f32;
                    for (ok, j) in [
                        (x > 0, i.wrapping_sub(1)),
                        (x + 1 < s.w, i + 1),
                        (y > 0, i.wrapping_sub(s.w)),
                        (y + 1 < s.h, i + s.w),
                    ] {
                        if ok {
                            lap += d[i][c] - d[j][c];
                        }
                    }
                    let r = (s.a[i] + s.e[i]) * d[i][c] + lap - s.b[i][c];
                    r2 += (r as f64).powi(2);
                    b2 += (s.b[i][c] as f64).powi(2);
                }
            }
        }
        (r2 / b2.max(1e-30)).sqrt()
    }

    #[test]
    fn multigrid_solves_the_screened_poisson_system() {
        // A constant offset pinned on most of the frame, with an unreliable hole in the middle.
        let (w, h) = (160, 120);
        let mut a = vec![4.0f32; w * h];
        for y in 40..80 {
            for x in 50..110 {
                a[y * w + x] = 0.0;
            }
        }
        let e = a.iter().map(|&v| v * 0.1 + 1e-3).collect::<Vec<_>>();
        let b = a.iter().map(|&v| [v * 20.0, -v * 10.0, 0.0]).collect();
        let sys = System { w, h, a, e, b };
        let zero = vec![[0.0f32; 3]; w * h];
        let before = residual(&sys, &zero);
        let d = multigrid(
            System {
                w,
                h,
                a: sys.a.clone(),
                e: sys.e.clone(),
                b: sys.b.clone(),
            },
            6,
        );
        let after = residual(&sys, &d);
        assert!(after < 0.05 * before, "residual {after} from {before}");
        // The offset (20/(1 + 0.1/4) = 19.5) reaches into the hole through the membrane.
        let mid = d[60 * w + 80][0];
        assert!(mid > 15.0 && mid < 20.0, "hole centre {mid}");
    }
}
