//! The loom models of the doorbell (`src/feed/doorbell.rs`: no lost
//! wake-up), of the armed list (`src/feed/armed.rs`: no lost wake-up when
//! a connection arms again) and of the ring's buffer reuse (`src/feed/ring.rs`: an event or
//! frame a reader holds is never rewritten), run as part of `cargo test`.
//!
//! loom replaces the atomics only when the crate is compiled with
//! `--cfg tickwire_loom` (not `--cfg loom`: RUSTFLAGS reach every crate, and
//! tokio built with `cfg(loom)` drops `tokio::net`, which the server and its
//! WebSocket dependencies need). That is a different build of every
//! dependency, so this test runs a nested `cargo test` with that flag in its
//! own target directory (`target/loom`; the first build takes minutes, the
//! models themselves well under a second) and checks by name that both
//! model ran and passed: it never reports `ok` for a model it did not run.

use std::path::Path;
use std::process::Command;

#[test]
fn the_loom_models_of_the_doorbell_and_the_ring_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["test", "--lib", "--release", "-p", "tickwire", "loom"])
        .args(["--", "--test-threads=1"])
        .env("RUSTFLAGS", "--cfg tickwire_loom")
        .env("CARGO_TARGET_DIR", root.join("target").join("loom"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the loom models failed:\n{stdout}\n{stderr}"
    );
    for model in [
        "feed::doorbell::loom_tests::loom_no_lost_wake_up ... ok",
        "feed::armed::loom_tests::loom_armed_list_loses_no_wake_up ... ok",
        "feed::ring::loom_tests::loom_a_held_event_is_never_rewritten ... ok",
    ] {
        assert!(
            stdout.contains(model),
            "`{model}` is not in the loom run's output:\n{stdout}"
        );
    }
}
