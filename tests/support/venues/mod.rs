//! A mock exchange on loopback for the source tests: a WebSocket endpoint
//! the test scripts message by message (and can drop, refuse or silence),
//! and a REST endpoint answering from a table the test sets.
//!
//! It speaks whatever JSON the test hands it; the tests write the
//! exchanges' documented message formats. Venue behaviour it reproduces
//! by itself, each from the venue's docs as of the date given:
//!
//! - REST keeps connections alive (HTTP/1.1) and gzips a body when asked
//!   (`Accept-Encoding: gzip`), as both venues' CDNs do.
//! - One-shot REST answers with headers ([`MockExchange::push_rest`]) model
//!   Binance's 429 + `Retry-After` and 418 bans (Spot API docs, "LIMITS",
//!   as of 2025-11-12) and 400 `{"code":-1121,"msg":"Invalid symbol."}`
//!   (Spot API docs, "Error codes", as of 2025-11-12), and
//!   `X-MBX-USED-WEIGHT-1M` on every answer ([`MockExchange::set_weight_header`]).
//! - OKX subscribe answers ([`MockExchange::okx_auto`]): each `subscribe`
//!   carrying an `id` is acknowledged per argument with that `id`, or
//!   refused with `{"event":"error","code":"60018",...,"id":..}` for an
//!   unknown instrument (OKX API v5 docs, "WebSocket: subscribe" and error
//!   code 60018, as of 2026-05).
//! - Bybit acknowledgements ([`MockExchange::bybit_auto`]): each
//!   `subscribe` is answered `{"success":true,"ret_msg":"subscribe",
//!   "req_id":..,"op":"subscribe"}` and each `{"op":"ping"}` with a pong
//!   (Bybit V5 docs, "WebSocket Stream: Connect", as of 2026-05).
//! - Coinbase Advanced Trade ([`MockExchange::coinbase_auto`], see
//!   `coinbase.rs`): per-connection `sequence_num`, `subscriptions`
//!   answers, heartbeats, idle channels closed.

#![allow(dead_code)]

pub mod coinbase;
pub mod kraken;
pub mod refbook;
pub mod seam;
pub mod source;
pub mod twelvedata;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// What the mock sends a client.
enum Out {
    Text(String),
    Ping(Vec<u8>),
    Drop,
    /// Coinbase mode: leave this many `sequence_num`s out.
    Skip(u64),
}

/// A canned REST answer: status, headers, body.
type Canned = (u16, Vec<(String, String)>, String);

#[derive(Default)]
struct State {
    /// Senders to the connected WebSocket clients, in connection order.
    clients: Vec<mpsc::UnboundedSender<Out>>,
    /// Paths of the WebSocket connections, in connection order.
    ws_paths: Vec<String>,
    /// OKX auto-answer mode: instruments refused with 60018.
    okx_refuse: Option<Vec<String>>,
    /// One-shot REST answers by path prefix, used before `rest`.
    rest_once: HashMap<String, Vec<Canned>>,
    /// REST request times (path, when).
    rest_times: Vec<(String, Instant)>,
    /// TCP connections the REST endpoint accepted.
    rest_connections: usize,
    /// REST answers sent gzipped (the client asked for it).
    rest_gzipped: usize,
    /// `X-MBX-USED-WEIGHT-1M` sent with every REST answer, when set.
    weight_header: Option<u32>,
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
    /// Bybit mode: subscribes and pings are answered.
    bybit: bool,
    /// Coinbase mode, when on.
    coinbase: Option<coinbase::Mode>,
    /// Coinbase mode: heartbeats sent, all connections.
    heartbeats_sent: u64,
}

/// The mock exchange.
#[derive(Clone)]
pub struct MockExchange {
    pub ws_addr: SocketAddr,
    pub rest_addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// While true, REST requests are held (recorded, not answered).
    rest_paused: Arc<watch::Sender<bool>>,
}

