//! CLIP tokenizer against reference ids, and A1111 chunking.

use rotograph_sd::prompt::parse_prompt_attention;
use rotograph_sd::tokenizer::{Tokenizer, BOS, CHUNK_TOKENS, CONTEXT_LENGTH, EOS, VOCAB_SIZE};

fn tok() -> &'static Tokenizer {
    Tokenizer::clip()
}

#[test]
fn vocabulary_layout() {
    let t = tok();
    assert_eq!(t.vocab_size(), VOCAB_SIZE);
    assert_eq!(t.token_str(BOS), Some("<|startoftext|>"));
    assert_eq!(t.token_str(EOS), Some("<|endoftext|>"));
    assert_eq!(t.token_str(320), Some("a</w>"));
    assert_eq!(t.comma_id(), 267);
    assert_eq!(t.token_str(VOCAB_SIZE as u32), None);
}

#[test]
fn known_encodings() {
    assert_eq!(
        tok().encode("a photo of a cat"),
        [320, 1125, 539, 320, 2368]
    );
    assert_eq!(tok().encode(""), Vec::<u32>::new());
    assert_eq!(
        tok().encode("<|startoftext|>a<|endoftext|>"),
        [BOS, 320, EOS]
    );
}

#[test]
fn matches_reference_fixture() {
    let json = include_str!("fixtures/clip_tokens.json");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok().encode(text), want, "prompt {text:?}");
    }
}

#[test]
fn decode_round_trip() {
    let t = tok();
    let ids = t.encode("A cat's hat, 3 \u{65e5}\u{672c}!");
    assert_eq!(t.decode(&ids), "a cat 's hat , 3 \u{65e5}\u{672c} ! ");
}

fn check_shape(chunks: &[rotograph_sd::tokenizer::Chunk]) {
    assert!(!chunks.is_empty());
    for c in chunks {
        assert_eq!(c.tokens.len(), CONTEXT_LENGTH);
        assert_eq!(c.weights.len(), CONTEXT_LENGTH);
        assert_eq!(c.tokens[0], BOS);
        assert_eq!(c.tokens[CONTEXT_LENGTH - 1], EOS);
        assert_eq!(c.weights[0], 1.0);
        assert_eq!(c.weights[CONTEXT_LENGTH - 1], 1.0);
    }
}

#[test]
fn short_prompt_one_padded_chunk() {
    let parsed = parse_prompt_attention("a (photo) of a cat").unwrap();
    let (chunks, count) = tok().tokenize_weighted_with(&parsed, 20);
    check_shape(&chunks);
    assert_eq!(chunks.len(), 1);
    assert_eq!(count, 5);
    assert_eq!(
        &chunks[0].tokens[..7],
        &[BOS, 320, 1125, 539, 320, 2368, EOS]
    );
    assert!(chunks[0].tokens[6..].iter().all(|&t| t == EOS));
    assert_eq!(&chunks[0].weights[..6], &[1.0, 1.0, 1.1, 1.0, 1.0, 1.0]);
}

#[test]
fn empty_prompt_is_one_padding_chunk() {
    let parsed = parse_prompt_attention("").unwrap();
    let chunks = tok().tokenize_weighted(&parsed);
    check_shape(&chunks);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].tokens[1..].iter().all(|&t| t == EOS));
}

#[test]
fn long_prompt_splits_at_75() {
    // "cat" is one token; 75 fit exactly, 76 need a second chunk.
    let p75 = vec![("cat ".repeat(75), 1.0f32)];
    let (chunks, count) = tok().tokenize_weighted_with(&p75, 20);
    assert_eq!((chunks.len(), count), (1, 75));
    let p76 = vec![("cat ".repeat(76), 1.0f32)];
    let (chunks, count) = tok().tokenize_weighted_with(&p76, 20);
    check_shape(&chunks);
    assert_eq!((chunks.len(), count), (2, 76));
    assert_eq!(&chunks[1].tokens[..3], &[BOS, 2368, EOS]);
}

#[test]
fn comma_backtrack_moves_tail_to_next_chunk() {
    // 70 cats, a comma (index 70), 10 more cats: the token at index 75 triggers the split;
    // the 4 cats after the comma move to chunk 2, followed by the remaining 6.
    let text = format!("{}, {}", "cat ".repeat(70).trim_end(), "cat ".repeat(10));
    let parsed = vec![(text.clone(), 1.0f32)];
    let (chunks, count) = tok().tokenize_weighted_with(&parsed, 20);
    check_shape(&chunks);
    assert_eq!(chunks.len(), 2);
    assert_eq!(count, 75 + 10);
    assert_eq!(chunks[0].tokens[71], 267);
    assert!(chunks[0].tokens[72..].iter().all(|&t| t == EOS));
    assert!(chunks[1].tokens[1..11].iter().all(|&t| t == 2368));
    assert_eq!(chunks[1].tokens[11], EOS);

    // Disabled backtrack: plain split at 75.
    let (chunks, _) = tok().tokenize_weighted_with(&parsed, 0);
    assert_eq!(chunks[0].tokens[75], 2368);
    assert_eq!(&chunks[1].tokens[1..7], &[2368; 6]);

    // Comma too far back (more than 20 tokens): no backtrack.
    let text = format!("{}, {}", "cat ".repeat(50).trim_end(), "cat ".repeat(30));
    let (chunks, _) = tok().tokenize_weighted_with(&[(text, 1.0)], 20);
    assert_eq!(chunks[0].tokens[75], 2368);
}

#[test]
fn break_starts_new_chunk() {
    let parsed = parse_prompt_attention("a cat BREAK (a dog)").unwrap();
    let (chunks, count) = tok().tokenize_weighted_with(&parsed, 20);
    check_shape(&chunks);
    assert_eq!(chunks.len(), 2);
    assert_eq!(count, 75 + 2);
    assert_eq!(&chunks[0].tokens[..4], &[BOS, 320, 2368, EOS]);
    assert_eq!(&chunks[1].tokens[..4], &[BOS, 320, 1929, EOS]);
    assert_eq!(&chunks[1].weights[1..3], &[1.1, 1.1]);
    // BREAK inside brackets is multiplied and so becomes ordinary text, as in A1111.
    let parsed = parse_prompt_attention("(a BREAK b)").unwrap();
    assert_eq!(tok().tokenize_weighted(&parsed).len(), 1);
}

#[test]
fn random_inputs_never_panic() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> =
        "ab Z,.()[]:\\1'9\t\n<|>!\u{e9}\u{65e5}\u{1F600}\u{301}\u{0}\u{FF21}\u{2019}_-"
            .chars()
            .collect();
    for _ in 0..300 {
        let len = (next() % 200) as usize;
        let mut s = String::new();
        for _ in 0..len {
            if next() % 40 == 0 {
                s.push_str(" BREAK ");
            } else if next() % 500 == 0 {
                s.push(char::from_u32((next() % 0x11_0000) as u32).unwrap_or('x'));
            } else {
                s.push(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
        }
        let ids = tok().encode(&s);
        assert!(ids.iter().all(|&i| (i as usize) < VOCAB_SIZE));
        if let Ok(parsed) = parse_prompt_attention(&s) {
            let chunks = tok().tokenize_weighted(&parsed);
            check_shape(&chunks);
            assert!(chunks.iter().all(|c| c.tokens.len() == CHUNK_TOKENS + 2));
        }
    }
}
