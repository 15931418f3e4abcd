//! Publishing at full rings: the ingest path's steady state, where every
//! publish evicts (and reuses) the channel's oldest event. With 64 channels
//! of 10 000 events the rings far exceed the caches, as at real ingest
//! rates. It showed no gain from the ring's prefetch of the next evictions
//! (an `unsafe` hint) where the whole server's ingest showed ~25 %: this
//! bench's memory is warmer than the server's (BENCHMARKS.md, "Ring prefetch
//! re-measured").

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tickwire::feed::{Hub, Registry, RingLimits};
use tickwire::metrics::Metrics;
use tickwire::protocol::pb::{Trade, event::Payload};

const CHANNELS: usize = 64;
const RING: usize = 10_000;

fn trade(i: u64) -> Payload {
    Payload::Trade(Trade {
        price: 65_000.5 + i as f64,
        quantity: 0.012,
        side: 1,
        trade_id: i.to_string(),
        count: 0,
    })
}

fn bench_full_rings(c: &mut Criterion) {
    let registry = Arc::new(Registry::new(RingLimits {
        max_messages: RING,
        max_age_ns: 0,
    }));
    let hub = Hub::new(registry, "bench".into(), 1024, Arc::new(Metrics::default()));
    let channels: Vec<_> = (0..CHANNELS)
        .map(|i| {
            hub.registry()
                .get_or_create(&format!("trade.sim.C{i}-USDT"))
                .expect("a valid name")
        })
        .collect();
    let mut i = 0u64;
    // fill every ring: from here on each publish evicts
    for _ in 0..RING {
        for ch in &channels {
            hub.publish(ch, 0, trade(i)).expect("a trade");
            i += 1;
        }
    }
    let mut g = c.benchmark_group("publish_at_full_rings");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function(format!("{CHANNELS}x{RING}"), |b| {
        b.iter(|| {
            let ch = &channels[(i as usize) % CHANNELS];
            i += 1;
            black_box(hub.publish(ch, 0, trade(i)).expect("a trade"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_full_rings);
criterion_main!(benches);
