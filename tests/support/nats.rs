//! A `nats-server -js` child for the cluster tests: a temporary store, a
//! free loopback port, killed (by its own PID) on drop.
//!
//! Without `nats-server` the tests fail with the command that installs it
//! (never `ok` for something that did not run).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{WAIT, free_addr};

/// The binary the tests run (Debian's `nats-server`, 2.9 or later).
pub const NATS_SERVER: &str = "nats-server";

/// A running `nats-server` with JetStream.
pub struct Nats {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Nats {
    /// Starts `nats-server -js` on a free loopback port with a new store.
    pub fn start() -> Self {
        let found = Command::new(NATS_SERVER)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "the cluster tests need `{NATS_SERVER}` on PATH: install it with \
             `apt-get install -y nats-server` (.ci/run does)"
        );
        let dir = std::env::temp_dir().join(format!(
            "tickwire-nats-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("nats store dir");
        let port = free_addr().port();
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-sd"])
            .arg(&dir)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let nats = Self { child, port, dir };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nats
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
