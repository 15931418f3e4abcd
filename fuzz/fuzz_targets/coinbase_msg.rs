//! A Coinbase Advanced Trade message or REST ticker.
//!
//! The checks are in `tickwire::fuzz::coinbase_msg` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::coinbase_msg(data));
