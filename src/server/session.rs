//! One connection's protocol state machine: its subscriptions and cursors,
//! and the answers to its requests. No I/O here: the connection task feeds it
//! client messages ([`Session::handle`]) and asks it for the frames due, in
//! order ([`Session::collect`]).
//!
//! This file is the machine's face: its state, its queue of frames for this
//! client alone, and the dispatch of requests to the concern that owns them:
//! `access.rs` (authentication), `subscribe.rs` (subscriptions, resume),
//! `delivery.rs` (reading the cursors into the outbound batch, lag), and
//! `scan.rs` (on-demand scans). The slow-consumer policy as a whole is
//! described in `feed/cursor.rs`.
//!
//! Every request's work is bounded and measured ([`Work`]): the connection
//! charges it to the client's rate limit. Frames queued for the client
//! (answers, snapshots) are bounded like its event backlog: past
//! `--max-lag-bytes` of unsent answers the client is a slow consumer (4008).

mod access;
mod conflation;
#[cfg(test)]
mod conflation_tests;
mod delivery;
#[cfg(test)]
mod machine_tests;
mod refusals;
mod scan;
mod subscribe;

pub use conflation::{CONFLATE_MS_MAX, CONFLATE_MS_MIN, valid_conflate_ms};
pub use scan::MAX_QUEUED_SCANS;

/// Least bound on answers queued for one client (the bound is the larger
/// of this and `--max-lag-bytes`).
pub const MAX_QUEUED_ANSWER_FLOOR: u64 = 1 << 20;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;

use super::ServerContext;
use super::auth::{AuthError, Grant};
use super::limits::{ANSWER_BYTES_PER_UNIT, CHANNELS_PER_UNIT, NAMES_PER_UNIT};
use crate::feed::{Arm, Channel, ChannelId, Cursor, Doorbell, Encoded};
use crate::metrics::inc;
use crate::protocol::codec::control_frame;
use crate::protocol::pb::{
    self, ChannelInfo, ChannelList, ClientMessage, ErrorCode, Pong, ServerMessage, Welcome,
    client_message, server_message,
};
use crate::protocol::{Format, MAX_INBOUND_FRAME_BYTES, PROTOCOL_NAME, Pattern, now_ns};

/// A frame due to the client: a per-connection message or a shared event.
#[derive(Debug)]
pub enum Outbound {
    /// Encoded for this client only (welcome, answers, errors).
    Control(Bytes),
    /// Shared by every subscriber; written as is.
    Event(Arc<Encoded>),
}

/// Why the session wants the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: &'static str,
}

/// Work done for the requests handled since the last
/// [`Session::take_work_units`].
#[derive(Debug, Default, Clone, Copy)]
struct Work {
    /// Channel names and patterns in requests.
    names: u64,
    /// Channels examined (pattern expansion, listings, suggestions).
    channels: u64,
    /// Bytes of answers (snapshots included) queued by requests.
    bytes: u64,
}

/// One subscribed channel: where this client is in its ring.
struct Subscription {
    cursor: Cursor,
    /// Subscribed by exact name (kept when a covering pattern is removed).
    exact: bool,
    /// Its place in the channel's armed list (`feed/armed.rs`).
    arm: Arc<Arm>,
    /// Set when the subscription is conflated (`conflate_ms`, see
    /// `conflation.rs`); `None` for every event as it comes.
    conflation: Option<conflation::Conflation>,
}

impl Subscription {
    fn channel(&self) -> &Arc<Channel> {
        self.cursor.channel()
    }
}

