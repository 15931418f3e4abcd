//! Binance public streams: trades, 24 h tickers and diff depth, with the
//! local order book kept by Binance's documented procedure.
//!
//! Book procedure (Spot API docs, "How to manage a local order book
//! correctly", as corrected on 2025-11-12): open the stream and buffer its
//! diffs; once the first diff of a symbol arrived, fetch a REST depth
//! snapshot; if its `lastUpdateId` is older than the first buffered `U`,
//! fetch again; then apply every buffered and later diff by one rule: a
//! diff with `u <= local` is ignored, one with `U > local + 1` is a gap,
//! any other (including one that straddles `local + 1` whenever it comes)
//! is applied. A gap rebuilds the book from a new snapshot, and subscribers
//! get it as a fresh `book_snapshot` in the same channel sequence.
//!
//! REST goes through the venue's [`RestClient`](super::rest::RestClient):
//! a 429 / 418 waits out `Retry-After`, other 4xx (400 -1121, invalid
//! symbol) mark the instrument failed and are never retried.
//! `serverShutdown` and `--rotate-after` (Binance cuts connections at 24 h)
//! replace the connection make-before-break (see [`legs`](super::legs)).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::activity::Activity;
use super::legs::{self, Leg, Legs, Overlap};
use super::local_book::TopView;
use super::rest::{MarketBackoff, RestError};
use super::{
    Exchange, ExchangeConfig, MarketChannels, Pair, SessionFuture, SourceError, SourceStatus,
    TickerParser, net,
};
use crate::feed::Channel;
use crate::feed::Hub;
use crate::protocol::pb::event::Payload;

mod book;
mod msg;
mod trades;

use book::{BookSync, Retry, apply_diff, sync_from_snapshot};
pub(crate) use msg::decode_untrusted;
use msg::{
    Combined, DepthMsg, DepthSnapshot, StreamData, TradeMsg, ms_to_ns, parse_rest_ticker,
    ticker_payload,
};
use trades::{BACKFILL_LIMIT, HistTrade, MAX_PENDING_TRADES, publish_trade};

const VENUE: &str = "binance";
/// Diffs buffered while a snapshot is fetched; beyond this, start over.
const MAX_BUFFERED: usize = 10_000;
/// Depth asked of the REST snapshot.
const SNAPSHOT_LIMIT: u32 = 1000;
/// Weight of a depth snapshot of 1000 levels (Spot API docs, "Order book").
const SNAPSHOT_WEIGHT: u32 = 50;
/// How often per-book staleness is checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Streams per connection: Binance allows 1024; each symbol takes 3.
pub const SYMBOLS_PER_CONNECTION: usize = 1024 / 3;

#[derive(Debug)]
struct Market {
    inst: Pair,
    channels: MarketChannels,
    sync: BookSync,
    view: TopView,
    last_trade: Option<u64>,
    /// While a trade-id gap is fetched over REST: the stream's trades since.
    backfill: Option<Vec<TradeMsg>>,
    last_ticker_ms: i64,
    backoff: MarketBackoff,
    decimals: Option<(u32, u32)>,
    /// A resync is in progress (for the status channel's `book_live`).
    resyncing: bool,
    /// The book's diffs since it went live (per-book staleness).
    activity: Activity,
}

/// What a stream message was, for the rotation's bookkeeping.
enum Handled {
    /// New data, published or buffered.
    Fresh,
    /// Data already had from the other connection.
    Repeat,
    /// `serverShutdown`: reconnect early.
    Shutdown,
    Other,
}

/// A REST answer for market `.0`: a depth snapshot or the trades of a gap.
enum RestReply {
    Depth(usize, Result<DepthSnapshot, RestError>),
    Trades(usize, Result<Vec<HistTrade>, RestError>),
}

/// The Binance source (one connection's symbols).
#[derive(Debug)]
pub struct Binance {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    markets: Vec<Market>,
    by_symbol: HashMap<String, usize>,
}

