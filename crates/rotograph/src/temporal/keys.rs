//! Keyframe suggestions for propagation (`rotograph keys`): where to stylize keys so that
//! patch synthesis has the least to carry.
//!
//! Each frame gets two measures from its predecessor: the **motion**, the mean length of the
//! optical flow from the previous frame (pixels per frame), and the **appearance change**, the
//! L1 distance between the two frames' colour histograms (4 bins per RGB channel, normalized;
//! halved, so 0 = same colours, 1 = no colour in common). Keys go to:
//!
//! - the first frame;
//! - **scene changes**: frames whose appearance change exceeds [`KeyOptions::cut_threshold`]
//!   (a new shot shares nothing with the last key);
//! - **motion extremes**: within each shot, the frames where the motion (smoothed over three
//!   frames) reaches a minimum between two movements, i.e. the end of one movement and the start
//!   of the next: the extreme poses. Turning points are found with hysteresis: the motion must
//!   rise and fall by more than [`KeyOptions::motion_delta`] times the shot's largest motion (and
//!   at least [`MIN_MOTION_DELTA`] px) for a minimum to count, so jitter does not make keys;
//! - with [`KeyOptions::every`] `N`, also every N-th frame (0, N, 2N, ...).
//!
//! Motion keys closer than [`KeyOptions::min_gap`] frames to another key are dropped (the first
//! frame, scene changes and `every` keys are always kept). Frames stream: one pyramid and one
//! histogram are held, plus two numbers per frame.

use crate::error::{Error, Result};
use crate::flow::{compute_flow, FlowParams, Preset, Pyramid};
use crate::frames::FrameSource;
use crate::progress::{Event, Progress};
use image::RgbaImage;
use serde::Serialize;

/// Least rise and fall of the motion (pixels per frame) around a motion key.
pub const MIN_MOTION_DELTA: f64 = 0.25;
/// Histogram bins per colour channel.
const BINS: usize = 4;

/// Options of [`suggest_keys`].
#[derive(Debug, Clone)]
pub struct KeyOptions {
    /// Flow engine knobs (default: the `fast` preset; only the mean motion is used).
    pub params: FlowParams,
    /// Appearance change (0..1) above which a frame starts a new shot (default 0.35).
    pub cut_threshold: f64,
    /// Hysteresis of the motion turning points, as a fraction of the shot's largest motion
    /// (default 0.25).
    pub motion_delta: f64,
    /// Fewest frames between a motion key and any other key (default 6).
    pub min_gap: usize,
    /// Also a key every N frames (`None`: off).
    pub every: Option<usize>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            params: FlowParams::preset(Preset::Fast),
            cut_threshold: 0.35,
            motion_delta: 0.25,
            min_gap: 6,
            every: None,
        }
    }
}

impl KeyOptions {
    /// Checks the knobs; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.cut_threshold > 0.0 && self.cut_threshold <= 1.0) {
            return Err(Error::setting(
                "cut-threshold",
                format!(
                    "{} is outside 0..1; give the colour-histogram change that starts a new \
                     shot (default 0.35)",
                    self.cut_threshold
                ),
            ));
        }
        if !(self.motion_delta > 0.0 && self.motion_delta < 1.0) {
            return Err(Error::setting(
                "motion-delta",
                format!(
                    "{} is outside 0..1 (exclusive); give a fraction of the shot's largest \
                     motion (default 0.25)",
                    self.motion_delta
                ),
            ));
        }
        if self.every == Some(0) {
            return Err(Error::setting(
                "every",
                "0 is not a frame interval; give N >= 1 (a key every N frames)",
            ));
        }
        self.params.validate()
    }
}

/// Why a frame is a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyReason {
    /// The first frame.
    First,
    /// The first frame of a new shot.
    SceneChange,
    /// A motion minimum between two movements (an extreme pose).
    MotionExtreme,
    /// The regular `every` cadence.
    Every,
}

