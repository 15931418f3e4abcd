//! The Coinbase Advanced Trade connector against a mock speaking its
//! public market data feed as documented (Advanced Trade docs, "WebSocket
//! Overview", "WebSocket Channels", "List Public Products", "Get Public
//! Product Ticker", as of 2026-05, read 2026-12-07): `sequence_num` per
//! connection, `heartbeats` keeping idle subscriptions open, one channel
//! per subscribe message, `-USDC` answered with `-USD` data (see
//! tests/support/venues/coinbase.rs for what the mock does by itself).

mod support;

use support::venues;

use std::time::Duration;

use support::{Client, ContractChecker, Fmt, Server};
use tickwire::protocol::pb::{Side as TradeSide, event::Payload, server_message};
use venues::MockExchange;
use venues::refbook::{Change, ClientBook, RefBook, Side};
use venues::source::{event_on, head_seq, source_until, status_json};

const BOOK: &str = "book.coinbase.BTC-USD";
const TRADE: &str = "trade.coinbase.BTC-USD";
const TIME: &str = "2026-12-07T06:00:00.123456789Z";

fn coinbase_server(mock: &MockExchange, symbols: &str, extra: &[&str]) -> Server {
    let ws = mock.ws_url();
    let rest = mock.rest_url();
    let mut args = vec![
        "--source",
        "coinbase",
        "--coinbase-ws-url",
        &ws,
        "--coinbase-rest-url",
        &rest,
        "--symbols",
        symbols,
        "--book-depth",
        "20",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A mock in Coinbase mode with heartbeats every 200 ms.
async fn coinbase_mock() -> MockExchange {
    let mock = MockExchange::start().await;
    mock.coinbase_auto(Duration::from_millis(200), Duration::from_secs(60));
    mock
}

/// An `l2_data` message for `product` (`kind`: `snapshot` or `update`);
/// the mock stamps `sequence_num`.
fn l2(kind: &str, product: &str, changes: &[Change]) -> String {
    let updates: Vec<serde_json::Value> = changes
        .iter()
        .map(|(s, p, q)| {
            let side = if *s == Side::Bid { "bid" } else { "offer" };
            serde_json::json!({"side": side, "event_time": TIME, "price_level": p, "new_quantity": q})
        })
        .collect();
    serde_json::json!({"channel": "l2_data", "client_id": "", "timestamp": TIME, "sequence_num": 0,
        "events": [{"type": kind, "product_id": product, "updates": updates}]})
    .to_string()
}

fn lv(side: Side, p: &str, q: &str) -> Change {
    (side, p.to_string(), q.to_string())
}

/// A `market_trades` message: (trade id, maker side) per trade.
fn trades(kind: &str, list: &[(&str, &str)]) -> String {
    let trades: Vec<serde_json::Value> = list
        .iter()
        .map(|(id, side)| {
            serde_json::json!({"trade_id": id, "product_id": "BTC-USD", "price": "100.5",
                "size": "0.25", "side": side, "time": TIME})
        })
        .collect();
    serde_json::json!({"channel": "market_trades", "client_id": "", "timestamp": TIME,
        "sequence_num": 0, "events": [{"type": kind, "trades": trades}]})
    .to_string()
}

fn subscribes(mock: &MockExchange, channel: &str) -> Vec<serde_json::Value> {
    mock.received()
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .filter(|v| v["type"] == "subscribe" && v["channel"] == channel)
        .collect()
}

async fn subscribed(mock: &MockExchange) {
    mock.wait_for("the four subscribes", |m| {
        m.received()
            .iter()
            .filter(|r| r.contains("\"subscribe\""))
            .count()
            == 4
    })
    .await;
}

/// Reads events until the trade `barrier`, applying book events of
/// `channel` to `theirs`; returns the trades seen (id, side). After the
/// barrier the book is read on to its head seq (`/channels`): delivery
/// orders each channel, not channels against each other.
async fn until_trade(
    server: &Server,
    c: &mut Client,
    checker: &mut ContractChecker,
    theirs: &mut ClientBook,
    barrier: &str,
) -> Vec<(String, i32)> {
    let mut seen = Vec::new();
    let mut book_seq = 0;
    let mut head = None;
    loop {
        if head.is_some_and(|h| book_seq >= h) {
            return seen;
        }
        let kind = c.next_msg().await;
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind {
            match &e.payload {
                Some(Payload::Trade(t)) if head.is_none() => {
                    seen.push((t.trade_id.clone(), t.side));
                    if t.trade_id == barrier {
                        head = Some(head_seq(server, BOOK).await);
                    }
                }
                Some(Payload::BookSnapshot(_) | Payload::BookUpdate(_)) if e.channel == BOOK => {
                    theirs.apply(e);
                    book_seq = e.seq;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_trades_map_by_id_and_the_book_equals_the_venues_top_20_after_a_pause() {
    let mock = coinbase_mock().await;
    // BTC-USDC on Coinbase's public channels is the BTC-USD book
    let server = coinbase_server(&mock, "BTC-USDC", &[]);
    subscribed(&mock).await;
    let order: Vec<String> = mock
        .received()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            assert!(v["channel"].is_string(), "one channel per message: {v}");
            v["channel"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        order,
        ["heartbeats", "market_trades", "ticker", "level2"],
        "heartbeats first, level2 last"
    );
    assert_eq!(
        subscribes(&mock, "level2")[0]["product_ids"],
        serde_json::json!(["BTC-USD"]),
        "-USDC is asked as -USD"
    );

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&[BOOK, TRADE]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);

    // the subscription's snapshot of recent trades is history: not published
    mock.send(trades("snapshot", &[("6", "SELL"), ("5", "BUY")]));
    // newest first in a message, as Coinbase sends them; 8 again is a repeat
    mock.send(trades("update", &[("8", "SELL"), ("7", "BUY")]));
    mock.send(trades("update", &[("8", "SELL")]));

    // the book: a 50-level snapshot, 400 random updates, then a pause
    let mut venue = RefBook::new(21);
    mock.send(l2("snapshot", "BTC-USD", &venue.fill(50)));
    for i in 0..400 {
        mock.send(l2("update", "BTC-USD", &venue.random_changes(i % 3 + 1)));
    }
    mock.send(trades("update", &[("9", "BUY")]));
    let mut theirs = ClientBook::default();
    let seen = until_trade(&server, &mut c, &mut checker, &mut theirs, "9").await;
    assert_eq!(
        seen,
        vec![
            // Coinbase's side is the maker's: the taker took the other side
            ("7".to_string(), TradeSide::Sell as i32),
            ("8".to_string(), TradeSide::Buy as i32),
            ("9".to_string(), TradeSide::Sell as i32),
        ]
    );
    assert_eq!(
        theirs.sides(),
        venue.top(20),
        "the subscriber's book is the venue's top 20"
    );
    let src = source_until(&server, "connected", |s| s["state"] == "connected").await;
    assert_eq!(src["resyncs"], 0, "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_a_sequence_num_gap_resubscribes_every_book_of_the_connection() {
    let mock = coinbase_mock().await;
    let server = coinbase_server(&mock, "BTC-USD,ETH-USD", &[]);
    subscribed(&mock).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c
        .subscribe(&[BOOK, "book.coinbase.ETH-USD", "status.coinbase.all"])
        .await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
    ));
    mock.send(l2(
        "snapshot",
        "ETH-USD",
        &[lv(Side::Bid, "10.00", "1"), lv(Side::Ask, "11.00", "1")],
    ));
    mock.send(l2("update", "BTC-USD", &[lv(Side::Bid, "100.00", "2")]));
    // a message of the connection is lost: nothing says which product's
    mock.coinbase_skip(0, 1);
    mock.send(l2("update", "ETH-USD", &[lv(Side::Bid, "9.00", "1")]));
    mock.wait_for("level2 resubscribed", |m| {
        subscribes(m, "level2").len() == 2
    })
    .await;
    let unsub: Vec<serde_json::Value> = mock
        .received()
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .filter(|v| v["type"] == "unsubscribe")
        .collect();
    assert_eq!(unsub.len(), 1);
    assert_eq!(unsub[0]["channel"], "level2");
    assert_eq!(
        subscribes(&mock, "level2")[1]["product_ids"],
        serde_json::json!(["BTC-USD", "ETH-USD"]),
        "every book of the connection"
    );
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.50", "3"), lv(Side::Ask, "101.00", "1")],
    ));
    mock.send(l2(
        "snapshot",
        "ETH-USD",
        &[lv(Side::Bid, "10.50", "2"), lv(Side::Ask, "11.00", "1")],
    ));
    let (mut btc, mut eth) = (ClientBook::default(), ClientBook::default());
    let (mut snapshots, mut resyncing) = (0, Vec::new());
    while snapshots < 4 {
        let kind = c.next_msg().await;
        checker.observe(&kind); // no seq gap on any channel
        let server_message::Kind::Event(e) = &kind else {
            continue;
        };
        match e.channel.as_str() {
            BOOK => btc.apply(e),
            "book.coinbase.ETH-USD" => eth.apply(e),
            _ => {
                let st = status_json(e);
                if st["event"] == "resyncing" {
                    resyncing.push(st["instrument"].as_str().unwrap().to_string());
                }
                continue;
            }
        }
        snapshots += matches!(e.payload, Some(Payload::BookSnapshot(_))) as usize;
    }
    assert_eq!(btc.sides(), (vec![(100.5, 3.0)], vec![(101.0, 1.0)]));
    assert_eq!(eth.sides(), (vec![(10.5, 2.0)], vec![(11.0, 1.0)]));
    resyncing.sort();
    assert_eq!(resyncing, ["BTC-USD", "ETH-USD"]);
    let src = source_until(&server, "resyncs", |s| s["resyncs"] == 2).await;
    assert_eq!(src["reconnects"], 0, "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_heartbeats_keep_a_quiet_connection() {
    let mock = MockExchange::start().await;
    // without heartbeats the mock closes a connection idle for 500 ms
    mock.coinbase_auto(Duration::from_millis(100), Duration::from_millis(500));
    let server = coinbase_server(&mock, "BTC-USD", &["--stale-after", "1s"]);
    subscribed(&mock).await;
    assert_eq!(subscribes(&mock, "heartbeats").len(), 1);
    // three seconds of heartbeats only: longer than the idle close and
    // than --stale-after
    mock.wait_for("30 heartbeats", |m| m.heartbeats_sent() >= 30)
        .await;
    assert_eq!(mock.connections(), 1, "the connection was kept");
    let src = source_until(&server, "connected", |s| s["state"] == "connected").await;
    assert_eq!(src["reconnects"], 0, "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_reconnects_after_a_drop_fills_missed_trades_and_serves_rest_tickers() {
    let mock = coinbase_mock().await;
    // "Get Public Product Ticker", as of 2026-05
    mock.set_rest(
        "/api/v3/brokerage/market/products/BTC-USD/ticker",
        200,
        serde_json::json!({"trades": [{"trade_id": "40", "product_id": "BTC-USD",
            "price": "500.5", "size": "1", "time": TIME, "side": "BUY", "exchange": "coinbase"}],
            "best_bid": "500.4", "best_ask": "500.6"})
        .to_string(),
    );
    let server = coinbase_server(
        &mock,
        "BTC-USD",
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
    let s = c.subscribe(&[BOOK, TRADE, "ticker.coinbase.BTC-USD"]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
    ));
    mock.send(trades("update", &[("20", "BUY")]));
    let mut theirs = ClientBook::default();
    until_trade(&server, &mut c, &mut checker, &mut theirs, "20").await;

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
    mock.wait_for("a resubscribe", |m| subscribes(m, "level2").len() == 2)
        .await;
    // the new subscription's trade snapshot holds 20 (had) and 21, 22 (missed)
    mock.send(trades(
        "snapshot",
        &[("22", "BUY"), ("21", "SELL"), ("20", "BUY")],
    ));
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.25", "2"), lv(Side::Ask, "101.00", "1")],
    ));
    mock.send(trades("update", &[("23", "BUY")]));
    let seen = until_trade(&server, &mut c, &mut checker, &mut theirs, "23").await;
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["21", "22", "23"], "missed trades filled, none twice");
    assert_eq!(theirs.sides(), (vec![(100.25, 2.0)], vec![(101.0, 1.0)]));
    source_until(&server, "reconnected", |s| s["state"] == "connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_products_come_from_the_public_products_endpoint() {
    let mock = coinbase_mock().await;
    // "List Public Products", as of 2026-05
    mock.set_rest(
        "/api/v3/brokerage/market/products?product_type=SPOT",
        200,
        serde_json::json!({"products": [
            {"product_id": "BTC-USD", "price_increment": "0.01", "base_increment": "0.00000001",
             "status": "online", "trading_disabled": false},
            {"product_id": "OLD-USD", "price_increment": "0.01", "base_increment": "1",
             "status": "delisted", "trading_disabled": true}], "num_products": 2})
        .to_string(),
    );
    let server = coinbase_server(&mock, "BTCUSD,OLD/USD", &[]);
    venues::source::failed_with(&server, "OLD-USD", "delisted").await;
    subscribed(&mock).await;
    assert_eq!(
        subscribes(&mock, "level2")[0]["product_ids"],
        serde_json::json!(["BTC-USD"])
    );
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&[BOOK]).await;
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.5", "1"), lv(Side::Ask, "101", "2")],
    ));
    let snap = event_on(&mut c, BOOK).await;
    let Some(Payload::BookSnapshot(b)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!((b.price_decimals, b.size_decimals), (2, 8));
}

/// A BTC-USD server that rotates its connection after 1.5 s, and a client
/// subscribed to its trades and book (with its contract checker).
async fn rotating_subscriber(mock: &MockExchange) -> (Server, Client, ContractChecker) {
    let server = coinbase_server(mock, "BTC-USD", &["--rotate-after", "1500ms"]);
    subscribed(mock).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&[TRADE, BOOK]).await;
    let mut checker = ContractChecker::default();
    checker.subscribed(&s);
    (server, c, checker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_rotation_adopts_the_new_connections_books_without_a_gap() {
    let mock = coinbase_mock().await;
    let (server, mut c, mut checker) = rotating_subscriber(&mock).await;
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
    ));
    let snap = event_on(&mut c, BOOK).await;
    checker.observe(&server_message::Kind::Event(snap));
    let (stop, task) = venues::source::stream_trades(&mock, |id| {
        vec![trades("update", &[(&id.to_string(), "SELL")])]
    });
    // the venue's side runs beside the reader (a subscriber that stops
    // reading for seconds is lagged by the server)
    let venue = mock.clone();
    let scenario = tokio::spawn(async move {
        let mock = venue;
        mock.wait_for("the new connection's level2", |m| {
            subscribes(m, "level2").len() == 2
        })
        .await;
        // both connections get it; the new one has no book yet
        mock.send(l2("update", "BTC-USD", &[lv(Side::Bid, "100.00", "2")]));
        // the new connection's own snapshot: its book, built privately
        mock.send_to(
            1,
            l2(
                "snapshot",
                "BTC-USD",
                &[lv(Side::Bid, "100.00", "2"), lv(Side::Ask, "101.00", "1")],
            ),
        );
        mock.wait_for("the old connection closed", |m| !m.is_open(0))
            .await;
        mock.send(l2("update", "BTC-USD", &[lv(Side::Bid, "100.00", "3")]));
        let _ = stop.send(());
        task.await.unwrap()
    });
    let updates = venues::seam::trades_and_updates_across(&mut c, &mut checker, scenario, 2).await;
    assert_eq!(updates, vec![vec![(100.0, 2.0)], vec![(100.0, 3.0)]]);
    let src = source_until(&server, "a rotation", |s| {
        s["rotations"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(
        (src["resyncs"].as_u64(), src["reconnects"].as_u64()),
        (Some(0), Some(0)),
        "{src}"
    );
}

/// During a rotation the two connections' trade streams are not in step:
/// a trade the next connection gets first must not overtake the current
/// connection's earlier one. The next connection's trades wait for the
/// switch and go out from the last published id on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_trades_stay_in_id_order_when_the_next_connection_is_ahead() {
    let mock = coinbase_mock().await;
    let (_server, mut c, mut checker) = rotating_subscriber(&mock).await;
    let book = [lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")];
    mock.send(l2("snapshot", "BTC-USD", &book));
    mock.send(trades("update", &[("99", "BUY")]));
    mock.wait_for("the new connection's level2", |m| {
        subscribes(m, "level2").len() == 2
    })
    .await;
    // the next connection is one trade ahead of the current one
    mock.send_to(1, trades("update", &[("101", "BUY")]));
    mock.send_to(0, trades("update", &[("100", "BUY")]));
    mock.send_to(1, trades("update", &[("100", "BUY")]));
    mock.send_to(1, l2("snapshot", "BTC-USD", &book));
    mock.wait_for("the old connection closed", |m| !m.is_open(0))
        .await;
    mock.send(trades("update", &[("102", "BUY")]));
    let mut ids = Vec::new();
    while ids.last().is_none_or(|id| id != "102") {
        let kind = c.next_msg().await;
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind
            && let Some(Payload::Trade(t)) = &e.payload
        {
            ids.push(t.trade_id.clone());
        }
    }
    assert_eq!(ids, ["99", "100", "101", "102"], "in id order, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_and_coinbase_run_side_by_side_each_with_its_symbols_and_state() {
    let coinbase = coinbase_mock().await;
    let bybit = MockExchange::start().await;
    let (cb_ws, cb_rest) = (coinbase.ws_url(), coinbase.rest_url());
    let (by_ws, by_rest) = (bybit.ws_url(), bybit.rest_url());
    let server = Server::start(&[
        "--source",
        "bybit,coinbase",
        "--bybit-ws-url",
        &by_ws,
        "--bybit-rest-url",
        &by_rest,
        "--coinbase-ws-url",
        &cb_ws,
        "--coinbase-rest-url",
        &cb_rest,
        "--symbols",
        "BTC/USDT",
        "--coinbase-symbols",
        "BTC-USD",
    ]);
    subscribed(&coinbase).await;
    bybit
        .wait_for("the Bybit subscribe", |m| !m.received().is_empty())
        .await;
    // the shared --symbols in the venue's own spelling
    assert!(bybit.received()[0].contains("publicTrade.BTCUSDT"));
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&[TRADE, "trade.bybit.BTC-USDT"]).await;
    coinbase.send(trades("update", &[("1", "BUY")]));
    bybit.send(
        serde_json::json!({"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1,
            "data": [{"T": 1, "s": "BTCUSDT", "S": "Buy", "v": "1", "p": "2", "i": "7"}]})
        .to_string(),
    );
    let mut venues = Vec::new();
    while venues.len() < 2 {
        let kind = c.next_msg().await;
        if let server_message::Kind::Event(e) = kind {
            venues.push(e.channel);
        }
    }
    venues.sort();
    assert_eq!(venues, ["trade.bybit.BTC-USDT", "trade.coinbase.BTC-USD"]);
    let (_, health) = server.get_json("/health").await;
    let names: Vec<&str> = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bybit", "coinbase"], "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_a_refused_product_is_dropped_and_the_others_subscribed_again() {
    let mock = coinbase_mock().await;
    // no products endpoint: the configured list streams as given
    let server = coinbase_server(&mock, "FOO-USD,BTC-USD", &[]);
    subscribed(&mock).await;
    // Coinbase ignores a subscribe naming an unknown product, and says so
    // (as its Exchange feed does: "Failed to subscribe", "<id> is not a
    // valid product")
    mock.send(
        serde_json::json!({"type": "error", "message": "Failed to subscribe",
            "reason": "FOO-USD is not a valid product"})
        .to_string(),
    );
    venues::source::failed_with(&server, "FOO-USD", "not a valid product").await;
    mock.wait_for("level2 again without FOO-USD", |m| {
        subscribes(m, "level2").len() == 2
    })
    .await;
    for channel in ["market_trades", "ticker", "level2"] {
        assert_eq!(
            subscribes(&mock, channel)[1]["product_ids"],
            serde_json::json!(["BTC-USD"]),
            "{channel}"
        );
    }
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&[BOOK]).await;
    mock.send(l2(
        "snapshot",
        "BTC-USD",
        &[lv(Side::Bid, "100.00", "1"), lv(Side::Ask, "101.00", "1")],
    ));
    let snap = event_on(&mut c, BOOK).await;
    assert!(matches!(snap.payload, Some(Payload::BookSnapshot(_))));
    assert_eq!(mock.connections(), 1, "the session carried on");
}
