//! Frame folders: natural-order listing, validation, and a [`FrameSource`] over them.

use super::{fit_frame, fitted_size, read_frame, Fit, Frame, FrameInfo, FrameSource};
use crate::error::{Error, Result};
use image::ImageDecoder;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Options for reading a folder of frames.
#[derive(Debug, Clone, Default)]
pub struct FolderOptions {
    /// Fit frames of other sizes to the first frame's size (or `size`) instead of failing.
    pub allow_mixed_sizes: bool,
    /// Target size; `None` keeps the first frame's size.
    pub size: Option<(u32, u32)>,
    /// How frames are fitted to the target size.
    pub fit: Fit,
    /// Round the target size to this multiple (None: keep as is).
    pub multiple: Option<u32>,
    /// Read at most this many frames.
    pub max_frames: Option<usize>,
}

/// True for files rotograph itself keeps in a run folder (settings, manifest, temp files), which
/// frame listings skip.
pub fn is_run_file(name: &str) -> bool {
    name.starts_with('.') || name == "rotograph.toml" || name == crate::run::MANIFEST_NAME
}

/// Image extensions accepted in frame folders (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Compares names in natural order: runs of digits compare as numbers (`2` < `10`, `a9` < `a10`),
/// other text compares case-insensitively; ties fall back to a plain comparison so the order is
/// total and deterministic.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        match (x.chars().next(), y.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(cx), Some(cy)) => {
                if cx.is_ascii_digit() && cy.is_ascii_digit() {
                    let dx = digit_run(x);
                    let dy = digit_run(y);
                    let (nx, ny) = (dx.trim_start_matches('0'), dy.trim_start_matches('0'));
                    let ord = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
                    if ord != Ordering::Equal {
                        return ord;
                    }
                    x = &x[dx.len()..];
                    y = &y[dy.len()..];
                } else {
                    let ord = cx.to_lowercase().cmp(cy.to_lowercase());
                    if ord != Ordering::Equal {
                        return ord;
                    }
                    x = &x[cx.len_utf8()..];
                    y = &y[cy.len_utf8()..];
                }
            }
        }
    }
}

fn digit_run(s: &str) -> &str {
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// Lists the image files (PNG, JPEG, WebP) of a folder in natural order (`2.png` before
/// `10.png`). A file that is not an image is an error naming it; run files and sub-folders are
/// skipped.
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::bad_input(
                dir,
                "no such folder; give a folder of frames (PNG, JPEG or WebP)",
            ))
        }
        Err(_) if dir.is_file() => {
            return Err(Error::bad_input(
                dir,
                "is a file, not a folder of frames; give the folder that holds the frames",
            ))
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_run_file(&name) {
            continue;
        }
        let path = entry.path();
        // Follow symbolic links: a link to a folder is a folder.
        if fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            continue;
        }
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext {
            Some(ext) if IMAGE_EXTENSIONS.contains(&ext.as_str()) => files.push((name, path)),
            _ => {
                return Err(Error::bad_input(
                    &path,
                    format!(
                        "`{name}` is not a frame image (a frame folder may hold only PNG, JPEG or \
                         WebP files); remove it or move it out of {}",
                        dir.display()
                    ),
                ))
            }
        }
    }
    if files.is_empty() {
        return Err(Error::bad_input(
            dir,
            "the folder holds no frames (PNG, JPEG or WebP); check the path or extract frames first",
        ));
    }
    files.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Reads an image's size and whether its pixel format has alpha, without decoding the pixels.
/// Errors name the file.
pub fn image_header(path: &Path) -> Result<((u32, u32), bool)> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::bad_input(
            path,
            format!("cannot read image ({e}); replace or remove the file"),
        )
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let decoder = reader.into_decoder().map_err(|e| unreadable(&e))?;
    Ok((decoder.dimensions(), decoder.color_type().has_alpha()))
}

/// The output name of an input frame: its stem + `.png`.
fn output_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "frame".into());
    format!("{stem}.png")
}

/// A [`FrameSource`] over a folder of images.
pub struct FolderSource {
    files: Vec<PathBuf>,
    /// Size of the first frame (all frames have it unless mixed sizes are allowed).
    first_size: (u32, u32),
    /// Size of the delivered frames.
    target: (u32, u32),
    fit: Fit,
    allow_mixed_sizes: bool,
    next: usize,
}

impl FolderSource {
    /// Lists and validates the folder (every file an image, all one size unless
    /// `allow_mixed_sizes`). Frames are decoded lazily.
    pub fn open(dir: &Path, opts: &FolderOptions) -> Result<Self> {
        let mut files = list_frames(dir)?;
        if let Some(max) = opts.max_frames {
            files.truncate(max);
        }
        if let Some(m) = opts.multiple {
            if m == 0 {
                return Err(Error::setting(
                    "multiple",
                    "must be at least 1 (e.g. 8 or 64)",
                ));
            }
        }
        // Two inputs with one stem (a.png, a.jpg) would write one output.
        let mut names: HashMap<String, &Path> = HashMap::new();
        for f in &files {
            if let Some(other) = names.insert(output_name(f), f) {
                return Err(Error::bad_input(
                    f,
                    format!(
                        "has the same name as {} apart from the extension, so both would be \
                         written as {}; rename or remove one",
                        other.display(),
                        output_name(f)
                    ),
                ));
            }
        }
        let mut first_size = (0, 0);
        for (i, f) in files.iter().enumerate() {
            let (size, _) = image_header(f)?;
            if i == 0 {
                first_size = size;
                if size.0 == 0 || size.1 == 0 {
                    return Err(Error::bad_input(f, "the image is empty (0 pixels)"));
                }
            } else if size != first_size && !opts.allow_mixed_sizes {
                return Err(mixed_size_error(f, size, &files[0], first_size));
            }
        }
        let target = fitted_size(first_size, opts.size, opts.multiple.unwrap_or(1));
        Ok(FolderSource {
            files,
            first_size,
            target,
            fit: opts.fit,
            allow_mixed_sizes: opts.allow_mixed_sizes,
            next: 0,
        })
    }
}