impl Binance {
    /// Resolves the channels of every configured instrument.
    pub fn new(hub: Arc<Hub>, cfg: ExchangeConfig) -> Result<Self, crate::protocol::ChannelError> {
        let (markets, by_symbol) = super::markets(
            &hub,
            VENUE,
            &cfg,
            Pair::joined,
            |inst, channels, decimals| Market {
                channels,
                decimals,
                inst: inst.clone(),
                sync: BookSync::buffering(),
                view: TopView::default(),
                last_trade: None,
                backfill: None,
                last_ticker_ms: 0,
                backoff: MarketBackoff::new(Duration::from_millis(500), Duration::from_secs(60)),
                resyncing: false,
                activity: Activity::new(),
            },
        )?;
        Ok(Self {
            hub,
            cfg,
            markets,
            by_symbol,
        })
    }

    fn stream_url(&self) -> String {
        let streams: Vec<String> = self
            .markets
            .iter()
            .filter(|m| !matches!(m.sync, BookSync::Failed))
            .map(|m| {
                let s = m.inst.joined().to_ascii_lowercase();
                format!("{s}@trade/{s}@ticker/{s}@depth@100ms")
            })
            .collect();
        format!("{}/stream?streams={}", self.cfg.ws_url, streams.join("/"))
    }

