//! What the client costs per event on one core, socket aside: decoding a
//! protobuf `ServerMessage` frame and sequencing it (and, for books,
//! applying it and verifying the checksum). Guards the goal of at
//! least 1M events/s decoded on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tickwire_client::{Item, Tracker};
use tickwire_proto::checksum::checksum;
use tickwire_proto::pb::{self, event::Payload, server_message::Kind};

fn frame(channel: &str, seq: u64, payload: Payload) -> Vec<u8> {
    pb::ServerMessage {
        kind: Some(Kind::Event(pb::Event {
            channel: channel.into(),
            seq,
            source_time_ns: 1_765_000_000_000_000_000,
            publish_time_ns: 1_765_000_000_000_100_000,
            payload: Some(payload),
        })),
    }
    .encode_to_vec()
}

fn trades(n: u64) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|seq| {
            frame(
                "trade.sim.BTC-USDT",
                seq,
                Payload::Trade(pb::Trade {
                    price: 64_000.5 + seq as f64,
                    quantity: 0.125,
                    side: pb::Side::Buy as i32,
                    trade_id: format!("{seq}"),
                    count: 0,
                }),
            )
        })
        .collect()
}

/// A 50-level book snapshot then updates that move one level each.
fn book_frames(n: u64) -> Vec<Vec<u8>> {
    let level = |p: f64| pb::Level {
        price: p,
        quantity: 1.5,
    };
    let mut bids: Vec<pb::Level> = (0..50).map(|i| level(64_000.0 - f64::from(i))).collect();
    let mut asks: Vec<pb::Level> = (0..50).map(|i| level(64_001.0 + f64::from(i))).collect();
    let snap = pb::BookSnapshot {
        checksum: checksum(asks.iter().take(10), bids.iter().take(10), 2, 3),
        bids: bids.clone(),
        asks: asks.clone(),
        price_decimals: 2,
        size_decimals: 3,
    };
    let mut out = vec![frame("book.sim.BTC-USDT", 1, Payload::BookSnapshot(snap))];
    for seq in 2..=n {
        let q = 1.0 + (seq % 7) as f64;
        bids[0].quantity = q;
        asks[0].quantity = q;
        let update = pb::BookUpdate {
            bids: vec![bids[0]],
            asks: vec![asks[0]],
            checksum: checksum(asks.iter().take(10), bids.iter().take(10), 2, 3),
        };
        out.push(frame("book.sim.BTC-USDT", seq, Payload::BookUpdate(update)));
    }
    out
}

fn run(frames: &[Vec<u8>], manage_books: bool) -> u64 {
    let mut tracker = Tracker::new(manage_books);
    let mut items: Vec<Item> = Vec::with_capacity(4);
    let mut events = 0;
    for f in frames {
        let msg = pb::ServerMessage::decode(f.as_slice()).expect("valid frame");
        tracker.handle(msg, &mut items);
        events += items.len() as u64;
        items.clear();
    }
    events
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_decode");
    let t = trades(10_000);
    group.throughput(Throughput::Elements(t.len() as u64));
    group.bench_function("trades_10k", |b| b.iter(|| run(&t, false)));
    let books = book_frames(10_000);
    group.throughput(Throughput::Elements(books.len() as u64));
    group.bench_function("book_updates_10k_verified", |b| {
        b.iter(|| run(&books, true))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
