//! End-to-end tests of `--warp-init` and `--color-match` on `stylize`, `roto` and `loopback`.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;
use std::fs;
use std::path::Path;

const CLIP_ARGS: [&str; 6] = ["--max-frames", "5", "--size", "128x72", "--fps", "12"];

fn json_run(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    done_report(&o)
}

fn counts(r: &serde_json::Value) -> (u64, u64) {
    (
        r["rendered"].as_u64().unwrap(),
        r["skipped"].as_u64().unwrap(),
    )
}

#[test]
fn stylize_records_the_flags_resumes_and_rerenders_on_change() {
    let clip = common::sample_clip();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("styled");
    let go = |extra: &[&str]| {
        let mut args = vec!["stylize", s(&clip), "-o", s(&out)];
        args.extend_from_slice(&CLIP_ARGS);
        args.extend_from_slice(extra);
        counts(&json_run(&args))
    };
    let flags = ["--warp-init", "0.5", "--color-match", "first"];
    assert_eq!(go(&flags), (5, 0));
    let toml = fs::read_to_string(out.join("rotograph.toml")).unwrap();
    assert!(toml.contains("warp_init = 0.5"), "{toml}");
    assert!(toml.contains("color_match = \"first\""), "{toml}");
    assert_eq!(go(&flags), (0, 5), "same flags: nothing to do");
    let before = fs::read(out.join("00004.png")).unwrap();
    assert_eq!(
        go(&["--warp-init", "0.2", "--color-match", "first"]),
        (5, 0)
    );
    assert_ne!(fs::read(out.join("00004.png")).unwrap(), before);
    assert_eq!(
        go(&["--warp-init", "0.2", "--color-match", "source"]),
        (5, 0)
    );
    // The run's own settings file reproduces the run.
    let cfg = out.join("rotograph.toml");
    let r = json_run(&["stylize", "--config", s(&cfg), "-o", s(&out)]);
    assert_eq!(counts(&r), (0, 5));
}

#[test]
fn bad_values_name_the_setting() {
    let clip = common::sample_clip();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["stylize", s(&clip), "-o", s(&out), "--warp-init", "1.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("warp_init"), "{}", stderr(&o));
    let o = run(&["stylize", s(&clip), "-o", s(&out), "--color-match", "last"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("first"), "{}", stderr(&o));
}

fn frames_of(dir: &Path) -> usize {
    pngs(dir).len()
}

#[test]
fn roto_and_loopback_take_the_flags() {
    let clip = common::sample_clip();
    let d = tempfile::tempdir().unwrap();
    let video = d.path().join("out.mp4");
    let mut args = vec!["roto", s(&clip), "-o", s(&video), "--warp-init", "0.6"];
    args.extend_from_slice(&CLIP_ARGS);
    args.extend_from_slice(&["--color-match", "source"]);
    let r = json_run(&args);
    assert_eq!(r["stylize"]["rendered"].as_u64(), Some(5), "{r}");
    assert!(fs::metadata(&video).unwrap().len() > 0);
    // Without a run folder (frames stream into the encoder) warp init works the same way.
    let streamed = d.path().join("streamed.mp4");
    let mut args = vec!["roto", s(&clip), "-o", s(&streamed), "--warp-init", "0.6"];
    args.extend_from_slice(&CLIP_ARGS);
    args.push("--no-keep-frames");
    let r = json_run(&args);
    assert_eq!(r["stylize"]["rendered"].as_u64(), Some(5), "{r}");
    assert!(fs::metadata(&streamed).unwrap().len() > 0);

    let lb = d.path().join("loop");
    let mut args = vec!["loopback", s(&clip), "-o", s(&lb), "--loop-n", "2"];
    args.extend_from_slice(&CLIP_ARGS);
    args.extend_from_slice(&["--warp-init", "0.6", "--color-match", "first"]);
    let r = json_run(&args);
    assert_eq!(counts(&r), (10, 0));
    assert_eq!(frames_of(&lb), 5);
    let again = json_run(&args);
    assert_eq!(counts(&again), (0, 10), "same flags resume");
}
