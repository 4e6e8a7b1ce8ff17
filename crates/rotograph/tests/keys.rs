//! Keyframe suggestions (`temporal::keys`) on a real clip and on generated motion.

mod common;

use image::{Rgba, RgbaImage};
use rotograph::temporal::keys::{suggest_keys, KeyOptions, KeyReason, KeyScanner};
use rotograph::video::{ExtractOptions, VideoSource};
use rotograph::NoProgress;

#[test]
fn real_clip_gets_a_key_at_its_scene_change() {
    let clip = shared_or_skip!("media/video/bikes.mp4");
    let opts = ExtractOptions {
        size: Some((320, 136)),
        max_frames: Some(36),
        ..ExtractOptions::default()
    };
    let mut src = VideoSource::open(&clip, &opts).unwrap();
    let r = suggest_keys(&mut src, &KeyOptions::default(), &NoProgress).unwrap();
    assert_eq!(r.frame_count, 36);
    // The clip cuts (colour change 0.65; 0.06 at most elsewhere) to another shot at frame 16 (index 15): the only scene change.
    let cuts: Vec<usize> = r
        .keys
        .iter()
        .filter(|k| k.reasons.contains(&KeyReason::SceneChange))
        .map(|k| k.index)
        .collect();
    assert_eq!(cuts, vec![15], "{}", r.to_text());
    assert_eq!(r.keys[0].index, 0);
    assert_eq!(r.keys[0].reasons, vec![KeyReason::First]);
    // Motion is measured inside shots and not across the cut.
    assert!(r.frames[15].motion.is_none());
    assert!(r.frames[1..15].iter().all(|f| f.motion.unwrap() > 0.0));
}

fn texture(w: u32, h: u32, dx: f64) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f64 - dx, y as f64);
        let a = (x * 0.13).sin() * (y * 0.09).cos() + 0.5 * ((x + 2.0 * y) * 0.041).sin();
        let b = (x * 0.07 + y * 0.05).cos();
        Rgba([
            (128.0 + 80.0 * a) as u8,
            (128.0 + 60.0 * b) as u8,
            (128.0 - 70.0 * a) as u8,
            255,
        ])
    })
}

#[test]
fn keys_at_the_turning_points_of_a_swinging_motion() {
    // x(t) = 8 sin(2πt/16): the motion stops and reverses at t = 4, 12, 20, 28, 36.
    let mut scanner = KeyScanner::new(&KeyOptions::default()).unwrap();
    for t in 0..40 {
        let x = 8.0 * (2.0 * std::f64::consts::PI * t as f64 / 16.0).sin();
        scanner
            .push(&format!("{:05}.png", t + 1), &texture(160, 120, x))
            .unwrap();
    }
    let r = scanner.finish().unwrap();
    let peak = r.frames.iter().filter_map(|f| f.motion).fold(0.0, f64::max);
    assert!(
        (2.5..3.8).contains(&peak),
        "largest motion {peak} (true 3.1)"
    );
    let keys: Vec<(usize, Vec<KeyReason>)> = r
        .keys
        .iter()
        .map(|k| (k.index, k.reasons.clone()))
        .collect();
    assert_eq!(keys[0], (0, vec![KeyReason::First]));
    // The turn at 4 is within --min-gap of the first key; the others are keys (±1 frame:
    // frame t's motion is the step from t-1, so a turn between frames reads on either side).
    let motion_keys: Vec<usize> = keys[1..].iter().map(|k| k.0).collect();
    assert_eq!(motion_keys.len(), 4, "{keys:?}");
    for (k, turn) in motion_keys.iter().zip([12, 20, 28, 36]) {
        assert!(
            k.abs_diff(turn) <= 1,
            "key {k} for the turn at {turn}: {keys:?}"
        );
    }
    assert!(keys[1..]
        .iter()
        .all(|k| k.1 == vec![KeyReason::MotionExtreme]));
    assert!(r.frames.iter().skip(1).all(|f| f.change.unwrap() < 0.35));
    // A frame of another size is an error naming it.
    let mut scanner = KeyScanner::new(&KeyOptions::default()).unwrap();
    scanner.push("a.png", &texture(64, 48, 0.0)).unwrap();
    let err = scanner
        .push("b.png", &texture(80, 48, 0.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("b.png") && err.contains("80x48"), "{err}");
}
