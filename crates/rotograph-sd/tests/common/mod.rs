//! The tiny random-weight model of `rotograph_sd::testing`.

#![allow(unused_imports)]

pub use rotograph_sd::testing::*;
