//! Sources of events. Each resolves its channels once and publishes into
//! the hub by handle.
//!
//! All sources run on one thread of their own with a small current-thread
//! runtime (see [`start`]), so that publishing is never queued behind
//! thousands of connection tasks. Each has a [`SourceStatus`] that
//! `/health` and `/stats` show.

pub mod activity;
pub mod backoff;
pub mod binance;
pub mod bybit;
pub mod coinbase;
pub mod dedup;
pub mod instruments;
pub mod kraken;
pub mod legs;
pub mod local_book;
pub mod net;
pub mod okx;
pub mod replay;
pub mod rest;
pub mod sim;
pub mod startup;
pub mod status;
pub mod twelvedata;
pub mod twr;
pub mod venue;

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use startup::{
    Endpoint, ExchangeTiming, Running, Settings, SourceSpec, SourcesHandle, SourcesOn, Task, start,
};
pub use status::{SourceState, SourceStatus};
pub use venue::{Exchange, SessionFuture, TickerParser, rest_fallback, run_exchange, run_sharded};
pub(crate) use venue::{markets, sharded, ticker_polls};

use crate::feed::Hub;
use crate::feed::channel::Channel;
use crate::protocol::ChannelError;
use backoff::Backoff;

/// Why a source's session ended (it reconnects after most of them).
#[derive(Debug, Error)]
pub enum SourceError {
    #[error(transparent)]
    Net(#[from] net::NetError),
    #[error("stream closed by the exchange")]
    Closed,
    #[error("no data for {0:?}: stream is stale")]
    Stale(Duration),
    #[error("cannot read {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("exchange refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("replay file: {0}")]
    Replay(#[from] twr::TwrError),
    #[error(transparent)]
    Rest(#[from] rest::RestError),
}

/// Why the sources could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Channel(#[from] ChannelError),
    #[error("bad --symbols entry `{0}`: use BTCUSDT, BTC-USDT or BTC/USDT")]
    Symbol(String),
    #[error("{0}")]
    Replay(#[from] twr::TwrError),
    #[error("cannot start the sources' thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// Quote currencies recognised at the end of a Binance-style symbol.
const QUOTES: &[&str] = &[
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "EUR", "TRY", "BRL", "JPY", "GBP", "BTC",
    "ETH", "BNB", "USD",
];

/// A currency pair as tickwire names an exchange instrument: `BASE-QUOTE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub base: String,
    pub quote: String,
}

impl Pair {
    /// Reads `BTCUSDT`, `BTC-USDT` or `BTC/USDT` (any case). A joined
    /// symbol ends in one of the known quote currencies (longest first, so
    /// `BTCUSDT` is USDT and `BTCUSD` is USD).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_uppercase();
        let ok = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric());
        if let Some((base, quote)) = s.split_once(['-', '/']) {
            return (ok(base) && ok(quote)).then(|| Self {
                base: base.into(),
                quote: quote.into(),
            });
        }
        QUOTES.iter().find_map(|q| {
            let base = s.strip_suffix(q)?;
            ok(base).then(|| Self {
                base: base.into(),
                quote: (*q).into(),
            })
        })
    }

    /// `BTC-USDT`: tickwire's channel token, and OKX's `instId`.
    pub fn dashed(&self) -> String {
        format!("{}-{}", self.base, self.quote)
    }

    /// `BTCUSDT`: Binance's symbol.
    pub fn joined(&self) -> String {
        format!("{}{}", self.base, self.quote)
    }
}

/// The channels of one exchange instrument.
#[derive(Debug, Clone)]
pub struct MarketChannels {
    pub trade: Arc<Channel>,
    pub ticker: Arc<Channel>,
    pub book: Arc<Channel>,
}

impl MarketChannels {
    /// Resolves `trade|ticker|book.<venue>.<BASE-QUOTE>`.
    pub fn resolve(hub: &Hub, venue: &str, inst: &Pair) -> Result<Self, ChannelError> {
        let ch = |stream: &str| hub.channel(&format!("{stream}.{venue}.{}", inst.dashed()));
        if let Some(bbo) = hub.bbo_tap() {
            bbo.declare(hub, &inst.base, &inst.quote)?;
        }
        Ok(Self {
            trade: ch("trade")?,
            ticker: ch("ticker")?,
            book: ch("book")?,
        })
    }
}

/// Settings shared by the exchange connectors.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    pub ws_url: String,
    pub rest_url: String,
    pub instruments: Vec<Pair>,
    pub book_depth: usize,
    pub stale_after: Duration,
    pub rest_fallback_interval: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Connect, handshake and REST timeout.
    pub io_timeout: Duration,
    /// Connections are replaced make-before-break this often.
    pub rotate_after: Duration,
    /// A book without a snapshot this long after subscribing is fetched over REST.
    pub snapshot_timeout: Duration,
    /// The venue's REST client (budget, backoff, connection reuse), shared
    /// by every task of the venue.
    pub rest: Arc<rest::RestClient>,
    /// Price and size decimals of instruments, from the venue's metadata
    /// (by `BASE-QUOTE`); instruments not in it take them from the data.
    pub decimals: std::collections::HashMap<String, (u32, u32)>,
}