impl KeyReason {
    /// The reason as the report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyReason::First => "first",
            KeyReason::SceneChange => "scene_change",
            KeyReason::MotionExtreme => "motion_extreme",
            KeyReason::Every => "every",
        }
    }
}

/// One frame's measures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrameMeasure {
    /// 0-based position.
    pub index: usize,
    /// The frame's name.
    pub name: String,
    /// Mean optical-flow length from the previous frame in pixels (`None` for the first
    /// frame and across a scene change).
    pub motion: Option<f64>,
    /// Colour-histogram change from the previous frame, 0..1 (`None` for the first frame).
    pub change: Option<f64>,
}

/// A suggested key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Key {
    /// 0-based position.
    pub index: usize,
    /// The frame's name.
    pub name: String,
    /// Why (one or more reasons).
    pub reasons: Vec<KeyReason>,
}

/// The suggestions over a sequence.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyReport {
    /// Frames read.
    pub frame_count: usize,
    /// The keys, in frame order.
    pub keys: Vec<Key>,
    /// Every frame's measures.
    pub frames: Vec<FrameMeasure>,
}

/// Streaming form of [`suggest_keys`]: push frames in order, then [`KeyScanner::finish`].
#[derive(Debug)]
pub struct KeyScanner {
    opts: KeyOptions,
    prev: Option<(Pyramid, Vec<f64>)>,
    frames: Vec<FrameMeasure>,
}

impl KeyScanner {
    /// A scanner with these options.
    pub fn new(opts: &KeyOptions) -> Result<Self> {
        opts.validate()?;
        Ok(KeyScanner {
            opts: opts.clone(),
            prev: None,
            frames: Vec::new(),
        })
    }

    /// Measures the next frame against the previous one.
    pub fn push(&mut self, name: &str, image: &RgbaImage) -> Result<&FrameMeasure> {
        let hist = histogram(image);
        let pyr = Pyramid::for_params(image, &self.opts.params);
        let (motion, change) = match self.prev.take() {
            Some((ppyr, phist)) => {
                if ppyr.size() != pyr.size() {
                    let (w, h) = ppyr.size();
                    return Err(Error::bad_input(
                        name,
                        format!(
                            "is {}x{} but the frames before it are {w}x{h}; give frames of \
                             one size (or --size)",
                            image.width(),
                            image.height()
                        ),
                    ));
                }
                let change = 0.5
                    * hist
                        .iter()
                        .zip(&phist)
                        .map(|(a, b)| (a - b).abs())
                        .sum::<f64>();
                let motion = if change > self.opts.cut_threshold {
                    None
                } else {
                    let flow = compute_flow(&ppyr, &pyr, &self.opts.params)?;
                    let sum: f64 = flow
                        .u()
                        .iter()
                        .zip(flow.v())
                        .map(|(u, v)| f64::from(u.hypot(*v)))
                        .sum();
                    Some(sum / flow.u().len().max(1) as f64)
                };
                (motion, Some(change))
            }
            None => (None, None),
        };
        self.prev = Some((pyr, hist));
        let index = self.frames.len();
        self.frames.push(FrameMeasure {
            index,
            name: name.to_string(),
            motion,
            change,
        });
        Ok(&self.frames[index])
    }

    /// Chooses the keys. Errors when no frame came.
    pub fn finish(self) -> Result<KeyReport> {
        if self.frames.is_empty() {
            return Err(Error::setting("input", "the input has no frames"));
        }
        let motion: Vec<Option<f64>> = self.frames.iter().map(|f| f.motion).collect();
        let change: Vec<Option<f64>> = self.frames.iter().map(|f| f.change).collect();
        let keys = select_keys(&motion, &change, &self.opts)
            .into_iter()
            .map(|(index, reasons)| Key {
                index,
                name: self.frames[index].name.clone(),
                reasons,
            })
            .collect();
        Ok(KeyReport {
            frame_count: self.frames.len(),
            keys,
            frames: self.frames,
        })
    }
}

