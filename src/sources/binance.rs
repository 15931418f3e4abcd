//! Binance public streams: trades, 24 h tickers and diff depth, with the
//! local order book kept by Binance's documented procedure.
//!
//! Book procedure ("How to manage a local order book correctly"): open the
//! stream and buffer its diffs; fetch a REST depth snapshot; if the
//! snapshot's `lastUpdateId` is older than the first buffered `U`, fetch
//! again; drop buffered diffs with `u <= lastUpdateId`; the first diff left
//! must straddle `lastUpdateId + 1`; from then on every diff's `U` must be
//! the previous `u + 1`. Any gap rebuilds the book from a new snapshot, and
//! subscribers get that snapshot as a fresh `book_snapshot` event in the
//! same channel sequence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::local_book::{LocalBook, Side, TopView};
use super::{
    Exchange, ExchangeConfig, Instrument, MarketChannels, SessionFuture, SourceError, SourceStatus,
    TickerParser, net, num, publish, run_exchange,
};
use crate::feed::Channel;
use crate::feed::Hub;
use crate::protocol::pb::{Side as TradeSide, Ticker, Trade, event::Payload};

const VENUE: &str = "binance";
/// Diffs buffered while a snapshot is fetched; beyond this, start over.
const MAX_BUFFERED: usize = 10_000;
/// Depth asked of the REST snapshot.
const SNAPSHOT_LIMIT: u32 = 1000;

fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

#[derive(Debug, Deserialize)]
struct Combined {
    data: StreamData,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "e")]
enum StreamData {
    #[serde(rename = "trade")]
    Trade(TradeMsg),
    #[serde(rename = "24hrTicker")]
    Ticker(TickerMsg),
    #[serde(rename = "depthUpdate")]
    Depth(DepthMsg),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct TradeMsg {
    s: String,
    t: u64,
    p: String,
    q: String,
    #[serde(rename = "T")]
    time: i64,
    /// The buyer was the maker: the taker sold.
    m: bool,
}

#[derive(Debug, Deserialize)]
struct TickerMsg {
    #[serde(rename = "E")]
    time: i64,
    s: String,
    #[serde(rename = "P")]
    change_pct: String,
    c: String,
    b: String,
    #[serde(rename = "B")]
    bid_size: String,
    a: String,
    #[serde(rename = "A")]
    ask_size: String,
    o: String,
    h: String,
    l: String,
    v: String,
    q: String,
}

#[derive(Debug, Clone, Deserialize)]
struct DepthMsg {
    #[serde(rename = "E")]
    time: i64,
    s: String,
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    b: Vec<Vec<String>>,
    a: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct DepthSnapshot {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    bids: Vec<Vec<String>>,
    asks: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestTicker {
    last_price: String,
    bid_price: String,
    bid_qty: String,
    ask_price: String,
    ask_qty: String,
    open_price: String,
    high_price: String,
    low_price: String,
    price_change_percent: String,
    volume: String,
    quote_volume: String,
    close_time: i64,
}

fn ticker_payload(t: &TickerMsg) -> Result<Ticker, SourceError> {
    Ok(Ticker {
        last: num(&t.c, "ticker")?,
        bid: num(&t.b, "ticker")?,
        bid_size: num(&t.bid_size, "ticker")?,
        ask: num(&t.a, "ticker")?,
        ask_size: num(&t.ask_size, "ticker")?,
        open_24h: num(&t.o, "ticker")?,
        high_24h: num(&t.h, "ticker")?,
        low_24h: num(&t.l, "ticker")?,
        change_pct_24h: num(&t.change_pct, "ticker")?,
        volume_24h: num(&t.v, "ticker")?,
        quote_volume_24h: num(&t.q, "ticker")?,
    })
}

fn rest_ticker_payload(t: &RestTicker) -> Result<Ticker, SourceError> {
    Ok(Ticker {
        last: num(&t.last_price, "REST ticker")?,
        bid: num(&t.bid_price, "REST ticker")?,
        bid_size: num(&t.bid_qty, "REST ticker")?,
        ask: num(&t.ask_price, "REST ticker")?,
        ask_size: num(&t.ask_qty, "REST ticker")?,
        open_24h: num(&t.open_price, "REST ticker")?,
        high_24h: num(&t.high_price, "REST ticker")?,
        low_24h: num(&t.low_price, "REST ticker")?,
        change_pct_24h: num(&t.price_change_percent, "REST ticker")?,
        volume_24h: num(&t.volume, "REST ticker")?,
        quote_volume_24h: num(&t.quote_volume, "REST ticker")?,
    })
}

/// Where one instrument's book is in the procedure.
#[derive(Debug)]
enum BookSync {
    /// Waiting for a REST snapshot; diffs are kept meanwhile.
    Buffering(Vec<DepthMsg>),
    /// In step with the stream; `last_u` is the last applied diff's `u`.
    Live { book: LocalBook, last_u: u64 },
}

#[derive(Debug)]
struct Market {
    inst: Instrument,
    channels: MarketChannels,
    sync: BookSync,
    view: TopView,
}

/// A REST depth snapshot for market `.0`, or why it failed.
type SnapshotResult = (usize, Result<DepthSnapshot, SourceError>);

/// The Binance source.
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
        let mut markets = Vec::new();
        let mut by_symbol = HashMap::new();
        for inst in &cfg.instruments {
            by_symbol.insert(inst.joined(), markets.len());
            markets.push(Market {
                channels: MarketChannels::resolve(&hub, VENUE, inst)?,
                inst: inst.clone(),
                sync: BookSync::Buffering(Vec::new()),
                view: TopView::default(),
            });
        }
        Ok(Self {
            hub,
            cfg,
            markets,
            by_symbol,
        })
    }

