//! The opening handshake's case table (RFC 6455 section 4), over real
//! sockets: each row a hand-written upgrade request and the HTTP status it
//! must get.

mod support;

use support::{Server, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a hand-written upgrade request; returns the status and the head.
async fn upgrade(server: &Server, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(WAIT, s.read(&mut byte))
            .await
            .expect("answer in time")
        {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_table_opening_handshake() {
    let server = Server::start(&["--analytics", "off"]);
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let version = "Sec-WebSocket-Version: 13\r\n";
    let base = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let req = |http: &str, headers: &str| format!("GET /ws {http}\r\n{headers}\r\n");
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "well formed",
            req("HTTP/1.1", &format!("{base}{key}{version}")),
            101,
        ),
        (
            "key of 3 bytes",
            req(
                "HTTP/1.1",
                &format!("{base}Sec-WebSocket-Key: YWJj\r\n{version}"),
            ),
            400,
        ),
        (
            "key not base64",
            req(
                "HTTP/1.1",
                &format!("{base}Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n{version}"),
            ),
            400,
        ),
        (
            "key of 17 bytes",
            req(
                "HTTP/1.1",
                &format!("{base}Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n{version}"),
            ),
            400,
        ),
        (
            "two keys",
            req("HTTP/1.1", &format!("{base}{key}{key}{version}")),
            400,
        ),
        ("no key", req("HTTP/1.1", &format!("{base}{version}")), 400),
        (
            "HTTP/1.0",
            req("HTTP/1.0", &format!("{base}{key}{version}")),
            505,
        ),
        (
            "version 8",
            req(
                "HTTP/1.1",
                &format!("{base}{key}Sec-WebSocket-Version: 8\r\n"),
            ),
            426,
        ),
        ("no version", req("HTTP/1.1", &format!("{base}{key}")), 426),
        (
            "two versions",
            req("HTTP/1.1", &format!("{base}{key}{version}{version}")),
            426,
        ),
        (
            "no Upgrade header",
            req(
                "HTTP/1.1",
                &format!("Host: x\r\nConnection: Upgrade\r\n{key}{version}"),
            ),
            426,
        ),
        (
            "no Host",
            req(
                "HTTP/1.1",
                &format!("Upgrade: websocket\r\nConnection: Upgrade\r\n{key}{version}"),
            ),
            400,
        ),
    ];
    let mut failures = Vec::new();
    for (name, request, want) in &cases {
        let (got, head) = upgrade(&server, request).await;
        let version_named = *want != 426
            || head
                .to_ascii_lowercase()
                .contains("sec-websocket-version: 13");
        if got == *want && version_named {
            println!("ok    {name}: {got}");
        } else {
            println!("FAIL  {name}: {got}, want {want}\n{head}");
            failures.push(*name);
        }
    }
    println!("{} cases, {} failed", cases.len(), failures.len());
    assert!(failures.is_empty(), "{failures:?}");
    // the accepted upgrades among the cases close as their sockets drop,
    // which the server sees a moment later
    support::eventually("refused upgrades to hold nothing", || async {
        let (_, stats) = server.get_json("/stats").await;
        if stats["connections"] == 0 {
            Ok(())
        } else {
            Err(stats)
        }
    })
    .await;
}
