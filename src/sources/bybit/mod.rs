//! Bybit v5 public spot streams: `orderbook.50.<SYMBOL>`,
//! `publicTrade.<SYMBOL>` and `tickers.<SYMBOL>`, one `subscribe` request
//! per symbol (3 args, within Bybit's 10 args per spot request) carrying a
//! `req_id`, so that a refusal marks only that symbol failed and the
//! session carries on. Books follow `u` (see [`book`]); a gap resubscribes
//! the book's topic for a fresh in-band snapshot, which subscribers get as
//! a `book_snapshot` in the same channel sequence. `{"op":"ping"}` goes out
//! every 20 s, as Bybit asks. Connections are replaced make-before-break
//! every `--rotate-after` (see `legs.rs`): both connections feed the same
//! handler, idempotent by `u` per book, trade id and ticker time.
//!
//! Bybit's spot `tickers` push has no best bid and ask: tickwire fills them
//! from the top of its book of the symbol (0 until the book is live).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

pub mod book;
pub mod msg;

use super::activity::Activity;
use super::dedup::RecentIds;
use super::legs::{self, Leg, Legs, Overlap};
use super::local_book::{Side, TopView};
use super::{
    Exchange, ExchangeConfig, MarketChannels, Pair, SessionFuture, SourceError, SourceStatus,
    TickerParser, net, num,
};
use crate::feed::{Channel, Hub};
use crate::protocol::pb::{Side as TradeSide, Trade, event::Payload};
use book::{BookState, Step};
pub(crate) use msg::decode_untrusted;
use msg::{BybitBook, BybitTicker, BybitTrade, Envelope, decode, op, parse_rest_ticker};

const VENUE: &str = "bybit";
/// Bybit asks for `{"op":"ping"}` every 20 s.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Symbols per connection (3 topics each): well within Bybit's limit on
/// the length of a connection's args, and a dropped connection takes only
/// this many books with it.
pub const SYMBOLS_PER_CONNECTION: usize = 50;
/// How often snapshot timeouts and per-book staleness are checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Levels of the book topic (spot: 1, 50, 200, 1000).
const DEPTH: u32 = 50;

#[derive(Debug)]
struct Market {
    inst: Pair,
    channels: MarketChannels,
    state: BookState,
    view: TopView,
    /// The venue refused it: not subscribed again.
    failed: bool,
    trades: RecentIds,
    last_ticker_ns: i64,
    decimals: Option<(u32, u32)>,
    activity: Activity,
}

/// What a text message was.
enum Handled {
    /// New market data.
    Data,
    /// Market data already had (from the other connection).
    Repeat,
    /// The answer to subscribe request `req_id`.
    Ack(String),
    Other,
}

/// The Bybit source (one connection's symbols).
#[derive(Debug)]
pub struct Bybit {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    markets: Vec<Market>,
    by_symbol: HashMap<String, usize>,
    next_id: u64,
    /// Unanswered subscribe `req_id` -> market.
    requests: HashMap<String, usize>,
}

