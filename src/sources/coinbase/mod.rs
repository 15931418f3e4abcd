//! Coinbase Advanced Trade public market data
//! (`wss://advanced-trade-ws.coinbase.com`): `heartbeats`,
//! `market_trades`, `ticker` and `level2`, one channel per subscribe
//! message (as Coinbase requires), all sent right after connecting
//! (Coinbase closes a connection that has not subscribed within 5 s),
//! 125 ms apart so that the connections together stay under 8 messages per
//! second per IP. Connections are rotated make-before-break (see
//! `session.rs`).
//!
//! `heartbeats` keeps every subscription open (other channels close after
//! 60-90 s without updates) and proves the connection alive when markets
//! are quiet. `sequence_num` counts the connection's messages: a jump
//! resubscribes `level2` for every book of the connection (see [`book`]),
//! and each book's fresh snapshot reaches subscribers as a `book_snapshot`
//! in the same channel sequence. Connections carry few books
//! ([`BOOKS_PER_CONNECTION`]) so that a gap costs few snapshots.
//!
//! Symbols: Coinbase's public channels answer a `-USDC` product with the
//! `-USD` product's data (one book for both since Coinbase unified them),
//! so `X-USDC` is streamed as `X-USD` and published on `*.coinbase.X-USD`
//! ([`map_products`]); `USDT-USDC` and `EURC-USDC`, which have books of
//! their own, stay as they are.
//!
//! Trades: `side` in `market_trades` is the maker order's side, as on
//! Coinbase's Exchange feed; tickwire publishes the taker's (the opposite).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub mod book;
pub mod msg;
mod session;

use super::activity::Activity;
use super::dedup::RecentIds;
use super::legs::{Leg, Legs};
use super::local_book::TopView;
use super::{
    Exchange, ExchangeConfig, MarketChannels, Pair, SessionFuture, SourceError, SourceStatus,
    TickerParser, num,
};
use crate::feed::{Channel, Hub};
use crate::protocol::pb::{Side as TradeSide, Trade, event::Payload};
use book::{BookState, Sequence};
pub(crate) use msg::decode_untrusted;
use msg::{CoinbaseTrade, Envelope, L2Event, TickerEvent, TradesEvent, decode, parse_rest_ticker};

const VENUE: &str = "coinbase";
/// Books per connection: a `sequence_num` gap resubscribes them all.
pub const BOOKS_PER_CONNECTION: usize = 8;
/// Between two subscribe messages of a connection.
const SUBSCRIBE_PACE: Duration = Duration::from_millis(125);
/// How often snapshot timeouts and per-book staleness are checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Products whose `-USDC` book is their own on public channels.
const OWN_USDC_BOOKS: &[&str] = &["USDT", "EURC"];

/// Coinbase's public channels give `X-USDC` the data of `X-USD`: maps the
/// configured instruments to the products that carry their data, keeping
/// the first of any duplicates, and logs each mapping.
pub fn map_products(instruments: &mut Vec<Pair>) {
    let mut out: Vec<Pair> = Vec::new();
    for mut inst in std::mem::take(instruments) {
        if inst.quote == "USDC" && !OWN_USDC_BOOKS.contains(&inst.base.as_str()) {
            tracing::info!(
                source = VENUE,
                "{}-USDC is streamed as {}-USD: Coinbase's public channels answer -USDC products with -USD data",
                inst.base,
                inst.base
            );
            inst.quote = "USD".into();
        }
        if !out.contains(&inst) {
            out.push(inst);
        }
    }
    *instruments = out;
}

#[derive(Debug)]
struct Market {
    inst: Pair,
    channels: MarketChannels,
    state: BookState,
    view: TopView,
    trades: RecentIds,
    /// The highest trade id published (Coinbase's ids count up per product).
    last_trade: Option<u64>,
    last_ticker_ns: i64,
    /// Coinbase refused it ("is not a valid product"): not subscribed again.
    failed: bool,
    decimals: Option<(u32, u32)>,
    activity: Activity,
    /// The book as the next connection builds it during a rotation: not
    /// published until that connection is switched to.
    next: BookState,
    /// The next connection's trades during a rotation, published (those
    /// newer than the last published) when it is switched to: published at
    /// once, a trade the next connection got before the current one would
    /// overtake the current one's earlier trades (the two streams are not
    /// in step).
    next_trades: Vec<CoinbaseTrade>,
}

