//! The Binance and OKX connectors against mocks that behave as the venues
//! do today (issue 12): OKX's checksum 0 and seqId rules, refused
//! instruments (60018), the REST book snapshot, notice 64008; Binance's
//! 2025-11-12 book procedure, 429 + `Retry-After`, 400 -1121,
//! `serverShutdown`; make-before-break rotation; `status.<venue>.all`.
//! Each mock behaviour names the doc and date it follows (tests/mock).

mod mock;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use mock::MockExchange;
use mock::client::{event_on, failed_with, levels, source_until};
use support::{Client, ContractChecker, Fmt, Server};
use tickwire::feed::book::OrderBook;
use tickwire::protocol::pb::{Event, event::Payload, server_message};

fn server(venue: &str, mock: &MockExchange, symbols: &str, extra: &[&str]) -> Server {
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
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

// ---------------------------------------------------------------- OKX

/// An OKX `books` push. Since 2026-06-23 the checksum is always 0 (notice
/// "Order Book Channels Checksum Field Deprecation", 2026-05-21).
fn okx_book(
    action: &str,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
    prev: i64,
    seq: i64,
) -> String {
    mock::client::okx_book(action, bids, asks, prev, seq, 0)
}

/// The REST book snapshot (`GET /api/v5/market/books`) answers one bid
/// of size 2 at `bid`, one ask 101.0 x 1, at `seq_id`.
fn okx_rest_book(mock: &MockExchange, bid: &str, seq_id: i64) {
    mock.set_rest(
        "/api/v5/market/books",
        200,
        serde_json::json!({"code": "0", "msg": "", "data": [{
            "asks": [["101.0", "1", "0", "1"]], "bids": [[bid, "2", "0", "1"]],
            "ts": "1597026383090", "seqId": seq_id}]})
        .to_string(),
    );
}

fn okx_trade(inst: &str, id: u64) -> String {
    serde_json::json!({
        "arg": {"channel": "trades", "instId": inst},
        "data": [{"instId": inst, "tradeId": id.to_string(), "px": "100.5", "sz": "0.1",
            "side": "buy", "ts": "1700000000000", "count": "3"}]
    })
    .to_string()
}

/// One side of a book: (price, quantity), best first.
type Side = Vec<(f64, f64)>;

/// A client's copy of a book channel, built from its events.
struct ClientBook {
    book: Option<OrderBook>,
}

impl ClientBook {
    fn apply(&mut self, e: &Event) {
        match &e.payload {
            Some(Payload::BookSnapshot(s)) => self.book = Some(OrderBook::from_snapshot(s)),
            Some(Payload::BookUpdate(u)) => self.book.as_mut().expect("snapshot first").apply(u),
            other => panic!("not a book event: {other:?}"),
        }
    }

    fn sides(&self) -> (Side, Side) {
        let b = self.book.as_ref().expect("a book");
        (
            b.bids().map(|l| (l.price, l.quantity)).collect(),
            b.asks().map(|l| (l.price, l.quantity)).collect(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_books_publish_with_checksum_zero_and_a_seq_gap_resyncs_from_rest_without_a_seq_gap() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&[]);
    let server = server("okx", &mock, "BTC-USDT", &[]);
    mock.wait_for("the subscribe", |m| {
        m.received().iter().any(|r| r.contains("books"))
    })
    .await;
    let sub: serde_json::Value = serde_json::from_str(&mock.received()[0]).unwrap();
    assert!(sub["id"].is_string(), "subscribe carries an id: {sub}");

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.okx.BTC-USDT", "trade.okx.BTC-USDT"])
        .await;
    let mut theirs = ClientBook { book: None };

    mock.send(okx_book(
        "snapshot",
        &[("100.1", "1"), ("100.0", "2")],
        &[("100.2", "3")],
        -1,
        10,
    ));
    let snap = event_on(&mut c, "book.okx.BTC-USDT").await;
    theirs.apply(&snap);
    // an update, then OKX's keepalive (prevSeqId == seqId, empty), then a
    // sequence reset (seqId below prevSeqId): all in step
    mock.send(okx_book(
        "update",
        &[("100.1", "0")],
        &[("100.3", "4")],
        10,
        12,
    ));
    mock.send(okx_book("update", &[], &[], 12, 12));
    mock.send(okx_book("update", &[("99.9", "5")], &[], 12, 3));
    let mut last = snap.seq;
    for _ in 0..2 {
        let e = event_on(&mut c, "book.okx.BTC-USDT").await;
        assert_eq!(e.seq, last + 1);
        last = e.seq;
        theirs.apply(&e);
    }
    assert_eq!(
        theirs.sides(),
        (
            vec![(100.0, 2.0), (99.9, 5.0)],
            vec![(100.2, 3.0), (100.3, 4.0)]
        ),
        "the subscriber's book equals the venue's"
    );
    let src = source_until(&server, "state", |s| s["state"] == "connected").await;
    assert_eq!(
        src["resyncs"], 0,
        "checksum 0, keepalive and reset are no breaks: {src}"
    );

    // the trade carries OKX's fill count
    mock.send(okx_trade("BTC-USDT", 500));
    let t = event_on(&mut c, "trade.okx.BTC-USDT").await;
    let Some(Payload::Trade(tr)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!((tr.trade_id.as_str(), tr.count), ("500", 3));

    // a prevSeqId gap: the book is rebuilt from the REST snapshot (no
    // resubscribe), buffered updates straddling it are applied
    okx_rest_book(&mock, "100.5", 40);
    mock.send(okx_book("update", &[("99.0", "1")], &[], 30, 35));
    let resnap = event_on(&mut c, "book.okx.BTC-USDT").await;
    assert_eq!(resnap.seq, last + 1, "no tickwire seq gap over the resync");
    assert!(
        matches!(resnap.payload, Some(Payload::BookSnapshot(_))),
        "{resnap:?}"
    );
    theirs.apply(&resnap);
    assert!(mock.rest_hits("/api/v5/market/books?instId=BTC-USDT&sz=400&source=0") == 1);
    // 35 is older than the snapshot's 40; 45 straddles it (prev 38 <= 40 < 45)
    mock.send(okx_book("update", &[("100.5", "7")], &[], 38, 45));
    let up = event_on(&mut c, "book.okx.BTC-USDT").await;
    assert_eq!(up.seq, resnap.seq + 1);
    theirs.apply(&up);
    assert_eq!(theirs.sides(), (vec![(100.5, 7.0)], vec![(101.0, 1.0)]));
    let subscribes = mock
        .received()
        .iter()
        .filter(|r| r.contains("\"subscribe\""))
        .count();
    assert_eq!(subscribes, 1, "a resync spends no subscribe request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_a_refused_instrument_leaves_the_others_streaming_on_one_connection() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&["FOO-BAR"]);
    let server = server("okx", &mock, "BTC-USDT,FOO-BAR", &[]);
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["trade.okx.BTC-USDT", "status.okx.all"]).await;
    failed_with(&server, "FOO-BAR", "60018").await;
    for id in 1..=20u64 {
        mock.send(okx_trade("BTC-USDT", id));
    }
    for id in 1..=20u64 {
        let e = event_on(&mut c, "trade.okx.BTC-USDT").await;
        let Some(Payload::Trade(t)) = &e.payload else {
            panic!("{e:?}")
        };
        assert_eq!(t.trade_id, id.to_string());
    }
    assert_eq!(mock.connections(), 1, "the session carried on");
    let (_, stats) = server.get_json("/stats").await;
    assert!(
        stats["sources"][0]["failed_instruments"]["FOO-BAR"].is_string(),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_instruments_come_from_public_instruments() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&[]);
    // OKX API v5 docs, "GET / Instruments" (as of 2026-05)
    mock.set_rest(
        "/api/v5/public/instruments?instType=SPOT",
        200,
        serde_json::json!({"code": "0", "msg": "", "data": [
            {"instId": "BTC-USDT", "state": "live", "tickSz": "0.1", "lotSz": "0.0001"},
            {"instId": "OLD-USDT", "state": "suspend", "tickSz": "0.1", "lotSz": "1"}]})
        .to_string(),
    );
    let server = server("okx", &mock, "BTC-USDT,OLD-USDT,NONE-USDT", &[]);
    failed_with(&server, "OLD-USDT", "suspend").await;
    failed_with(&server, "NONE-USDT", "not listed").await;
    mock.wait_for("the subscribe", |m| !m.received().is_empty())
        .await;
    assert_eq!(mock.received().len(), 1, "only BTC-USDT is subscribed");
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.okx.BTC-USDT"]).await;
    mock.send(okx_book(
        "snapshot",
        &[("100.5", "1")],
        &[("101", "2")],
        -1,
        1,
    ));
    let snap = event_on(&mut c, "book.okx.BTC-USDT").await;
    let Some(Payload::BookSnapshot(b)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!((b.price_decimals, b.size_decimals), (1, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_without_a_websocket_snapshot_falls_back_to_the_rest_snapshot() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&[]);
    okx_rest_book(&mock, "100.0", 100);
    let server = server("okx", &mock, "BTC-USDT", &["--snapshot-timeout", "300ms"]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.okx.BTC-USDT"]).await;
    mock.wait_for("the subscribe", |m| !m.received().is_empty())
        .await;
    // no WebSocket snapshot comes; updates do
    mock.send(okx_book("update", &[("99.0", "1")], &[], 90, 98));
    let snap = event_on(&mut c, "book.okx.BTC-USDT").await;
    let Some(Payload::BookSnapshot(b)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!(levels(&b.bids), vec![(100.0, 2.0)], "98 <= 100 was dropped");
    mock.send(okx_book("update", &[("100.0", "3")], &[], 99, 104));
    let up = event_on(&mut c, "book.okx.BTC-USDT").await;
    assert_eq!(up.seq, snap.seq + 1);
    let Some(Payload::BookUpdate(u)) = &up.payload else {
        panic!("{up:?}")
    };
    assert_eq!(levels(&u.bids), vec![(100.0, 3.0)]);
}

// ---------------------------------------------------------------- Binance

fn binance(stream: &str, data: serde_json::Value) -> String {
    serde_json::json!({ "stream": stream, "data": data }).to_string()
}

fn depth(sym: &str, first: u64, last: u64, bids: serde_json::Value) -> String {
    binance(
        &format!("{}@depth@100ms", sym.to_lowercase()),
        serde_json::json!({"e": "depthUpdate", "E": 1_700_000_000_000i64, "s": sym,
            "U": first, "u": last, "b": bids, "a": []}),
    )
}

fn binance_trade(id: u64) -> String {
    binance(
        "btcusdt@trade",
        serde_json::json!({"e": "trade", "E": 1, "s": "BTCUSDT", "t": id, "p": "100.5",
            "q": "1", "T": 1_700_000_000_000i64, "m": false, "M": true}),
    )
}

const SNAPSHOT_100: &str =
    r#"{"lastUpdateId":100,"bids":[["100.0","1"],["99.0","3"]],"asks":[["101.0","2"]]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_makes_one_snapshot_when_the_first_live_diff_straddles_it() {
    let mock = MockExchange::start().await;
    mock.set_rest("/api/v3/depth", 200, SNAPSHOT_100);
    mock.set_weight_header(50);
    let server = server("binance", &mock, "BTCUSDT", &[]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.binance.BTC-USDT"]).await;
    // nothing is fetched before the first diff (2025-11-12 procedure, step 2)
    c.ping().await;
    assert_eq!(mock.rest_hits("/api/v3/depth"), 0);
    mock.send(depth("BTCUSDT", 90, 95, serde_json::json!([])));
    let snap = event_on(&mut c, "book.binance.BTC-USDT").await;
    assert!(matches!(snap.payload, Some(Payload::BookSnapshot(_))));
    // The snapshot (100) landed inside the next diff's range [96, 103]:
    // applied (U <= 101 <= u), no resync. Then the stream goes on.
    mock.send(depth(
        "BTCUSDT",
        96,
        103,
        serde_json::json!([["100.0", "5"]]),
    ));
    mock.send(depth(
        "BTCUSDT",
        104,
        104,
        serde_json::json!([["99.0", "0"]]),
    ));
    let a = event_on(&mut c, "book.binance.BTC-USDT").await;
    let b = event_on(&mut c, "book.binance.BTC-USDT").await;
    assert_eq!((a.seq, b.seq), (snap.seq + 1, snap.seq + 2));
    let Some(Payload::BookUpdate(u)) = &b.payload else {
        panic!("{b:?}")
    };
    assert_eq!(levels(&u.bids), vec![(99.0, 0.0)]);
    let src = source_until(&server, "in step", |s| s["messages_in"].as_u64() >= Some(3)).await;
    assert_eq!(src["resyncs"], 0, "{src}");
    assert_eq!(mock.rest_hits("/api/v3/depth"), 1, "one REST snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_waits_out_retry_after_and_reuses_its_rest_connection() {
    let mock = MockExchange::start().await;
    // Spot API docs, "LIMITS" (2025-11-12): 429 with Retry-After in
    // seconds; going on gets 418, an IP ban, also with Retry-After
    mock.push_rest(
        "/api/v3/depth",
        429,
        &[("Retry-After", "2")],
        r#"{"code":-1003,"msg":"Too many requests; current limit of IP is 6000 requests per minute."}"#,
    );
    mock.push_rest(
        "/api/v3/depth",
        418,
        &[("Retry-After", "1")],
        r#"{"code":-1003,"msg":"Way too many requests; IP banned until 1700000000000."}"#,
    );
    mock.set_rest("/api/v3/depth", 200, SNAPSHOT_100);
    let server = server("binance", &mock, "BTCUSDT", &[]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.binance.BTC-USDT"]).await;
    mock.send(depth("BTCUSDT", 99, 101, serde_json::json!([])));
    let snap = event_on(&mut c, "book.binance.BTC-USDT").await;
    assert!(matches!(snap.payload, Some(Payload::BookSnapshot(_))));
    let times = mock.rest_times("/api/v3/depth");
    assert_eq!(times.len(), 3, "429, 418, then answered");
    assert!(
        times[1] - times[0] >= Duration::from_millis(1990),
        "Retry-After: 2 of the 429 was waited out: {:?}",
        times[1] - times[0]
    );
    assert!(
        times[2] - times[1] >= Duration::from_millis(990),
        "Retry-After: 1 of the 418 was waited out: {:?}",
        times[2] - times[1]
    );
    // metadata, the 429, the 418 and the snapshot over one kept-alive
    // connection, gzipped (the mock compresses when asked)
    assert_eq!(mock.rest_connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_calls_an_invalid_symbols_depth_at_most_once() {
    let mock = MockExchange::start().await;
    mock.set_rest("/api/v3/depth?symbol=BTCUSDT", 200, SNAPSHOT_100);
    // Spot API docs, "Error codes" (2025-11-12): -1121 Invalid symbol, HTTP 400
    mock.set_rest(
        "/api/v3/depth?symbol=FOOUSDT",
        400,
        r#"{"code":-1121,"msg":"Invalid symbol."}"#,
    );
    let server = server("binance", &mock, "BTCUSDT,FOOUSDT", &[]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.binance.BTC-USDT"]).await;
    for i in 0..20u64 {
        mock.send(depth("FOOUSDT", 10 + i, 10 + i, serde_json::json!([])));
    }
    mock.send(depth("BTCUSDT", 99, 101, serde_json::json!([])));
    event_on(&mut c, "book.binance.BTC-USDT").await;
    failed_with(&server, "FOO-USDT", "-1121").await;
    for i in 0..20u64 {
        mock.send(depth("FOOUSDT", 40 + i, 40 + i, serde_json::json!([])));
    }
    mock.send(depth(
        "BTCUSDT",
        102,
        102,
        serde_json::json!([["1.0", "1"]]),
    ));
    event_on(&mut c, "book.binance.BTC-USDT").await; // a barrier after the FOO diffs
    assert_eq!(mock.rest_hits("/api/v3/depth?symbol=FOOUSDT"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_instruments_come_from_exchange_info() {
    let mock = MockExchange::start().await;
    mock.set_rest(
        "/api/v3/exchangeInfo?symbol=BTCUSDT",
        200,
        r#"{"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":[
            {"filterType":"PRICE_FILTER","tickSize":"0.01000000"},
            {"filterType":"LOT_SIZE","stepSize":"0.00001000"}]}]}"#,
    );
    // one invalid symbol refuses the whole list (400 -1121): asked one by one
    mock.set_rest(
        "/api/v3/exchangeInfo?symbols=",
        400,
        r#"{"code":-1121,"msg":"Invalid symbol."}"#,
    );
    mock.set_rest(
        "/api/v3/exchangeInfo?symbol=FOOUSDT",
        400,
        r#"{"code":-1121,"msg":"Invalid symbol."}"#,
    );
    mock.set_rest("/api/v3/depth", 200, SNAPSHOT_100);
    let server = server("binance", &mock, "BTCUSDT,FOOUSDT", &[]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let path = mock.ws_paths()[0].clone();
    assert!(
        path.contains("btcusdt@depth") && !path.contains("foousdt"),
        "{path}"
    );
    let src = source_until(&server, "metadata", |s| s["metadata"].is_string()).await;
    assert!(src["failed_instruments"]["FOO-USDT"].is_string(), "{src}");
    assert_eq!(
        mock.rest_hits("/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22FOOUSDT%22%5D"),
        1
    );
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.binance.BTC-USDT"]).await;
    mock.send(depth("BTCUSDT", 99, 101, serde_json::json!([])));
    let snap = event_on(&mut c, "book.binance.BTC-USDT").await;
    let Some(Payload::BookSnapshot(b)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!(
        (b.price_decimals, b.size_decimals),
        (2, 5),
        "from tick and lot sizes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rest_down_the_stream_runs_and_health_says_so() {
    let mock = MockExchange::start().await;
    // a REST URL nobody listens on
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let ws = mock.ws_url();
    let server = Server::start(&[
        "--source",
        "binance",
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &dead_url,
        "--binance-symbols",
        "BTCUSDT",
    ]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let src = source_until(&server, "metadata noted", |s| s["metadata"].is_string()).await;
    assert!(
        src["metadata"].as_str().unwrap().contains("unavailable"),
        "{src}"
    );
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["trade.binance.BTC-USDT"]).await;
    mock.send(binance_trade(1));
    let t = event_on(&mut c, "trade.binance.BTC-USDT").await;
    assert!(matches!(t.payload, Some(Payload::Trade(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_fills_a_trade_id_gap_over_rest_in_order() {
    let mock = MockExchange::start().await;
    // Spot API docs, "Old trade lookup" (GET /api/v3/historicalTrades,
    // weight 25, fromId), as of 2025-11-12
    mock.set_rest(
        "/api/v3/historicalTrades",
        200,
        serde_json::json!(
            [6, 7, 8].map(|id| serde_json::json!({"id": id, "price": "100.5",
            "qty": "1", "quoteQty": "100.5", "time": 1_700_000_000_000i64,
            "isBuyerMaker": true, "isBestMatch": true}))
        )
        .to_string(),
    );
    mock.pause_rest(true);
    let server = server("binance", &mock, "BTCUSDT", &[]);
    mock.wait_for("the metadata call", |m| {
        m.rest_hits("/api/v3/exchangeInfo") == 1
    })
    .await;
    mock.pause_rest(false);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let sub = c.subscribe(&["trade.binance.BTC-USDT"]).await;
    mock.pause_rest(true); // the gap's answer comes after 9 and 10
    for id in [1, 2, 3, 4, 5, 9] {
        mock.send(binance_trade(id));
    }
    mock.wait_for("the backfill request", |m| {
        m.rest_hits("/api/v3/historicalTrades?symbol=BTCUSDT&fromId=6&limit=3") == 1
    })
    .await;
    mock.send(binance_trade(10));
    let src = source_until(&server, "10 received", |s| {
        s["messages_in"].as_u64() >= Some(7)
    })
    .await;
    assert_eq!(src["trades_backfilled"], 0);
    mock.pause_rest(false);
    all_trades_in_order(&mut c, &sub, "trade.binance.BTC-USDT", 10).await;
    source_until(&server, "counted", |s| s["trades_backfilled"] == 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_book_gone_silent_is_resynced_while_trades_flow() {
    let mock = MockExchange::start().await;
    mock.set_rest("/api/v3/depth", 200, SNAPSHOT_100);
    let server = server("binance", &mock, "BTCUSDT", &["--stale-after", "1s"]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.binance.BTC-USDT", "status.binance.all"])
        .await;
    let (stop, task) = stream_trades(&mock, |id| vec![binance_trade(id)]);
    mock.send(depth("BTCUSDT", 99, 101, serde_json::json!([])));
    let snap = event_on(&mut c, "book.binance.BTC-USDT").await;
    // a busy book: 40 diffs over about 2 s
    for i in 0..40u64 {
        mock.send(depth(
            "BTCUSDT",
            102 + i,
            102 + i,
            serde_json::json!([["100.0", (i + 1).to_string()]]),
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // then silence on the book while trades go on: a new snapshot
    mock.wait_for("a second snapshot", |m| m.rest_hits("/api/v3/depth") == 2)
        .await;
    let (mut seq, mut stale_event) = (snap.seq, None);
    loop {
        let e = c
            .until(|k| match k {
                server_message::Kind::Event(e) if e.channel != "trade.binance.BTC-USDT" => {
                    Some(e.clone())
                }
                _ => None,
            })
            .await;
        if e.channel == "status.binance.all" {
            let v = status_json(&e);
            if v["event"] == "stale" {
                stale_event = Some(v);
            }
            continue;
        }
        assert_eq!(e.seq, seq + 1);
        seq = e.seq;
        if matches!(e.payload, Some(Payload::BookSnapshot(_))) {
            break;
        }
    }
    let stale_event = stale_event.expect("a stale event before the new snapshot");
    assert_eq!(stale_event["instrument"], "BTC-USDT");
    let _ = stop.send(());
    task.await.unwrap();
    let src = source_until(&server, "resync counted", |s| s["resyncs"] == 1).await;
    assert!(
        src["last_error"].as_str().unwrap().contains("silent"),
        "{src}"
    );
    assert_eq!(src["reconnects"], 0, "the connection was not stale: {src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_shards_books_under_30_per_connection() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&[]);
    let symbols: Vec<String> = (0..30).map(|i| format!("C{i}-USDT")).collect();
    let server = server("okx", &mock, &symbols.join(","), &[]);
    mock.wait_for("two connections", |m| m.connected() == 2)
        .await;
    mock.wait_for("30 subscribes", |m| m.received().len() == 30)
        .await;
    let mut books = std::collections::HashSet::new();
    for r in mock.received() {
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        for a in v["args"].as_array().unwrap() {
            if a["channel"] == "books" {
                books.insert(a["instId"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(books.len(), 30, "each instrument's book once");
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["trade.okx.C29-USDT"]).await;
    mock.send(okx_trade("C29-USDT", 1));
    event_on(&mut c, "trade.okx.C29-USDT").await;
    assert_eq!(mock.connections(), 2);
}

// ---------------------------------------------------------------- rotation

/// Streams the messages `make` gives for ids 1.. (a trade with that id,
/// and whatever goes with it) to every connection of `mock` until told to
/// stop, one id every few milliseconds, and returns the last id sent.
fn stream_trades(
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
                _ = tokio::time::sleep(Duration::from_millis(3)) => {}
            }
        }
    });
    (stop, task)
}

/// Reads trade events until `last` arrived, checking seq continuity and
/// that the ids are exactly 1..=last.
async fn all_trades_in_order(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_rotation_and_server_shutdown_are_seamless() {
    let mock = MockExchange::start().await;
    mock.set_rest("/api/v3/depth", 200, SNAPSHOT_100);
    let server = server("binance", &mock, "BTCUSDT", &["--rotate-after", "1s"]);
    mock.wait_for("the stream", |m| m.connected() == 1).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let sub = c
        .subscribe(&[
            "trade.binance.BTC-USDT",
            "book.binance.BTC-USDT",
            "status.binance.all",
        ])
        .await;
    // each trade comes with a depth diff continuing the book (U = u = 100 + id)
    let (stop, task) = stream_trades(&mock, |id| {
        vec![
            binance_trade(id),
            depth(
                "BTCUSDT",
                100 + id,
                100 + id,
                serde_json::json!([["100.0", id.to_string()]]),
            ),
        ]
    });
    // two scheduled rotations, then a serverShutdown on the newest connection
    mock.wait_for("two rotations", |m| m.connections() >= 3)
        .await;
    let n = mock.connections();
    mock.send_to(
        n - 1,
        serde_json::json!({"e": "serverShutdown", "E": 1}).to_string(),
    );
    mock.wait_for("a new connection after serverShutdown", |m| {
        m.connections() > n
    })
    .await;
    mock.wait_for("the old one closed", |m| !m.is_open(n - 1))
        .await;
    let _ = stop.send(());
    let last = task.await.unwrap();
    all_trades_in_order(&mut c, &sub, "trade.binance.BTC-USDT", last).await;
    let src = source_until(&server, "rotations counted", |s| {
        s["rotations"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(src["reconnects"], 0, "rotations are not reconnects: {src}");
    assert_eq!(
        src["resyncs"], 0,
        "the book went on across the seams: {src}"
    );
    assert_eq!(
        mock.rest_hits("/api/v3/depth"),
        1,
        "one snapshot for the whole run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_notice_64008_and_rotation_are_seamless_for_trades_and_books() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&[]);
    let server = server("okx", &mock, "BTC-USDT", &[]);
    mock.wait_for("the subscribe", |m| !m.received().is_empty())
        .await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let sub = c
        .subscribe(&["trade.okx.BTC-USDT", "book.okx.BTC-USDT"])
        .await;
    mock.send(okx_book(
        "snapshot",
        &[("100.0", "1")],
        &[("101.0", "1")],
        -1,
        10,
    ));
    let mut checker = ContractChecker::default();
    checker.subscribed(&sub);
    let snap = event_on(&mut c, "book.okx.BTC-USDT").await;
    checker.observe(&server_message::Kind::Event(snap));
    let (stop, task) = stream_trades(&mock, |id| vec![okx_trade("BTC-USDT", id)]);
    // OKX API v5 docs, "Notification" (64008, service upgrade)
    mock.send_to(
        0,
        serde_json::json!({"event": "notice", "code": "64008",
            "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
            "connId": "mock-1"})
        .to_string(),
    );
    mock.wait_for("a second connection", |m| m.connections() == 2)
        .await;
    // book updates reach both connections; the book goes on in step
    mock.send(okx_book("update", &[("100.0", "2")], &[], 10, 11));
    mock.wait_for("the old connection closed", |m| !m.is_open(0))
        .await;
    mock.send(okx_book("update", &[("100.0", "3")], &[], 11, 12));
    let _ = stop.send(());
    let last = task.await.unwrap();
    let (mut want, mut book_updates) = (1u64, Vec::new());
    while want <= last || book_updates.len() < 2 {
        let kind = c.next_msg().await;
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind {
            match &e.payload {
                Some(Payload::Trade(t)) => {
                    assert_eq!(
                        t.trade_id,
                        want.to_string(),
                        "no duplicate, no missing trade id"
                    );
                    want += 1;
                }
                Some(Payload::BookUpdate(u)) => book_updates.push(levels(&u.bids)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(book_updates, vec![vec![(100.0, 2.0)], vec![(100.0, 3.0)]]);
    let src = source_until(&server, "rotation", |s| s["rotations"] == 1).await;
    assert_eq!(
        (src["resyncs"].as_u64(), src["reconnects"].as_u64()),
        (Some(0), Some(0)),
        "{src}"
    );
}

// ---------------------------------------------------------------- status

/// The `custom.json` of a `status.<venue>.all` event.
fn status_json(e: &Event) -> serde_json::Value {
    let Some(Payload::Custom(c)) = &e.payload else {
        panic!("{e:?}")
    };
    let Some(tickwire::protocol::pb::custom::Body::Json(j)) = &c.body else {
        panic!("{c:?}")
    };
    serde_json::from_str(j).unwrap()
}

/// Reads a status channel, checking its seqs.
struct StatusWatch {
    checker: ContractChecker,
    seen: Vec<serde_json::Value>,
}

impl StatusWatch {
    /// The next status event whose `event` is `want`.
    async fn next(&mut self, c: &mut Client, want: &str) -> serde_json::Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_channel_reports_each_transition() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&["FOO-BAR"]);
    okx_rest_book(&mock, "100.0", 50);
    let server = server(
        "okx",
        &mock,
        "BTC-USDT,FOO-BAR",
        &["--reconnect-min", "100ms", "--reconnect-max", "200ms"],
    );
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    let sub = c.subscribe(&["status.okx.all"]).await;
    assert_eq!(sub.channels[0].channel, "status.okx.all");
    let mut w = StatusWatch {
        checker: ContractChecker::default(),
        seen: Vec::new(),
    };
    w.checker.subscribed(&sub);
    // the snapshot (last state) or the live events that follow it
    let failed = w.next(&mut c, "instrument_failed").await;
    assert_eq!(failed["instrument"], "FOO-BAR");
    assert!(
        failed["failed_instruments"]["FOO-BAR"]
            .as_str()
            .unwrap()
            .contains("60018")
    );
    mock.send(okx_book(
        "snapshot",
        &[("100.0", "1")],
        &[("101.0", "1")],
        -1,
        10,
    ));
    mock.send(okx_book("update", &[], &[], 20, 25)); // a gap
    let r = w.next(&mut c, "resyncing").await;
    assert_eq!(r["instrument"], "BTC-USDT");
    assert!(r["reason"].as_str().unwrap().contains("prevSeqId"), "{r}");
    w.next(&mut c, "book_live").await;
    mock.send_to(
        0,
        serde_json::json!({"event": "notice", "code": "64008", "msg": "upgrade"}).to_string(),
    );
    let rot = w.next(&mut c, "rotating").await;
    assert!(rot["reason"].as_str().unwrap().contains("64008"), "{rot}");
    mock.drop_all();
    let rc = w.next(&mut c, "reconnecting").await;
    assert_eq!(rc["state"], "reconnecting");
    let live = w.next(&mut c, "live").await;
    assert_eq!(live["state"], "live");
    assert!(w.seen.iter().all(|v| v["venue"] == "okx"));
    let events: HashMap<String, usize> = w.seen.iter().fold(HashMap::new(), |mut m, v| {
        *m.entry(v["event"].as_str().unwrap().to_string())
            .or_default() += 1;
        m
    });
    assert!(
        events["resyncing"] >= 1 && events["live"] >= 1,
        "{events:?}"
    );
}
