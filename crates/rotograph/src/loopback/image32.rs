//! RGBA images in f32 (0..=255 scale): loopback blends in floating point and rounds once.

use image::{GrayImage, RgbaImage};

/// An RGBA image with f32 channels on the 0..=255 scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageF32 {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

impl ImageF32 {
    /// A black, transparent image.
    pub fn zeros(width: u32, height: u32) -> Self {
        ImageF32 {
            width,
            height,
            data: vec![0.0; width as usize * height as usize * 4],
        }
    }

    /// An image from row-major RGBA channels; `None` when the length does not match.
    pub fn from_raw(width: u32, height: u32, data: Vec<f32>) -> Option<Self> {
        (data.len() == width as usize * height as usize * 4).then_some(ImageF32 {
            width,
            height,
            data,
        })
    }

    /// The exact f32 values of 8-bit pixels.
    pub fn from_rgba(image: &RgbaImage) -> Self {
        ImageF32 {
            width: image.width(),
            height: image.height(),
            data: image.as_raw().iter().map(|&v| f32::from(v)).collect(),
        }
    }

    /// Rounds to 8 bits (to nearest, clamped); values that came from 8 bits round back exactly.
    pub fn to_rgba(&self) -> RgbaImage {
        let raw = self
            .data
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        RgbaImage::from_raw(self.width, self.height, raw)
            .unwrap_or_else(|| RgbaImage::new(self.width, self.height))
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The channels, row-major RGBA.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// `self += weight * other` (same size).
    pub fn add_scaled(&mut self, other: &ImageF32, weight: f32) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += weight * b;
        }
    }

    /// `self = (1 - alpha) * self + alpha * other` (same size).
    pub fn lerp_to(&mut self, other: &ImageF32, alpha: f32) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a = (1.0 - alpha) * *a + alpha * b;
        }
    }

    /// Copies `source`'s pixels where `mask` is 0 (keep), leaving the rest.
    pub fn keep_where_unmasked(&mut self, source: &ImageF32, mask: &GrayImage) {
        for ((px, src), m) in self
            .data
            .chunks_exact_mut(4)
            .zip(source.data.chunks_exact(4))
            .zip(mask.pixels())
        {
            if m[0] == 0 {
                px.copy_from_slice(src);
            }
        }
    }
}
