//! One connection's protocol state machine: its subscriptions and cursors,
//! and the answers to its requests. No I/O here: the connection task feeds it
//! client messages and asks it for the frames due, in order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::ServerContext;
use super::auth::{AuthError, Grant};
use crate::config::SlowConsumerPolicy;
use crate::feed::{Channel, ChannelId, Doorbell, Encoded, ReadOutcome};
use crate::metrics::{dec, inc};
use crate::protocol::codec::control_frame;
use crate::protocol::pb::{
    self, ChannelInfo, ChannelList, ChannelState, ClientMessage, ErrorCode, Lagged, Pong,
    ResumePosition, ServerMessage, Subscribed, Unsubscribed, Welcome, client_message,
    server_message,
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

struct Subscription {
    channel: Arc<Channel>,
    /// Seq of the next event this client gets.
    next_seq: u64,
    /// Subscribed by exact name (kept when a covering pattern is removed).
    exact: bool,
}

/// The state of one client session.
pub struct Session {
    format: Format,
    ctx: Arc<ServerContext>,
    bell: Arc<Doorbell>,
    subs: Vec<Subscription>,
    index: HashMap<ChannelId, usize>,
    patterns: Vec<Pattern>,
    /// Channels of the registry already matched against `patterns`.
    channels_seen: usize,
    watching: bool,
    control: VecDeque<Bytes>,
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
            channels_seen: 0,
            watching: false,
            control: VecDeque::new(),
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
        };
        session.push(msg(server_message::Kind::Welcome(welcome)));
        if let Some(token) = token
            && session.ctx.auth.is_some()
        {
            session.authenticate(0, &token);
        }
        session
    }

    /// Verifies a token (handshake or `auth` message): a valid one grants
    /// (or refreshes) access, anything else is UNAUTHORIZED and close 4001.
    fn authenticate(&mut self, request_id: u64, token: &str) {
        let Some(verifier) = &self.ctx.auth else {
            return;
        };
        match verifier.verify(token) {
            Ok(grant) => self.auth = AuthState::Granted(grant),
            Err(e) => self.unauthorized(request_id, e.to_string()),
        }
    }

    fn unauthorized(&mut self, request_id: u64, message: String) {
        self.error(request_id, ErrorCode::Unauthorized, message, "");
        self.close = Some(CloseRequest {
            code: crate::protocol::close::UNAUTHORIZED,
            reason: "missing, invalid or expired token",
        });
    }

    /// A close the last request asked for (bad or missing token).
    pub fn take_close(&mut self) -> Option<CloseRequest> {
        self.close.take()
    }

    /// When the connection must next re-check its authentication (Unix ns):
    /// the deadline to authenticate, or the token's expiry.
    pub fn auth_deadline_ns(&self) -> Option<i64> {
        match &self.auth {
            AuthState::Off => None,
            AuthState::Pending { deadline_ns } => Some(*deadline_ns),
            AuthState::Granted(g) => Some((g.expires_at as i64).saturating_mul(1_000_000_000)),
        }
    }

    /// Called at [`Session::auth_deadline_ns`]: the close to send, if the
    /// deadline passed without (new) authentication.
    pub fn auth_expired(&mut self, now_ns: i64) -> Option<CloseRequest> {
        let deadline = self.auth_deadline_ns()?;
        if now_ns < deadline {
            return None;
        }
        let message = match self.auth {
            AuthState::Pending { .. } => "no token was shown in time",
            _ => "token has expired",
        };
        self.unauthorized(0, message.into());
        self.take_close()
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
        self.control.push_back(control_frame(
            &m,
            self.format,
            self.ctx.hub.gzip_threshold(),
        ));
    }

    /// Queues a frame built by the connection (pong, ping).
    pub fn push_raw(&mut self, frame: Bytes) {
        self.control.push_back(frame);
    }

    /// Queues an `error` answer.
    pub fn error(&mut self, request_id: u64, code: ErrorCode, message: String, channel: &str) {
        inc(&self.ctx.metrics.errors_sent);
        self.push(msg(server_message::Kind::Error(pb::Error {
            request_id,
            code: code as i32,
            message,
            channel: channel.to_string(),
        })));
    }

    /// Handles one decoded client request.
    pub fn handle(&mut self, request: ClientMessage) {
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
                "ClientMessage has no kind set".into(),
                "",
            ),
        }
    }

    /// Starts a scan whose events go to `scan.<venue>.all`; this connection
    /// is subscribed to that channel (without snapshot) if it was not, so it
    /// receives its scan either way. One scan per connection at a time, and
    /// at most `--max-concurrent-scans` server-wide: beyond, RATE_LIMITED.
    fn request_scan(&mut self, r: pb::RequestScan) {
        let Some(analytics) = self.ctx.analytics.clone() else {
            self.error(
                r.request_id,
                ErrorCode::BadRequest,
                "the scanner needs analytics, which is off on this server".into(),
                "",
            );
            return;
        };
        let venue = if r.venue.is_empty() {
            "sim".to_string()
        } else {
            r.venue.clone()
        };
        let name = format!("scan.{venue}.all");
        let Some(pattern) = self.parse_pattern(r.request_id, &name) else {
            return;
        };
        if let AuthState::Granted(grant) = &self.auth
            && !grant.allows(&pattern)
        {
            self.error(
                r.request_id,
                ErrorCode::Forbidden,
                format!("the token does not grant {name}"),
                &name,
            );
            return;
        }
        if self.scanning.load(Ordering::Acquire) {
            self.error(
                r.request_id,
                ErrorCode::RateLimited,
                "a scan requested by this connection is still running".into(),
                &name,
            );
            return;
        }
        let Ok(permit) = analytics.scans.clone().try_acquire_owned() else {
            self.error(
                r.request_id,
                ErrorCode::RateLimited,
                format!(
                    "{} scans are running server-wide; try again when one is done",
                    self.ctx.config.max_concurrent_scans
                ),
                &name,
            );
            return;
        };
        let channel = match self.ctx.hub.channel(&name) {
            Ok(c) => c,
            Err(e) => {
                self.error(
                    r.request_id,
                    ErrorCode::InvalidChannel,
                    e.to_string(),
                    &name,
                );
                return;
            }
        };
        let mut snapshots = Vec::new();
        if self
            .add(&channel, true, None, false, &mut snapshots)
            .is_none()
        {
            self.error(
                r.request_id,
                ErrorCode::TooManySubscriptions,
                format!("cannot subscribe to {name}: subscription limit reached"),
                &name,
            );
            return;
        }
        self.scanning.store(true, Ordering::Release);
        tokio::spawn(crate::analytics::scanner::run(
            self.ctx.hub.clone(),
            analytics.board.clone(),
            channel,
            crate::analytics::scanner::ScanRequest {
                request_id: r.request_id,
                venue,
                top_n: r.top_n,
            },
            self.scanning.clone(),
            permit,
        ));
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

    fn subscribe(
        &mut self,
        request_id: u64,
        names: &[String],
        resume: &HashMap<String, ResumePosition>,
        snapshot: bool,
    ) {
        if names.is_empty() {
            self.error(
                request_id,
                ErrorCode::BadRequest,
                "subscribe names no channel".into(),
                "",
            );
            return;
        }
        let mut states = Vec::new();
        let mut snapshots = Vec::new();
        let mut accepted = false;
        for name in names {
            let Some(pattern) = self.parse_pattern(request_id, name) else {
                continue;
            };
            if let AuthState::Granted(grant) = &self.auth
                && !grant.allows(&pattern)
            {
                self.error(
                    request_id,
                    ErrorCode::Forbidden,
                    format!("{name}: the token does not allow this channel"),
                    name,
                );
                continue;
            }
            if pattern.is_exact() {
                let Some(channel) = self.ctx.hub.registry().get(name) else {
                    self.error(
                        request_id,
                        ErrorCode::UnknownChannel,
                        format!("no channel named {name}"),
                        name,
                    );
                    continue;
                };
                match self.add(&channel, true, resume.get(name), snapshot, &mut snapshots) {
                    Some(state) => {
                        accepted = true;
                        states.push(state);
                    }
                    None => self.too_many(request_id, name),
                }
                continue;
            }
            if !self.patterns.contains(&pattern) {
                if self.subscription_count() >= self.ctx.config.max_subscriptions as usize {
                    self.too_many(request_id, name);
                    continue;
                }
                self.patterns.push(pattern.clone());
                if !self.watching {
                    self.ctx.hub.registry().watch_new_channels(&self.bell);
                    self.watching = true;
                }
            }
            accepted = true;
            let channels = self.ctx.hub.registry().all();
            for channel in channels.iter().filter(|c| pattern.matches(&c.name)) {
                match self.add(
                    channel,
                    false,
                    resume.get(&*channel.name),
                    snapshot,
                    &mut snapshots,
                ) {
                    Some(state) => states.push(state),
                    None => {
                        self.too_many(request_id, &channel.name);
                        break;
                    }
                }
            }
            self.channels_seen = self.channels_seen.max(channels.len());
        }
        if accepted {
            self.push(msg(server_message::Kind::Subscribed(Subscribed {
                request_id,
                channels: states,
            })));
        }
        self.queue_snapshots(snapshots);
    }

    /// Queues snapshot events (after the answer that announced them).
    fn queue_snapshots(&mut self, snapshots: Vec<Arc<Encoded>>) {
        for snap in snapshots {
            self.control
                .push_back(snap.frame(self.format, &self.ctx.metrics).clone());
        }
    }

    fn too_many(&mut self, request_id: u64, name: &str) {
        let limit = self.ctx.config.max_subscriptions;
        self.error(
            request_id,
            ErrorCode::TooManySubscriptions,
            format!("{name}: a connection may hold at most {limit} subscriptions"),
            name,
        );
    }

    /// Subscribes to one concrete channel; `None` when over the limit.
    fn add(
        &mut self,
        channel: &Arc<Channel>,
        exact: bool,
        resume: Option<&ResumePosition>,
        snapshot: bool,
        snapshots: &mut Vec<Arc<Encoded>>,
    ) -> Option<ChannelState> {
        let epoch = self.ctx.hub.epoch().to_string();
        if let Some(&i) = self.index.get(&channel.id) {
            let sub = &mut self.subs[i];
            sub.exact |= exact;
            return Some(ChannelState {
                channel: channel.name.to_string(),
                seq: sub.next_seq - 1,
                epoch,
                recovered: false,
            });
        }
        if self.subscription_count() >= self.ctx.config.max_subscriptions as usize {
            return None;
        }
        // Register first: an event published from here on rings us, and the
        // cursor below decides what we have already covered.
        channel.add_subscriber(&self.bell);
        let resumable = resume.filter(|r| {
            r.epoch == epoch && r.seq <= channel.seq() && channel.log.first_seq() <= r.seq + 1
        });
        let (seq, recovered) = match resumable {
            Some(r) => (r.seq, true),
            None => {
                let pos = self.ctx.hub.position(channel);
                if snapshot && let Some(snap) = pos.snapshot {
                    snapshots.push(snap);
                }
                (pos.seq, false)
            }
        };
        self.index.insert(channel.id, self.subs.len());
        self.subs.push(Subscription {
            channel: channel.clone(),
            next_seq: seq + 1,
            exact,
        });
        inc(&self.ctx.metrics.subscriptions);
        Some(ChannelState {
            channel: channel.name.to_string(),
            seq,
            epoch,
            recovered,
        })
    }

    fn remove_where(&mut self, mut pred: impl FnMut(&Subscription) -> bool) -> Vec<String> {
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.subs.len() {
            if pred(&self.subs[i]) {
                let sub = self.subs.swap_remove(i);
                sub.channel.remove_subscriber(&self.bell);
                dec(&self.ctx.metrics.subscriptions);
                removed.push(sub.channel.name.to_string());
            } else {
                i += 1;
            }
        }
        self.index = self
            .subs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.channel.id, i))
            .collect();
        removed
    }

    fn unsubscribe(&mut self, request_id: u64, names: &[String]) {
        let mut removed = Vec::new();
        for name in names {
            let Some(pattern) = self.parse_pattern(request_id, name) else {
                continue;
            };
            if pattern.is_exact() {
                removed.extend(self.remove_where(|s| *s.channel.name == **name));
            } else if let Some(i) = self.patterns.iter().position(|p| *p == pattern) {
                self.patterns.swap_remove(i);
                let others = self.patterns.clone();
                removed.extend(self.remove_where(|s| {
                    !s.exact
                        && pattern.matches(&s.channel.name)
                        && !others.iter().any(|p| p.matches(&s.channel.name))
                }));
                removed.push(name.clone());
            }
        }
        self.push(msg(server_message::Kind::Unsubscribed(Unsubscribed {
            request_id,
            channels: removed,
        })));
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
        let channels = self
            .ctx
            .hub
            .registry()
            .all()
            .iter()
            .filter(|c| pattern.as_ref().is_none_or(|p| p.matches(&c.name)))
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

    /// Subscribes to channels created since the last look that a pattern
    /// covers, from their first event.
    fn adopt_new_channels(&mut self) {
        // hot path (every drain): one atomic load, no shared refcount touch
        if self.patterns.is_empty() || self.ctx.hub.registry().count() <= self.channels_seen {
            return;
        }
        let fresh = self.ctx.hub.registry().since(self.channels_seen);
        self.channels_seen += fresh.len();
        let mut snapshots = Vec::new();
        for channel in fresh {
            if self.index.contains_key(&channel.id)
                || !self.patterns.iter().any(|p| p.matches(&channel.name))
            {
                continue;
            }
            // A new channel is followed from seq 1 when its history still
            // holds it; otherwise from a snapshot, as on subscribe.
            let from_start = ResumePosition {
                seq: 0,
                epoch: self.ctx.hub.epoch().to_string(),
            };
            if self
                .add(&channel, false, Some(&from_start), true, &mut snapshots)
                .is_none()
            {
                self.too_many(0, &channel.name);
                break;
            }
        }
        self.queue_snapshots(snapshots);
    }

    /// Moves the frames now due into `out` (at most `max`): control frames
    /// first, then events in per-channel seq order. A connection past its lag
    /// bound is resynchronised (`lagged` + snapshot per lagging channel) or,
    /// with `--slow-consumer close`, gets a close request (4008).
    ///
    /// hot path: per subscribed channel one lock-free "anything new?" check,
    /// then `Arc` clones of the shared events; nothing is encoded or copied.
    pub fn collect(&mut self, out: &mut Vec<Outbound>, max: usize) -> Result<(), CloseRequest> {
        self.adopt_new_channels();
        // Lag is settled before control frames go out, so a `lagged` and its
        // snapshot always precede the channel's newer events.
        if self.over_lag_bound() {
            self.fell_behind(None)?;
        }
        while out.len() < max {
            let Some(frame) = self.control.pop_front() else {
                break;
            };
            out.push(Outbound::Control(frame));
        }
        let mut events = std::mem::take(&mut self.scratch);
        let mut behind = Vec::new();
        for (i, sub) in self.subs.iter_mut().enumerate() {
            if sub.channel.seq() < sub.next_seq {
                continue;
            }
            let room = max.saturating_sub(out.len() + events.len());
            if room == 0 {
                break;
            }
            match sub.channel.log.read_from(sub.next_seq, room, &mut events) {
                ReadOutcome::Read(n) => sub.next_seq += n as u64,
                ReadOutcome::Behind { .. } => behind.push(i),
            }
        }
        out.extend(events.drain(..).map(Outbound::Event));
        self.scratch = events;
        for i in behind {
            // its frames go out on the next drain, before its newer events
            self.fell_behind(Some(i))?;
        }
        Ok(())
    }

    /// Moves only the queued control frames (replies, errors) into `out`, at
    /// most `max`: what a connection about to close still owes the client.
    pub fn collect_control(&mut self, out: &mut Vec<Outbound>, max: usize) {
        while out.len() < max {
            let Some(frame) = self.control.pop_front() else {
                break;
            };
            out.push(Outbound::Control(frame));
        }
    }

    /// Applies the slow-consumer policy now (the connection found itself
    /// too far behind in time): `lagged` and a snapshot for every channel
    /// with a backlog, or a 4008 close request.
    pub fn resync_lagging(&mut self) -> Result<(), CloseRequest> {
        self.fell_behind(None)
    }

    /// Whether the events (or bytes) not yet taken from the channels' rings
    /// exceed the configured bound.
    fn over_lag_bound(&self) -> bool {
        let cfg = &self.ctx.config;
        let pending: u64 = self
            .subs
            .iter()
            .map(|s| (s.channel.seq() + 1).saturating_sub(s.next_seq))
            .sum();
        if pending > cfg.max_lag_messages {
            return true;
        }
        // Bytes are only worth sizing once there is a real backlog.
        cfg.max_lag_bytes > 0
            && pending > 64
            && self
                .subs
                .iter()
                .map(|s| s.channel.log.pending_bytes(s.next_seq).unwrap_or(u64::MAX))
                .fold(0u64, u64::saturating_add)
                > cfg.max_lag_bytes
    }

    /// Applies the slow-consumer policy to one channel (`Some(i)`, it fell
    /// out of the history window) or to every channel with a backlog.
    fn fell_behind(&mut self, only: Option<usize>) -> Result<(), CloseRequest> {
        if self.ctx.config.slow_consumer == SlowConsumerPolicy::Close {
            inc(&self.ctx.metrics.slow_consumer_closes);
            return Err(CloseRequest {
                code: crate::protocol::close::SLOW_CONSUMER,
                reason: "slow consumer: fell too far behind",
            });
        }
        let lagging: Vec<usize> = match only {
            Some(i) => vec![i],
            None => (0..self.subs.len())
                .filter(|&i| self.subs[i].channel.seq() >= self.subs[i].next_seq)
                .collect(),
        };
        for i in lagging {
            let channel = self.subs[i].channel.clone();
            let first_seq = self.subs[i].next_seq;
            let pos = self.ctx.hub.position(&channel);
            self.subs[i].next_seq = pos.seq + 1;
            inc(&self.ctx.metrics.lagged_sent);
            self.push(msg(server_message::Kind::Lagged(Lagged {
                channel: channel.name.to_string(),
                first_seq,
                last_seq: pos.seq,
            })));
            if let Some(snap) = pos.snapshot {
                self.control
                    .push_back(snap.frame(self.format, &self.ctx.metrics).clone());
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.bell.close();
        for sub in &self.subs {
            sub.channel.remove_subscriber(&self.bell);
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
