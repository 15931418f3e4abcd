//! The Binance connector against a mock that behaves as Binance does
//! today (issue 12): the 2025-11-12 local-book procedure, 429 / 418 with
//! `Retry-After`, 400 -1121, `exchangeInfo`, trade-id backfill, per-book
//! staleness, `serverShutdown` and 24 h rotation make-before-break. Each
//! mock behaviour names the doc and date it follows (tests/support/venues).

mod support;

use support::venues;

use std::time::Duration;

use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{event::Payload, server_message};
use venues::MockExchange;
use venues::source::{
    all_trades_in_order, event_on, failed_with, levels, server, source_until, status_json,
    stream_trades,
};

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
    assert_eq!(mock.rest_gzipped(), 4, "every answer came gzipped");
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
        // the venue's pace (a busy book over about 2 s), not a wait
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
async fn binance_shards_streams_within_1024_per_connection() {
    let mock = MockExchange::start().await;
    // 342 symbols take 1026 streams: one connection over Binance's 1024
    let symbols: Vec<String> = (0..342).map(|i| format!("S{i}USDT")).collect();
    let _server = server("binance", &mock, &symbols.join(","), &[]);
    mock.wait_for("two connections", |m| m.connected() == 2)
        .await;
    let streams: Vec<usize> = mock
        .ws_paths()
        .iter()
        .map(|p| {
            p.split("streams=")
                .nth(1)
                .unwrap_or_default()
                .split('/')
                .count()
        })
        .collect();
    assert_eq!(streams.iter().sum::<usize>(), 342 * 3);
    assert!(streams.iter().all(|&n| n <= 1024), "{streams:?}");
}

/// The weight budget (Spot API docs, "LIMITS", as of 2025-11-12: 6000 per
/// minute per IP, the venue's count in `X-MBX-USED-WEIGHT-1M`). When the
/// venue reports the budget nearly spent, a call that would overspend it
/// waits for the window to roll over, while a call that still fits goes at
/// once. The rule is the client's constructor parameter, so the test uses a
/// 100-weight, 3 s window instead of 6000 per minute; it asserts the order
/// in which the calls reach the venue, never a duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_waits_for_the_next_weight_window_when_the_venue_reports_it_spent() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use tickwire::sources::rest::{BudgetRule, RestClient};

    let mock = MockExchange::start().await;
    mock.set_rest("/api/v3/depth", 200, SNAPSHOT_100);
    mock.set_weight_header(95);
    let rule = BudgetRule {
        limit: 100,
        window: Duration::from_secs(3),
        used_header: Some("x-mbx-used-weight-1m"),
    };
    let rest = RestClient::new("binance", &mock.rest_url(), Duration::from_secs(10), rule);
    let first = "/api/v3/depth?symbol=BTCUSDT&limit=5";
    let heavy_path = "/api/v3/depth?symbol=BTCUSDT&limit=1000";
    let light = "/api/v3/depth?symbol=ETHUSDT&limit=5";
    rest.get(first, 1).await.expect("the first call");
    // the venue says 95 of 100 are used: weight 10 does not fit
    let mut heavy = std::pin::pin!(rest.get(heavy_path, 10));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        matches!(heavy.as_mut().poll(&mut cx), Poll::Pending),
        "the heavy call must wait"
    );
    // weight 4 still fits (95 + 4 <= 100): it goes while the heavy one waits
    rest.get(light, 4).await.expect("a call that fits");
    assert_eq!(
        mock.rest_paths(),
        [first, light],
        "the heavy call has not reached the venue"
    );
    tokio::time::timeout(support::WAIT, heavy)
        .await
        .expect("the heavy call goes once the window rolls over")
        .expect("its answer");
    assert_eq!(mock.rest_paths(), [first, light, heavy_path]);
    // the new window also starts from the venue's count: 95 reported again,
    // so the next heavy call waits again while a light one goes
    let mut again = std::pin::pin!(rest.get(heavy_path, 10));
    assert!(matches!(again.as_mut().poll(&mut cx), Poll::Pending));
    rest.get(light, 1).await.expect("a call that fits");
    assert_eq!(mock.rest_paths().len(), 4, "{:?}", mock.rest_paths());
    assert_eq!(mock.rest_paths()[3], light);
}
