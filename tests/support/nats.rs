//! A `nats-server -js` child for the cluster tests: a temporary store, a
//! free loopback port, killed (by its own PID) on drop.
//!
//! Without `nats-server` the tests fail with the command that installs it
//! (never `ok` for something that did not run).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{eventually_sync, free_addr};

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
        let child = spawn(&dir, port);
        Self { child, port, dir }
    }

    /// Stops the server (SIGKILL): clients lose their link.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.dir, self.port);
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Spawns `nats-server -js` and waits until it accepts connections.
fn spawn(dir: &std::path::Path, port: u16) -> Child {
    eventually_sync(&format!("nats-server to listen on {port}"), || {
        let mut child = Command::new(NATS_SERVER)
            .args(["-js", "-sd"])
            .arg(dir)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        // listening, or exited (the port is still held by the previous
        // run: spawn it again)
        let up = eventually_sync(&format!("nats-server on {port} to listen or exit"), || {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                Some(true)
            } else if child.try_wait().expect("try_wait").is_some() {
                Some(false)
            } else {
                None
            }
        });
        up.then_some(child)
    })
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
