//! A publish body in each of the four forms (JSON or protobuf, one event
//! or a batch). One event is one event; a batch never holds more events
//! than the body has bytes.
//!
//! The checks are in `tickwire::fuzz::publish_body` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::publish_body(data));
