//! The consistency report behind `rotograph check`: per-frame warping error (E_warp, see
//! [`super::consistency`]) of a stylized sequence along the motion of its source, the share of
//! each frame whose motion is reliable, a summary, and the frames that stand out as likely bad
//! renders (to re-roll with another seed).
//!
//! **The flag rule.** Pair `t` is the E_warp between stylized frames `t-1` and `t`. How large
//! E_warp is depends on the shot (motion, texture, occlusions), so a frame is judged against
//! its own neighbourhood, not against the clip. A bad frame disagrees with *both* of its
//! neighbours, so frame `t`'s excess is the smaller of its two pair errors,
//! `min(E(t-1,t), E(t,t+1))`, and its *reference* is the median E_warp of the pairs around it
//! that do not touch it and lie in its shot (up to [`REFERENCE_PAIRS`] on each side:
//! `E(t-4,t-3) .. E(t-2,t-1)` and `E(t+1,t+2) .. E(t+3,t+4)`, stopping at a scene cut: a pair
//! whose reliable share is under [`CUT_COVERAGE`]), at least [`MIN_REFERENCE`]. Its *score* is excess /
//! reference, and it is flagged when the score exceeds `k` ([`CheckOptions::threshold`],
//! default [`DEFAULT_THRESHOLD`]). A scene cut or a burst of fast motion raises a single pair,
//! so the frames on both sides of it keep a low excess, and each is compared with its own shot
//! only, not with a mix of two shots' levels. A frame needs both pairs and at least two reference pairs to be
//! scored: the first and last frames (one pair cannot tell a bad frame from a cut) and clips
//! under five frames flag nothing; their `warp_error` is still reported.
//!
//! Frames stream through [`Checker`]: memory holds two source pyramids and one stylized frame,
//! plus a few numbers per frame for the report, whatever the clip's length.

use super::consistency::WarpErrorMeter;
use crate::error::{Error, Result};
use crate::flow::FlowParams;
use crate::frames::{FrameInfo, FrameSource};
use crate::progress::{Event, Progress};
use image::{Rgba, RgbaImage};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Default `k` of the flag rule: a frame is flagged when both of its pairs are more than `k`
/// times the E_warp of the pairs around it.
pub const DEFAULT_THRESHOLD: f64 = 3.0;
/// A pair whose share of reliable pixels is below this is a scene cut: the flow finds no
/// consistent motion between the two source frames (about 1% at a cut on real footage against
/// 70-85% within shots).
pub const CUT_COVERAGE: f64 = 0.2;
/// Reference pairs taken on each side of a frame.
pub const REFERENCE_PAIRS: usize = 3;
/// Least reference E_warp (a 0.8-level RMS difference in 8 bits), so that a sequence of
/// identical frames does not turn a rounding difference into a huge score.
pub const MIN_REFERENCE: f64 = 1e-5;

/// How stylized frames are paired with source frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Matching {
    /// By name when the first two frames have the same name (stylized outputs mirror their
    /// source names), by order otherwise.
    #[default]
    Auto,
    /// Every stylized frame must have its source frame's name.
    Name,
    /// The n-th stylized frame goes with the n-th source frame.
    Order,
}

/// Options of [`check`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Flow engine knobs for the source motion.
    pub params: FlowParams,
    /// `k` of the flag rule (see the module docs); must be positive.
    pub threshold: f64,
    /// How frames are paired.
    pub matching: Matching,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            params: FlowParams::default(),
            threshold: DEFAULT_THRESHOLD,
            matching: Matching::Auto,
        }
    }
}

impl CheckOptions {
    /// Checks the knobs; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(Error::setting(
                "threshold",
                format!(
                    "{} is not a positive number; give k > 0 (default {DEFAULT_THRESHOLD}: \
                     flag frames whose E_warp is k times that of the frames around them)",
                    self.threshold
                ),
            ));
        }
        self.params.validate()
    }
}

