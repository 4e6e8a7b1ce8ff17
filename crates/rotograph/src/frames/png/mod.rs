//! rotograph's own PNG encoder for frames: lossless, standard 8-bit RGB or RGBA PNGs, written
//! 2.5-3x faster than the `png` crate's fastest compressing mode (BENCHMARKS.md, "Kept-frame
//! PNG encoder"), because a run keeps every stylized frame as a PNG.
//!
//! The approach follows the published descriptions of fpng and fpnge (fixed cheap filter, one
//! Huffman code from statistics, runs as distance-1 matches); the code is ours:
//!
//! - **Filter**: Paeth on every row but the first (Sub), on the RGB (or RGBA) bytes, the
//!   RGBA → RGB packing done per row into a small buffer just before filtering.
//! - **Deflate**: one dynamic-Huffman block. Its literal/length code comes from a histogram of
//!   about 24 evenly spaced filtered rows (every 30th of a 720p frame; at least every 32nd row;
//!   every symbol gets a code, so unsampled rows always code), limited
//!   to 12 bits by package-merge so that two literals share one table lookup. Runs of bytes
//!   equal to their predecessor (flat areas: zero residuals) become matches at distance 1. When
//!   the sample says Huffman coding would not beat storing (noise), the rows go out unfiltered
//!   in stored blocks.
//! - **Container**: zlib (RFC 1950, Adler-32 through `simd-adler32`) in one IDAT chunk
//!   (CRC-32 through `crc32fast`).
//!
//! The whole row loop is also compiled for AVX2 + BMI2 and picked at run time; both builds give
//! the same bytes.

mod deflate;
mod huffman;

use crate::error::{Error, Result};
use deflate::{tokenize, BitWriter, Code, Encoder, Histogram};
use image::RgbaImage;

/// About this many rows are sampled for the Huffman statistics...
const SAMPLE_ROWS: usize = 24;
/// ...but at least every this many rows.
const MAX_SAMPLE_STEP: usize = 32;
/// Largest stored deflate block.
const MAX_STORED: usize = 65_535;
/// IDAT chunks hold at most this many bytes (PNG allows 2^31 - 1).
const MAX_CHUNK: usize = 1 << 30;
/// The PNG signature.
const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Encodes `image` as a PNG: colour type 6 (RGBA) when `has_alpha`, else colour type 2 (RGB,
/// alpha dropped); 8 bits a channel, not interlaced. Errors only for an empty image or one
/// wider or higher than PNG allows (2^31 - 1).
pub fn encode(image: &RgbaImage, has_alpha: bool) -> Result<Vec<u8>> {
    encode_with(image, has_alpha, Isa::detect())
}

/// Which build of the row loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Baseline code for any CPU.
    Portable,
    /// The same code compiled for AVX2 and BMI2 (x86-64; falls back to portable elsewhere or
    /// when the CPU lacks them).
    Avx2,
}

impl Isa {
    /// The best build for this CPU.
    pub(crate) fn detect() -> Isa {
        if avx2_available() {
            Isa::Avx2
        } else {
            Isa::Portable
        }
    }
}

/// Whether the CPU runs the AVX2 build.
pub(crate) fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// [`encode`] with the build of the row loop chosen.
pub(crate) fn encode_with(image: &RgbaImage, has_alpha: bool, isa: Isa) -> Result<Vec<u8>> {
    let (w, h) = image.dimensions();
    let limit = i32::MAX as u32;
    if w == 0 || h == 0 || w > limit || h > limit {
        return Err(Error::bad_input(
            "<png>",
            format!(
                "cannot write a {w}x{h} frame as PNG (1 to {limit} pixels a side); \
                 check the frame size settings"
            ),
        ));
    }
    let bpp = if has_alpha { 4 } else { 3 };
    let raw_len = (w as usize * bpp + 1) * h as usize;
    // Photos code to about half their raw size; more only for noise (stored, raw size).
    let mut out = Vec::with_capacity(raw_len * 5 / 8 + 4096);
    out.extend_from_slice(&SIGNATURE);
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&w.to_be_bytes());
    ihdr[4..8].copy_from_slice(&h.to_be_bytes());
    // Bit depth 8, colour type, compression 0, filter method 0, no interlace.
    ihdr[8] = 8;
    ihdr[9] = if has_alpha { 6 } else { 2 };
    write_chunk(&mut out, b"IHDR", &ihdr);

    // IDAT: its length is patched in once the zlib stream is written in place.
    let idat = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(b"IDAT");
    // zlib header: deflate with a 32 KiB window, "fastest" level, no dictionary
    // (0x7801 is a multiple of 31).
    out.extend_from_slice(&[0x78, 0x01]);
    let (mut out, adler) = deflate(image, has_alpha, out, isa);
    out.extend_from_slice(&adler.to_be_bytes());
    finish_idat(&mut out, idat);
    write_chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Appends one chunk: length, type, data, CRC-32 of type and data.
fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Completes the IDAT chunk begun at `start` (length placeholder, type, then the zlib stream
/// to the end of `out`): patches the length and appends the CRC, or splits the stream into
/// several IDAT chunks when it is longer than [`MAX_CHUNK`].
fn finish_idat(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start - 8;
    if len <= MAX_CHUNK {
        out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        let crc = crc32fast::hash(&out[start + 4..]);
        out.extend_from_slice(&crc.to_be_bytes());
    } else {
        let stream = out.split_off(start + 8);
        out.truncate(start);
        for part in stream.chunks(MAX_CHUNK) {
            write_chunk(out, b"IDAT", part);
        }
    }
}

/// Appends the deflate stream of the filtered image to `out`; returns it and the Adler-32 of
/// the uncompressed (filtered) data.
fn deflate(image: &RgbaImage, has_alpha: bool, out: Vec<u8>, isa: Isa) -> (Vec<u8>, u32) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw().as_slice();
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 && avx2_available() {
        // SAFETY: the CPU supports AVX2 and BMI2, checked just above.
        return unsafe {
            if has_alpha {
                deflate_avx2::<4>(raw, w, h, out)
            } else {
                deflate_avx2::<3>(raw, w, h, out)
            }
        };
    }
    let _ = isa;
    if has_alpha {
        deflate_rows::<4>(raw, w, h, out)
    } else {
        deflate_rows::<3>(raw, w, h, out)
    }
}

/// [`deflate_rows`] compiled for AVX2 and BMI2 (the filters vectorize 32 bytes wide; the bit
/// writer's variable shifts become single instructions).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2")]
unsafe fn deflate_avx2<const BPP: usize>(
    raw: &[u8],
    w: usize,
    h: usize,
    out: Vec<u8>,
) -> (Vec<u8>, u32) {
    deflate_rows::<BPP>(raw, w, h, out)
}

/// The row loop: sample rows for the statistics, then filter, checksum and code every row
/// (or store them all when coding would not pay).
#[inline(always)]
fn deflate_rows<const BPP: usize>(raw: &[u8], w: usize, h: usize, out: Vec<u8>) -> (Vec<u8>, u32) {
    let len = w * BPP + 1;
    let mut rows = Rows::<BPP>::new(raw, w);
    // The byte before the row in the stream, the filtered row, 8 spare bytes for word reads.
    let mut buf = vec![0u8; len + 9];
    let mut hist = Histogram::new();
    for y in (0..h).step_by((h / SAMPLE_ROWS).clamp(1, MAX_SAMPLE_STEP)) {
        rows.filter(y, false, &mut buf[1..=len]);
        buf[0] = !buf[1];
        tokenize(&buf, len + 1, &mut hist);
    }
    let code = Code::new(&hist);
    let total = (len * h) as u64;
    let scale = total as f64 / hist.bytes.max(1) as f64;
    let stored_bits = 8 * (total + 5 * total.div_ceil(MAX_STORED as u64));
    if code.estimate_bits(&hist, scale) >= stored_bits as f64 {
        return stored::<BPP>(raw, w, h, out);
    }
    let tables = code.tables();
    let mut writer = BitWriter::new(out);
    code.write_header(&mut writer);
    let mut enc = Encoder::new(writer, &tables);
    let mut adler = simd_adler32::Adler32::new();
    for y in 0..h {
        // Row y - 1 was the previous call, so its packed pixels are at hand.
        rows.filter(y, true, &mut buf[1..=len]);
        if y == 0 {
            // Nothing comes before the first row: no run may start at its first byte.
            buf[0] = !buf[1];
        }
        adler.write(&buf[1..=len]);
        enc.row(&buf, len + 1);
        buf[0] = buf[len];
    }
    (enc.finish(), adler.finish())
}