    fn fetch_snapshot(&self, idx: usize, tx: &mpsc::Sender<RestReply>, delay: Duration) {
        let path = format!(
            "/api/v3/depth?symbol={}&limit={SNAPSHOT_LIMIT}",
            self.markets[idx].inst.joined()
        );
        let rest = self.cfg.rest.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let result = rest.get(&path, SNAPSHOT_WEIGHT).await.and_then(|body| {
                serde_json::from_slice::<DepthSnapshot>(&body).map_err(|e| RestError::Decode {
                    venue: VENUE,
                    detail: e.to_string(),
                })
            });
            let _ = tx.send(RestReply::Depth(idx, result)).await;
        });
    }

    /// One connection (and its make-before-break successors): runs until
    /// the stream fails or goes stale.
    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        let ws = net::ws_connect(&self.stream_url(), self.cfg.io_timeout).await?;
        status.connected();
        tracing::info!(source = "binance", "stream connected");
        let (tx, mut rx) = mpsc::channel::<RestReply>(64);
        for m in &mut self.markets {
            if !matches!(m.sync, BookSync::Failed) {
                m.sync = BookSync::buffering();
            }
        }
        let mut legs = Legs::new(ws, self.cfg.rotate_after);
        let mut overlap = Overlap::default();
        let stale = self.cfg.stale_after;
        let mut last_data = Instant::now();
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            let (rotate_at, switch_at) = (legs.rotation_due(), legs.switch_deadline());
            let mut rotate: Option<String> = None;
            tokio::select! {
                (leg, msg) = legs.recv() => {
                    let Some(text) = legs.text(leg, msg).await? else {
                        continue;
                    };
                    last_data = Instant::now();
                    status.messages(1);
                    match self.on_text(text.as_str(), &tx, status, legs.rotating()) {
                        Ok(Handled::Shutdown) => {
                            if leg == Leg::Current {
                                rotate = Some("binance serverShutdown".into());
                            }
                        }
                        Ok(Handled::Fresh) => overlap.data(leg),
                        Ok(Handled::Repeat) => overlap.repeat(leg),
                        Ok(Handled::Other) => {}
                        Err(e) => super::skipped("binance", status, &e),
                    }
                },
                _ = legs::until(rotate_at) => {
                    rotate = Some(format!("connection is {:?} old", self.cfg.rotate_after));
                }
                _ = legs::until(switch_at) => {
                    legs.switch().await;
                }
                Some(reply) = rx.recv() => match reply {
                    RestReply::Depth(idx, result) => self.on_snapshot(idx, result, &tx, status),
                    RestReply::Trades(idx, result) => self.on_backfill(idx, result, status)?,
                },
                _ = check.tick() => self.check_books(&tx, status),
                _ = tokio::time::sleep_until((last_data + stale).into()) => {
                    status.stale(None, &format!("binance: no data for {stale:?}"));
                    return Err(SourceError::Stale(stale));
                }
            }
            if let Some(why) = rotate
                && !legs.rotating()
            {
                legs::announce("binance", status, &why);
                let opened = net::ws_connect(&self.stream_url(), self.cfg.io_timeout).await;
                // Binance subscribes at connect: no request to wait for
                let opened = opened.map(|ws| (ws, HashSet::new())).map_err(Into::into);
                if let Some(ids) = legs.start_opened("binance", opened) {
                    overlap.start(ids);
                }
            }
            // the new leg streams and the old one has delivered everything
            // before the new one's start
            if legs.rotating() && overlap.ready() {
                legs.switch_logged("binance").await;
            }
        }
    }

    /// Per-book staleness: a busy book silent for `--stale-after` while
    /// the connection carries other data is rebuilt from a new snapshot.
    fn check_books(&mut self, tx: &mpsc::Sender<RestReply>, status: &SourceStatus) {
        let stale = self.cfg.stale_after;
        for idx in 0..self.markets.len() {
            let m = &mut self.markets[idx];
            if !matches!(m.sync, BookSync::Live { .. }) || !m.activity.stale(stale) {
                continue;
            }
            let inst = m.inst.dashed();
            let why = format!("binance {inst}: book silent for {stale:?}, resyncing");
            tracing::warn!("{why}");
            status.stale(Some(&inst), &why);
            status.resyncing(&inst, &why);
            m.resyncing = true;
            m.sync = BookSync::Buffering {
                diffs: Vec::new(),
                fetching: true,
            };
            self.fetch_snapshot(idx, tx, Duration::ZERO);
        }
    }

    /// Handles one message.
    fn on_text(
        &mut self,
        text: &str,
        tx: &mpsc::Sender<RestReply>,
        status: &SourceStatus,
        rotating: bool,
    ) -> Result<Handled, SourceError> {
        let msg: Combined = match serde_json::from_str(text) {
            Ok(m) => m,
            // the notice may also come unwrapped ({"e":"serverShutdown"}
            // or {"event":{"e":"serverShutdown"}})
            Err(_) if text.contains("\"serverShutdown\"") => return Ok(Handled::Shutdown),
            Err(e) => {
                return Err(SourceError::Decode {
                    what: "stream message",
                    detail: e.to_string(),
                });
            }
        };
        match msg.data {
            StreamData::Trade(t) => {
                let Some(&idx) = self.by_symbol.get(&t.s) else {
                    return Ok(Handled::Other);
                };
                let m = &mut self.markets[idx];
                if m.last_trade.is_some_and(|last| t.t <= last) {
                    return Ok(Handled::Repeat); // already published (overlapping connections)
                }
                if let Some(pending) = &mut m.backfill {
                    // a gap is being fetched: keep order, publish after it
                    if pending.last().is_some_and(|p| t.t <= p.t) {
                        return Ok(Handled::Repeat);
                    }
                    if pending.len() < MAX_PENDING_TRADES {
                        pending.push(t);
                        return Ok(Handled::Fresh);
                    }
                    let pending = m.backfill.take().unwrap_or_default();
                    for p in pending {
                        publish_trade(&self.hub, m, &p, status)?;
                    }
                }
                match m.last_trade {
                    Some(last) if t.t > last + 1 => {
                        let missing = t.t - last - 1;
                        m.backfill = Some(vec![t]);
                        self.fetch_trades(idx, tx, last + 1, missing.min(BACKFILL_LIMIT));
                    }
                    _ => publish_trade(&self.hub, m, &t, status)?,
                }
            }
            StreamData::Ticker(t) => {
                let Some(&idx) = self.by_symbol.get(&t.s) else {
                    return Ok(Handled::Other);
                };
                let m = &mut self.markets[idx];
                if rotating && t.time <= m.last_ticker_ms {
                    return Ok(Handled::Repeat); // the same ticker from the other connection
                }
                m.last_ticker_ms = t.time;
                let ticker = ticker_payload(&t)?;
                self.hub.publish_or_log(
                    &m.channels.ticker,
                    ms_to_ns(t.time),
                    Payload::Ticker(ticker),
                );
            }
            StreamData::Depth(d) => {
                let Some(&idx) = self.by_symbol.get(&d.s) else {
                    return Ok(Handled::Other);
                };
                return self.on_depth(idx, d, tx, status);
            }
            StreamData::Shutdown => return Ok(Handled::Shutdown),
            StreamData::Other => return Ok(Handled::Other),
        }
        Ok(Handled::Fresh)
    }

    fn on_depth(
        &mut self,
        idx: usize,
        d: DepthMsg,
        tx: &mpsc::Sender<RestReply>,
        status: &SourceStatus,
    ) -> Result<Handled, SourceError> {
        let depth = self.cfg.book_depth;
        let market = &mut self.markets[idx];
        match &mut market.sync {
            BookSync::Failed => Ok(Handled::Other),
            BookSync::Buffering { diffs, fetching } => {
                if diffs.len() >= MAX_BUFFERED {
                    diffs.clear();
                }
                diffs.push(d);
                // step 3 only once a diff is buffered: the snapshot is then
                // newer than the first buffered U far more often
                if !*fetching {
                    *fetching = true;
                    self.fetch_snapshot(idx, tx, Duration::ZERO);
                }
                Ok(Handled::Fresh)
            }
            BookSync::Live { book, last_u } => {
                market.activity.message();
                match apply_diff(book, last_u, &d) {
                    Ok(false) => return Ok(Handled::Repeat),
                    Ok(true) => {}
                    Err(why) => {
                        let why = format!("binance {}: {why}, resyncing", market.inst.joined());
                        tracing::warn!("{why}");
                        status.resyncing(&market.inst.dashed(), &why);
                        market.resyncing = true;
                        market.sync = BookSync::Buffering {
                            diffs: vec![d],
                            fetching: true,
                        };
                        self.fetch_snapshot(idx, tx, Duration::ZERO);
                        return Ok(Handled::Fresh);
                    }
                }
                if let Some(update) = market.view.advance(book, depth) {
                    self.hub.publish_or_log(
                        &market.channels.book,
                        ms_to_ns(d.time),
                        Payload::BookUpdate(update),
                    );
                }
                Ok(Handled::Fresh)
            }
        }
    }

    fn on_snapshot(
        &mut self,
        idx: usize,
        result: Result<DepthSnapshot, RestError>,
        tx: &mpsc::Sender<RestReply>,
        status: &SourceStatus,
    ) {
        let market = &mut self.markets[idx];
        let snap = match result {
            Ok(s) => s,
            Err(e) => {
                match market.backoff.next(&e) {
                    Some(delay) => {
                        tracing::warn!(source = "binance", error = %e, delay_ms = delay.as_millis() as u64, "depth snapshot failed; retrying");
                        status.set_error(&e.to_string());
                        self.fetch_snapshot(idx, tx, delay);
                    }
                    None => {
                        // a 4xx other than 429/418: asking again cannot help
                        let inst = market.inst.dashed();
                        let why = format!("binance {inst}: {e}; instrument skipped");
                        tracing::error!("{why}");
                        market.sync = BookSync::Failed;
                        status.instrument_failed(&inst, &why);
                    }
                }
                return;
            }
        };
        match sync_from_snapshot(market, snap, self.cfg.book_depth, &self.hub) {
            Ok(()) => {
                market.backoff.reset();
                if std::mem::take(&mut market.resyncing) {
                    status.book_live(&market.inst.dashed());
                }
            }
            // every refetch waits its turn in the market's backoff: a venue
            // that keeps answering the same way is not hammered
            Err(retry) => {
                let delay = market
                    .backoff
                    .next(&RestError::Server {
                        venue: VENUE,
                        status: 200,
                    })
                    .unwrap_or_default();
                match retry {
                    Retry::Now => {}
                    Retry::Resync(why) => {
                        status.resyncing(&market.inst.dashed(), &why);
                        market.resyncing = true;
                    }
                    Retry::Later(why) => status.set_error(&why),
                }
                self.fetch_snapshot(idx, tx, delay);
            }
        }
    }
}

impl Exchange for Binance {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let markets = self.markets.iter().map(|m| (&m.inst, &m.channels));
        let path = |i: &Pair| format!("/api/v3/ticker/24hr?symbol={}", i.joined());
        (super::ticker_polls(markets, path), parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}
