//! The limit probe (shared frame log, one write per socket per tick) serves
//! what the load client reads, and its slow-client policy keeps the stream
//! whole: started as a real process on an ephemeral port and read by raw
//! WebSocket clients (the checks are in the load tester's
//! `tests/support/peer.rs`, shared with the uWebSockets.js peer's test).
//!
//! The tests live in the probe's own package so that Cargo builds the
//! binary they start (`CARGO_BIN_EXE_peer-limit-probe`); from the load
//! tester's package a clean `cargo test --workspace` had not built it.

#[path = "../../../tests/support/peer.rs"]
mod peer;

use peer::{
    Peer, reads_consecutive_frames, skips_a_stalled_client_and_keeps_its_stream_whole, start,
};
use std::path::Path;

fn probe() -> Peer {
    // Cargo builds this package's binary for its integration tests
    let bin = Path::new(env!("CARGO_BIN_EXE_peer-limit-probe"));
    // 20 000 messages/s fill a stalled client's buffers quickly; the
    // 1024-frame log lets a client lag 512 frames (~25 ms) before a skip
    start(bin, &["--rate", "20000", "--log-frames", "1024"])
}

#[test]
fn serves_consecutive_frames() {
    reads_consecutive_frames(&probe());
}

#[test]
fn skips_a_stalled_client_to_the_head() {
    skips_a_stalled_client_and_keeps_its_stream_whole(&probe());
}
