//! The one `Config` of a server run.
//!
//! Precedence: command-line flags, then `TICKWIRE_<FLAG>` environment
//! variables, then the TOML file given by `--config`, then the defaults
//! written on each field. The TOML file uses the flag names as keys
//! (`sim-rate = 500` or `sim_rate = 500`); each value is checked by its
//! flag's own value parser and becomes that flag's default in the clap
//! command (see [`file`]), so clap's own precedence applies and a flag added
//! here works from the file, the environment and the command line alike.
//! Values that are fine alone but not together are refused by
//! `Config::validate` (in [`load`]), naming where each came from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use thiserror::Error;

use crate::analytics::CandleInterval;
pub use crate::server::SlowConsumerPolicy;
pub use crate::sources::replay::ReplaySpeed;
pub use crate::sources::sim::SimRate;
pub use crate::sources::{SourceSpec, SourcesOn};

mod example;
mod file;
mod load;
mod parse;

pub use file::FileDefaults;
pub use load::{check_file, environment_only, example, parse_with_file, serve_command};
use parse::{
    parse_book_depth, parse_consolidate, parse_duration, parse_instrument, parse_listen,
    parse_on_off, parse_replay_speed, parse_sim_tick,
};
pub use parse::{parse_sim_rate, parse_source};

impl Config {
    /// Whether analytics runs.
    pub fn analytics_on(&self) -> bool {
        // an edge serves the ingest's analytics events, it makes none
        self.analytics && !self.is_edge()
    }

    /// Whether this node is a cluster edge: `--nats-url` and `--source none`
    /// only (see "Running several nodes" in the README).
    pub fn is_edge(&self) -> bool {
        self.nats_url.is_some()
            && !self.sources.is_empty()
            && self.sources.iter().all(|s| *s == SourceSpec::None)
    }
}