fn mixed_size_error(file: &Path, size: (u32, u32), first: &Path, expected: (u32, u32)) -> Error {
    Error::bad_input(
        file,
        format!(
            "is {}x{} but the first frame ({}) is {}x{}; make all frames one size, or pass \
             --allow-mixed-sizes to fit each frame to the first one's size",
            size.0,
            size.1,
            first
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            expected.0,
            expected.1
        ),
    )
}

impl FrameSource for FolderSource {
    fn len_hint(&self) -> Option<usize> {
        Some(self.files.len())
    }

    fn frame_size(&self) -> (u32, u32) {
        self.target
    }

    fn next_frame(&mut self) -> Result<Option<(FrameInfo, Frame)>> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let index = self.next;
        let frame = read_frame(path)?;
        let size = frame.size();
        if size != self.first_size && !self.allow_mixed_sizes {
            // The file changed since the folder was opened.
            return Err(mixed_size_error(
                path,
                size,
                &self.files[0],
                self.first_size,
            ));
        }
        let frame = if size == self.target {
            frame
        } else {
            fit_frame(&frame, self.target.0, self.target.1, self.fit)
        };
        self.next += 1;
        let info = FrameInfo {
            index,
            name: output_name(path),
            time: None,
        };
        Ok(Some((info, frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    fn names(dir: &Path) -> Vec<String> {
        list_frames(dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn write(dir: &Path, name: &str, w: u32, h: u32, alpha: bool) {
        let img = RgbaImage::from_pixel(w, h, Rgba([10, 20, 30, if alpha { 7 } else { 255 }]));
        let frame = Frame {
            image: img,
            has_alpha: alpha,
        };
        crate::frames::write_png(&dir.join(name), &frame).unwrap();
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "10.png", "2.png", "a10.png", "a9.png", "B1.png", "01.png", "1.png",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["01.png", "1.png", "2.png", "10.png", "a9.png", "a10.png", "B1.png"]
        );
        assert_eq!(natural_cmp("frame2", "frame10"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn listing_skips_run_files_and_folders_and_rejects_others() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "10.png", 4, 4, false);
        write(d.path(), "2.PNG", 4, 4, false);
        fs::write(d.path().join("3.JPEG"), b"x").unwrap();
        fs::write(d.path().join("rotograph.toml"), b"").unwrap();
        fs::write(d.path().join(crate::run::MANIFEST_NAME), b"").unwrap();
        fs::write(d.path().join(".hidden"), b"").unwrap();
        fs::create_dir(d.path().join("sub.png")).unwrap();
        assert_eq!(names(d.path()), ["2.PNG", "3.JPEG", "10.png"]);
        fs::write(d.path().join("notes.txt"), b"hello").unwrap();
        let e = list_frames(d.path()).unwrap_err();
        assert!(
            matches!(&e, Error::BadInput { path, .. } if path.ends_with("notes.txt")),
            "{e}"
        );
        assert!(e.to_string().contains("remove it"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            list_frames(empty.path()),
            Err(Error::BadInput { .. })
        ));
        assert!(matches!(
            list_frames(&empty.path().join("nope")),
            Err(Error::BadInput { .. })
        ));
    }

    #[test]
    fn source_names_sizes_and_alpha() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "f2.png", 6, 4, true);
        write(d.path(), "f10.png", 6, 4, false);
        let mut src = FolderSource::open(d.path(), &FolderOptions::default()).unwrap();
        assert_eq!(src.len_hint(), Some(2));
        assert_eq!(src.frame_size(), (6, 4));
        let (i0, f0) = src.next_frame().unwrap().unwrap();
        assert_eq!((i0.index, i0.name.as_str(), i0.time), (0, "f2.png", None));
        assert!(f0.has_alpha);
        assert_eq!(f0.image.get_pixel(0, 0)[3], 7);
        let (i1, f1) = src.next_frame().unwrap().unwrap();
        assert_eq!((i1.index, i1.name.as_str()), (1, "f10.png"));
        assert!(!f1.has_alpha);
        assert!(src.next_frame().unwrap().is_none());
    }

    #[test]
    fn mixed_sizes_fail_or_fit() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "1.png", 8, 8, false);
        write(d.path(), "2.png", 8, 8, false);
        write(d.path(), "3.png", 16, 4, false);
        let e = FolderSource::open(d.path(), &FolderOptions::default())
            .err()
            .unwrap();
        let msg = e.to_string();
        assert!(matches!(&e, Error::BadInput { path, .. } if path.ends_with("3.png")));
        assert!(msg.contains("16x4") && msg.contains("8x8"), "{msg}");
        assert!(msg.contains("--allow-mixed-sizes"), "{msg}");
        let opts = FolderOptions {
            allow_mixed_sizes: true,
            size: Some((12, 12)),
            multiple: Some(8),
            max_frames: Some(3),
            ..Default::default()
        };
        let mut src = FolderSource::open(d.path(), &opts).unwrap();
        assert_eq!(src.frame_size(), (16, 16));
        let mut n = 0;
        while let Some((_, f)) = src.next_frame().unwrap() {
            assert_eq!(f.size(), (16, 16));
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn same_stem_twice_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.png", 4, 4, false);
        image::RgbImage::new(4, 4)
            .save(d.path().join("a.jpg"))
            .unwrap();
        let e = FolderSource::open(d.path(), &FolderOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, Error::BadInput { .. }), "{e}");
    }
}
