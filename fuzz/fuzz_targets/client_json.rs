//! The JSON `ClientMessage` decoder and the request-id salvage used on bad
//! JSON.
//!
//! The checks are in `tickwire::fuzz::client_json` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::client_json(data));