/// Normalized colour histogram, `BINS` per channel (alpha ignored).
fn histogram(img: &RgbaImage) -> Vec<f64> {
    let mut h = vec![0u64; BINS * BINS * BINS];
    for p in img.pixels() {
        let b = |c: u8| usize::from(c) * BINS / 256;
        h[(b(p[0]) * BINS + b(p[1])) * BINS + b(p[2])] += 1;
    }
    let n = (img.width() as f64 * img.height() as f64).max(1.0);
    h.into_iter().map(|c| c as f64 / n).collect()
}

/// The key rule (module docs) over per-frame measures: `motion[t]` and `change[t]` are from
/// frame t-1 to t. Returns (frame, reasons) in frame order.
pub fn select_keys(
    motion: &[Option<f64>],
    change: &[Option<f64>],
    opts: &KeyOptions,
) -> Vec<(usize, Vec<KeyReason>)> {
    let n = motion.len();
    let mut reasons: Vec<Vec<KeyReason>> = vec![Vec::new(); n];
    if n == 0 {
        return Vec::new();
    }
    reasons[0].push(KeyReason::First);
    let mut shot_starts = vec![0];
    for t in 1..n {
        if change[t].is_some_and(|c| c > opts.cut_threshold) {
            reasons[t].push(KeyReason::SceneChange);
            shot_starts.push(t);
        }
    }
    if let Some(every) = opts.every {
        for t in (every..n).step_by(every) {
            reasons[t].push(KeyReason::Every);
        }
    }
    shot_starts.push(n);
    for shot in shot_starts.windows(2) {
        for t in motion_minima(motion, shot[0], shot[1], opts.motion_delta) {
            let lo = t.saturating_sub(opts.min_gap.saturating_sub(1));
            let hi = (t + opts.min_gap).min(n);
            if !(lo..hi).any(|u| u != t && !reasons[u].is_empty()) {
                reasons[t].push(KeyReason::MotionExtreme);
            }
        }
    }
    reasons
        .into_iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .collect()
}

/// Frames of the shot `[start, end)` where the smoothed motion has a minimum between two
/// movements (hysteresis `delta` times the shot's largest motion, at least
/// [`MIN_MOTION_DELTA`]).
fn motion_minima(motion: &[Option<f64>], start: usize, end: usize, delta: f64) -> Vec<usize> {
    // Motion of frame t = flow t-1 → t; the shot's first frame has none: skip it.
    let raw: Vec<(usize, f64)> = (start..end)
        .filter_map(|t| motion[t].map(|m| (t, m)))
        .collect();
    if raw.len() < 3 {
        return Vec::new();
    }
    let smooth: Vec<(usize, f64)> = (0..raw.len())
        .map(|i| {
            let lo = i.saturating_sub(1);
            let hi = (i + 2).min(raw.len());
            let s: f64 = raw[lo..hi].iter().map(|r| r.1).sum();
            (raw[i].0, s / (hi - lo) as f64)
        })
        .collect();
    let top = smooth.iter().map(|s| s.1).fold(0.0, f64::max);
    let d = (delta * top).max(MIN_MOTION_DELTA);
    // Zig-zag: track the running extreme; a turn needs a move of `d` away from it. A minimum
    // counts when the motion fell into it by more than `d` (from a peak or the shot's start)
    // and rises out of it by more than `d`.
    let mut minima = Vec::new();
    let mut rising = false;
    let mut peak = smooth[0].1;
    let (mut low, mut high) = (smooth[0], smooth[0]);
    for &(t, v) in &smooth[1..] {
        if rising {
            if v > high.1 {
                high = (t, v);
            } else if high.1 - v > d {
                rising = false;
                peak = high.1;
                low = (t, v);
            }
        } else if v < low.1 {
            low = (t, v);
        } else if v - low.1 > d {
            if peak - low.1 > d {
                minima.push(low.0);
            }
            rising = true;
            high = (t, v);
        }
    }
    minima
}

