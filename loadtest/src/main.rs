//! `tickwire-load`: opens N WebSocket clients against tickwire (or a peer
//! baseline), subscribes them, and measures end-to-end latency from each
//! event's publish time, deliveries/s, per-channel seq gaps, lagged
//! messages, closes by code, bytes in and connect failures. With `--spawn`
//! it starts the server itself, pinned to `--server-cpus`, and samples its
//! RSS and CPU time from /proc.

mod arrival;
mod cluster;
mod plot;
mod procstat;
mod progress;
mod report;
mod run;
mod scenario;
mod spawn;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;

/// What the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// tickwire's protocol (proto or JSON per client).
    Tickwire,
    /// The peers' format: binary frames of seq u64 LE, publish time i64 LE, padding.
    Peer,
}

/// Servers `--spawn` knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Spawn {
    Tickwire,
    NaiveRust,
    LimitProbe,
    NodeWs,
    /// uWebSockets.js (`loadtest/peers/uws`, `npm ci` there first).
    Uws,
}

#[derive(Debug, Parser)]
#[command(
    name = "tickwire-load",
    about = "Load generator for tickwire and its peer baselines"
)]
pub struct Args {
    /// Server address (host:port); with --spawn, where to start it.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Named scenario from the scenarios file.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Scenarios file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios.toml"))]
    pub scenarios: PathBuf,
    /// Number of clients.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Connections opened per second while ramping up.
    #[arg(long)]
    pub ramp_per_sec: Option<f64>,
    /// Patterns every client subscribes to.
    #[arg(long, num_args = 1..)]
    pub subscribe: Option<Vec<String>>,
    /// Give client i the channels of instrument i mod k (k instruments found in /channels).
    #[arg(long)]
    pub per_client_instrument: bool,
    /// Fraction of clients in JSON mode (0..1).
    #[arg(long)]
    pub json_ratio: Option<f64>,
    /// The subscribe's `conflate_ms` (0 = every event; 10..=60000 = at most
    /// one message per channel per interval, skips announced by `conflated`).
    #[arg(long)]
    pub conflate_ms: Option<u32>,
    /// Clients connect but never subscribe.
    #[arg(long)]
    pub idle: bool,
    /// Fraction of clients that decode every message (gzip included) to check
    /// gaps and latency; the others count frames and bytes only. Lets one
    /// load-generator core keep up with gzipped streams.
    #[arg(long)]
    pub decode_ratio: Option<f64>,
    /// Measurement window after every client is connected.
    #[arg(long)]
    pub duration: Option<String>,
    /// Latency ends when a read returns (`read`, what an application sees)
    /// or at the kernel's receive timestamp (`kernel`, SO_TIMESTAMPNS on
    /// Linux: leaves out the load generator's own wake-up and queueing).
    #[arg(long, value_enum, default_value = "read")]
    pub arrival: arrival::Arrival,
    /// Settle time between the last connect and the window.
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Protocol the server speaks.
    #[arg(long, value_enum, default_value = "tickwire")]
    pub target: Target,
    /// Start this server before the run (and stop it after).
    #[arg(long, value_enum)]
    pub spawn: Option<Spawn>,
    /// CPUs for the spawned server (taskset list).
    #[arg(long, default_value = "0")]
    pub server_cpus: String,
    /// PID of an already running server to sample.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Extra clients that connect during the window.
    #[arg(long)]
    pub storm_clients: Option<usize>,
    /// Time over which the storm clients connect.
    #[arg(long)]
    pub storm_within: Option<String>,
    /// Spread client source addresses over this many 127.0.0.x addresses.
    #[arg(long, default_value_t = 16)]
    pub source_ips: u8,
    /// Print one machine-readable JSON line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Runtime worker threads for the clients (default: available CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The server binary `--spawn` starts (default: target/release/<name>
    /// for tickwire and the Rust peers).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// No progress lines on stderr (connects, then one rate line a second).
    #[arg(long, short)]
    pub quiet: bool,
    /// Draw the results in FILE.jsonl (lines of `--json`) as SVG next to it
    /// (FILE.svg: latency percentiles and deliveries/s per server), then exit.
    #[arg(long, value_name = "FILE.jsonl")]
    pub plot: Option<PathBuf>,
}

