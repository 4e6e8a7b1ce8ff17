//! 8-bit YUV 4:2:0 (planar `yuv420p`) ↔ RGBA conversions, so that the raw pipes to and from
//! ffmpeg carry 1.5 bytes a pixel instead of 3 or 4 and ffmpeg's own converter stays idle.
//!
//! The decoder side follows what ffmpeg's `swscale` does when asked for `rgba` with default flags:
//! the matrix of the stream (BT.601 when it is untagged), nearest chroma (each chroma sample
//! covers its 2x2 block). The encoder side writes BT.709 limited range with each chroma sample the
//! mean of its 2x2 block. Both are fixed point with 16 fractional bits; the tests in
//! `tests/video.rs` compare them with ffmpeg's own conversions.
//!
//! Coefficients come from the matrices' luma weights (Kr, Kb): ITU-R BT.601 (0.299, 0.114) and
//! BT.709 (0.2126, 0.0722); limited range scales luma to 16..=235 (219 steps) and chroma to
//! 16..=240 (224 steps).

/// Which YUV matrix a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// ITU-R BT.601 (SD; ffmpeg's default for untagged streams).
    Bt601,
    /// ITU-R BT.709 (HD).
    Bt709,
}

/// Luma/chroma value range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// "TV" range: luma 16..=235, chroma 16..=240.
    Limited,
    /// "PC"/JPEG range: 0..=255.
    Full,
}

impl Matrix {
    /// (Kr, Kb) luma weights.
    fn weights(self) -> (f64, f64) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

const SHIFT: u32 = 16;
const ONE: f64 = (1u32 << SHIFT) as f64;

fn fixed(x: f64) -> i32 {
    (x * ONE).round() as i32
}

/// Bytes of one `yuv420p` frame of `width` x `height` (chroma planes rounded up, as ffmpeg does).
pub fn yuv420p_len(width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
}

/// Fixed-point coefficients of one YUV → RGB conversion.
#[derive(Debug, Clone, Copy)]
struct ToRgb {
    y_scale: i32,
    y_offset: i32,
    rv: i32,
    gu: i32,
    gv: i32,
    bu: i32,
}

impl ToRgb {
    fn new(matrix: Matrix, range: Range) -> Self {
        let (kr, kb) = matrix.weights();
        let kg = 1.0 - kr - kb;
        let (ys, cs, y_offset) = match range {
            Range::Limited => (255.0 / 219.0, 255.0 / 224.0, 16),
            Range::Full => (1.0, 1.0, 0),
        };
        ToRgb {
            y_scale: fixed(ys),
            y_offset,
            rv: fixed(2.0 * (1.0 - kr) * cs),
            gu: fixed(-2.0 * (1.0 - kb) * kb / kg * cs),
            gv: fixed(-2.0 * (1.0 - kr) * kr / kg * cs),
            bu: fixed(2.0 * (1.0 - kb) * cs),
        }
    }
}

/// Converts one `yuv420p` frame (`src`, [`yuv420p_len`] bytes) into RGBA pixels with alpha 255
/// (`dst`, 4 bytes a pixel).
///
/// # Panics
/// When a buffer is shorter than the frame needs (a caller bug, not user input).
pub fn yuv420p_to_rgba(
    src: &[u8],
    width: u32,
    height: u32,
    matrix: Matrix,
    range: Range,
    dst: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { yuv420p_to_rgba_avx2(src, width, height, matrix, range, dst) };
    }
    yuv420p_to_rgba_any(src, width, height, matrix, range, dst)
}

/// [`yuv420p_to_rgba`] compiled for AVX2: the same code, vectorized by the compiler with
/// 256-bit registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn yuv420p_to_rgba_avx2(
    src: &[u8],
    width: u32,
    height: u32,
    matrix: Matrix,
    range: Range,
    dst: &mut [u8],
) {
    yuv420p_to_rgba_any(src, width, height, matrix, range, dst)
}

