//! The fanout path: what publishing costs as subscribers grow, what one
//! connection pays to gather its pending events for one write, and channel
//! pattern matching.
//!
//! Guards: publish cost grows only by the cheap per-subscriber doorbell step
//! (ARCHITECTURE.md rule 1); a drain of 64 events is reference-count
//! increments and slice building, no copies (rule 2); matching a channel
//! against 100 patterns is allocation-free.

use std::hint::black_box;
use std::io::IoSlice;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tickwire::feed::{Doorbell, Hub, Registry, RingLimits};
use tickwire::metrics::Metrics;
use tickwire::protocol::Format;
use tickwire::protocol::Pattern;
use tickwire::protocol::pb::{Trade, event::Payload};

fn hub() -> Hub {
    let registry = Arc::new(Registry::new(RingLimits {
        max_messages: 10_000,
        max_age_ns: 0,
    }));
    Hub::new(registry, "bench".into(), 1024, Arc::new(Metrics::default()))
}

fn trade() -> Payload {
    Payload::Trade(Trade {
        price: 65_000.5,
        quantity: 0.012,
        side: 1,
        trade_id: "1234567".into(),
        count: 0,
    })
}

fn bench_publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish_with_subscribers");
    for subscribers in [0usize, 1, 1_000, 10_000] {
        let hub = hub();
        let ch = hub.channel("trade.sim.BTC-USDT").unwrap();
        let bells: Vec<Arc<Doorbell>> = (0..subscribers).map(|_| Doorbell::new()).collect();
        for b in &bells {
            ch.add_subscriber(b);
        }
        // Every subscriber has drained (its doorbell is clear) before each
        // publish: the worst case, where every ring also notifies.
        g.bench_function(format!("{subscribers}"), |b| {
            b.iter_batched(
                || {
                    bells.iter().for_each(|b| {
                        b.clear();
                    })
                },
                |_| hub.publish(&ch, 0, trade()).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn bench_drain(c: &mut Criterion) {
    let hub = hub();
    let metrics = Metrics::default();
    let ch = hub.channel("trade.sim.BTC-USDT").unwrap();
    for _ in 0..1_000 {
        hub.publish(&ch, 0, trade()).unwrap();
    }
    let mut out = Vec::with_capacity(64);
    c.bench_function("drain_64_events_into_one_write", |b| {
        b.iter(|| {
            out.clear();
            ch.ring.read_from(900, 64, &mut out);
            let mut slices = [IoSlice::new(&[]); 64];
            let mut total = 0;
            for (slot, e) in slices.iter_mut().zip(&out) {
                let frame: &[u8] = e.frame(Format::Proto, &metrics);
                total += frame.len();
                *slot = IoSlice::new(frame);
            }
            black_box(&slices);
            total
        })
    });
}

fn bench_patterns(c: &mut Criterion) {
    let patterns: Vec<Pattern> = (0..100)
        .map(|i| match i % 4 {
            0 => Pattern::parse(&format!("trade.sim.INST{i}-USDT")),
            1 => Pattern::parse(&format!("*.venue{i}.*")),
            2 => Pattern::parse(&format!("ticker.*.INST{i}-USDT")),
            _ => Pattern::parse(&format!("book.okx.INST{i}-USDT")),
        })
        .collect::<Result<_, _>>()
        .unwrap();
    c.bench_function("match_channel_against_100_patterns", |b| {
        b.iter(|| {
            patterns
                .iter()
                .filter(|p| p.matches(black_box("book.sim.BTC-USDT")))
                .count()
        })
    });
}

criterion_group!(benches, bench_publish, bench_drain, bench_patterns);
criterion_main!(benches);