/// Stored blocks of the unfiltered rows (filter type 0), for data that coding would not shrink.
fn stored<const BPP: usize>(raw: &[u8], w: usize, h: usize, mut out: Vec<u8>) -> (Vec<u8>, u32) {
    let len = w * BPP + 1;
    let mut data = vec![0u8; len * h];
    for (y, row) in data.chunks_exact_mut(len).enumerate() {
        let src = source_row(raw, w, y);
        if BPP == 4 {
            row[1..].copy_from_slice(src);
        } else {
            pack_rgb(src, &mut row[1..]);
        }
    }
    let mut adler = simd_adler32::Adler32::new();
    adler.write(&data);
    let blocks = data.len().div_ceil(MAX_STORED);
    out.reserve(data.len() + 5 * blocks);
    for (k, block) in data.chunks(MAX_STORED).enumerate() {
        // BFINAL on the last block, BTYPE 0; the header byte's other bits pad to the byte.
        out.push(u8::from(k + 1 == blocks));
        let n = block.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(block);
    }
    (out, adler.finish())
}

/// The RGBA bytes of row `y` of an image `w` pixels wide.
#[inline(always)]
fn source_row(raw: &[u8], w: usize, y: usize) -> &[u8] {
    &raw[y * w * 4..(y + 1) * w * 4]
}

/// Filters rows of an RGBA image into PNG scanlines of `BPP` bytes a pixel (3: alpha dropped).
struct Rows<'a, const BPP: usize> {
    raw: &'a [u8],
    w: usize,
    /// RGB bytes of the previous row filtered (`BPP` 3 only).
    prev: Vec<u8>,
    /// RGB bytes of the current row (`BPP` 3 only).
    cur: Vec<u8>,
}

impl<'a, const BPP: usize> Rows<'a, BPP> {
    fn new(raw: &'a [u8], w: usize) -> Self {
        let packed = if BPP == 3 { w * 3 } else { 0 };
        Rows {
            raw,
            w,
            prev: vec![0; packed],
            cur: vec![0; packed],
        }
    }

