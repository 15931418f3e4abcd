//! The Bybit v5 connector against a mock speaking Bybit's public spot
//! stream as documented (V5 docs, "WebSocket Stream: Connect",
//! "Orderbook", "Trade", "Ticker", "Get Instruments Info", "Get Tickers",
//! as of 2026-05, read 2026-12-07): snapshot and deltas in-band, `u`
//! continuous per topic, `u = 1` when the venue restarted its book
//! ("Occasionally, you'll receive "u"=1, which is a snapshot data due to
//! the restart of the service. So please overwrite your local orderbook"),
//! `{"op":"ping"}` from the client.

mod support;

use support::venues;

use support::{Client, ContractChecker, Fmt, Server};
use tickwire::protocol::pb::{Side as TradeSide, event::Payload, server_message};
use venues::MockExchange;
use venues::refbook::{Change, ClientBook, RefBook, Side};
use venues::source::{event_on, failed_with, head_seq, source_until};

const BOOK: &str = "book.bybit.BTC-USDT";
const TRADE: &str = "trade.bybit.BTC-USDT";

fn bybit_server(mock: &MockExchange, symbols: &str, extra: &[&str]) -> Server {
    let ws = format!("{}/v5/public/spot", mock.ws_url());
    let rest = mock.rest_url();
    let mut args = vec![
        "--source",
        "bybit",
        "--bybit-ws-url",
        &ws,
        "--bybit-rest-url",
        &rest,
        "--bybit-symbols",
        symbols,
        "--book-depth",
        "20",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// An `orderbook.50.BTCUSDT` push: `kind` is `snapshot` or `delta`.
fn book(kind: &str, changes: &[Change], u: u64) -> String {
    let side = |want: Side| -> Vec<[String; 2]> {
        changes
            .iter()
            .filter(|(s, _, _)| *s == want)
            .map(|(_, p, q)| [p.clone(), q.clone()])
            .collect()
    };
    serde_json::json!({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1700000000000i64,
        "data": {"s": "BTCUSDT", "b": side(Side::Bid), "a": side(Side::Ask), "u": u, "seq": u * 7},
        "cts": 1699999999990i64})
    .to_string()
}

fn lv(side: Side, p: &str, q: &str) -> Change {
    (side, p.to_string(), q.to_string())
}

/// A `publicTrade.BTCUSDT` push of one fill; `S` is the taker's side.
fn trade(id: &str, side: &str) -> String {
    serde_json::json!({"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1700000000001i64,
        "data": [{"T": 1700000000000i64, "s": "BTCUSDT", "S": side, "v": "0.25", "p": "100.5",
                  "L": "PlusTick", "i": id, "BT": false}]})
    .to_string()
}

/// Subscribe requests naming `topic`.
fn subscribes_of(mock: &MockExchange, topic: &str) -> usize {
    mock.received()
        .iter()
        .filter(|r| r.contains("\"subscribe\"") && r.contains(topic))
        .count()
}

async fn subscribed(mock: &MockExchange) {
    mock.wait_for("the subscribe", |m| {
        subscribes_of(m, "orderbook.50.BTCUSDT") == 1
    })
    .await;
}

/// Reads until a trade with id `barrier` arrives (the connector publishes
/// a connection's messages in order, so every book event before it is
/// published by then), then on to the book channel's head seq as `/channels`
/// gives it (delivery orders each channel, not one channel against another:
/// a drain may read the trade after the book's last events landed), applying
/// book events to `theirs` and checking the channel's seqs.
async fn book_until_trade(
    server: &Server,
    c: &mut Client,
    checker: &mut ContractChecker,
    theirs: &mut ClientBook,
    barrier: &str,
) {
    let mut book_seq = 0;
    let mut head = None;
    loop {
        if head.is_some_and(|h| book_seq >= h) {
            return;
        }
        let kind = c.next_msg().await;
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind {
            match &e.payload {
                Some(Payload::Trade(t)) if t.trade_id == barrier => {
                    head = Some(head_seq(server, BOOK).await);
                }
                Some(Payload::BookSnapshot(_) | Payload::BookUpdate(_)) => {
                    theirs.apply(e);
                    book_seq = e.seq;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_trades_map_by_id_and_the_book_equals_the_venues_top_20_after_a_pause() {
    let mock = MockExchange::start().await;
    let server = bybit_server(&mock, "BTCUSDT", &[]);
    subscribed(&mock).await;
    let sub: serde_json::Value = serde_json::from_str(&mock.received()[0]).unwrap();
    assert_eq!(sub["op"], "subscribe");
    assert!(sub["req_id"].is_string(), "{sub}");
    let args = sub["args"].as_array().unwrap();
    assert!(args.len() <= 10, "Bybit spot takes 10 args per request");
    for topic in [
        "orderbook.50.BTCUSDT",
        "publicTrade.BTCUSDT",
        "tickers.BTCUSDT",
    ] {
        assert!(args.iter().any(|a| a == topic), "{topic} in {sub}");
    }

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&[BOOK, TRADE]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);

    // trades: ids as Bybit gives them, a repeat published once, S = taker side
    mock.send(trade("2290000000061666327", "Buy"));
    mock.send(trade("2290000000061666327", "Buy"));
    mock.send(trade("2290000000061666328", "Sell"));
    let mut got = Vec::new();
    while got.len() < 2 {
        let e = event_on(&mut c, TRADE).await;
        checker.observe(&server_message::Kind::Event(e.clone()));
        let Some(Payload::Trade(t)) = e.payload else {
            panic!()
        };
        got.push((t.trade_id, t.side, t.price, t.quantity));
    }
    assert_eq!(
        got,
        vec![
            (
                "2290000000061666327".into(),
                TradeSide::Buy as i32,
                100.5,
                0.25
            ),
            (
                "2290000000061666328".into(),
                TradeSide::Sell as i32,
                100.5,
                0.25
            ),
        ]
    );

    // the book: a 50-level snapshot, then 400 random deltas, then a pause
    let mut venue = RefBook::new(13);
    let mut u = 5000;
    mock.send(book("snapshot", &venue.fill(50), u));
    for _ in 0..400 {
        u += 1;
        let n = (u % 3 + 1) as usize;
        mock.send(book("delta", &venue.random_changes(n), u));
    }
    mock.send(trade("barrier", "Buy"));
    let mut theirs = ClientBook::default();
    book_until_trade(&server, &mut c, &mut checker, &mut theirs, "barrier").await;
    assert_eq!(
        theirs.sides(),
        venue.top(20),
        "the subscriber's book is the venue's top 20"
    );
    let src = source_until(&server, "connected", |s| s["state"] == "connected").await;
    assert_eq!(src["resyncs"], 0, "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_a_u_gap_resubscribes_for_a_fresh_snapshot_without_a_seq_gap() {
    let mock = MockExchange::start().await;
    let server = bybit_server(&mock, "BTCUSDT", &[]);
    subscribed(&mock).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&[BOOK, "status.bybit.all"]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
        10,
    ));
    mock.send(book("delta", &[lv(Side::Bid, "100.00", "2")], 11));
    // u 12 is lost
    mock.send(book("delta", &[lv(Side::Bid, "99.00", "7")], 13));
    mock.wait_for("the book's resubscribe", |m| {
        subscribes_of(m, "orderbook.50.BTCUSDT") == 2
    })
    .await;
    assert!(
        mock.received()
            .iter()
            .any(|r| r.contains("\"unsubscribe\"") && r.contains("orderbook.50.BTCUSDT")),
        "the old subscription is dropped first"
    );
    let resub: serde_json::Value = serde_json::from_str(
        mock.received()
            .iter()
            .rfind(|r| r.contains("\"subscribe\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        resub["args"],
        serde_json::json!(["orderbook.50.BTCUSDT"]),
        "only the book's topic, not trades or tickers"
    );
    // deltas of the old subscription still in flight are dropped
    mock.send(book("delta", &[lv(Side::Bid, "98.00", "1")], 14));
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "100.50", "3"), lv(Side::Ask, "101.00", "1")],
        40,
    ));
    mock.send(book("delta", &[lv(Side::Ask, "101.00", "4")], 41));
    let mut theirs = ClientBook::default();
    let mut snapshots = 0;
    let mut statuses = Vec::new();
    while snapshots < 2 || theirs.sides().1 != vec![(101.0, 4.0)] {
        let kind = c.next_msg().await;
        checker.observe(&kind); // no seq gap on either channel
        let server_message::Kind::Event(e) = &kind else {
            continue;
        };
        if e.channel == BOOK {
            snapshots += matches!(e.payload, Some(Payload::BookSnapshot(_))) as usize;
            theirs.apply(e);
        } else {
            statuses.push(venues::source::status_json(e));
        }
    }
    assert_eq!(
        theirs.sides(),
        (vec![(100.5, 3.0)], vec![(101.0, 4.0)]),
        "the fresh snapshot, not the dropped delta"
    );
    let resync = statuses
        .iter()
        .find(|s| s["event"] == "resyncing")
        .expect("a resyncing status");
    assert!(
        resync["reason"].as_str().unwrap().contains("u 13"),
        "{resync}"
    );
    let src = source_until(&server, "one resync", |s| s["resyncs"] == 1).await;
    assert_eq!(src["reconnects"], 0, "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_u_1_restart_overwrites_the_book_without_a_resync() {
    let mock = MockExchange::start().await;
    let server = bybit_server(&mock, "BTCUSDT", &[]);
    subscribed(&mock).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&[BOOK, TRADE]).await;
    mock.send(book(
        "snapshot",
        &[
            lv(Side::Bid, "100.00", "1"),
            lv(Side::Bid, "99.00", "1"),
            lv(Side::Ask, "101.00", "1"),
        ],
        800,
    ));
    mock.send(book("delta", &[lv(Side::Bid, "99.00", "5")], 801));
    // the venue restarted its book: u = 1, levels unlike the old ones
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "97.00", "2"), lv(Side::Ask, "98.00", "3")],
        1,
    ));
    mock.send(book("delta", &[lv(Side::Ask, "98.50", "1")], 2));
    mock.send(trade("barrier", "Buy"));
    let mut theirs = ClientBook::default();
    let mut checker = ContractChecker::default();
    book_until_trade(&server, &mut c, &mut checker, &mut theirs, "barrier").await;
    assert_eq!(
        theirs.sides(),
        (vec![(97.0, 2.0)], vec![(98.0, 3.0), (98.5, 1.0)]),
        "u = 1 overwrote the book and u = 2 followed it"
    );
    let src = source_until(&server, "connected", |s| s["state"] == "connected").await;
    assert_eq!(src["resyncs"], 0, "a restart is no gap: {src}");
    assert_eq!(
        subscribes_of(&mock, "orderbook.50.BTCUSDT"),
        1,
        "no resubscribe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_reconnects_after_a_drop_and_serves_rest_tickers_meanwhile() {
    let mock = MockExchange::start().await;
    // V5 "Get Tickers" (spot), as of 2026-05
    mock.set_rest(
        "/v5/market/tickers?category=spot&symbol=BTCUSDT",
        200,
        serde_json::json!({"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [{
            "symbol": "BTCUSDT", "bid1Price": "500.4", "bid1Size": "3", "ask1Price": "500.6",
            "ask1Size": "2", "lastPrice": "500.5", "prevPrice24h": "500", "price24hPcnt": "0.001",
            "highPrice24h": "510", "lowPrice24h": "490", "turnover24h": "1000", "volume24h": "2"}]},
            "retExtInfo": {}, "time": 1700000000000i64})
        .to_string(),
    );
    let server = bybit_server(
        &mock,
        "BTCUSDT",
        &[
            "--rest-fallback-interval",
            "200ms",
            "--reconnect-min",
            "200ms",
            "--reconnect-max",
            "1s",
        ],
    );
    subscribed(&mock).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&[BOOK, TRADE, "ticker.bybit.BTC-USDT"]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
        10,
    ));
    mock.send(trade("1001", "Buy"));
    let mut theirs = ClientBook::default();
    let mut trades = Vec::new();
    while trades.is_empty() {
        let kind = c.next_msg().await;
        checker.observe(&kind);
        let server_message::Kind::Event(e) = &kind else {
            continue;
        };
        match &e.payload {
            Some(Payload::Trade(t)) => trades.push(t.trade_id.clone()),
            Some(Payload::BookSnapshot(_) | Payload::BookUpdate(_)) => theirs.apply(e),
            _ => {}
        }
    }

    mock.refuse(true);
    mock.drop_all();
    source_until(&server, "backing off", |s| s["state"] == "reconnecting").await;
    let tk = loop {
        let kind = c.next_msg().await;
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind
            && let Some(Payload::Ticker(tk)) = &e.payload
        {
            break *tk;
        }
    };
    assert_eq!((tk.last, tk.bid, tk.ask), (500.5, 500.4, 500.6));

    mock.refuse(false);
    mock.wait_for("a resubscribe", |m| {
        subscribes_of(m, "orderbook.50.BTCUSDT") == 2
    })
    .await;
    // the new connection: a snapshot, and a trade already published plus a new one
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "100.25", "2"), lv(Side::Ask, "101.00", "1")],
        90,
    ));
    mock.send(trade("1001", "Buy"));
    mock.send(trade("1002", "Sell"));
    while trades.last().map(String::as_str) != Some("1002") {
        let kind = c.next_msg().await;
        checker.observe(&kind);
        let server_message::Kind::Event(e) = &kind else {
            continue;
        };
        match &e.payload {
            Some(Payload::Trade(t)) => trades.push(t.trade_id.clone()),
            Some(Payload::BookSnapshot(_) | Payload::BookUpdate(_)) => theirs.apply(e),
            _ => {}
        }
    }
    assert_eq!(trades, ["1001", "1002"], "no trade twice across the drop");
    assert_eq!(theirs.sides(), (vec![(100.25, 2.0)], vec![(101.0, 1.0)]));
    source_until(&server, "reconnected", |s| s["state"] == "connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_instruments_come_from_instruments_info_and_a_refused_topic_spares_the_rest() {
    let mock = MockExchange::start().await;
    // V5 "Get Instruments Info" (spot), as of 2026-05
    mock.set_rest(
        "/v5/market/instruments-info?category=spot",
        200,
        serde_json::json!({"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
            {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading",
             "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001"},
             "priceFilter": {"tickSize": "0.01"}},
            {"symbol": "OLDUSDT", "baseCoin": "OLD", "quoteCoin": "USDT", "status": "Closed",
             "lotSizeFilter": {"basePrecision": "1"}, "priceFilter": {"tickSize": "1"}}]}})
        .to_string(),
    );
    let server = bybit_server(&mock, "BTCUSDT,OLDUSDT,NONEUSDT", &[]);
    failed_with(&server, "OLD-USDT", "Closed").await;
    failed_with(&server, "NONE-USDT", "not listed").await;
    subscribed(&mock).await;
    assert_eq!(mock.received().len(), 1, "only BTCUSDT is subscribed");
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&[BOOK]).await;
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "100.5", "1"), lv(Side::Ask, "101", "2")],
        1,
    ));
    let snap = event_on(&mut c, BOOK).await;
    let Some(Payload::BookSnapshot(b)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!((b.price_decimals, b.size_decimals), (2, 6));

    // Bybit refuses a subscription by its req_id ("Connect": success false)
    let req = mock.received()[0].clone();
    let req: serde_json::Value = serde_json::from_str(&req).unwrap();
    mock.send(
        serde_json::json!({"success": false, "ret_msg": "Invalid symbol :[publicTrade.BTCUSDT]",
            "conn_id": "mock-1", "req_id": req["req_id"], "op": "subscribe"})
        .to_string(),
    );
    failed_with(&server, "BTC-USDT", "Invalid symbol").await;
    assert_eq!(mock.connections(), 1, "the session carried on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_rotation_is_make_before_break_for_trades_and_books() {
    let mock = MockExchange::start().await;
    mock.bybit_auto();
    // a shortened rotation interval: two rotations within the test
    let server = bybit_server(&mock, "BTCUSDT", &["--rotate-after", "1500ms"]);
    subscribed(&mock).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&[TRADE, BOOK]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);
    mock.send(book(
        "snapshot",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
        10,
    ));
    let snap = event_on(&mut c, BOOK).await;
    checker.observe(&server_message::Kind::Event(snap));
    let (stop, task) =
        venues::source::stream_trades(&mock, |id| vec![trade(&id.to_string(), "Buy")]);
    // the venue's side runs beside the reader: a subscriber that stopped
    // reading for seconds would be lagged by the server
    let venue = mock.clone();
    let scenario = tokio::spawn(async move {
        let mock = venue;
        mock.wait_for("a second connection", |m| m.connections() >= 2)
            .await;
        // the new connection's snapshot (the same book); a delta reaches both
        mock.send_to(
            1,
            book(
                "snapshot",
                &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
                10,
            ),
        );
        mock.send(book("delta", &[lv(Side::Bid, "100.00", "2")], 11));
        mock.wait_for("the old connection closed", |m| !m.is_open(0))
            .await;
        mock.send(book("delta", &[lv(Side::Bid, "100.00", "3")], 12));
        mock.wait_for("a third connection", |m| m.connections() >= 3)
            .await;
        mock.send_to(
            2,
            book(
                "snapshot",
                &[lv(Side::Bid, "100.00", "3"), lv(Side::Ask, "101.00", "1")],
                12,
            ),
        );
        mock.wait_for("the second closed", |m| !m.is_open(1)).await;
        mock.send(book("delta", &[lv(Side::Bid, "100.00", "4")], 13));
        let _ = stop.send(());
        task.await.unwrap()
    });
    let updates = venues::seam::trades_and_updates_across(&mut c, &mut checker, scenario, 3).await;
    assert_eq!(
        updates,
        vec![vec![(100.0, 2.0)], vec![(100.0, 3.0)], vec![(100.0, 4.0)]]
    );
    let src = source_until(&server, "rotations", |s| s["rotations"].as_u64() >= Some(2)).await;
    assert_eq!(
        (src["resyncs"].as_u64(), src["reconnects"].as_u64()),
        (Some(0), Some(0)),
        "{src}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_gets_its_app_level_ping() {
    let mock = MockExchange::start().await;
    mock.bybit_auto();
    // --stale-after 1s: pings every 500 ms instead of 20 s
    let _server = bybit_server(&mock, "BTCUSDT", &["--stale-after", "1s"]);
    mock.wait_for("a ping op", |m| {
        m.received()
            .iter()
            .any(|r| serde_json::from_str::<serde_json::Value>(r).is_ok_and(|v| v["op"] == "ping"))
    })
    .await;
}
