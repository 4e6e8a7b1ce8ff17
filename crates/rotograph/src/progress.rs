//! Progress reporting and cancellation. The library reports through [`Progress`]; drawing bars,
//! printing lines or JSON events is the caller's business.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One progress event.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage starts; `total` frames are expected when known.
    Start {
        /// Stage name: `extract`, `stylize`, `encode`...
        stage: String,
        /// Number of frames expected, when known.
        total: Option<u64>,
    },
    /// A frame of a stage is finished (`skipped`: already done in an earlier run).
    Frame {
        /// Stage name.
        stage: String,
        /// 0-based position of the frame in the stage.
        index: u64,
        /// The frame's file name.
        name: String,
        /// True when the frame was resumed from an earlier run rather than computed.
        skipped: bool,
    },
    /// A stage finished.
    Finish {
        /// Stage name.
        stage: String,
    },
    /// Something the user should know once (e.g. a field a backend ignores).
    Warning {
        /// The text.
        message: String,
    },
}

/// Receives progress events and tells long operations whether to stop.
pub trait Progress: Send + Sync {
    /// Report an event.
    fn event(&self, event: Event);
    /// True when the operation should stop after the frames in flight.
    fn should_stop(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores events and never stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: Event) {}
}

/// A shareable stop flag, e.g. set from a Ctrl-C handler.
#[derive(Debug, Default, Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A new, unset flag.
    pub fn new() -> Self {
        Self::default()
    }
    /// Ask to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Has a stop been asked for?
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