/// One frame of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrameCheck {
    /// 0-based position in the sequence.
    pub index: usize,
    /// The stylized frame's name.
    pub name: String,
    /// The name of the source frame it was paired with.
    pub source_name: String,
    /// E_warp between the previous stylized frame and this one (mean squared RGB difference
    /// in 0..1 over reliable pixels); `None` for the first frame or when no pixel is reliable.
    pub warp_error: Option<f64>,
    /// Fraction of this frame whose motion from the previous source frame is reliable;
    /// `None` for the first frame.
    pub coverage: Option<f64>,
    /// The typical E_warp around the frame: the median of the nearby pairs of its shot that do
    /// not touch it (see the module docs); `None` when the frame is not scored.
    pub reference: Option<f64>,
    /// The frame's score: the smaller E_warp of its two pairs divided by `reference`.
    pub score: Option<f64>,
    /// True when the score is above the threshold.
    pub flagged: bool,
}

/// Mean, median and largest E_warp over the pairs of a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckSummary {
    /// Mean E_warp over pairs with a value.
    pub mean: Option<f64>,
    /// Median E_warp.
    pub median: Option<f64>,
    /// Largest E_warp.
    pub max: Option<f64>,
    /// The stylized frame that ends the pair with the largest E_warp.
    pub max_frame: Option<String>,
    /// Mean reliable-pixel coverage over the pairs.
    pub mean_coverage: Option<f64>,
}

/// The consistency report of a stylized sequence.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckReport {
    /// Frames compared.
    pub frame_count: usize,
    /// Consecutive pairs with an E_warp value.
    pub pairs: usize,
    /// `k` of the flag rule: frames scoring above it are flagged.
    pub threshold: f64,
    /// Summary over the pairs.
    pub summary: CheckSummary,
    /// Names of the flagged stylized frames, in order.
    pub flagged: Vec<String>,
    /// Every frame.
    pub frames: Vec<FrameCheck>,
}

/// Streaming form of [`check`]: push each source frame with its stylized frame, then
/// [`Checker::finish`].
#[derive(Debug)]
pub struct Checker {
    meter: WarpErrorMeter,
    threshold: f64,
    matching: Matching,
    by_name: Option<bool>,
    rows: Vec<FrameCheck>,
    stylized_path: PathBuf,
    source_path: PathBuf,
}

impl Checker {
    /// A checker with these options. `stylized` and `source` are the inputs' paths, used to
    /// name them in errors.
    pub fn new(opts: &CheckOptions, stylized: &Path, source: &Path) -> Result<Self> {
        opts.validate()?;
        Ok(Checker {
            meter: WarpErrorMeter::new(opts.params.clone())?,
            threshold: opts.threshold,
            matching: opts.matching,
            by_name: None,
            rows: Vec::new(),
            stylized_path: stylized.to_path_buf(),
            source_path: source.to_path_buf(),
        })
    }

    /// Adds the next frame: its source frame and its stylized frame. Errors when the names do
    /// not match under name matching, or the sizes differ.
    pub fn push(
        &mut self,
        source: (&FrameInfo, &RgbaImage),
        stylized: (&FrameInfo, &RgbaImage),
    ) -> Result<&FrameCheck> {
        let (sinfo, simg) = source;
        let (tinfo, timg) = stylized;
        let index = self.rows.len();
        let by_name = *self.by_name.get_or_insert(match self.matching {
            Matching::Auto => sinfo.name == tinfo.name,
            Matching::Name => true,
            Matching::Order => false,
        });
        if by_name && sinfo.name != tinfo.name {
            return Err(Error::bad_input(
                &self.stylized_path,
                format!(
                    "frame {} (#{}) has no source frame of that name: the source's frame #{} \
                     is {} in {}; stylize the same frames (same --fps, --max-frames, \
                     --extract-nth-frame) or pair frames by order (--match order)",
                    tinfo.name,
                    index + 1,
                    index + 1,
                    sinfo.name,
                    self.source_path.display()
                ),
            ));
        }
        if simg.dimensions() != timg.dimensions() {
            return Err(Error::bad_input(
                &self.stylized_path,
                format!(
                    "frame {} is {}x{} but its source frame {} in {} is {}x{}; read the \
                     source at the stylized size (--size {}x{})",
                    tinfo.name,
                    timg.width(),
                    timg.height(),
                    sinfo.name,
                    self.source_path.display(),
                    simg.width(),
                    simg.height(),
                    timg.width(),
                    timg.height()
                ),
            ));
        }
        let (warp_error, coverage) = match self.meter.push(simg, timg)? {
            Some((motion, err)) => (err, Some(motion.coverage())),
            None => (None, None),
        };
        self.rows.push(FrameCheck {
            index,
            name: tinfo.name.clone(),
            source_name: sinfo.name.clone(),
            warp_error,
            coverage,
            reference: None,
            score: None,
            flagged: false,
        });
        Ok(&self.rows[index])
    }

