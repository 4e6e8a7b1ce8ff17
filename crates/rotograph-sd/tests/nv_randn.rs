//! The NV generator against A1111 reference values (`../shared/fixtures/a1111_nv_randn.json`).

#[path = "../../rotograph/tests/common/mod.rs"]
mod common;

use rotograph_sd::noise::NvRng;
use serde_json::Value;

#[test]
fn matches_a1111_fixture() {
    let path = shared_or_skip!("fixtures/a1111_nv_randn.json");
    let text = std::fs::read_to_string(&path).expect("read fixture");
    let json: Value = serde_json::from_str(&text).expect("parse fixture");
    let cases = json["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut max_err = 0f64;
    for case in cases {
        let seed = case["seed"].as_u64().expect("seed");
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().expect("dim") as usize)
            .collect();
        let got = NvRng::new(seed).randn_shape(&shape);
        let n = got.len();
        let nums = |key: &str| -> Vec<f64> {
            case[key]
                .as_array()
                .expect(key)
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect()
        };
        let first = nums("first16");
        let last = nums("last4");
        let pairs = first.iter().enumerate().map(|(i, &w)| (i, w)).chain(
            last.iter()
                .enumerate()
                .map(|(i, &w)| (n - last.len() + i, w)),
        );
        for (i, want) in pairs {
            let err = (got[i] as f64 - want).abs();
            max_err = max_err.max(err);
            assert!(
                err < 1e-5,
                "seed {seed} {shape:?} [{i}]: {} vs {want}",
                got[i]
            );
        }
        let sum: f64 = got.iter().map(|&x| x as f64).sum();
        let sum_sq: f64 = got.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let (want_sum, want_sq) = (
            case["sum"].as_f64().unwrap(),
            case["sum_sq"].as_f64().unwrap(),
        );
        assert!(
            (sum - want_sum).abs() < 1e-5 * n as f64,
            "seed {seed} sum {sum} vs {want_sum}"
        );
        assert!(
            (sum_sq - want_sq).abs() < 1e-5 * n as f64,
            "seed {seed} sum_sq {sum_sq} vs {want_sq}"
        );
        eprintln!(
            "seed {seed} {shape:?}: sum {sum} (want {want_sum}, diff {:.2e}), \
             sum_sq diff {:.2e}",
            sum - want_sum,
            sum_sq - want_sq
        );
    }
    eprintln!("max abs error on fixture values: {max_err:.3e}");
}
