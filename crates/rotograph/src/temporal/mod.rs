//! Temporal stages that work on whole sequences after stylizing: the warping-error measure of
//! temporal consistency ([`consistency`]), and the tools built on optical flow (deflicker,
//! frame interpolation, keyframe propagation) as they land.

pub mod consistency;
pub mod deflicker;

pub use consistency::{warp_error, SourceMotion, WarpErrorMeter};
