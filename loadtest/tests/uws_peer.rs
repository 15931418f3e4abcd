//! The uWebSockets.js peer the load tests compare tickwire with serves what
//! the load client reads, and its slow-client policy keeps the stream whole
//! (the checks are in `support/peer.rs`, shared with the limit probe's own
//! tests in `loadtest/peers/limit-probe/tests/`).
//!
//! Needs `node` 20 with `npm ci` run in `loadtest/peers/uws` (`.ci/run`
//! does it). Missing, the test fails with the command to run: it never
//! reports `ok` for what it did not run.

#[path = "support/peer.rs"]
mod peer;

use peer::{
    Peer, reads_consecutive_frames, skips_a_stalled_client_and_keeps_its_stream_whole, start,
};
use std::path::Path;
use std::process::Command;

fn uws() -> Peer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/uws");
    assert!(
        dir.join("node_modules/uWebSockets.js/package.json")
            .exists(),
        "uWebSockets.js is not installed: run `npm ci` in loadtest/peers/uws (needs Node 20+)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` not found ({node:?}): install Node 20+"
    );
    let script = dir.join("server.js");
    start(
        Path::new("node"),
        &[
            script.to_str().expect("utf-8 path"),
            "--rate",
            "20000",
            "--max-backlog",
            "16384",
        ],
    )
}

#[test]
fn uws_serves_consecutive_frames() {
    reads_consecutive_frames(&uws());
}

#[test]
fn uws_skips_a_stalled_client_and_counts_it() {
    skips_a_stalled_client_and_keeps_its_stream_whole(&uws());
}
