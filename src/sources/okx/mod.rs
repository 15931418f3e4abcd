//! OKX public streams: `tickers`, `trades` and `books` via the `subscribe`
//! op, one request per instrument carrying an `id`, so that an error (e.g.
//! 60018, unknown instrument) marks only that instrument failed and the
//! session carries on. Books follow `seqId`/`prevSeqId` (see
//! [`sync`]); a book without a WebSocket snapshot
//! `--snapshot-timeout` after subscribing, or one that broke, is rebuilt
//! from the REST snapshot, and subscribers get it as a `book_snapshot` in
//! the same channel sequence. Notice 64008 (service upgrade) and the
//! `--rotate-after` interval replace the connection make-before-break.
//!
//! `trades` aggregates fills: tickwire carries OKX's `count` on the trade
//! (`Trade.count`) rather than subscribing `trades-all`, which is only on
//! the business endpoint.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::activity::Activity;
use super::legs::{self, Leg, Legs, Overlap};
use super::local_book::TopView;
mod books;
mod msg;
pub mod sync;

use super::rest::{MarketBackoff, RestError};
use super::{
    Exchange, ExchangeConfig, MarketChannels, Pair, SessionFuture, SourceError, SourceStatus,
    TickerParser, net, num,
};
use crate::feed::Channel;
use crate::feed::Hub;
use crate::protocol::pb::{Side as TradeSide, Trade, event::Payload};
pub(crate) use msg::decode_untrusted;
use msg::{Envelope, OkxTicker, OkxTrade, decode, op, parse_rest_ticker, ticker_payload, ts_ns};
use sync::{BookSync, OkxBook, Step};

const VENUE: &str = "okx";
/// OKX closes connections silent for 30 s; a text `ping` keeps it open.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Book channels per connection: OKX asks for fewer than 30.
pub const BOOKS_PER_CONNECTION: usize = 29;
/// How often snapshot timeouts and per-book staleness are checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Levels asked of the REST snapshot (the `books` channel's depth).
const REST_DEPTH: u32 = 400;
/// OKX notice code: the connection will soon be closed for a service upgrade.
const SERVICE_UPGRADE: &str = "64008";

#[derive(Debug)]
struct Market {
    inst: Pair,
    channels: MarketChannels,
    sync: BookSync,
    view: TopView,
    /// The venue refused it (e.g. 60018): not subscribed again.
    failed: bool,
    last_trade: Option<u64>,
    last_ticker_ns: i64,
    /// REST snapshot retries.
    backoff: MarketBackoff,
    /// Answers to older REST requests are ignored.
    generation: u64,
    decimals: Option<(u32, u32)>,
    /// The book's messages since it went live (per-book staleness).
    activity: Activity,
}

/// A REST snapshot for market `.0`, request generation `.1`.
type SnapshotResult = (usize, u64, Result<OkxBook, RestError>);

/// What a text message was.
enum Handled {
    /// New market data.
    Data,
    /// Market data already had from the other connection.
    Repeat,
    Ack(String),
    Notice(String),
    Other,
}

/// The OKX source (one connection's instruments).
#[derive(Debug)]
pub struct Okx {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    markets: Vec<Market>,
    by_inst: HashMap<String, usize>,
    next_id: u64,
    /// Subscribe request id -> market.
    requests: HashMap<String, usize>,
    snap_tx: mpsc::Sender<SnapshotResult>,
    snap_rx: mpsc::Receiver<SnapshotResult>,
}

impl Okx {
    /// Resolves the channels of every configured instrument.
    pub fn new(hub: Arc<Hub>, cfg: ExchangeConfig) -> Result<Self, crate::protocol::ChannelError> {
        let (markets, by_inst) = super::markets(
            &hub,
            VENUE,
            &cfg,
            Pair::dashed,
            |inst, channels, decimals| Market {
                channels,
                decimals,
                inst: inst.clone(),
                sync: BookSync::awaiting(false),
                view: TopView::default(),
                failed: false,
                last_trade: None,
                last_ticker_ns: 0,
                backoff: MarketBackoff::new(Duration::from_millis(500), Duration::from_secs(30)),
                generation: 0,
                activity: Activity::new(),
            },
        )?;
        let (snap_tx, snap_rx) = mpsc::channel(64);
        Ok(Self {
            hub,
            cfg,
            markets,
            by_inst,
            next_id: 0,
            requests: HashMap::new(),
            snap_tx,
            snap_rx,
        })
    }

