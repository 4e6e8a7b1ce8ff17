//! End-to-end tests of `rotograph check` on the bundled sample clip: a clean stylization
//! flags nothing, a frame replaced by a differently-seeded render is flagged in the table, the
//! JSON report and the plot, `--fail-on-flagged` exits 3, and mismatches exit 2 naming the frame.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;
use std::path::Path;

/// Stylizes the first 12 frames of the sample clip at 256x144 into `dir`.
fn stylize(dir: &Path) {
    let clip = common::sample_clip();
    let o = run(&[
        "--quiet",
        "stylize",
        s(&clip),
        "-o",
        s(dir),
        "--max-frames",
        "12",
        "--size",
        "256x144",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pngs(dir).len(), 12);
}

fn check(dir: &Path, extra: &[&str]) -> std::process::Output {
    let clip = common::sample_clip();
    let mut args = vec!["check", s(dir), "--source", s(&clip), "--max-frames", "12"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn flags_a_reseeded_frame_with_report_and_plot() {
    let d = tempfile::tempdir().unwrap();
    let styl = d.path().join("styl");
    stylize(&styl);
    let o = check(&styl, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("no frame flagged"), "{text}");
    assert!(!text.contains("FLAGGED"), "{text}");

    // Frame 7 re-rendered "with another seed": the toon frame plus seeded jitter.
    let bad = styl.join("00007.png");
    let mut img = image::open(&bad).unwrap().to_rgba8();
    rotograph::testing::jitter(&mut img, 7);
    img.save(&bad).unwrap();
    let (json, plot) = (d.path().join("r.json"), d.path().join("p.png"));
    let o = check(
        &styl,
        &[
            "--report",
            s(&json),
            "--plot",
            s(&plot),
            "--plot-size",
            "400x200",
        ],
    );
    assert!(o.status.success(), "flagged frames exit 0: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let row = text.lines().find(|l| l.contains("00007.png")).unwrap();
    assert!(row.ends_with("FLAGGED"), "{text}");
    assert_eq!(text.matches("FLAGGED").count(), 1, "{text}");

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["frame_count"], 12);
    assert_eq!(r["pairs"], 11);
    assert_eq!(r["threshold"], 3.0);
    assert_eq!(r["flagged"], serde_json::json!(["00007.png"]));
    let frames = r["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 12);
    assert!(frames[0]["warp_error"].is_null());
    for k in ["mean", "median", "max", "max_frame", "mean_coverage"] {
        assert!(!r["summary"][k].is_null(), "summary.{k} in {r}");
    }
    let f6 = &frames[6];
    assert_eq!(f6["name"], "00007.png");
    assert_eq!(f6["source_name"], "00007.png");
    assert_eq!(f6["flagged"], true);
    assert!(f6["score"].as_f64().unwrap() > 3.0);
    let e6 = f6["warp_error"].as_f64().unwrap();
    let e4 = frames[4]["warp_error"].as_f64().unwrap();
    assert!(e6 > 3.0 * e4, "{e6} vs {e4}");
    assert!((0.0..=1.0).contains(&f6["coverage"].as_f64().unwrap()));

    let png = image::open(&plot).unwrap().to_rgba8();
    assert_eq!(png.dimensions(), (400, 200));
    let red = png
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80)
        .count();
    assert!(red > 100, "the flagged bar is red ({red} red pixels)");

    // --fail-on-flagged: exit 3; --json: the report in the done event.
    let o = check(&styl, &["--fail-on-flagged"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("00007.png"), "{}", stderr(&o));
    let o = check(&styl, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(done_report(&o)["flagged"], serde_json::json!(["00007.png"]));
}

#[test]
fn mismatches_exit_2_naming_the_frame() {
    let d = tempfile::tempdir().unwrap();
    let styl = d.path().join("styl");
    stylize(&styl);
    // Source read at another size than the stylized frames.
    let o = check(&styl, &["--size", "128x72"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("00001.png") && e.contains("256x144") && e.contains("128x72"),
        "{e}"
    );
    // A missing stylized frame.
    std::fs::remove_file(styl.join("00005.png")).unwrap();
    let o = check(&styl, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("00006.png"), "{}", stderr(&o));
    // Paired by order, the source has a frame more.
    let o = check(&styl, &["--match", "order"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("has 11 frames"), "{}", stderr(&o));
    let o = check(&styl, &["--threshold", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("threshold"), "{}", stderr(&o));
}
