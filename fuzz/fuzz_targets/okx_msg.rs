//! An OKX WebSocket message (tickers, trades, books into a checked book)
//! or REST ticker.
//!
//! The checks are in `tickwire::fuzz::okx_msg` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::okx_msg(data));