/// Settings of `tickwire serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket on the same port).
    /// A host name is resolved at startup (`localhost:8080`); the first IPv4
    /// address it has is used, else the first IPv6 one.
    #[arg(long, env = "TICKWIRE_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// TOML file with defaults for any of these flags.
    #[arg(long, env = "TICKWIRE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where events come from: `sim`, `binance`, `okx`, `bybit`,
    /// `coinbase`, `kraken`, `twelvedata`, `replay:FILE` (repeat or
    /// comma-separate to run several at once), or `none` (an edge node of a
    /// cluster, with `--nats-url`). Default: `sim`.
    #[arg(long = "source", env = "TICKWIRE_SOURCE", value_delimiter = ',', value_parser = parse_source)]
    pub sources: Vec<SourceSpec>,

    /// Where the sources and analytics run: `thread` (their own thread:
    /// their rate holds on a saturated core) or `workers` (the
    /// connections' runtime: no cross-thread wake between a publish and
    /// the writes, the lower latency on a lightly loaded server).
    #[arg(
        long,
        env = "TICKWIRE_SOURCES_ON",
        value_enum,
        default_value = "thread"
    )]
    pub sources_on: SourcesOn,

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

    /// Bybit v5 spot public WebSocket URL.
    #[arg(
        long,
        env = "TICKWIRE_BYBIT_WS_URL",
        default_value = "wss://stream.bybit.com/v5/public/spot"
    )]
    pub bybit_ws_url: String,

    /// Bybit REST base URL (instruments, ticker fallback).
    #[arg(
        long,
        env = "TICKWIRE_BYBIT_REST_URL",
        default_value = "https://api.bybit.com"
    )]
    pub bybit_rest_url: String,

    /// Bybit symbols (default: `--symbols`).
    #[arg(long, env = "TICKWIRE_BYBIT_SYMBOLS", value_delimiter = ',')]
    pub bybit_symbols: Option<Vec<String>>,

    /// Coinbase Advanced Trade market data WebSocket URL.
    #[arg(
        long,
        env = "TICKWIRE_COINBASE_WS_URL",
        default_value = "wss://advanced-trade-ws.coinbase.com"
    )]
    pub coinbase_ws_url: String,

    /// Coinbase REST base URL (public products, ticker fallback).
    #[arg(
        long,
        env = "TICKWIRE_COINBASE_REST_URL",
        default_value = "https://api.coinbase.com"
    )]
    pub coinbase_rest_url: String,

    /// Coinbase products (default: `--symbols`).
    #[arg(long, env = "TICKWIRE_COINBASE_SYMBOLS", value_delimiter = ',')]
    pub coinbase_symbols: Option<Vec<String>>,
    /// Kraken WebSocket v2 URL.
    #[arg(
        long,
        env = "TICKWIRE_KRAKEN_WS_URL",
        default_value = "wss://ws.kraken.com/v2"
    )]
    pub kraken_ws_url: String,

    /// Kraken REST base URL (asset pairs, ticker fallback).
    #[arg(
        long,
        env = "TICKWIRE_KRAKEN_REST_URL",
        default_value = "https://api.kraken.com"
    )]
    pub kraken_rest_url: String,

    /// Kraken instruments (default: `--symbols`; `BTC/USD`, `BTC-USD` or `BTCUSD`).
    #[arg(long, env = "TICKWIRE_KRAKEN_SYMBOLS", value_delimiter = ',')]
    pub kraken_symbols: Option<Vec<String>>,

    /// Twelve Data WebSocket URL (the API key is added as `?apikey=`).
    #[arg(
        long,
        env = "TICKWIRE_TWELVEDATA_WS_URL",
        default_value = "wss://ws.twelvedata.com/v1/quotes/price"
    )]
    pub twelvedata_ws_url: String,

    /// Twelve Data REST base URL (price fallback).
    #[arg(
        long,
        env = "TICKWIRE_TWELVEDATA_REST_URL",
        default_value = "https://api.twelvedata.com"
    )]
    pub twelvedata_rest_url: String,

    /// Twelve Data symbols (`AAPL`, `EUR/USD`; default: `--symbols`).
    #[arg(long, env = "TICKWIRE_TWELVEDATA_SYMBOLS", value_delimiter = ',')]
    pub twelvedata_symbols: Option<Vec<String>>,

    /// Twelve Data API key (never logged).
    #[arg(long, env = "TICKWIRE_TWELVEDATA_API_KEY", hide_env_values = true)]
    pub twelvedata_api_key: Option<String>,

    /// Twelve Data REST credits per minute the fallback may spend (the
    /// Basic plan's limit is 8).
    #[arg(
        long,
        env = "TICKWIRE_TWELVEDATA_CREDITS_PER_MINUTE",
        default_value_t = 8
    )]
    pub twelvedata_credits_per_minute: u32,

    /// Quote currencies merged in `bbo.all.<BASE-QUOTE>`, `FROM=TO`
    /// (e.g. `USDT=USD,USDC=USD`); unmapped quotes stay apart.
    #[arg(long, env = "TICKWIRE_CONSOLIDATE", value_delimiter = ',', value_parser = parse_consolidate)]
    pub consolidate: Vec<(String, String)>,

    /// The consolidated book `bbo.all.*`: `auto` (when an exchange source
    /// runs), `on` (also over the simulator and replays) or `off`.
    #[arg(long, env = "TICKWIRE_CONSOLIDATED_BOOK", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub consolidated_book: String,

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

    /// Start a replay over when it reaches the end of its file (`--loop`
    /// or `--loop=true`; `--loop=false` overrides a file's `loop = true`).
    #[arg(
        long = "loop",
        env = "TICKWIRE_LOOP",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true"
    )]
    pub replay_loop: bool,

    /// Enables `POST /publish` for holders of this key (`Authorization:
    /// Bearer KEY` or `X-Api-Key: KEY`). Without it the endpoint answers 404.
    #[arg(long, env = "TICKWIRE_PUBLISH_KEY", value_parser = crate::server::auth::parse_publish_key)]
    pub publish_key: Option<String>,

    /// Analytics (candles from trades, signals, sentiment, scanner): `on` or `off`.
    #[arg(long, env = "TICKWIRE_ANALYTICS", default_value = "on", action = clap::ArgAction::Set, value_parser = parse_on_off())]
    pub analytics: bool,

    /// Candle intervals built from trades (`1s`, `1m`, `5m`, `1h`, `1d`),
    /// published on `candle<interval>.<venue>.<instrument>`.
    #[arg(long, env = "TICKWIRE_CANDLE_INTERVALS", value_delimiter = ',', default_value = "1m,5m,1h", value_parser = CandleInterval::parse)]
    pub candle_intervals: Vec<CandleInterval>,

    /// Candle interval at whose close signals are computed.
    #[arg(long, env = "TICKWIRE_SIGNAL_INTERVAL", default_value = "1m", value_parser = CandleInterval::parse)]
    pub signal_interval: CandleInterval,

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
    #[arg(long, env = "TICKWIRE_SIM_INSTRUMENTS", value_delimiter = ',', value_parser = parse_instrument)]
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
    #[arg(long, env = "TICKWIRE_BOOK_DEPTH", default_value_t = 50, value_parser = parse_book_depth)]
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

    /// NATS server of the cluster (`nats://HOST:PORT`): turns on cluster
    /// mode over JetStream (see "Running several nodes" in the README).
    /// Unset: one process, no NATS.
    #[arg(long, env = "TICKWIRE_NATS_URL")]
    pub nats_url: Option<String>,

    /// NATS credentials file (`.creds`: JWT and NKey seed).
    #[arg(long, env = "TICKWIRE_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// PEM file of the CA that signs the NATS server's certificate (turns
    /// TLS on for the NATS link).
    #[arg(long, env = "TICKWIRE_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,

    /// Copies JetStream keeps of the event history (1 in tests, 3 in
    /// production clusters).
    #[arg(long, env = "TICKWIRE_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,

    /// Most subscriptions (channels plus patterns) per connection.
    #[arg(long, env = "TICKWIRE_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    pub max_subscriptions: u32,

    /// Most channel names or patterns one subscribe or unsubscribe may
    /// carry (BAD_REQUEST beyond; duplicates count).
    #[arg(long, env = "TICKWIRE_MAX_NAMES_PER_REQUEST", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_names_per_request: u32,

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
    #[arg(long, env = "TICKWIRE_JWT_SECRET", value_parser = crate::server::auth::parse_jwt_secret)]
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

    /// SO_SNDBUF of client sockets in bytes (0 = kernel autotuning, up to
    /// several MiB per client): bounds what the kernel holds for a client,
    /// so lag shows in the server's own backlog where it is seen and told.
    #[arg(long, env = "TICKWIRE_SOCKET_SEND_BUFFER", default_value_t = 256 << 10)]
    pub socket_send_buffer: usize,

    /// TCP_NOTSENT_LOWAT of client sockets in bytes (0 = none): the kernel
    /// takes no more from the server while this much is still unsent (the
    /// client not reading), so a backlog builds where it is measured.
    #[arg(long, env = "TICKWIRE_SOCKET_UNSENT_LIMIT", default_value_t = 16 << 10)]
    pub socket_unsent_limit: u32,

    /// A connection whose writes carry events published longer ago than
    /// this (counted from its latest subscribe for history it asked for) is
    /// a slow consumer, whatever its backlog's size (0 = no age bound).
    #[arg(long, env = "TICKWIRE_MAX_LAG_AGE", default_value = "2s", value_parser = parse_duration)]
    pub max_lag_age: Duration,

    /// How long a write to a client may stall before the client is closed
    /// as a slow consumer (4008; the close frame goes out if the kernel
    /// still takes it).
    #[arg(long, env = "TICKWIRE_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// How long to wait for clients to take their close 1001 on shutdown.
    #[arg(long, env = "TICKWIRE_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log filter (tracing `EnvFilter` syntax; `RUST_LOG` wins when set).
    #[arg(long, env = "TICKWIRE_LOG", default_value = "info")]
    pub log: String,
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
    #[error("config file {path}: unknown key `{key}` (`tickwire config example` lists every key)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("config file {path}: key `{key}`: {reason}")]
    Value {
        path: PathBuf,
        key: String,
        reason: String,
    },
    /// Values that parse one by one but make no sense together.
    #[error("{0}")]
    Invalid(String),
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error(transparent)]
    Cli(#[from] clap::Error),
}
