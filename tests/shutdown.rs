//! Shutdown does not depend on anyone reading the server's logs.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::{KillOnDrop, eventually_sync};

#[test]
fn sigterm_stops_a_server_whose_stderr_reader_went_away() {
    let child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--listen", "127.0.0.1:0", "--sim-rate", "100"])
        .env("TICKWIRE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickwire");
    // killed (our own child, by PID) if the test fails before it exits
    let mut child = KillOnDrop(child);
    // read until the server listens (its signal handler is in place by
    // then), then close the pipe: later log writes get EPIPE
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "the server ended before listening");
    }
    drop(stderr);
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually_sync(
        "the server to exit after SIGTERM with its stderr closed",
        || child.0.try_wait().unwrap(),
    );
    assert!(status.success(), "exit {status}");
}
