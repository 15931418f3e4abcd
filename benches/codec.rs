//! Encode-once costs: what the hub pays per published event (never per
//! client). Guards: protobuf encode of each payload kind stays in the
//! sub-microsecond range; JSON rendering (paid once per event when a JSON
//! client exists) and gzip of a 50-level book (paid once per snapshot) do not
//! regress.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tickwire::feed::book::OrderBook;
use tickwire::protocol::codec::{encode_proto, gzip, json_frame, render_json};
use tickwire::protocol::pb::{
    BookSnapshot, BookUpdate, Candle, Custom, Event, Level, Sentiment, ServerMessage, Signal,
    Ticker, Trade, custom, event::Payload, server_message::Kind,
};

fn book(levels: usize) -> BookSnapshot {
    let lv = |i: usize, side: f64| Level {
        price: 65_000.0 + side * (i as f64 * 6.5 + 0.5),
        quantity: 0.12345 + i as f64 * 0.01,
    };
    let mut snap = BookSnapshot {
        bids: (0..levels).map(|i| lv(i, -1.0)).collect(),
        asks: (0..levels).map(|i| lv(i, 1.0)).collect(),
        checksum: 0,
        price_decimals: 2,
        size_decimals: 5,
    };
    snap.checksum = OrderBook::from_snapshot(&snap).checksum();
    snap
}

fn event(payload: Payload) -> ServerMessage {
    ServerMessage {
        kind: Some(Kind::Event(Event {
            channel: "book.sim.BTC-USDT".into(),
            seq: 123_456,
            source_time_ns: 1_795_000_000_000_000_000,
            publish_time_ns: 1_795_000_000_000_100_000,
            payload: Some(payload),
        })),
    }
}

fn payloads() -> Vec<(&'static str, ServerMessage)> {
    let lv = |p: f64| Level {
        price: p,
        quantity: 1.25,
    };
    vec![
        (
            "trade",
            event(Payload::Trade(Trade {
                price: 65_000.5,
                quantity: 0.012,
                side: 1,
                trade_id: "1234567".into(),
                count: 0,
            })),
        ),
        (
            "ticker",
            event(Payload::Ticker(Ticker {
                last: 65_000.5,
                bid: 65_000.0,
                bid_size: 1.0,
                ask: 65_001.0,
                ask_size: 2.0,
                open_24h: 64_000.0,
                high_24h: 66_000.0,
                low_24h: 63_000.0,
                change_pct_24h: 1.56,
                volume_24h: 12_345.6,
                quote_volume_24h: 8.1e8,
            })),
        ),
        (
            "book_update",
            event(Payload::BookUpdate(BookUpdate {
                bids: vec![lv(64_999.5), lv(64_990.0)],
                asks: vec![lv(65_001.0)],
                checksum: 42,
            })),
        ),
        ("book_snapshot_50", event(Payload::BookSnapshot(book(50)))),
        (
            "candle",
            event(Payload::Candle(Candle {
                interval: "1m".into(),
                open_time_ns: 1,
                open: 1.0,
                high: 2.0,
                low: 0.5,
                close: 1.5,
                volume: 100.0,
                closed: false,
                trades: 10,
            })),
        ),
        (
            "signal",
            event(Payload::Signal(Signal {
                action: 4,
                strength: 0.7,
                reason: "RSI 28 and MACD cross up".into(),
                interval: "1m".into(),
                indicators: [("rsi14".to_string(), 28.0), ("macd".to_string(), 1.2)].into(),
            })),
        ),
        (
            "sentiment",
            event(Payload::Sentiment(Sentiment {
                fear_greed: 61.0,
                mood: 3,
                confidence: 0.8,
                advancing: 8,
                declining: 4,
                unchanged: 0,
            })),
        ),
        (
            "custom",
            event(Payload::Custom(Custom {
                body: Some(custom::Body::Json("{\"hello\":\"world\"}".into())),
            })),
        ),
    ]
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_proto");
    for (name, msg) in payloads() {
        // threshold 0: the plain encode, gzip measured separately below
        g.bench_function(name, |b| b.iter(|| encode_proto(black_box(&msg), 0)));
    }
    g.finish();

    let mut g = c.benchmark_group("render_json");
    for (name, msg) in payloads() {
        g.bench_function(name, |b| {
            b.iter(|| json_frame(&render_json(black_box(&msg)), 0))
        });
    }
    g.finish();

    let snapshot = event(Payload::BookSnapshot(book(50)));
    let encoded = encode_proto(&snapshot, 0).payload().to_vec();
    c.bench_function("gzip/book_snapshot_50_levels", |b| {
        b.iter(|| gzip(black_box(&encoded)))
    });
    c.bench_function("checksum/book_50_levels", |b| {
        let book = OrderBook::from_snapshot(&book(50));
        b.iter(|| black_box(&book).checksum())
    });
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
