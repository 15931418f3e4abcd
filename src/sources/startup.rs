//! Starting the sources of a server run: their settings (built by the
//! composition root from the configuration) and the thread they run on.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::replay::{Replay, ReplaySpeed};
use super::sim::{SimConfig, Simulator};
use super::{
    ExchangeConfig, SourceStatus, StartError, binance, bybit, coinbase, kraken, okx, rest,
    run_exchange, sharded, twelvedata,
};
use crate::feed::Hub;

/// One `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The built-in market simulator.
    Sim,
    /// Binance public streams.
    Binance,
    /// OKX public streams.
    Okx,
    /// Bybit v5 spot public streams.
    Bybit,
    /// Coinbase Advanced Trade public market data.
    Coinbase,
    /// Kraken Spot WebSocket v2.
    Kraken,
    /// Twelve Data prices (stocks, forex).
    TwelveData,
    /// Events recorded by `tickwire record`.
    Replay(PathBuf),
    /// No source: an edge node of a cluster (`--nats-url`) serving what
    /// the ingest publishes.
    None,
}

impl std::fmt::Display for SourceSpec {
    /// The source as `--source` names it (`sim`, `replay:FILE`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sim => f.write_str("sim"),
            Self::Binance => f.write_str("binance"),
            Self::Okx => f.write_str("okx"),
            Self::Bybit => f.write_str("bybit"),
            Self::Coinbase => f.write_str("coinbase"),
            Self::Kraken => f.write_str("kraken"),
            Self::TwelveData => f.write_str("twelvedata"),
            Self::Replay(path) => write!(f, "replay:{}", path.display()),
            Self::None => f.write_str("none"),
        }
    }
}

/// Where one venue is reached, and which of its instruments are wanted.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// WebSocket URL.
    pub ws_url: String,
    /// REST base URL (metadata, snapshots, fallback polls).
    pub rest_url: String,
    /// The venue's own symbol list (default: [`Settings::symbols`]).
    pub symbols: Option<Vec<String>>,
}

/// How the exchange connectors pace themselves.
#[derive(Debug, Clone)]
pub struct ExchangeTiming {
    /// A stream silent this long is reconnected.
    pub stale_after: Duration,
    /// While a stream is down, tickers are polled over REST this often.
    pub rest_fallback_interval: Duration,
    /// Connections are replaced make-before-break this often.
    pub rotate_after: Duration,
    /// A book without a snapshot this long after subscribing is fetched over REST.
    pub snapshot_timeout: Duration,
    /// First reconnect delay ceiling (doubles per failure).
    pub reconnect_min: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
}

/// Where the sources (and the analytics engine beside them) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourcesOn {
    /// A thread of their own with its own runtime: on a saturated core the
    /// kernel shares time between it and the connections, so the sources
    /// keep their rate however many clients there are.
    Thread,
    /// The connections' runtime: a publish wakes the subscribers on the
    /// worker it runs on (no cross-thread wake, no context switch), which
    /// is what a lightly loaded server wants; saturated, the sources wait
    /// their turn behind every connection.
    Workers,
}

/// Settings of the sources of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The sources to run (`sim` when empty; `none` runs nothing).
    pub specs: Vec<SourceSpec>,
    /// Where they run.
    pub run_on: SourcesOn,
    /// Exchange symbols shared by the venues without a list of their own.
    pub symbols: Vec<String>,
    pub binance: Endpoint,
    pub okx: Endpoint,
    pub bybit: Endpoint,
    pub coinbase: Endpoint,
    pub kraken: Endpoint,
    pub twelvedata: Endpoint,
    /// Twelve Data API key (never logged).
    pub twelvedata_api_key: Option<String>,
    /// Twelve Data REST credits per minute the fallback may spend.
    pub twelvedata_credits_per_minute: u32,
    pub timing: ExchangeTiming,
    /// Levels per side of published books.
    pub book_depth: usize,
    /// Quote currencies merged in `bbo.all.*` (`FROM`, `TO`).
    pub consolidate: Vec<(String, String)>,
    /// The consolidated book: `Some(on)` forced, `None` when an exchange
    /// source runs.
    pub consolidated_book: Option<bool>,
    /// The simulator (its `candles` follows [`Settings::analytics`]).
    pub sim: SimConfig,
    pub replay_speed: ReplaySpeed,
    pub replay_loop: bool,
    /// Whether analytics runs beside the sources: the simulator then
    /// leaves candles to it, and replays skip the recorded derived events.
    pub analytics: bool,
}

