//! Drawing progress: indicatif bars on a terminal, plain lines otherwise, JSON events for
//! scripts, or nothing with `--quiet`. Also carries the Ctrl-C stop flag.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rotograph::progress::{Event, Progress, StopFlag};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on stderr (a terminal).
    Bars,
    /// One line per second or so on stderr (not a terminal).
    Lines,
    /// One JSON object per line on stdout.
    Json,
    /// Nothing but errors.
    Quiet,
}

impl Mode {
    /// Picks the mode from the flags and whether stderr is a terminal.
    pub fn choose(quiet: bool, json: bool) -> Self {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

struct Stage {
    name: String,
    total: Option<u64>,
    done: u64,
    skipped: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
}

/// A [`Progress`] for the terminal.
pub struct Reporter {
    mode: Mode,
    stop: StopFlag,
    stage: Mutex<Option<Stage>>,
    t0: Instant,
}

impl Reporter {
    /// A reporter drawing in `mode`, stopping when `stop` is set.
    pub fn new(mode: Mode, stop: StopFlag) -> Self {
        Reporter {
            mode,
            stop,
            stage: Mutex::new(None),
            t0: Instant::now(),
        }
    }

    /// The display mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Prints a final message (not in quiet or JSON modes).
    pub fn say(&self, text: &str) {
        if matches!(self.mode, Mode::Bars | Mode::Lines) {
            eprintln!("{text}");
        }
    }

    /// Prints a JSON value as one line on stdout (JSON mode only).
    pub fn json(&self, value: serde_json::Value) {
        if self.mode == Mode::Json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    fn rate(stage: &Stage) -> (f64, Option<f64>) {
        let secs = stage.started.elapsed().as_secs_f64().max(1e-3);
        let computed = stage.done - stage.skipped;
        let fps = computed as f64 / secs;
        let eta = match (stage.total, fps > 0.0) {
            (Some(t), true) => Some(t.saturating_sub(stage.done) as f64 / fps),
            _ => None,
        };
        (fps, eta)
    }
}

fn fmt_eta(eta: Option<f64>) -> String {
    match eta {
        Some(s) if s.is_finite() => {
            let s = s.round() as u64;
            if s >= 3600 {
                format!("{}h{:02}m", s / 3600, s / 60 % 60)
            } else {
                format!("{}m{:02}s", s / 60, s % 60)
            }
        }
        _ => "?".into(),
    }
}

impl Progress for Reporter {
    fn event(&self, event: Event) {
        if self.mode == Mode::Json {
            let mut v = serde_json::to_value(&event).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "elapsed".into(),
                    serde_json::json!((self.t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
                );
            }
            self.json(v);
            return;
        }
        if let Event::Warning { message } = &event {
            if self.mode != Mode::Quiet {
                let guard = self.stage.lock().unwrap_or_else(|e| e.into_inner());
                match guard.as_ref().and_then(|s| s.bar.as_ref()) {
                    Some(bar) => bar.println(format!("warning: {message}")),
                    None => eprintln!("warning: {message}"),
                }
            }
            return;
        }
        if self.mode == Mode::Quiet {
            return;
        }
        let mut guard = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Start { stage, total } => {
                let bar = (self.mode == Mode::Bars).then(|| {
                    let bar = match total {
                        Some(t) => ProgressBar::new(t),
                        None => ProgressBar::new_spinner(),
                    };
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    let style = ProgressStyle::with_template(
                        "{prefix:>9} [{bar:32}] {pos}/{len} frames  {fps}  ETA {eta}  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key(
                        "fps",
                        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.1} fps", s.per_sec());
                        },
                    )
                    .progress_chars("=> ");
                    if total.is_some() {
                        bar.set_style(style);
                    }
                    bar.set_prefix(stage.clone());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                if self.mode == Mode::Lines {
                    match total {
                        Some(t) => eprintln!("{stage}: {t} frames"),
                        None => eprintln!("{stage}: started"),
                    }
                }
                let now = Instant::now();
                *guard = Some(Stage {
                    name: stage,
                    total,
                    done: 0,
                    skipped: 0,
                    started: now,
                    last_line: now,
                    bar,
                });
            }
            Event::Frame { skipped, .. } => {
                if let Some(st) = guard.as_mut() {
                    st.done += 1;
                    if skipped {
                        st.skipped += 1;
                        // Resumed frames do not count towards speed.
                        st.started = Instant::now();
                    }
                    if let Some(bar) = &st.bar {
                        bar.inc(1);
                        if st.skipped > 0 {
                            bar.set_message(format!("({} resumed)", st.skipped));
                        }
                    } else if st.last_line.elapsed() >= Duration::from_secs(1)
                        || Some(st.done) == st.total
                    {
                        st.last_line = Instant::now();
                        let (fps, eta) = Self::rate(st);
                        let total = st.total.map(|t| t.to_string()).unwrap_or("?".into());
                        eprintln!(
                            "{}: {}/{} frames, {:.2} fps, ETA {}",
                            st.name,
                            st.done,
                            total,
                            fps,
                            fmt_eta(eta)
                        );
                    }
                }
            }
            Event::Finish { stage } => {
                if let Some(st) = guard.take() {
                    if let Some(bar) = &st.bar {
                        bar.finish_and_clear();
                    }
                    let secs = st.started.elapsed().as_secs_f64();
                    if st.done > 0 {
                        eprintln!(
                            "{stage}: {} frames ({} resumed) in {:.1}s",
                            st.done, st.skipped, secs
                        );
                    } else {
                        eprintln!("{stage}: done in {secs:.1}s");
                    }
                }
            }
            Event::Warning { .. } => {}
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.is_set()
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(st) = self.stage.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if let Some(bar) = st.bar {
                bar.abandon();
            }
        }
    }
}