    /// Writes row `y` as a scanline into `out` (filter type, then `w·BPP` residuals): Sub for
    /// the first row, Paeth for the others. `up_at_hand`: the previous call filtered row
    /// `y - 1`.
    #[inline(always)]
    fn filter(&mut self, y: usize, up_at_hand: bool, out: &mut [u8]) {
        let (kind, data) = out.split_at_mut(1);
        kind[0] = if y == 0 { 1 } else { 4 };
        let row = source_row(self.raw, self.w, y);
        if BPP == 4 {
            if y == 0 {
                filter_sub::<4>(row, data);
            } else {
                filter_paeth::<4>(row, source_row(self.raw, self.w, y - 1), data);
            }
            return;
        }
        if y > 0 && !up_at_hand {
            pack_rgb(source_row(self.raw, self.w, y - 1), &mut self.prev);
        }
        pack_rgb(row, &mut self.cur);
        if y == 0 {
            filter_sub::<3>(&self.cur, data);
        } else {
            filter_paeth::<3>(&self.cur, &self.prev, data);
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
    }
}

/// Packs RGBA bytes to RGB, four pixels (16 → 12 bytes) at a time through 64-bit words (a
/// byte-shuffle formulation measured no faster).
#[inline(always)]
pub(crate) fn pack_rgb(src: &[u8], dst: &mut [u8]) {
    let mut src16 = src.chunks_exact(16);
    let mut dst12 = dst.chunks_exact_mut(12);
    for (s, d) in (&mut src16).zip(&mut dst12) {
        let a = deflate::word(s, 0);
        let b = deflate::word(s, 8);
        // Two pixels' RGB in the low 6 bytes of each word.
        let lo = (a & 0xFF_FFFF) | (a >> 8 & 0xFFFF_FF00_0000);
        let hi = (b & 0xFF_FFFF) | (b >> 8 & 0xFFFF_FF00_0000);
        d[..8].copy_from_slice(&(lo | hi << 48).to_le_bytes());
        d[8..].copy_from_slice(&((hi >> 16) as u32).to_le_bytes());
    }
    let rest = src16.remainder().chunks_exact(4);
    for (s, d) in rest.zip(dst12.into_remainder().chunks_exact_mut(3)) {
        d.copy_from_slice(&s[..3]);
    }
}

/// PNG filter 1 (Sub): each byte minus the byte `BPP` before it.
#[inline(always)]
fn filter_sub<const BPP: usize>(cur: &[u8], out: &mut [u8]) {
    out[..BPP].copy_from_slice(&cur[..BPP]);
    for ((o, &x), &a) in out[BPP..].iter_mut().zip(&cur[BPP..]).zip(cur) {
        *o = x.wrapping_sub(a);
    }
}

/// PNG filter 4 (Paeth) of `cur` with the row above `up`.
#[inline(always)]
fn filter_paeth<const BPP: usize>(cur: &[u8], up: &[u8], out: &mut [u8]) {
    // No left neighbour: the predictor is the byte above.
    for i in 0..BPP {
        out[i] = cur[i].wrapping_sub(up[i]);
    }
    let lefts = cur.iter().zip(up);
    for ((o, (&x, &b)), (&a, &c)) in out[BPP..]
        .iter_mut()
        .zip(cur[BPP..].iter().zip(&up[BPP..]))
        .zip(lefts)
    {
        *o = x.wrapping_sub(paeth(a, b, c));
    }
}

/// The Paeth predictor (PNG spec, 9.4) of left `a`, above `b`, upper left `c`, in byte
/// arithmetic without branches, so that it vectorizes 32 lanes wide (the 16-bit formulation
/// measured 0.1-0.2 ms a 720p frame slower): with `pa = |b - c|` and `pb = |a - c|`,
/// `pc = |(b - c) + (a - c)|` is `pa + pb` when the two differences have the same sign, else
/// `|pa - pb|`; saturating the sum at 255 changes no comparison, as `pc` then exceeds both.
#[inline(always)]
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let pa = b.max(c) - b.min(c);
    let pb = a.max(c) - a.min(c);
    let same = (b >= c) == (a >= c);
    let pc = if same {
        pa.saturating_add(pb)
    } else {
        pa.max(pb) - pa.min(pb)
    };
    let use_b = pb <= pc;
    let not_a = if use_b { b } else { c };
    if (pa <= pb) & (pa <= pc) {
        a
    } else {
        not_a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic test image: smooth areas, edges, noise, and varying alpha.
    fn test_image(w: u32, h: u32, seed: u32) -> RgbaImage {
        let mut state = seed.wrapping_mul(2_654_435_761) | 1;
        RgbaImage::from_fn(w, h, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state >> 24) as u8 & 0x0f;
            let flat = (x / 7 + y / 5) % 3 == 0;
            let r = if flat { 200 } else { (x * 3 + y) as u8 ^ noise };
            image::Rgba([r, (y * 2) as u8, (x ^ y) as u8, (x + 3 * y) as u8])
        })
    }

    #[test]
    fn avx2_and_portable_builds_give_identical_bytes() {
        if !avx2_available() {
            eprintln!("SKIP: this CPU has no AVX2/BMI2; only the portable build runs");
            return;
        }
        for (w, h) in [
            (1, 1),
            (1, 9),
            (9, 1),
            (13, 7),
            (64, 33),
            (321, 45),
            (640, 200),
        ] {
            let img = test_image(w, h, w * 31 + h);
            for alpha in [false, true] {
                let a = encode_with(&img, alpha, Isa::Portable).unwrap();
                let b = encode_with(&img, alpha, Isa::Avx2).unwrap();
                assert_eq!(a, b, "{w}x{h} alpha {alpha}");
                if w == 640 {
                    // Signature, IHDR, IDAT length and type, zlib header: then the first
                    // block, which must be Huffman-coded here (not the stored fallback).
                    assert_eq!(a[43] >> 1 & 3, 2, "dynamic block");
                }
            }
        }
    }

    #[test]
    fn pack_rgb_drops_alpha() {
        for w in [1usize, 3, 4, 5, 8, 13] {
            let src: Vec<u8> = (0..w * 4).map(|i| i as u8).collect();
            let mut dst = vec![0; w * 3];
            pack_rgb(&src, &mut dst);
            let want: Vec<u8> = src.chunks_exact(4).flat_map(|p| p[..3].to_vec()).collect();
            assert_eq!(dst, want, "width {w}");
        }
    }

    #[test]
    fn paeth_matches_the_spec_definition() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    // PNG spec, 9.4, literally.
                    let p = i32::from(a) + i32::from(b) - i32::from(c);
                    let (pa, pb, pc) = (
                        (p - i32::from(a)).abs(),
                        (p - i32::from(b)).abs(),
                        (p - i32::from(c)).abs(),
                    );
                    let want = if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    };
                    assert_eq!(paeth(a, b, c), want);
                }
            }
        }
    }

    #[test]
    fn empty_images_are_an_error() {
        let e = encode(&RgbaImage::new(0, 5), false).unwrap_err();
        assert!(e.to_string().contains("0x5"), "{e}");
    }
}