#[inline(always)]
fn yuv420p_to_rgba_any(
    src: &[u8],
    width: u32,
    height: u32,
    matrix: Matrix,
    range: Range,
    dst: &mut [u8],
) {
    let (w, h) = (width as usize, height as usize);
    let cw = w.div_ceil(2);
    let ch = h.div_ceil(2);
    assert!(src.len() >= yuv420p_len(width, height) && dst.len() >= w * h * 4);
    let (y_plane, rest) = src.split_at(w * h);
    let (u_plane, v_plane) = rest.split_at(cw * ch);
    let k = Coefficients::new(matrix, range);
    let dst = &mut dst[..w * h * 4];
    // Whole pixels as u32 when the buffer is 4-byte aligned (allocations are); else through a row.
    match bytemuck::try_cast_slice_mut::<u8, u32>(dst) {
        Ok(pixels) => {
            for (cy, rows) in pixels.chunks_mut(2 * w).enumerate() {
                let (top, bottom) = rows.split_at_mut(w.min(rows.len()));
                let c = cy * cw;
                let y0 = &y_plane[2 * cy * w..][..w];
                let y1 = y_plane.get((2 * cy + 1) * w..(2 * cy + 2) * w);
                let (us, vs) = (&u_plane[c..c + cw], &v_plane[c..c + cw]);
                k.row(y0, us, vs, top);
                if let Some(y1) = y1 {
                    k.row(y1, us, vs, bottom);
                }
            }
        }
        Err(_) => {
            let mut row = vec![0u32; w];
            for (y, out) in dst.chunks_exact_mut(w * 4).enumerate() {
                let c = y / 2 * cw;
                let (us, vs) = (&u_plane[c..c + cw], &v_plane[c..c + cw]);
                k.row(&y_plane[y * w..][..w], us, vs, &mut row);
                for (o, p) in out.chunks_exact_mut(4).zip(&row) {
                    o.copy_from_slice(&p.to_ne_bytes());
                }
            }
        }
    }
}

/// 16-bit fixed-point coefficients (SSE2 has 16-bit multiplies, not 32-bit ones): luma
/// `y << 7` times its scale in Q14, chroma `(c - 128) << 8` times its coefficient in Q13, each
/// product's high half, so the terms are in Q5 (1/32 steps).
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    ys: i16,
    rv: i16,
    gu: i16,
    gv: i16,
    bu: i16,
    /// Rounding and the luma offset.
    base: i16,
}

/// High half of a 16-bit product (SSE2 `pmulhw`).
#[inline(always)]
fn mulhi(a: i16, b: i16) -> i16 {
    ((i32::from(a) * i32::from(b)) >> 16) as i16
}

impl Coefficients {
    fn new(matrix: Matrix, range: Range) -> Self {
        let k = ToRgb::new(matrix, range);
        let q = |c: i32, bits: u32| (f64::from(c) / ONE * f64::from(1u32 << bits)).round() as i16;
        let ys = q(k.y_scale, 14);
        Coefficients {
            ys,
            rv: q(k.rv, 13),
            gu: q(k.gu, 13),
            gv: q(k.gv, 13),
            bu: q(k.bu, 13),
            base: 16 - mulhi((k.y_offset << 7) as i16, ys),
        }
    }

    /// The (R, G, B) terms of one chroma sample, in Q5 with rounding and luma offset.
    #[inline(always)]
    fn chroma(&self, u: u8, v: u8) -> (i16, i16, i16) {
        // (c - 128) << 8 spans -32768..=32512: it fits 16 bits.
        let u = ((i32::from(u) - 128) << 8) as i16;
        let v = ((i32::from(v) - 128) << 8) as i16;
        (
            mulhi(v, self.rv) + self.base,
            mulhi(u, self.gu) + mulhi(v, self.gv) + self.base,
            mulhi(u, self.bu) + self.base,
        )
    }

    /// One pixel as a native-endian u32 whose bytes in memory are R, G, B, A.
    #[inline(always)]
    fn pixel(&self, y: u8, (r, g, b): (i16, i16, i16)) -> u32 {
        let l = mulhi((u16::from(y) << 7) as i16, self.ys);
        // |l| <= 9500 and |term| <= 9500: no 16-bit overflow.
        let c = |t: i16| u32::from(((l + t) >> 5).clamp(0, 255) as u16);
        (c(r) | c(g) << 8 | c(b) << 16 | 0xff00_0000).to_le()
    }

    /// One output row.
    #[inline(always)]
    fn row(&self, ys: &[u8], us: &[u8], vs: &[u8], out: &mut [u32]) {
        let pairs = out.len() / 2;
        for (((o, y), &u), &v) in out
            .chunks_exact_mut(2)
            .zip(ys.chunks_exact(2))
            .zip(&us[..pairs])
            .zip(&vs[..pairs])
        {
            let t = self.chroma(u, v);
            o[0] = self.pixel(y[0], t);
            o[1] = self.pixel(y[1], t);
        }
        if out.len() % 2 == 1 {
            let x = out.len() - 1;
            out[x] = self.pixel(ys[x], self.chroma(us[x / 2], vs[x / 2]));
        }
    }
}

