//! What the source tests read from tickwire: events of a channel, the
//! sources' `/health` state and book levels.

use std::time::{Duration, Instant};

use tickwire::protocol::pb::{Event, Level, server_message};

use crate::support::{Client, Server};

/// The next event on `channel` (other messages skipped).
pub async fn event_on(c: &mut Client, channel: &str) -> Event {
    c.until(|k| match k {
        server_message::Kind::Event(e) if e.channel == channel => Some(e.clone()),
        _ => None,
    })
    .await
}

/// Polls `/health` until the first source's JSON satisfies `cond`.
pub async fn source_until(
    server: &Server,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, health) = server.get_json("/health").await;
        let src = health["sources"][0].clone();
        if cond(&src) {
            return src;
        }
        assert!(Instant::now() < deadline, "{what}: source is {src}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Levels as (price, quantity) pairs.
pub fn levels(v: &[Level]) -> Vec<(f64, f64)> {
    v.iter().map(|l| (l.price, l.quantity)).collect()
}

/// An OKX `books` push for BTC-USDT (OKX API v5 docs, "Order book
/// channel"): levels are `[px, sz, "0", orders]`.
pub fn okx_book(
    action: &str,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
    prev: i64,
    seq: i64,
    checksum: i32,
) -> String {
    fn lv(v: &[(&str, &str)]) -> Vec<[String; 4]> {
        v.iter()
            .map(|(p, s)| [p.to_string(), s.to_string(), "0".into(), "1".into()])
            .collect()
    }
    serde_json::json!({
        "arg": {"channel": "books", "instId": "BTC-USDT"},
        "action": action,
        "data": [{"asks": lv(asks), "bids": lv(bids), "ts": "1597026383085",
                  "checksum": checksum, "prevSeqId": prev, "seqId": seq}]
    })
    .to_string()
}

/// Polls `/health` until `instrument` is marked failed, and checks that
/// the reason names the venue's `code`.
pub async fn failed_with(server: &Server, instrument: &str, code: &str) -> serde_json::Value {
    let src = source_until(server, &format!("{instrument} failed"), |s| {
        s["failed_instruments"][instrument].is_string()
    })
    .await;
    let why = src["failed_instruments"][instrument]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains(code), "{instrument}: {why}");
    src
}
