//! `cluster = true` scenarios: the spawned tickwire is an edge of a
//! cluster. Before it starts, `nats-server -js` (temporary store, free
//! loopback port) and an ingest tickwire (the scenario's `server_args`,
//! free port) are started; the clients measure the edge, so latency is
//! the ingest's publish time to the client, NATS hop included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::spawn::{self, SpawnError, Spawned};

/// The NATS server and the ingest behind the edge under test.
pub struct Backing {
    nats: Spawned,
    ingest: Spawned,
    ingest_addr: SocketAddr,
    store: PathBuf,
    /// The ingest's `cluster` stats when the run started, and when.
    start: Option<(serde_json::Value, Instant)>,
    pub url: String,
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
}

/// Starts nats-server and the ingest (`tickwire serve ARGS --nats-url`).
pub fn start(tickwire: &Path, ingest_args: &[String], cpus: &str) -> Result<Backing, SpawnError> {
    let store = std::env::temp_dir().join(format!("tickwire-load-nats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let nats_addr = free_addr();
    let nats = spawn::start(
        Path::new("nats-server"),
        &[
            "-js".into(),
            "-sd".into(),
            store.display().to_string(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            nats_addr.port().to_string(),
        ],
        nats_addr,
        cpus,
    )?;
    let url = format!("nats://{nats_addr}");
    let ingest_addr = free_addr();
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        ingest_addr.to_string(),
        "--log".into(),
        "warn".into(),
        "--nats-url".into(),
        url.clone(),
    ];
    args.extend(ingest_args.iter().cloned());
    let ingest = spawn::start(tickwire, &args, ingest_addr, cpus)?;
    Ok(Backing {
        nats,
        ingest,
        ingest_addr,
        store,
        start: None,
        url,
    })
}

/// `GET /stats` of a tickwire on loopback (blocking, one request).
fn stats(addr: SocketAddr) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

impl Backing {
    /// Notes the ingest's counters at the start of the measured run.
    pub fn mark(&mut self) {
        self.start = stats(self.ingest_addr).map(|s| (s["cluster"].clone(), Instant::now()));
    }

    /// One line on what the ingest sent to JetStream during the run.
    pub fn summary(&self) -> String {
        let (Some((before, at)), Some(now)) = (&self.start, stats(self.ingest_addr)) else {
            return "ingest: no stats".into();
        };
        let now = &now["cluster"];
        let secs = at.elapsed().as_secs_f64();
        let d = |k: &str| now[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
        format!(
            "ingest -> JetStream: {:.0} events/s acknowledged ({} in {secs:.1} s, {} NATS messages), {:.0} offered/s, {} dropped, {} publish errors",
            d("published") as f64 / secs,
            d("published"),
            d("messages"),
            d("offered") as f64 / secs,
            d("dropped"),
            d("publish_errors"),
        )
    }

    /// Stops the ingest and nats-server, removes the store.
    pub fn stop(mut self) {
        self.ingest.kill();
        self.nats.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
