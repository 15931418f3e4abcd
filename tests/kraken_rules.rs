//! The Kraken WebSocket v2 connector against a mock that behaves as Kraken
//! documents it (tests/support/venues/kraken.rs, doc and date there): exact number
//! parsing and the CRC32 checksum on every message, truncation to the
//! subscribed depth, a checksum mismatch resynced with a fresh snapshot,
//! trades by id, reconnect after a drop.

mod support;

use support::venues;

use support::{Client, Fmt, Server};
use tickwire::feed::book::OrderBook;
use tickwire::protocol::pb::{Event, event::Payload};
use venues::MockExchange;
use venues::kraken::{VenueBook, asset_pairs, trade};
use venues::source::{StatusWatch, event_on, source_until};

fn kraken_server(mock: &MockExchange, depth: &str) -> Server {
    Server::start(&[
        "--source",
        "kraken",
        "--kraken-ws-url",
        &mock.ws_url(),
        "--kraken-rest-url",
        &mock.rest_url(),
        "--kraken-symbols",
        "BTC/USD",
        "--book-depth",
        depth,
        "--reconnect-min",
        "50ms",
        "--reconnect-max",
        "200ms",
    ])
}

/// Waits for the connector's `book` subscribe on its `n`th connection.
async fn book_subscribed(mock: &MockExchange, n: usize) -> serde_json::Value {
    mock.wait_for("the book subscribe", |m| {
        m.connections() > n
            && m.received()
                .iter()
                .filter(|r| r.contains(r#""channel":"book""#) && r.contains("\"subscribe\""))
                .count()
                > n
    })
    .await;
    let text = mock
        .received()
        .into_iter()
        .rfind(|r| r.contains(r#""channel":"book""#) && r.contains("\"subscribe\""))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

struct ClientBook(Option<OrderBook>);

impl ClientBook {
    fn apply(&mut self, e: &Event) {
        match &e.payload {
            Some(Payload::BookSnapshot(s)) => self.0 = Some(OrderBook::from_snapshot(s)),
            Some(Payload::BookUpdate(u)) => self.0.as_mut().expect("snapshot first").apply(u),
            other => panic!("not a book event: {other:?}"),
        }
    }

    fn top(&self) -> (venues::kraken::NumSide, venues::kraken::NumSide) {
        let b = self.0.as_ref().expect("a book");
        (
            b.bids().map(|l| (l.price, l.quantity)).collect(),
            b.asks().map(|l| (l.price, l.quantity)).collect(),
        )
    }
}

/// A 25-level book around 50000.0 with full-precision quantities.
fn venue_book() -> VenueBook {
    let mut v = VenueBook::new("BTC/USD", 25);
    for i in 0..30 {
        v.set(true, 500_000 - i * 5, 0.1 + i as f64 * 0.01234567);
        v.set(false, 500_005 + i * 5, 0.2 + i as f64 * 0.00000001);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_book_equals_the_venues_top_20_with_kraken_checksum_and_trades_by_id() {
    let mock = MockExchange::start().await;
    mock.set_rest("/0/public/AssetPairs", 200, asset_pairs());
    let server = kraken_server(&mock, "20");
    let sub = book_subscribed(&mock, 0).await;
    assert_eq!(
        sub["params"]["depth"], 25,
        "smallest depth covering 20: {sub}"
    );
    assert_eq!(sub["params"]["symbol"][0], "BTC/USD");
    assert_eq!(sub["params"]["snapshot"], true);

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.kraken.BTC-USD", "trade.kraken.BTC-USD"])
        .await;
    let mut venue = venue_book();
    mock.send(venue.snapshot());
    let mut theirs = ClientBook(None);
    let snap = event_on(&mut c, "book.kraken.BTC-USD").await;
    let Some(Payload::BookSnapshot(s)) = &snap.payload else {
        panic!("{snap:?}")
    };
    assert_eq!(
        (s.price_decimals, s.size_decimals),
        (1, 8),
        "decimals from AssetPairs"
    );
    theirs.apply(&snap);
    // inserts push levels out of the 25 (Kraken sends no removal for
    // them), removals pull deeper ones in; every message checksummed
    let steps: Vec<Vec<(bool, i64, f64)>> = vec![
        vec![(true, 500_002, 1.5), (false, 500_004, 0.25)],
        vec![(true, 500_000, 0.0)],
        vec![(false, 500_005, 0.0), (false, 500_006, 3.0)],
        vec![(true, 499_990, 0.12345678)],
        vec![(false, 500_004, 0.0)],
        // 26 bids: the worst falls out at the venue...
        vec![(true, 500_003, 1.0), (true, 500_004, 1.0)],
        // ...and must not come back when the top empties (19 left)
        vec![
            (true, 500_004, 0.0),
            (true, 500_003, 0.0),
            (true, 500_002, 0.0),
            (true, 499_995, 0.0),
            (true, 499_990, 0.0),
            (true, 499_985, 0.0),
        ],
    ];
    let mut last_sum = 0;
    for s in &steps {
        mock.send(venue.update(s, false));
        last_sum = venue.checksum();
    }
    // the pause: trades after the book changes arrive after them
    mock.send(trade("BTC/USD", 7, "50000.1"));
    mock.send(trade("BTC/USD", 8, "50000.2"));
    mock.send(trade("BTC/USD", 7, "50000.1")); // a repeat: not published
    mock.send(trade("BTC/USD", 9, "50000.3"));
    let mut ids = Vec::new();
    let mut last_book = snap.clone();
    while ids.len() < 3 {
        let kind = c.next_msg().await;
        if let tickwire::protocol::pb::server_message::Kind::Event(e) = kind {
            match &e.payload {
                Some(Payload::Trade(t)) => ids.push(t.trade_id.clone()),
                Some(_) if e.channel == "book.kraken.BTC-USD" => {
                    assert_eq!(e.seq, last_book.seq + 1, "no seq gap");
                    theirs.apply(&e);
                    last_book = e;
                }
                _ => {}
            }
        }
    }
    assert_eq!(ids, ["7", "8", "9"], "trades by id, the repeat dropped");
    assert_eq!(
        theirs.top(),
        venue.top(20),
        "the subscriber's book equals the venue's top 20"
    );
    // depth >= 10 and Kraken's decimals: tickwire's checksum is Kraken's
    let ours = match &last_book.payload {
        Some(Payload::BookUpdate(u)) => u.checksum,
        Some(Payload::BookSnapshot(s)) => s.checksum,
        _ => unreachable!(),
    };
    assert_eq!(ours, last_sum, "tickwire's checksum equals Kraken's");
    let src = source_until(&server, "connected", |s| s["state"] == "connected").await;
    assert_eq!(src["resyncs"], 0, "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_checksum_mismatch_resubscribes_for_a_fresh_snapshot_without_a_seq_gap() {
    let mock = MockExchange::start().await;
    mock.set_rest("/0/public/AssetPairs", 200, asset_pairs());
    let server = kraken_server(&mock, "10");
    book_subscribed(&mock, 0).await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["book.kraken.BTC-USD", "status.kraken.all"])
        .await;
    let mut status = StatusWatch {
        checker: Default::default(),
        seen: Vec::new(),
    };
    let mut venue = venue_book();
    venue.depth = 10;
    mock.send(venue.snapshot());
    let snap = event_on(&mut c, "book.kraken.BTC-USD").await;
    // the venue says another checksum than the book gives: a missed message
    mock.send(venue.update(&[(true, 500_001, 2.0)], true));
    let st = status.next(&mut c, "resyncing").await;
    assert_eq!(st["instrument"], "BTC-USD", "{st}");
    assert!(st["reason"].as_str().unwrap().contains("checksum"), "{st}");
    mock.wait_for("unsubscribe then subscribe of the book", |m| {
        let r = m.received();
        let un = r.iter().position(|t| t.contains("\"unsubscribe\""));
        un.is_some_and(|i| {
            r[i..]
                .iter()
                .any(|t| t.contains(r#""channel":"book""#) && t.contains("\"subscribe\""))
        })
    })
    .await;
    // updates before the fresh snapshot are not applied
    mock.send(venue.update(&[(true, 500_002, 1.0)], false));
    venue.set(true, 500_003, 4.0);
    mock.send(venue.snapshot());
    let resnap = event_on(&mut c, "book.kraken.BTC-USD").await;
    assert_eq!(
        resnap.seq,
        snap.seq + 1,
        "no tickwire seq gap over the resync"
    );
    let Some(Payload::BookSnapshot(s)) = &resnap.payload else {
        panic!("{resnap:?}")
    };
    let mut theirs = ClientBook(None);
    theirs.apply(&resnap);
    assert_eq!(theirs.top(), venue.top(10));
    assert_eq!(s.checksum, venue.checksum());
    let src = source_until(&server, "a resync counted", |s| s["resyncs"] == 1).await;
    assert_eq!(
        mock.connections(),
        1,
        "one book resynced, no reconnect: {src}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_reconnects_after_a_drop_and_repeats_no_trade() {
    let mock = MockExchange::start().await;
    // REST down: the stream runs anyway, decimals from the data
    let server = kraken_server(&mock, "10");
    book_subscribed(&mock, 0).await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["trade.kraken.BTC-USD", "book.kraken.BTC-USD"])
        .await;
    mock.send(trade("BTC/USD", 1, "50000.0"));
    let e = event_on(&mut c, "trade.kraken.BTC-USD").await;
    let first = e.seq;
    mock.drop_all();
    book_subscribed(&mock, 1).await;
    let mut venue = venue_book();
    venue.depth = 10;
    mock.send(venue.snapshot());
    mock.send(trade("BTC/USD", 1, "50000.0")); // seen before the drop
    mock.send(trade("BTC/USD", 2, "50000.5"));
    let b = event_on(&mut c, "book.kraken.BTC-USD").await;
    let mut theirs = ClientBook(None);
    theirs.apply(&b);
    assert_eq!(theirs.top(), venue.top(10));
    let e = event_on(&mut c, "trade.kraken.BTC-USD").await;
    let Some(Payload::Trade(t)) = &e.payload else {
        panic!("{e:?}")
    };
    assert_eq!((t.trade_id.as_str(), e.seq), ("2", first + 1));
    let src = source_until(&server, "reconnected", |s| {
        s["state"] == "connected" && s["reconnects"].as_u64() >= Some(1)
    })
    .await;
    assert!(
        src["metadata"]
            .as_str()
            .unwrap_or_default()
            .contains("unavailable"),
        "{src}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_a_refused_symbol_is_reported_while_the_others_stream() {
    let mock = MockExchange::start().await;
    let server = Server::start(&[
        "--source",
        "kraken",
        "--kraken-ws-url",
        &mock.ws_url(),
        "--kraken-rest-url",
        &mock.rest_url(),
        "--kraken-symbols",
        "BTC/USD,FOO/USD",
    ]);
    book_subscribed(&mock, 0).await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["trade.kraken.BTC-USD"]).await;
    // Kraken answers a subscribe naming an unknown pair per symbol
    mock.send(
        r#"{"error":"Currency pair not supported FOO/USD","method":"subscribe","success":false,"symbol":"FOO/USD","time_in":"2026-12-07T06:00:00.000000Z","time_out":"2026-12-07T06:00:00.000100Z"}"#,
    );
    venues::source::failed_with(&server, "FOO-USD", "not supported").await;
    mock.send(r#"{"channel":"heartbeat"}"#);
    mock.send(trade("BTC/USD", 11, "50000.0"));
    let e = event_on(&mut c, "trade.kraken.BTC-USD").await;
    let Some(Payload::Trade(t)) = &e.payload else {
        panic!("{e:?}")
    };
    assert_eq!(t.trade_id, "11");
    assert_eq!(mock.connections(), 1, "the session carried on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_tickers_come_from_rest_while_the_stream_is_down() {
    let mock = MockExchange::start().await;
    mock.set_rest(
        "/0/public/Ticker?pair=XBTUSD",
        200,
        venues::kraken::rest_ticker("50000.5"),
    );
    let server = Server::start(&[
        "--source",
        "kraken",
        "--kraken-ws-url",
        &mock.ws_url(),
        "--kraken-rest-url",
        &mock.rest_url(),
        "--kraken-symbols",
        "BTC-USD",
        "--rest-fallback-interval",
        "100ms",
        "--reconnect-min",
        "200ms",
        "--reconnect-max",
        "400ms",
    ]);
    book_subscribed(&mock, 0).await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["ticker.kraken.BTC-USD"]).await;
    mock.refuse(true);
    mock.drop_all();
    let e = event_on(&mut c, "ticker.kraken.BTC-USD").await;
    let Some(Payload::Ticker(t)) = &e.payload else {
        panic!("{e:?}")
    };
    assert_eq!((t.last, t.bid, t.ask), (50000.5, 50000.0, 50001.0));
    assert_eq!(
        (t.high_24h, t.low_24h, t.volume_24h),
        (52000.0, 48000.0, 2000.25)
    );
    let src = source_until(&server, "polled", |s| s["rest_polls"].as_u64() >= Some(1)).await;
    assert_eq!(src["state"], "reconnecting", "{src}");
}
