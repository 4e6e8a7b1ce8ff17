//! Tokens of the schedule language, each with its 1-based column.

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Name(String),
    /// Operators and punctuation: `+ - * / // % ** ( ) [ ] , . = == != < <= > >=`, and the
    /// unsupported `~ & | ^ << >> @ { } : ;` so that the parser can name them.
    Op(&'static str),
    End,
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub col: usize,
}

/// A lexing error: column and message.
pub(crate) type LexError = (usize, String);

const OPS: [&str; 31] = [
    "**", "//", "==", "!=", "<=", ">=", "<<", ">>", "->", ":=", "+", "-", "*", "/", "%", "(", ")",
    "[", "]", ",", ".", "=", "<", ">", "~", "&", "|", "^", "@", ":", ";",
];

/// Splits `text` into tokens (ending with [`Tok::End`]).
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let (tok, next) = number(&chars, i)?;
            out.push(Token { tok, col });
            i = next;
            continue;
        }
        if c == '_' || c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i] == '_' || chars[i].is_alphanumeric()) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            // String prefixes (f"", r"", b"") are not part of the language.
            if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                return Err((
                    col,
                    format!("string prefixes like `{name}\"...\"` are not supported; write a plain \"...\" string"),
                ));
            }
            out.push(Token {
                tok: Tok::Name(name),
                col,
            });
            continue;
        }
        if c == '"' || c == '\'' {
            let (s, next) = string(&chars, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                col,
            });
            i = next;
            continue;
        }
        let rest2: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        // Two-character operators come first in OPS, so `**` wins over `*`.
        if let Some(op) = OPS.iter().find(|op| rest2.starts_with(*op)) {
            out.push(Token {
                tok: Tok::Op(op),
                col,
            });
            i += op.chars().count();
            continue;
        }
        return Err((
            col,
            format!(
                "unexpected character `{c}`: expected a number, a name, an operator or a bracket"
            ),
        ));
    }
    out.push(Token {
        tok: Tok::End,
        col: chars.len() + 1,
    });
    Ok(out)
}

/// Reads digits (with single `_` separators between digits) from `i`; returns the end.
fn digits(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, LexError> {
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            out.push(c);
            i += 1;
        } else if c == '_' && chars.get(i + 1).is_some_and(char::is_ascii_digit) && !out.is_empty()
        {
            i += 1;
        } else if c == '_' {
            return Err((
                i + 1,
                "`_` in a number must sit between two digits (like 1_000)".into(),
            ));
        } else {
            break;
        }
    }
    Ok(i)
}

/// A Python number literal: `12`, `1_000`, `1.5`, `.5`, `5.`, `1e-3`, `2.5E+4`.
fn number(chars: &[char], start: usize) -> Result<(Tok, usize), LexError> {
    let col = start + 1;
    let mut s = String::new();
    let mut i = digits(chars, start, &mut s)?;
    let int_part_len = s.len();
    let mut is_float = false;
    if i < chars.len() && chars[i] == '.' {
        is_float = true;
        s.push('.');
        i = digits(chars, i + 1, &mut s)?;
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            exp.push(chars[j]);
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            let mut d = String::new();
            i = digits(chars, j, &mut d)?;
            exp.push_str(&d);
            s.push_str(&exp);
            is_float = true;
        } else {
            return Err((
                col,
                "expected digits after the exponent `e` of a number".into(),
            ));
        }
    }
    if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        let what = if s == "0" && matches!(chars[i], 'x' | 'X' | 'o' | 'O' | 'b' | 'B') {
            "hexadecimal, octal and binary literals are not supported; write the number in decimal"
                .to_string()
        } else {
            format!(
                "unexpected `{}` right after the number: expected an operator",
                chars[i]
            )
        };
        return Err((i + 1, what));
    }
    if is_float {
        // Rust parses decimal strings with correct rounding, like Python.
        let v: f64 = s
            .parse()
            .map_err(|_| (col, format!("`{s}` is not a valid number")))?;
        Ok((Tok::Float(v), i))
    } else {
        if int_part_len > 1 && s.starts_with('0') && s.chars().any(|c| c != '0') {
            return Err((
                col,
                "leading zeros are not allowed in an integer (write 7, not 07)".into(),
            ));
        }
        let v: i64 = s.parse().map_err(|_| {
            (
                col,
                format!(
                    "integer `{s}` is too large: integers are 64-bit (at most 9223372036854775807)"
                ),
            )
        })?;
        Ok((Tok::Int(v), i))
    }
}

/// A single- or double-quoted string with the escapes `\\ \' \" \n \t`.
fn string(chars: &[char], start: usize) -> Result<(String, usize), LexError> {
    let quote = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((s, i + 1));
        }
        if c == '\n' {
            break;
        }
        if c == '\\' {
            let e = chars.get(i + 1).copied();
            s.push(match e {
                Some('\\') => '\\',
                Some('\'') => '\'',
                Some('"') => '"',
                Some('n') => '\n',
                Some('t') => '\t',
                _ => {
                    return Err((
                        i + 1,
                        "unknown escape in a string: expected \\\\, \\', \\\", \\n or \\t".into(),
                    ))
                }
            });
            i += 2;
            continue;
        }
        s.push(c);
        i += 1;
    }
    Err((
        start + 1,
        format!("string is not closed: expected a closing {quote}"),
    ))
}