/// The state of one client session.
pub struct Session {
    format: Format,
    ctx: Arc<ServerContext>,
    bell: Arc<Doorbell>,
    subs: Vec<Subscription>,
    index: HashMap<ChannelId, usize>,
    patterns: Vec<Pattern>,
    /// The `conflate_ms` of each pattern (same index as `patterns`; 0 =
    /// off): what a channel the pattern adopts later is subscribed with.
    pattern_conflate_ms: Vec<u32>,
    /// Subscriptions with a conflation (0: the session does no conflation
    /// work at all).
    conflated: usize,
    /// The longest conflation interval held while `conflated > 0` (see
    /// `Session::conflation_allowance_ns`).
    conflation_allowance_ns: i64,
    /// Channels of the registry already matched against `patterns`.
    channels_seen: usize,
    watching: bool,
    control: VecDeque<Bytes>,
    /// Bytes in `control`.
    control_bytes: u64,
    /// Bytes ever queued in `control` (a request's answer bytes are the
    /// difference it made).
    queued_total: u64,
    work: Work,
    /// Set when `control` outgrew its bound: the client does not read.
    overflowed: bool,
    /// Reused buffer of events read per drain (no allocation per wake-up).
    scratch: Vec<Arc<Encoded>>,
    auth: AuthState,
    /// Set when a request must end the connection (bad token).
    close: Option<CloseRequest>,
    /// True while a scan this connection requested is running.
    scanning: Arc<AtomicBool>,
}

/// Where the connection stands with authentication.
#[derive(Debug)]
enum AuthState {
    /// Auth is not configured.
    Off,
    /// Auth is on and no valid token was shown yet; must be by this time.
    Pending { deadline_ns: i64 },
    /// A valid token; re-checked at its expiry.
    Granted(Grant),
}

/// Most frames queued for one client beyond its events (see `enqueue`).
const CONTROL_FRAMES_MAX: usize = 65_536;

fn msg(kind: server_message::Kind) -> ServerMessage {
    ServerMessage { kind: Some(kind) }
}

impl Session {
    /// A session that starts with its `welcome` queued. `token` is one
    /// shown in the handshake (header or query), checked when auth is on.
    pub fn new(
        format: Format,
        ctx: Arc<ServerContext>,
        session_id: String,
        token: Option<String>,
    ) -> Self {
        let auth = if ctx.auth.is_some() {
            AuthState::Pending {
                deadline_ns: now_ns() + ctx.config.handshake_timeout.as_nanos() as i64,
            }
        } else {
            AuthState::Off
        };
        let mut session = Self {
            auth,
            close: None,
            format,
            bell: Doorbell::new(),
            subs: Vec::new(),
            index: HashMap::new(),
            patterns: Vec::new(),
            pattern_conflate_ms: Vec::new(),
            conflated: 0,
            conflation_allowance_ns: 0,
            channels_seen: 0,
            watching: false,
            control: VecDeque::new(),
            control_bytes: 0,
            queued_total: 0,
            work: Work::default(),
            overflowed: false,
            scratch: Vec::new(),
            ctx,
            scanning: Arc::new(AtomicBool::new(false)),
        };
        let cfg = &session.ctx.config;
        let welcome = Welcome {
            session_id,
            server_version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL_NAME.into(),
            format: format.as_str().into(),
            heartbeat_interval_ms: cfg.heartbeat_interval.as_millis().min(u32::MAX as u128) as u32,
            max_subscriptions: cfg.max_subscriptions,
            max_requests_per_second: cfg.max_requests_per_second,
            epoch: session.ctx.hub.epoch().to_string(),
            gzip_threshold_bytes: cfg.gzip_threshold.min(u32::MAX as usize) as u32,
            max_inbound_frame_bytes: MAX_INBOUND_FRAME_BYTES as u32,
            max_names_per_request: cfg.max_names_per_request,
        };
        session.push(msg(server_message::Kind::Welcome(welcome)));
        if let Some(token) = token
            && session.ctx.auth.is_some()
        {
            session.authenticate(0, &token);
        }
        session
    }

