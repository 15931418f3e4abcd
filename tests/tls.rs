//! TLS: `wss://` and `https://` on the same port with a self-signed
//! certificate made in the test with the openssl CLI (the test fails, naming
//! the install command, when openssl is absent).

mod support;

use std::sync::Arc;

use futures_util::StreamExt;
use prost::Message as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::Server;
use tickwire::protocol::pb::{ServerMessage, server_message::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn self_signed(dir: &std::path::Path) -> Option<()> {
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .current_dir(dir)
        .output();
    match ok {
        Ok(o) if o.status.success() => Some(()),
        // never reported ok without running: say how to get the tool
        other => panic!(
            "the TLS tests make their certificate with the openssl CLI \
             (`apt-get install openssl`): {other:?}"
        ),
    }
}

async fn tls_connect(
    server: &Server,
    cert: &std::path::Path,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the self-signed certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_work_with_a_self_signed_certificate() {
    let dir = std::env::temp_dir().join(format!("tickwire-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if self_signed(&dir).is_none() {
        return;
    }
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);

    // wss://: welcome, subscribe, events
    let tls = tls_connect(&server, &cert).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls)
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap().into_data();
    assert!(matches!(
        ServerMessage::decode(&first[..]).unwrap().kind,
        Some(Kind::Welcome(_))
    ));
    let sub = tickwire::protocol::pb::ClientMessage {
        kind: Some(tickwire::protocol::pb::client_message::Kind::Subscribe(
            tickwire::protocol::pb::Subscribe {
                request_id: 1,
                channels: vec!["trade.sim.BTC-USDT".into()],
                ..Default::default()
            },
        )),
    };
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        sub.encode_to_vec().into(),
    ))
    .await
    .unwrap();
    let mut events = 0;
    while events < 5 {
        // pings (heartbeats, lag probes) are answered by tungstenite
        let tokio_tungstenite::tungstenite::Message::Binary(data) =
            ws.next().await.unwrap().unwrap()
        else {
            continue;
        };
        if let Some(Kind::Event(_)) = ServerMessage::decode(&data[..]).unwrap().kind {
            events += 1;
        }
    }

    // https:// on the same port
    let mut tls = tls_connect(&server, &cert).await;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = Vec::new();
    tls.read_to_end(&mut body).await.ok();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // plain text to the TLS port gets nowhere
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(support::WAIT, plain.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    std::fs::remove_dir_all(&dir).ok();
    println!("wss:// delivered {events} events; https:// /health 200");
}
