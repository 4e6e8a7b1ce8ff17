//! Run folders: atomic writes, the manifest of finished frames, and the keys that decide whether a
//! frame must be rendered again.
//!
//! A run folder holds the outputs, `rotograph.toml` (the effective settings) and
//! `rotograph-manifest.jsonl`: one JSON line per finished frame with the key of the input and
//! settings that made it. A frame is done when its line's key matches and its file is present
//! with the recorded size. Lines are appended only after the frame's file was renamed into
//! place, so a crash can lose at most a record (the frame is rendered again), never leave a
//! partial frame that counts as done.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

/// File name of the settings file in a run folder.
pub const SETTINGS_NAME: &str = "rotograph.toml";
/// File name of the manifest in a run folder.
pub const MANIFEST_NAME: &str = "rotograph-manifest.jsonl";
/// Suffix of temporary files; such files left by a killed run are removed when a run starts.
pub const TEMP_SUFFIX: &str = ".rotograph.tmp";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
static PENDING: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
/// Held shared while a small file is written and renamed; [`remove_pending_temps`] takes it
/// exclusively (and keeps it), so no write can re-create a temp file it has just deleted.
static WRITE_GATE: RwLock<()> = RwLock::new(());

fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}{TEMP_SUFFIX}", std::process::id()))
}

/// A temporary file beside its destination; [`TempFile::commit`] renames it into place and a
/// drop without commit removes it. It is registered so that [`remove_pending_temps`] can delete it
/// when the process must exit at once (second Ctrl-C).
#[derive(Debug)]
pub struct TempFile {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Reserves a temp path beside `dest` (creating `dest`'s folder).
    pub fn new(dest: &Path) -> Result<Self> {
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let temp = temp_path_for(dest);
        PENDING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(temp.clone());
        Ok(TempFile {
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// The temporary path to write to. Its extension is not the destination's: tools that pick a
    /// format from the extension (ffmpeg) must be told the format explicitly.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the temp file onto the destination.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.temp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.committed = true;
        unregister(&self.temp);
        Ok(())
    }
}

fn unregister(p: &Path) {
    if let Some(set) = PENDING.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        set.remove(p);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
            unregister(&self.temp);
        }
    }
}

/// Deletes every temp file still being written, for an immediate exit: call it, then exit. Writes
/// in progress finish first (their files are renamed whole); later writes block.
pub fn remove_pending_temps() {
    let gate = WRITE_GATE.write().unwrap_or_else(|e| e.into_inner());
    std::mem::forget(gate);
    let set = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take();
    for p in set.into_iter().flatten() {
        let _ = fs::remove_file(p);
    }
}

/// Writes `bytes` to `path` atomically: a temp file beside it, then a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let _gate = WRITE_GATE.read().unwrap_or_else(|e| e.into_inner());
    let tmp = TempFile::new(path)?;
    fs::write(tmp.path(), bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.commit()
}

/// Removes temp files that a killed run left in `dir` (not recursive). Returns how many.
pub fn clean_stale_temps(dir: &Path) -> Result<usize> {
    let mut n = 0;
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            n += 1;
        } else if entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            && name.starts_with("batch-")
        {
            n += clean_stale_temps(&entry.path())?;
        }
    }
    Ok(n)
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Output file name, relative to the run folder.
    pub name: String,
    /// Key of the input and settings that made it.
    pub key: String,
    /// Size of the output file in bytes.
    pub bytes: u64,
}

/// The manifest of finished frames of a run folder.
#[derive(Debug)]
pub struct Manifest {
    path: PathBuf,
    entries: HashMap<String, ManifestEntry>,
    file: Option<File>,
}

impl Manifest {
    /// Loads `dir`'s manifest (an absent one is empty). Lines that do not parse (a line cut by a
    /// crash) are ignored; the file is rewritten compactly when it holds stale lines.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_NAME);
        let mut entries = HashMap::new();
        let mut lines = 0usize;
        match File::open(&path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(|e| Error::io(&path, e))?;
                    lines += 1;
                    if let Ok(e) = serde_json::from_str::<ManifestEntry>(&line) {
                        entries.insert(e.name.clone(), e);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        let m = Manifest {
            path,
            entries,
            file: None,
        };
        if lines > m.entries.len() {
            m.rewrite()?;
        }
        Ok(m)
    }

    fn rewrite(&self) -> Result<()> {
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        let mut text = String::new();
        for n in names {
            text.push_str(&serde_json::to_string(&self.entries[n]).expect("entry serializes"));
            text.push('\n');
        }
        atomic_write(&self.path, text.as_bytes())
    }

    /// The entry for an output name.
    pub fn get(&self, name: &str) -> Option<&ManifestEntry> {
        self.entries.get(name)
    }

    /// Number of recorded frames.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a finished output (already renamed into place) by appending a line.
    pub fn record(&mut self, entry: ManifestEntry) -> Result<()> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io(&self.path, e))?;
            self.file = Some(f);
        }
        let mut line = serde_json::to_string(&entry).expect("entry serializes");
        line.push('\n');
        let f = self.file.as_mut().expect("opened above");
        f.write_all(line.as_bytes())
            .map_err(|e| Error::io(&self.path, e))?;
        self.entries.insert(entry.name.clone(), entry);
        Ok(())
    }
}

