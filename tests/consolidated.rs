//! The consolidated book `bbo.all.<BASE-QUOTE>` over two mock venues (OKX
//! and Kraken, each behaving as its mock documents): a change on either
//! moves it, a crossed market is flagged, a venue that drops leaves it and
//! comes back with its next snapshot, and `--consolidate USDT=USD` puts
//! OKX's BTC-USDT and Kraken's BTC-USD in one book.

mod support;

use support::venues;

use support::{Client, Fmt, Server};
use venues::MockExchange;
use venues::kraken::VenueBook;
use venues::source::{event_on, okx_book, status_json};

/// The next `bbo.all.BTC-USD` event, as JSON.
async fn bbo(c: &mut Client) -> serde_json::Value {
    status_json(&event_on(c, "bbo.all.BTC-USD").await)
}

/// Reads `bbo.all.BTC-USD` events until one satisfies `cond`, checking
/// that its seqs follow one another.
async fn bbo_until(
    c: &mut Client,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..50 {
        let v = bbo(c).await;
        if cond(&v) {
            return v;
        }
    }
    panic!("no bbo event with {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbo_all_follows_both_venues_flags_a_cross_and_drops_a_venue_until_it_is_live_again() {
    let okx = MockExchange::start().await;
    okx.okx_auto(&[]);
    let kraken = MockExchange::start().await;
    let okx_ws = format!("{}/ws/v5/public", okx.ws_url());
    let server = Server::start(&[
        "--source",
        "okx,kraken",
        "--okx-ws-url",
        &okx_ws,
        "--okx-rest-url",
        &okx.rest_url(),
        "--kraken-ws-url",
        &kraken.ws_url(),
        "--kraken-rest-url",
        &kraken.rest_url(),
        "--okx-symbols",
        "BTC-USDT",
        "--kraken-symbols",
        "BTC/USD",
        "--consolidate",
        "USDT=USD",
        "--book-depth",
        "10",
        "--reconnect-min",
        "50ms",
        "--reconnect-max",
        "100ms",
    ]);
    okx.wait_for("okx subscribe", |m| {
        m.received().iter().any(|r| r.contains("books"))
    })
    .await;
    kraken
        .wait_for("kraken subscribe", |m| {
            m.received()
                .iter()
                .any(|r| r.contains(r#""channel":"book""#))
        })
        .await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["bbo.all.BTC-USD"]).await;

    okx.send(okx_book(
        "snapshot",
        &[("100.0", "1")],
        &[("101.0", "2")],
        -1,
        10,
        0,
    ));
    let v = bbo(&mut c).await;
    assert_eq!(v["venues"], serde_json::json!(["okx"]), "{v}");
    assert_eq!(
        (v["bid"].as_f64(), v["ask"].as_f64()),
        (Some(100.0), Some(101.0))
    );
    assert_eq!(v["tops"]["okx"]["instrument"], "BTC-USDT");

    let mut kr = VenueBook::new("BTC/USD", 10);
    kr.set(true, 1005, 1.5); // 100.5
    kr.set(false, 1020, 1.0); // 102.0
    kraken.send(kr.snapshot());
    let v = bbo_until(&mut c, "kraken in", |v| {
        v["venues"] == serde_json::json!(["kraken", "okx"])
    })
    .await;
    assert_eq!(
        (v["bid"].as_f64(), v["bid_venue"].as_str()),
        (Some(100.5), Some("kraken"))
    );
    assert_eq!(
        (v["ask"].as_f64(), v["ask_venue"].as_str()),
        (Some(101.0), Some("okx"))
    );
    assert!((v["spread"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{v}");
    assert_eq!(v["crossed"], false);

    // a change on OKX moves it
    okx.send(okx_book("update", &[], &[("100.8", "3")], 10, 11, 0));
    let v = bbo(&mut c).await;
    assert_eq!(
        (v["ask"].as_f64(), v["ask_size"].as_f64()),
        (Some(100.8), Some(3.0))
    );
    // a change on Kraken moves it, and crosses the market
    kraken.send(kr.update(&[(true, 1009, 0.5)], false)); // bid 100.9 > OKX ask 100.8
    let v = bbo(&mut c).await;
    assert_eq!(
        (v["bid"].as_f64(), v["bid_venue"].as_str()),
        (Some(100.9), Some("kraken"))
    );
    assert_eq!(v["crossed"], true, "{v}");

    // Kraken drops and cannot come back: it leaves the book
    kraken.refuse(true);
    kraken.drop_all();
    let v = bbo_until(&mut c, "kraken out", |v| {
        v["out"] == serde_json::json!(["kraken"])
    })
    .await;
    assert_eq!(v["venues"], serde_json::json!(["okx"]));
    assert_eq!(
        (v["bid"].as_f64(), v["bid_venue"].as_str()),
        (Some(100.0), Some("okx"))
    );
    assert_eq!(v["crossed"], false);
    // back: in again with its fresh snapshot
    kraken.refuse(false);
    kraken
        .wait_for("kraken reconnected", |m| m.connected() == 1)
        .await;
    kraken
        .wait_for("kraken resubscribed", |m| {
            m.received()
                .iter()
                .filter(|r| r.contains(r#""channel":"book""#))
                .count()
                >= 2
        })
        .await;
    kraken.send(kr.snapshot());
    let v = bbo_until(&mut c, "kraken back", |v| {
        v["venues"] == serde_json::json!(["kraken", "okx"])
    })
    .await;
    assert_eq!(
        (v["bid"].as_f64(), v["bid_venue"].as_str()),
        (Some(100.9), Some("kraken"))
    );
    assert_eq!(v["crossed"], true);

    // a resyncing book (Kraken checksum mismatch) is out until its snapshot
    kraken.send(kr.update(&[(true, 1008, 1.0)], true));
    let v = bbo_until(&mut c, "kraken resyncing", |v| {
        v["out"] == serde_json::json!(["kraken"])
    })
    .await;
    assert_eq!(v["bid_venue"], "okx", "{v}");
    kraken
        .wait_for("the book resubscribed", |m| {
            m.received().iter().any(|r| r.contains("\"unsubscribe\""))
        })
        .await;
    kr.set(true, 1007, 2.0);
    kraken.send(kr.snapshot());
    let v = bbo_until(&mut c, "kraken in again", |v| {
        v["venues"] == serde_json::json!(["kraken", "okx"])
    })
    .await;
    assert_eq!(
        (v["bid"].as_f64(), v["bid_venue"].as_str()),
        (Some(100.9), Some("kraken"))
    );
}
