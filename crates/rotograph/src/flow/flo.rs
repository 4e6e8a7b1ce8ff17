//! Middlebury `.flo` files and the colour-wheel visualisation (Baker et al., "A Database and
//! Evaluation Methodology for Optical Flow", IJCV 2011).
//!
//! `.flo`: the float 202021.25 (bytes "PIEH"), width and height as little-endian i32, then
//! width x height pairs (u, v) of little-endian f32, row-major.

use super::FlowField;
use crate::error::{Error, Result};
use image::RgbaImage;
use std::path::Path;

const MAGIC: f32 = 202021.25;
/// Values above this mean "unknown" in Middlebury ground truth.
const UNKNOWN: f32 = 1e9;

impl FlowField {
    /// Serialises the field as a Middlebury `.flo` file.
    pub fn to_flo_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.u.len() * 8);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&(self.width as i32).to_le_bytes());
        out.extend_from_slice(&(self.height as i32).to_le_bytes());
        for (u, v) in self.u.iter().zip(&self.v) {
            out.extend_from_slice(&u.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses a Middlebury `.flo` file's bytes; `path` names the file in errors.
    pub fn from_flo_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let word = |i: usize| -> [u8; 4] { bytes[i..i + 4].try_into().expect("4 bytes") };
        if bytes.len() < 12 || f32::from_le_bytes(word(0)) != MAGIC {
            return Err(Error::bad_input(
                path,
                "not a Middlebury .flo file (it does not start with \"PIEH\"); give a .flo \
                 flow file",
            ));
        }
        let w = i32::from_le_bytes(word(4));
        let h = i32::from_le_bytes(word(8));
        if w <= 0 || h <= 0 || w > 1 << 16 || h > 1 << 16 {
            return Err(Error::bad_input(
                path,
                format!("the .flo header gives an impossible size {w}x{h}; the file is corrupt"),
            ));
        }
        let (w, h) = (w as usize, h as usize);
        let need = 12 + w * h * 8;
        if bytes.len() != need {
            return Err(Error::bad_input(
                path,
                format!(
                    "a {w}x{h} .flo file has {need} bytes but this one has {}; it is truncated \
                     or corrupt",
                    bytes.len()
                ),
            ));
        }
        let mut u = Vec::with_capacity(w * h);
        let mut v = Vec::with_capacity(w * h);
        for k in 0..w * h {
            u.push(f32::from_le_bytes(word(12 + 8 * k)));
            v.push(f32::from_le_bytes(word(16 + 8 * k)));
        }
        Ok(FlowField {
            width: w,
            height: h,
            u,
            v,
        })
    }

    /// Reads a `.flo` file.
    pub fn read_flo(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_flo_bytes(&bytes, path)
    }

    /// Writes a `.flo` file atomically.
    pub fn write_flo(&self, path: &Path) -> Result<()> {
        crate::run::atomic_write(path, &self.to_flo_bytes())
    }

    /// Largest finite vector length (unknown vectors are skipped).
    pub fn max_magnitude(&self) -> f32 {
        self.u
            .iter()
            .zip(&self.v)
            .filter(|(u, v)| u.abs() < UNKNOWN && v.abs() < UNKNOWN)
            .map(|(u, v)| (u * u + v * v).sqrt())
            .filter(|m| m.is_finite())
            .fold(0.0, f32::max)
    }

    /// The standard colour-wheel rendering: hue is the direction, saturation the length relative
    /// to `max_magnitude` (the field's own largest vector when `None`); unknown vectors are
    /// black.
    pub fn to_color(&self, max_magnitude: Option<f32>) -> RgbaImage {
        let wheel = color_wheel();
        let maxm = max_magnitude
            .unwrap_or_else(|| self.max_magnitude())
            .max(1e-6);
        let mut img = RgbaImage::new(self.width as u32, self.height as u32);
        for (i, px) in img.pixels_mut().enumerate() {
            let (u, v) = (self.u[i], self.v[i]);
            if !(u.is_finite() && v.is_finite()) || u.abs() >= UNKNOWN || v.abs() >= UNKNOWN {
                *px = image::Rgba([0, 0, 0, 255]);
                continue;
            }
            let (u, v) = (u / maxm, v / maxm);
            let rad = (u * u + v * v).sqrt();
            let angle = (-v).atan2(-u) / std::f32::consts::PI; // -1..1
            let fk = (angle + 1.0) / 2.0 * (wheel.len() - 1) as f32;
            let k0 = (fk.floor() as usize).min(wheel.len() - 1);
            let k1 = (k0 + 1) % wheel.len();
            let f = fk - k0 as f32;
            let mut rgb = [0u8; 3];
            for c in 0..3 {
                let col = ((1.0 - f) * wheel[k0][c] + f * wheel[k1][c]) / 255.0;
                let col = if rad <= 1.0 {
                    1.0 - rad * (1.0 - col)
                } else {
                    col * 0.75
                };
                rgb[c] = (255.0 * col).round().clamp(0.0, 255.0) as u8;
            }
            *px = image::Rgba([rgb[0], rgb[1], rgb[2], 255]);
        }
        img
    }
}

/// The 55 hues of the Middlebury colour wheel: red→yellow (15), yellow→green (6), green→cyan
/// (4), cyan→blue (11), blue→magenta (13), magenta→red (6).
fn color_wheel() -> Vec<[f32; 3]> {
    let segments: [(usize, [f32; 3], [f32; 3]); 6] = [
        (15, [255.0, 0.0, 0.0], [255.0, 255.0, 0.0]),
        (6, [255.0, 255.0, 0.0], [0.0, 255.0, 0.0]),
        (4, [0.0, 255.0, 0.0], [0.0, 255.0, 255.0]),
        (11, [0.0, 255.0, 255.0], [0.0, 0.0, 255.0]),
        (13, [0.0, 0.0, 255.0], [255.0, 0.0, 255.0]),
        (6, [255.0, 0.0, 255.0], [255.0, 0.0, 0.0]),
    ];
    let mut out = Vec::with_capacity(55);
    for (n, from, to) in segments {
        for k in 0..n {
            let t = k as f32 / n as f32;
            out.push([
                (from[0] + (to[0] - from[0]) * t).floor(),
                (from[1] + (to[1] - from[1]) * t).floor(),
                (from[2] + (to[2] - from[2]) * t).floor(),
            ]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_has_55_hues_starting_red() {
        let w = color_wheel();
        assert_eq!(w.len(), 55);
        assert_eq!(w[0], [255.0, 0.0, 0.0]);
        assert_eq!(w[15], [255.0, 255.0, 0.0]);
    }

    #[test]
    fn zero_flow_is_white_and_rightward_is_reddish() {
        let f = FlowField::from_fn(2, 1, |x, _| if x == 0 { (0.0, 0.0) } else { (1.0, 0.0) });
        let img = f.to_color(Some(1.0));
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255, 255]);
        let p = img.get_pixel(1, 0).0;
        assert!(p[0] > 200 && p[2] < 80, "{p:?}");
    }
}
