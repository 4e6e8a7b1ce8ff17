//! rotograph's PNG encoder (`frames::png`): every image round-trips pixel-exact through the
//! `png` crate's decoder (via `image`) and through ffmpeg's, with valid chunk CRCs, on real and
//! generated images; the stored fallback and the run coding show in the stream.

#[path = "common/mod.rs"]
mod common;

use image::{Rgba, RgbaImage};
use rotograph::frames::png::encode;
use std::io::Write;
use std::process::{Command, Stdio};

/// CRC-32 (PNG's, ISO 3309), bit by bit: an independent check of the encoder's chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The chunks of a PNG as (type, data), checking the signature and every CRC.
fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "signature");
    let mut out = Vec::new();
    let mut at = 8;
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
        let data = &png[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(
            crc,
            crc32(&png[at + 4..at + 8 + len]),
            "CRC of {}",
            String::from_utf8_lossy(&kind)
        );
        out.push((kind, data.to_vec()));
        at += 12 + len;
    }
    assert_eq!(out.last().map(|c| &c.0), Some(b"IEND"), "ends with IEND");
    out
}

/// The block type (0 stored, 1 fixed, 2 dynamic) of the first deflate block.
fn first_block_type(png: &[u8]) -> u8 {
    let idat: Vec<u8> = chunks(png)
        .into_iter()
        .filter(|c| &c.0 == b"IDAT")
        .flat_map(|c| c.1)
        .collect();
    assert_eq!(idat[0] & 0x0f, 8, "zlib: deflate");
    assert_eq!((u16::from(idat[0]) << 8 | u16::from(idat[1])) % 31, 0);
    (idat[2] >> 1) & 3
}

/// The RGBA bytes a decoder must give back: alpha forced to 255 without alpha.
fn expected(img: &RgbaImage, alpha: bool) -> Vec<u8> {
    let mut want = img.as_raw().clone();
    if !alpha {
        want.iter_mut().skip(3).step_by(4).for_each(|a| *a = 255);
    }
    want
}

/// Decodes with ffmpeg to raw RGBA, or `None` (with a message) when ffmpeg is missing.
fn ffmpeg_rgba(png: &[u8]) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(png)
        .unwrap();
    let out = match Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIP: ffmpeg not found; only the png crate decoder checked");
            return None;
        }
        Err(e) => panic!("running ffmpeg: {e}"),
    };
    assert!(
        out.status.success(),
        "ffmpeg rejects the PNG: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// Encodes `img` both ways and checks both decoders give back its pixels; returns the PNG
/// bytes of the opaque and the alpha encoding.
fn round_trip(name: &str, img: &RgbaImage) -> [Vec<u8>; 2] {
    [false, true].map(|alpha| {
        let png = encode(img, alpha).unwrap();
        chunks(&png);
        let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{name} (alpha {alpha}): png crate rejects it: {e}"));
        let colour = if alpha {
            image::ColorType::Rgba8
        } else {
            image::ColorType::Rgb8
        };
        assert_eq!(decoded.color(), colour, "{name}");
        let want = expected(img, alpha);
        assert!(
            decoded.to_rgba8().as_raw() == &want,
            "{name} (alpha {alpha}): png crate decodes other pixels"
        );
        if let Some(raw) = ffmpeg_rgba(&png) {
            assert!(
                raw == want,
                "{name} (alpha {alpha}): ffmpeg decodes other pixels"
            );
        }
        png
    })
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(w: u32, h: u32, seed: u64) -> RgbaImage {
    let mut s = seed | 1;
    let bytes = (0..w * h * 4)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect();
    RgbaImage::from_raw(w, h, bytes).unwrap()
}

fn gradient(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([
            (x * 255 / w.max(2)) as u8,
            (y * 255 / h.max(2)) as u8,
            ((x + y) / 3) as u8,
            255,
        ])
    })
}

#[test]
fn real_photo_round_trips_and_is_huffman_coded() {
    let path = shared_or_skip!("media/photos/skimage_coffee.png");
    let img = image::open(path).unwrap().to_rgba8();
    let [rgb, _] = round_trip("coffee", &img);
    assert_eq!(
        first_block_type(&rgb),
        2,
        "a photo gets a dynamic Huffman block"
    );
    let raw = img.as_raw().len() / 4 * 3;
    assert!(rgb.len() < raw * 3 / 4, "{} of {raw} bytes", rgb.len());
}

#[test]
fn tiny_and_odd_sizes_round_trip() {
    for (w, h) in [
        (1, 1),
        (1, 40),
        (40, 1),
        (2, 2),
        (3, 5),
        (37, 23),
        (101, 3),
        (255, 9),
    ] {
        round_trip(&format!("gradient {w}x{h}"), &gradient(w, h));
        round_trip(
            &format!("noise {w}x{h}"),
            &noise(w, h, u64::from(w * 1000 + h)),
        );
    }
}

#[test]
fn flat_colour_compresses_to_runs() {
    let img = RgbaImage::from_pixel(640, 360, Rgba([30, 140, 200, 255]));
    let [rgb, rgba] = round_trip("flat", &img);
    assert_eq!(first_block_type(&rgb), 2);
    // 360 rows of 1921 bytes: runs of 258 at distance 1 cost a few bits each.
    assert!(rgb.len() < 4000, "{} bytes", rgb.len());
    assert!(rgba.len() < 4000, "{} bytes", rgba.len());
}

#[test]
fn noise_falls_back_to_stored_blocks() {
    let img = noise(300, 250, 7);
    let [rgb, rgba] = round_trip("noise", &img);
    for (png, bpp) in [(rgb, 3usize), (rgba, 4)] {
        assert_eq!(first_block_type(&png), 0, "stored");
        let raw = (300 * bpp + 1) * 250;
        // Raw rows plus 5 bytes a 64 KiB block, zlib, chunks.
        assert!(
            png.len() <= raw + 5 * raw.div_ceil(65535) + 100,
            "{}",
            png.len()
        );
    }
}

#[test]
fn varying_alpha_round_trips() {
    let img = RgbaImage::from_fn(77, 51, |x, y| {
        Rgba([
            (x * 3) as u8,
            (y * 5) as u8,
            ((x * y) % 256) as u8,
            ((x + 2 * y) * 2 % 256) as u8,
        ])
    });
    let [_, rgba] = round_trip("alpha", &img);
    assert_eq!(&chunks(&rgba)[0].1[8..10], &[8, 6], "8-bit RGBA");
}

#[test]
fn gradient_round_trips() {
    let [rgb, _] = round_trip("gradient", &gradient(1280, 720));
    assert_eq!(first_block_type(&rgb), 2);
    assert_eq!(&chunks(&rgb)[0].1[8..10], &[8, 2], "8-bit RGB");
}

#[test]
fn frames_written_by_write_png_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let img = gradient(64, 48);
    for alpha in [false, true] {
        let frame = rotograph::Frame {
            image: img.clone(),
            has_alpha: alpha,
        };
        let path = dir.path().join(format!("{alpha}.png"));
        rotograph::frames::write_png(&path, &frame).unwrap();
        let back = rotograph::frames::read_frame(&path).unwrap();
        assert_eq!(back, frame);
    }
}