/// Whether any exchange venue (with books) is among the sources.
fn specs_have_venues(specs: &[SourceSpec]) -> bool {
    specs.iter().any(|s| {
        !matches!(
            s,
            SourceSpec::Sim | SourceSpec::Replay(_) | SourceSpec::TwelveData
        )
    })
}

/// The sources of a server run, started on their own thread.
pub struct Running {
    pub statuses: Vec<Arc<SourceStatus>>,
    pub handle: SourcesHandle,
}

/// The running sources, joined at shutdown (they stop on the token).
#[derive(Debug)]
pub enum SourcesHandle {
    /// Their own thread ([`SourcesOn::Thread`]).
    Thread(std::thread::JoinHandle<()>),
    /// A task on the connections' runtime ([`SourcesOn::Workers`]).
    Task(tokio::task::JoinHandle<()>),
}

impl SourcesHandle {
    /// Waits until every source has ended.
    pub async fn join(self) {
        match self {
            Self::Thread(thread) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            Self::Task(task) => {
                let _ = task.await;
            }
        }
    }
}

/// One task of the sources' thread.
pub type Task = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Builds every configured source (`sim` when none is) and runs them, with
/// the `beside` tasks (the analytics engine), until `shutdown`: on a thread
/// of their own or on the connections' runtime ([`SourcesOn`]; called from
/// inside that runtime).
///
/// Why a thread by default: on a saturated core the kernel shares time
/// between it and the connection runtime, while inside one runtime the
/// simulator waited its turn after every connection (790 of 1000 events/s
/// published under broadcast-10k).
pub fn start(
    hub: &Arc<Hub>,
    settings: &Settings,
    beside: Vec<Task>,
    shutdown: &CancellationToken,
) -> Result<Running, StartError> {
    // `none` (an edge node) runs nothing; it only makes the list non-empty
    let specs: Vec<SourceSpec> = if settings.specs.is_empty() {
        vec![SourceSpec::Sim]
    } else {
        let none = SourceSpec::None;
        settings
            .specs
            .iter()
            .filter(|s| **s != none)
            .cloned()
            .collect()
    };
    let mut statuses = Vec::new();
    let mut tasks: Vec<Task> = Vec::new();
    // the consolidated book (bbo.all.*) runs beside exchange sources
    let consolidate = settings
        .consolidated_book
        .unwrap_or_else(|| specs_have_venues(&settings.specs));
    if consolidate {
        let (tap, engine) = crate::feed::bbo::new(hub.clone(), &settings.consolidate);
        hub.set_bbo_tap(tap);
        tasks.push(Box::pin(engine.run(shutdown.clone())));
    }
    for spec in specs {
        if spec == SourceSpec::None {
            continue;
        }
        let status = Arc::new(SourceStatus::new(spec.to_string()));
        let shutdown = shutdown.clone();
        let st = status.clone();
        let task: Task = match spec {
            SourceSpec::Sim => {
                let sim = Simulator::new(
                    hub.clone(),
                    &SimConfig {
                        candles: !settings.analytics,
                        ..settings.sim.clone()
                    },
                )?;
                Box::pin(sim.run(shutdown, st))
            }
            SourceSpec::Binance => {
                let cfg = ExchangeConfig::from_settings(
                    settings,
                    "binance",
                    &settings.binance,
                    rest::BudgetRule::BINANCE,
                )?;
                sharded(
                    "binance",
                    binance::Binance::new,
                    hub,
                    cfg,
                    binance::SYMBOLS_PER_CONNECTION,
                    st,
                    shutdown,
                )?
            }
            SourceSpec::Okx => {
                let cfg = ExchangeConfig::from_settings(
                    settings,
                    "okx",
                    &settings.okx,
                    rest::BudgetRule::OKX,
                )?;
                sharded(
                    "okx",
                    okx::Okx::new,
                    hub,
                    cfg,
                    okx::BOOKS_PER_CONNECTION,
                    st,
                    shutdown,
                )?
            }
            SourceSpec::Bybit | SourceSpec::Coinbase => {
                let bybit = spec == SourceSpec::Bybit;
                let (venue, endpoint, budget) = if bybit {
                    ("bybit", &settings.bybit, rest::BudgetRule::BYBIT)
                } else {
                    ("coinbase", &settings.coinbase, rest::BudgetRule::COINBASE)
                };
                let mut cfg = ExchangeConfig::from_settings(settings, venue, endpoint, budget)?;
                if bybit {
                    sharded(
                        "bybit",
                        bybit::Bybit::new,
                        hub,
                        cfg,
                        bybit::SYMBOLS_PER_CONNECTION,
                        st,
                        shutdown,
                    )?
                } else {
                    coinbase::map_products(&mut cfg.instruments);
                    sharded(
                        "coinbase",
                        coinbase::Coinbase::new,
                        hub,
                        cfg,
                        coinbase::BOOKS_PER_CONNECTION,
                        st,
                        shutdown,
                    )?
                }
            }
            SourceSpec::Kraken => {
                let cfg = ExchangeConfig::from_settings(
                    settings,
                    "kraken",
                    &settings.kraken,
                    rest::BudgetRule::KRAKEN,
                )?;
                sharded(
                    "kraken",
                    kraken::Kraken::new,
                    hub,
                    cfg,
                    kraken::SYMBOLS_PER_CONNECTION,
                    st,
                    shutdown,
                )?
            }
            SourceSpec::TwelveData => {
                let symbols = settings
                    .twelvedata
                    .symbols
                    .as_ref()
                    .unwrap_or(&settings.symbols);
                let key = settings.twelvedata_api_key.clone().unwrap_or_default();
                if key.is_empty() {
                    return Err(StartError::Config(
                        "the twelvedata source needs an API key: --twelvedata-api-key or TICKWIRE_TWELVEDATA_API_KEY".into(),
                    ));
                }
                let endpoint = Endpoint {
                    symbols: Some(Vec::new()),
                    ..settings.twelvedata.clone()
                };
                let mut cfg = ExchangeConfig::from_settings(
                    settings,
                    "twelvedata",
                    &endpoint,
                    rest::BudgetRule::twelvedata(settings.twelvedata_credits_per_minute.max(1)),
                )?;
                cfg.rest = Arc::new(
                    rest::RestClient::new(
                        "twelvedata",
                        &cfg.rest_url,
                        cfg.io_timeout,
                        rest::BudgetRule::twelvedata(settings.twelvedata_credits_per_minute.max(1)),
                    )
                    .with_auth(&format!("apikey {key}")),
                );
                status.attach(hub, "twelvedata")?;
                let td = twelvedata::TwelveData::new(hub.clone(), cfg, key, symbols)?;
                Box::pin(run_exchange(td, st, shutdown))
            }
            SourceSpec::Replay(path) => {
                let replay = Replay::open(
                    hub.clone(),
                    &path,
                    settings.replay_speed,
                    settings.replay_loop,
                    settings.analytics,
                )?;
                Box::pin(replay.run(st, shutdown))
            }
            SourceSpec::None => continue, // filtered out above
        };
        statuses.push(status);
        tasks.push(task);
    }
    tasks.extend(beside);
    let run_all = async move {
        let mut set = tokio::task::JoinSet::new();
        for t in tasks {
            set.spawn(t);
        }
        while set.join_next().await.is_some() {}
    };
    let handle = match settings.run_on {
        SourcesOn::Workers => SourcesHandle::Task(tokio::spawn(run_all)),
        SourcesOn::Thread => SourcesHandle::Thread(
            std::thread::Builder::new()
                .name("tickwire-sources".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(run_all),
                        Err(e) => tracing::error!(error = %e, "cannot start the sources' runtime"),
                    }
                })
                .map_err(StartError::Thread)?,
        ),
    };
    Ok(Running { statuses, handle })
}
