//! The CLIP BPE tokenizer (SD 1.x text encoder) and A1111's 75-token prompt chunking.
//!
//! Facts this follows (implementation is our own):
//! - OpenAI CLIP `simple_tokenizer.py` / HF `CLIPTokenizer`: cleanup (ftfy, whitespace collapse,
//!   lowercase), the pre-tokenization regex, the byte→unicode table, BPE with `</w>` on the last
//!   symbol of each word, and the vocabulary layout: 256 byte symbols, the same with `</w>`,
//!   merges `lines[1 .. 49152-256-2+1]` of `bpe_simple_vocab_16e6.txt`, then
//!   `<|startoftext|>` (49406) and `<|endoftext|>` (49407): 49408 ids.
//! - A1111 `modules/sd_hijack_clip.py` `tokenize_line`: chunks of 75 tokens wrapped in BOS/EOS,
//!   padded with EOS, `BREAK` starting a new chunk, and `comma_padding_backtrack` (default 20)
//!   moving the text after a recent comma into the next chunk.
//!
//! Cleanup implements only the parts of ftfy that matter for prompts (curly quotes, ligatures,
//! full-width forms, control characters); no NFC normalization, mojibake repair or HTML
//! entity decoding.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, OnceLock};

use regex::Regex;

/// Start-of-text token id.
pub const BOS: u32 = 49406;
/// End-of-text token id; SD 1.x also pads with it.
pub const EOS: u32 = 49407;
/// Number of ids in the CLIP vocabulary.
pub const VOCAB_SIZE: usize = 49408;
/// Prompt tokens per chunk (A1111 `chunk_length`); a chunk is this plus BOS and EOS.
pub const CHUNK_TOKENS: usize = 75;
/// Length of an encoded chunk including BOS and EOS (CLIP's context length).
pub const CONTEXT_LENGTH: usize = CHUNK_TOKENS + 2;
/// A1111's default `comma_padding_backtrack`.
pub const DEFAULT_COMMA_BACKTRACK: usize = 20;

/// Gzipped OpenAI CLIP merges file (MIT, see `data/LICENSE-CLIP.md`).
static VOCAB_GZ: &[u8] = include_bytes!("../data/bpe_simple_vocab_16e6.txt.gz");

/// Number of merges CLIP uses: `49152 - 256 - 2`.
const N_MERGES: usize = 49152 - 256 - 2;

/// Entries kept in the word cache before it is cleared (bounds memory on hostile input).
const CACHE_LIMIT: usize = 100_000;

/// Errors building a tokenizer from merges data.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The gzip stream could not be decompressed or is not UTF-8.
    #[error("reading BPE merges: {0}")]
    Read(String),
    /// The merges file does not produce a 49408-entry vocabulary.
    #[error("BPE vocabulary has {0} entries, expected {VOCAB_SIZE}")]
    VocabSize(usize),
}

/// One 77-token CLIP input: BOS, 75 prompt/padding tokens, EOS, with a weight per token.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Token ids, always [`CONTEXT_LENGTH`] long.
    pub tokens: Vec<u32>,
    /// Attention multiplier per token (1.0 for BOS/EOS/padding).
    pub weights: Vec<f32>,
}

/// CLIP BPE tokenizer.
pub struct Tokenizer {
    /// Vocabulary id → string (byte-level unicode symbols, `</w>` marks word end).
    decoder: Vec<String>,
    /// Pair of symbol ids → (merge rank, merged symbol id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Byte value → id of its single-byte symbol (without `</w>`).
    byte_id: [u32; 256],
    /// Pre-tokenization pattern.
    pattern: Regex,
    /// Word (pre-token) → BPE ids.
    cache: Mutex<HashMap<String, Vec<u32>>>,
    comma: u32,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.decoder.len())
            .finish()
    }
}

/// GPT-2/CLIP byte→unicode table: printable Latin-1 bytes map to themselves, the rest to
/// U+0100.. in byte order. Returned in CLIP's vocabulary order (printables first).
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    for (n, b) in (0..=255u8).filter(|&b| !printable(b)).enumerate() {
        table.push((b, char::from_u32(256 + n as u32).unwrap_or('\u{FFFD}')));
    }
    table
}

