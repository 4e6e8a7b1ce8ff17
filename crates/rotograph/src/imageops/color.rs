//! sRGB ↔ CIE L\*a\*b\* (D65) conversion.
//!
//! L is in 0..=100, a and b roughly in -128..=127 — the same scale as OpenCV's float `Lab`.
//! The scalar functions ([`srgb_to_lab`], [`lab_to_srgb`]) are exact (to f32 precision); the image
//! conversions ([`rgba_to_lab`], [`lab_to_rgba`], [`SrgbEncoder`]) use lookup tables and a fast
//! cube root, and still round-trip every 8-bit colour exactly.

use super::{fastmath, Plane};
use image::RgbaImage;
use rayon::prelude::*;
use std::sync::OnceLock;

/// D65 reference white, X.
const XN: f32 = 0.950_47;
/// D65 reference white, Z.
const ZN: f32 = 1.088_83;

/// Linear sRGB → XYZ (D65).
const RGB_TO_XYZ: [[f32; 3]; 3] = [
    [0.412_456_4, 0.357_576_1, 0.180_437_5],
    [0.212_672_9, 0.715_152_2, 0.072_175],
    [0.019_333_9, 0.119_192, 0.950_304_1],
];

/// XYZ (D65) → linear sRGB (the inverse of [`RGB_TO_XYZ`]).
const XYZ_TO_RGB: [[f32; 3]; 3] = [
    [3.240_454_2, -1.537_138_5, -0.498_531_4],
    [-0.969_266, 1.876_010_8, 0.041_556],
    [0.055_643_4, -0.204_025_9, 1.057_225_2],
];

/// 6/29, the knee of the Lab companding function.
const DELTA: f32 = 6.0 / 29.0;

/// Decodes an sRGB-encoded value in 0..=1 to linear light.
pub fn srgb_decode(v: f32) -> f32 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// Encodes linear light in 0..=1 to sRGB.
pub fn srgb_encode(l: f32) -> f32 {
    if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

#[inline(always)]
fn lab_f(t: f32) -> f32 {
    if t > DELTA * DELTA * DELTA {
        t.cbrt()
    } else {
        t / (3.0 * DELTA * DELTA) + 4.0 / 29.0
    }
}

/// Branch-free [`lab_f`] with the fast cube root (vectorizes).
#[inline(always)]
fn lab_f_fast(t: f32) -> f32 {
    let c = fastmath::cbrt(t);
    let lin = t * (1.0 / (3.0 * DELTA * DELTA)) + 4.0 / 29.0;
    if t > DELTA * DELTA * DELTA {
        c
    } else {
        lin
    }
}

#[inline(always)]
fn lab_finv(t: f32) -> f32 {
    if t > DELTA {
        t * t * t
    } else {
        3.0 * DELTA * DELTA * (t - 4.0 / 29.0)
    }
}

#[inline(always)]
fn mat3(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// Linear sRGB (0..=1) → Lab.
pub fn linear_rgb_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    let [x, y, z] = mat3(&RGB_TO_XYZ, rgb);
    let (fx, fy, fz) = (lab_f(x / XN), lab_f(y), lab_f(z / ZN));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Lab → linear sRGB (not clamped: out-of-gamut colours give values outside 0..=1).
#[inline(always)]
pub fn lab_to_linear_rgb(lab: [f32; 3]) -> [f32; 3] {
    let fy = (lab[0] + 16.0) * (1.0 / 116.0);
    let fx = fy + lab[1] * (1.0 / 500.0);
    let fz = fy - lab[2] * (1.0 / 200.0);
    let xyz = [XN * lab_finv(fx), lab_finv(fy), ZN * lab_finv(fz)];
    mat3(&XYZ_TO_RGB, xyz)
}

/// sRGB-encoded (0..=1) → Lab.
pub fn srgb_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    linear_rgb_to_lab(rgb.map(srgb_decode))
}

/// Lab → sRGB-encoded, clamped to 0..=1.
pub fn lab_to_srgb(lab: [f32; 3]) -> [f32; 3] {
    lab_to_linear_rgb(lab).map(|v| srgb_encode(v.clamp(0.0, 1.0)))
}

/// 8-bit sRGB → linear light table.
fn decode_lut() -> &'static [f32; 256] {
    static LUT: OnceLock<[f32; 256]> = OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|i| srgb_decode(i as f32 / 255.0)))
}

