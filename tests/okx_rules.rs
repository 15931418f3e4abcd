//! The OKX connector against a mock that behaves as OKX does today
//! (issue 12): checksum 0 (deprecated 2026-06-23), seqId rules, the REST
//! book snapshot, refused instruments (60018), notice 64008,
//! make-before-break rotation, sharding, and `status.okx.all`. Each mock
//! behaviour names the doc and date it follows (tests/support/venues).

mod support;

use support::venues;

use std::collections::HashMap;

use support::{Client, ContractChecker, Fmt};
use tickwire::feed::book::OrderBook;
use tickwire::protocol::pb::{Event, event::Payload, server_message};
use venues::MockExchange;
use venues::source::{
    StatusWatch, event_on, failed_with, levels, server, source_until, stream_trades,
};

/// An OKX `books` push. Since 2026-06-23 the checksum is always 0 (notice
/// "Order Book Channels Checksum Field Deprecation", 2026-05-21).
fn okx_book(
    action: &str,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
    prev: i64,
    seq: i64,
) -> String {
    venues::source::okx_book(action, bids, asks, prev, seq, 0)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_notice_64008_and_rotation_are_seamless_for_trades_and_books() {
    let mock = MockExchange::start().await;
    mock.okx_auto(&[]);
    // a shortened rotation interval, so that a scheduled rotation follows
    // the notice's
    let server = server("okx", &mock, "BTC-USDT", &["--rotate-after", "3s"]);
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
    mock.wait_for("a second connection", |m| m.connections() >= 2)
        .await;
    // book updates reach both connections; the book goes on in step
    mock.send(okx_book("update", &[("100.0", "2")], &[], 10, 11));
    mock.wait_for("the old connection closed", |m| !m.is_open(0))
        .await;
    mock.send(okx_book("update", &[("100.0", "3")], &[], 11, 12));
    // the scheduled rotation
    mock.wait_for("a third connection", |m| m.connections() >= 3)
        .await;
    mock.wait_for("the second closed", |m| !m.is_open(1)).await;
    mock.send(okx_book("update", &[("100.0", "4")], &[], 12, 13));
    let _ = stop.send(());
    let last = task.await.unwrap();
    let (mut want, mut book_updates) = (1u64, Vec::new());
    while want <= last || book_updates.len() < 3 {
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
    assert_eq!(
        book_updates,
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
    mock.wait_for("the new connection", |m| m.connections() == 2)
        .await;
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