    /// Opens a connection and subscribes every instrument not refused,
    /// one request (with its `id`) per instrument; returns the ids.
    async fn open_leg(&mut self) -> Result<(net::Ws, HashSet<String>), SourceError> {
        use futures_util::SinkExt;
        let mut ws = net::ws_connect(&self.cfg.ws_url, self.cfg.io_timeout).await?;
        let mut ids = HashSet::new();
        for idx in 0..self.markets.len() {
            if self.markets[idx].failed {
                continue;
            }
            self.next_id += 1;
            let id = self.next_id.to_string();
            let inst = self.markets[idx].inst.dashed();
            let args = [
                ("tickers", inst.as_str()),
                ("trades", inst.as_str()),
                ("books", inst.as_str()),
            ];
            ws.send(op("subscribe", Some(&id), &args))
                .await
                .map_err(net::NetError::from)?;
            self.requests.insert(id.clone(), idx);
            ids.insert(id);
        }
        Ok((ws, ids))
    }

    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        self.requests.clear();
        let (ws, _) = self.open_leg().await?;
        for m in &mut self.markets {
            m.sync = BookSync::awaiting(false);
            m.generation += 1;
        }
        status.connected();
        tracing::info!(source = "okx", "stream connected");
        let mut legs = Legs::new(ws, self.cfg.rotate_after);
        let mut overlap = Overlap::default();
        let stale = self.cfg.stale_after;
        let mut last_data = Instant::now();
        let mut last_any = Instant::now();
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            let keepalive_at = last_any + KEEPALIVE.min(stale);
            let (rotate_at, switch_at) = (legs.rotation_due(), legs.switch_deadline());
            let mut rotate: Option<String> = None;
            tokio::select! {
                (leg, msg) = legs.recv() => {
                    last_any = Instant::now();
                    let Some(text) = legs.text(leg, msg).await? else {
                        continue;
                    };
                    if text.as_str() == "pong" {
                        continue;
                    }
                    match self.on_text(text.as_str(), &mut legs, status).await {
                        Ok(Handled::Data) => {
                            last_data = Instant::now();
                            status.messages(1);
                            overlap.data(leg);
                        }
                        Ok(Handled::Repeat) => {
                            last_data = Instant::now();
                            status.messages(1);
                            overlap.repeat(leg);
                        }
                        Ok(Handled::Ack(id)) => overlap.ack(leg, &id),
                        Ok(Handled::Notice(why)) => {
                            if leg == Leg::Current {
                                rotate = Some(why);
                            }
                        }
                        Ok(Handled::Other) => {}
                        Err(e) => super::skipped("okx", status, &e),
                    }
                }
                _ = legs::until(rotate_at) => {
                    rotate = Some(format!("connection is {:?} old", self.cfg.rotate_after));
                }
                _ = legs::until(switch_at) => {
                    tracing::warn!(source = "okx", "new connection not ready in time; switching anyway");
                    legs.switch().await;
                }
                Some((idx, generation, result)) = self.snap_rx.recv() => {
                    self.on_rest_snapshot(idx, generation, result, &mut legs, status).await?;
                }
                _ = check.tick() => self.check_books(status),
                _ = tokio::time::sleep_until(keepalive_at.into()) => {
                    last_any = Instant::now();
                    legs.send(Leg::Current, Message::text("ping")).await.map_err(net::NetError::from)?;
                }
                _ = tokio::time::sleep_until((last_data + stale).into()) => {
                    status.stale(None, &format!("okx: no data for {stale:?}"));
                    return Err(SourceError::Stale(stale));
                }
            }
            if let Some(why) = rotate
                && !legs.rotating()
            {
                legs::announce("okx", status, &why);
                if let Some(ids) = legs.start_opened("okx", self.open_leg().await) {
                    overlap.start(ids);
                }
            }
            if legs.rotating() && overlap.ready() {
                legs.switch_logged("okx").await;
            }
        }
    }

    /// Handles one text message.
    async fn on_text(
        &mut self,
        text: &str,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<Handled, SourceError> {
        let env: Envelope = serde_json::from_str(text).map_err(|e| SourceError::Decode {
            what: "OKX message",
            detail: e.to_string(),
        })?;
        if let Some(event) = env.event.as_deref() {
            let code = env.code.unwrap_or_default();
            let msg = env.msg.unwrap_or_default();
            return Ok(match event {
                "error" => {
                    let market = env
                        .id
                        .as_ref()
                        .and_then(|id| self.requests.get(id))
                        .copied();
                    let why = format!("okx error {code}: {msg}");
                    if let Some(idx) = market {
                        self.markets[idx].failed = true;
                    }
                    let inst = market.map(|idx| &self.markets[idx].inst);
                    super::refused("okx", status, inst, &why);
                    // an answered request, for the rotation's bookkeeping
                    env.id.map_or(Handled::Other, Handled::Ack)
                }
                "notice" if code == SERVICE_UPGRADE => {
                    Handled::Notice(format!("okx notice {code}: {msg}"))
                }
                "subscribe" => env.id.map_or(Handled::Other, Handled::Ack),
                _ => Handled::Other,
            });
        }
        let (Some(arg), Some(data)) = (env.arg, env.data) else {
            return Ok(Handled::Other);
        };
        let Some(&idx) = self.by_inst.get(&arg.inst_id) else {
            return Ok(Handled::Other);
        };
        let rotating = legs.rotating();
        let (mut fresh, mut repeat) = (false, false);
        match arg.channel.as_str() {
            "tickers" => {
                for t in decode::<Vec<OkxTicker>>(data, "ticker")? {
                    let time = ts_ns(&t.ts);
                    let m = &mut self.markets[idx];
                    // two connections overlap: the same ticker comes twice
                    if rotating && time <= m.last_ticker_ns {
                        repeat = true;
                        continue;
                    }
                    fresh = true;
                    m.last_ticker_ns = time;
                    let ticker = ticker_payload(&t)?;
                    self.hub
                        .publish_or_log(&m.channels.ticker, time, Payload::Ticker(ticker));
                }
            }
            "trades" => {
                for t in decode::<Vec<OkxTrade>>(data, "trade")? {
                    let m = &mut self.markets[idx];
                    if let Ok(id) = t.trade_id.parse::<u64>() {
                        if m.last_trade.is_some_and(|last| id <= last) {
                            repeat = true;
                            continue; // already published (overlapping connections)
                        }
                        m.last_trade = Some(id);
                    }
                    fresh = true;
                    let side = match t.side.as_str() {
                        "buy" => TradeSide::Buy,
                        "sell" => TradeSide::Sell,
                        _ => TradeSide::Unspecified,
                    };
                    let trade = Trade {
                        price: num(&t.px, "trade")?,
                        quantity: num(&t.sz, "trade")?,
                        side: side as i32,
                        trade_id: t.trade_id,
                        count: t.count.and_then(|c| c.parse().ok()).unwrap_or(0),
                    };
                    self.hub
                        .publish_or_log(&m.channels.trade, ts_ns(&t.ts), Payload::Trade(trade));
                }
            }
            "books" => {
                let snapshot = env.action.as_deref() == Some("snapshot");
                for b in decode::<Vec<OkxBook>>(data, "book")? {
                    let result = if snapshot {
                        self.on_ws_snapshot(idx, b, status)
                    } else {
                        self.on_update(idx, &b)
                    };
                    match result {
                        Ok(Step::Repeat) => repeat = true,
                        Ok(_) => fresh = true,
                        Err(why) => {
                            fresh = true;
                            self.resync(idx, &why, status);
                            break;
                        }
                    }
                }
            }
            _ => return Ok(Handled::Other),
        }
        Ok(if repeat && !fresh {
            Handled::Repeat
        } else {
            Handled::Data
        })
    }
}

impl Exchange for Okx {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let markets = self.markets.iter().map(|m| (&m.inst, &m.channels));
        let path = |i: &Pair| format!("/api/v5/market/ticker?instId={}", i.dashed());
        (super::ticker_polls(markets, path), parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}
