//! rotograph: turn live-action footage into stylized animation, frame by frame.
//!
//! The pipeline is `source → frames → stylize → temporal → finish → sink`; every stage is a typed
//! API here and the `rotograph` binary is a thin layer over it. Start with
//! [`pipeline::stylize`] (batch img2img over a frame source into a resumable run folder),
//! [`video`] (ffmpeg decode/encode), [`stylize::toon`] (the model-free default backend) and
//! [`flow`] (dense optical flow for the temporal tools).

pub mod error;
pub mod flow;
pub mod frames;
pub mod imageops;
pub mod loopback;
pub mod pipeline;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod stylize;
pub mod temporal;
#[doc(hidden)]
pub mod testing;
pub mod video;

pub use error::{Error, Result};
pub use frames::{Frame, FrameInfo, FrameSource};
pub use progress::{Event, NoProgress, Progress};

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