impl Tokenizer {
    /// The SD 1.x tokenizer with the bundled OpenAI vocabulary, built once per process.
    pub fn clip() -> &'static Tokenizer {
        static CLIP: OnceLock<Tokenizer> = OnceLock::new();
        CLIP.get_or_init(|| {
            // The bundled file is fixed and tested, so failure here is a build defect.
            Tokenizer::from_gzip(VOCAB_GZ).expect("bundled CLIP vocabulary is valid")
        })
    }

    /// Builds a tokenizer from a gzipped CLIP merges file (`bpe_simple_vocab_16e6.txt.gz`).
    pub fn from_gzip(gz: &[u8]) -> Result<Tokenizer, TokenizerError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| TokenizerError::Read(e.to_string()))?;
        Tokenizer::from_merges(&text)
    }

    /// Builds a tokenizer from the text of a CLIP merges file (first line is a header).
    pub fn from_merges(text: &str) -> Result<Tokenizer, TokenizerError> {
        let table = bytes_to_unicode();
        let mut decoder: Vec<String> = table.iter().map(|&(_, c)| c.to_string()).collect();
        decoder.extend(table.iter().map(|&(_, c)| format!("{c}</w>")));
        let mut byte_id = [0u32; 256];
        for (i, &(b, _)) in table.iter().enumerate() {
            byte_id[usize::from(b)] = i as u32;
        }

        // Python splits on '\n' and keeps lines[1:48895]; a merge is two space-separated symbols.
        let lines: Vec<&str> = text.split('\n').skip(1).take(N_MERGES).collect();
        let mut encoder: HashMap<String, u32> = decoder
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let mut pairs = Vec::with_capacity(lines.len());
        for line in &lines {
            let mut it = line.split_whitespace();
            let (a, b) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            let merged = format!("{a}{b}");
            encoder.insert(merged.clone(), decoder.len() as u32);
            decoder.push(merged);
            pairs.push((a, b));
        }
        for special in ["<|startoftext|>", "<|endoftext|>"] {
            encoder.insert(special.to_string(), decoder.len() as u32);
            decoder.push(special.to_string());
        }
        if decoder.len() != VOCAB_SIZE || encoder.len() != VOCAB_SIZE {
            return Err(TokenizerError::VocabSize(encoder.len().min(decoder.len())));
        }

        let mut merges = HashMap::with_capacity(pairs.len());
        for (rank, (a, b)) in pairs.into_iter().enumerate() {
            if let (Some(&ia), Some(&ib), Some(&im)) = (
                encoder.get(a),
                encoder.get(b),
                encoder.get(&format!("{a}{b}")),
            ) {
                // Python's dict keeps the first rank if a pair were listed twice.
                merges.entry((ia, ib)).or_insert((rank as u32, im));
            }
        }

        let pattern = Regex::new(
            r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
        )
        .map_err(|e| TokenizerError::Read(e.to_string()))?;

        let comma = encoder.get(",</w>").copied().unwrap_or(u32::MAX);
        Ok(Tokenizer {
            decoder,
            merges,
            byte_id,
            pattern,
            cache: Mutex::new(HashMap::new()),
            comma,
        })
    }

    /// Number of ids (49408 for CLIP).
    pub fn vocab_size(&self) -> usize {
        self.decoder.len()
    }

    /// Id of `,</w>`, the token A1111 backtracks to when splitting chunks.
    pub fn comma_id(&self) -> u32 {
        self.comma
    }

    /// The vocabulary string of `id` (byte-level symbols), if it exists.
    pub fn token_str(&self, id: u32) -> Option<&str> {
        self.decoder.get(id as usize).map(String::as_str)
    }

    /// Decodes ids back to text (`</w>` becomes a space); invalid UTF-8 is replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let table = bytes_to_unicode();
        let byte_of: HashMap<char, u8> = table.iter().map(|&(b, c)| (c, b)).collect();
        let mut bytes = Vec::new();
        for &id in ids {
            let Some(s) = self.token_str(id) else {
                continue;
            };
            if id == BOS || id == EOS {
                bytes.extend_from_slice(s.as_bytes());
                continue;
            }
            let (body, end) = match s.strip_suffix("</w>") {
                Some(body) => (body, true),
                None => (s, false),
            };
            bytes.extend(body.chars().filter_map(|c| byte_of.get(&c).copied()));
            if end {
                bytes.push(b' ');
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Encodes `text` to token ids, without BOS/EOS and without truncation.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean(text);
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&text) {
            match m.as_str() {
                "<|startoftext|>" => ids.push(BOS),
                "<|endoftext|>" => ids.push(EOS),
                word => ids.extend(self.bpe_word(word)),
            }
        }
        ids
    }

    /// BPE ids of one pre-token, cached.
    fn bpe_word(&self, word: &str) -> Vec<u32> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(ids) = cache.get(word) {
                return ids.clone();
            }
        }
        let ids = self.bpe_uncached(word);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(word.to_string(), ids.clone());
        }
        ids
    }

    fn bpe_uncached(&self, word: &str) -> Vec<u32> {
        let bytes = word.as_bytes();
        let mut symbols: Vec<u32> = bytes
            .iter()
            .map(|&b| self.byte_id[usize::from(b)])
            .collect();
        // The last symbol carries the end-of-word marker: "x</w>" is "x"'s id + 256.
        if let Some(last) = symbols.last_mut() {
            *last += 256;
        }
        loop {
            // Lowest-ranked adjacent pair; ranks are unique, so ties cannot occur.
            let best = symbols
                .windows(2)
                .filter_map(|w| {
                    self.merges
                        .get(&(w[0], w[1]))
                        .map(|&(r, m)| (r, w[0], w[1], m))
                })
                .min_by_key(|&(r, ..)| r);
            let Some((_, a, b, merged)) = best else { break };
            let mut next = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if symbols[i] == a && symbols.get(i + 1) == Some(&b) {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(symbols[i]);
                    i += 1;
                }
            }
            symbols = next;
            if symbols.len() == 1 {
                break;
            }
        }
        symbols
    }

    /// A1111-style chunking of parsed prompt pieces (see [`crate::prompt`]) with the default
    /// comma backtrack of 20. Always returns at least one chunk.
    pub fn tokenize_weighted(&self, parsed: &[(String, f32)]) -> Vec<Chunk> {
        self.tokenize_weighted_with(parsed, DEFAULT_COMMA_BACKTRACK)
            .0
    }

    /// Like [`Tokenizer::tokenize_weighted`] with an explicit `comma_padding_backtrack`
    /// (0 disables it). Also returns A1111's token count (75 per full chunk plus the tokens
    /// of the last one), as shown in its "N/75" counter.
    pub fn tokenize_weighted_with(
        &self,
        parsed: &[(String, f32)],
        comma_backtrack: usize,
    ) -> (Vec<Chunk>, usize) {
        let mut b = ChunkBuilder::default();
        for piece in parsed {
            if crate::prompt::is_break(piece) {
                b.finish(false);
                continue;
            }
            let weight = piece.1;
            for token in self.encode(&piece.0) {
                if token == self.comma {
                    b.last_comma = Some(b.tokens.len());
                } else if let Some(comma) = b.last_comma.filter(|&c| {
                    comma_backtrack != 0
                        && b.tokens.len() == CHUNK_TOKENS
                        && CHUNK_TOKENS - c <= comma_backtrack
                }) {
                    // Move everything after the comma into the next chunk.
                    let tokens = b.tokens.split_off(comma + 1);
                    let weights = b.weights.split_off(comma + 1);
                    b.finish(false);
                    b.tokens = tokens;
                    b.weights = weights;
                }
                if b.tokens.len() == CHUNK_TOKENS {
                    b.finish(false);
                }
                b.tokens.push(token);
                b.weights.push(weight);
            }
        }
        if !b.tokens.is_empty() || b.chunks.is_empty() {
            b.finish(true);
        }
        (b.chunks, b.token_count)
    }
}

