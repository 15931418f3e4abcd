//! A WebSocket client speaking the tickwire protocol (an independent
//! implementation: tungstenite), and raw frames for what no well-behaved
//! client would send.

use std::io::Read;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tickwire::protocol::pb::{ClientMessage, ServerMessage, client_message, server_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{
    self, Message, client::IntoClientRequest, protocol::CloseFrame,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Server, WAIT, guarded};

/// Wire format of a test client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Proto,
    Json,
}

/// What one received frame was.
#[derive(Debug, Clone)]
pub struct Received {
    pub msg: ServerMessage,
    pub gzipped: bool,
    pub text: bool,
    /// The (un-gzipped) payload bytes: protobuf or JSON text.
    pub raw: Vec<u8>,
}

/// A WebSocket client speaking the tickwire protocol.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub fmt: Fmt,
    pub subprotocol: Option<String>,
    pub next_request: u64,
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

pub fn decode(fmt: Fmt, text: bool, data: &[u8]) -> Received {
    let gzipped = data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    assert!(!(gzipped && text), "text frames are never gzipped");
    let raw = if gzipped { gunzip(data) } else { data.to_vec() };
    let msg = match fmt {
        Fmt::Proto => {
            assert!(!text, "proto mode sends binary frames only");
            ServerMessage::decode(&raw[..]).expect("valid protobuf ServerMessage")
        }
        Fmt::Json => {
            assert!(text || gzipped, "json mode sends text frames (or gzip)");
            serde_json::from_slice(&raw)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&raw)))
        }
    };
    Received {
        msg,
        gzipped,
        text,
        raw,
    }
}

impl Client {
    /// Connects with `?format=` (proto when `Fmt::Proto`).
    pub async fn connect(server: &Server, fmt: Fmt) -> Self {
        let q = match fmt {
            Fmt::Proto => "",
            Fmt::Json => "?format=json",
        };
        Self::connect_url(&server.ws_url(q), fmt, None).await
    }

    /// Connects offering a subprotocol.
    pub async fn connect_url(url: &str, fmt: Fmt, subprotocol: Option<&str>) -> Self {
        let mut req = url.into_client_request().unwrap();
        if let Some(p) = subprotocol {
            req.headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timeout")
            .expect("websocket connect");
        let subprotocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        Self {
            ws,
            fmt,
            subprotocol,
            next_request: 1,
        }
    }

    pub fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    pub async fn send(&mut self, msg: client_message::Kind) {
        let msg = ClientMessage { kind: Some(msg) };
        let frame = match self.fmt {
            Fmt::Proto => Message::Binary(msg.encode_to_vec().into()),
            Fmt::Json => Message::Text(serde_json::to_string(&msg).unwrap().into()),
        };
        self.ws.send(frame).await.expect("send");
    }

    pub async fn send_raw(&mut self, frame: Message) {
        self.ws.send(frame).await.expect("send");
    }

    /// Next data frame (pings are answered by tungstenite and skipped).
    pub async fn next_frame(&mut self) -> Message {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("websocket error");
            match m {
                Message::Ping(_) | Message::Pong(_) => continue,
                other => return other,
            }
        }
    }

    pub async fn next(&mut self) -> Received {
        match self.next_frame().await {
            Message::Binary(b) => decode(self.fmt, false, &b),
            Message::Text(t) => decode(self.fmt, true, t.as_bytes()),
            Message::Close(c) => panic!("unexpected close: {c:?}"),
            other => panic!("unexpected frame {other:?}"),
        }
    }

    pub async fn next_msg(&mut self) -> server_message::Kind {
        self.next().await.msg.kind.expect("message kind set")
    }

    /// Skips messages until `pick` returns something.
    pub async fn until<T>(
        &mut self,
        mut pick: impl FnMut(&server_message::Kind) -> Option<T>,
    ) -> T {
        guarded("a message the test picks", async {
            loop {
                let kind = self.next_msg().await;
                if let Some(t) = pick(&kind) {
                    return t;
                }
            }
        })
        .await
    }

    /// Waits for the close frame; returns its code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        guarded("a close frame", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                        return Some(code.into());
                    }
                    Some(Ok(Message::Close(None))) => return None,
                    Some(Ok(_)) => continue,
                    Some(Err(tungstenite::Error::ConnectionClosed)) | None => return None,
                    Some(Err(e)) => panic!("error before close frame: {e}"),
                }
            }
        })
        .await
    }

    /// Reads the welcome (the first message) and returns it.
    pub async fn welcome(&mut self) -> tickwire::protocol::pb::Welcome {
        match self.next_msg().await {
            server_message::Kind::Welcome(w) => w,
            other => panic!("first message is not welcome: {other:?}"),
        }
    }

    /// Subscribes and returns the `subscribed` answer.
    pub async fn subscribe(&mut self, channels: &[&str]) -> tickwire::protocol::pb::Subscribed {
        let request_id = self.request_id();
        self.send(client_message::Kind::Subscribe(
            tickwire::protocol::pb::Subscribe {
                request_id,
                channels: channels.iter().map(|s| s.to_string()).collect(),
                resume: Default::default(),
                snapshot: None,
                conflate_ms: 0,
            },
        ))
        .await;
        self.until(|k| match k {
            server_message::Kind::Subscribed(s) if s.request_id == request_id => Some(s.clone()),
            server_message::Kind::Error(e) if e.request_id == request_id => {
                panic!("subscribe failed: {e:?}")
            }
            _ => None,
        })
        .await
    }

    /// Sends a ping and waits for its pong, proving the connection is usable.
    pub async fn ping(&mut self) {
        let request_id = self.request_id();
        self.send(client_message::Kind::Ping(tickwire::protocol::pb::Ping {
            request_id,
        }))
        .await;
        self.until(|k| match k {
            server_message::Kind::Pong(p) if p.request_id == request_id => Some(()),
            _ => None,
        })
        .await
    }
}

/// A raw TCP connection after a hand-made WebSocket upgrade, for sending
/// frames no well-behaved client library would send.
pub async fn raw_connect(server: &Server, query: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET /ws{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(WAIT, s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// A client frame; `mask` false makes an (illegal) unmasked one.
pub fn raw_frame(fin: bool, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=65535 => {
            out.push(m | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    if mask {
        out.extend(key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Wraps a raw connection to read the server's frames with tungstenite.
pub async fn raw_into_client(stream: TcpStream, fmt: Fmt) -> Client {
    let ws = WebSocketStream::from_raw_socket(
        MaybeTlsStream::Plain(stream),
        tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    Client {
        ws,
        fmt,
        subprotocol: None,
        next_request: 100,
    }
}

impl Client {
    /// Connects with a small socket receive buffer (a client that can fall
    /// behind quickly).
    pub async fn connect_small_buffer(server: &Server, fmt: Fmt, recv_buffer: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(recv_buffer).unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        let q = if fmt == Fmt::Json { "?format=json" } else { "" };
        let (ws, _) =
            tokio_tungstenite::client_async(server.ws_url(q), MaybeTlsStream::Plain(stream))
                .await
                .expect("websocket connect");
        Self {
            ws,
            fmt,
            subprotocol: None,
            next_request: 1,
        }
    }
}