/// Most trades held per product while a rotation's next connection builds
/// its books (beyond it, the oldest go: the current connection still
/// publishes them).
const NEXT_TRADES_HELD: usize = 4096;

/// The Coinbase source (one connection's products).
#[derive(Debug)]
pub struct Coinbase {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    markets: Vec<Market>,
    by_product: HashMap<String, usize>,
}

/// A connection's message check: per leg, since `sequence_num` counts
/// per connection.
#[derive(Debug, Default)]
pub(super) struct Sequences {
    pub(super) current: Sequence,
    pub(super) next: Sequence,
}

impl Coinbase {
    /// Resolves the channels of every configured product.
    pub fn new(hub: Arc<Hub>, cfg: ExchangeConfig) -> Result<Self, crate::protocol::ChannelError> {
        let (markets, by_product) = super::markets(
            &hub,
            VENUE,
            &cfg,
            Pair::dashed,
            |inst, channels, decimals| Market {
                channels,
                decimals,
                inst: inst.clone(),
                state: BookState::awaiting(),
                view: TopView::default(),
                trades: RecentIds::default(),
                last_trade: None,
                last_ticker_ns: 0,
                failed: false,
                activity: Activity::new(),
                next: BookState::awaiting(),
                next_trades: Vec::new(),
            },
        )?;
        Ok(Self {
            hub,
            cfg,
            markets,
            by_product,
        })
    }

    /// The products to subscribe: all but those Coinbase refused.
    fn products(&self) -> Vec<String> {
        self.markets
            .iter()
            .filter(|m| !m.failed)
            .map(|m| m.inst.dashed())
            .collect()
    }

