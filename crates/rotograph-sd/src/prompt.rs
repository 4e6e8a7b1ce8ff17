//! Automatic1111's prompt syntax: attention weights, `BREAK`, and `<lora:…>` tags.
//!
//! Behaviour follows A1111's `modules/prompt_parser.py` (`parse_prompt_attention`, v1.6+ where
//! the weight regex allows spaces: `:\s*([+-]?[.\d]+)\s*\)`) and `modules/extra_networks.py`
//! (`<(\w+):([^>]+)>` tags). The tokenizer here is written by hand to mirror that regex's
//! alternatives in order; nothing is copied.
//!
//! Quirks reproduced on purpose, because prompts written for A1111 rely on them:
//! - `(a:1.5e1)` is *not* a weight (the regex has no exponent): `:` and `1.5e1` stay text and
//!   the `)` closes the bracket with ×1.1.
//! - A weight such as `(a:1.2.3)` matches the regex but Python's `float()` rejects it, so A1111
//!   fails; we return [`PromptError::BadWeight`].
//! - Unbalanced `(` / `[` apply their multiplier up to the end; stray `)` / `]` are literal.
//! - A lone backslash not followed by `()[]\` vanishes (A1111 emits `text[1:]` of `\`).
//! - `BREAK` is emitted as the piece `("BREAK", -1.0)`; inside brackets its weight gets
//!   multiplied too, and then (as in A1111) it is no longer a break but plain text.

use thiserror::Error;

/// Weight A1111 gives the `BREAK` marker piece.
pub const BREAK_WEIGHT: f32 = -1.0;

/// Errors for prompts that Automatic1111 also rejects.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PromptError {
    /// `(text:W)` where `W` matched `[+-]?[.\d]+` but is not a number (e.g. `1.2.3`, `.`).
    #[error("invalid attention weight {0:?}")]
    BadWeight(String),
    /// A `<lora:name:W>` tag whose weight is not a number.
    #[error("invalid weight {weight:?} for lora {name:?}")]
    BadLoraWeight {
        /// The LoRA name.
        name: String,
        /// The offending text.
        weight: String,
    },
}

/// True if `piece` is the `BREAK` marker (text `BREAK`, weight exactly −1), as A1111 tests it.
pub fn is_break(piece: &(String, f32)) -> bool {
    piece.0 == "BREAK" && piece.1 == BREAK_WEIGHT
}

/// Python's `str.isspace()`, which is what `\s` means in A1111's regexes.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `\w` for str patterns (approximately: alphanumeric or `_`).
fn py_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One lexeme of A1111's `re_attention`.
enum Lex {
    /// `\(` `\)` `\[` `\]` `\\` (the escaped char) or a lone `\` (empty string).
    Escaped(String),
    Open,
    OpenSquare,
    /// `:\s*NUMBER\s*)`: the number text and the whole match.
    Weight(String, String),
    Close,
    CloseSquare,
    /// Anything else, including lone `:`.
    Text(String),
}

/// Splits `chars` into lexemes the way `re_attention.finditer` does (leftmost alternative wins).
fn lex(chars: &[char]) -> Vec<Lex> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => match chars.get(i + 1) {
                Some(&n @ ('(' | ')' | '[' | ']' | '\\')) => {
                    out.push(Lex::Escaped(n.to_string()));
                    i += 2;
                }
                _ => {
                    out.push(Lex::Escaped(String::new()));
                    i += 1;
                }
            },
            '(' => {
                out.push(Lex::Open);
                i += 1;
            }
            '[' => {
                out.push(Lex::OpenSquare);
                i += 1;
            }
            ')' => {
                out.push(Lex::Close);
                i += 1;
            }
            ']' => {
                out.push(Lex::CloseSquare);
                i += 1;
            }
            ':' => {
                if let Some((num, end)) = match_weight(chars, i) {
                    out.push(Lex::Weight(num, chars[i..end].iter().collect()));
                    i = end;
                } else {
                    out.push(Lex::Text(":".to_string()));
                    i += 1;
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], '\\' | '(' | ')' | '[' | ']' | ':') {
                    i += 1;
                }
                out.push(Lex::Text(chars[start..i].iter().collect()));
            }
        }
    }
    out
}

