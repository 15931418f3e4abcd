//! Issue 18: what a first-time user with wscat meets. Typing JSON in proto
//! mode, sending an exchange-style message, or writing `BTCUSDT` gets an
//! error that says what to do instead.

mod support;

use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{ErrorCode, server_message::Kind};
use tokio_tungstenite::tungstenite::Message;

async fn error_after(c: &mut Client, text: &str) -> tickwire::protocol::pb::Error {
    c.send_raw(Message::Text(text.to_string().into())).await;
    match c.next_msg().await {
        Kind::Error(e) => e,
        other => panic!("{text}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wscat_users_are_told_what_to_send() {
    let server = Server::start(&[]);
    // JSON typed into the default (proto) mode
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.send_raw(Message::Text(
        r#"{"subscribe":{"channels":["trade.sim.BTC-USDT"]}}"#.into(),
    ))
    .await;
    let e = match c.next_msg().await {
        Kind::Error(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.code, ErrorCode::BadRequest as i32);
    assert!(e.message.contains("?format=json"), "{}", e.message);
    assert!(e.message.contains("tickwire.v1.json"), "{}", e.message);

    let mut j = Client::connect(&server, Fmt::Json).await;
    j.welcome().await;
    // an exchange-style subscribe has no kind tickwire knows
    let e = error_after(
        &mut j,
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#,
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadRequest as i32);
    for kind in [
        "subscribe",
        "unsubscribe",
        "ping",
        "auth",
        "list_channels",
        "request_scan",
    ] {
        assert!(e.message.contains(kind), "{kind}: {}", e.message);
    }
    // a symbol written the exchange's way
    let e = error_after(
        &mut j,
        r#"{"subscribe":{"requestId":"4","channels":["trade.sim.BTCUSDT"]}}"#,
    )
    .await;
    assert_eq!(e.code, ErrorCode::UnknownChannel as i32);
    assert!(
        e.message.contains("did you mean trade.sim.BTC-USDT?"),
        "{}",
        e.message
    );
    let e = error_after(
        &mut j,
        r#"{"subscribe":{"requestId":"5","channels":["tickr.sim.ETH-USDT"]}}"#,
    )
    .await;
    assert!(
        e.message.contains("did you mean ticker.sim.ETH-USDT?"),
        "{}",
        e.message
    );
    let e = error_after(
        &mut j,
        r#"{"subscribe":{"requestId":"6","channels":["trade.sim.NOTHING-LIKE-IT"]}}"#,
    )
    .await;
    assert!(!e.message.contains("did you mean"), "{}", e.message);
    j.ping().await;
}