    /// The doorbell the session's channels ring.
    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.bell
    }

    /// The session's wire format.
    pub fn format(&self) -> Format {
        self.format
    }

    fn push(&mut self, m: ServerMessage) {
        let frame = control_frame(&m, self.format, self.ctx.hub.gzip_threshold());
        self.enqueue(frame);
    }

    /// Queues a frame for this client only. Past the bound (the larger of
    /// `--max-lag-bytes` and 1 MiB) the client is not reading its answers:
    /// the session asks for close 4008 instead of buffering more.
    fn enqueue(&mut self, frame: Bytes) {
        let len = frame.len() as u64;
        self.queued_total += len;
        let bound = self.ctx.config.max_lag_bytes.max(MAX_QUEUED_ANSWER_FLOOR);
        if self.control_bytes + len > bound || self.control.len() >= CONTROL_FRAMES_MAX {
            self.overflowed = true;
            return;
        }
        self.control_bytes += len;
        self.control.push_back(frame);
    }

    /// Queues a frame built by the connection (pong, ping).
    pub fn push_raw(&mut self, frame: Bytes) {
        self.enqueue(frame);
    }

    /// Queues an `error` answer.
    pub fn error(&mut self, request_id: u64, code: ErrorCode, message: String, channel: &str) {
        self.error_with(request_id, code, message, channel, Vec::new());
    }

    /// Queues an `error` answer that refuses several names at once.
    fn error_with(
        &mut self,
        request_id: u64,
        code: ErrorCode,
        message: String,
        channel: &str,
        channels: Vec<String>,
    ) {
        inc(&self.ctx.metrics.errors_sent);
        self.push(msg(server_message::Kind::Error(pb::Error {
            request_id,
            code: code as i32,
            message,
            channel: channel.to_string(),
            channels,
        })));
    }

    /// The rate-limit units the requests handled since the last call cost
    /// beyond one each: names carried, channels examined, answer bytes.
    /// What the server sends on its own (events, resyncs after lag,
    /// heartbeats) is not charged.
    pub fn take_work_units(&mut self) -> u64 {
        let work = std::mem::take(&mut self.work);
        work.names / NAMES_PER_UNIT
            + work.channels / CHANNELS_PER_UNIT
            + work.bytes / ANSWER_BYTES_PER_UNIT
    }

    /// Handles one decoded client request.
    pub fn handle(&mut self, request: ClientMessage) {
        let before = self.queued_total;
        self.dispatch(request);
        self.work.bytes += self.queued_total - before;
    }

    fn dispatch(&mut self, request: ClientMessage) {
        if let AuthState::Pending { .. } = self.auth {
            match &request.kind {
                Some(client_message::Kind::Auth(_) | client_message::Kind::Ping(_)) => {}
                _ => {
                    let request_id = request_id_of(&request);
                    self.unauthorized(request_id, AuthError::Missing.to_string());
                    return;
                }
            }
        }
        match request.kind {
            Some(client_message::Kind::Subscribe(s)) => self.subscribe(
                s.request_id,
                &s.channels,
                &s.resume,
                s.snapshot.unwrap_or(true),
                s.conflate_ms,
            ),
            Some(client_message::Kind::Unsubscribe(u)) => {
                self.unsubscribe(u.request_id, &u.channels)
            }
            Some(client_message::Kind::Ping(p)) => {
                self.push(msg(server_message::Kind::Pong(Pong {
                    request_id: p.request_id,
                    server_time_ns: now_ns(),
                })))
            }
            Some(client_message::Kind::ListChannels(l)) => {
                self.list_channels(l.request_id, &l.pattern)
            }
            // With auth off a token is accepted and ignored.
            Some(client_message::Kind::Auth(a)) => self.authenticate(0, &a.token),
            Some(client_message::Kind::RequestScan(r)) => self.request_scan(r),
            None => self.error(
                0,
                ErrorCode::BadRequest,
                crate::protocol::codec::CodecError::EmptyMessage.to_string(),
                "",
            ),
        }
    }

    /// Parses a channel name or pattern; a malformed one is answered with
    /// INVALID_CHANNEL for this request.
    fn parse_pattern(&mut self, request_id: u64, name: &str) -> Option<Pattern> {
        match Pattern::parse(name) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(
                    request_id,
                    ErrorCode::InvalidChannel,
                    format!("{name}: {e}"),
                    name,
                );
                None
            }
        }
    }

    fn subscription_count(&self) -> usize {
        self.subs.len() + self.patterns.len()
    }

    fn list_channels(&mut self, request_id: u64, pattern: &str) {
        let pattern = if pattern.is_empty() {
            None
        } else {
            let Some(p) = self.parse_pattern(request_id, pattern) else {
                return;
            };
            Some(p)
        };
        let grant = match &self.auth {
            AuthState::Granted(g) => Some(g),
            _ => None,
        };
        let all = self.ctx.hub.registry().all();
        self.work.channels += all.len() as u64;
        let channels = all
            .iter()
            .filter(|c| pattern.as_ref().is_none_or(|p| p.matches(&c.name)))
            .filter(|c| grant.is_none_or(|g| g.allows_channel(&c.name)))
            .map(|c| ChannelInfo {
                channel: c.name.to_string(),
                kind: c.kind.as_str().into(),
                seq: c.seq(),
            })
            .collect();
        self.push(msg(server_message::Kind::ChannelList(ChannelList {
            request_id,
            channels,
        })));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.bell.close();
        for sub in &self.subs {
            sub.channel().remove_subscriber(&sub.arm);
        }
        self.ctx
            .metrics
            .subscriptions
            .fetch_sub(self.subs.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The request id a client message carries (0 for `auth`).
pub(crate) fn request_id_of(m: &ClientMessage) -> u64 {
    match &m.kind {
        Some(client_message::Kind::Subscribe(m)) => m.request_id,
        Some(client_message::Kind::Unsubscribe(m)) => m.request_id,
        Some(client_message::Kind::Ping(m)) => m.request_id,
        Some(client_message::Kind::ListChannels(m)) => m.request_id,
        Some(client_message::Kind::RequestScan(m)) => m.request_id,
        Some(client_message::Kind::Auth(_)) | None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(request_id: u64) -> ClientMessage {
        ClientMessage {
            kind: Some(client_message::Kind::Ping(pb::Ping { request_id })),
        }
    }

    /// Answers a client does not take are bounded like its event backlog:
    /// past the bound the session asks for 4008 instead of buffering more.
    #[tokio::test]
    async fn unread_answers_are_bounded() {
        let ctx = crate::server::tests::context().await;
        let mut s = Session::new(Format::Proto, ctx.clone(), "a".into(), None);
        for i in 0..1000 {
            s.handle(ping(i));
        }
        let mut out = Vec::new();
        s.collect(&mut out, 2000).expect("within the bound");
        assert_eq!(out.len(), 1001, "welcome and 1000 pongs");

        let mut s = Session::new(Format::Proto, ctx, "b".into(), None);
        for i in 0..(CONTROL_FRAMES_MAX as u64 + 10) {
            s.handle(ping(i));
        }
        assert!(s.control.len() <= CONTROL_FRAMES_MAX);
        let close = s.collect(&mut out, 10).expect_err("over the bound");
        assert_eq!(close.code, crate::protocol::close::SLOW_CONSUMER);
    }

    /// The work of a request is measured: names, channels, answer bytes.
    #[tokio::test]
    async fn work_is_measured_per_request() {
        let ctx = crate::server::tests::context().await;
        let mut s = Session::new(Format::Proto, ctx, "c".into(), None);
        s.take_work_units();
        s.handle(ping(1));
        assert_eq!(s.take_work_units(), 0, "a ping costs its base unit only");
        let names = (0..256).map(|i| format!("x.y.z{i}")).collect();
        s.handle(ClientMessage {
            kind: Some(client_message::Kind::Unsubscribe(pb::Unsubscribe {
                request_id: 2,
                channels: names,
            })),
        });
        assert_eq!(s.take_work_units(), 256 / NAMES_PER_UNIT);
    }
}
