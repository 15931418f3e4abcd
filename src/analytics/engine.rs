//! The analytics engine: one task that follows every trade the hub
//! publishes (from any source) and publishes candles, signals and
//! sentiment back through the hub as ordinary channels.
//!
//! The hub hands trades over through a bounded queue ([`TradeTap`], defined by the feed) with
//! `try_send`, so the publish path never waits for analytics; if the
//! engine falls behind, trades are dropped from analytics (counted in
//! `/stats` as `analytics_dropped`), never from the feed.
//!
//! Open candles are published at most every [`FLUSH`] per channel
//! (coalescing the trades in between); a candle's close is published at
//! once with `closed = true`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Settings;
use super::board::{Board, InstrumentView};
use super::candles::CandleBuilder;
use super::indicators::{Bar, IndicatorSet};
use super::sentiment::{PriceWindow, SentimentIndex};
use super::signals::{Inputs, SignalRule};
use crate::feed::{Channel, Hub, TappedTrade, TradeTap};
use crate::protocol::now_ns;
use crate::protocol::pb::{Candle, Signal, event::Payload};

/// How often open candles are republished and boundaries checked.
pub const FLUSH: Duration = Duration::from_millis(100);
/// Trades queued between the hub and the engine.
const QUEUE: usize = 65_536;

struct Interval {
    builder: CandleBuilder,
    channel: Option<Arc<Channel>>,
    dirty: bool,
}

struct InstrumentState {
    venue: String,
    name: String,
    /// Published intervals, then (if not among them) the signal interval.
    intervals: Vec<Interval>,
    signal_at: usize,
    indicators: IndicatorSet,
    rule: SignalRule,
    signal: Arc<Channel>,
    first_price: f64,
    last_price: f64,
    window_start: f64,
    window_volume: f64,
}

/// The engine task's state.
pub struct Engine {
    hub: Arc<Hub>,
    cfg: Settings,
    rx: mpsc::Receiver<TappedTrade>,
    board: Arc<Board>,
    instruments: HashMap<Arc<str>, InstrumentState>,
    sentiment: BTreeMap<String, (SentimentIndex, Option<Arc<Channel>>)>,
    closed: Vec<Candle>,
}

/// Creates the queue and the engine; the tap goes to the hub.
pub fn new(hub: Arc<Hub>, cfg: Settings) -> (Arc<TradeTap>, Engine, Arc<Board>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let board = Arc::new(Board::default());
    let tap = Arc::new(TradeTap::new(tx));
    let engine = Engine {
        hub,
        cfg,
        rx,
        board: board.clone(),
        instruments: HashMap::new(),
        sentiment: BTreeMap::new(),
        closed: Vec::new(),
    };
    (tap, engine, board)
}

