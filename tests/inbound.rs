//! Client frames at the wire level: fragmentation, control frames between
//! fragments, and the RFC 6455 violations that close the connection.

mod support;

use prost::Message as _;
use support::{Fmt, Server, raw_connect, raw_frame, raw_into_client};
use tickwire::protocol::pb::{self, ClientMessage, client_message, server_message::Kind};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_messages_are_reassembled_around_a_ping() {
    let server = Server::start(&[]);
    let mut raw = raw_connect(&server, "").await;
    let sub = ClientMessage {
        kind: Some(client_message::Kind::Subscribe(pb::Subscribe {
            request_id: 7,
            channels: vec!["trade.sim.BTC-USDT".into(), "ticker.sim.ETH-USDT".into()],
            ..Default::default()
        })),
    }
    .encode_to_vec();
    let (a, rest) = sub.split_at(5);
    let (b, c) = rest.split_at(10);
    let mut bytes = raw_frame(false, 0x2, a, true);
    bytes.extend(raw_frame(false, 0x0, b, true));
    bytes.extend(raw_frame(true, 0x9, b"hi", true)); // control frames may interleave
    bytes.extend(raw_frame(true, 0x0, c, true));
    raw.write_all(&bytes).await.unwrap();
    let mut c = raw_into_client(raw, Fmt::Proto).await;
    c.welcome().await;
    let s = c
        .until(|k| match k {
            Kind::Subscribed(s) => Some(s.clone()),
            _ => None,
        })
        .await;
    assert_eq!(s.request_id, 7);
    assert_eq!(s.channels.len(), 2);
    c.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_with_the_rfc_codes() {
    let server = Server::start(&[]);
    // unmasked client frame: 1002
    let mut raw = raw_connect(&server, "").await;
    raw.write_all(&raw_frame(true, 0x2, b"\x1a\x00", false))
        .await
        .unwrap();
    let mut c = raw_into_client(raw, Fmt::Proto).await;
    assert_eq!(c.closed_with().await, Some(1002));
    // text that is not UTF-8: 1007
    let mut raw = raw_connect(&server, "?format=json").await;
    raw.write_all(&raw_frame(true, 0x1, &[0x7b, 0xff, 0xfe, 0x7d], true))
        .await
        .unwrap();
    let mut c = raw_into_client(raw, Fmt::Json).await;
    assert_eq!(c.closed_with().await, Some(1007));
    // fragments that add up to more than 64 KiB: 1009
    let mut raw = raw_connect(&server, "").await;
    raw.write_all(&raw_frame(false, 0x2, &[0u8; 40_000], true))
        .await
        .unwrap();
    raw.write_all(&raw_frame(true, 0x0, &[0u8; 40_000], true))
        .await
        .unwrap();
    let mut c = raw_into_client(raw, Fmt::Proto).await;
    assert_eq!(c.closed_with().await, Some(1009));
    // a continuation with no message started: 1002
    let mut raw = raw_connect(&server, "").await;
    raw.write_all(&raw_frame(true, 0x0, b"x", true))
        .await
        .unwrap();
    let mut c = raw_into_client(raw, Fmt::Proto).await;
    assert_eq!(c.closed_with().await, Some(1002));
    // the server is unharmed
    let mut ok = support::Client::connect(&server, Fmt::Proto).await;
    ok.welcome().await;
    ok.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_echoed() {
    let server = Server::start(&[]);
    let mut raw = raw_connect(&server, "").await;
    raw.write_all(&raw_frame(true, 0x8, &4321u16.to_be_bytes(), true))
        .await
        .unwrap();
    let mut c = raw_into_client(raw, Fmt::Proto).await;
    assert_eq!(c.closed_with().await, Some(4321));
}
