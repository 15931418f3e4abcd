//! The connection: one owner drives the socket from [`Client::next`], so
//! there is no background task, no channel and no lock between the socket
//! and the application. Reconnects (exponential backoff, full jitter) and
//! resumption happen inside `next`, announced by [`Item::Reconnected`].

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use flate2::read::GzDecoder;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rand::Rng;
use thiserror::Error;
use tickwire_proto::pb::{self, client_message, server_message};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::book::OrderBook;
use crate::item::{Item, ServerError};
use crate::tracker::{Action, Tracker};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Close codes after which reconnecting cannot help: policy (1008), bad or
/// expired token (4001), channel not allowed (4003).
const FATAL_CLOSE_CODES: [u16; 3] = [1008, 4001, 4003];

/// The wire format of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Binary protobuf frames (the server's default, the fastest).
    #[default]
    Proto,
    /// Canonical proto3 JSON text frames.
    Json,
}

impl Format {
    fn subprotocol(self) -> &'static str {
        match self {
            Format::Proto => "tickwire.v1.proto",
            Format::Json => "tickwire.v1.json",
        }
    }
}

/// Why the client stopped or a request failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The first connection could not be made.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: tungstenite::Error,
    },
    /// The server closed with a code after which reconnecting cannot help.
    #[error("server closed the connection with {code}: {reason}")]
    Closed { code: u16, reason: String },
    /// The connection dropped while a request awaited its answer (the
    /// subscriptions are kept and resubscribed on reconnect).
    #[error("the connection dropped before the answer")]
    Disconnected,
    /// Every name of a subscribe was refused.
    #[error("subscribe refused: {0:?}")]
    Refused(Vec<ServerError>),
    /// A frame the client could not decode.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// [`Client::close`] was called.
    #[error("the client was closed")]
    ClientClosed,
}

/// How to connect and reconnect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://HOST:PORT/ws` or `wss://...`.
    pub url: String,
    /// A JWT, sent as `Authorization: Bearer` (when the server has auth on).
    pub token: Option<String>,
    /// Wire format (default proto).
    pub format: Format,
    /// First reconnect delay ceiling; doubles per failed try up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Largest reconnect delay ceiling (the delay is uniform in `0..ceiling`).
    pub reconnect_max: Duration,
    /// Keep a verified [`OrderBook`] per `book.*` channel.
    pub manage_books: bool,
}

impl ClientConfig {
    /// Defaults for `url`: proto, no token, 100 ms..10 s backoff, books kept.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            format: Format::Proto,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            manage_books: true,
        }
    }

    /// With a JWT.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// With a wire format.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// With reconnect backoff bounds.
    pub fn reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max;
        self
    }
}

/// Frames and reconnects the client counted (the tracker's counts are in
/// [`crate::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// WebSocket data frames received.
    pub frames: u64,
    /// Of those, gzipped ones.
    pub gzip_frames: u64,
    /// Successful reconnects.
    pub reconnects: u64,
}

/// A connection to a tickwire server that never hands over a silent gap.
///
/// ```no_run
/// # async fn run() -> Result<(), tickwire_client::Error> {
/// use tickwire_client::{Client, ClientConfig, Item};
///
/// let mut client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws")).await?;
/// client.subscribe(&["trade.sim.*"]).await?;
/// while let Some(item) = client.next().await {
///     match item? {
///         Item::Event(ev) => println!("{} {}", ev.channel(), ev.seq()),
///         notice => println!("notice: {notice:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Client {
    config: ClientConfig,
    ws: Option<Ws>,
    tracker: Tracker,
    /// Names and patterns the application subscribed, with their snapshot flag.
    /// Names and patterns subscribed: (name, snapshot, conflate_ms).
    subscriptions: Vec<(String, bool, u32)>,
    items: VecDeque<Item>,
    scratch: Vec<Item>,
    gunzip: Vec<u8>,
    next_id: u64,
    welcome: pb::Welcome,
    stats: ConnectionStats,
    closed: bool,
}

impl Client {
    /// Connects and reads the server's `welcome`.
    pub async fn connect(config: ClientConfig) -> Result<Self, Error> {
        let mut client = Self {
            tracker: Tracker::new(config.manage_books),
            config,
            ws: None,
            subscriptions: Vec::new(),
            items: VecDeque::new(),
            scratch: Vec::new(),
            gunzip: Vec::new(),
            next_id: 0,
            welcome: pb::Welcome::default(),
            stats: ConnectionStats::default(),
            closed: false,
        };
        let ws = client.open().await.map_err(|source| Error::Connect {
            url: client.config.url.clone(),
            source,
        })?;
        client.ws = Some(ws);
        let welcome = client.welcome.clone();
        client.tracker.welcome(&welcome);
        Ok(client)
    }