    /// Handles one text message of `leg`; true for market data.
    async fn on_text(
        &mut self,
        text: &str,
        leg: Leg,
        seqs: &mut Sequences,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<bool, SourceError> {
        let env: Envelope = serde_json::from_str(text).map_err(|e| SourceError::Decode {
            what: "Coinbase message",
            detail: e.to_string(),
        })?;
        if env.kind.as_deref() == Some("error") {
            let why = format!(
                "coinbase error: {} {}",
                env.message.unwrap_or_default(),
                env.reason.unwrap_or_default()
            );
            tracing::warn!(source = VENUE, "{why}");
            status.set_error(&why);
            self.on_refusal(&why, leg, legs, status).await?;
            return Ok(false);
        }
        let sequence = match leg {
            Leg::Current => &mut seqs.current,
            Leg::Next => &mut seqs.next,
        };
        if let Some(seq) = env.sequence_num
            && let Err(why) = sequence.next(seq)
        {
            self.resubscribe_books(&why, leg, legs, status).await?;
        }
        let time = msg::time_ns(&env.timestamp);
        match env.channel.as_str() {
            "l2_data" => {
                for ev in env.events {
                    let ev: L2Event = decode(ev, "level2 event")?;
                    let Some(&idx) = self.by_product.get(&ev.product_id) else {
                        continue;
                    };
                    let applied = match leg {
                        Leg::Current => self.on_book(idx, &ev, time, status),
                        Leg::Next => self.on_next_book(idx, &ev),
                    };
                    if let Err(why) = applied {
                        self.resubscribe_books(&why, leg, legs, status).await?;
                    }
                }
            }
            "market_trades" => {
                for ev in env.events {
                    let ev: TradesEvent = decode(ev, "market_trades event")?;
                    match leg {
                        Leg::Current => self.on_trades(&ev.kind, ev.trades)?,
                        Leg::Next => self.hold_next_trades(ev.trades),
                    }
                }
            }
            "ticker" => {
                for ev in env.events {
                    let ev: TickerEvent = decode(ev, "ticker event")?;
                    for t in &ev.tickers {
                        let Some(&idx) = self.by_product.get(&t.product_id) else {
                            continue;
                        };
                        let m = &mut self.markets[idx];
                        // two connections overlap: the same ticker comes twice
                        if legs.rotating() && time <= m.last_ticker_ns {
                            continue;
                        }
                        m.last_ticker_ns = time;
                        let ticker = msg::ticker_payload(t)?;
                        self.hub
                            .publish_or_log(&m.channels.ticker, time, Payload::Ticker(ticker));
                    }
                }
            }
            _ => return Ok(false), // heartbeats, subscriptions
        }
        Ok(true)
    }

    fn on_book(
        &mut self,
        idx: usize,
        ev: &L2Event,
        time_ns: i64,
        status: &SourceStatus,
    ) -> Result<(), String> {
        let depth = self.cfg.book_depth;
        let m = &mut self.markets[idx];
        m.activity.message();
        if ev.kind == "snapshot" {
            let snap = m.state.start(&ev.updates, m.decimals)?.snapshot(depth);
            m.view = TopView::of(&snap);
            m.activity = Activity::new();
            self.hub
                .publish_or_log(&m.channels.book, time_ns, Payload::BookSnapshot(snap));
            status.book_live(&m.inst.dashed());
            return Ok(());
        }
        if let Some(book) = m.state.update(&ev.updates)?
            && let Some(update) = m.view.advance(book, depth)
        {
            self.hub
                .publish_or_log(&m.channels.book, time_ns, Payload::BookUpdate(update));
        }
        Ok(())
    }

    /// A book message of the next connection: builds its private book.
    fn on_next_book(&mut self, idx: usize, ev: &L2Event) -> Result<(), String> {
        let m = &mut self.markets[idx];
        if ev.kind == "snapshot" {
            m.next.start(&ev.updates, m.decimals)?;
        } else {
            m.next.update(&ev.updates)?;
        }
        Ok(())
    }

    /// Holds the next connection's trades until it is switched to
    /// (`adopt_next` publishes them).
    fn hold_next_trades(&mut self, trades: Vec<CoinbaseTrade>) {
        for t in trades {
            let Some(&idx) = self.by_product.get(&t.product_id) else {
                continue;
            };
            let held = &mut self.markets[idx].next_trades;
            if held.len() == NEXT_TRADES_HELD {
                held.remove(0);
            }
            held.push(t);
        }
    }

    /// Publishes the trades the next connection got before it was switched
    /// to, those newer than the last published, in id order.
    pub(super) fn publish_held_trades(&mut self) -> Result<(), SourceError> {
        let held: Vec<CoinbaseTrade> = self
            .markets
            .iter_mut()
            .flat_map(|m| std::mem::take(&mut m.next_trades))
            .collect();
        self.on_trades("snapshot", held)
    }

    /// Publishes new trades in id order. A `snapshot` event (sent on each
    /// subscribe) fills what a reconnect missed; on the first connection
    /// it is history and is not published (as `kind` "snapshot", only
    /// trades newer than the last published go out).
    fn on_trades(&mut self, kind: &str, mut trades: Vec<CoinbaseTrade>) -> Result<(), SourceError> {
        trades.sort_by_key(|t| t.trade_id.parse::<u64>().unwrap_or(0));
        for t in trades {
            let Some(&idx) = self.by_product.get(&t.product_id) else {
                continue;
            };
            let m = &mut self.markets[idx];
            let id = t.trade_id.parse::<u64>().ok();
            if kind == "snapshot" {
                match (m.last_trade, id) {
                    (Some(last), Some(id)) if id > last => {}
                    _ => continue,
                }
            }
            if !m.trades.first(&t.trade_id) {
                continue;
            }
            m.last_trade = m.last_trade.max(id);
            // the maker's side: the taker took the other one
            let side = match t.side.as_str() {
                "BUY" => TradeSide::Sell,
                "SELL" => TradeSide::Buy,
                _ => TradeSide::Unspecified,
            };
            let trade = Trade {
                price: num(&t.price, "trade")?,
                quantity: num(&t.size, "trade")?,
                side: side as i32,
                trade_id: t.trade_id,
                count: 0,
            };
            let time = msg::time_ns(&t.time);
            self.hub
                .publish_or_log(&m.channels.trade, time, Payload::Trade(trade));
        }
        Ok(())
    }
}

impl Exchange for Coinbase {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let markets = self.markets.iter().map(|m| (&m.inst, &m.channels));
        let path = |i: &Pair| {
            format!(
                "/api/v3/brokerage/market/products/{}/ticker?limit=1",
                i.dashed()
            )
        };
        (super::ticker_polls(markets, path), parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usdc_products_map_to_usd_except_those_with_their_own_book() {
        let mut v: Vec<Pair> = ["BTC-USDC", "BTC-USD", "USDT-USDC", "ETH-USDC"]
            .iter()
            .map(|s| Pair::parse(s).unwrap())
            .collect();
        map_products(&mut v);
        let names: Vec<String> = v.iter().map(Pair::dashed).collect();
        assert_eq!(names, ["BTC-USD", "USDT-USDC", "ETH-USD"]);
    }
}
