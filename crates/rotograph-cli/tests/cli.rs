//! End-to-end tests of the `rotograph` binary on the bundled sample clip, real media from
//! `../shared/media` and generated clips.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.starts_with('.'))
        .collect()
}

/// A frame folder of `n` frames extracted from a real clip (or the bundled sample).
fn real_frames(dir: &Path, n: usize, fps: &str) -> PathBuf {
    let clip = common::shared("media/video/cockatoo.mp4").unwrap_or_else(common::sample_clip);
    let out = dir.join("frames");
    let o = run(&[
        "extract",
        s(&clip),
        "-o",
        s(&out),
        "--fps",
        fps,
        "--max-frames",
        &n.to_string(),
    ]);
    assert!(o.status.success(), "extract failed: {}", stderr(&o));
    assert_eq!(pngs(&out).len(), n);
    out
}

#[test]
fn roto_on_the_sample_keeps_audio_and_timing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toon.mp4");
    let o = run(&[
        "roto",
        s(&common::sample_clip()),
        "-o",
        s(&out),
        "--fps",
        "6",
        "--duration",
        "2",
    ]);
    assert!(o.status.success(), "roto failed: {}", stderr(&o));
    assert_eq!(common::count_frames(&out), 12);
    let v = common::stream_duration(&out, "v").expect("video stream");
    let a = common::stream_duration(&out, "a").expect("the source audio survives roto");
    assert!((v - 2.0).abs() < 0.2, "video lasts {v}");
    assert!((a - v).abs() < 0.15, "audio {a} vs video {v}");
    // The run folder is kept beside the output, with its settings.
    let work = dir.path().join("toon.rotograph");
    assert_eq!(pngs(&work).len(), 12);
    assert!(work.join("rotograph.toml").is_file());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn roto_exposure_sheet_uses_only_this_runs_frames() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("held.mp4");
    let sample = common::sample_clip();
    let roto = |extra: &[&str]| {
        let mut args = vec![
            "roto",
            s(&sample),
            "-o",
            s(&out),
            "--fps",
            "6",
            "--backend",
            "none",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // An earlier, longer run leaves 12 frames in the work dir.
    let o = roto(&["--duration", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // This run makes 6: an exposure sheet may use those 6 and no more.
    let o = roto(&["--duration", "1", "--exposure", "1-6, 6x2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not produce"),
        "stale frames are reported"
    );
    assert_eq!(common::count_frames(&out), 8);
    let o = roto(&["--duration", "1", "--exposure", "1-7"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("only 6 frames"), "{}", stderr(&o));
}

#[test]
fn rerun_renders_nothing_and_changed_denoise_rerenders() {
    let dir = tempfile::tempdir().unwrap();
    let frames = real_frames(dir.path(), 6, "4");
    let out = dir.path().join("styled");
    let go = |extra: &[&str]| {
        let mut args = vec!["--json", "stylize", s(&frames), "-o", s(&out)];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = done_report(&o);
        (
            r["rendered"].as_u64().unwrap(),
            r["skipped"].as_u64().unwrap(),
        )
    };
    assert_eq!(go(&[]), (6, 0));
    let before = fs::read(out.join("00003.png")).unwrap();
    assert_eq!(go(&[]), (0, 6), "unchanged settings render nothing");
    assert_eq!(
        go(&["--denoise", "0.3"]),
        (6, 0),
        "changed denoise re-renders"
    );
    assert_ne!(fs::read(out.join("00003.png")).unwrap(), before);
    // Reading the run's own settings back gives the same settings: nothing to do.
    let cfg = out.join("rotograph.toml");
    let o = run(&["--json", "stylize", "--config", s(&cfg), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["rendered"], 0);
}

/// Runs the binary with `args`, SIGKILLs it once `dir` holds 4 PNGs, and returns how many it
/// holds then (asserted to be mid-run, out of `total`).
fn kill_after_four_frames(args: &[String], dir: &Path, total: usize) -> usize {
    let mut child = bin().args(args).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while (!dir.exists() || pngs(dir).len() < 4) && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = pngs(dir).len();
    assert!(
        (4..total).contains(&partial),
        "the kill must land mid-run ({partial} of {total} frames done)"
    );
    partial
}

/// Asserts that two folders hold the same PNG files, byte for byte.
fn assert_same_pngs(a: &Path, b: &Path) {
    let (a, b) = (pngs(a), pngs(b));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name());
        assert!(
            fs::read(x).unwrap() == fs::read(y).unwrap(),
            "{} differs",
            y.display()
        );
    }
}

#[test]
fn sigkill_then_rerun_gives_the_uninterrupted_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frames = real_frames(dir.path(), 40, "10");
    let clean = dir.path().join("clean");
    let o = run(&["stylize", s(&frames), "-o", s(&clean), "--jobs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let killed = dir.path().join("killed");
    let args = ["stylize", s(&frames), "-o", s(&killed), "--jobs", "1"].map(String::from);
    let partial = kill_after_four_frames(&args, &killed, 40);

    let o = run(&[
        "--json",
        "stylize",
        s(&frames),
        "-o",
        s(&killed),
        "--jobs",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = done_report(&o);
    assert!(
        r["skipped"].as_u64().unwrap() >= (partial - 1) as u64,
        "{r}"
    );
    assert_same_pngs(&clean, &killed);
    assert!(leftovers(&killed).is_empty(), "{:?}", leftovers(&killed));
}

#[test]
fn roto_sigkill_then_rerun_gives_the_uninterrupted_frames_and_video() {
    // roto hands each frame to the encoder first and writes its PNG after, on a writer thread:
    // a kill in between must still leave only whole, recorded frames, and the re-run the same
    // frames and video as an uninterrupted run.
    let dir = tempfile::tempdir().unwrap();
    let sample = common::sample_clip();
    let args = |out: &Path| -> Vec<String> {
        [
            "roto",
            s(&sample),
            "-o",
            s(out),
            "--fps",
            "10",
            "--jobs",
            "1",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let clean = dir.path().join("clean.mp4");
    let o = run(&args(&clean).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));

    let killed = dir.path().join("killed.mp4");
    let work = dir.path().join("killed.rotograph");
    let partial = kill_after_four_frames(&args(&killed), &work, 40);
    for p in pngs(&work) {
        image::open(&p).unwrap_or_else(|e| panic!("{} is not a whole PNG: {e}", p.display()));
    }

    let mut again = vec!["--json".to_string()];
    again.extend(args(&killed));
    let o = run(&again.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let r = done_report(&o);
    assert!(
        r["stylize"]["skipped"].as_u64().unwrap() >= (partial - 1) as u64,
        "{r}"
    );
    let clean_work = dir.path().join("clean.rotograph");
    assert_eq!(pngs(&clean_work).len(), 40);
    assert_same_pngs(&clean_work, &work);
    assert!(leftovers(&work).is_empty(), "{:?}", leftovers(&work));
    assert_eq!(decoded_md5(&clean), decoded_md5(&killed));
}

#[test]
fn sigint_finishes_the_frame_in_flight_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let frames = real_frames(dir.path(), 30, "10");
    let out = dir.path().join("out");
    let child = bin()
        .args(["stylize", s(&frames), "-o", s(&out), "--jobs", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while (!out.exists() || pngs(&out).len() < 3) && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let done = pngs(&out);
    assert!(done.len() < 30, "stopped early");
    for p in &done {
        image::open(p).unwrap_or_else(|e| panic!("{} is not a whole PNG: {e}", p.display()));
    }
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    let o = run(&["stylize", s(&frames), "-o", s(&out), "--jobs", "1"]);
    assert!(o.status.success());
    assert_eq!(pngs(&out).len(), 30);
}

#[test]
fn second_sigint_exits_at_once_without_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let frames = real_frames(dir.path(), 30, "10");
    let out = dir.path().join("out");
    let child = bin()
        .args(["stylize", s(&frames), "-o", s(&out), "--jobs", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while (!out.exists() || pngs(&out).is_empty()) && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    for _ in 0..2 {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    for p in pngs(&out) {
        image::open(&p).unwrap_or_else(|e| panic!("{} is not a whole PNG: {e}", p.display()));
    }
}

fn assert_bad_input(o: &Output, names: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "exit code of: {err}");
    assert!(err.contains(names), "`{names}` not named in: {err}");
}

#[test]
fn bad_inputs_exit_2_and_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");

    // A corrupt video.
    let fake = d.join("holiday.mp4");
    fs::write(&fake, b"this is not a video at all").unwrap();
    for cmd in ["stylize", "roto", "extract"] {
        let o = run(&[cmd, s(&fake), "-o", s(&d.join("x.mp4"))]);
        assert_bad_input(&o, "holiday.mp4");
    }

    // Frame folders: a non-image file, an unreadable image, mixed sizes.
    let frames = real_frames(d, 3, "4");
    fs::write(frames.join("notes.txt"), "shot list").unwrap();
    assert_bad_input(&run(&["stylize", s(&frames), "-o", s(&out)]), "notes.txt");
    fs::remove_file(frames.join("notes.txt")).unwrap();

    let bytes = fs::read(frames.join("00002.png")).unwrap();
    fs::write(frames.join("00002.png"), &bytes[..bytes.len() / 3]).unwrap();
    assert_bad_input(&run(&["stylize", s(&frames), "-o", s(&out)]), "00002.png");
    fs::write(frames.join("00002.png"), &bytes).unwrap();

    image::RgbImage::new(64, 48)
        .save(frames.join("00004.png"))
        .unwrap();
    let o = run(&["stylize", s(&frames), "-o", s(&out)]);
    assert_bad_input(&o, "00004.png");
    assert!(stderr(&o).contains("--allow-mixed-sizes"), "{}", stderr(&o));
    let o = run(&["stylize", s(&frames), "-o", s(&out), "--allow-mixed-sizes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pngs(&out).len(), 4);

    // Masks of the wrong size.
    let masks = d.join("masks");
    fs::create_dir(&masks).unwrap();
    for i in 1..=4 {
        image::GrayImage::new(10, 10)
            .save(masks.join(format!("{i:05}.png")))
            .unwrap();
    }
    let o = run(&[
        "stylize",
        s(&frames),
        "-o",
        s(&d.join("masked")),
        "--allow-mixed-sizes",
        "--mask-dir",
        s(&masks),
    ]);
    assert_bad_input(&o, "00001.png");

    let o = run(&[
        "stylize",
        s(&frames),
        "-o",
        s(&out),
        "--mask-dir",
        s(&d.join("nomasks")),
    ]);
    assert_bad_input(&o, "nomasks");
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    // Malformed settings.
    let o = run(&[
        "encode",
        s(&frames),
        "-o",
        s(&d.join("a.mp4")),
        "--exposure",
        "1-3, x4",
    ]);
    assert_bad_input(&o, "column");
    let o = run(&["encode", s(&frames), "-o", s(&d.join("a.xyz"))]);
    assert_bad_input(&o, "xyz");
    let o = run(&["stylize", s(&frames), "-o", s(&out), "--denoise", "1.5"]);
    assert_bad_input(&o, "denoise");
    let o = run(&["stylize", s(&frames), "-o", s(&out), "--size", "big"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["stylize", s(&d.join("nowhere")), "-o", s(&out)]);
    assert_bad_input(&o, "nowhere");
    let cfg = d.join("bad.toml");
    fs::write(&cfg, "denoize = 0.4\n").unwrap();
    let o = run(&["stylize", s(&frames), "-o", s(&out), "--config", s(&cfg)]);
    assert_bad_input(&o, "denoize");
}

#[test]
fn progress_is_plain_lines_off_a_terminal_and_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let frames = real_frames(dir.path(), 3, "4");
    let o = run(&["stylize", s(&frames), "-o", s(&dir.path().join("a"))]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(err.contains("stylize: 3 frames"), "{err}");
    assert!(err.contains("3/3 frames"), "{err}");

    let o = run(&[
        "--json",
        "stylize",
        s(&frames),
        "-o",
        s(&dir.path().join("b")),
    ]);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect();
    let frames_seen = events.iter().filter(|e| e["event"] == "frame").count();
    assert_eq!(frames_seen, 3);
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["total"], 3);

    let o = run(&[
        "--quiet",
        "stylize",
        s(&frames),
        "-o",
        s(&dir.path().join("c")),
    ]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty() && o.stdout.is_empty());
}

#[test]
fn extract_then_encode_round_trip_on_a_real_clip() {
    let Some(clip) = common::shared("media/video/bikes.mp4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f");
    let o = run(&[
        "extract",
        s(&clip),
        "-o",
        s(&frames),
        "--fps",
        "10",
        "--duration",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pngs(&frames).len(), 30);
    let out = dir.path().join("b.mp4");
    let o = run(&["encode", s(&frames), "-o", s(&out), "--fps", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(common::count_frames(&out), 30);
    let v = common::stream_duration(&out, "v").unwrap();
    assert!((v - 3.0).abs() <= 0.1, "{v}");
    // On twos: every frame held twice.
    let out2 = dir.path().join("twos.mp4");
    let o = run(&[
        "encode",
        s(&frames),
        "-o",
        s(&out2),
        "--fps",
        "10",
        "--on",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(common::count_frames(&out2), 60);
}

/// `n` small frames (96x64) of a real clip (or the bundled sample), for loopback's many renders.
fn small_frames(dir: &Path, n: usize) -> PathBuf {
    let clip = common::shared("media/video/cockatoo.mp4").unwrap_or_else(common::sample_clip);
    let out = dir.join("small");
    let o = run(&[
        "extract",
        s(&clip),
        "-o",
        s(&out),
        "--fps",
        "6",
        "--size",
        "96x64",
        "--max-frames",
        &n.to_string(),
    ]);
    assert!(o.status.success(), "extract failed: {}", stderr(&o));
    out
}

fn pixels(p: &Path) -> image::RgbaImage {
    image::open(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .to_rgba8()
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Runs `loopback FRAMES -o OUT EXTRA` with `--json` and returns (rendered, skipped).
fn loopback(frames: &Path, out: &Path, extra: &[&str]) -> (u64, u64) {
    let mut args = vec!["--json", "loopback", s(frames), "-o", s(out)];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = done_report(&o);
    (
        r["rendered"].as_u64().unwrap(),
        r["skipped"].as_u64().unwrap(),
    )
}

#[test]
fn loopback_one_loop_at_full_alpha_equals_stylize() {
    let dir = tempfile::tempdir().unwrap();
    let frames = small_frames(dir.path(), 3);
    let (lb, st) = (dir.path().join("lb"), dir.path().join("st"));
    let common = ["--seed", "4", "--denoise", "0.6"];
    let mut extra = vec!["--loop-n", "1", "--superimpose-alpha", "1"];
    extra.extend_from_slice(&common);
    assert_eq!(loopback(&frames, &lb, &extra), (3, 0));
    let mut args = vec!["stylize", s(&frames), "-o", s(&st)];
    args.extend_from_slice(&common);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        names(&pngs(&lb)),
        names(&pngs(&frames)),
        "named like the inputs"
    );
    for (a, b) in pngs(&lb).iter().zip(pngs(&st)) {
        assert_eq!(pixels(a), pixels(&b), "{}", a.display());
    }
    assert_ne!(
        pixels(&lb.join("00002.png")),
        pixels(&frames.join("00002.png"))
    );
}

#[test]
fn loopback_resumes_only_with_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let frames = small_frames(dir.path(), 3);
    let out = dir.path().join("out");
    let base = [
        "--loop-n",
        "3",
        "--seed",
        "2",
        "--temporal-superimpose-alpha-list",
        "1,2,1",
    ];
    let with = |alpha: &'static str| {
        let mut v = base.to_vec();
        v.extend_from_slice(&["--superimpose-alpha", alpha]);
        v
    };
    assert_eq!(loopback(&frames, &out, &with("0.5")), (9, 0));
    let first = pixels(&out.join("00003.png"));
    assert_eq!(
        loopback(&frames, &out, &with("0.5")),
        (0, 9),
        "rerun renders nothing"
    );
    assert_eq!(pixels(&out.join("00003.png")), first);
    assert_eq!(
        loopback(&frames, &out, &with("0.8")),
        (9, 0),
        "a changed superimpose_alpha re-renders every loop"
    );
    let changed = pixels(&out.join("00003.png"));
    assert_ne!(changed, first);
    // The run's own settings file reads back to the same settings: nothing to do.
    let cfg = out.join("rotograph.toml");
    let o = run(&["--json", "loopback", "--config", s(&cfg), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["rendered"], 0);
    // Interrupted work resumes per loop and frame. With --save-every-loop the store keeps
    // every loop, so a frame of the last loop can go missing while its inputs stay.
    let mut every = with("0.8");
    every.push("--save-every-loop");
    assert_eq!(loopback(&frames, &out, &every), (9, 0));
    let store = out.join(".loopback-store");
    fs::remove_file(store.join("loop-03").join("00003.f32")).unwrap();
    assert_eq!(loopback(&frames, &out, &every), (1, 8));
    assert_eq!(
        pixels(&out.join("00003.png")),
        changed,
        "resumed = uninterrupted"
    );
    // A switch given `=false` turns off what the config file turned on.
    let toml = fs::read_to_string(&cfg).unwrap();
    assert!(toml.contains("save_every_loop = true"), "{toml}");
    let o = run(&[
        "--json",
        "loopback",
        "--config",
        s(&cfg),
        "-o",
        s(&out),
        "--save-every-loop=false",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = fs::read_to_string(&cfg).unwrap();
    assert!(toml.contains("save_every_loop = false"), "{toml}");
}

#[test]
fn loopback_bad_schedule_exits_2_before_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let frames = small_frames(dir.path(), 3);
    let out = dir.path().join("out");
    let o = run(&[
        "loopback",
        s(&frames),
        "-o",
        s(&out),
        "--denoising-schedule",
        "max(0.1, 0.4-0.02*loop_i",
    ]);
    assert_bad_input(&o, "denoising_schedule");
    assert!(stderr(&o).contains("column 25"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written for a malformed schedule");
    // An error only the last frame hits is still found before any frame renders.
    let o = run(&[
        "loopback",
        s(&frames),
        "-o",
        s(&out),
        "--superimpose-alpha",
        "1 / (image_n - image_i)",
    ]);
    assert_bad_input(&o, "superimpose_alpha");
    assert!(!out.exists() || pngs(&out).is_empty(), "no frame rendered");
    let o = run(&["loopback", s(&frames.join("00001.png")), "-o", s(&out)]);
    assert_bad_input(&o, "max_frames");
}

#[test]
fn loopback_save_every_loop_writes_each_loop_and_video() {
    let dir = tempfile::tempdir().unwrap();
    let frames = small_frames(dir.path(), 3);
    let out = dir.path().join("out");
    let args = [
        "--loop-n",
        "3",
        "--superimpose-alpha",
        "0.5",
        "--seed",
        "1",
        "--save-every-loop",
        "--output-frame-rate",
        "6",
    ];
    assert_eq!(loopback(&frames, &out, &args), (9, 0));
    for k in 1..=3 {
        let d = out.join(format!("loop-{k}"));
        assert_eq!(names(&pngs(&d)), names(&pngs(&frames)), "loop {k}");
    }
    let f = "00002.png";
    assert_eq!(pixels(&out.join("loop-3").join(f)), pixels(&out.join(f)));
    assert_ne!(pixels(&out.join("loop-1").join(f)), pixels(&out.join(f)));
    for v in ["loopback.mp4", "loopback-loop-1.mp4", "loopback-loop-2.mp4"] {
        assert!(fs::metadata(out.join(v)).unwrap().len() > 0, "{v}");
    }
    // A single image repeated --max-frames times.
    let single = dir.path().join("single");
    let o = run(&[
        "--json",
        "loopback",
        s(&frames.join("00001.png")),
        "-o",
        s(&single),
        "--max-frames",
        "4",
        "--loop-n",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pngs(&single).len(), 4);
}

/// md5 of a video's decoded frames (ffmpeg's `md5` muxer).
fn decoded_md5(video: &Path) -> String {
    let o = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-nostdin",
            "-i",
            s(video),
            "-map",
            "0:v",
            "-f",
            "md5",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn roto_without_kept_frames_makes_the_same_video_and_no_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sample = common::sample_clip();
    let roto = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "roto",
            s(&sample),
            "-o",
            s(&out),
            "--fps",
            "6",
            "--duration",
            "2",
        ];
        args.extend_from_slice(extra);
        (run(&args), out)
    };
    let (o, kept) = roto("kept.mp4", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (o, streamed) = roto("streamed.mp4", &["--no-keep-frames"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("frames not kept"), "{}", stderr(&o));
    assert!(!dir.path().join("streamed.rotograph").exists());
    assert!(dir.path().join("kept.rotograph").is_dir());
    assert_eq!(common::count_frames(&streamed), 12);
    assert!(
        common::stream_duration(&streamed, "a").is_some(),
        "audio survives"
    );
    assert_eq!(decoded_md5(&kept), decoded_md5(&streamed));
    // An exposure sheet needs the kept frames.
    let (o, _) = roto("held.mp4", &["--no-keep-frames", "--exposure", "1-6, 6x2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("keep_frames"), "{}", stderr(&o));
    assert!(!dir.path().join("held.mp4").exists());
}