/// Converts RGBA pixels (`src`, 4 bytes a pixel, alpha ignored) into a BT.709 limited-range
/// `yuv420p` frame in `dst` (resized to [`yuv420p_len`]). Width and height must be even.
///
/// # Panics
/// When a size is odd or `src` is shorter than the frame (caller bugs, not user input).
pub fn rgba_to_yuv420p_bt709(src: &[u8], width: u32, height: u32, dst: &mut Vec<u8>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { rgba_to_yuv420p_avx2(src, width, height, dst) };
    }
    rgba_to_yuv420p_any(src, width, height, dst)
}

/// [`rgba_to_yuv420p_bt709`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rgba_to_yuv420p_avx2(src: &[u8], width: u32, height: u32, dst: &mut Vec<u8>) {
    rgba_to_yuv420p_any(src, width, height, dst)
}

#[inline(always)]
fn rgba_to_yuv420p_any(src: &[u8], width: u32, height: u32, dst: &mut Vec<u8>) {
    let (w, h) = (width as usize, height as usize);
    assert!(w % 2 == 0 && h % 2 == 0 && src.len() >= w * h * 4);
    let k = ToYuv::bt709();
    // Every byte is overwritten: a buffer of the right length is reused as it is.
    dst.resize(yuv420p_len(width, height), 0);
    let cw = w / 2;
    let (y_plane, rest) = dst.split_at_mut(w * h);
    let (u_plane, v_plane) = rest.split_at_mut(cw * (h / 2));
    let src = &src[..w * h * 4];
    // Whole pixels as u32 when the buffer is 4-byte aligned (allocations are); else a copy.
    let copied: Vec<u32>;
    let pixels: &[u32] = match bytemuck::try_cast_slice::<u8, u32>(src) {
        Ok(p) => p,
        Err(_) => {
            copied = src
                .chunks_exact(4)
                .map(|p| u32::from_ne_bytes([p[0], p[1], p[2], p[3]]))
                .collect();
            &copied
        }
    };
    for (((rows, y2), u_row), v_row) in pixels
        .chunks_exact(2 * w)
        .zip(y_plane.chunks_exact_mut(2 * w))
        .zip(u_plane.chunks_exact_mut(cw))
        .zip(v_plane.chunks_exact_mut(cw))
    {
        for (y, &p) in y2.iter_mut().zip(rows) {
            *y = k.luma(p);
        }
        let (top, bottom) = rows.split_at(w);
        for (((u, v), t), b) in u_row
            .iter_mut()
            .zip(v_row.iter_mut())
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            (*u, *v) = k.chroma([t[0], t[1], b[0], b[1]]);
        }
    }
}

/// Fixed-point RGB → YUV coefficients in Q15 (each fits 16 bits, so products of 8-bit values
/// need no 32-bit multiplies). Chroma ones apply to the sum of a 2x2 block.
#[derive(Debug, Clone, Copy)]
struct ToYuv {
    y: [i32; 3],
    u: [i32; 3],
    v: [i32; 3],
}

const Q: u32 = 15;

impl ToYuv {
    fn bt709() -> Self {
        let (kr, kb) = Matrix::Bt709.weights();
        let kg = 1.0 - kr - kb;
        let f = |x: f64| (x * f64::from(1u32 << Q)).round() as i32;
        let ys = 219.0 / 255.0;
        let cu = 224.0 / 255.0 / (2.0 * (1.0 - kb)) / 4.0;
        let cv = 224.0 / 255.0 / (2.0 * (1.0 - kr)) / 4.0;
        ToYuv {
            y: [f(kr * ys), f(kg * ys), f(kb * ys)],
            u: [f(-kr * cu), f(-kg * cu), f((1.0 - kb) * cu)],
            v: [f((1.0 - kr) * cv), f(-kg * cv), f(-kb * cv)],
        }
    }

    /// Luma of one pixel (a native-endian u32 whose bytes are R, G, B, A).
    #[inline(always)]
    fn luma(&self, p: u32) -> u8 {
        let p = u32::from_le(p);
        let (r, g, b) = (
            (p & 0xff) as i32,
            (p >> 8 & 0xff) as i32,
            (p >> 16 & 0xff) as i32,
        );
        let y = self.y[0] * r + self.y[1] * g + self.y[2] * b + (16 << Q) + (1 << (Q - 1));
        (y >> Q) as u8
    }