impl Engine {
    /// Runs until shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut flush = tokio::time::interval(FLUSH);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sentiment =
            tokio::time::interval(self.cfg.sentiment_interval.max(Duration::from_millis(100)));
        sentiment.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        sentiment.tick().await;
        let mut batch = Vec::with_capacity(1024);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                n = self.rx.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        return;
                    }
                    let wall = now_ns();
                    for t in batch.drain(..) {
                        self.trade(t, wall);
                    }
                }
                _ = flush.tick() => self.flush(),
                _ = sentiment.tick() => self.sentiment(),
            }
        }
    }

    /// Sets up the state of a trade channel's instrument on its first trade;
    /// false for a name that is not `trade.<venue>.<instrument>`.
    fn ensure_instrument(&mut self, channel: &Arc<str>) -> bool {
        if !self.instruments.contains_key(channel) {
            let mut parts = channel.splitn(3, '.');
            let (Some(_), Some(venue), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let ch = |stream: &str| self.hub.channel(&format!("{stream}.{venue}.{name}")).ok();
            let mut intervals: Vec<Interval> = self
                .cfg
                .candle_intervals
                .iter()
                .map(|i| Interval {
                    builder: CandleBuilder::new(i.label(), i.ns()),
                    channel: ch(&format!("candle{i}")),
                    dirty: false,
                })
                .collect();
            let signal_at = match intervals
                .iter()
                .position(|i| i.builder.label() == self.cfg.signal_interval.label())
            {
                Some(i) => i,
                None => {
                    let signal = &self.cfg.signal_interval;
                    intervals.push(Interval {
                        builder: CandleBuilder::new(signal.label(), signal.ns()),
                        channel: None,
                        dirty: false,
                    });
                    intervals.len() - 1
                }
            };
            let Some(signal) = ch("signal") else {
                return false;
            };
            self.sentiment.entry(venue.to_string()).or_insert_with(|| {
                let ch = self.hub.channel(&format!("sentiment.{venue}.market")).ok();
                (SentimentIndex::default(), ch)
            });
            self.instruments.insert(
                channel.clone(),
                InstrumentState {
                    venue: venue.to_string(),
                    name: name.to_string(),
                    intervals,
                    signal_at,
                    indicators: IndicatorSet::new(),
                    rule: SignalRule::default(),
                    signal,
                    first_price: 0.0,
                    last_price: 0.0,
                    window_start: 0.0,
                    window_volume: 0.0,
                },
            );
        }
        true
    }

    fn trade(&mut self, t: TappedTrade, wall: i64) {
        if !self.ensure_instrument(&t.channel) {
            return;
        }
        let mut closed = std::mem::take(&mut self.closed);
        let Some(inst) = self.instruments.get_mut(&t.channel) else {
            return;
        };
        if inst.first_price == 0.0 {
            inst.first_price = t.price;
            inst.window_start = t.price;
        }
        inst.last_price = t.price;
        inst.window_volume += t.quantity;
        let mut signal_closes = Vec::new();
        for (i, iv) in inst.intervals.iter_mut().enumerate() {
            iv.builder
                .trade(t.time_ns, wall, t.price, t.quantity, &mut closed);
            iv.dirty = true;
            Self::publish_closed(
                &self.hub,
                iv,
                &mut closed,
                i == inst.signal_at,
                &mut signal_closes,
            );
        }
        self.closed = closed;
        for c in signal_closes {
            self.on_signal_close(&t.channel, &c);
        }
    }

    /// Publishes closed candles of `iv`, collecting those of the signal interval.
    fn publish_closed(
        hub: &Hub,
        iv: &Interval,
        closed: &mut Vec<Candle>,
        is_signal: bool,
        signal_closes: &mut Vec<Candle>,
    ) {
        for c in closed.drain(..) {
            if let Some(ch) = &iv.channel {
                hub.publish_or_log(ch, c.open_time_ns, Payload::Candle(c.clone()));
            }
            if is_signal {
                signal_closes.push(c);
            }
        }
    }

    fn on_signal_close(&mut self, key: &Arc<str>, c: &Candle) {
        let Some(inst) = self.instruments.get_mut(key) else {
            return;
        };
        inst.indicators.update(&Bar {
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
        });
        let values = inst.indicators.values();
        let d = inst.rule.decide(&Inputs::from_values(&values));
        let signal = Signal {
            action: d.action as i32,
            strength: d.strength,
            reason: d.reason,
            interval: self.cfg.signal_interval.label().to_string(),
            indicators: values.to_map().into_iter().collect(),
        };
        self.hub
            .publish_or_log(&inst.signal, now_ns(), Payload::Signal(signal));
        let change_pct = if inst.first_price > 0.0 {
            (inst.last_price / inst.first_price - 1.0) * 100.0
        } else {
            0.0
        };
        self.board.set(
            &inst.venue,
            &inst.name,
            InstrumentView {
                values,
                bars: inst.indicators.bars(),
                change_pct,
                signal_score: d.score,
            },
        );
    }

    /// Republishes touched open candles and closes those past their end.
    fn flush(&mut self) {
        let wall = now_ns();
        let mut closed = std::mem::take(&mut self.closed);
        let mut signal_closes = Vec::new();
        for (key, inst) in &mut self.instruments {
            for (i, iv) in inst.intervals.iter_mut().enumerate() {
                iv.builder.tick(wall, &mut closed);
                if !closed.is_empty() {
                    iv.dirty = false;
                    let mut mine = Vec::new();
                    Self::publish_closed(
                        &self.hub,
                        iv,
                        &mut closed,
                        i == inst.signal_at,
                        &mut mine,
                    );
                    signal_closes.extend(mine.into_iter().map(|c| (key.clone(), c)));
                    continue;
                }
                if iv.dirty
                    && let (Some(ch), Some(c)) = (&iv.channel, iv.builder.current())
                {
                    self.hub
                        .publish_or_log(ch, c.open_time_ns, Payload::Candle(c.clone()));
                }
                iv.dirty = false;
            }
        }
        self.closed = closed;
        for (key, c) in signal_closes {
            self.on_signal_close(&key, &c);
        }
    }

    fn sentiment(&mut self) {
        let mut windows: BTreeMap<&str, Vec<PriceWindow>> = BTreeMap::new();
        for inst in self.instruments.values_mut() {
            windows
                .entry(inst.venue.as_str())
                .or_default()
                .push(PriceWindow {
                    start: inst.window_start,
                    end: inst.last_price,
                    volume: inst.window_volume,
                });
            inst.window_start = inst.last_price;
            inst.window_volume = 0.0;
        }
        for (venue, w) in windows {
            if let Some((index, Some(ch))) = self.sentiment.get_mut(venue) {
                let s = index.update(&w, w.len());
                self.hub.publish_or_log(ch, now_ns(), Payload::Sentiment(s));
            }
        }
    }
}
