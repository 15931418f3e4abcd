//! A Bybit v5 public-stream message or REST ticker.
//!
//! The checks are in `tickwire::fuzz::bybit_msg` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::bybit_msg(data));
