//! Weighted voting: every target pixel averages the style pixels that the patches overlapping it
//! map it to.

use super::nnf::Nnf;
use super::pyramid::Plane;
use rayon::prelude::*;

/// The synthesis for `field`: pixel `q` averages `style[n(p) + (q - p)]` over the target patches
/// `p` (side `ps`) that contain `q`, each weighted by `1 / (1 + error(p))` when `errors` are
/// given (ebsynth's weighted vote), else equally. Source positions clamp to the style's edges,
/// matching the edge-replicated patches of the search.
pub(crate) fn vote(field: &Nnf, errors: Option<&[f32]>, style: &Plane, ps: usize) -> Plane {
    let (tw, th) = (field.width(), field.height());
    let (sw, sh) = (style.width as i32, style.height as i32);
    let r = (ps / 2) as isize;
    let mut out = Plane::zeros(tw, th);
    out.data
        .par_chunks_mut(tw * 3)
        .enumerate()
        .for_each(|(y, row)| {
            for x in 0..tw {
                let mut acc = [0.0f32; 3];
                let mut total = 0.0f32;
                for oy in -r..=r {
                    let py = y as isize - oy;
                    if py < 0 || py >= th as isize {
                        continue;
                    }
                    for ox in -r..=r {
                        let px = x as isize - ox;
                        if px < 0 || px >= tw as isize {
                            continue;
                        }
                        let (px, py) = (px as usize, py as usize);
                        let [nx, ny] = field.at(px, py);
                        let sx = (nx + ox as i32).clamp(0, sw - 1) as usize;
                        let sy = (ny + oy as i32).clamp(0, sh - 1) as usize;
                        let w = errors.map_or(1.0, |e| 1.0 / (1.0 + e[py * tw + px]));
                        let i = (sy * style.width + sx) * 3;
                        for (a, v) in acc.iter_mut().zip(&style.data[i..i + 3]) {
                            *a += w * v;
                        }
                        total += w;
                    }
                }
                for (o, a) in row[x * 3..x * 3 + 3].iter_mut().zip(acc) {
                    *o = a / total;
                }
            }
        });
    out
}
