//! The Binance and OKX sources against mock exchanges on loopback that
//! speak the exchanges' documented message formats, including gaps,
//! checksum mismatches, dropped connections and silence.

mod support;

use support::venues;

use support::{Client, Fmt, Server, eventually};
use tickwire::protocol::pb::{Side, event::Payload};
use venues::MockExchange;
use venues::source::{event_on, levels, okx_book, source_until};

fn binance(stream: &str, data: serde_json::Value) -> String {
    serde_json::json!({ "stream": stream, "data": data }).to_string()
}

fn depth(first: u64, last: u64, bids: serde_json::Value, asks: serde_json::Value) -> String {
    binance(
        "btcusdt@depth@100ms",
        serde_json::json!({"e": "depthUpdate", "E": 1_700_000_000_000i64, "s": "BTCUSDT",
            "U": first, "u": last, "b": bids, "a": asks}),
    )
}

fn binance_server(mock: &MockExchange, extra: &[&str]) -> Server {
    let ws = mock.ws_url();
    let rest = mock.rest_url();
    let mut args = vec![
        "--source",
        "binance",
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &rest,
        "--symbols",
        "BTCUSDT",
        "--book-depth",
        "5",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_messages_map_to_events_and_the_book_follows_binances_procedure() {
    let mock = MockExchange::start().await;
    let server = binance_server(&mock, &[]);
    mock.wait_for("the stream connection", |m| m.connected() == 1)
        .await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["*.binance.BTC-USDT"]).await;

    // Diffs arrive before the REST snapshot is answered: they must be
    // buffered. The first ends before the snapshot (ignored), the second
    // straddles it (applied).
    mock.set_rest(
        "/api/v3/depth",
        200,
        r#"{"lastUpdateId":100,"bids":[["100.0","1"],["99.5","2"],["99.0","3"]],"asks":[["100.5","1"],["101.0","2"]]}"#,
    );
    mock.pause_rest(true);
    mock.send(depth(
        95,
        99,
        serde_json::json!([["99.0", "9"]]),
        serde_json::json!([]),
    ));
    mock.send(depth(
        100,
        102,
        serde_json::json!([["100.0", "0"], ["99.5", "7"]]),
        serde_json::json!([]),
    ));
    source_until(&server, "diffs received", |s| {
        s["messages_in"].as_u64() >= Some(2)
    })
    .await;
    mock.pause_rest(false);
    let snap = event_on(&mut c, "book.binance.BTC-USDT").await;
    let Some(Payload::BookSnapshot(book)) = &snap.payload else {
        panic!("expected a book snapshot, got {snap:?}");
    };
    assert_eq!(levels(&book.bids), vec![(99.5, 7.0), (99.0, 3.0)]);
    assert_eq!(levels(&book.asks), vec![(100.5, 1.0), (101.0, 2.0)]);
    assert_eq!(book.price_decimals, 1);
    assert!(mock.rest_hits("/api/v3/depth?symbol=BTCUSDT&limit=1000") >= 1);

    // the next diff continues from u = 102
    mock.send(depth(
        103,
        103,
        serde_json::json!([]),
        serde_json::json!([["100.5", "4"]]),
    ));
    let up = event_on(&mut c, "book.binance.BTC-USDT").await;
    assert_eq!(up.seq, snap.seq + 1, "the stale diff published nothing");
    let Some(Payload::BookUpdate(u)) = &up.payload else {
        panic!("expected a book update, got {up:?}");
    };
    assert_eq!(levels(&u.asks), vec![(100.5, 4.0)]);
    assert!(u.bids.is_empty());

    // trade: m=true means the buyer was the maker, so the taker sold
    mock.send(binance(
        "btcusdt@trade",
        serde_json::json!({"e": "trade", "E": 1, "s": "BTCUSDT", "t": 777, "p": "100.2",
            "q": "0.5", "T": 1_700_000_000_000i64, "m": true, "M": true}),
    ));
    let t = event_on(&mut c, "trade.binance.BTC-USDT").await;
    let Some(Payload::Trade(trade)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!((trade.price, trade.quantity), (100.2, 0.5));
    assert_eq!(trade.side, Side::Sell as i32);
    assert_eq!(trade.trade_id, "777");
    assert_eq!(t.source_time_ns, 1_700_000_000_000_000_000);

    mock.send(binance(
        "btcusdt@ticker",
        serde_json::json!({"e": "24hrTicker", "E": 1_700_000_000_001i64, "s": "BTCUSDT",
            "p": "1.0", "P": "1.01", "w": "100", "x": "99", "c": "100.2", "Q": "0.5",
            "b": "100.1", "B": "3", "a": "100.3", "A": "4", "o": "99.2", "h": "101",
            "l": "98", "v": "1234.5", "q": "123456.7", "O": 0, "C": 1, "F": 0, "L": 1, "n": 2}),
    ));
    let t = event_on(&mut c, "ticker.binance.BTC-USDT").await;
    let Some(Payload::Ticker(tk)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!(
        (tk.last, tk.bid, tk.bid_size, tk.ask, tk.ask_size),
        (100.2, 100.1, 3.0, 100.3, 4.0)
    );
    assert_eq!((tk.open_24h, tk.high_24h, tk.low_24h), (99.2, 101.0, 98.0));
    assert_eq!(
        (tk.change_pct_24h, tk.volume_24h, tk.quote_volume_24h),
        (1.01, 1234.5, 123456.7)
    );

    // A gap (U=110 after u=103) resyncs from a new snapshot, which clients
    // get as a fresh book_snapshot in the same channel sequence.
    mock.set_rest(
        "/api/v3/depth",
        200,
        r#"{"lastUpdateId":200,"bids":[["98.0","5"]],"asks":[["102.0","6"]]}"#,
    );
    mock.send(depth(
        110,
        111,
        serde_json::json!([["97.0", "1"]]),
        serde_json::json!([]),
    ));
    let resnap = event_on(&mut c, "book.binance.BTC-USDT").await;
    assert_eq!(resnap.seq, up.seq + 1, "seq keeps counting over a resync");
    let Some(Payload::BookSnapshot(book)) = &resnap.payload else {
        panic!("expected a fresh snapshot after the gap, got {resnap:?}");
    };
    assert_eq!(levels(&book.bids), vec![(98.0, 5.0)]);
    assert_eq!(levels(&book.asks), vec![(102.0, 6.0)]);
    let src = source_until(&server, "resync counted", |s| s["resyncs"] == 1).await;
    assert!(src["last_error"].as_str().unwrap().contains("gap"), "{src}");
    // and it goes on from there
    mock.send(depth(
        201,
        201,
        serde_json::json!([["98.0", "0"]]),
        serde_json::json!([]),
    ));
    let after = event_on(&mut c, "book.binance.BTC-USDT").await;
    assert_eq!(after.seq, resnap.seq + 1);
    let Some(Payload::BookUpdate(u)) = &after.payload else {
        panic!("{after:?}")
    };
    assert_eq!(levels(&u.bids), vec![(98.0, 0.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_reconnects_with_backoff_detects_silence_and_serves_rest_tickers_meanwhile() {
    let mock = MockExchange::start().await;
    mock.set_rest(
        "/api/v3/depth",
        200,
        r#"{"lastUpdateId":1,"bids":[["10.0","1"]],"asks":[["11.0","1"]]}"#,
    );
    mock.set_rest(
        "/api/v3/ticker/24hr",
        200,
        r#"{"symbol":"BTCUSDT","priceChange":"1","priceChangePercent":"2.5","lastPrice":"123.4",
            "bidPrice":"123.3","bidQty":"1","askPrice":"123.5","askQty":"2","openPrice":"120.4",
            "highPrice":"125","lowPrice":"119","volume":"10","quoteVolume":"1234","closeTime":1700000000000}"#,
    );
    let server = binance_server(
        &mock,
        &[
            "--stale-after",
            "1s",
            "--rest-fallback-interval",
            "200ms",
            "--reconnect-min",
            "200ms",
            "--reconnect-max",
            "2s",
        ],
    );
    mock.wait_for("the stream connection", |m| m.connections() == 1)
        .await;
    source_until(&server, "connected", |s| s["state"] == "connected").await;

    // Binance pings; the source must answer with a pong carrying the payload.
    mock.ping("are-you-there");
    mock.wait_for("the pong", |m| {
        m.received().iter().any(|r| r == "PONG are-you-there")
    })
    .await;

    // Silence: the mock sends nothing, so after 1 s the stream is stale and
    // the source reconnects by itself.
    mock.wait_for("a reconnect after silence", |m| m.connections() >= 2)
        .await;
    let src = source_until(&server, "stale noted", |s| {
        s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("stale"))
    })
    .await;
    assert!(src["reconnects"].as_u64() >= Some(1), "{src}");

    // The exchange drops everyone and refuses new connections.
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["ticker.binance.BTC-USDT"]).await;
    mock.refuse(true);
    mock.drop_all();
    let src = source_until(&server, "backing off", |s| {
        s["state"] == "reconnecting" && s["attempt"].as_u64() >= Some(2)
    })
    .await;
    assert!(src["backoff_ms"].as_u64().is_some(), "{src}");
    assert!(src["backoff_ms"].as_u64() <= Some(2000), "capped: {src}");

    // Meanwhile tickers come from the REST fallback.
    let t = event_on(&mut c, "ticker.binance.BTC-USDT").await;
    let Some(Payload::Ticker(tk)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!((tk.last, tk.bid, tk.ask), (123.4, 123.3, 123.5));
    assert_eq!(tk.change_pct_24h, 2.5);
    let (_, stats) = server.get_json("/stats").await;
    assert!(
        stats["sources"][0]["rest_polls"].as_u64() >= Some(1),
        "{stats}"
    );

    // The exchange comes back: the source reconnects and resyncs its book.
    mock.refuse(false);
    source_until(&server, "reconnected", |s| s["state"] == "connected").await;
    mock.wait_for("a live connection", |m| m.connected() >= 1)
        .await;
}

fn okx_server(mock: &MockExchange, extra: &[&str]) -> Server {
    let ws = format!("{}/ws/v5/public", mock.ws_url());
    let rest = mock.rest_url();
    let mut args = vec![
        "--source",
        "okx",
        "--okx-ws-url",
        &ws,
        "--okx-rest-url",
        &rest,
        "--symbols",
        "BTC-USDT",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// OKX's checksum, written independently of the server's: best 25 bids
/// and asks interleaved as `bid:size:ask:size`, CRC32 as a signed int.
fn okx_checksum(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> i32 {
    let mut parts = Vec::new();
    for i in 0..25 {
        if let Some((p, s)) = bids.get(i) {
            parts.push(format!("{p}:{s}"));
        }
        if let Some((p, s)) = asks.get(i) {
            parts.push(format!("{p}:{s}"));
        }
    }
    crc32fast::hash(parts.join(":").as_bytes()) as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_maps_messages_verifies_nonzero_checksums_and_resubscribes_when_rest_cannot_help() {
    let mock = MockExchange::start().await;
    let server = okx_server(&mock, &["--book-depth", "5"]);
    mock.wait_for("the subscribe op", |m| {
        m.received()
            .iter()
            .any(|r| r.contains("\"subscribe\"") && r.contains("books"))
    })
    .await;
    let sub: serde_json::Value = serde_json::from_str(&mock.received()[0]).unwrap();
    let channels: Vec<&str> = sub["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["tickers", "trades", "books"]);
    assert_eq!(sub["args"][0]["instId"], "BTC-USDT");

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["*.okx.BTC-USDT"]).await;

    let bids = [("8476.97", "256"), ("8475.55", "101")];
    let asks = [("8476.98", "415"), ("8477", "7")];
    mock.send(okx_book(
        "snapshot",
        &bids,
        &asks,
        -1,
        123,
        okx_checksum(&bids, &asks),
    ));
    let snap = event_on(&mut c, "book.okx.BTC-USDT").await;
    let Some(Payload::BookSnapshot(b)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!(levels(&b.bids), vec![(8476.97, 256.0), (8475.55, 101.0)]);
    assert_eq!(levels(&b.asks), vec![(8476.98, 415.0), (8477.0, 7.0)]);

    // a good update: prevSeqId follows, checksum of the book after it
    let bids2 = [("8476.97", "300"), ("8475.55", "101")];
    mock.send(okx_book(
        "update",
        &[("8476.97", "300")],
        &[],
        123,
        124,
        okx_checksum(&bids2, &asks),
    ));
    let up = event_on(&mut c, "book.okx.BTC-USDT").await;
    assert_eq!(up.seq, snap.seq + 1);
    let Some(Payload::BookUpdate(u)) = &up.payload else {
        panic!("{up:?}")
    };
    assert_eq!(levels(&u.bids), vec![(8476.97, 300.0)]);

    // A wrong non-zero checksum (environments before the 2026-06-23
    // deprecation still send one): the book is rebuilt from the REST
    // snapshot; this mock has none (404, not retried), so the book is
    // resubscribed for a WebSocket snapshot.
    mock.send(okx_book("update", &[], &[("8477", "9")], 124, 125, 12345));
    mock.wait_for("unsubscribe + subscribe of the book", |m| {
        let r = m.received();
        r.iter()
            .any(|x| x.contains("unsubscribe") && x.contains("books"))
            && r.iter().filter(|x| x.contains("\"subscribe\"")).count() >= 2
    })
    .await;
    let src = source_until(&server, "resync counted", |s| s["resyncs"] == 1).await;
    assert!(
        src["last_error"]
            .as_str()
            .unwrap()
            .contains("resubscribing"),
        "{src}"
    );
    assert_eq!(mock.rest_hits("/api/v5/market/books"), 1);
    assert!(
        server.log().iter().any(|l| l.contains("checksum mismatch")),
        "{:?}",
        server.log()
    );
    let bids3 = [("8470", "1")];
    let asks3 = [("8480", "2")];
    mock.send(okx_book(
        "snapshot",
        &bids3,
        &asks3,
        -1,
        500,
        okx_checksum(&bids3, &asks3),
    ));
    let resnap = event_on(&mut c, "book.okx.BTC-USDT").await;
    assert_eq!(resnap.seq, up.seq + 1, "the bad update was not published");
    let Some(Payload::BookSnapshot(b)) = &resnap.payload else {
        panic!("{resnap:?}")
    };
    assert_eq!(levels(&b.bids), vec![(8470.0, 1.0)]);

    // tickers and trades
    mock.send(serde_json::json!({
        "arg": {"channel": "tickers", "instId": "BTC-USDT"},
        "data": [{"instType": "SPOT", "instId": "BTC-USDT", "last": "9999.99", "lastSz": "0.1",
            "askPx": "10000.5", "askSz": "11", "bidPx": "9999.5", "bidSz": "5", "open24h": "9000",
            "high24h": "10000", "low24h": "8888.88", "volCcy24h": "2222000", "vol24h": "2222",
            "sodUtc0": "0", "sodUtc8": "0", "ts": "1597026383085"}]
    }).to_string());
    let t = event_on(&mut c, "ticker.okx.BTC-USDT").await;
    let Some(Payload::Ticker(tk)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!(
        (tk.last, tk.bid, tk.ask, tk.ask_size),
        (9999.99, 9999.5, 10000.5, 11.0)
    );
    assert_eq!((tk.volume_24h, tk.quote_volume_24h), (2222.0, 2222000.0));
    assert!(
        (tk.change_pct_24h - 11.1110).abs() < 1e-3,
        "{}",
        tk.change_pct_24h
    );
    assert_eq!(t.source_time_ns, 1_597_026_383_085_000_000);
    mock.send(
        serde_json::json!({
            "arg": {"channel": "trades", "instId": "BTC-USDT"},
            "data": [{"instId": "BTC-USDT", "tradeId": "130639474", "px": "42219.9",
                "sz": "0.12060306", "side": "buy", "ts": "1630048897897", "count": "3"}]
        })
        .to_string(),
    );
    let t = event_on(&mut c, "trade.okx.BTC-USDT").await;
    let Some(Payload::Trade(tr)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!((tr.price, tr.quantity), (42219.9, 0.12060306));
    assert_eq!(tr.side, Side::Buy as i32);
    assert_eq!(tr.trade_id, "130639474");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_sources_run_at_once_each_with_its_own_state() {
    let mock = MockExchange::start().await;
    mock.set_rest(
        "/api/v3/depth",
        200,
        r#"{"lastUpdateId":1,"bids":[["10.0","1"]],"asks":[["11.0","1"]]}"#,
    );
    let server = binance_server(&mock, &["--source", "sim", "--sim-rate", "200"]);
    let mock = &mock;
    eventually("both sources connected with messages in", || async {
        let (_, health) = server.get_json("/health").await;
        let names: Vec<&str> = health["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["binance", "sim"]);
        let up = health["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "connected" && s["messages_in"].as_u64() > Some(0));
        if up {
            return Ok(());
        }
        // a trade per poll until the source is up and counts it
        mock.send(binance(
            "btcusdt@trade",
            serde_json::json!({"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "10.5",
                "q": "1", "T": 1, "m": false, "M": true}),
        ));
        Err(health)
    })
    .await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c
        .subscribe(&["book.sim.BTC-USDT", "book.binance.BTC-USDT"])
        .await;
    assert_eq!(s.channels.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_reconnects_resubscribes_and_serves_rest_tickers_while_down() {
    let mock = MockExchange::start().await;
    mock.set_rest(
        "/api/v5/market/ticker",
        200,
        serde_json::json!({"code": "0", "msg": "", "data": [{"instType": "SPOT",
            "instId": "BTC-USDT", "last": "500.5", "lastSz": "1", "askPx": "500.6",
            "askSz": "2", "bidPx": "500.4", "bidSz": "3", "open24h": "500", "high24h": "510",
            "low24h": "490", "volCcy24h": "1000", "vol24h": "2", "ts": "1700000000000"}]})
        .to_string(),
    );
    let server = okx_server(
        &mock,
        &[
            "--rest-fallback-interval",
            "200ms",
            "--reconnect-min",
            "200ms",
            "--reconnect-max",
            "1s",
        ],
    );
    let subscribes = |m: &MockExchange| {
        m.received()
            .iter()
            .filter(|r| r.contains("\"subscribe\""))
            .count()
    };
    mock.wait_for("the first subscribe", |m| subscribes(m) == 1)
        .await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["ticker.okx.BTC-USDT"]).await;

    mock.refuse(true);
    mock.drop_all();
    source_until(&server, "backing off", |s| {
        s["state"] == "reconnecting" && s["attempt"].as_u64() >= Some(1)
    })
    .await;
    let t = event_on(&mut c, "ticker.okx.BTC-USDT").await;
    let Some(Payload::Ticker(tk)) = &t.payload else {
        panic!("{t:?}")
    };
    assert_eq!((tk.last, tk.bid, tk.ask), (500.5, 500.4, 500.6));
    assert!(mock.rest_hits("/api/v5/market/ticker?instId=BTC-USDT") >= 1);

    mock.refuse(false);
    mock.wait_for("a resubscribe after reconnecting", |m| subscribes(m) >= 2)
        .await;
    source_until(&server, "reconnected", |s| s["state"] == "connected").await;
}