/// Converts an RGBA image to planar Lab (`[L, a, b]`); alpha is ignored.
pub fn rgba_to_lab(img: &RgbaImage) -> [Plane; 3] {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut planes = [
        Plane::scratch(w, h),
        Plane::scratch(w, h),
        Plane::scratch(w, h),
    ];
    if w == 0 || h == 0 {
        return planes;
    }
    let lut = decode_lut();
    let [pl, pa, pb] = &mut planes;
    let raw: &[u8] = img.as_raw();
    raw.par_chunks_exact(4 * w)
        .zip(pl.par_rows_mut())
        .zip(pa.par_rows_mut())
        .zip(pb.par_rows_mut())
        .for_each(|(((src, l), a), b)| {
            // Decode into the output rows (table look-ups), then convert in place (vectorized).
            for (((px, r), g), bl) in src.chunks_exact(4).zip(&mut *l).zip(&mut *a).zip(&mut *b) {
                *r = lut[px[0] as usize];
                *g = lut[px[1] as usize];
                *bl = lut[px[2] as usize];
            }
            linear_to_lab_in_place(l, a, b);
        });
    planes
}

/// Converts rows holding linear R, G, B into L, a, b in place.
#[inline]
fn linear_to_lab_in_place(c0: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
    let n = c0.len();
    let (c1, c2) = (&mut c1[..n], &mut c2[..n]);
    let m = &RGB_TO_XYZ;
    for i in 0..n {
        let (r, g, b) = (c0[i], c1[i], c2[i]);
        let fx = lab_f_fast((m[0][0] * r + m[0][1] * g + m[0][2] * b) * (1.0 / XN));
        let fy = lab_f_fast(m[1][0] * r + m[1][1] * g + m[1][2] * b);
        let fz = lab_f_fast((m[2][0] * r + m[2][1] * g + m[2][2] * b) * (1.0 / ZN));
        c0[i] = 116.0 * fy - 16.0;
        c1[i] = 500.0 * (fx - fy);
        c2[i] = 200.0 * (fy - fz);
    }
}

/// Converts rows holding L, a, b into linear R, G, B in place (not clamped).
#[inline]
pub fn lab_to_linear_in_place(c0: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
    let n = c0.len();
    let (c1, c2) = (&mut c1[..n], &mut c2[..n]);
    for i in 0..n {
        let [r, g, b] = lab_to_linear_rgb([c0[i], c1[i], c2[i]]);
        c0[i] = r;
        c1[i] = g;
        c2[i] = b;
    }
}

/// Number of entries of the linear → 8-bit sRGB table (0.2 output levels per step near black).
const ENCODE_LUT_SIZE: usize = 16384;

/// Linear light / Lab → 8-bit sRGB through a lookup table (exact for 8-bit round trips).
#[derive(Debug)]
pub struct SrgbEncoder {
    lut: Vec<u8>,
}

impl SrgbEncoder {
    /// The shared encoder (built on first use).
    pub fn get() -> &'static SrgbEncoder {
        static ENC: OnceLock<SrgbEncoder> = OnceLock::new();
        ENC.get_or_init(|| SrgbEncoder {
            lut: (0..ENCODE_LUT_SIZE)
                .map(|i| {
                    let v = srgb_encode(i as f32 / (ENCODE_LUT_SIZE - 1) as f32);
                    (v * 255.0).round().clamp(0.0, 255.0) as u8
                })
                .collect(),
        })
    }

    /// Linear light (clamped to 0..=1) → 8-bit sRGB.
    #[inline(always)]
    pub fn encode(&self, linear: f32) -> u8 {
        let i = (linear.clamp(0.0, 1.0) * (ENCODE_LUT_SIZE - 1) as f32 + 0.5) as usize;
        self.lut[i.min(ENCODE_LUT_SIZE - 1)]
    }

    /// Lab → 8-bit sRGB (out-of-gamut colours are clipped per channel).
    #[inline(always)]
    pub fn lab_to_rgb8(&self, l: f32, a: f32, b: f32) -> [u8; 3] {
        let [r, g, bl] = lab_to_linear_rgb([l, a, b]);
        [self.encode(r), self.encode(g), self.encode(bl)]
    }

    /// Encodes rows of linear R, G, B into RGBA pixels, taking alpha from `alpha_src` (RGBA
    /// pixels of the same row) or 255.
    #[inline]
    pub fn encode_row(
        &self,
        r: &[f32],
        g: &[f32],
        b: &[f32],
        alpha_src: Option<&[u8]>,
        dst: &mut [u8],
    ) {
        for (x, px) in dst.chunks_exact_mut(4).enumerate() {
            px[0] = self.encode(r[x]);
            px[1] = self.encode(g[x]);
            px[2] = self.encode(b[x]);
            px[3] = alpha_src.map_or(255, |a| a[4 * x + 3]);
        }
    }
}