impl ExchangeConfig {
    fn from_settings(
        settings: &Settings,
        venue: &'static str,
        endpoint: &Endpoint,
        budget: rest::BudgetRule,
    ) -> Result<Self, StartError> {
        let symbols = endpoint.symbols.as_ref().unwrap_or(&settings.symbols);
        let instruments = symbols
            .iter()
            .map(|s| Pair::parse(s).ok_or_else(|| StartError::Symbol(s.clone())))
            .collect::<Result<_, _>>()?;
        let (ws_url, rest_url) = (&endpoint.ws_url, &endpoint.rest_url);
        let t = &settings.timing;
        let io_timeout = Duration::from_secs(10);
        Ok(Self {
            ws_url: ws_url.trim_end_matches('/').to_string(),
            rest_url: rest_url.trim_end_matches('/').to_string(),
            instruments,
            book_depth: settings.book_depth.max(1),
            stale_after: t.stale_after,
            rest_fallback_interval: t.rest_fallback_interval,
            reconnect_min: t.reconnect_min,
            reconnect_max: t.reconnect_max,
            io_timeout,
            rotate_after: t.rotate_after,
            snapshot_timeout: t.snapshot_timeout,
            rest: Arc::new(rest::RestClient::new(venue, rest_url, io_timeout, budget)),
            decimals: Default::default(),
        })
    }

    /// The same settings for a subset of the instruments (one connection's shard).
    pub fn shard(&self, instruments: &[Pair]) -> Self {
        Self {
            instruments: instruments.to_vec(),
            ..self.clone()
        }
    }
}

/// What happens between an exchange's sessions: after each failure the
/// status says `reconnecting` with the attempt count and the backoff delay
/// (exponential, full jitter, capped, reset once a session lasted a minute),
/// and the delay is waited out.
#[derive(Debug)]
pub struct Reconnect {
    backoff: Backoff,
}

impl Reconnect {
    /// Backoff from `cfg`'s reconnect bounds.
    pub fn new(cfg: &ExchangeConfig) -> Self {
        Self {
            backoff: Backoff::new(
                cfg.reconnect_min,
                cfg.reconnect_max,
                Duration::from_secs(60),
            ),
        }
    }

    /// Records that the session begun at `started` failed with `error` and
    /// waits before the next attempt. False when shutdown came first.
    pub async fn after_failure(
        &mut self,
        status: &SourceStatus,
        started: Instant,
        error: SourceError,
        shutdown: &CancellationToken,
    ) -> bool {
        let delay = self.backoff.next_delay(started.elapsed());
        let attempt = self.backoff.attempt();
        tracing::warn!(source = %status.name, error = %error, attempt, delay_ms = delay.as_millis() as u64, "source disconnected; reconnecting");
        status.reconnecting(attempt, delay.as_millis() as u64, &error.to_string());
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

/// Reads an exchange's decimal string as a finite number.
pub(crate) fn num(s: &str, what: &'static str) -> Result<f64, SourceError> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| SourceError::Decode {
            what,
            detail: format!("{s:?} is not a number"),
        })
}

/// A message that could not be read: logged and shown as the source's
/// last error; the session carries on.
pub(crate) fn skipped(venue: &str, status: &SourceStatus, error: &SourceError) {
    tracing::warn!(source = venue, error = %error, "message skipped");
    status.set_error(&error.to_string());
}

/// The venue refused a request: the instrument it names is reported failed
/// (the caller stops subscribing it); a refusal tied to no instrument
/// becomes the source's last error.
pub(crate) fn refused(venue: &str, status: &SourceStatus, inst: Option<&Pair>, why: &str) {
    match inst {
        Some(inst) => {
            tracing::error!(source = venue, instrument = %inst.dashed(), "{why}; instrument skipped");
            status.instrument_failed(&inst.dashed(), why);
        }
        None => {
            tracing::warn!(source = venue, "{why}");
            status.set_error(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruments_are_read_in_both_spellings() {
        let i = Pair::parse("btcusdt").unwrap();
        assert_eq!(
            (i.dashed(), i.joined()),
            ("BTC-USDT".into(), "BTCUSDT".into())
        );
        assert_eq!(Pair::parse("ETH-BTC").unwrap().dashed(), "ETH-BTC");
        assert_eq!(Pair::parse("SOLFDUSD").unwrap().dashed(), "SOL-FDUSD");
        // the shared --symbols spellings of issue 13: BTC-USD, BTCUSD, BTC/USD
        for spelling in ["BTC-USD", "btcusd", "BTC/USD"] {
            assert_eq!(Pair::parse(spelling).unwrap().dashed(), "BTC-USD");
        }
        assert_eq!(Pair::parse("BTCUSDC").unwrap().dashed(), "BTC-USDC");
        for bad in ["USDT", "BTC-", "BTC.USDT", "XYZ", "BTC/"] {
            assert!(Pair::parse(bad).is_none(), "{bad}");
        }
    }
}
