//! The protobuf `ClientMessage` decoder: a message or an error.
//!
//! The checks are in `tickwire::fuzz::client_proto` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::client_proto(data));
