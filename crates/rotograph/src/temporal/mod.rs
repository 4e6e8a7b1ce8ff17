//! Temporal stages that work on whole sequences, built on optical flow: the warping-error
//! measure of temporal consistency ([`consistency`]) and the report on it ([`check`]),
//! flow-warped init and colour match ([`warp_init`]), [`deflicker`], frame interpolation
//! ([`interpolate`]), keyframe suggestions ([`keys`]) and keyframe propagation
//! ([`propagate`]).

pub mod check;
pub mod consistency;
pub mod deflicker;
pub mod interpolate;
pub mod keys;
pub mod propagate;
pub mod warp_init;

pub use consistency::{warp_error, SourceMotion, WarpErrorMeter};