impl Bybit {
    /// Resolves the channels of every configured symbol.
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
                state: BookState::awaiting(),
                view: TopView::default(),
                failed: false,
                trades: RecentIds::default(),
                last_ticker_ns: 0,
                activity: Activity::new(),
            },
        )?;
        Ok(Self {
            hub,
            cfg,
            markets,
            by_symbol,
            next_id: 0,
            requests: HashMap::new(),
        })
    }

    fn request_id(&mut self, idx: usize) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.requests.insert(id.clone(), idx);
        id
    }

    fn book_topic(&self, idx: usize) -> String {
        format!("orderbook.{DEPTH}.{}", self.markets[idx].inst.joined())
    }

    /// Opens a connection and subscribes every symbol not refused, one
    /// request per symbol; returns the request ids.
    async fn open_leg(&mut self) -> Result<(net::Ws, HashSet<String>), SourceError> {
        let mut ws = net::ws_connect(&self.cfg.ws_url, self.cfg.io_timeout).await?;
        let mut ids = HashSet::new();
        for idx in 0..self.markets.len() {
            if self.markets[idx].failed {
                continue;
            }
            let sym = self.markets[idx].inst.joined();
            let args = [
                self.book_topic(idx),
                format!("publicTrade.{sym}"),
                format!("tickers.{sym}"),
            ];
            let id = self.request_id(idx);
            ws.send(op("subscribe", &id, &args))
                .await
                .map_err(net::NetError::from)?;
            ids.insert(id);
        }
        Ok((ws, ids))
    }

    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        self.requests.clear();
        let (ws, _) = self.open_leg().await?;
        for m in &mut self.markets {
            m.state = BookState::awaiting();
        }
        status.connected();
        tracing::info!(source = VENUE, "stream connected");
        let mut legs = Legs::new(ws, self.cfg.rotate_after);
        let mut overlap = Overlap::default();
        let stale = self.cfg.stale_after;
        let mut last_data = Instant::now();
        // every 20 s as Bybit asks, sooner when silence is judged sooner
        let mut ping = tokio::time::interval(PING_EVERY.min(stale / 2).max(CHECK_EVERY));
        ping.tick().await;
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            let (rotate_at, switch_at) = (legs.rotation_due(), legs.switch_deadline());
            let mut rotate = false;
            tokio::select! {
                (leg, msg) = legs.recv() => {
                    let Some(text) = legs.text(leg, msg).await? else {
                        continue;
                    };
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
                        Ok(Handled::Other) => {}
                        Err(SourceError::Net(e)) => return Err(e.into()),
                        Err(e) => super::skipped(VENUE, status, &e),
                    }
                }
                _ = legs::until(rotate_at) => rotate = true,
                _ = legs::until(switch_at) => {
                    tracing::warn!(source = VENUE, "new connection not ready in time; switching anyway");
                    legs.switch().await;
                }
                _ = ping.tick() => {
                    for leg in [Leg::Current, Leg::Next] {
                        legs.send(leg, Message::text(r#"{"req_id":"ping","op":"ping"}"#))
                            .await
                            .map_err(net::NetError::from)?;
                    }
                }
                _ = check.tick() => self.check_books(&mut legs, status).await?,
                _ = tokio::time::sleep_until((last_data + stale).into()) => {
                    status.stale(None, &format!("bybit: no data for {stale:?}"));
                    return Err(SourceError::Stale(stale));
                }
            }
            if rotate && !legs.rotating() {
                let why = format!("connection is {:?} old", self.cfg.rotate_after);
                legs::announce(VENUE, status, &why);
                if let Some(ids) = legs.start_opened(VENUE, self.open_leg().await) {
                    overlap.start(ids);
                }
            }
            if legs.rotating() && overlap.ready() {
                legs.switch_logged(VENUE).await;
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
            what: "Bybit message",
            detail: e.to_string(),
        })?;
        if let Some(op) = env.op.as_deref() {
            // an answered request is forgotten: the map holds only those
            // still unanswered
            let market = match (op, env.req_id.as_ref()) {
                ("subscribe", Some(id)) => self.requests.remove(id),
                _ => None,
            };
            if op == "subscribe" && env.success == Some(false) {
                let why = format!("bybit refused the subscription: {}", env.ret_msg);
                if let Some(idx) = market {
                    self.markets[idx].failed = true;
                }
                let inst = market.map(|idx| &self.markets[idx].inst);
                super::refused(VENUE, status, inst, &why);
            }
            // a refusal answers its request too, for the rotation's bookkeeping
            return Ok(match (op, env.req_id) {
                ("subscribe", Some(id)) => Handled::Ack(id),
                _ => Handled::Other, // pongs
            });
        }
        let (Some(topic), Some(data)) = (env.topic.as_deref(), env.data) else {
            return Ok(Handled::Other);
        };
        let Some((stream, symbol)) = topic.rsplit_once('.') else {
            return Ok(Handled::Other);
        };
        let Some(&idx) = self.by_symbol.get(symbol) else {
            return Ok(Handled::Other);
        };
        let fresh = match stream {
            "publicTrade" => {
                let mut fresh = false;
                for t in decode::<Vec<BybitTrade>>(data, "trade")? {
                    fresh |= self.on_trade(idx, t)?;
                }
                fresh
            }
            "tickers" => {
                let time = env.ts.saturating_mul(1_000_000);
                let m = &mut self.markets[idx];
                // two connections overlap: the same ticker comes twice
                if legs.rotating() && time <= m.last_ticker_ns {
                    return Ok(Handled::Repeat);
                }
                m.last_ticker_ns = time;
                let t: BybitTicker = decode(data, "ticker")?;
                let mut ticker = msg::ticker_payload(&t)?;
                if let Some(book) = m.state.book() {
                    let (bid, ask) = (book.top(Side::Bid, 1), book.top(Side::Ask, 1));
                    if let (Some(b), Some(a)) = (bid.first(), ask.first()) {
                        (ticker.bid, ticker.bid_size) = (b.price, b.quantity);
                        (ticker.ask, ticker.ask_size) = (a.price, a.quantity);
                    }
                }
                self.hub
                    .publish_or_log(&m.channels.ticker, time, Payload::Ticker(ticker));
                true
            }
            s if s == format!("orderbook.{DEPTH}") => {
                let b: BybitBook = decode(data, "book")?;
                let snapshot = env.kind.as_deref() == Some("snapshot");
                let time = env.ts.saturating_mul(1_000_000);
                self.on_book(idx, snapshot, &b, time, legs, status).await?
            }
            _ => return Ok(Handled::Other),
        };
        Ok(if fresh {
            Handled::Data
        } else {
            Handled::Repeat
        })
    }

    /// Publishes a trade not published yet; false for a repeat.
    fn on_trade(&mut self, idx: usize, t: BybitTrade) -> Result<bool, SourceError> {
        let m = &mut self.markets[idx];
        if !m.trades.first(&t.i) {
            return Ok(false); // already published
        }
        let side = match t.side.as_str() {
            "Buy" => TradeSide::Buy,
            "Sell" => TradeSide::Sell,
            _ => TradeSide::Unspecified,
        };
        let trade = Trade {
            price: num(&t.p, "trade")?,
            quantity: num(&t.v, "trade")?,
            side: side as i32,
            trade_id: t.i,
            count: 0,
        };
        let time = t.time_ms.saturating_mul(1_000_000);
        self.hub
            .publish_or_log(&m.channels.trade, time, Payload::Trade(trade));
        Ok(true)
    }

    async fn on_book(
        &mut self,
        idx: usize,
        snapshot: bool,
        b: &BybitBook,
        time_ns: i64,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<bool, SourceError> {
        let depth = self.cfg.book_depth;
        let m = &mut self.markets[idx];
        m.activity.message();
        match m.state.on_message(snapshot, b, m.decimals) {
            Ok(Step::Started) => {
                let Some(book) = m.state.book() else {
                    return Ok(true);
                };
                let snap = book.snapshot(depth);
                m.view = TopView::of(&snap);
                m.activity = Activity::new();
                self.hub
                    .publish_or_log(&m.channels.book, time_ns, Payload::BookSnapshot(snap));
                status.book_live(&m.inst.dashed());
            }
            Ok(Step::Replaced | Step::Applied) => {
                let Some(book) = m.state.book() else {
                    return Ok(true);
                };
                if let Some(update) = m.view.advance(book, depth) {
                    self.hub
                        .publish_or_log(&m.channels.book, time_ns, Payload::BookUpdate(update));
                }
            }
            // a repeat only when live: while awaiting it is the old
            // subscription's tail
            Ok(Step::Skipped) => return Ok(!m.state.is_live()),
            Err(why) => self.resync(idx, &why, legs, status).await?,
        }
        Ok(true)
    }

    /// Resubscribes a book's topic for a fresh snapshot.
    async fn resync(
        &mut self,
        idx: usize,
        why: &str,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let inst = self.markets[idx].inst.dashed();
        let why = format!("bybit {inst}: {why}; resubscribing the book");
        tracing::warn!("{why}");
        status.resyncing(&inst, &why);
        self.markets[idx].state = BookState::awaiting();
        let topic = [self.book_topic(idx)];
        let id = format!("u{}", self.next_id + 1);
        self.next_id += 1;
        legs.send(Leg::Current, op("unsubscribe", &id, &topic))
            .await
            .map_err(net::NetError::from)?;
        let id = self.request_id(idx);
        legs.send(Leg::Current, op("subscribe", &id, &topic))
            .await
            .map_err(net::NetError::from)?;
        Ok(())
    }

    /// Snapshot timeouts and per-book staleness both resubscribe the book.
    async fn check_books(
        &mut self,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let (timeout, stale) = (self.cfg.snapshot_timeout, self.cfg.stale_after);
        for idx in 0..self.markets.len() {
            let m = &self.markets[idx];
            if m.failed {
                continue;
            }
            let why = match &m.state {
                BookState::Awaiting { since } if since.elapsed() >= timeout => {
                    format!("no snapshot {timeout:?} after subscribing")
                }
                BookState::Live { .. } if m.activity.stale(stale) => {
                    status.stale(
                        Some(&m.inst.dashed()),
                        &format!("bybit {}: book silent for {stale:?}", m.inst.dashed()),
                    );
                    "book silent".to_string()
                }
                _ => continue,
            };
            self.resync(idx, &why, legs, status).await?;
        }
        Ok(())
    }
}

impl Exchange for Bybit {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let markets = self.markets.iter().map(|m| (&m.inst, &m.channels));
        let path = |i: &Pair| format!("/v5/market/tickers?category=spot&symbol={}", i.joined());
        (super::ticker_polls(markets, path), parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}
