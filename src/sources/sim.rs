//! The built-in market simulator: the default source.
//!
//! Each instrument has a mid price on a mean-reverting random walk, an L2
//! book of `depth` levels a side on a fixed price grid around the mid (levels
//! cross sides as the mid moves, deep levels appear and vanish, quantities
//! churn near the top), trades that hit the best bid or lift the best ask,
//! 24h ticker statistics and a 1m candle. Events are spread over the
//! instruments at `--sim-rate` events/s in total (trades 40%, book updates
//! 45%, tickers 10%, candle updates 5%, plus a closed candle at each minute).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::status::{SourceState, SourceStatus};
use crate::config::SimRate;
use crate::feed::{Channel, Hub};
use crate::protocol::now_ns;
use crate::protocol::pb::{
    BookSnapshot, BookUpdate, Candle, Level, Side, Ticker, Trade, event::Payload,
};

/// The venue token of simulator channels.
pub const VENUE: &str = "sim";

/// Instruments simulated when none are configured: (name, mid, price
/// decimals, size decimals).
pub const DEFAULT_INSTRUMENTS: &[(&str, f64, u32, u32)] = &[
    ("BTC-USDT", 65_000.0, 2, 5),
    ("ETH-USDT", 3_400.0, 2, 4),
    ("SOL-USDT", 150.0, 3, 3),
    ("BNB-USDT", 580.0, 2, 3),
    ("XRP-USDT", 0.52, 4, 1),
    ("ADA-USDT", 0.45, 4, 1),
    ("DOGE-USDT", 0.12, 5, 0),
    ("AVAX-USDT", 35.0, 3, 2),
    ("DOT-USDT", 7.0, 3, 2),
    ("LINK-USDT", 15.0, 3, 2),
    ("LTC-USDT", 80.0, 2, 3),
    ("TRX-USDT", 0.12, 5, 0),
];

const CANDLE_INTERVAL_NS: i64 = 60_000_000_000;

/// Settings of the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub rate: SimRate,
    /// Publishing period at a fixed rate (`--sim-tick`).
    pub tick: Duration,
    /// Instrument names; empty means [`DEFAULT_INSTRUMENTS`].
    pub instruments: Vec<String>,
    pub seed: Option<u64>,
    /// Levels per book side.
    pub depth: usize,
    /// Publish custom JSON events of about this size instead of the market mix.
    pub payload_bytes: Option<usize>,
    /// Publish the simulator's own 1 m candles. Off when analytics builds
    /// candles from the trades (the candle share of the mix then goes to
    /// tickers).
    pub candles: bool,
}

