//! Fuzzes the schedule language: parsing, evaluation with several variable sets, the typed
//! helpers and `check_all` must never panic, hang or overflow the stack on any input. The body
//! is `rotograph::schedule::fuzz_one`, which the property tests of `tests/schedule.rs` also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rotograph::schedule::fuzz_one(data);
});
