//! The plain HTTP side of the port: `HEAD` answers like `GET` without a
//! body, 405 says which methods a route takes, query parameters are
//! form-decoded, and the startup log shows the dashboard URL.

mod support;

use support::{Client, Fmt, Server, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let server = Server::start(&["--sim-rate", "0"]);
    for path in ["/health", "/stats", "/channels", "/metrics", "/"] {
        let (get_status, get_head, get_body) = server.request("GET", path).await;
        let (status, head, body) = server.request("HEAD", path).await;
        assert_eq!(status, get_status, "HEAD {path}");
        assert_eq!(status, 200, "HEAD {path}");
        assert!(body.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            header(&head, "content-type"),
            header(&get_head, "content-type"),
            "{path}"
        );
        let len: usize = header(&head, "content-length")
            .unwrap_or_else(|| panic!("HEAD {path} has no content-length: {head}"))
            .parse()
            .unwrap();
        assert!(len > 0, "{path}");
        if path == "/" {
            assert_eq!(len, get_body.len(), "the dashboard's length");
        }
    }
    // HEAD never upgrades; an unknown path stays 404
    assert_eq!(server.request("HEAD", "/ws").await.0, 426);
    assert_eq!(server.request("HEAD", "/nope").await.0, 404);
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let server = Server::start(&["--sim-rate", "0"]);
    let (status, head, body) = server.request("DELETE", "/health").await;
    assert_eq!(status, 405);
    assert_eq!(header(&head, "allow"), Some("get, head"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["allow"], "GET, HEAD");
    let (status, head, _) = server.request("GET", "/publish").await;
    assert_eq!(status, 405);
    assert_eq!(header(&head, "allow"), Some("post"));
}

#[tokio::test]
async fn query_parameters_are_form_decoded() {
    let server = Server::start(&["--sim-rate", "0"]);
    // `%6A` is `j`: the escaped form of ?format=json picks JSON
    let mut c = Client::connect_url(&server.ws_url("?x=1&format=%6Ason"), Fmt::Json, None).await;
    c.welcome().await;
    // a refused format is named decoded (`%2B` is `+`)
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = "GET /ws?format=x%2By HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
               Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("unknown format `x+y`"), "{text}");
}

#[test]
fn the_startup_log_shows_the_dashboard_url() {
    let server = Server::start(&["--sim-rate", "0"]);
    let want = format!("dashboard: http://{}/", server.addr);
    support::eventually_sync("the dashboard line", || {
        let log = server.log();
        if log.iter().any(|l| l.contains(&want)) {
            Ok(())
        } else {
            Err(log)
        }
    });
}
