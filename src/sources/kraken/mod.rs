//! Kraken Spot WebSocket v2 (`wss://ws.kraken.com/v2`): `book`, `trade`
//! and `ticker`, one subscribe per channel for the connection's symbols
//! (Kraken API Center, "Spot WebSocket v2", as read 2026-12-07).
//!
//! Book rules ("Book checksum (WebSocket v2)", same date):
//! - the subscription asks for the smallest documented depth (10, 25,
//!   100, 500, 1000) that covers `--book-depth`, and never less than 10,
//!   the levels the checksum covers;
//! - every message (snapshot and update) carries a CRC32 of the top 10
//!   asks then the top 10 bids; after applying a message the book is cut
//!   to the subscribed depth (Kraken sends no removal for levels that fall
//!   out of it), then the checksum is verified;
//! - numbers are read exactly: the checksum is over the JSON number text,
//!   which Kraken writes with the instrument's full precision;
//! - a mismatch (or an unreadable level) resyncs that book alone:
//!   `unsubscribe` then `subscribe` with `snapshot: true`; subscribers get
//!   the fresh book as a `book_snapshot` in the same channel sequence.
//!   Resubscriptions of a book back off (250 ms doubling to 30 s, full
//!   jitter, reset after a minute live) so a book that keeps breaking
//!   cannot flood the venue.
//!
//! Trades carry Kraken's sequential `trade_id`; ids at or below the last
//! published one are skipped (a reconnect never repeats a trade).

mod msg;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::activity::Activity;
use super::backoff::Backoff;
use super::local_book::{LocalBook, TopView};
use super::{
    Exchange, ExchangeConfig, MarketChannels, Pair, SessionFuture, SourceError, SourceStatus,
    TickerParser, net,
};
use crate::feed::{Channel, Hub};
use crate::protocol::pb::{Side as TradeSide, Trade, event::Payload};
pub(crate) use msg::decode_untrusted;
use msg::{Envelope, KrakenBook, KrakenTicker, KrakenTrade, decode, method, ts_ns, ws_symbol};

const VENUE: &str = "kraken";
/// Book depths Kraken offers.
const DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];
/// Symbols per connection (one connection's subscribe messages stay small).
pub const SYMBOLS_PER_CONNECTION: usize = 50;
/// An app-level `ping` after this long without a message.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// How often per-book staleness is checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The depth to subscribe for `book_depth` levels.
pub fn subscribed_depth(book_depth: usize) -> usize {
    DEPTHS
        .into_iter()
        .find(|d| *d >= book_depth)
        .unwrap_or(DEPTHS[DEPTHS.len() - 1])
}

#[derive(Debug)]
struct Market {
    inst: Pair,
    channels: MarketChannels,
    /// Live book, or `None` while waiting for a snapshot.
    book: Option<LocalBook>,
    view: TopView,
    last_trade: Option<u64>,
    decimals: Option<(u32, u32)>,
    activity: Activity,
    failed: bool,
    /// Resubscriptions back off (a book that keeps breaking must not
    /// hammer the venue); reset once a book stayed live a minute.
    resync_backoff: Backoff,
    /// When the book's pending resubscription is due.
    resync_due: Option<Instant>,
    /// Since when the book is live (for the backoff's reset).
    live_since: Instant,
}

/// The Kraken source (one connection's instruments).
#[derive(Debug)]
pub struct Kraken {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    markets: Vec<Market>,
    by_symbol: HashMap<String, usize>,
    depth: usize,
    next_req: u64,
}

impl Kraken {
    /// Resolves the channels of every configured instrument.
    pub fn new(hub: Arc<Hub>, cfg: ExchangeConfig) -> Result<Self, crate::protocol::ChannelError> {
        let (markets, by_symbol) =
            super::markets(&hub, VENUE, &cfg, ws_symbol, |inst, channels, decimals| {
                Market {
                    channels,
                    decimals,
                    inst: inst.clone(),
                    book: None,
                    view: TopView::default(),
                    last_trade: None,
                    activity: Activity::new(),
                    failed: false,
                    resync_backoff: Backoff::new(
                        Duration::from_millis(250),
                        Duration::from_secs(30),
                        Duration::from_secs(60),
                    ),
                    resync_due: None,
                    live_since: Instant::now(),
                }
            })?;
        let depth = subscribed_depth(cfg.book_depth.max(10));
        Ok(Self {
            hub,
            cfg,
            markets,
            by_symbol,
            depth,
            next_req: 0,
        })
    }