    /// Number of frames pushed so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True before the first frame.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Scores and flags the frames and summarizes. Errors when fewer than two frames came.
    pub fn finish(mut self) -> Result<CheckReport> {
        if self.rows.len() < 2 {
            return Err(Error::bad_input(
                &self.stylized_path,
                format!(
                    "has {} frame(s); a consistency check needs at least two",
                    self.rows.len()
                ),
            ));
        }
        let errors: Vec<Option<f64>> = self.rows.iter().map(|r| r.warp_error).collect();
        let cuts: Vec<bool> = self
            .rows
            .iter()
            .map(|r| r.coverage.is_some_and(|c| c < CUT_COVERAGE))
            .collect();
        let flags = flag_frames(&errors, &cuts, self.threshold);
        for (i, row) in self.rows.iter_mut().enumerate() {
            row.reference = flags.references[i];
            row.score = flags.scores[i];
            row.flagged = flags.flagged[i];
        }
        let values: Vec<(usize, f64)> = errors
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i, e)))
            .collect();
        let covs: Vec<f64> = self.rows.iter().filter_map(|r| r.coverage).collect();
        let max = values.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        let summary = CheckSummary {
            mean: mean(values.iter().map(|v| v.1)),
            median: median(values.iter().map(|v| v.1).collect()),
            max: max.map(|m| m.1),
            max_frame: max.map(|m| self.rows[m.0].name.clone()),
            mean_coverage: mean(covs.iter().copied()),
        };
        Ok(CheckReport {
            frame_count: self.rows.len(),
            pairs: values.len(),
            threshold: self.threshold,
            summary,
            flagged: self
                .rows
                .iter()
                .filter(|r| r.flagged)
                .map(|r| r.name.clone())
                .collect(),
            frames: self.rows,
        })
    }
}

impl CheckReport {
    /// The report as a plain-text table (one row per frame: E_warp ×1000, reliable coverage,
    /// score, flag) followed by the summary and the flagged frames.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let opt = |v: Option<f64>, scale: f64, digits: usize| match v {
            Some(v) => format!("{:.*}", digits, v * scale),
            None => "-".to_string(),
        };
        let mut out = String::new();
        let w = self
            .frames
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "{:>5}  {:<w$}  {:>10}  {:>8}  {:>6}  flag",
            "#", "frame", "E_warp e-3", "reliable", "score"
        );
        for f in &self.frames {
            let line = format!(
                "{:>5}  {:<w$}  {:>10}  {:>8}  {:>6}  {}",
                f.index + 1,
                f.name,
                opt(f.warp_error, 1e3, 4),
                f.coverage
                    .map(|c| format!("{:.1}%", 100.0 * c))
                    .unwrap_or_else(|| "-".into()),
                opt(f.score, 1.0, 2),
                if f.flagged { "FLAGGED" } else { "" }
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\n{} frames, {} pairs; E_warp (x1e-3) mean {}, median {}, max {}{}; reliable pixels {}% \
             on average",
            self.frame_count,
            self.pairs,
            opt(s.mean, 1e3, 4),
            opt(s.median, 1e3, 4),
            opt(s.max, 1e3, 4),
            s.max_frame
                .as_ref()
                .map(|n| format!(" (at {n})"))
                .unwrap_or_default(),
            opt(s.mean_coverage, 100.0, 1)
        );
        if self.flagged.is_empty() {
            let _ = writeln!(
                out,
                "no frame flagged (threshold {}: a frame is flagged when both of its pairs \
                 exceed {} times the E_warp around it)",
                self.threshold, self.threshold
            );
        } else {
            let _ = writeln!(
                out,
                "{} frame(s) flagged (threshold {}), likely bad renders to redo with another \
                 seed: {}",
                self.flagged.len(),
                self.threshold,
                self.flagged.join(" ")
            );
        }
        out
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

/// The outcome of the flag rule over a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    /// Each frame's reference E_warp (`None`: not scored).
    pub references: Vec<Option<f64>>,
    /// Each frame's score (the smaller E_warp of its two pairs over its reference).
    pub scores: Vec<Option<f64>>,
    /// Whether each frame is flagged.
    pub flagged: Vec<bool>,
}