    /// (U, V) of a 2x2 block.
    #[inline(always)]
    fn chroma(&self, block: [u32; 4]) -> (u8, u8) {
        let (mut r, mut g, mut b) = (0i32, 0i32, 0i32);
        for p in block {
            let p = u32::from_le(p);
            r += (p & 0xff) as i32;
            g += (p >> 8 & 0xff) as i32;
            b += (p >> 16 & 0xff) as i32;
        }
        let base = (128 << Q) + (1 << (Q - 1));
        let u = self.u[0] * r + self.u[1] * g + self.u[2] * b + base;
        let v = self.v[0] * r + self.v[1] * g + self.v[2] * b + base;
        ((u >> Q).clamp(0, 255) as u8, (v >> Q).clamp(0, 255) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_chroma_up() {
        assert_eq!(yuv420p_len(4, 2), 8 + 2 * 2);
        assert_eq!(yuv420p_len(3, 3), 9 + 2 * 4);
    }

    #[test]
    fn limited_range_extremes_map_to_black_and_white() {
        for m in [Matrix::Bt601, Matrix::Bt709] {
            let mut rgba = [0u8; 16];
            // 2x2 of Y=16 (black), neutral chroma.
            yuv420p_to_rgba(
                &[16, 16, 16, 16, 128, 128],
                2,
                2,
                m,
                Range::Limited,
                &mut rgba,
            );
            assert!(rgba.chunks(4).all(|p| p == [0, 0, 0, 255]), "{rgba:?}");
            yuv420p_to_rgba(
                &[235, 235, 235, 235, 128, 128],
                2,
                2,
                m,
                Range::Limited,
                &mut rgba,
            );
            assert!(
                rgba.chunks(4).all(|p| p == [255, 255, 255, 255]),
                "{rgba:?}"
            );
            yuv420p_to_rgba(
                &[200, 200, 200, 200, 128, 128],
                2,
                2,
                m,
                Range::Full,
                &mut rgba,
            );
            assert!(
                rgba.chunks(4).all(|p| p == [200, 200, 200, 255]),
                "{rgba:?}"
            );
        }
    }

    #[test]
    fn rgb_round_trip_is_close() {
        // Flat 2x2 blocks, so chroma subsampling loses nothing.
        let (w, h) = (8u32, 6u32);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        for y in 0..h as usize {
            for x in 0..w as usize {
                let (bx, by) = (x / 2, y / 2);
                let p = &mut rgba[(y * w as usize + x) * 4..][..4];
                p.copy_from_slice(&[
                    (bx * 60) as u8,
                    (by * 90 + 20) as u8,
                    (255 - bx * 50) as u8,
                    255,
                ]);
            }
        }
        let mut yuv = Vec::new();
        rgba_to_yuv420p_bt709(&rgba, w, h, &mut yuv);
        let mut back = vec![0u8; rgba.len()];
        yuv420p_to_rgba(&yuv, w, h, Matrix::Bt709, Range::Limited, &mut back);
        let worst = rgba.iter().zip(&back).map(|(a, b)| a.abs_diff(*b)).max();
        // 8-bit limited range keeps 219 luma levels: a round trip is within a couple of steps.
        assert!(worst <= Some(3), "worst {worst:?}");
    }

    #[test]
    fn dispatched_and_portable_paths_agree() {
        // The public functions take the AVX2 build where the CPU has it; both must give the same
        // bytes as the portable code (odd sizes for decoding, which supports them).
        let (w, h) = (37u32, 22u32);
        let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 97 % 253) as u8).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        rgba_to_yuv420p_bt709(&rgba[..(36 * 22 * 4)], 36, 22, &mut a);
        rgba_to_yuv420p_any(&rgba[..(36 * 22 * 4)], 36, 22, &mut b);
        assert_eq!(a, b);
        let yuv: Vec<u8> = (0..yuv420p_len(w, h))
            .map(|i| (i * 31 % 256) as u8)
            .collect();
        for (m, r) in [
            (Matrix::Bt601, Range::Limited),
            (Matrix::Bt709, Range::Full),
        ] {
            let mut x = vec![0u8; (w * h * 4) as usize];
            let mut y = x.clone();
            yuv420p_to_rgba(&yuv, w, h, m, r, &mut x);
            yuv420p_to_rgba_any(&yuv, w, h, m, r, &mut y);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn known_bt709_values() {
        // Pure red in BT.709 limited range is (Y, U, V) = (63, 102, 240).
        let red = [255u8, 0, 0, 255].repeat(4);
        let mut yuv = Vec::new();
        rgba_to_yuv420p_bt709(&red, 2, 2, &mut yuv);
        assert_eq!(yuv, [63, 63, 63, 63, 102, 240]);
    }
}
