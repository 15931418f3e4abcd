//! Connection, origin and request-rate limits, answered as docs/protocol.md and
//! the README say, with the connection kept where the protocol says so.

mod support;

use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{self, ErrorCode, client_message, server_message::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a raw upgrade request and returns the HTTP status.
async fn upgrade_status(server: &Server, extra_headers: &str) -> u16 {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 12];
    tokio::time::timeout(support::WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_answer_before_the_upgrade() {
    let server = Server::start(&["--max-connections", "3"]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&server, Fmt::Proto).await;
        c.welcome().await;
        held.push(c);
    }
    assert_eq!(upgrade_status(&server, "").await, 503);
    // a place frees up when a client leaves
    drop(held.pop());
    support::eventually("the closed connection's place to be released", || async {
        upgrade_status(&server, "").await == 101
    })
    .await;

    let server = Server::start(&["--max-connections-per-ip", "2"]);
    let _a = Client::connect(&server, Fmt::Proto).await;
    let _b = Client::connect(&server, Fmt::Proto).await;
    assert_eq!(upgrade_status(&server, "").await, 429);
    // another loopback address is another client
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let (mut c, _) = tokio_tungstenite::client_async(
        server.ws_url(""),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    use futures_util::StreamExt;
    assert!(
        matches!(c.next().await, Some(Ok(_))),
        "welcome from another address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_are_refused() {
    let server = Server::start(&[
        "--allowed-origins",
        "https://app.example.com,http://127.0.0.1:8080",
    ]);
    assert_eq!(
        upgrade_status(&server, "Origin: https://evil.example.net\r\n").await,
        403
    );
    assert_eq!(
        upgrade_status(&server, "Origin: https://app.example.com\r\n").await,
        101
    );
    assert_eq!(
        upgrade_status(&server, "").await,
        101,
        "non-browser clients send no Origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_flood_gets_rate_limited_then_4029() {
    let server = Server::start(&["--max-requests-per-second", "5"]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    assert_eq!(c.welcome().await.max_requests_per_second, 5);
    for request_id in 1..=8 {
        c.send(client_message::Kind::Ping(pb::Ping { request_id }))
            .await;
    }
    let (mut pongs, mut limited) = (0, Vec::new());
    while pongs + limited.len() < 8 {
        match c.next_msg().await {
            Kind::Pong(_) => pongs += 1,
            Kind::Error(e) => {
                assert_eq!(e.code, ErrorCode::RateLimited as i32);
                limited.push(e.request_id);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pongs, 5, "the burst is the limit");
    assert_eq!(limited, vec![6, 7, 8], "refused requests are named");
    // it goes on: the connection is closed with 4029 (sends may start
    // failing once the server has closed)
    for request_id in 100..120 {
        use futures_util::SinkExt;
        use prost::Message as _;
        let ping = pb::ClientMessage {
            kind: Some(client_message::Kind::Ping(pb::Ping { request_id })),
        };
        let frame = tokio_tungstenite::tungstenite::Message::Binary(ping.encode_to_vec().into());
        let _ = c.ws.send(frame).await;
    }
    assert_eq!(c.closed_with().await, Some(4029));
    // a client at the limit is unaffected
    let mut ok = Client::connect(&server, Fmt::Proto).await;
    ok.welcome().await;
    ok.ping().await;
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["errors_sent"].as_u64().unwrap() >= 3);
}
