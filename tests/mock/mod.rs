//! A mock exchange on loopback for the source tests: a WebSocket endpoint
//! the test scripts message by message (and can drop, refuse or silence),
//! and a REST endpoint answering from a table the test sets.
//!
//! It speaks whatever JSON the test hands it; the tests write the
//! exchanges' documented message formats.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What the mock sends a client.
enum Out {
    Text(String),
    Ping(Vec<u8>),
    Drop,
}

#[derive(Default)]
struct State {
    /// Senders to the connected WebSocket clients.
    clients: Vec<mpsc::UnboundedSender<Out>>,
    /// Text messages received from clients, in order.
    received: Vec<String>,
    /// WebSocket connections accepted so far.
    connections: usize,
    /// While set, new WebSocket connections are closed at once.
    refuse: bool,
    /// REST answers by path prefix: (status, body).
    rest: HashMap<String, (u16, String)>,
    /// REST requests seen (path and query).
    rest_hits: Vec<String>,
}

/// The mock exchange.
#[derive(Clone)]
pub struct MockExchange {
    pub ws_addr: SocketAddr,
    pub rest_addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl MockExchange {
    pub async fn start() -> Self {
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = Self {
            ws_addr: ws.local_addr().unwrap(),
            rest_addr: rest.local_addr().unwrap(),
            state: Arc::default(),
        };
        let state = mock.state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = ws.accept().await {
                let state = state.clone();
                tokio::spawn(serve_ws(tcp, state));
            }
        });
        let state = mock.state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = rest.accept().await {
                let state = state.clone();
                tokio::spawn(serve_rest(tcp, state));
            }
        });
        mock
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.ws_addr)
    }

    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// Sends `text` to every connected client.
    pub fn send(&self, text: impl Into<String>) {
        let text = text.into();
        let st = self.state.lock().unwrap();
        for c in &st.clients {
            let _ = c.send(Out::Text(text.clone()));
        }
    }

    /// Sends a WebSocket ping frame to every client; their pongs are
    /// recorded in [`received`](Self::received) as `PONG <payload>`.
    pub fn ping(&self, payload: &str) {
        let st = self.state.lock().unwrap();
        for c in &st.clients {
            let _ = c.send(Out::Ping(payload.as_bytes().to_vec()));
        }
    }

    /// Closes every client connection.
    pub fn drop_all(&self) {
        let mut st = self.state.lock().unwrap();
        for c in st.clients.drain(..) {
            let _ = c.send(Out::Drop);
        }
    }

    pub fn refuse(&self, on: bool) {
        self.state.lock().unwrap().refuse = on;
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn connected(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .clients
            .iter()
            .filter(|c| !c.is_closed())
            .count()
    }

    pub fn received(&self) -> Vec<String> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn set_rest(&self, path_prefix: &str, status: u16, body: impl Into<String>) {
        self.state
            .lock()
            .unwrap()
            .rest
            .insert(path_prefix.to_string(), (status, body.into()));
    }

    pub fn rest_hits(&self, prefix: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .rest_hits
            .iter()
            .filter(|h| h.starts_with(prefix))
            .count()
    }

    /// Waits until `cond` holds (or panics after 15 s).
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&MockExchange) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "mock: timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve_ws(tcp: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    if state.lock().unwrap().refuse {
        return; // dropped: the client sees the connection fail
    }
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    {
        let mut st = state.lock().unwrap();
        st.connections += 1;
        st.clients.push(out_tx);
    }
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if tx.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Out::Ping(p)) => {
                    if tx.send(Message::Ping(p.into())).await.is_err() {
                        break;
                    }
                }
                _ => break, // drop_all: close the TCP connection abruptly
            },
            inc = rx.next() => match inc {
                Some(Ok(Message::Text(t))) => {
                    let t = t.to_string();
                    if t == "ping" {
                        let _ = tx.send(Message::text("pong")).await;
                    } else {
                        state.lock().unwrap().received.push(t);
                    }
                }
                Some(Ok(Message::Pong(p))) => {
                    let p = String::from_utf8_lossy(&p).to_string();
                    state.lock().unwrap().received.push(format!("PONG {p}"));
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
}

async fn serve_rest(mut tcp: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, body) = {
        let mut st = state.lock().unwrap();
        st.rest_hits.push(path.clone());
        st.rest
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, v)| v.clone())
            .unwrap_or((404, "{\"code\":-1,\"msg\":\"not mocked\"}".into()))
    };
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(resp.as_bytes()).await;
    let _ = tcp.shutdown().await;
}
