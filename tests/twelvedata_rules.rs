//! The Twelve Data source against a mock that behaves as Twelve Data
//! documents it (tests/support/venues/twelvedata.rs, doc and date there): prices
//! equal to the venue's on `ticker.twelvedata.<SYMBOL>`, a symbol in
//! `fails` reported while the others stream, heartbeats every 10 s, and
//! REST prices while the stream is down; the API key never in a log line.

mod support;

use support::venues;

use std::time::Duration;

use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{Event, event::Payload};
use venues::MockExchange;
use venues::source::{event_on, failed_with, source_until};
use venues::twelvedata::{heartbeat_ok, price, subscribe_status};

const KEY: &str = "td-test-key-0123456789";

fn td_server(mock: &MockExchange, extra: &[&str]) -> Server {
    let ws = format!("{}/v1/quotes/price", mock.ws_url());
    let rest = mock.rest_url();
    let mut args = vec![
        "--source",
        "twelvedata",
        "--twelvedata-ws-url",
        &ws,
        "--twelvedata-rest-url",
        &rest,
        "--twelvedata-symbols",
        "AAPL,EUR/USD,NOPE",
    ];
    args.extend_from_slice(extra);
    Server::start_with_env(&args, &[("TICKWIRE_TWELVEDATA_API_KEY", KEY)])
}

fn last(e: &Event) -> f64 {
    let Some(Payload::Ticker(t)) = &e.payload else {
        panic!("{e:?}")
    };
    t.last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelvedata_prices_equal_the_venues_a_failed_symbol_is_reported_and_heartbeats_go_out() {
    let mock = MockExchange::start().await;
    let server = td_server(&mock, &[]);
    mock.wait_for("the subscribe", |m| {
        m.received().iter().any(|r| r.contains("subscribe"))
    })
    .await;
    let sub: serde_json::Value = serde_json::from_str(&mock.received()[0]).unwrap();
    assert_eq!(sub["action"], "subscribe");
    assert_eq!(sub["params"]["symbols"], "AAPL,EUR/USD,NOPE");
    assert_eq!(mock.ws_paths()[0], format!("/v1/quotes/price?apikey={KEY}"));
    mock.send(subscribe_status(&["AAPL", "EUR/USD"], &["NOPE"]));
    let src = failed_with(&server, "NOPE", "twelvedata").await;
    assert_eq!(src["state"], "connected", "the others stream: {src}");

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&[
        "ticker.twelvedata.AAPL",
        "ticker.twelvedata.EUR-USD",
        "status.twelvedata.all",
    ])
    .await;
    // the status channel's snapshot names the failed symbol
    let st = venues::source::status_json(&event_on(&mut c, "status.twelvedata.all").await);
    assert!(st["failed_instruments"]["NOPE"].is_string(), "{st}");
    assert_eq!(st["venue"], "twelvedata");
    mock.send(price("AAPL", 342.0157, 1_765_000_000));
    mock.send(price("EUR/USD", 1.08423, 1_765_000_001));
    let a = event_on(&mut c, "ticker.twelvedata.AAPL").await;
    assert_eq!(last(&a), 342.0157);
    assert_eq!(a.source_time_ns, 1_765_000_000_000_000_000);
    let Some(Payload::Ticker(t)) = &a.payload else {
        unreachable!()
    };
    assert_eq!(t.volume_24h, 27_631_112.0, "day volume");
    let e = event_on(&mut c, "ticker.twelvedata.EUR-USD").await;
    assert_eq!(last(&e), 1.08423);

    // the client's heartbeat, every 10 s by the docs
    // longer than WAIT: the first heartbeat is due 10 s in
    support::eventually_within(Duration::from_secs(40), "the client's heartbeat", || {
        std::future::ready(
            mock.received()
                .iter()
                .any(|r| r == r#"{"action":"heartbeat"}"#),
        )
    })
    .await;
    mock.send(heartbeat_ok());
    assert_eq!(mock.connections(), 1);
    assert!(
        server.log().iter().all(|l| !l.contains(KEY)),
        "the API key is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelvedata_prices_come_from_rest_while_the_stream_is_down() {
    let mock = MockExchange::start().await;
    mock.set_rest("/price?symbol=AAPL", 200, r#"{"price":"343.5"}"#);
    mock.set_rest("/price?symbol=EUR%2FUSD", 200, r#"{"price":"1.0851"}"#);
    mock.set_rest(
        "/price?symbol=NOPE",
        200,
        r#"{"code":400,"message":"symbol not found","status":"error"}"#,
    );
    let server = td_server(
        &mock,
        &[
            "--rest-fallback-interval",
            "100ms",
            "--reconnect-min",
            "100ms",
            "--reconnect-max",
            "200ms",
        ],
    );
    mock.wait_for("connected", |m| m.connections() == 1).await;
    mock.send(subscribe_status(&["AAPL", "EUR/USD"], &["NOPE"]));
    failed_with(&server, "NOPE", "twelvedata").await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    c.subscribe(&["ticker.twelvedata.AAPL", "ticker.twelvedata.EUR-USD"])
        .await;
    mock.refuse(true);
    mock.drop_all();
    let a = event_on(&mut c, "ticker.twelvedata.AAPL").await;
    assert_eq!(last(&a), 343.5, "REST price while the stream is down");
    let e = event_on(&mut c, "ticker.twelvedata.EUR-USD").await;
    assert_eq!(last(&e), 1.0851);
    let src = source_until(&server, "polled", |s| s["rest_polls"].as_u64() >= Some(2)).await;
    assert_eq!(src["state"], "reconnecting", "{src}");
    let (_, stats) = server.get_json("/stats").await;
    assert!(!stats.to_string().contains(KEY), "no key in /stats");
    assert_eq!(
        mock.rest_hits("/price?symbol=NOPE"),
        0,
        "a refused symbol costs no credit"
    );
    // prices only: no trades, so analytics builds nothing for this venue
    let (_, channels) = server.get_json("/channels").await;
    let names = channels.to_string();
    assert!(names.contains("ticker.twelvedata.AAPL"), "{names}");
    assert!(
        !names.contains("candle1m.twelvedata"),
        "no candles from prices: {names}"
    );
    // the stream back: prices from it again
    mock.refuse(false);
    mock.wait_for("reconnected", |m| m.connected() == 1).await;
    mock.send(price("AAPL", 344.0, 1_765_000_100));
    loop {
        let a = event_on(&mut c, "ticker.twelvedata.AAPL").await;
        if last(&a) == 344.0 {
            break;
        }
        assert_eq!(last(&a), 343.5, "only REST prices before the stream's");
    }
    assert!(
        server.log().iter().all(|l| !l.contains(KEY)),
        "the API key is never logged"
    );
}

#[test]
fn twelvedata_without_an_api_key_refuses_to_start_with_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--listen", "127.0.0.1:0", "--source", "twelvedata"])
        .env_remove("TICKWIRE_TWELVEDATA_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--twelvedata-api-key"), "{err}");
}