/// Applies the flag rule (module docs) to per-frame pair errors: `errors[t]` is E_warp between
/// frames t-1 and t (`errors[0]` is unused), `cuts[t]` whether that pair is a scene cut
/// (missing entries: no cut), `k` the threshold.
pub fn flag_frames(errors: &[Option<f64>], cuts: &[bool], k: f64) -> Flags {
    let n = errors.len();
    let pair = |i: usize| {
        if i >= 1 {
            errors.get(i).copied().flatten()
        } else {
            None
        }
    };
    let mut references = vec![None; n];
    let mut scores = vec![None; n];
    for t in 1..n.saturating_sub(1) {
        let (Some(a), Some(b)) = (pair(t), pair(t + 1)) else {
            continue;
        };
        // The pairs t-3..=t-1 and t+2..=t+4, not touching frame t, and within its shot: no
        // cut between the pair and the frame.
        let cut = |q: usize| cuts.get(q).copied().unwrap_or(false);
        let before = (t.saturating_sub(REFERENCE_PAIRS)..t).filter(|&p| !(p..=t).any(cut));
        let after = (t + 2..t + 2 + REFERENCE_PAIRS).filter(|&p| !(t + 1..=p).any(cut));
        let around: Vec<f64> = before.chain(after).filter_map(pair).collect();
        if around.len() < 2 {
            continue;
        }
        let reference = median(around).unwrap_or(0.0).max(MIN_REFERENCE);
        references[t] = Some(reference);
        scores[t] = Some(a.min(b) / reference);
    }
    let flagged = scores.iter().map(|s| s.is_some_and(|s| s > k)).collect();
    Flags {
        references,
        scores,
        flagged,
    }
}

/// Runs the consistency check of `stylized` against `source`, both streamed frame by frame
/// (see [`Checker`]); `stylized_path` and `source_path` name the inputs in errors. Both must
/// have the same number of frames. Stops with [`Error::Interrupted`] after the frame in flight
/// when `progress.should_stop()`.
pub fn check(
    stylized: &mut dyn FrameSource,
    stylized_path: &Path,
    source: &mut dyn FrameSource,
    source_path: &Path,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let mut checker = Checker::new(opts, stylized_path, source_path)?;
    progress.event(Event::Start {
        stage: "check".into(),
        total: stylized.len_hint().map(|n| n as u64),
    });
    loop {
        let (styl, src) = (stylized.next_frame()?, source.next_frame()?);
        let n = checker.len();
        let ((tinfo, tframe), (sinfo, sframe)) = match (styl, src) {
            (None, None) => break,
            (Some(t), Some(s)) => (t, s),
            (None, Some((sinfo, _))) => {
                return Err(count_error(
                    stylized_path,
                    source_path,
                    n,
                    &sinfo.name,
                    "source",
                ))
            }
            (Some((tinfo, _)), None) => {
                return Err(count_error(
                    source_path,
                    stylized_path,
                    n,
                    &tinfo.name,
                    "stylized",
                ))
            }
        };
        checker.push((&sinfo, &sframe.image), (&tinfo, &tframe.image))?;
        progress.event(Event::Frame {
            stage: "check".into(),
            index: n as u64,
            name: tinfo.name.clone(),
            skipped: false,
        });
        crate::frames::recycle(sframe);
        crate::frames::recycle(tframe);
        if progress.should_stop() {
            return Err(Error::Interrupted);
        }
    }
    progress.event(Event::Finish {
        stage: "check".into(),
    });
    checker.finish()
}

/// `short` ended after `n` frames while `long` (`long_kind`) has frame `extra`.
fn count_error(short: &Path, long: &Path, n: usize, extra: &str, long_kind: &str) -> Error {
    Error::bad_input(
        short,
        format!(
            "has {n} frames but the {long_kind} {} has more (frame {extra} has no partner); \
             both must have the same frames: read them with the same --fps, --max-frames and \
             --extract-nth-frame",
            long.display()
        ),
    )
}

