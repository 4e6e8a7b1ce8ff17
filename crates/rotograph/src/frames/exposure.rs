//! Exposure sheets: which source frame each output frame shows ("on twos", holds).

use crate::error::{Error, Result};

/// The most output frames an exposure sheet may describe (guards against `1x999999999`).
pub const MAX_EXPOSURE_FRAMES: usize = 10_000_000;

/// The sequence of 1-based source frame numbers to show, one per output frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure(pub Vec<usize>);

/// A character cursor over the sheet that knows 1-based columns.
struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// 1-based column of the current position.
    fn column(&self) -> usize {
        self.pos + 1
    }

    fn error(&self, column: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            what: "exposure sheet".into(),
            text: self.text.to_string(),
            column,
            message: message.into(),
        }
    }

    /// Reads a positive number; `role` says what it is for in errors.
    fn number(&mut self, role: &str) -> Result<(usize, usize)> {
        self.skip_ws();
        let col = self.column();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            let found = match self.peek() {
                Some(c) => format!("found `{c}`"),
                None => "the sheet ends here".to_string(),
            };
            return Err(self.error(
                col,
                format!(
                    "expected {role}, {found}; entries are N, A-B or NxK separated by commas \
                     (e.g. `1-8, 8x4, 9-16`)"
                ),
            ));
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        let n: usize = digits
            .parse()
            .map_err(|_| self.error(col, format!("{role} `{digits}` is too large")))?;
        Ok((n, col))
    }
}

impl Exposure {
    /// Parses an exposure sheet such as `"1-8, 8x4, 9-16"`: `A-B` shows frames A..=B (or
    /// backwards when B < A), `NxK` holds frame N for K output frames, `N` shows frame N once.
    pub fn parse(text: &str) -> Result<Self> {
        let mut c = Cursor {
            chars: text.chars().collect(),
            pos: 0,
            text,
        };
        let mut out = Vec::new();
        c.skip_ws();
        if c.peek().is_none() {
            return Err(c.error(
                1,
                "the exposure sheet is empty; give entries like `1-8, 8x4, 9-16`",
            ));
        }
        loop {
            let (first, first_col) = c.number("a frame number")?;
            if first == 0 {
                return Err(c.error(first_col, "frame numbers start at 1"));
            }
            c.skip_ws();
            let entry_len;
            match c.peek() {
                Some('-') => {
                    c.pos += 1;
                    let (last, last_col) = c.number("the last frame of the range")?;
                    if last == 0 {
                        return Err(c.error(last_col, "frame numbers start at 1"));
                    }
                    entry_len = first.abs_diff(last) + 1;
                    check_total(&c, out.len(), entry_len, first_col)?;
                    if last >= first {
                        out.extend(first..=last);
                    } else {
                        out.extend((last..=first).rev());
                    }
                }
                Some('x' | 'X' | '*') => {
                    c.pos += 1;
                    let (times, times_col) = c.number("a hold count")?;
                    if times == 0 {
                        return Err(c.error(times_col, "a hold count must be at least 1"));
                    }
                    entry_len = times;
                    check_total(&c, out.len(), entry_len, first_col)?;
                    out.extend(std::iter::repeat_n(first, times));
                }
                _ => {
                    out.push(first);
                }
            }
            c.skip_ws();
            match c.peek() {
                None => break,
                Some(',') => {
                    c.pos += 1;
                    c.skip_ws();
                    // A trailing comma is harmless.
                    if c.peek().is_none() {
                        break;
                    }
                }
                Some(ch) => {
                    return Err(c.error(
                        c.column(),
                        format!("unexpected `{ch}`; separate entries with commas"),
                    ));
                }
            }
        }
        Ok(Exposure(out))
    }

    /// Every one of `count` frames held `on` times (`--on 2` = on twos).
    pub fn on(count: usize, on: usize) -> Self {
        Exposure(
            (1..=count)
                .flat_map(|n| std::iter::repeat_n(n, on))
                .collect(),
        )
    }

    /// Number of output frames.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the sheet shows no frame.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every entry is within `1..=count`; the error names the first entry out of range.
    pub fn check(&self, count: usize) -> Result<()> {
        if self.0.is_empty() {
            return Err(Error::setting(
                "exposure",
                "the exposure sheet shows no frame; give entries like `1-8, 8x4, 9-16`",
            ));
        }
        if let Some((i, &n)) = self
            .0
            .iter()
            .enumerate()
            .find(|&(_, &n)| n == 0 || n > count)
        {
            return Err(Error::setting(
                "exposure",
                format!(
                    "output frame {} shows source frame {n}, but there are only {count} frames \
                     (1..={count}); shorten the sheet or check the frame folder",
                    i + 1
                ),
            ));
        }
        Ok(())
    }
}

fn check_total(c: &Cursor<'_>, have: usize, adding: usize, column: usize) -> Result<()> {
    if have.saturating_add(adding) > MAX_EXPOSURE_FRAMES {
        return Err(c.error(
            column,
            format!("this entry makes the sheet longer than {MAX_EXPOSURE_FRAMES} frames"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column_of(text: &str) -> usize {
        match Exposure::parse(text) {
            Err(Error::Parse { column, what, .. }) => {
                assert_eq!(what, "exposure sheet");
                column
            }
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_ranges_holds_and_singles() {
        assert_eq!(
            Exposure::parse("1-3, 3x2, 2").unwrap().0,
            vec![1, 2, 3, 3, 3, 2]
        );
        assert_eq!(Exposure::parse("5-2").unwrap().0, vec![5, 4, 3, 2]);
        assert_eq!(Exposure::parse(" 4 ").unwrap().0, vec![4]);
        assert_eq!(
            Exposure::parse("1 - 2 ,2 X 3,\t7").unwrap().0,
            vec![1, 2, 2, 2, 2, 7]
        );
        assert_eq!(Exposure::parse("3-3,").unwrap().0, vec![3]);
        assert_eq!(Exposure::parse("1-8, 8x4, 9-16").unwrap().len(), 8 + 4 + 8);
    }

    #[test]
    fn errors_point_at_the_bad_token() {
        assert_eq!(column_of("1-8, x4"), 6);
        assert_eq!(column_of("1-8, 8x"), 8);
        assert_eq!(column_of("1-"), 3);
        assert_eq!(column_of("1-8 9"), 5);
        assert_eq!(column_of("0-3"), 1);
        assert_eq!(column_of("2x0"), 3);
        assert_eq!(column_of(""), 1);
        assert_eq!(column_of("1,,2"), 3);
        assert_eq!(column_of("1x99999999999999999999999"), 3);
        assert_eq!(column_of("1, 2x20000000"), 4);
        let e = Exposure::parse("1-8, x4").unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_BAD_INPUT);
        assert!(e.to_string().contains("expected a frame number"), "{e}");
    }

    #[test]
    fn check_names_the_entry_out_of_range() {
        let e = Exposure::parse("1-3, 9").unwrap();
        assert!(e.check(9).is_ok());
        let err = e.check(5).unwrap_err().to_string();
        assert!(
            err.contains("output frame 4") && err.contains("source frame 9"),
            "{err}"
        );
        assert!(Exposure(vec![]).check(3).is_err());
        assert_eq!(Exposure::on(2, 3).0, vec![1, 1, 1, 2, 2, 2]);
    }
}
