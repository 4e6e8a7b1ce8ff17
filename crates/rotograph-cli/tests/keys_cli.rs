//! End-to-end tests of `rotograph keys` on the bundled sample clip.

mod cli_support;
#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use cli_support::*;

#[test]
fn writes_the_key_list_and_report() {
    let d = tempfile::tempdir().unwrap();
    let clip = common::sample_clip();
    let (list, json) = (d.path().join("keys.txt"), d.path().join("keys.json"));
    let o = run(&[
        "keys",
        s(&clip),
        "--max-frames",
        "30",
        "--size",
        "256x144",
        "--every",
        "10",
        "-o",
        s(&list),
        "--report",
        s(&json),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&list).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "00001.png first", "{text}");
    for name in ["00011.png", "00021.png"] {
        let line = lines.iter().find(|l| l.starts_with(name)).unwrap();
        assert!(line.contains("every"), "{text}");
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["frame_count"], 30);
    assert_eq!(r["frames"].as_array().unwrap().len(), 30);
    assert_eq!(r["keys"].as_array().unwrap().len(), lines.len());
    assert_eq!(r["keys"][0]["reasons"], serde_json::json!(["first"]));
    let f1 = &r["frames"][1];
    assert!(f1["motion"].as_f64().unwrap() >= 0.0 && f1["change"].as_f64().unwrap() < 0.35);

    let o = run(&["keys", s(&clip), "--every", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("every"), "{}", stderr(&o));
}
