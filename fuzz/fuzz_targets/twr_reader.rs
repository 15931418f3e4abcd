//! A `.twr` recording: the header, then events until the end, a cut or an
//! error. A cut file reads as its whole events and then stays ended.
//!
//! The checks are in `tickwire::fuzz::twr_reader` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::twr_reader(data));
