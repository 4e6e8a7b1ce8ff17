//! The tiny random-weight models of `rotograph_sd::testing`.

#![allow(unused_imports)]

pub use rotograph_sd::testing::*;