    /// Streams until shutdown, reconnecting with backoff; polls tickers
    /// over REST while the stream is down (see [`run_exchange`]).
    pub async fn run(self, status: Arc<SourceStatus>, shutdown: CancellationToken) {
        run_exchange(self, status, shutdown).await
    }

    fn stream_url(&self) -> String {
        let streams: Vec<String> = self
            .markets
            .iter()
            .map(|m| {
                let s = m.inst.joined().to_ascii_lowercase();
                format!("{s}@trade/{s}@ticker/{s}@depth@100ms")
            })
            .collect();
        format!("{}/stream?streams={}", self.cfg.ws_url, streams.join("/"))
    }

    fn fetch_snapshot(&self, idx: usize, tx: &mpsc::Sender<SnapshotResult>, delay: Duration) {
        let url = format!(
            "{}/api/v3/depth?symbol={}&limit={SNAPSHOT_LIMIT}",
            self.cfg.rest_url,
            self.markets[idx].inst.joined()
        );
        let timeout = self.cfg.io_timeout;
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let result = match net::get(&url, timeout).await {
                Ok(body) => serde_json::from_slice::<DepthSnapshot>(&body).map_err(|e| {
                    SourceError::Decode {
                        what: "depth snapshot",
                        detail: e.to_string(),
                    }
                }),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send((idx, result)).await;
        });
    }