/// Matches `:\s*([+-]?[.\d]+)\s*\)` at `start` (which holds `:`); returns the number and the
/// end index. `\d` is limited to ASCII digits here (Python would also take other Nd digits).
fn match_weight(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start + 1;
    while i < chars.len() && py_isspace(chars[i]) {
        i += 1;
    }
    let num_start = i;
    if i < chars.len() && matches!(chars[i], '+' | '-') {
        i += 1;
    }
    let digits_start = i;
    while i < chars.len() && (chars[i] == '.' || chars[i].is_ascii_digit()) {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    let num: String = chars[num_start..i].iter().collect();
    while i < chars.len() && py_isspace(chars[i]) {
        i += 1;
    }
    (chars.get(i) == Some(&')')).then_some((num, i + 1))
}

/// Python's `float()` restricted to what `[+-]?[.\d]+` can match.
fn parse_weight(num: &str) -> Result<f64, PromptError> {
    num.parse::<f64>()
        .map_err(|_| PromptError::BadWeight(num.to_string()))
}

/// `re.split(r"\s*\bBREAK\b\s*", text)`: the parts between `BREAK` keywords.
fn split_break(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let word = |i: usize| chars.get(i).is_some_and(|&c| py_word(c));
    let mut parts = Vec::new();
    let mut part_start = 0; // where the current part begins (end of the previous match)
    let mut i = 0;
    while i + 5 <= chars.len() {
        let is_kw = chars[i..i + 5].iter().copied().eq("BREAK".chars())
            && (i == 0 || !word(i - 1))
            && !word(i + 5);
        if !is_kw {
            i += 1;
            continue;
        }
        let mut m_start = i;
        while m_start > part_start && py_isspace(chars[m_start - 1]) {
            m_start -= 1;
        }
        let mut m_end = i + 5;
        while m_end < chars.len() && py_isspace(chars[m_end]) {
            m_end += 1;
        }
        parts.push(chars[part_start..m_start].iter().collect());
        part_start = m_end;
        i = m_end;
    }
    parts.push(chars[part_start..].iter().collect());
    parts
}

/// Parses A1111 attention syntax into `(text, weight)` pieces, with `BREAK` as
/// `("BREAK", -1.0)` (see [`is_break`]).
///
/// `(x)` multiplies by 1.1, `[x]` divides by 1.1, `(x:W)` multiplies by `W`; nesting
/// multiplies; `\(` `\)` `\[` `\]` `\\` are literals; adjacent pieces of equal weight are
/// merged. Weights are computed in `f64` as Python does and rounded to `f32` at the end.
///
/// ```
/// use rotograph_sd::prompt::parse_prompt_attention;
/// let p = parse_prompt_attention("an (important) word").unwrap();
/// assert_eq!(p, vec![("an ".into(), 1.0), ("important".into(), 1.1), (" word".into(), 1.0)]);
/// ```
pub fn parse_prompt_attention(text: &str) -> Result<Vec<(String, f32)>, PromptError> {
    const ROUND: f64 = 1.1;
    const SQUARE: f64 = 1.0 / 1.1;

    let chars: Vec<char> = text.chars().collect();
    let mut res: Vec<(String, f64)> = Vec::new();
    let mut round: Vec<usize> = Vec::new();
    let mut square: Vec<usize> = Vec::new();

    fn multiply(res: &mut [(String, f64)], from: usize, m: f64) {
        for piece in res.iter_mut().skip(from) {
            piece.1 *= m;
        }
    }
    fn push_text(res: &mut Vec<(String, f64)>, text: &str) {
        for (i, part) in split_break(text).into_iter().enumerate() {
            if i > 0 {
                res.push(("BREAK".to_string(), f64::from(BREAK_WEIGHT)));
            }
            res.push((part, 1.0));
        }
    }

    for lexeme in lex(&chars) {
        match lexeme {
            Lex::Escaped(s) => res.push((s, 1.0)),
            Lex::Open => round.push(res.len()),
            Lex::OpenSquare => square.push(res.len()),
            Lex::Weight(num, whole) => match round.pop() {
                Some(from) => multiply(&mut res, from, parse_weight(&num)?),
                None => push_text(&mut res, &whole),
            },
            Lex::Close => match round.pop() {
                Some(from) => multiply(&mut res, from, ROUND),
                None => push_text(&mut res, ")"),
            },
            Lex::CloseSquare => match square.pop() {
                Some(from) => multiply(&mut res, from, SQUARE),
                None => push_text(&mut res, "]"),
            },
            Lex::Text(s) => push_text(&mut res, &s),
        }
    }
    for from in round {
        multiply(&mut res, from, ROUND);
    }
    for from in square {
        multiply(&mut res, from, SQUARE);
    }
    if res.is_empty() {
        res.push((String::new(), 1.0));
    }

    let mut merged: Vec<(String, f64)> = Vec::with_capacity(res.len());
    for (text, weight) in res {
        match merged.last_mut() {
            Some(last) if last.1 == weight => last.0.push_str(&text),
            _ => merged.push((text, weight)),
        }
    }
    Ok(merged.into_iter().map(|(t, w)| (t, w as f32)).collect())
}

/// A `<lora:name:weight>` tag (A1111's built-in Lora extension; `<lyco:…>` is its alias).
#[derive(Debug, Clone, PartialEq)]
pub struct Lora {
    /// Network name (file stem).
    pub name: String,
    /// Text-encoder multiplier: second positional argument or `te=`, default 1.0.
    pub weight: f32,
    /// UNet multiplier: third positional argument or `unet=`, default `weight`.
    pub unet_weight: f32,
}

/// Python `float()` on a tag argument: surrounding whitespace allowed, `inf`/`nan` accepted.
fn py_float(s: &str) -> Option<f32> {
    s.trim().parse::<f32>().ok()
}

/// Removes every extra-network tag `<word:args>` from `prompt` (A1111 strips them all, known
/// or not) and returns the remaining prompt plus the `lora`/`lyco` tags in order.
///
/// Arguments are split on `:`; `key=value` items are named (`te`, `unet`), the rest positional
/// (`name`, te weight, unet weight). A non-numeric weight is an error, as in A1111.
pub fn extract_loras(prompt: &str) -> Result<(String, Vec<Lora>), PromptError> {
    let chars: Vec<char> = prompt.chars().collect();
    let mut out = String::with_capacity(prompt.len());
    let mut loras = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if let Some((kind, args, end)) = match_tag(&chars, i) {
            if kind == "lora" || kind == "lyco" {
                loras.push(lora_from_args(&args)?);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Ok((out, loras))
}

/// Matches `<(\w+):([^>]+)>` at `start`: returns (kind, args, end index).
fn match_tag(chars: &[char], start: usize) -> Option<(String, String, usize)> {
    if chars[start] != '<' {
        return None;
    }
    let mut i = start + 1;
    while i < chars.len() && py_word(chars[i]) {
        i += 1;
    }
    if i == start + 1 || chars.get(i) != Some(&':') {
        return None;
    }
    let kind: String = chars[start + 1..i].iter().collect();
    let args_start = i + 1;
    let close = args_start + chars.get(args_start..)?.iter().position(|&c| c == '>')?;
    if close == args_start {
        return None;
    }
    Some((kind, chars[args_start..close].iter().collect(), close + 1))
}

fn lora_from_args(args: &str) -> Result<Lora, PromptError> {
    let mut positional: Vec<&str> = Vec::new();
    let mut te: Option<&str> = None;
    let mut unet: Option<&str> = None;
    for item in args.split(':') {
        // Python `item.split('=', 2)` has exactly two parts only for a single `=`.
        match item.split_once('=') {
            Some((k, v)) if !v.contains('=') => match k {
                "te" => te = Some(v),
                "unet" => unet = Some(v),
                _ => {}
            },
            _ => positional.push(item),
        }
    }
    let name = positional.first().copied().unwrap_or_default().to_string();
    let parse = |s: &str| {
        py_float(s).ok_or_else(|| PromptError::BadLoraWeight {
            name: name.clone(),
            weight: s.to_string(),
        })
    };
    let mut weight = match positional.get(1) {
        Some(s) => parse(s)?,
        None => 1.0,
    };
    if let Some(s) = te {
        weight = parse(s)?;
    }
    let mut unet_weight = match positional.get(2) {
        Some(s) => parse(s)?,
        None => weight,
    };
    if let Some(s) = unet {
        unet_weight = parse(s)?;
    }
    Ok(Lora {
        name,
        weight,
        unet_weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_break_matches_python_re_split() {
        assert_eq!(split_break("a BREAK b"), vec!["a", "b"]);
        assert_eq!(split_break("aBREAK b"), vec!["aBREAK b"]);
        assert_eq!(split_break("BREAK BREAK"), vec!["", "", ""]);
        assert_eq!(split_break("x,BREAK,y"), vec!["x,", ",y"]);
        assert_eq!(split_break("BREAK_"), vec!["BREAK_"]);
        assert_eq!(split_break("\u{e9}BREAK"), vec!["\u{e9}BREAK"]);
    }

    #[test]
    fn weight_regex() {
        let c: Vec<char> = ": +1.5 )x".chars().collect();
        assert_eq!(match_weight(&c, 0), Some(("+1.5".to_string(), 8)));
        let c: Vec<char> = ":1.5e1)".chars().collect();
        assert_eq!(match_weight(&c, 0), None);
        let c: Vec<char> = ":-)".chars().collect();
        assert_eq!(match_weight(&c, 0), None);
    }
}
