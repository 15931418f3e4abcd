//! The one `Config` of a server run.
//!
//! Precedence: command-line flags, then `TICKWIRE_<FLAG>` environment
//! variables, then the TOML file given by `--config`, then the defaults
//! written on each field. The TOML file uses the flag names as keys
//! (`sim-rate = 500` or `sim_rate = 500`); it is folded in by turning each
//! key that neither the command line nor the environment set into a flag, so
//! all three sources go through the same clap validation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use thiserror::Error;

/// What happens to a client that falls too far behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlowConsumerPolicy {
    /// Send `lagged` naming the skipped range, then a fresh snapshot.
    Lagged,
    /// Close the connection with 4008.
    Close,
}

/// How fast the simulator publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimRate {
    /// About this many events per second in total.
    PerSecond(f64),
    /// As fast as one task can publish.
    Max,
}

fn parse_sim_tick(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(1) {
        return Err(format!("sim tick must be between 1ms and 1s, got {s}"));
    }
    Ok(d)
}

fn parse_sim_rate(s: &str) -> Result<SimRate, String> {
    if s == "max" {
        return Ok(SimRate::Max);
    }
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(SimRate::PerSecond(r)),
        _ => Err(format!(
            "`{s}` is not a rate: give events per second or `max`"
        )),
    }
}

/// One `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The built-in market simulator.
    Sim,
    /// Binance public streams.
    Binance,
    /// OKX public streams.
    Okx,
    /// Events recorded by `tickwire record`.
    Replay(PathBuf),
}

fn parse_source(s: &str) -> Result<SourceSpec, String> {
    match s {
        "sim" => Ok(SourceSpec::Sim),
        "binance" => Ok(SourceSpec::Binance),
        "okx" => Ok(SourceSpec::Okx),
        _ => match s.strip_prefix("replay:") {
            Some(path) if !path.is_empty() => Ok(SourceSpec::Replay(PathBuf::from(path))),
            _ => Err(format!(
                "`{s}` is not a source: use sim, binance, okx or replay:FILE"
            )),
        },
    }
}

/// How fast a replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplaySpeed {
    /// This many times the recorded pacing (1 = as recorded).
    Times(f64),
    /// As fast as the hub takes events.
    Max,
}

fn parse_replay_speed(s: &str) -> Result<ReplaySpeed, String> {
    if s == "max" {
        return Ok(ReplaySpeed::Max);
    }
    match s.trim_end_matches('x').parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(ReplaySpeed::Times(r)),
        _ => Err(format!(
            "`{s}` is not a replay speed: give a factor (1, 10) or `max`"
        )),
    }
}