/// Converts planar Lab back to RGBA; alpha comes from `alpha` (same size) or is 255.
/// Returns `None` when the planes' sizes differ from each other or from `alpha`.
pub fn lab_to_rgba(planes: &[Plane; 3], alpha: Option<&RgbaImage>) -> Option<RgbaImage> {
    let (w, h) = (planes[0].width(), planes[0].height());
    if !planes.iter().all(|p| p.same_size(&planes[0])) {
        return None;
    }
    if let Some(a) = alpha {
        if (a.width() as usize, a.height() as usize) != (w, h) {
            return None;
        }
    }
    let mut out = RgbaImage::new(w as u32, h as u32);
    if w == 0 || h == 0 {
        return Some(out);
    }
    let enc = SrgbEncoder::get();
    let buf: &mut [u8] = &mut out;
    buf.par_chunks_exact_mut(4 * w).enumerate().for_each_init(
        || [vec![0f32; w], vec![0f32; w], vec![0f32; w]],
        |[r, g, b], (y, dst)| {
            r.copy_from_slice(planes[0].row(y));
            g.copy_from_slice(planes[1].row(y));
            b.copy_from_slice(planes[2].row(y));
            lab_to_linear_in_place(r, g, b);
            let a = alpha.map(|img| &img.as_raw()[4 * w * y..4 * w * (y + 1)]);
            enc.encode_row(r, g, b, a, dst);
        },
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_round_trip_is_exact_to_1e3() {
        let mut worst = 0f32;
        for r in 0..=32 {
            for g in 0..=32 {
                for b in 0..=32 {
                    let rgb = [r as f32 / 32.0, g as f32 / 32.0, b as f32 / 32.0];
                    let back = lab_to_srgb(srgb_to_lab(rgb));
                    for c in 0..3 {
                        worst = worst.max((back[c] - rgb[c]).abs());
                    }
                }
            }
        }
        assert!(worst < 1e-3, "worst round-trip error {worst}");
    }

    #[test]
    fn lab_reference_values() {
        // White, black and sRGB red (reference values from the CIE formulas, D65).
        let white = srgb_to_lab([1.0, 1.0, 1.0]);
        assert!((white[0] - 100.0).abs() < 0.01 && white[1].abs() < 0.01 && white[2].abs() < 0.01);
        let black = srgb_to_lab([0.0, 0.0, 0.0]);
        assert!(black[0].abs() < 1e-4);
        let red = srgb_to_lab([1.0, 0.0, 0.0]);
        let want = [53.24, 80.09, 67.20];
        for c in 0..3 {
            assert!((red[c] - want[c]).abs() < 0.05, "red {red:?} want {want:?}");
        }
    }

    #[test]
    fn image_conversion_round_trips_every_byte() {
        // Every 8-bit value in every channel, mixed with varying other channels.
        let w = 256u32;
        let img = RgbaImage::from_fn(w, 64, |x, y| {
            image::Rgba([
                x as u8,
                (x as u8).wrapping_mul(7).wrapping_add(y as u8 * 4),
                (255 - x as u8).wrapping_add((y as u8).wrapping_mul(13)),
                (x ^ y) as u8,
            ])
        });
        let lab = rgba_to_lab(&img);
        // Fast forward path agrees with the exact one.
        for (x, y) in [(0, 0), (17, 5), (255, 63), (128, 31)] {
            let p = img.get_pixel(x, y);
            let exact = srgb_to_lab([p[0], p[1], p[2]].map(|v| v as f32 / 255.0));
            let fast = [0, 1, 2].map(|c| lab[c].get(x as usize, y as usize));
            for c in 0..3 {
                assert!((exact[c] - fast[c]).abs() < 2e-3, "{exact:?} vs {fast:?}");
            }
        }
        let back = lab_to_rgba(&lab, Some(&img)).unwrap();
        assert_eq!(back.as_raw(), img.as_raw());
    }

    #[test]
    fn mismatched_sizes_are_rejected() {
        let planes = [Plane::new(2, 2), Plane::new(2, 2), Plane::new(3, 2)];
        assert!(lab_to_rgba(&planes, None).is_none());
    }
}