/// Colours of [`plot`].
const BACKGROUND: Rgba<u8> = Rgba([255, 255, 255, 255]);
const AXIS: Rgba<u8> = Rgba([40, 40, 40, 255]);
const GRID: Rgba<u8> = Rgba([225, 225, 225, 255]);
const BAR: Rgba<u8> = Rgba([110, 150, 210, 255]);
const LINE: Rgba<u8> = Rgba([30, 70, 150, 255]);
const FLAG: Rgba<u8> = Rgba([215, 40, 40, 255]);

/// A `width`x`height` chart of the report: one bar per frame for its E_warp (from the previous
/// frame), a dark blue line at `threshold · reference` of each scored frame (the level both of
/// a frame's pairs must exceed to flag it), and flagged frames as red bars with a red marker
/// above. The y axis starts at 0, has grey grid lines at
/// quarters of its top, and ends 10 % above the largest value; the x axis has a tick every 10
/// frames (longer every 50). Values are in the JSON report; the chart has no text.
pub fn plot(report: &CheckReport, width: u32, height: u32) -> Result<RgbaImage> {
    if width < 64 || height < 48 {
        return Err(Error::setting(
            "plot size",
            format!("{width}x{height} is too small; give at least 64x48"),
        ));
    }
    let mut img = RgbaImage::from_pixel(width, height, BACKGROUND);
    let (left, right, top, bottom) = (24i64, width as i64 - 12, 12i64, height as i64 - 20);
    let n = report.frames.len().max(1);
    let k = report.threshold;
    let top_value = report
        .frames
        .iter()
        .flat_map(|f| [f.warp_error, f.reference.map(|r| r * k)])
        .flatten()
        .fold(0.0f64, f64::max);
    let top_value = if top_value > 0.0 {
        top_value * 1.1
    } else {
        1.0
    };
    let y_of = |v: f64| bottom - ((v / top_value) * (bottom - top) as f64).round() as i64;
    let span = (right - left) as f64 / n as f64;
    let x_of = |i: usize| left + ((i as f64 + 0.5) * span).round() as i64;
    for q in 1..=4 {
        let y = y_of(top_value / 1.1 * q as f64 / 4.0);
        hline(&mut img, left, right, y, GRID);
    }
    let half = ((span * 0.35).floor() as i64).max(0);
    for f in &report.frames {
        if let Some(e) = f.warp_error {
            let x = x_of(f.index);
            let colour = if f.flagged { FLAG } else { BAR };
            fill(&mut img, x - half, x + half, y_of(e), bottom, colour);
        }
    }
    // The level both pairs of a frame must exceed for it to be flagged.
    let cutoff: Vec<(i64, i64)> = report
        .frames
        .iter()
        .filter_map(|f| f.reference.map(|r| (x_of(f.index), y_of(r * k))))
        .collect();
    for w in cutoff.windows(2) {
        line(&mut img, w[0], w[1], LINE);
    }
    for f in report.frames.iter().filter(|f| f.flagged) {
        let x = x_of(f.index);
        let y = f.warp_error.map(y_of).unwrap_or(bottom).max(top + 10) - 4;
        for r in 0..5 {
            hline(&mut img, x - r, x + r, y - 4 + r, FLAG);
        }
    }
    // Axes and ticks.
    fill(&mut img, left - 1, left, top, bottom, AXIS);
    hline(&mut img, left - 1, right, bottom, AXIS);
    hline(&mut img, left - 1, right, bottom + 1, AXIS);
    for q in 1..=4 {
        let y = y_of(top_value / 1.1 * q as f64 / 4.0);
        hline(&mut img, left - 5, left - 2, y, AXIS);
    }
    for i in (0..n).step_by(10) {
        let len = if i % 50 == 0 { 8 } else { 4 };
        fill(
            &mut img,
            x_of(i),
            x_of(i),
            bottom + 2,
            bottom + 1 + len,
            AXIS,
        );
    }
    Ok(img)
}

