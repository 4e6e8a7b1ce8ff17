//! Regenerates the README stills in `docs/img/` (before | after, side by side, 640 px wide):
//! `cargo run --release -p rotograph --example toon_stills [-- OUT_DIR]`.
//!
//! Sources: scikit-image sample photos from `../shared/media/photos` (`ROTOGRAPH_SHARED`
//! overrides where `shared/` is) and a frame of the bundled `samples/bigbuckbunny-4s.mp4`
//! (needs ffmpeg). Stills whose source is missing are skipped with a note.
use image::imageops::{self, FilterType};
use image::{RgbImage, RgbaImage};
use rotograph::stylize::toon::{Style, Toon};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Width of each finished still (two panels).
const WIDTH: u32 = 640;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// `before | after`, each panel scaled to half of [`WIDTH`].
fn side_by_side(before: &RgbaImage, after: &RgbaImage) -> RgbImage {
    let pw = WIDTH / 2;
    let ph = ((before.height() as f64 * pw as f64 / before.width() as f64).round() as u32).max(1);
    let a = imageops::resize(before, pw, ph, FilterType::Lanczos3);
    let b = imageops::resize(after, pw, ph, FilterType::Lanczos3);
    RgbImage::from_fn(WIDTH, ph, |x, y| {
        let p = if x < pw {
            a.get_pixel(x, y)
        } else {
            b.get_pixel(x - pw, y)
        };
        image::Rgb([p[0], p[1], p[2]])
    })
}

fn sample_frame(dir: &Path) -> Result<RgbaImage, String> {
    let clip = workspace_root().join("samples/bigbuckbunny-4s.mp4");
    let png = dir.join("bbb.png");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-vf", "select=eq(n\\,60)", "-frames:v", "1"])
        .arg(&png)
        .status()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !status.success() {
        return Err(format!("ffmpeg could not read {}", clip.display()));
    }
    image::open(&png)
        .map(|i| i.to_rgba8())
        .map_err(|e| e.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = workspace_root();
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("docs/img"));
    std::fs::create_dir_all(&out_dir)?;
    let shared = std::env::var_os("ROTOGRAPH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    let photos = shared.join("media/photos");

    let stills: [(&str, &str, Style); 4] = [
        ("toon-astronaut.png", "skimage_astronaut.png", Style::Toon),
        ("ink-astronaut.png", "skimage_astronaut.png", Style::Ink),
        (
            "posterize-chelsea.png",
            "skimage_chelsea.png",
            Style::Posterize,
        ),
        ("toon-coffee.png", "skimage_coffee.png", Style::Toon),
    ];
    for (name, src, style) in stills {
        let path = photos.join(src);
        let Ok(img) = image::open(&path) else {
            eprintln!("skip {name}: cannot read {}", path.display());
            continue;
        };
        let img = img.to_rgba8();
        let out = Toon::new(style, 1).apply(&img, 0.75);
        side_by_side(&img, &out).save(out_dir.join(name))?;
        println!("wrote {}", out_dir.join(name).display());
    }

    let tmp = tempfile::tempdir()?;
    match sample_frame(tmp.path()) {
        Ok(frame) => {
            for (name, style) in [
                ("toon-bigbuckbunny.png", Style::Toon),
                ("posterize-bigbuckbunny.png", Style::Posterize),
            ] {
                let out = Toon::new(style, 1).apply(&frame, 0.75);
                side_by_side(&frame, &out).save(out_dir.join(name))?;
                println!("wrote {}", out_dir.join(name).display());
            }
        }
        Err(e) => eprintln!("skip the sample-clip stills: {e}"),
    }
    Ok(())
}