impl MockExchange {
    pub async fn start() -> Self {
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = Self {
            ws_addr: ws.local_addr().unwrap(),
            rest_addr: rest.local_addr().unwrap(),
            state: Arc::default(),
            rest_paused: Arc::new(watch::Sender::new(false)),
        };
        let state = mock.state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = ws.accept().await {
                let state = state.clone();
                tokio::spawn(serve_ws(tcp, state));
            }
        });
        let state = mock.state.clone();
        let paused = mock.rest_paused.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = rest.accept().await {
                let state = state.clone();
                state.lock().unwrap().rest_connections += 1;
                tokio::spawn(serve_rest(tcp, state, paused.subscribe()));
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

    /// Sends `text` to the `n`th connection made (0-based), if still open.
    pub fn send_to(&self, n: usize, text: impl Into<String>) {
        let st = self.state.lock().unwrap();
        if let Some(c) = st.clients.get(n) {
            let _ = c.send(Out::Text(text.into()));
        }
    }

    /// Closes the `n`th connection made (0-based).
    pub fn drop_conn(&self, n: usize) {
        let st = self.state.lock().unwrap();
        if let Some(c) = st.clients.get(n) {
            let _ = c.send(Out::Drop);
        }
    }

    /// Whether the `n`th connection made is still open.
    pub fn is_open(&self, n: usize) -> bool {
        self.state
            .lock()
            .unwrap()
            .clients
            .get(n)
            .is_some_and(|c| !c.is_closed())
    }

    /// The request paths of the WebSocket connections, in order.
    pub fn ws_paths(&self) -> Vec<String> {
        self.state.lock().unwrap().ws_paths.clone()
    }

    /// OKX mode: answers each `subscribe` by itself, refusing `refused`
    /// instruments with 60018.
    pub fn okx_auto(&self, refused: &[&str]) {
        self.state.lock().unwrap().okx_refuse =
            Some(refused.iter().map(|s| s.to_string()).collect());
    }

    /// Bybit mode: answers each `subscribe` and `ping` op as Bybit does.
    pub fn bybit_auto(&self) {
        self.state.lock().unwrap().bybit = true;
    }

    /// Coinbase mode: stamps `sequence_num`, answers subscribes, sends
    /// heartbeats every `heartbeat_every` once subscribed to them, and
    /// closes a connection idle for `idle_close` without them.
    pub fn coinbase_auto(&self, heartbeat_every: Duration, idle_close: Duration) {
        self.state.lock().unwrap().coinbase = Some(coinbase::Mode {
            heartbeat_every,
            idle_close,
        });
    }

    /// Coinbase mode: the `n`th connection's next message skips `by`
    /// sequence numbers (a lost message).
    pub fn coinbase_skip(&self, n: usize, by: u64) {
        let st = self.state.lock().unwrap();
        if let Some(c) = st.clients.get(n) {
            let _ = c.send(Out::Skip(by));
        }
    }

    /// Coinbase mode: heartbeats sent so far, all connections.
    pub fn heartbeats_sent(&self) -> u64 {
        self.state.lock().unwrap().heartbeats_sent
    }

    /// Queues a one-shot REST answer with headers for `path_prefix`;
    /// queued answers go before the [`set_rest`](Self::set_rest) one.
    pub fn push_rest(&self, path_prefix: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.state
            .lock()
            .unwrap()
            .rest_once
            .entry(path_prefix.to_string())
            .or_default()
            .push((
                status,
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body.to_string(),
            ));
    }

    /// Holds REST answers while `on` (requests are still recorded).
    pub fn pause_rest(&self, on: bool) {
        self.rest_paused.send_replace(on);
    }

    /// Sends `X-MBX-USED-WEIGHT-1M: used` with every REST answer.
    pub fn set_weight_header(&self, used: u32) {
        self.state.lock().unwrap().weight_header = Some(used);
    }

    /// When each REST request starting with `prefix` came.
    pub fn rest_times(&self, prefix: &str) -> Vec<Instant> {
        self.state
            .lock()
            .unwrap()
            .rest_times
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    }

    /// REST answers sent gzipped.
    pub fn rest_gzipped(&self) -> usize {
        self.state.lock().unwrap().rest_gzipped
    }

    /// TCP connections the REST endpoint accepted.
    pub fn rest_connections(&self) -> usize {
        self.state.lock().unwrap().rest_connections
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

    /// Every REST request's path and query, in arrival order.
    pub fn rest_paths(&self) -> Vec<String> {
        self.state.lock().unwrap().rest_hits.clone()
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

    /// Waits until `cond` holds (hang guard: [`WAIT`](crate::support::WAIT)).
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&MockExchange) -> bool) {
        crate::support::eventually(&format!("mock: {what}"), || std::future::ready(cond(self)))
            .await
    }
}

