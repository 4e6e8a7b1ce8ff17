//! Temporal stages that work on whole sequences after stylizing: the warping-error measure of
//! temporal consistency ([`consistency`]), and the tools built on optical flow (deflicker,
//! frame interpolation, keyframe propagation) as they land.

pub mod check;
pub mod consistency;
pub mod interpolate;
pub mod keys;
pub mod propagate;
pub mod warp_init;

pub use consistency::{warp_error, SourceMotion, WarpErrorMeter};