/// An output folder with its settings file and manifest.
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    manifest: Mutex<Manifest>,
}

impl RunFolder {
    /// Opens (creating) a run folder: removes stale temp files, loads the manifest and writes the
    /// effective settings (`settings_toml`) atomically.
    pub fn open(dir: &Path, settings_toml: &str) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::bad_input(
                dir,
                "the output must be a folder, but a file of that name exists; choose another -o",
            ));
        }
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        clean_stale_temps(dir)?;
        let manifest = Manifest::load(dir)?;
        atomic_write(&dir.join(SETTINGS_NAME), settings_toml.as_bytes())?;
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            manifest: Mutex::new(manifest),
        })
    }

    /// Reads the settings file an earlier run left in `dir`, if any.
    pub fn previous_settings(dir: &Path) -> Option<String> {
        fs::read_to_string(dir.join(SETTINGS_NAME)).ok()
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when `name` was finished with `key` and its file is still there, unchanged in size.
    pub fn is_done(&self, name: &str, key: &str) -> bool {
        let m = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(name) {
            Some(e) if e.key == key => fs::metadata(self.dir.join(name))
                .map(|md| md.is_file() && md.len() == e.bytes)
                .unwrap_or(false),
            _ => false,
        }
    }

    /// Writes an output file atomically and records it as done with `key`.
    pub fn commit(&self, name: &str, key: &str, bytes: &[u8]) -> Result<()> {
        atomic_write(&self.dir.join(name), bytes)?;
        let mut m = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        m.record(ManifestEntry {
            name: name.to_string(),
            key: key.to_string(),
            bytes: bytes.len() as u64,
        })
    }

    /// Number of finished outputs recorded.
    pub fn finished(&self) -> usize {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// Hashes arbitrary bytes to a hex key.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The key of one frame: the settings hash, the input pixels and the mask pixels.
pub fn frame_key(
    settings_hash: &str,
    input: &image::RgbaImage,
    mask: Option<&image::GrayImage>,
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(settings_hash.as_bytes());
    h.update(&input.width().to_le_bytes());
    h.update(&input.height().to_le_bytes());
    h.update(input.as_raw());
    if let Some(m) = mask {
        h.update(b"mask");
        h.update(&m.width().to_le_bytes());
        h.update(m.as_raw());
    }
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.png");
        atomic_write(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_temp_is_removed_and_stale_ones_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let t = TempFile::new(&d.path().join("x.png")).unwrap();
        fs::write(t.path(), b"partial").unwrap();
        let tp = t.path().to_path_buf();
        drop(t);
        assert!(!tp.exists());
        fs::write(d.path().join(format!(".x.png.1-1{TEMP_SUFFIX}")), b"stale").unwrap();
        fs::write(d.path().join("keep.png"), b"k").unwrap();
        assert_eq!(clean_stale_temps(d.path()).unwrap(), 1);
        assert!(d.path().join("keep.png").exists());
    }

    #[test]
    fn manifest_survives_a_cut_line_and_checks_files() {
        let d = tempfile::tempdir().unwrap();
        {
            let run = RunFolder::open(d.path(), "a = 1\n").unwrap();
            run.commit("00001.png", "k1", b"abc").unwrap();
            run.commit("00002.png", "k2", b"defg").unwrap();
            assert!(run.is_done("00001.png", "k1"));
            assert!(!run.is_done("00001.png", "other"));
        }
        // A crash in the middle of a line.
        let mp = d.path().join(MANIFEST_NAME);
        let mut text = fs::read_to_string(&mp).unwrap();
        text.push_str("{\"name\":\"00003.png\",\"ke");
        fs::write(&mp, text).unwrap();
        // A frame changed behind our back is not done.
        fs::write(d.path().join("00002.png"), b"xx").unwrap();
        let run = RunFolder::open(d.path(), "a = 1\n").unwrap();
        assert!(run.is_done("00001.png", "k1"));
        assert!(!run.is_done("00002.png", "k2"));
        assert!(!run.is_done("00003.png", "k3"));
        assert_eq!(
            fs::read_to_string(&mp).unwrap().lines().count(),
            2,
            "manifest compacted"
        );
    }

    #[test]
    fn frame_key_depends_on_everything() {
        let a = image::RgbaImage::new(2, 2);
        let mut b = a.clone();
        b.put_pixel(0, 0, image::Rgba([1, 0, 0, 0]));
        let m = image::GrayImage::new(2, 2);
        let k = frame_key("s", &a, None);
        assert_ne!(k, frame_key("t", &a, None));
        assert_ne!(k, frame_key("s", &b, None));
        assert_ne!(k, frame_key("s", &a, Some(&m)));
        assert_eq!(k, frame_key("s", &a, None));
    }
}