fn dur(s: &str) -> Duration {
    humantime::parse_duration(s).unwrap_or_else(|e| {
        eprintln!("tickwire-load: bad duration `{s}`: {e}");
        std::process::exit(2)
    })
}

/// Settings after the scenario and the flags are merged.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub addr: SocketAddr,
    pub target: Target,
    pub clients: usize,
    pub ramp_per_sec: f64,
    pub subscribe: Vec<String>,
    pub per_client_instrument: bool,
    pub json_ratio: f64,
    /// The subscribe's `conflate_ms` (0 = off).
    pub conflate_ms: u32,
    pub idle: bool,
    pub decode_ratio: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub offered_per_s: Option<f64>,
    pub storm_clients: usize,
    pub storm_within: Duration,
    pub source_ips: u8,
    pub arrival: arrival::Arrival,
    /// The load generator's runtime worker threads (for its CPU share).
    pub client_threads: usize,
}

fn spawn_name(s: Spawn) -> &'static str {
    match s {
        Spawn::Tickwire => "tickwire",
        Spawn::NaiveRust => "naive-rust",
        Spawn::LimitProbe => "limit-probe",
        Spawn::NodeWs => "node-ws",
        Spawn::Uws => "uws",
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The NATS server and ingest of a `cluster` scenario, stopped after the run.
static BACKING: std::sync::Mutex<Option<cluster::Backing>> = std::sync::Mutex::new(None);

fn spawn_server(which: Spawn, args: &Args, sc: &scenario::Scenario) -> spawn::Spawned {
    let root = repo_root();
    let listen = args.addr.to_string();
    let rate = sc.peer_rate.unwrap_or(1000.0).to_string();
    let size = sc.peer_size.unwrap_or(200).to_string();
    let release = root.join("target/release");
    let (program, mut rest): (PathBuf, Vec<String>) = match which {
        Spawn::Tickwire => (
            release.join("tickwire"),
            vec![
                "serve".into(),
                "--listen".into(),
                listen.clone(),
                "--log".into(),
                "warn".into(),
            ],
        ),
        Spawn::NaiveRust => (release.join("peer-naive-rust"), vec![]),
        Spawn::LimitProbe => (release.join("peer-limit-probe"), vec![]),
        Spawn::NodeWs => (
            "node".into(),
            vec![
                root.join("loadtest/peers/node-ws/server.js")
                    .to_string_lossy()
                    .into(),
            ],
        ),
        Spawn::Uws => (
            "node".into(),
            vec![
                root.join("loadtest/peers/uws/server.js")
                    .to_string_lossy()
                    .into(),
            ],
        ),
    };
    let program = args.server_bin.clone().unwrap_or(program);
    match which {
        Spawn::Tickwire if sc.cluster == Some(true) => {
            // the edge under test; the ingest runs the scenario's flags
            let backing = cluster::start(
                &program,
                &sc.server_args.clone().unwrap_or_default(),
                &args.server_cpus,
            )
            .unwrap_or_else(|e| {
                eprintln!("tickwire-load: cluster: {e}");
                std::process::exit(2)
            });
            rest.extend([
                "--source".into(),
                "none".into(),
                "--nats-url".into(),
                backing.url.clone(),
            ]);
            *BACKING.lock().unwrap_or_else(|e| e.into_inner()) = Some(backing);
        }
        Spawn::Tickwire => rest.extend(sc.server_args.clone().unwrap_or_default()),
        _ => rest.extend([
            "--listen".into(),
            listen,
            "--rate".into(),
            rate,
            "--size".into(),
            size,
        ]),
    }
    spawn::start(&program, &rest, args.addr, &args.server_cpus).unwrap_or_else(|e| {
        eprintln!("tickwire-load: {e}");
        std::process::exit(2)
    })
}

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.plot {
        match plot::write_svg(path) {
            Ok(svg) => println!("wrote {}", svg.display()),
            Err(e) => {
                eprintln!("tickwire-load: {e}");
                std::process::exit(2)
            }
        }
        return;
    }
    let sc = match &args.scenario {
        Some(name) => scenario::load(&args.scenarios, name).unwrap_or_else(|e| {
            eprintln!("tickwire-load: {e}");
            std::process::exit(2)
        }),
        None => scenario::Scenario::default(),
    };
    let target = match args.spawn {
        Some(Spawn::Tickwire) | None => args.target,
        Some(_) => Target::Peer,
    };
    let peer_offered = sc.peer_rate.map(|r| r * sc.clients.unwrap_or(0) as f64);
    let plan = Plan {
        name: args.scenario.clone().unwrap_or_else(|| "custom".into()),
        description: sc.description.clone().unwrap_or_default(),
        addr: args.addr,
        target,
        clients: args.clients.or(sc.clients).unwrap_or(100),
        ramp_per_sec: args.ramp_per_sec.or(sc.ramp_per_sec).unwrap_or(1000.0),
        subscribe: args
            .subscribe
            .clone()
            .or(sc.subscribe.clone())
            .unwrap_or_else(|| vec!["*.*.*".into()]),
        per_client_instrument: args.per_client_instrument
            || sc.per_client_instrument.unwrap_or(false),
        json_ratio: args
            .json_ratio
            .or(sc.json_ratio)
            .unwrap_or(0.0)
            .clamp(0.0, 1.0),
        conflate_ms: args.conflate_ms.or(sc.conflate_ms).unwrap_or(0),
        idle: args.idle || sc.idle.unwrap_or(false),
        decode_ratio: args
            .decode_ratio
            .or(sc.decode_ratio)
            .unwrap_or(1.0)
            .clamp(0.0, 1.0),
        duration: dur(args
            .duration
            .as_deref()
            .or(sc.duration.as_deref())
            .unwrap_or("10s")),
        warmup: dur(&args.warmup),
        offered_per_s: if target == Target::Peer {
            peer_offered
        } else {
            sc.offered_per_s
        },
        storm_clients: args.storm_clients.or(sc.storm_clients).unwrap_or(0),
        storm_within: dur(args
            .storm_within
            .as_deref()
            .or(sc.storm_within.as_deref())
            .unwrap_or("10s")),
        source_ips: args.source_ips.max(1),
        arrival: args.arrival,
        client_threads: args
            .threads
            .map(|n| n.max(1))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    if matches!(args.spawn, Some(s) if s != Spawn::Tickwire)
        && args.scenario.is_some()
        && sc.peer_rate.is_none()
    {
        let server = spawn_name(args.spawn.expect("checked above"));
        let line = serde_json::json!({"scenario": plan.name, "server": server, "skipped": "scenario has no peer equivalent"});
        if args.json {
            println!("{line}")
        } else {
            println!("{}: skipped (no peer equivalent)", plan.name)
        }
        return;
    }
    let mut child = args.spawn.map(|s| spawn_server(s, &args, &sc));
    let pid = child.as_ref().map(|c| c.pid()).or(args.server_pid);
    let server_name = match args.spawn {
        Some(s) => spawn_name(s).to_string(),
        None => "external".into(),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build().expect("tokio runtime");
    if let Some(b) = BACKING.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        b.mark();
    }
    let report = rt.block_on(run::run(plan, pid, !args.quiet));
    if let Some(b) = BACKING.lock().unwrap_or_else(|e| e.into_inner()).take() {
        eprintln!("{}", b.summary());
        b.stop();
    }
    if let Some(c) = child.as_mut() {
        if let Some(status) = c.exited() {
            eprintln!(
                "tickwire-load: the spawned server exited during the run ({status}); its last lines:\n{}",
                c.last_lines()
            );
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        c.kill();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    if args.json {
        println!("{}", report.to_json(&server_name));
    } else {
        report.print(&server_name);
    }
}