    async fn open(&mut self) -> Result<Ws, tungstenite::Error> {
        let mut request = self.config.url.as_str().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(self.config.format.subprotocol()),
        );
        if let Some(token) = &self.config.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| tungstenite::Error::HttpFormat(e.into()))?;
            headers.insert("Authorization", value);
        }
        let connector = self
            .config
            .url
            .starts_with("wss:")
            .then(|| Connector::Rustls(tls_config()));
        let (mut ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector)
                .await?;
        // The first message is always `welcome`.
        loop {
            let Some(frame) = ws.next().await else {
                return Err(tungstenite::Error::ConnectionClosed);
            };
            if let Some(msg) = self
                .decode(frame?)
                .map_err(|_| tungstenite::Error::ConnectionClosed)?
                && let Some(server_message::Kind::Welcome(w)) = msg.kind
            {
                self.welcome = w;
                return Ok(ws);
            }
        }
    }

    /// The server's `welcome` of the current connection.
    pub fn welcome(&self) -> &pb::Welcome {
        &self.welcome
    }

    /// The server's epoch.
    pub fn epoch(&self) -> &str {
        &self.welcome.epoch
    }

    /// The verified book of a `book.*` channel, when its snapshot arrived
    /// and every checksum since matched.
    pub fn book(&self, channel: &str) -> Option<&OrderBook> {
        self.tracker.book(channel)
    }

    /// What the sequencing counted (events, gaps, duplicates, checksums).
    pub fn stats(&self) -> crate::Stats {
        self.tracker.stats()
    }

    /// Frames and reconnects.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.stats
    }

    fn request_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Subscribes to names or `*` patterns with snapshots; returns the
    /// channels covered now. Refused names arrive as [`Item::Error`]; if all
    /// are refused, [`Error::Refused`].
    pub async fn subscribe(&mut self, names: &[&str]) -> Result<Vec<pb::ChannelState>, Error> {
        self.subscribe_with(names, true).await
    }

    /// As [`Client::subscribe`], choosing whether snapshots come first.
    pub async fn subscribe_with(
        &mut self,
        names: &[&str],
        snapshot: bool,
    ) -> Result<Vec<pb::ChannelState>, Error> {
        self.subscribe_request(names, snapshot, 0).await
    }

    /// Subscribes with snapshots and conflation (docs/protocol.md section
    /// 5): at most one message per channel per `conflate_ms` milliseconds
    /// (10..=60000; 0 = every event), carrying the latest state; trades are
    /// batched, never dropped. The skips arrive as [`Item::Conflated`],
    /// never as a gap. The latest subscribe naming a channel sets its rate.
    pub async fn subscribe_conflated(
        &mut self,
        names: &[&str],
        conflate_ms: u32,
    ) -> Result<Vec<pb::ChannelState>, Error> {
        self.subscribe_request(names, true, conflate_ms).await
    }

    async fn subscribe_request(
        &mut self,
        names: &[&str],
        snapshot: bool,
        conflate_ms: u32,
    ) -> Result<Vec<pb::ChannelState>, Error> {
        for name in names {
            match self.subscriptions.iter_mut().find(|(n, ..)| n == name) {
                Some(held) => held.2 = conflate_ms,
                None => self
                    .subscriptions
                    .push((name.to_string(), snapshot, conflate_ms)),
            }
        }
        let id = self.request_id();
        let request = client_message::Kind::Subscribe(pb::Subscribe {
            request_id: id,
            channels: names.iter().map(|n| n.to_string()).collect(),
            resume: Default::default(),
            snapshot: Some(snapshot),
            conflate_ms,
        });
        let (answer, errors) = self.request(request, id).await?;
        match answer {
            Some(server_message::Kind::Subscribed(s)) => Ok(s.channels),
            _ => {
                self.subscriptions
                    .retain(|(n, ..)| !names.contains(&n.as_str()));
                Err(Error::Refused(errors))
            }
        }
    }

    /// Unsubscribes names or patterns; returns the channels removed.
    pub async fn unsubscribe(&mut self, names: &[&str]) -> Result<Vec<String>, Error> {
        self.subscriptions
            .retain(|(n, ..)| !names.contains(&n.as_str()));
        let id = self.request_id();
        let request = client_message::Kind::Unsubscribe(pb::Unsubscribe {
            request_id: id,
            channels: names.iter().map(|n| n.to_string()).collect(),
        });
        match self.request(request, id).await? {
            (Some(server_message::Kind::Unsubscribed(u)), _) => {
                self.tracker.forget(&u.channels);
                Ok(u.channels)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Every channel (or those matching `pattern`) with its kind and seq.
    pub async fn list_channels(&mut self, pattern: &str) -> Result<Vec<pb::ChannelInfo>, Error> {
        let id = self.request_id();
        let request = client_message::Kind::ListChannels(pb::ListChannels {
            request_id: id,
            pattern: pattern.to_string(),
        });
        match self.request(request, id).await? {
            (Some(server_message::Kind::ChannelList(l)), _) => Ok(l.channels),
            _ => Ok(Vec::new()),
        }
    }

    /// Sends a request and a ping right behind it: the server answers in
    /// order, so the pong proves whether an answer is coming. Everything
    /// else that arrives meanwhile is queued for [`Client::next`].
    async fn request(
        &mut self,
        request: client_message::Kind,
        id: u64,
    ) -> Result<(Option<server_message::Kind>, Vec<ServerError>), Error> {
        if self.closed {
            return Err(Error::ClientClosed);
        }
        let barrier = self.request_id();
        self.send(request).await.map_err(|_| Error::Disconnected)?;
        self.send(client_message::Kind::Ping(pb::Ping {
            request_id: barrier,
        }))
        .await
        .map_err(|_| Error::Disconnected)?;
        let mut answer = None;
        let mut errors = Vec::new();
        loop {
            let Some(ws) = self.ws.as_mut() else {
                return Err(Error::Disconnected);
            };
            let frame = match ws.next().await {
                Some(Ok(frame)) => frame,
                _ => {
                    self.ws = None;
                    return Err(Error::Disconnected);
                }
            };
            let Some(msg) = self.decode(frame)? else {
                continue;
            };
            let answer_id = match &msg.kind {
                Some(server_message::Kind::Pong(p)) if p.request_id == barrier => {
                    return Ok((answer, errors));
                }
                Some(server_message::Kind::Subscribed(s)) => Some(s.request_id),
                Some(server_message::Kind::Unsubscribed(u)) => Some(u.request_id),
                Some(server_message::Kind::ChannelList(l)) => Some(l.request_id),
                Some(server_message::Kind::Error(e)) if e.request_id == id => {
                    errors.push(ServerError {
                        request_id: e.request_id,
                        code: pb::ErrorCode::try_from(e.code).unwrap_or(pb::ErrorCode::Unspecified),
                        message: e.message.clone(),
                        channel: e.channel.clone(),
                    });
                    None
                }
                _ => None,
            };
            if answer_id == Some(id) {
                answer = msg.kind.clone();
            }
            self.handle(msg).await;
        }
    }

    async fn send(&mut self, kind: client_message::Kind) -> Result<(), tungstenite::Error> {
        let msg = pb::ClientMessage { kind: Some(kind) };
        let frame = match self.config.format {
            Format::Proto => Message::Binary(msg.encode_to_vec().into()),
            Format::Json => Message::Text(
                serde_json::to_string(&msg)
                    .expect("a ClientMessage always serializes")
                    .into(),
            ),
        };
        match self.ws.as_mut() {
            Some(ws) => ws.send(frame).await,
            None => Err(tungstenite::Error::ConnectionClosed),
        }
    }

    /// Decodes a data frame (gunzipping `1f 8b` frames); control frames
    /// give `None`.
    fn decode(&mut self, frame: Message) -> Result<Option<pb::ServerMessage>, Error> {
        let bytes: &[u8] = match &frame {
            Message::Binary(b) => b,
            Message::Text(t) => t.as_bytes(),
            _ => return Ok(None),
        };
        self.stats.frames += 1;
        let (bytes, text) = if bytes.starts_with(&[0x1f, 0x8b]) {
            self.stats.gzip_frames += 1;
            self.gunzip.clear();
            GzDecoder::new(bytes)
                .read_to_end(&mut self.gunzip)
                .map_err(|e| Error::Decode(format!("gzip: {e}")))?;
            (&self.gunzip[..], self.config.format == Format::Json)
        } else {
            (bytes, matches!(frame, Message::Text(_)))
        };
        let msg = if text {
            serde_json::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?
        } else {
            pb::ServerMessage::decode(bytes).map_err(|e| Error::Decode(e.to_string()))?
        };
        Ok(Some(msg))
    }

    /// Feeds one message to the tracker and acts on what it asks.
    async fn handle(&mut self, msg: pb::ServerMessage) {
        let mut out = std::mem::take(&mut self.scratch);
        let action = self.tracker.handle(msg, &mut out);
        self.items.extend(out.drain(..));
        self.scratch = out;
        if let Some(Action::Resync(channel, reason)) = action {
            self.resync(channel, reason).await;
        }
    }

    async fn resync(&mut self, channel: String, reason: &'static str) {
        self.tracker.resyncing(&channel, reason);
        let unsubscribe = client_message::Kind::Unsubscribe(pb::Unsubscribe {
            request_id: self.request_id(),
            channels: vec![channel.clone()],
        });
        // the channel keeps the rate of the first subscription covering it
        let conflate_ms = self
            .subscriptions
            .iter()
            .find(|(n, ..)| {
                tickwire_proto::channel::Pattern::parse(n).is_ok_and(|p| p.matches(&channel))
            })
            .map_or(0, |(_, _, ms)| *ms);
        let subscribe = client_message::Kind::Subscribe(pb::Subscribe {
            request_id: self.request_id(),
            channels: vec![channel],
            resume: Default::default(),
            snapshot: Some(true),
            conflate_ms,
        });
        // A failed send surfaces as a dropped connection in `next`.
        if self.send(unsubscribe).await.is_ok() {
            let _ = self.send(subscribe).await;
        }
    }

    /// The next event or notice; `None` once [`Client::close`] was called.
    /// Reconnects by itself; an `Err` is final (a fatal close code).
    pub async fn next(&mut self) -> Option<Result<Item, Error>> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(Ok(item));
            }
            if self.closed {
                return None;
            }
            let frame = match self.ws.as_mut() {
                Some(ws) => ws.next().await,
                None => None,
            };
            match frame {
                Some(Ok(Message::Close(close))) => {
                    if let Some(c) = close
                        && FATAL_CLOSE_CODES.contains(&u16::from(c.code))
                    {
                        self.closed = true;
                        return Some(Err(Error::Closed {
                            code: u16::from(c.code),
                            reason: c.reason.to_string(),
                        }));
                    }
                }
                Some(Ok(frame)) => match self.decode(frame) {
                    Ok(Some(msg)) => self.handle(msg).await,
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                },
                Some(Err(_)) | None => {
                    self.ws = None;
                    self.reconnect().await;
                }
            }
        }
    }

    /// Reconnects with exponential backoff and full jitter, then
    /// resubscribes everything with `resume` from the tracker's positions.
    async fn reconnect(&mut self) {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let ceiling = self
                .config
                .reconnect_min
                .saturating_mul(1 << attempt.min(16))
                .min(self.config.reconnect_max);
            let delay = rand::rng().random_range(Duration::ZERO..=ceiling);
            tokio::time::sleep(delay).await;
            let Ok(ws) = self.open().await else {
                continue;
            };
            self.ws = Some(ws);
            let welcome = self.welcome.clone();
            let epoch_changed = self.tracker.welcome(&welcome);
            self.stats.reconnects += 1;
            self.items.push_back(Item::Reconnected {
                attempt,
                epoch: welcome.epoch,
                epoch_changed,
            });
            let resume = self.tracker.resume_positions();
            // one subscribe per (snapshot, conflate_ms) held
            let mut groups: Vec<(bool, u32)> = Vec::new();
            for &(_, snapshot, rate) in &self.subscriptions {
                if !groups.contains(&(snapshot, rate)) {
                    groups.push((snapshot, rate));
                }
            }
            for (snapshot, rate) in groups {
                let channels: Vec<String> = self
                    .subscriptions
                    .iter()
                    .filter(|(_, s, r)| (*s, *r) == (snapshot, rate))
                    .map(|(n, ..)| n.clone())
                    .collect();
                let subscribe = client_message::Kind::Subscribe(pb::Subscribe {
                    request_id: self.request_id(),
                    channels,
                    resume: resume.clone(),
                    snapshot: Some(snapshot),
                    conflate_ms: rate,
                });
                if self.send(subscribe).await.is_err() {
                    break; // dropped again: `next` reconnects once more
                }
            }
            return;
        }
    }

    /// Sends a close frame; `next` then returns `None`.
    pub async fn close(&mut self) {
        self.closed = true;
        if let Some(mut ws) = self.ws.take() {
            let _ = ws
                .close(Some(tungstenite::protocol::CloseFrame {
                    code: CloseCode::Normal,
                    reason: "client closing".into(),
                }))
                .await;
        }
    }
}

/// rustls with the webpki roots and the ring provider.
fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}
