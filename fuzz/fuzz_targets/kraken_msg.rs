//! A Kraken v2 message (books checked against their checksum) or REST
//! ticker.
//!
//! The checks are in `tickwire::fuzz::kraken_msg` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::kraken_msg(data));