fn gaussian(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

struct Channels {
    custom: Option<Arc<Channel>>,
    trade: Arc<Channel>,
    ticker: Arc<Channel>,
    book: Arc<Channel>,
    candle: Arc<Channel>,
}

struct OpenCandle {
    open_time_ns: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    trades: u32,
}

struct Instrument {
    channels: Channels,
    mid: f64,
    anchor: f64,
    tick: f64,
    step_ticks: i64,
    price_decimals: u32,
    size_decimals: u32,
    base_qty: f64,
    depth: usize,
    bids: BTreeMap<i64, f64>,
    asks: BTreeMap<i64, f64>,
    last: f64,
    open_24h: f64,
    high_24h: f64,
    low_24h: f64,
    volume_24h: f64,
    quote_volume_24h: f64,
    candle: OpenCandle,
    next_trade_id: u64,
}

/// `10^d` by table lookup (`powi` showed up in the ingest profile).
fn pow10(d: u32) -> f64 {
    const TABLE: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    TABLE
        .get(d as usize)
        .copied()
        .unwrap_or_else(|| 10f64.powi(d as i32))
}

fn round_to(value: f64, decimals: u32) -> f64 {
    let scale = pow10(decimals);
    (value * scale).round() / scale
}

impl Instrument {
    fn new(
        hub: &Hub,
        config: &SimConfig,
        (name, mid, price_decimals, size_decimals): (&str, f64, u32, u32),
        rng: &mut SmallRng,
    ) -> Result<Self, crate::protocol::ChannelError> {
        let with_custom = config.payload_bytes.is_some();
        let depth = config.depth.max(1);
        let ch = |stream: &str| hub.channel(&format!("{stream}.{VENUE}.{name}"));
        let channels = Channels {
            custom: if with_custom {
                Some(ch("custom")?)
            } else {
                None
            },
            trade: ch("trade")?,
            ticker: ch("ticker")?,
            book: ch("book")?,
            candle: ch("candle1m")?,
        };
        let tick = 1.0 / pow10(price_decimals);
        let step_ticks = ((mid * 0.0001) / tick).round().max(1.0) as i64;
        let base_qty = round_to(
            (10_000.0 / mid).max(1.0 / pow10(size_decimals)),
            size_decimals,
        );
        let open_24h = round_to(mid * (1.0 + rng.random_range(-0.05..0.05)), price_decimals);
        let now = now_ns();
        let mut inst = Self {
            channels,
            mid,
            anchor: mid,
            tick,
            step_ticks,
            price_decimals,
            size_decimals,
            base_qty,
            depth,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last: round_to(mid, price_decimals),
            open_24h,
            high_24h: open_24h.max(mid) * (1.0 + rng.random_range(0.0..0.02)),
            low_24h: open_24h.min(mid) * (1.0 - rng.random_range(0.0..0.02)),
            volume_24h: round_to(
                base_qty * rng.random_range(5_000.0..20_000.0),
                size_decimals,
            ),
            quote_volume_24h: 0.0,
            candle: OpenCandle {
                open_time_ns: now - now.rem_euclid(CANDLE_INTERVAL_NS),
                open: mid,
                high: mid,
                low: mid,
                close: mid,
                volume: 0.0,
                trades: 0,
            },
            next_trade_id: 1,
        };
        inst.quote_volume_24h = inst.volume_24h * mid;
        let (best_bid, best_ask) = inst.grid();
        let mut bids = BTreeMap::new();
        let mut asks = BTreeMap::new();
        let mut ignored = Vec::new();
        inst.follow_grid(
            &mut bids,
            inst.side_range(best_bid, true),
            &mut ignored,
            rng,
        );
        inst.follow_grid(
            &mut asks,
            inst.side_range(best_ask, false),
            &mut ignored,
            rng,
        );
        inst.bids = bids;
        inst.asks = asks;
        Ok(inst)
    }

    fn random_qty(&self, rng: &mut SmallRng) -> f64 {
        let q = self.base_qty * rng.random_range(0.1..5.0);
        round_to(q, self.size_decimals).max(1.0 / pow10(self.size_decimals))
    }

    fn price(&self, ticks: i64) -> f64 {
        round_to(ticks as f64 * self.tick, self.price_decimals)
    }

    /// Best bid and best ask grid prices (in ticks) for the current mid;
    /// the book holds `depth` grid levels below and above them.
    fn grid(&self) -> (i64, i64) {
        let step = self.step_ticks;
        let best_bid = (self.mid / self.tick / step as f64).floor() as i64 * step;
        (best_bid, best_bid + step)
    }

    /// Inclusive tick range of a side's `depth` grid levels from `best`.
    fn side_range(&self, best: i64, bid: bool) -> (i64, i64) {
        let far = best + (self.depth as i64 - 1) * self.step_ticks * if bid { -1 } else { 1 };
        if bid { (far, best) } else { (best, far) }
    }

    fn walk(&mut self, rng: &mut SmallRng) {
        let shock = 0.00008 * gaussian(rng);
        let reversion = 0.0005 * (self.anchor - self.mid) / self.anchor;
        self.mid *= (shock + reversion).exp();
    }

    fn best(&self, side: Side) -> (f64, f64) {
        let level = match side {
            Side::Buy => self.asks.iter().next(),
            _ => self.bids.iter().next_back(),
        };
        level.map_or((self.mid, 0.0), |(p, q)| (self.price(*p), *q))
    }

    fn snapshot(&self) -> BookSnapshot {
        let level = |(p, q): (&i64, &f64)| Level {
            price: self.price(*p),
            quantity: *q,
        };
        BookSnapshot {
            bids: self.bids.iter().rev().map(level).collect(),
            asks: self.asks.iter().map(level).collect(),
            checksum: 0, // filled by the hub from its own book
            price_decimals: self.price_decimals,
            size_decimals: self.size_decimals,
        }
    }

    /// Moves the book to the grid of the current mid and churns a few
    /// quantities on one side; returns the changed levels.
    ///
    /// hot path with `--sim-rate max`: when the mid stays between two grid
    /// lines (the common case) nothing is allocated or scanned.
    fn book_update(&mut self, rng: &mut SmallRng) -> BookUpdate {
        let (best_bid, best_ask) = self.grid();
        let bid_range = self.side_range(best_bid, true);
        let ask_range = self.side_range(best_ask, false);
        let mut bids = std::mem::take(&mut self.bids);
        let mut asks = std::mem::take(&mut self.asks);
        let mut update = BookUpdate::default();
        self.follow_grid(&mut bids, bid_range, &mut update.bids, rng);
        self.follow_grid(&mut asks, ask_range, &mut update.asks, rng);
        if rng.random::<bool>() {
            self.churn(&mut bids, best_bid, -self.step_ticks, &mut update.bids, rng);
        } else {
            self.churn(&mut asks, best_ask, self.step_ticks, &mut update.asks, rng);
        }
        self.bids = bids;
        self.asks = asks;
        update
    }

    /// Removes levels outside the side's grid range `(lo, hi)` and fills the
    /// range's missing grid levels.
    fn follow_grid(
        &self,
        book: &mut BTreeMap<i64, f64>,
        (lo, hi): (i64, i64),
        out: &mut Vec<Level>,
        rng: &mut SmallRng,
    ) {
        while let Some((&p, _)) = book.range(..lo).next() {
            book.remove(&p);
            out.push(Level {
                price: self.price(p),
                quantity: 0.0,
            });
        }
        while let Some((&p, _)) = book.range(hi + 1..).next() {
            book.remove(&p);
            out.push(Level {
                price: self.price(p),
                quantity: 0.0,
            });
        }
        // The levels left are a contiguous run of the grid inside the range
        // (nothing else ever inserts), so only its two ends can be missing.
        let (first, last) = match (book.keys().next(), book.keys().next_back()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => (hi + self.step_ticks, hi), // empty: fill the whole range
        };
        let mut fill = |p: i64, book: &mut BTreeMap<i64, f64>| {
            let quantity = self.random_qty(rng);
            book.insert(p, quantity);
            out.push(Level {
                price: self.price(p),
                quantity,
            });
        };
        let mut p = lo;
        while p < first.min(hi + 1) {
            fill(p, book);
            p += self.step_ticks;
        }
        let mut p = last.max(lo - self.step_ticks) + self.step_ticks;
        while p <= hi {
            fill(p, book);
            p += self.step_ticks;
        }
    }

    /// Changes one to three quantities, mostly near the top of the side
    /// (`best` and then every `step` ticks away from it).
    fn churn(
        &self,
        book: &mut BTreeMap<i64, f64>,
        best: i64,
        step: i64,
        out: &mut Vec<Level>,
        rng: &mut SmallRng,
    ) {
        for _ in 0..rng.random_range(1..=3) {
            let idx = (rng.random::<f64>().powi(2) * self.depth as f64) as i64;
            let p = best + idx.min(self.depth as i64 - 1) * step;
            let quantity = self.random_qty(rng);
            book.insert(p, quantity);
            let price = self.price(p);
            out.retain(|l| l.price != price);
            out.push(Level { price, quantity });
        }
    }

    fn trade(&mut self, rng: &mut SmallRng, now: i64) -> Trade {
        let side = if rng.random::<bool>() {
            Side::Buy
        } else {
            Side::Sell
        };
        let (price, _) = self.best(side);
        let quantity = round_to(
            self.base_qty * rng.random_range(0.01..0.5),
            self.size_decimals,
        )
        .max(1.0 / pow10(self.size_decimals));
        self.last = price;
        self.high_24h = self.high_24h.max(price);
        self.low_24h = self.low_24h.min(price);
        self.volume_24h += quantity;
        self.quote_volume_24h += quantity * price;
        self.roll_candle(now);
        let c = &mut self.candle;
        c.high = c.high.max(price);
        c.low = c.low.min(price);
        c.close = price;
        c.volume = round_to(c.volume + quantity, self.size_decimals);
        c.trades += 1;
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        Trade {
            price,
            quantity,
            side: side as i32,
            trade_id: trade_id.to_string(),
            count: 0,
        }
    }

    fn ticker(&self) -> Ticker {
        let (bid, bid_size) = self.best(Side::Sell);
        let (ask, ask_size) = self.best(Side::Buy);
        Ticker {
            last: self.last,
            bid,
            bid_size,
            ask,
            ask_size,
            open_24h: self.open_24h,
            high_24h: round_to(self.high_24h, self.price_decimals),
            low_24h: round_to(self.low_24h, self.price_decimals),
            change_pct_24h: (self.last - self.open_24h) / self.open_24h * 100.0,
            volume_24h: round_to(self.volume_24h, self.size_decimals),
            quote_volume_24h: round_to(self.quote_volume_24h, 2),
        }
    }

    fn candle(&self, closed: bool) -> Candle {
        let c = &self.candle;
        Candle {
            interval: "1m".into(),
            open_time_ns: c.open_time_ns,
            open: round_to(c.open, self.price_decimals),
            high: round_to(c.high, self.price_decimals),
            low: round_to(c.low, self.price_decimals),
            close: round_to(c.close, self.price_decimals),
            volume: c.volume,
            closed,
            trades: c.trades,
        }
    }

    /// If the minute rolled over, returns the closed candle and opens the next.
    fn roll_candle(&mut self, now: i64) -> Option<Candle> {
        if now < self.candle.open_time_ns + CANDLE_INTERVAL_NS {
            return None;
        }
        let closed = self.candle(true);
        let close = self.candle.close;
        self.candle = OpenCandle {
            open_time_ns: now - now.rem_euclid(CANDLE_INTERVAL_NS),
            open: close,
            high: close,
            low: close,
            close,
            volume: 0.0,
            trades: 0,
        };
        Some(closed)
    }
}

/// A custom JSON event of about `bytes` bytes: a list of recent quotes, as
/// compressible as real market JSON.
fn large_payload(inst: &Instrument, bytes: usize, rng: &mut SmallRng) -> Payload {
    let mut json = String::with_capacity(bytes + 64);
    json.push_str("{\"quotes\":[");
    while json.len() < bytes.saturating_sub(2) {
        let p = round_to(
            inst.mid * (1.0 + rng.random_range(-0.001..0.001)),
            inst.price_decimals,
        );
        let q = round_to(
            inst.base_qty * rng.random_range(0.1..5.0),
            inst.size_decimals,
        );
        json.push_str(&format!("{{\"p\":{p},\"q\":{q}}},"));
    }
    json.pop();
    json.push_str("]}");
    Payload::Custom(crate::protocol::pb::Custom {
        body: Some(crate::protocol::pb::custom::Body::Json(json)),
    })
}

/// The simulator: instruments and the random source driving them.
pub struct Simulator {
    hub: Arc<Hub>,
    instruments: Vec<Instrument>,
    rng: SmallRng,
    rate: SimRate,
    tick: Duration,
    payload_bytes: Option<usize>,
    candles: bool,
}

impl Simulator {
    /// Creates the instruments' channels and publishes their initial state
    /// (book snapshot, ticker, open candle).
    pub fn new(hub: Arc<Hub>, config: &SimConfig) -> Result<Self, crate::protocol::ChannelError> {
        let mut rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_rng(&mut rand::rng()),
        };
        let specs: Vec<(String, f64, u32, u32)> = if config.instruments.is_empty() {
            DEFAULT_INSTRUMENTS
                .iter()
                .map(|(n, m, p, s)| (n.to_string(), *m, *p, *s))
                .collect()
        } else {
            config
                .instruments
                .iter()
                .map(|name| {
                    DEFAULT_INSTRUMENTS
                        .iter()
                        .find(|d| d.0 == name)
                        .map(|(n, m, p, s)| (n.to_string(), *m, *p, *s))
                        .unwrap_or_else(|| (name.clone(), 100.0, 2, 3))
                })
                .collect()
        };
        let mut instruments = Vec::with_capacity(specs.len());
        for (name, mid, pd, sd) in specs {
            instruments.push(Instrument::new(
                &hub,
                config,
                (&name, mid, pd, sd),
                &mut rng,
            )?);
        }
        let sim = Self {
            hub,
            instruments,
            rng,
            rate: config.rate,
            tick: config.tick,
            payload_bytes: config.payload_bytes,
            candles: config.candles,
        };
        let now = now_ns();
        for inst in &sim.instruments {
            sim.publish(
                &inst.channels.book,
                now,
                Payload::BookSnapshot(inst.snapshot()),
            );
            sim.publish(&inst.channels.ticker, now, Payload::Ticker(inst.ticker()));
            if sim.candles {
                sim.publish(
                    &inst.channels.candle,
                    now,
                    Payload::Candle(inst.candle(false)),
                );
            }
        }
        Ok(sim)
    }

    fn publish(&self, channel: &Channel, now: i64, payload: Payload) {
        if let Err(e) = self.hub.publish(channel, now, payload) {
            tracing::error!(channel = %channel.name, error = %e, "simulator event refused");
        }
    }

    /// Publishes one event on a random instrument.
    ///
    /// hot path (with `--sim-rate max` this is the ingest benchmark).
    pub fn step(&mut self) {
        let i = self.rng.random_range(0..self.instruments.len());
        let now = now_ns();
        let roll: f64 = self.rng.random();
        let inst = &mut self.instruments[i];
        inst.walk(&mut self.rng);
        if let Some(closed) = inst.roll_candle(now)
            && self.candles
        {
            let ch = inst.channels.candle.clone();
            self.publish(&ch, now, Payload::Candle(closed));
        }
        let inst = &mut self.instruments[i];
        if let (Some(bytes), Some(channel)) = (self.payload_bytes, inst.channels.custom.clone()) {
            let payload = large_payload(inst, bytes, &mut self.rng);
            self.publish(&channel, now, payload);
            return;
        }
        let (channel, payload) = if roll < 0.40 {
            (
                inst.channels.trade.clone(),
                Payload::Trade(inst.trade(&mut self.rng, now)),
            )
        } else if roll < 0.85 {
            (
                inst.channels.book.clone(),
                Payload::BookUpdate(inst.book_update(&mut self.rng)),
            )
        } else if roll < 0.95 || !self.candles {
            (inst.channels.ticker.clone(), Payload::Ticker(inst.ticker()))
        } else {
            (
                inst.channels.candle.clone(),
                Payload::Candle(inst.candle(false)),
            )
        };
        self.publish(&channel, now, payload);
    }

    /// Runs until `shutdown`, at the configured rate; `status` counts steps.
    pub async fn run(mut self, shutdown: CancellationToken, status: Arc<SourceStatus>) {
        status.connected();
        match self.rate {
            SimRate::Max => loop {
                for _ in 0..1024 {
                    self.step();
                }
                status.messages(1024);
                if shutdown.is_cancelled() {
                    status.ended(SourceState::Stopped);
                    return;
                }
                tokio::task::yield_now().await;
            },
            SimRate::PerSecond(rate) => {
                let mut ticker = tokio::time::interval(self.tick);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut last = Instant::now();
                let mut budget = 0.0;
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            status.ended(SourceState::Stopped);
                            return;
                        }
                        _ = ticker.tick() => {}
                    }
                    let now = Instant::now();
                    // cap catch-up after a stall at one second's worth
                    budget = (budget + rate * (now - last).as_secs_f64()).min(rate.max(1.0));
                    last = now;
                    let mut steps = 0;
                    while budget >= 1.0 {
                        self.step();
                        budget -= 1.0;
                        steps += 1;
                    }
                    if steps > 0 {
                        status.messages(steps);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::book::OrderBook;
    use crate::feed::{Registry, RingLimits};
    use crate::metrics::Metrics;

    fn sim(seed: u64) -> Simulator {
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 100_000,
            max_age_ns: 0,
        }));
        let hub = Arc::new(Hub::new(
            registry,
            "t".into(),
            1024,
            Arc::new(Metrics::default()),
        ));
        Simulator::new(
            hub,
            &SimConfig {
                rate: SimRate::Max,
                tick: Duration::from_millis(10),
                instruments: vec![],
                seed: Some(seed),
                depth: 50,
                payload_bytes: None,
                candles: true,
            },
        )
        .unwrap()
    }

    #[test]
    fn books_stay_full_uncrossed_and_match_the_model() {
        let mut s = sim(7);
        for _ in 0..20_000 {
            s.step();
        }
        for inst in &s.instruments {
            assert_eq!(inst.bids.len(), 50);
            assert_eq!(inst.asks.len(), 50);
            let best_bid = inst.bids.keys().next_back().unwrap();
            let best_ask = inst.asks.keys().next().unwrap();
            assert!(best_bid < best_ask, "book crossed");
            // the hub's book (built from the published events) equals the model
            let pos = s.hub.position(&inst.channels.book);
            let snap = match pos.snapshot.unwrap().message().kind {
                Some(crate::protocol::pb::server_message::Kind::Event(e)) => match e.payload {
                    Some(Payload::BookSnapshot(b)) => b,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            };
            let model = OrderBook::from_snapshot(&inst.snapshot());
            assert_eq!(OrderBook::from_snapshot(&snap), model);
            assert_eq!(snap.checksum, model.checksum());
        }
    }

    #[test]
    fn event_mix_covers_every_stream() {
        let mut s = sim(3);
        for _ in 0..5_000 {
            s.step();
        }
        let inst = &s.instruments[0];
        for ch in [
            &inst.channels.trade,
            &inst.channels.book,
            &inst.channels.ticker,
            &inst.channels.candle,
        ] {
            assert!(ch.seq() > 1, "{} got no events", ch.name);
        }
    }
}
