//! Shutdown does not depend on anyone reading the server's logs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_a_server_whose_stderr_reader_went_away() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--listen", "127.0.0.1:0", "--sim-rate", "100"])
        .env("TICKWIRE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickwire");
    // read the first line, then close the pipe: later log writes get EPIPE
    let mut stderr = child.stderr.take().unwrap();
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut stderr, &mut byte).unwrap();
    drop(stderr);
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server ignored SIGTERM once its stderr was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