    /// One connection: runs until the stream fails or goes stale.
    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        let mut ws = net::ws_connect(&self.stream_url(), self.cfg.io_timeout).await?;
        status.connected();
        tracing::info!(source = "binance", "stream connected");
        let (tx, mut rx) = mpsc::channel::<SnapshotResult>(64);
        for idx in 0..self.markets.len() {
            self.markets[idx].sync = BookSync::Buffering(Vec::new());
            self.fetch_snapshot(idx, &tx, Duration::ZERO);
        }
        let stale = self.cfg.stale_after;
        let mut last_data = Instant::now();
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    None => return Err(SourceError::Closed),
                    Some(Err(e)) => return Err(net::NetError::from(e).into()),
                    Some(Ok(Message::Text(text))) => {
                        last_data = Instant::now();
                        status.messages(1);
                        if let Err(e) = self.on_text(text.as_str(), &tx, status) {
                            tracing::warn!(source = "binance", error = %e, "message skipped");
                            status.set_error(&e.to_string());
                        }
                    }
                    Some(Ok(Message::Close(_))) => return Err(SourceError::Closed),
                    Some(Ok(_)) => {} // pings are answered by tungstenite
                },
                Some((idx, result)) = rx.recv() => self.on_snapshot(idx, result, &tx, status),
                _ = tokio::time::sleep_until((last_data + stale).into()) => {
                    return Err(SourceError::Stale(stale));
                }
            }
        }
    }

    fn on_text(
        &mut self,
        text: &str,
        tx: &mpsc::Sender<SnapshotResult>,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let msg: Combined = serde_json::from_str(text).map_err(|e| SourceError::Decode {
            what: "stream message",
            detail: e.to_string(),
        })?;
        match msg.data {
            StreamData::Trade(t) => {
                let Some(&idx) = self.by_symbol.get(&t.s) else {
                    return Ok(());
                };
                let trade = Trade {
                    price: num(&t.p, "trade")?,
                    quantity: num(&t.q, "trade")?,
                    side: if t.m { TradeSide::Sell } else { TradeSide::Buy } as i32,
                    trade_id: t.t.to_string(),
                };
                let ch = &self.markets[idx].channels.trade;
                publish(&self.hub, ch, ms_to_ns(t.time), Payload::Trade(trade));
            }
            StreamData::Ticker(t) => {
                let Some(&idx) = self.by_symbol.get(&t.s) else {
                    return Ok(());
                };
                let ticker = ticker_payload(&t)?;
                let ch = &self.markets[idx].channels.ticker;
                publish(&self.hub, ch, ms_to_ns(t.time), Payload::Ticker(ticker));
            }
            StreamData::Depth(d) => {
                let Some(&idx) = self.by_symbol.get(&d.s) else {
                    return Ok(());
                };
                self.on_depth(idx, d, tx, status)?;
            }
            StreamData::Other => {}
        }
        Ok(())
    }

    fn on_depth(
        &mut self,
        idx: usize,
        d: DepthMsg,
        tx: &mpsc::Sender<SnapshotResult>,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let depth = self.cfg.book_depth;
        let market = &mut self.markets[idx];
        match &mut market.sync {
            BookSync::Buffering(diffs) => {
                if diffs.len() >= MAX_BUFFERED {
                    diffs.clear();
                }
                diffs.push(d);
                Ok(())
            }
            BookSync::Live { book, last_u } => {
                if d.last <= *last_u {
                    return Ok(()); // already in the book
                }
                if d.first != *last_u + 1 {
                    let why = format!(
                        "binance {}: diff U={} after u={}: gap, resyncing",
                        market.inst.joined(),
                        d.first,
                        last_u
                    );
                    tracing::warn!("{why}");
                    status.resynced(&why);
                    market.sync = BookSync::Buffering(vec![d]);
                    self.fetch_snapshot(idx, tx, Duration::ZERO);
                    return Ok(());
                }
                book.apply(Side::Bid, &d.b)
                    .and_then(|()| book.apply(Side::Ask, &d.a))
                    .map_err(|e| SourceError::Decode {
                        what: "depth diff",
                        detail: e.to_string(),
                    })?;
                *last_u = d.last;
                if let Some(update) = market.view.advance(book, depth) {
                    publish(
                        &self.hub,
                        &market.channels.book,
                        ms_to_ns(d.time),
                        Payload::BookUpdate(update),
                    );
                }
                Ok(())
            }
        }
    }

    fn on_snapshot(
        &mut self,
        idx: usize,
        result: Result<DepthSnapshot, SourceError>,
        tx: &mpsc::Sender<SnapshotResult>,
        status: &SourceStatus,
    ) {
        let retry = Duration::from_millis(500);
        let snap = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(source = "binance", error = %e, "depth snapshot failed; retrying");
                status.set_error(&e.to_string());
                self.fetch_snapshot(idx, tx, retry);
                return;
            }
        };
        match sync_from_snapshot(&mut self.markets[idx], snap, self.cfg.book_depth, &self.hub) {
            Ok(()) => {}
            Err(Retry::Now) => self.fetch_snapshot(idx, tx, Duration::ZERO),
            Err(Retry::Resync(why)) => {
                status.resynced(&why);
                self.fetch_snapshot(idx, tx, Duration::ZERO);
            }
            Err(Retry::Later(why)) => {
                status.set_error(&why);
                self.fetch_snapshot(idx, tx, retry);
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
        let polls = self
            .markets
            .iter()
            .map(|m| {
                let url = format!(
                    "{}/api/v3/ticker/24hr?symbol={}",
                    self.cfg.rest_url,
                    m.inst.joined()
                );
                (url, m.channels.ticker.clone())
            })
            .collect();
        (polls, parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}

/// Why a snapshot did not bring a book in step.
enum Retry {
    /// The snapshot is older than the buffered stream: fetch another.
    Now,
    /// The buffered diffs do not follow the snapshot.
    Resync(String),
    /// The snapshot could not be read.
    Later(String),
}

/// Steps 4-6 of Binance's procedure: the snapshot plus the buffered diffs
/// that follow it become the live book, published as a `book_snapshot`.
fn sync_from_snapshot(
    market: &mut Market,
    snap: DepthSnapshot,
    depth: usize,
    hub: &Hub,
) -> Result<(), Retry> {
    let BookSync::Buffering(diffs) = &mut market.sync else {
        return Ok(()); // a late answer to a superseded request
    };
    let lid = snap.last_update_id;
    if diffs.first().is_some_and(|d| lid < d.first) {
        return Err(Retry::Now);
    }
    let mut book = LocalBook::from_levels(&snap.bids, &snap.asks)
        .map_err(|e| Retry::Later(format!("depth snapshot: {e}")))?;
    let mut last_u = lid;
    let mut first = true;
    for d in diffs.drain(..).filter(|d| d.last > lid) {
        let continuous = if first {
            d.first <= lid + 1 && lid < d.last
        } else {
            d.first == last_u + 1
        };
        first = false;
        if !continuous
            || book
                .apply(Side::Bid, &d.b)
                .and_then(|()| book.apply(Side::Ask, &d.a))
                .is_err()
        {
            return Err(Retry::Resync(format!(
                "binance {}: buffered diff U={} does not follow {last_u}, refetching",
                market.inst.joined(),
                d.first
            )));
        }
        last_u = d.last;
    }
    let snapshot = book.snapshot(depth);
    market.view = TopView::of(&snapshot);
    publish(
        hub,
        &market.channels.book,
        crate::protocol::now_ns(),
        Payload::BookSnapshot(snapshot),
    );
    market.sync = BookSync::Live { book, last_u };
    Ok(())
}

/// Reads `/api/v3/ticker/24hr?symbol=X`.
fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let t: RestTicker = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: "REST ticker",
        detail: e.to_string(),
    })?;
    Ok(vec![(ms_to_ns(t.close_time), rest_ticker_payload(&t)?)])
}