/// Suggests keyframes over `source`, streamed (see the module docs). Stops with
/// [`Error::Interrupted`] after the frame in flight when `progress.should_stop()`.
pub fn suggest_keys(
    source: &mut dyn FrameSource,
    opts: &KeyOptions,
    progress: &dyn Progress,
) -> Result<KeyReport> {
    let mut scanner = KeyScanner::new(opts)?;
    progress.event(Event::Start {
        stage: "keys".into(),
        total: source.len_hint().map(|n| n as u64),
    });
    while let Some((info, frame)) = source.next_frame()? {
        scanner.push(&info.name, &frame.image)?;
        progress.event(Event::Frame {
            stage: "keys".into(),
            index: info.index as u64,
            name: info.name,
            skipped: false,
        });
        crate::frames::recycle(frame);
        if progress.should_stop() {
            return Err(Error::Interrupted);
        }
    }
    progress.event(Event::Finish {
        stage: "keys".into(),
    });
    scanner.finish()
}

impl KeyReport {
    /// The key list as text: one line per key, `NAME reason[,reason]`.
    pub fn to_text(&self) -> String {
        self.keys
            .iter()
            .map(|k| {
                let r: Vec<&str> = k.reasons.iter().map(|r| r.as_str()).collect();
                format!("{} {}\n", k.name, r.join(","))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> KeyOptions {
        KeyOptions::default()
    }

    #[test]
    fn keys_at_rest_poses_cuts_and_cadence() {
        // Speed 4|sin|: movements peak at 5, 15, 25 and rest at 10, 20 (frame t's motion).
        let motion: Vec<Option<f64>> = (0..30)
            .map(|t| (t > 0).then(|| 4.0 * (t as f64 * std::f64::consts::PI / 10.0).sin().abs()))
            .collect();
        let change = vec![Some(0.05); 30];
        let keys = select_keys(&motion, &change, &opts());
        let idx: Vec<usize> = keys.iter().map(|k| k.0).collect();
        assert_eq!(idx, vec![0, 10, 20], "{keys:?}");
        assert_eq!(keys[1].1, vec![KeyReason::MotionExtreme]);
        // A cut at 17: a scene key; the rest pose at 20 is too close to it.
        let mut cut = change.clone();
        cut[17] = Some(0.8);
        let mut m = motion.clone();
        m[17] = None;
        let idx: Vec<usize> = select_keys(&m, &cut, &opts()).iter().map(|k| k.0).collect();
        assert_eq!(idx, vec![0, 10, 17]);
        // Every 8 with a gap of 2: the cadence and both rest poses.
        let o = KeyOptions {
            every: Some(8),
            min_gap: 2,
            ..opts()
        };
        let idx: Vec<usize> = select_keys(&motion, &change, &o)
            .iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(idx, vec![0, 8, 10, 16, 20, 24]);
    }

    #[test]
    fn steady_motion_and_jitter_make_no_motion_keys() {
        let motion: Vec<Option<f64>> = (0..40)
            .map(|t| (t > 0).then(|| 3.0 + 0.1 * ((t * 7919) % 5) as f64))
            .collect();
        let keys = select_keys(&motion, &vec![Some(0.02); 40], &opts());
        assert_eq!(keys, vec![(0, vec![KeyReason::First])]);
    }

    #[test]
    fn bad_options_are_setting_errors() {
        for o in [
            KeyOptions {
                every: Some(0),
                ..opts()
            },
            KeyOptions {
                cut_threshold: 0.0,
                ..opts()
            },
            KeyOptions {
                motion_delta: 1.5,
                ..opts()
            },
        ] {
            assert!(KeyScanner::new(&o).is_err());
        }
    }
}