fn parse_interval_label(s: &str) -> Result<String, String> {
    crate::analytics::candles::parse_interval(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("`{s}` is not an interval: use e.g. 1s, 1m, 5m, 1h, 1d"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (e.g. 15s, 500ms)"))
}

impl Config {
    /// Whether analytics runs.
    pub fn analytics_on(&self) -> bool {
        self.analytics == "on"
    }
}

/// Settings of `tickwire serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket on the same port).
    #[arg(long, env = "TICKWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// TOML file with defaults for any of these flags.
    #[arg(long, env = "TICKWIRE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where events come from: `sim`, `binance`, `okx`, `replay:FILE`
    /// (repeat or comma-separate to run several at once). Default: `sim`.
    #[arg(long = "source", env = "TICKWIRE_SOURCE", value_delimiter = ',', value_parser = parse_source)]
    pub sources: Vec<SourceSpec>,

    /// Exchange symbols for the binance and okx sources (`BTCUSDT` or
    /// `BTC-USDT`, comma separated).
    #[arg(
        long,
        env = "TICKWIRE_SYMBOLS",
        value_delimiter = ',',
        default_value = "BTCUSDT,ETHUSDT"
    )]
    pub symbols: Vec<String>,

    /// Binance WebSocket base URL (combined streams are under `/stream`).
    #[arg(
        long,
        env = "TICKWIRE_BINANCE_WS_URL",
        default_value = "wss://stream.binance.com:9443"
    )]
    pub binance_ws_url: String,

    /// Binance REST base URL (depth snapshots, ticker fallback).
    #[arg(
        long,
        env = "TICKWIRE_BINANCE_REST_URL",
        default_value = "https://api.binance.com"
    )]
    pub binance_rest_url: String,

    /// OKX public WebSocket URL.
    #[arg(
        long,
        env = "TICKWIRE_OKX_WS_URL",
        default_value = "wss://ws.okx.com:8443/ws/v5/public"
    )]
    pub okx_ws_url: String,

    /// OKX REST base URL (ticker fallback).
    #[arg(
        long,
        env = "TICKWIRE_OKX_REST_URL",
        default_value = "https://www.okx.com"
    )]
    pub okx_rest_url: String,

    /// An exchange stream silent for this long is reconnected.
    #[arg(long, env = "TICKWIRE_STALE_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub stale_after: Duration,

    /// While an exchange stream is down, tickers are polled over REST this often.
    #[arg(long, env = "TICKWIRE_REST_FALLBACK_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub rest_fallback_interval: Duration,

    /// Binance symbols (default: `--symbols`).
    #[arg(long, env = "TICKWIRE_BINANCE_SYMBOLS", value_delimiter = ',')]
    pub binance_symbols: Option<Vec<String>>,

    /// OKX instruments (default: `--symbols`).
    #[arg(long, env = "TICKWIRE_OKX_SYMBOLS", value_delimiter = ',')]
    pub okx_symbols: Option<Vec<String>>,

    /// Exchange connections are replaced (make-before-break) this often;
    /// Binance closes a stream connection at 24 h.
    #[arg(long, env = "TICKWIRE_ROTATE_AFTER", default_value = "23h", value_parser = parse_duration)]
    pub rotate_after: Duration,

    /// A book that got no snapshot this long after subscribing (OKX) is
    /// fetched over REST instead.
    #[arg(long, env = "TICKWIRE_SNAPSHOT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub snapshot_timeout: Duration,

    /// First reconnect delay ceiling (doubles per failure, full jitter).
    #[arg(long, env = "TICKWIRE_RECONNECT_MIN", default_value = "500ms", value_parser = parse_duration)]
    pub reconnect_min: Duration,

    /// Largest reconnect delay.
    #[arg(long, env = "TICKWIRE_RECONNECT_MAX", default_value = "30s", value_parser = parse_duration)]
    pub reconnect_max: Duration,

    /// Replay pacing: a factor of the recorded pacing (1, 10) or `max`.
    #[arg(long, env = "TICKWIRE_REPLAY_SPEED", default_value = "1", value_parser = parse_replay_speed)]
    pub replay_speed: ReplaySpeed,

    /// Start a replay over when it reaches the end of its file.
    #[arg(long = "loop", env = "TICKWIRE_LOOP")]
    pub replay_loop: bool,

    /// Enables `POST /publish` for holders of this key (`Authorization:
    /// Bearer KEY` or `X-Api-Key: KEY`). Without it the endpoint answers 404.
    #[arg(long, env = "TICKWIRE_PUBLISH_KEY")]
    pub publish_key: Option<String>,

    /// Analytics (candles from trades, signals, sentiment, scanner): `on` or `off`.
    #[arg(long, env = "TICKWIRE_ANALYTICS", default_value = "on", value_parser = ["on", "off"])]
    pub analytics: String,

    /// Candle intervals built from trades (`1s`, `1m`, `5m`, `1h`, `1d`),
    /// published on `candle<interval>.<venue>.<instrument>`.
    #[arg(long, env = "TICKWIRE_CANDLE_INTERVALS", value_delimiter = ',', default_value = "1m,5m,1h", value_parser = parse_interval_label)]
    pub candle_intervals: Vec<String>,

    /// Candle interval at whose close signals are computed.
    #[arg(long, env = "TICKWIRE_SIGNAL_INTERVAL", default_value = "1m", value_parser = parse_interval_label)]
    pub signal_interval: String,

    /// How often each venue's sentiment index is published.
    #[arg(long, env = "TICKWIRE_SENTIMENT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub sentiment_interval: Duration,

    /// Scans running at once, server-wide (a request beyond it gets RATE_LIMITED).
    #[arg(long, env = "TICKWIRE_MAX_CONCURRENT_SCANS", default_value_t = 2)]
    pub max_concurrent_scans: usize,

    /// Simulator events per second in total, or `max`.
    #[arg(long, env = "TICKWIRE_SIM_RATE", default_value = "1000", value_parser = parse_sim_rate)]
    pub sim_rate: SimRate,

    /// How often the simulator publishes what its rate accrued since the
    /// last tick (1ms to 1s). Short ticks spread events out (lower latency
    /// when few clients listen); long ticks batch them (fewer writes per
    /// client when many listen).
    #[arg(long, env = "TICKWIRE_SIM_TICK", default_value = "10ms", value_parser = parse_sim_tick)]
    pub sim_tick: Duration,

    /// Simulator instruments (`BASE-QUOTE`, comma separated); default 12 majors.
    #[arg(long, env = "TICKWIRE_SIM_INSTRUMENTS", value_delimiter = ',')]
    pub sim_instruments: Vec<String>,

    /// Seed of the simulator's random walk (random when absent).
    #[arg(long, env = "TICKWIRE_SIM_SEED")]
    pub sim_seed: Option<u64>,

    /// When set, the simulator publishes custom JSON events of about this many
    /// bytes on `custom.sim.<instrument>` instead of the market mix (load tests
    /// of large messages).
    #[arg(long, env = "TICKWIRE_SIM_PAYLOAD_BYTES")]
    pub sim_payload_bytes: Option<usize>,

    /// Levels per side of published order books (simulator and exchanges).
    #[arg(long, env = "TICKWIRE_BOOK_DEPTH", default_value_t = 50)]
    pub book_depth: usize,

    /// Messages over this many bytes are sent gzipped (0 = never).
    #[arg(long, env = "TICKWIRE_GZIP_THRESHOLD", default_value_t = 1024)]
    pub gzip_threshold: usize,

    /// Interval of server WebSocket pings; silent clients are closed after two.
    #[arg(long, env = "TICKWIRE_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Events of history kept per channel (for resume and slow readers).
    #[arg(long, env = "TICKWIRE_HISTORY_MESSAGES", default_value_t = 10_000)]
    pub history_messages: usize,

    /// Seconds of history kept per channel (0 = no age bound).
    #[arg(long, env = "TICKWIRE_HISTORY_SECONDS", default_value_t = 300)]
    pub history_seconds: u64,

    /// Most subscriptions (channels plus patterns) per connection.
    #[arg(long, env = "TICKWIRE_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    pub max_subscriptions: u32,

    /// Client requests per second a connection may send (burst of the same
    /// size); beyond it RATE_LIMITED, and close 4029 if it goes on. 0 = none.
    #[arg(long, env = "TICKWIRE_MAX_REQUESTS_PER_SECOND", default_value_t = 50)]
    pub max_requests_per_second: u32,

    /// Most WebSocket connections at once (HTTP 503 before upgrade). 0 = none.
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: u64,

    /// Most WebSocket connections from one IP address (HTTP 429). 0 = none.
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: u32,

    /// Origins allowed to open WebSockets (comma separated, e.g.
    /// `https://app.example.com`); a handshake with another `Origin` header
    /// gets HTTP 403. Empty = any. Handshakes without `Origin` (non-browser
    /// clients) are always allowed.
    #[arg(long, env = "TICKWIRE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Certificate chain (PEM) for TLS: the port then speaks `wss://` and
    /// `https://` only. Needs `--tls-key`.
    #[arg(long, env = "TICKWIRE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, env = "TICKWIRE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Enables JWT auth with this HS256 secret.
    #[arg(long, env = "TICKWIRE_JWT_SECRET")]
    pub jwt_secret: Option<String>,

    /// Enables JWT auth with this RS256 or ES256 public key (PEM file).
    #[arg(long, env = "TICKWIRE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,

    /// How long a client may take to send its HTTP request head (and, with
    /// auth on, to authenticate).
    #[arg(long, env = "TICKWIRE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Events pending for one connection beyond which it is a slow consumer.
    #[arg(long, env = "TICKWIRE_MAX_LAG_MESSAGES", default_value_t = 8192)]
    pub max_lag_messages: u64,

    /// Bytes (proto encoding) pending for one connection beyond which it is a
    /// slow consumer (0 = no byte bound).
    #[arg(long, env = "TICKWIRE_MAX_LAG_BYTES", default_value_t = 8 << 20)]
    pub max_lag_bytes: u64,

    /// What a slow consumer gets: `lagged` + snapshots, or close 4008.
    #[arg(
        long,
        env = "TICKWIRE_SLOW_CONSUMER",
        value_enum,
        default_value = "lagged"
    )]
    pub slow_consumer: SlowConsumerPolicy,

    /// SO_SNDBUF of client sockets in bytes (kernel default when absent);
    /// smaller means lag is seen sooner and less is buffered per client.
    #[arg(long, env = "TICKWIRE_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<usize>,

    /// How long a write to a client may stall before it is dropped as a slow consumer.
    #[arg(long, env = "TICKWIRE_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// How long to wait for clients to take their close 1001 on shutdown.
    #[arg(long, env = "TICKWIRE_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log filter (tracing `EnvFilter` syntax; `RUST_LOG` wins when set).
    #[arg(long, env = "TICKWIRE_LOG", default_value = "info")]
    pub log: String,
}

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "tickwire",
    version,
    about = "Market-data feed server: protobuf and JSON over WebSocket"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve` flags, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the feed (the default).
    Serve(Box<Config>),
    /// Record events from a running tickwire (or from sources run in-process)
    /// to a `.twr` file for `serve --source replay:FILE`.
    Record(crate::recorder::RecordArgs),
}

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error(
        "config file {path}: key `{key}` has an unsupported value (use a string, number, boolean or array)"
    )]
    Value { path: PathBuf, key: String },
    #[error(transparent)]
    Cli(#[from] clap::Error),
}

/// Finds `--config FILE` (or `--config=FILE`, or `TICKWIRE_CONFIG`).
fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("TICKWIRE_CONFIG").map(PathBuf::from)
}

fn flag_given(args: &[String], flag: &str) -> bool {
    args.iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

fn toml_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Turns the TOML file's keys into flags, skipping those set on the command
/// line or in the environment.
fn toml_args(path: &PathBuf, args: &[String]) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let table: toml::Table = text.parse().map_err(|source| ConfigError::Toml {
        path: path.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let flag = format!("--{name}");
        let env = format!("TICKWIRE_{}", name.replace('-', "_").to_uppercase());
        if flag_given(args, &flag) || std::env::var_os(&env).is_some() || name == "config" {
            continue;
        }
        let values: Vec<String> = match &value {
            toml::Value::Array(items) => items.iter().map(toml_scalar).collect::<Option<_>>(),
            v => toml_scalar(v).map(|s| vec![s]),
        }
        .ok_or_else(|| ConfigError::Value {
            path: path.clone(),
            key: key.clone(),
        })?;
        for v in values {
            out.push(format!("{flag}={v}"));
        }
    }
    Ok(out)
}

impl Cli {
    /// Parses `args` (program name first), folding in the TOML file.
    pub fn load(args: Vec<String>) -> Result<Self, ConfigError> {
        let Some(path) = config_path(&args) else {
            return Ok(Self::try_parse_from(args)?);
        };
        let extra = toml_args(&path, &args)?;
        // Put the file's flags right after the subcommand (or program name)
        // so they land in the same argument group as the user's.
        let at = usize::from(args.get(1).is_some_and(|a| a == "serve")) + 1;
        let mut merged = args[..at.min(args.len())].to_vec();
        merged.extend(extra);
        merged.extend(args[at.min(args.len())..].iter().cloned());
        Ok(Self::try_parse_from(merged)?)
    }

    /// The serve settings, whichever form the command line took (the
    /// defaults under `record`, which has its own).
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c)) => *c,
            Some(Command::Record(_)) | None => self.serve,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_subcommand_forms_agree() {
        let a = Cli::load(args(&["tickwire"])).unwrap().into_config();
        let b = Cli::load(args(&["tickwire", "serve"]))
            .unwrap()
            .into_config();
        assert_eq!(a.listen, b.listen);
        assert_eq!(a.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(a.gzip_threshold, 1024);
        assert_eq!(a.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(a.sim_rate, SimRate::PerSecond(1000.0));
        let c = Cli::load(args(&[
            "tickwire",
            "serve",
            "--sim-rate",
            "max",
            "--heartbeat-interval",
            "500ms",
        ]))
        .unwrap()
        .into_config();
        assert_eq!(c.sim_rate, SimRate::Max);
        assert_eq!(c.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(a.sim_tick, Duration::from_millis(10));
        let d = Cli::load(args(&["tickwire", "--sim-tick", "1ms"])).unwrap();
        assert_eq!(d.into_config().sim_tick, Duration::from_millis(1));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let err = Cli::load(args(&["tickwire", "--sim-rate", "fast"])).unwrap_err();
        assert!(err.to_string().contains("not a rate"), "{err}");
        assert!(Cli::load(args(&["tickwire", "--listen", "nowhere"])).is_err());
        let err = Cli::load(args(&["tickwire", "--sim-tick", "100us"])).unwrap_err();
        assert!(err.to_string().contains("between 1ms and 1s"), "{err}");
    }

    #[test]
    fn toml_file_fills_what_flags_do_not_set() {
        let dir = std::env::temp_dir().join(format!("tickwire-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "gzip_threshold = 2048\nbook-depth = 20\nsim-instruments = [\"AAA-USDT\", \"BBB-USDT\"]\n",
        )
        .unwrap();
        let p = path.to_string_lossy().to_string();
        let c = Cli::load(args(&[
            "tickwire",
            "serve",
            "--config",
            &p,
            "--book-depth",
            "30",
        ]))
        .unwrap()
        .into_config();
        assert_eq!(c.gzip_threshold, 2048, "from the file");
        assert_eq!(c.book_depth, 30, "the flag wins over the file");
        assert_eq!(c.sim_instruments, vec!["AAA-USDT", "BBB-USDT"]);
        std::fs::write(&path, "gzip_threshold = [").unwrap();
        assert!(matches!(
            Cli::load(args(&["tickwire", "--config", &p])),
            Err(ConfigError::Toml { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
