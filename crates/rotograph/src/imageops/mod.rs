//! Image operations the product depends on and no crate does well enough: edge-preserving
//! smoothing, colour conversion, Gaussian filtering, difference of Gaussians.
// STUB: to be filled (issue 2, toon helper).
