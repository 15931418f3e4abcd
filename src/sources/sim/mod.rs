//! The built-in market simulator: the default source.
//!
//! Each instrument has a mid price on a mean-reverting random walk, an L2
//! book of `depth` levels a side on a fixed price grid around the mid (levels
//! cross sides as the mid moves, deep levels appear and vanish, quantities
//! churn near the top), trades that hit the best bid or lift the best ask,
//! 24h ticker statistics and a 1m candle. Events are spread over the
//! instruments at `--sim-rate` events/s in total (trades 40%, book updates
//! 45%, tickers 10%, candle updates 5%, plus a closed candle at each minute).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

mod market;

use super::status::{SourceState, SourceStatus};
use crate::feed::Hub;
use crate::protocol::now_ns;
use crate::protocol::pb::event::Payload;
use market::{SimInstrument, large_payload};

/// How fast the simulator publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimRate {
    /// About this many events per second in total.
    PerSecond(f64),
    /// As fast as one task can publish.
    Max,
}

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

/// The simulator: instruments and the random source driving them.
pub struct Simulator {
    hub: Arc<Hub>,
    instruments: Vec<SimInstrument>,
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
            instruments.push(SimInstrument::new(
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
            sim.hub.publish_or_log(
                &inst.channels.book,
                now,
                Payload::BookSnapshot(inst.snapshot()),
            );
            sim.hub
                .publish_or_log(&inst.channels.ticker, now, Payload::Ticker(inst.ticker()));
            if sim.candles {
                sim.hub.publish_or_log(
                    &inst.channels.candle,
                    now,
                    Payload::Candle(inst.candle(false)),
                );
            }
        }
        Ok(sim)
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
            self.hub.publish_or_log(&ch, now, Payload::Candle(closed));
        }
        let inst = &mut self.instruments[i];
        if let (Some(bytes), Some(channel)) = (self.payload_bytes, inst.channels.custom.clone()) {
            let payload = large_payload(inst, bytes, &mut self.rng);
            self.hub.publish_or_log(&channel, now, payload);
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
        self.hub.publish_or_log(&channel, now, payload);
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
