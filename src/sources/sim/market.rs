//! One simulated instrument: the mid price's mean-reverting random walk,
//! the L2 book on its price grid, trades at the touch, the 24h ticker and
//! the 1 m candle. The [`super::Simulator`] picks which instrument moves.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;
use rand::rngs::SmallRng;

use super::{SimConfig, VENUE};
use crate::feed::{Channel, Hub};
use crate::protocol::now_ns;
use crate::protocol::pb::{
    BookSnapshot, BookUpdate, Candle, Level, Side, Ticker, Trade, event::Payload,
};

/// Length of the simulator's own candles (1 m).
const CANDLE_INTERVAL_NS: i64 = 60_000_000_000;

pub(super) fn gaussian(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub(super) struct Channels {
    pub(super) custom: Option<Arc<Channel>>,
    pub(super) trade: Arc<Channel>,
    pub(super) ticker: Arc<Channel>,
    pub(super) book: Arc<Channel>,
    pub(super) candle: Arc<Channel>,
}

pub(super) struct OpenCandle {
    pub(super) open_time_ns: i64,
    pub(super) open: f64,
    pub(super) high: f64,
    pub(super) low: f64,
    pub(super) close: f64,
    pub(super) volume: f64,
    pub(super) trades: u32,
}

pub(super) struct SimInstrument {
    pub(super) channels: Channels,
    pub(super) mid: f64,
    pub(super) anchor: f64,
    pub(super) tick: f64,
    pub(super) step_ticks: i64,
    pub(super) price_decimals: u32,
    pub(super) size_decimals: u32,
    pub(super) base_qty: f64,
    pub(super) depth: usize,
    pub(super) bids: BTreeMap<i64, f64>,
    pub(super) asks: BTreeMap<i64, f64>,
    pub(super) last: f64,
    pub(super) open_24h: f64,
    pub(super) high_24h: f64,
    pub(super) low_24h: f64,
    pub(super) volume_24h: f64,
    pub(super) quote_volume_24h: f64,
    pub(super) candle: OpenCandle,
    pub(super) next_trade_id: u64,
}

/// `10^d` by table lookup (`powi` showed up in the ingest profile).
pub(super) fn pow10(d: u32) -> f64 {
    const TABLE: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    TABLE
        .get(d as usize)
        .copied()
        .unwrap_or_else(|| 10f64.powi(d as i32))
}

pub(super) fn round_to(value: f64, decimals: u32) -> f64 {
    let scale = pow10(decimals);
    (value * scale).round() / scale
}

impl SimInstrument {
    pub(super) fn new(
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

    pub(super) fn random_qty(&self, rng: &mut SmallRng) -> f64 {
        let q = self.base_qty * rng.random_range(0.1..5.0);
        round_to(q, self.size_decimals).max(1.0 / pow10(self.size_decimals))
    }

    pub(super) fn price(&self, ticks: i64) -> f64 {
        round_to(ticks as f64 * self.tick, self.price_decimals)
    }

    /// Best bid and best ask grid prices (in ticks) for the current mid;
    /// the book holds `depth` grid levels below and above them.
    pub(super) fn grid(&self) -> (i64, i64) {
        let step = self.step_ticks;
        let best_bid = (self.mid / self.tick / step as f64).floor() as i64 * step;
        (best_bid, best_bid + step)
    }

    /// Inclusive tick range of a side's `depth` grid levels from `best`.
    pub(super) fn side_range(&self, best: i64, bid: bool) -> (i64, i64) {
        let far = best + (self.depth as i64 - 1) * self.step_ticks * if bid { -1 } else { 1 };
        if bid { (far, best) } else { (best, far) }
    }

    pub(super) fn walk(&mut self, rng: &mut SmallRng) {
        let shock = 0.00008 * gaussian(rng);
        let reversion = 0.0005 * (self.anchor - self.mid) / self.anchor;
        self.mid *= (shock + reversion).exp();
    }

    pub(super) fn best(&self, side: Side) -> (f64, f64) {
        let level = match side {
            Side::Buy => self.asks.iter().next(),
            _ => self.bids.iter().next_back(),
        };
        level.map_or((self.mid, 0.0), |(p, q)| (self.price(*p), *q))
    }

    pub(super) fn snapshot(&self) -> BookSnapshot {
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
    pub(super) fn book_update(&mut self, rng: &mut SmallRng) -> BookUpdate {
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
    pub(super) fn follow_grid(
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
    pub(super) fn churn(
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

    pub(super) fn trade(&mut self, rng: &mut SmallRng, now: i64) -> Trade {
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

    pub(super) fn ticker(&self) -> Ticker {
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

    pub(super) fn candle(&self, closed: bool) -> Candle {
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
    pub(super) fn roll_candle(&mut self, now: i64) -> Option<Candle> {
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
pub(super) fn large_payload(inst: &SimInstrument, bytes: usize, rng: &mut SmallRng) -> Payload {
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
