//! A1111 prompt syntax: attention parsing and lora tags.

use rotograph_sd::prompt::{extract_loras, is_break, parse_prompt_attention, Lora, PromptError};

/// `(text, weight)` pieces from `(&str, f64)` literals; weights are Python's f64 results.
fn pieces(v: &[(&str, f64)]) -> Vec<(String, f32)> {
    v.iter().map(|&(t, w)| (t.to_string(), w as f32)).collect()
}

#[test]
fn a1111_docstring_examples() {
    let table: &[(&str, &[(&str, f64)])] = &[
        ("normal text", &[("normal text", 1.0)]),
        (
            "an (important) word",
            &[("an ", 1.0), ("important", 1.1), (" word", 1.0)],
        ),
        ("(unbalanced", &[("unbalanced", 1.1)]),
        ("\\(literal\\]", &[("(literal]", 1.0)]),
        ("(unnecessary)(parens)", &[("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            &[
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ],
        ),
    ];
    for &(text, want) in table {
        assert_eq!(
            parse_prompt_attention(text).unwrap(),
            pieces(want),
            "{text:?}"
        );
    }
}

#[test]
fn quirks() {
    let table: &[(&str, &[(&str, f64)])] = &[
        // No exponent in the weight regex: the colon stays text, `)` is ×1.1.
        ("(a:1.5e1)", &[("a:1.5e1", 1.1)]),
        ("(a: 1.5 )", &[("a", 1.5)]),
        ("(a:+.5)", &[("a", 0.5)]),
        ("a:1.5) b", &[("a:1.5) b", 1.0)]),
        ("[a:1.5]", &[("a:1.5", 1.0 / 1.1)]),
        // A lone backslash disappears; `\\` is one backslash.
        ("a\\b\\\\c", &[("ab\\c", 1.0)]),
        ("a ] b ) c", &[("a ] b ) c", 1.0)]),
        ("", &[("", 1.0)]),
        ("()", &[("", 1.0)]),
        ("a BREAK b", &[("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
        ("aBREAK b", &[("aBREAK b", 1.0)]),
        ("(a BREAK b)", &[("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),
    ];
    for &(text, want) in table {
        assert_eq!(
            parse_prompt_attention(text).unwrap(),
            pieces(want),
            "{text:?}"
        );
    }
    let parsed = parse_prompt_attention("x BREAK y").unwrap();
    assert!(is_break(&parsed[1]));
    let parsed = parse_prompt_attention("(x BREAK y)").unwrap();
    assert!(!is_break(&parsed[1]));
}

#[test]
fn bad_weights_fail_like_python_float() {
    for text in ["(a:1.2.3)", "(a:.)", "(a:..5)"] {
        assert!(
            matches!(parse_prompt_attention(text), Err(PromptError::BadWeight(_))),
            "{text:?}"
        );
    }
    // Without an open bracket the same text is not a weight, so no error.
    assert!(parse_prompt_attention("a:1.2.3)").is_ok());
}

#[test]
fn matches_a1111_fixture() {
    let json = include_str!("fixtures/prompt_attention.json");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() > 100);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let got = parse_prompt_attention(text);
        if case.get("error").is_some() {
            assert!(got.is_err(), "{text:?} should fail, got {got:?}");
            continue;
        }
        let want: Vec<(String, f32)> = case["pieces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p = p.as_array().unwrap();
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_f64().unwrap() as f32,
                )
            })
            .collect();
        assert_eq!(got.unwrap(), want, "{text:?}");
    }
}

#[test]
fn loras() {
    let lora = |name: &str, weight: f32, unet_weight: f32| Lora {
        name: name.to_string(),
        weight,
        unet_weight,
    };
    let (p, l) = extract_loras("a cat <lora:ghibli:0.8>, <lora:flat> <hypernet:x:1> dog").unwrap();
    assert_eq!(p, "a cat ,   dog");
    assert_eq!(l, vec![lora("ghibli", 0.8, 0.8), lora("flat", 1.0, 1.0)]);

    let (_, l) = extract_loras("<lora:a:0.5:0.25><lyco:b:te=2:unet=3><lora:c:1:unet=0>").unwrap();
    assert_eq!(
        l,
        vec![
            lora("a", 0.5, 0.25),
            lora("b", 2.0, 3.0),
            lora("c", 1.0, 0.0)
        ]
    );

    // Not tags: no name, no args, unterminated.
    for text in ["<:x>", "<lora:>", "<lora:x", "a < b > c", "<lo ra:x>"] {
        let (p, l) = extract_loras(text).unwrap();
        assert_eq!((p.as_str(), l.len()), (text, 0), "{text:?}");
    }
    assert!(matches!(
        extract_loras("<lora:x:abc>"),
        Err(PromptError::BadLoraWeight { .. })
    ));
    assert_eq!(extract_loras("<lora:x: 0.5 >").unwrap().1[0].weight, 0.5);
}

/// Fixed-seed xorshift so the "property" test is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_prompts_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let atoms = [
        "a",
        " ",
        "(",
        ")",
        "[",
        "]",
        ":",
        "\\",
        "1",
        ".",
        "+",
        "-",
        "BREAK",
        " BREAK ",
        "<",
        ">",
        "lora",
        ":0.5)",
        "\u{e9}",
        "\u{1F600}",
        "\t",
        "e",
    ];
    for _ in 0..2000 {
        let n = (rng.next() % 40) as usize;
        let text: String = (0..n)
            .map(|_| atoms[(rng.next() % atoms.len() as u64) as usize])
            .collect();
        match parse_prompt_attention(&text) {
            Ok(parsed) => {
                assert!(!parsed.is_empty());
                // Parsing only removes syntax (a BREAK marker replaces its keyword).
                let out: usize = parsed.iter().map(|p| p.0.chars().count()).sum();
                assert!(out <= text.chars().count(), "{text:?} -> {parsed:?}");
                // Runs are merged on Python's f64 weights, so equal f32 neighbours can remain.
            }
            Err(PromptError::BadWeight(w)) => assert!(w.parse::<f64>().is_err()),
            Err(e) => panic!("unexpected {e:?}"),
        }
        let _ = extract_loras(&text);
    }
}