/// State of A1111's `tokenize_line` loop.
#[derive(Default)]
struct ChunkBuilder {
    chunks: Vec<Chunk>,
    tokens: Vec<u32>,
    weights: Vec<f32>,
    last_comma: Option<usize>,
    token_count: usize,
}

impl ChunkBuilder {
    /// A1111 `next_chunk`: pad to 75 with EOS, wrap in BOS/EOS, start a new chunk.
    fn finish(&mut self, is_last: bool) {
        self.token_count += if is_last {
            self.tokens.len()
        } else {
            CHUNK_TOKENS
        };
        let mut tokens = Vec::with_capacity(CONTEXT_LENGTH);
        let mut weights = Vec::with_capacity(CONTEXT_LENGTH);
        tokens.push(BOS);
        weights.push(1.0);
        tokens.append(&mut self.tokens);
        weights.append(&mut self.weights);
        tokens.resize(CONTEXT_LENGTH - 1, EOS);
        weights.resize(CONTEXT_LENGTH - 1, 1.0);
        tokens.push(EOS);
        weights.push(1.0);
        self.last_comma = None;
        self.chunks.push(Chunk { tokens, weights });
    }
}

/// CLIP's text cleanup: a small subset of `ftfy.fix_text`, then `\s+` → one space, trim,
/// lowercase.
pub fn clean(text: &str) -> String {
    let mut fixed = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // ftfy `uncurl_quotes`
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => fixed.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => fixed.push('"'),
            // ftfy `fix_latin_ligatures`
            '\u{FB00}' => fixed.push_str("ff"),
            '\u{FB01}' => fixed.push_str("fi"),
            '\u{FB02}' => fixed.push_str("fl"),
            '\u{FB03}' => fixed.push_str("ffi"),
            '\u{FB04}' => fixed.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => fixed.push_str("st"),
            // ftfy `fix_character_width`: full-width ASCII and the ideographic space
            '\u{FF01}'..='\u{FF5E}' => {
                fixed.push(char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c));
            }
            '\u{3000}' => fixed.push(' '),
            // ftfy `fix_line_breaks`
            '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => fixed.push('\n'),
            // ftfy `remove_control_chars`
            '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFC}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}' => {}
            _ => fixed.push(c),
        }
    }
    let collapsed = fixed.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table() {
        let t = bytes_to_unicode();
        assert_eq!(t.len(), 256);
        assert_eq!(t[0], (b'!', '!'));
        assert_eq!(t[188], (0, '\u{100}'));
        assert_eq!(t[255], (0xAD, '\u{143}'));
    }

    #[test]
    fn clean_basics() {
        assert_eq!(clean("  A\u{2019}B\t\nC  "), "a'b c");
        assert_eq!(clean("\u{FF21}\u{3000}x"), "a x");
    }
}
