//! RGB float planes and their 2x2-box pyramids for the synthesis.

use image::{Rgba, RgbaImage};

/// An interleaved RGB image in 0..=255 floats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plane {
    pub width: usize,
    pub height: usize,
    /// `width * height * 3` values, row-major.
    pub data: Vec<f32>,
}

impl Plane {
    /// A black plane.
    pub fn zeros(width: usize, height: usize) -> Self {
        Plane {
            width,
            height,
            data: vec![0.0; width * height * 3],
        }
    }

    /// The RGB channels of an image.
    pub fn from_rgb(img: &RgbaImage) -> Self {
        let data = img
            .pixels()
            .flat_map(|p| [p.0[0] as f32, p.0[1] as f32, p.0[2] as f32])
            .collect();
        Plane {
            width: img.width() as usize,
            height: img.height() as usize,
            data,
        }
    }

    /// Rounds back to an opaque 8-bit image.
    pub fn to_rgba(&self) -> RgbaImage {
        let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        RgbaImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let i = (y as usize * self.width + x as usize) * 3;
            Rgba([
                q(self.data[i]),
                q(self.data[i + 1]),
                q(self.data[i + 2]),
                255,
            ])
        })
    }

    /// Half the size (rounded up) by averaging 2x2 blocks; odd edges repeat the last pixel.
    fn half(&self) -> Plane {
        let (w, h) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let mut out = Plane::zeros(w, h);
        for y in 0..h {
            let y0 = 2 * y;
            let y1 = (2 * y + 1).min(self.height - 1);
            for x in 0..w {
                let x0 = 2 * x;
                let x1 = (2 * x + 1).min(self.width - 1);
                for c in 0..3 {
                    let at = |xx: usize, yy: usize| self.data[(yy * self.width + xx) * 3 + c];
                    out.data[(y * w + x) * 3 + c] =
                        0.25 * (at(x0, y0) + at(x1, y0) + at(x0, y1) + at(x1, y1));
                }
            }
        }
        out
    }
}

/// Level 0 is `base`; each next level is half the previous one.
pub(crate) fn build(base: &Plane, levels: usize) -> Vec<Plane> {
    let mut out = vec![base.clone()];
    while out.len() < levels.max(1) {
        let next = out.last().expect("non-empty").half();
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_up_and_average() {
        let img = RgbaImage::from_fn(5, 3, |x, y| Rgba([(x * 10 + y) as u8, 0, 0, 255]));
        let pyr = build(&Plane::from_rgb(&img), 3);
        assert_eq!((pyr[1].width, pyr[1].height), (3, 2));
        assert_eq!((pyr[2].width, pyr[2].height), (2, 1));
        // Block (0,0): values 0, 10, 1, 11.
        assert_eq!(pyr[1].data[0], 5.5);
        assert_eq!(Plane::from_rgb(&img).to_rgba(), img);
    }
}
