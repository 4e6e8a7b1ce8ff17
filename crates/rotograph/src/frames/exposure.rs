//! Exposure sheets: which source frame each output frame shows ("on twos", holds).
// STUB: to be implemented (issue 2, frames & video helper).

use crate::error::Result;

/// The sequence of 1-based source frame numbers to show, one per output frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure(pub Vec<usize>);

impl Exposure {
    /// Parses an exposure sheet such as `"1-8, 8x4, 9-16"`: `A-B` shows frames A..=B (or
    /// backwards when B < A), `NxK` holds frame N for K output frames, `N` shows frame N once.
    pub fn parse(text: &str) -> Result<Self> {
        let _ = text;
        unimplemented!("exposure parsing")
    }

    /// Every one of `count` frames held `on` times (`--on 2` = on twos).
    pub fn on(count: usize, on: usize) -> Self {
        Exposure(
            (1..=count)
                .flat_map(|n| std::iter::repeat_n(n, on))
                .collect(),
        )
    }

    /// Checks every entry is within `1..=count`; the error names the first entry out of range.
    pub fn check(&self, count: usize) -> Result<()> {
        let _ = count;
        unimplemented!("exposure check")
    }
}
