//! One client frame header: a frame it accepts lies inside the buffer and
//! within the size limit.
//!
//! The checks are in `tickwire::fuzz::inbound_frame` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::inbound_frame(data));