    fn req(&mut self) -> u64 {
        self.next_req += 1;
        self.next_req
    }

    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        let symbols: Vec<String> = self
            .markets
            .iter()
            .filter(|m| !m.failed)
            .map(|m| ws_symbol(&m.inst))
            .collect();
        if symbols.is_empty() {
            return Err(SourceError::Refused(
                "kraken refused every symbol of this connection".into(),
            ));
        }
        let mut ws = net::ws_connect(&self.cfg.ws_url, self.cfg.io_timeout).await?;
        for m in &mut self.markets {
            m.book = None;
            m.resync_due = None; // the new subscription brings snapshots
        }
        for (channel, depth) in [
            ("ticker", None),
            ("trade", None),
            ("book", Some(self.depth)),
        ] {
            let id = self.req();
            ws.send(method("subscribe", channel, &symbols, depth, id))
                .await
                .map_err(net::NetError::from)?;
        }
        status.connected();
        tracing::info!(source = VENUE, "stream connected");
        let stale = self.cfg.stale_after;
        let mut last_data = Instant::now();
        let mut last_any = Instant::now();
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            let keepalive_at = last_any + KEEPALIVE.min(stale);
            let mut resync: Vec<usize> = Vec::new();
            tokio::select! {
                msg = ws.next() => {
                    last_any = Instant::now();
                    let text = match msg {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None => return Err(SourceError::Closed),
                        Some(Err(e)) => return Err(net::NetError::from(e).into()),
                        Some(Ok(_)) => continue,
                    };
                    match self.on_text(text.as_str(), status, &mut resync) {
                        Ok(true) => {
                            last_data = Instant::now();
                            status.messages(1);
                        }
                        Ok(false) => {}
                        Err(e) => super::skipped(VENUE, status, &e),
                    }
                }
                _ = check.tick() => {
                    for (idx, m) in self.markets.iter().enumerate() {
                        if m.book.is_some() && m.activity.stale(stale) {
                            let inst = m.inst.dashed();
                            let why = format!("kraken {inst}: book silent for {stale:?}; resubscribing the book");
                            status.stale(Some(&inst), &why);
                            status.resynced(&why);
                            resync.push(idx);
                        }
                    }
                }
                _ = tokio::time::sleep_until(keepalive_at.into()) => {
                    last_any = Instant::now();
                    let id = self.req();
                    let ping = serde_json::json!({"method": "ping", "req_id": id}).to_string();
                    ws.send(Message::text(ping)).await.map_err(net::NetError::from)?;
                }
                _ = tokio::time::sleep_until((last_data + stale).into()) => {
                    status.stale(None, &format!("kraken: no data for {stale:?}"));
                    return Err(SourceError::Stale(stale));
                }
            }
            let now = Instant::now();
            for idx in resync {
                let m = &mut self.markets[idx];
                m.book = None;
                if m.resync_due.is_none() {
                    let delay = m.resync_backoff.next_delay(m.live_since.elapsed());
                    m.resync_due = Some(now + delay);
                }
            }
            for idx in 0..self.markets.len() {
                if self.markets[idx].resync_due.is_none_or(|due| due > now) {
                    continue;
                }
                self.markets[idx].resync_due = None;
                let symbol = vec![ws_symbol(&self.markets[idx].inst)];
                let (a, b) = (self.req(), self.req());
                ws.send(method("unsubscribe", "book", &symbol, Some(self.depth), a))
                    .await
                    .map_err(net::NetError::from)?;
                ws.send(method("subscribe", "book", &symbol, Some(self.depth), b))
                    .await
                    .map_err(net::NetError::from)?;
            }
        }
    }

    /// Handles one text message; true when it carried market data (or was
    /// the venue's heartbeat). Books
    /// that broke are added to `resync`.
    fn on_text(
        &mut self,
        text: &str,
        status: &SourceStatus,
        resync: &mut Vec<usize>,
    ) -> Result<bool, SourceError> {
        let env: Envelope = serde_json::from_str(text).map_err(|e| SourceError::Decode {
            what: "Kraken message",
            detail: e.to_string(),
        })?;
        if let Some(m) = env.method.as_deref() {
            if env.success == Some(false) {
                let why = format!(
                    "kraken {m} refused: {}",
                    env.error.as_deref().unwrap_or("no reason given")
                );
                let symbol = env.symbol.clone().or_else(|| {
                    env.result
                        .as_ref()
                        .and_then(|r| r["symbol"].as_str().map(String::from))
                });
                let market = symbol
                    .and_then(|s| self.by_symbol.get(&s).copied())
                    .filter(|_| m == "subscribe");
                if let Some(idx) = market {
                    self.markets[idx].failed = true;
                }
                let inst = market.map(|idx| &self.markets[idx].inst);
                super::refused(VENUE, status, inst, &why);
            }
            return Ok(false);
        }
        let (Some(channel), Some(data)) = (env.channel.as_deref(), env.data.as_deref()) else {
            // Kraken's once-a-second heartbeat: the stream is alive even
            // when quiet pairs send nothing (per-book staleness only
            // concerns books that were busy, see `Activity`)
            return Ok(env.channel.as_deref() == Some("heartbeat"));
        };
        match channel {
            "book" => {
                let snapshot = env.kind.as_deref() == Some("snapshot");
                for b in decode::<Vec<KrakenBook>>(data, "book")? {
                    let Some(&idx) = self.by_symbol.get(&b.symbol) else {
                        continue;
                    };
                    if let Err(why) = self.on_book(idx, &b, snapshot, status) {
                        let inst = self.markets[idx].inst.dashed();
                        let why = format!("kraken {inst}: {why}; resubscribing the book");
                        tracing::warn!("{why}");
                        status.resyncing(&inst, &why);
                        resync.push(idx);
                    }
                }
            }
            "trade" => {
                for t in decode::<Vec<KrakenTrade>>(data, "trade")? {
                    let Some(&idx) = self.by_symbol.get(&t.symbol) else {
                        continue;
                    };
                    let m = &mut self.markets[idx];
                    if m.last_trade.is_some_and(|last| t.trade_id <= last) {
                        continue; // already published
                    }
                    m.last_trade = Some(t.trade_id);
                    let side = match t.side.as_str() {
                        "buy" => TradeSide::Buy,
                        "sell" => TradeSide::Sell,
                        _ => TradeSide::Unspecified,
                    };
                    let trade = Trade {
                        price: t.price,
                        quantity: t.qty,
                        side: side as i32,
                        trade_id: t.trade_id.to_string(),
                        count: 0,
                    };
                    let time = ts_ns(Some(&t.timestamp));
                    self.hub
                        .publish_or_log(&m.channels.trade, time, Payload::Trade(trade));
                }
            }
            "ticker" => {
                for t in decode::<Vec<KrakenTicker>>(data, "ticker")? {
                    let Some(&idx) = self.by_symbol.get(&t.symbol) else {
                        continue;
                    };
                    let time = match ts_ns(t.timestamp.as_deref()) {
                        0 => crate::protocol::now_ns(),
                        t => t,
                    };
                    let payload = Payload::Ticker(msg::ticker_payload(&t));
                    self.hub
                        .publish_or_log(&self.markets[idx].channels.ticker, time, payload);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies a book message; the reason when the book must be resynced.
    fn on_book(
        &mut self,
        idx: usize,
        b: &KrakenBook,
        snapshot: bool,
        status: &SourceStatus,
    ) -> Result<(), String> {
        let (depth, wanted) = (self.depth, self.cfg.book_depth);
        let m = &mut self.markets[idx];
        m.activity.message();
        let bids: Vec<[&str; 2]> = b.bids.iter().map(|l| l.texts()).collect();
        let asks: Vec<[&str; 2]> = b.asks.iter().map(|l| l.texts()).collect();
        let time = match ts_ns(b.timestamp.as_deref()) {
            0 => crate::protocol::now_ns(),
            t => t,
        };
        if snapshot {
            let mut book = LocalBook::from_levels(&bids, &asks).map_err(|e| e.to_string())?;
            if let Some((p, s)) = m.decimals {
                book.set_decimals(p, s);
            }
            book.truncate(depth);
            verify(&book, b.checksum)?;
            let snap = book.snapshot(wanted);
            m.view = TopView::of(&snap);
            m.book = Some(book);
            m.activity = Activity::new();
            m.live_since = Instant::now();
            self.hub
                .publish_or_log(&m.channels.book, time, Payload::BookSnapshot(snap));
            status.book_live(&m.inst.dashed());
            return Ok(());
        }
        let Some(book) = m.book.as_mut() else {
            return Ok(()); // resubscribed: the fresh snapshot is on its way
        };
        use super::local_book::Side;
        book.apply(Side::Bid, &bids).map_err(|e| e.to_string())?;
        book.apply(Side::Ask, &asks).map_err(|e| e.to_string())?;
        book.truncate(depth);
        verify(book, b.checksum)?;
        if let Some(update) = m.view.advance(book, wanted) {
            self.hub
                .publish_or_log(&m.channels.book, time, Payload::BookUpdate(update));
        }
        Ok(())
    }
}

fn verify(book: &LocalBook, want: u32) -> Result<(), String> {
    let got = msg::checksum(book);
    if got != want {
        return Err(format!("checksum {got} != kraken's {want}"));
    }
    Ok(())
}

/// Kraken's REST name of an instrument (`XBTUSD`: Kraken says XBT and XDG).
fn rest_pair(inst: &Pair) -> String {
    let base = match inst.base.as_str() {
        "BTC" => "XBT",
        "DOGE" => "XDG",
        b => b,
    };
    format!("{base}{}", inst.quote)
}

impl Exchange for Kraken {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let markets = self.markets.iter().map(|m| (&m.inst, &m.channels));
        let path = |i: &Pair| format!("/0/public/Ticker?pair={}", rest_pair(i));
        (super::ticker_polls(markets, path), msg::parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_smallest_kraken_offers_that_covers_the_request() {
        assert_eq!(subscribed_depth(10), 10);
        assert_eq!(subscribed_depth(20), 25);
        assert_eq!(subscribed_depth(101), 500);
        assert_eq!(subscribed_depth(5000), 1000);
        assert_eq!(rest_pair(&Pair::parse("BTC-USD").unwrap()), "XBTUSD");
    }
}
