//! The real `tickwire` binary as a child process on an ephemeral port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{WAIT, eventually_sync, eventually_sync_within};

/// A `tickwire serve` child process; killed (by its own PID) on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// Spawns `tickwire serve --listen LISTEN ARGS` with its stderr collected
/// into a log; the receiver gets the address from its "listening on" line.
fn spawn(
    listen: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    Child,
    Arc<Mutex<Vec<String>>>,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--listen", listen])
        .args(args)
        .envs(env.iter().copied())
        .env("TICKWIRE_LOG", "info")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickwire");
    let stderr = child.stderr.take().expect("stderr piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send(addr);
            }
            sink.lock().unwrap().push(line);
        }
    });
    (child, log, rx)
}

impl Server {
    /// Starts the server with extra flags and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Starts the server with extra flags and environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let (child, log, listening) = spawn("127.0.0.1:0", args, env);
        let addr = listening
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Self {
            child,
            addr: addr.parse().expect("listen address"),
            log,
        }
    }

    /// Starts the server listening on `addr`: again on the port of a
    /// server that was stopped, or on a port chosen with [`free_addr`]
    /// (needed when the address must be known before the start, e.g. for
    /// `--allowed-origins`). Retries while the port is still taken.
    pub fn start_on(addr: SocketAddr, args: &[&str]) -> Self {
        eventually_sync(&format!("a server listening on {addr}"), || {
            let (mut child, log, rx) = spawn(&addr.to_string(), args, &[]);
            // the "listening on" line, or the process ending (its stderr
            // closes: the port is still taken, so spawn it again)
            let listening = eventually_sync(
                &format!("the server on {addr} to listen or exit"),
                || match rx.try_recv() {
                    Ok(_) => Some(true),
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => Some(false),
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        child.try_wait().expect("try_wait").map(|_| false)
                    }
                },
            );
            if listening {
                return Ok(Self { child, addr, log });
            }
            let _ = child.wait();
            Err(log.lock().unwrap().clone())
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{query}", self.addr)
    }

    /// Sends a signal to this server (our own child, by PID).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let log = self.log.clone();
        eventually_sync_within(within, "the server to exit", || {
            self.child
                .try_wait()
                .expect("try_wait")
                .ok_or_else(|| log.lock().unwrap().clone())
        })
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Anonymous resident memory of the server process (heap and stacks,
    /// not the pages of its mapped binary), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssAnon")
    }

    /// One HTTP/1.1 request with `Connection: close`: (status, lower-cased
    /// head, body).
    pub async fn request(&self, method: &str, path: &str) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let status = head[9..12].parse().unwrap();
        (status, head, buf[end + 4..].to_vec())
    }

    /// A plain HTTP/1.1 GET: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.request("GET", path).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// GET a JSON endpoint.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.get(path).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tickwire serve` child that is not listening yet (a standby ingest
/// waits for the lease first); killed on drop.
pub struct Starting {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    listening: std::sync::mpsc::Receiver<String>,
}

impl Starting {
    /// Spawns the server without waiting for it to listen.
    pub fn spawn(args: &[&str]) -> Self {
        let (child, log, listening) = spawn("127.0.0.1:0", args, &[]);
        Self {
            child: Some(child),
            log,
            listening,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until it listens.
    pub fn ready(mut self, within: Duration) -> Server {
        let addr = self
            .listening
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("server did not start: {:?}", self.log()));
        Server {
            child: self.child.take().expect("child until ready"),
            addr: addr.parse().expect("listen address"),
            log: self.log.clone(),
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed (by its own PID) and reaped on drop: a test that
/// fails while it runs leaves nothing behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
}
