//! Starting the server under test (`--spawn`) and making sure the clients
//! measure *that* server: the address must be free before the start, the
//! process must still be running once something listens there, and its
//! last stderr lines are kept to say why it stopped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Why the server could not be started.
#[derive(Debug, Error)]
pub enum SpawnError {
    #[error(
        "refusing to run: {addr} is already in use ({source}), so the server to spawn \
         could not listen there and the clients would measure whatever holds it; stop \
         that process or pass another --addr"
    )]
    AddressInUse {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} exited before listening on {addr} ({status}); its last lines:\n{lines}")]
    Exited {
        program: String,
        addr: SocketAddr,
        status: ExitStatus,
        lines: String,
    },
    #[error("{program} did not listen on {addr} within {secs} s")]
    NoListen {
        program: String,
        addr: SocketAddr,
        secs: u64,
    },
}

/// Lines of the server's stderr kept for error messages.
const KEEP_LINES: usize = 20;

/// A started server (killed by its own PID on [`Spawned::kill`]).
pub struct Spawned {
    child: Child,
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl Spawned {
    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the server has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines the server wrote to stderr.
    pub fn last_lines(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Kills the server (if still running) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program args` pinned to `cpus` (taskset) and waits until it
/// listens on `addr`. Refuses when `addr` is taken before the start, and
/// fails when the process exits before anything listens or is gone once
/// something does (then another process answered).
pub fn start(
    program: &Path,
    args: &[String],
    addr: SocketAddr,
    cpus: &str,
) -> Result<Spawned, SpawnError> {
    // std's listener sets SO_REUSEADDR like tokio's, so only a live
    // listener (not a TIME_WAIT leftover) makes this fail
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| SpawnError::AddressInUse { addr, source })?;
    let name = program.display().to_string();
    let mut child = Command::new("taskset")
        .arg("-c")
        .arg(cpus)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SpawnError::Start {
            program: name.clone(),
            source,
        })?;
    let lines = Arc::new(Mutex::new(VecDeque::with_capacity(KEEP_LINES)));
    if let Some(stderr) = child.stderr.take() {
        let sink = lines.clone();
        // drains the pipe for the whole run (a full pipe would block the server)
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == KEEP_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
    }
    let mut spawned = Spawned { child, lines };
    let wait = Duration::from_secs(20);
    let deadline = Instant::now() + wait;
    let exited = |s: &mut Spawned, status| {
        // let the stderr thread catch the last lines
        std::thread::sleep(Duration::from_millis(100));
        SpawnError::Exited {
            program: name.clone(),
            addr,
            status,
            lines: s.last_lines(),
        }
    };
    loop {
        if let Some(status) = spawned.exited() {
            return Err(exited(&mut spawned, status));
        }
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            spawned.kill();
            return Err(SpawnError::NoListen {
                program: name,
                addr,
                secs: wait.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // something listens: it must be our process (it could have died just
    // after another program took the port)
    std::thread::sleep(Duration::from_millis(50));
    if let Some(status) = spawned.exited() {
        return Err(exited(&mut spawned, status));
    }
    Ok(spawned)
}