fn put(img: &mut RgbaImage, x: i64, y: i64, c: Rgba<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A horizontal line from x0 to x1.
fn hline(img: &mut RgbaImage, x0: i64, x1: i64, y: i64, c: Rgba<u8>) {
    for x in x0..=x1 {
        put(img, x, y, c);
    }
}

/// The rectangle [x0, x1] x [min(y0,y1), max(y0,y1)].
fn fill(img: &mut RgbaImage, x0: i64, x1: i64, y0: i64, y1: i64, c: Rgba<u8>) {
    for y in y0.min(y1)..=y0.max(y1) {
        hline(img, x0, x1, y, c);
    }
}

/// A 2-pixel-thick line between two points (DDA).
fn line(img: &mut RgbaImage, a: (i64, i64), b: (i64, i64), c: Rgba<u8>) {
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        let x = (a.0 as f64 + t * (b.0 - a.0) as f64).round() as i64;
        let y = (a.1 as f64 + t * (b.1 - a.1) as f64).round() as i64;
        put(img, x, y, c);
        put(img, x, y + 1, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_frame_is_flagged_and_a_cut_is_not() {
        // Pairs around frame 5 are high (a bad frame); pair 9 alone is high (a cut into a shot
        // whose E_warp is 4 times higher).
        let mut e: Vec<Option<f64>> = (0..16)
            .map(|i| Some(if i < 9 { 1.0 } else { 4.0 } + 0.05 * (i % 3) as f64))
            .collect();
        e[0] = None;
        e[5] = Some(9.0);
        e[6] = Some(8.0);
        e[9] = Some(40.0);
        let f = flag_frames(&e, &[], DEFAULT_THRESHOLD);
        let flagged: Vec<usize> = (0..16).filter(|&i| f.flagged[i]).collect();
        assert_eq!(flagged, vec![5]);
        // min(9, 8) over the median of pairs 2, 3, 4, 7, 8, 9 (~1.1).
        let s5 = f.scores[5].unwrap();
        assert!((7.0..8.0).contains(&s5), "{s5}");
        // The first frame of a new shot whose first pair is moderately high (3x the old
        // shot's level, but within the new shot's): with the cut known (pair 5), its
        // reference is the new shot's pairs 7, 8, 9.
        let mut cut: Vec<Option<f64>> = [0.0, 0.29, 0.11, 0.22, 0.3, 90.0, 1.5, 0.87, 0.61, 0.75]
            .into_iter()
            .map(Some)
            .collect();
        cut[0] = None;
        let mut cuts = vec![false; cut.len()];
        // Without the cut known, frame 5's reference mixes both shots and it is flagged.
        assert!(flag_frames(&cut, &cuts, DEFAULT_THRESHOLD).flagged[5]);
        cuts[5] = true;
        let fc = flag_frames(&cut, &cuts, DEFAULT_THRESHOLD);
        assert!(!fc.flagged.iter().any(|&f| f), "{:?}", fc.scores);
        assert!((fc.references[5].unwrap() - 0.75).abs() < 1e-12);
        assert_eq!((f.scores[0], f.scores[15]), (None, None));
        // A high pair at an end flags nothing: a bad end frame looks like a cut.
        e[15] = Some(300.0);
        assert!(!flag_frames(&e, &[], DEFAULT_THRESHOLD).flagged[15]);
        // Two bad frames in a row are both flagged.
        e[7] = Some(9.0);
        let f = flag_frames(&e, &[], DEFAULT_THRESHOLD);
        assert_eq!(
            (0..16).filter(|&i| f.flagged[i]).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    #[test]
    fn steady_errors_and_short_clips_flag_nothing() {
        let e = vec![
            None,
            Some(2.0),
            Some(2.5),
            Some(1.5),
            Some(2.0),
            Some(2.4),
            Some(2.0),
        ];
        let f = flag_frames(&e, &[], DEFAULT_THRESHOLD);
        assert!(f.flagged.iter().all(|&b| !b));
        assert!(f.scores[2].is_some());
        // Four frames: no frame has two reference pairs.
        let f = flag_frames(&[None, Some(1.0), Some(50.0), Some(50.0)], &[], 3.0);
        assert!(f.scores.iter().all(Option::is_none));
        // Identical frames: a rounding difference does not count.
        let f = flag_frames(
            &[
                None,
                Some(0.0),
                Some(1e-6),
                Some(1e-6),
                Some(0.0),
                Some(0.0),
            ],
            &[],
            3.0,
        );
        assert!(f.flagged.iter().all(|&b| !b));
    }

    #[test]
    fn bad_threshold_is_a_setting_error() {
        let opts = CheckOptions {
            threshold: 0.0,
            ..CheckOptions::default()
        };
        let err = Checker::new(&opts, Path::new("a"), Path::new("b")).unwrap_err();
        assert!(err.to_string().contains("threshold"), "{err}");
    }
}