// the handshake callback's error type is tungstenite's, not ours
#[allow(clippy::result_large_err)]
async fn serve_ws(tcp: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    if state.lock().unwrap().refuse {
        return; // dropped: the client sees the connection fail
    }
    let path = Arc::new(Mutex::new(String::new()));
    let seen = path.clone();
    let callback = move |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        *seen.lock().unwrap() = req.uri().to_string();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let (conn_id, cb_mode) = {
        let mut st = state.lock().unwrap();
        st.connections += 1;
        st.clients.push(out_tx);
        st.ws_paths.push(path.lock().unwrap().clone());
        (st.connections, st.coinbase)
    };
    let mut cb = cb_mode.map(coinbase::Conn::new);
    let mut cb_tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = cb_tick.tick(), if cb.is_some() => {
                let Some(conn) = cb.as_mut() else { continue };
                match conn.tick() {
                    Ok(Some(hb)) => {
                        let hb = conn.stamp(&hb);
                        state.lock().unwrap().heartbeats_sent += 1;
                        if tx.send(Message::text(hb)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(()) => break, // Coinbase closes it
                }
            }
            out = out_rx.recv() => match out {
                Some(Out::Text(text)) => {
                    let text = match cb.as_mut() {
                        Some(conn) => conn.stamp(&text),
                        None => text,
                    };
                    if tx.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Out::Skip(by)) => {
                    if let Some(conn) = cb.as_mut() {
                        conn.skip(by);
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
                        let mut answers = okx_answers(&state, &t, conn_id);
                        if state.lock().unwrap().bybit {
                            answers = bybit_answers(&t, conn_id);
                        }
                        if let Some(conn) = cb.as_mut() {
                            answers = conn
                                .on_client(&t)
                                .iter()
                                .map(|a| conn.stamp(a))
                                .collect();
                        }
                        state.lock().unwrap().received.push(t);
                        for a in answers {
                            if tx.send(Message::text(a)).await.is_err() {
                                break;
                            }
                        }
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

/// Bybit mode's answer to a client's op.
fn bybit_answers(text: &str, conn_id: usize) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let conn = format!("mock-{conn_id}");
    match v["op"].as_str() {
        Some(op @ ("subscribe" | "unsubscribe")) => vec![
            serde_json::json!({"success": true,
            "ret_msg": op, "conn_id": conn, "req_id": v["req_id"], "op": op})
            .to_string(),
        ],
        Some("ping") => vec![
            serde_json::json!({"success": true, "ret_msg": "pong",
            "conn_id": conn, "req_id": v["req_id"], "op": "ping"})
            .to_string(),
        ],
        _ => Vec::new(),
    }
}

/// OKX mode's answers to a client's op (none outside OKX mode).
fn okx_answers(state: &Arc<Mutex<State>>, text: &str, conn_id: usize) -> Vec<String> {
    let Some(refused) = state.lock().unwrap().okx_refuse.clone() else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    if v["op"] != "subscribe" {
        return Vec::new();
    }
    let id = v["id"].clone();
    let conn = format!("mock-{conn_id}");
    let args = v["args"].as_array().cloned().unwrap_or_default();
    if let Some(bad) = args
        .iter()
        .find(|a| refused.iter().any(|r| a["instId"] == r.as_str()))
    {
        // OKX answers a request naming an unknown instrument with one error
        let msg = format!(
            "Wrong URL or channel:{},instId:{} doesn't exist. Please use the correct URL, channel and parameters referring to API document.",
            bad["channel"].as_str().unwrap_or_default(),
            bad["instId"].as_str().unwrap_or_default()
        );
        return vec![serde_json::json!({"event": "error", "id": id, "code": "60018", "msg": msg, "connId": conn}).to_string()];
    }
    args.iter()
        .map(|a| {
            serde_json::json!({"event": "subscribe", "id": id, "arg": a, "connId": conn})
                .to_string()
        })
        .collect()
}

/// One REST connection: answers requests until the client closes it
/// (HTTP/1.1 keep-alive).
async fn serve_rest(
    mut tcp: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let gzip = head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("accept-encoding:") && l.contains("gzip"));
        {
            let mut st = state.lock().unwrap();
            st.rest_hits.push(path.clone());
            st.rest_times.push((path.clone(), Instant::now()));
        }
        // held until the test resumes REST (or the mock is gone)
        let _ = paused.wait_for(|p| !*p).await;
        let (status, headers, body, weight) = {
            let mut st = state.lock().unwrap();
            let once = st
                .rest_once
                .iter_mut()
                .filter(|(prefix, q)| path.starts_with(prefix.as_str()) && !q.is_empty())
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, q)| q.remove(0));
            let (status, headers, body) = once.unwrap_or_else(|| {
                st.rest
                    .iter()
                    .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
                    .max_by_key(|(prefix, _)| prefix.len())
                    .map(|(_, (s, b))| (*s, Vec::new(), b.clone()))
                    .unwrap_or((
                        404,
                        Vec::new(),
                        "{\"code\":-1,\"msg\":\"not mocked\"}".into(),
                    ))
            });
            (status, headers, body, st.weight_header)
        };
        let mut extra = String::new();
        for (k, v) in headers {
            extra.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(w) = weight {
            extra.push_str(&format!("X-MBX-USED-WEIGHT-1M: {w}\r\n"));
        }
        let body = if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(body.as_bytes()).unwrap();
            extra.push_str("Content-Encoding: gzip\r\n");
            state.lock().unwrap().rest_gzipped += 1;
            enc.finish().unwrap()
        } else {
            body.into_bytes()
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        );
        if tcp.write_all(resp.as_bytes()).await.is_err() || tcp.write_all(&body).await.is_err() {
            return;
        }
    }
}
