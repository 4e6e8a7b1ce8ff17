//! Helpers shared by the `rotograph` binary's end-to-end test files: running the binary and
//! reading what it wrote and printed. (Each test file uses a subset.)
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `rotograph` binary under test, with stdin closed.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rotograph"));
    c.stdin(Stdio::null());
    c
}

/// Runs `rotograph ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("rotograph runs")
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The PNG files of `dir`, sorted.
pub fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    v
}

/// What the run printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `report` of the final `done` JSON event of a `--json` run.
pub fn done_report(o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout);
    let last = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "done")
        .unwrap_or_else(|| panic!("no done event in {text}\nstderr: {}", stderr(o)));
    last["report"].clone()
}
