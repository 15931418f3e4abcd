//! The fanout path: what publishing costs as subscribers grow, what one
//! connection pays to read its pending events from the ring and write them
//! (the server's own writer, `tickwire::server::writer::write_batch`), and
//! channel pattern matching.
//!
//! Guards: publish cost grows only by the cheap per-subscriber doorbell step
//! (docs/architecture.md, the hot path); encoding happens once, whatever
//! the number of subscribers; a drain of 64 events is reference-count
//! increments, slice building and one vectored write, no copies; matching a
//! channel against 100 patterns is allocation-free.

use std::future::Future;
use std::hint::black_box;
use std::io::IoSlice;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tickwire::feed::{Doorbell, Hub, Registry, RingLimits};
use tickwire::metrics::Metrics;
use tickwire::protocol::Format;
use tickwire::protocol::Pattern;
use tickwire::protocol::pb::{Trade, event::Payload};
use tickwire::server::session::Outbound;
use tickwire::server::writer::write_batch;
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

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
        let arms: Vec<_> = bells.iter().map(|b| ch.add_subscriber(b)).collect();
        // Every subscriber has drained and armed again before each
        // publish: the worst case, where every subscriber is woken.
        g.bench_function(format!("{subscribers}"), |b| {
            b.iter_batched(
                || {
                    for (bell, arm) in bells.iter().zip(&arms) {
                        bell.clear();
                        ch.rearm(arm);
                    }
                },
                |_| hub.publish(&ch, 0, trade()).unwrap(),
                // one setup right before each publish: with batches, every
                // setup of a batch ran before its publishes, and all but
                // the first publish found nobody armed
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    // The subscribers are all awake (woken by an earlier event and not yet
    // armed again): the armed list is empty, so publishing wakes nobody
    // and costs what it costs with no subscriber (issue 16).
    let mut g = c.benchmark_group("publish_to_awake_subscribers");
    let hub = hub();
    let ch = hub.channel("trade.sim.BTC-USDT").unwrap();
    let bells: Vec<Arc<Doorbell>> = (0..10_000).map(|_| Doorbell::new()).collect();
    for b in &bells {
        ch.add_subscriber(b);
    }
    hub.publish(&ch, 0, trade()).unwrap();
    g.bench_function("10000", |b| {
        b.iter(|| hub.publish(&ch, 0, trade()).unwrap())
    });
    g.finish();
}

/// A socket with room for everything: each vectored write takes all the
/// bytes offered, so what is measured is the writer's own work.
struct RoomySocket {
    bytes: u64,
}

impl AsyncWrite for RoomySocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.bytes += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.bytes += n as u64;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn bench_drain(c: &mut Criterion) {
    let hub = hub();
    let metrics = Metrics::default();
    let ch = hub.channel("trade.sim.BTC-USDT").unwrap();
    for _ in 0..1_000 {
        hub.publish(&ch, 0, trade()).unwrap();
    }
    let token = CancellationToken::new();
    let mut shutdown = pin!(token.cancelled());
    let mut socket = RoomySocket { bytes: 0 };
    let mut events = Vec::with_capacity(64);
    let mut batch = Vec::with_capacity(64);
    let mut cx = Context::from_waker(Waker::noop());
    c.bench_function("drain_64_events_into_one_write", |b| {
        b.iter(|| {
            events.clear();
            batch.clear();
            ch.ring.read_from(900, 64, &mut events);
            batch.extend(events.drain(..).map(Outbound::Event));
            let write = write_batch(
                &mut socket,
                &batch,
                Format::Proto,
                &metrics,
                Duration::from_secs(10),
                shutdown.as_mut(),
            );
            // the socket always has room, so the write never waits
            match pin!(write).poll(&mut cx) {
                Poll::Ready(Ok(written)) => black_box(written.bytes),
                Poll::Ready(Err(_)) | Poll::Pending => panic!("the roomy socket took no bytes"),
            }
        })
    });
    assert!(socket.bytes > 0);
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
