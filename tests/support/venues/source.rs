//! The tickwire side of a source test: a server for one venue against the
//! mock, and what the test reads from it: events of a channel, the
//! sources' `/health` state and book levels.

use std::time::Duration;

use tickwire::protocol::pb::{Event, Level, event::Payload, server_message};

use super::MockExchange;
use crate::support::{Client, ContractChecker, Server, eventually_within};

/// The next event on `channel` (other messages skipped).
pub async fn event_on(c: &mut Client, channel: &str) -> Event {
    c.until(|k| match k {
        server_message::Kind::Event(e) if e.channel == channel => Some(e.clone()),
        _ => None,
    })
    .await
}

/// The seq of `channel`'s last event, from `/channels`.
pub async fn head_seq(server: &Server, channel: &str) -> u64 {
    let (_, list) = server.get_json("/channels").await;
    list["channels"]
        .as_array()
        .and_then(|cs| cs.iter().find(|ch| ch["channel"] == channel))
        .and_then(|ch| ch["seq"].as_u64())
        .unwrap_or_else(|| panic!("{channel} in /channels: {list}"))
}

/// Polls `/health` until the first source's JSON satisfies `cond`.
pub async fn source_until(
    server: &Server,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    // longer than WAIT: some waits span a reconnect backoff
    let cond = &cond;
    eventually_within(Duration::from_secs(20), what, || async move {
        let (_, health) = server.get_json("/health").await;
        let src = health["sources"][0].clone();
        if cond(&src) {
            Ok(src)
        } else {
            Err(format!("source is {src}"))
        }
    })
    .await
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

/// A `tickwire serve` for one exchange source against `mock`.
pub fn server(venue: &str, mock: &MockExchange, symbols: &str, extra: &[&str]) -> Server {
    let ws = if venue == "okx" {
        format!("{}/ws/v5/public", mock.ws_url())
    } else {
        mock.ws_url()
    };
    let rest = mock.rest_url();
    let ws_flag = format!("--{venue}-ws-url");
    let rest_flag = format!("--{venue}-rest-url");
    let mut args = vec![
        "--source",
        venue,
        &ws_flag,
        &ws,
        &rest_flag,
        &rest,
        "--symbols",
        symbols,
        "--book-depth",
        "5",
        // These tests read the client side after the venue side has run for
        // seconds; the 2 s lag-age bound (issue 19, tested in
        // tests/slow_reader.rs) would rightly call that a slow reader.
        "--max-lag-age",
        "60s",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Streams the messages `make` gives for ids 1.. (a trade with that id,
/// and whatever goes with it) to every connection of `mock` until told to
/// stop, one id every few milliseconds, and returns the last id sent.
pub fn stream_trades(
    mock: &MockExchange,
    make: fn(u64) -> Vec<String>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u64>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let mock = mock.clone();
    let task = tokio::spawn(async move {
        let mut id = 0;
        loop {
            id += 1;
            for m in make(id) {
                mock.send(m);
            }
            tokio::select! {
                _ = &mut stopped => return id,
                // the venue's pacing (the subject of the test), not a wait
                _ = tokio::time::sleep(Duration::from_millis(3)) => {}
            }
        }
    });
    (stop, task)
}

/// Reads trade events until `last` arrived, checking seq continuity and
/// that the ids are exactly 1..=last.
pub async fn all_trades_in_order(
    c: &mut Client,
    sub: &tickwire::protocol::pb::Subscribed,
    channel: &str,
    last: u64,
) {
    let mut checker = ContractChecker::default();
    checker.subscribed(sub);
    let mut want = 1u64;
    while want <= last {
        let kind = c.next_msg().await;
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind
            && e.channel == channel
            && let Some(Payload::Trade(t)) = &e.payload
        {
            assert_eq!(
                t.trade_id,
                want.to_string(),
                "no duplicate, no missing trade id"
            );
            want += 1;
        }
    }
}

/// The `custom.json` of a `status.<venue>.all` event.
pub fn status_json(e: &Event) -> serde_json::Value {
    let Some(Payload::Custom(c)) = &e.payload else {
        panic!("{e:?}")
    };
    let Some(tickwire::protocol::pb::custom::Body::Json(j)) = &c.body else {
        panic!("{c:?}")
    };
    serde_json::from_str(j).unwrap()
}

/// Reads a status channel, checking its seqs.
pub struct StatusWatch {
    pub checker: ContractChecker,
    pub seen: Vec<serde_json::Value>,
}

impl StatusWatch {
    /// The next status event whose `event` is `want`.
    pub async fn next(&mut self, c: &mut Client, want: &str) -> serde_json::Value {
        loop {
            let kind = c.next_msg().await;
            self.checker.observe(&kind);
            if let server_message::Kind::Event(e) = &kind {
                let v = status_json(e);
                self.seen.push(v.clone());
                if v["event"] == want {
                    return v;
                }
            }
        }
    }
}
