//! Image operations the product depends on and no crate does well enough: edge-preserving
//! smoothing, colour conversion, Gaussian filtering, difference of Gaussians, soft quantization.
//!
//! Everything works on [`Plane`]s: single-channel, row-major `f32` images. Multi-channel images
//! are kept planar (`[Plane; 3]` for CIE Lab), which keeps the inner loops simple and
//! auto-vectorizable. Row-parallel work uses rayon; results never depend on the thread count.

pub mod blur;
pub mod color;
pub mod dog;
pub mod edge_preserving;
pub mod fastmath;
pub(crate) mod poisson;
pub mod quality;
pub mod quantize;

use rayon::prelude::*;

/// A single-channel `f32` image stored row-major (`data[y * width + x]`).
///
/// Large planes draw their storage from a small process-wide pool of recycled buffers and return
/// it when dropped, so that processing frame after frame does not page-fault fresh memory in
/// (at 720p that was a fifth of the run time).
#[derive(Debug, PartialEq)]
pub struct Plane {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl Clone for Plane {
    fn clone(&self) -> Self {
        let mut data = pool::take(self.data.len());
        data.copy_from_slice(&self.data);
        Plane {
            width: self.width,
            height: self.height,
            data,
        }
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl Plane {
    /// A `width` x `height` plane of zeros.
    pub fn new(width: usize, height: usize) -> Self {
        let mut p = Plane::scratch(width, height);
        p.data.fill(0.0);
        p
    }

    /// A `width` x `height` plane with unspecified (but initialized) contents, for outputs that
    /// are about to be overwritten entirely.
    pub fn scratch(width: usize, height: usize) -> Self {
        Plane {
            width,
            height,
            data: pool::take(width * height),
        }
    }

    /// Wraps `data` (row-major); `None` when its length is not `width * height`.
    pub fn from_vec(width: usize, height: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == width * height).then_some(Plane {
            width,
            height,
            data,
        })
    }

    /// A plane whose pixel `(x, y)` is `f(x, y)`.
    pub fn from_fn(width: usize, height: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut p = Plane::scratch(width, height);
        for y in 0..height {
            for x in 0..width {
                p.data[y * width + x] = f(x, y);
            }
        }
        p
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// All pixels, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// All pixels, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The pixels, consuming the plane.
    pub fn into_vec(mut self) -> Vec<f32> {
        std::mem::take(&mut self.data)
    }

    /// Pixel `(x, y)`; panics when out of bounds.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Sets pixel `(x, y)`; panics when out of bounds.
    pub fn set(&mut self, x: usize, y: usize, v: f32) {
        self.data[y * self.width + x] = v;
    }

    /// Row `y`.
    pub fn row(&self, y: usize) -> &[f32] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    /// Row `y`, mutable.
    pub fn row_mut(&mut self, y: usize) -> &mut [f32] {
        &mut self.data[y * self.width..(y + 1) * self.width]
    }

    /// Parallel iterator over mutable rows (empty for a zero-width plane).
    pub fn par_rows_mut(&mut self) -> rayon::slice::ChunksMut<'_, f32> {
        self.data.par_chunks_mut(self.width.max(1))
    }

    /// Mean of all pixels (0 for an empty plane), accumulated in f64.
    pub fn mean(&self) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().map(|&v| v as f64).sum::<f64>() / self.data.len() as f64
    }

    /// Whether `other` has the same size.
    pub fn same_size(&self, other: &Plane) -> bool {
        self.width == other.width && self.height == other.height
    }
}

/// The buffer recycler behind [`Plane`].
mod pool {
    use std::sync::Mutex;

    /// Buffers smaller than this (in f32s) are not worth pooling.
    const MIN_LEN: usize = 1 << 16;
    /// At most this many idle buffers are kept (about 45 MB at 720p)...
    const MAX_IDLE: usize = 12;
    /// ...and at most this many f32s in all (128 MB), so 4K frames do not pin a lot of memory.
    const MAX_IDLE_LEN: usize = 32 << 20;

    static IDLE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

    /// A buffer of `len` values with unspecified contents.
    pub(super) fn take(len: usize) -> Vec<f32> {
        if len >= MIN_LEN {
            let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
            // Best fit: the smallest idle buffer that is large enough.
            let best = idle
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                let mut v = idle.swap_remove(i);
                drop(idle);
                v.resize(len, 0.0);
                return v;
            }
        }
        vec![0.0; len]
    }

    /// Returns a buffer to the pool (dropped when the pool is full or it is small).
    pub(super) fn give(v: Vec<f32>) {
        if v.capacity() < MIN_LEN {
            return;
        }
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        let held: usize = idle.iter().map(Vec::capacity).sum();
        if held + v.capacity() > MAX_IDLE_LEN {
            return;
        }
        if idle.len() < MAX_IDLE {
            idle.push(v);
        } else if let Some((i, _)) = idle
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| b.capacity())
            .filter(|(_, b)| b.capacity() < v.capacity())
        {
            // Keep the larger buffers: they can serve any smaller request.
            idle[i] = v;
        }
    }
}

/// Index of `i` (any integer) reflected into `0..n` with half-sample symmetry
/// (`... c b a | a b c ... x y z | z y x ...`), the boundary rule of the linear filters here: it
/// keeps a blurred image's mean equal to the input's. `n` must be at least 1.
#[inline]
pub fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let got: Vec<usize> = (-4..8).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, vec![2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
        assert_eq!(reflect(5, 1), 0);
    }

    #[test]
    fn recycled_planes_are_zeroed_by_new() {
        for _ in 0..3 {
            let dirty = Plane::from_fn(400, 300, |_, _| 7.0);
            let copy = dirty.clone();
            assert_eq!(copy, dirty);
            drop(dirty);
            drop(copy);
            let fresh = Plane::new(400, 300);
            assert!(fresh.data().iter().all(|&v| v == 0.0));
            let smaller = Plane::new(200, 100);
            assert_eq!(smaller.data().len(), 20_000);
            assert!(smaller.data().iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn plane_rows_and_mean() {
        let p = Plane::from_fn(3, 2, |x, y| (x + 10 * y) as f32);
        assert_eq!(p.row(1), &[10.0, 11.0, 12.0]);
        assert_eq!(p.get(2, 0), 2.0);
        assert!((p.mean() - 6.0).abs() < 1e-12);
        assert!(Plane::from_vec(2, 2, vec![0.0; 3]).is_none());
    }
}
