//! Channel names and patterns: what parses keeps the invariants the hub
//! relies on (a valid name is an exact pattern that matches itself).
//!
//! The checks are in `tickwire::fuzz::channel_pattern` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::channel_pattern(data));
