//! The edge side: channels follow JetStream only while clients want them.
//!
//! The edge learns channel names from the stream's subjects (no message is
//! read for that). When a client subscribes, the connection first awaits
//! [`Edge::prepare`]: each channel it names is followed (one ordered
//! consumer filtered to `tw.ev.<channel>`, reading the retained history
//! into the edge's ring, then live) and caught up to what JetStream held
//! when the request came, so the subscribe is answered with the cluster's
//! seq and a resume is served from history. A channel without subscribers
//! for [`UNFOLLOW_AFTER`] stops being followed; it resumes from the next
//! stream sequence when wanted again.
//!
//! Every [`EPOCH_EVERY`] the edge reads the stored epoch again. A different
//! one means an ingest found the history gone and numbers every channel
//! from 1 again: the edge's rings (old seqs) cannot serve that, so it
//! records the change and cancels its shutdown token. The server closes
//! every client with 1001 and returns [`super::ClusterError::EpochChanged`];
//! the process exits non-zero for its supervisor to start it again with
//! the new epoch, where clients resume with `recovered = false`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ingest::{decode_event, decode_events};
use super::{Link, event_subject, snap_subject};
use crate::feed::{Channel, Hub, Replicated};
use crate::protocol::pb::event::Payload;
use crate::protocol::pb::{BookSnapshot, ClientMessage, client_message};
use crate::protocol::{ChannelKind, Pattern};

/// A channel nobody on this edge wants is no longer followed after this.
pub const UNFOLLOW_AFTER: Duration = Duration::from_secs(5);
/// How long a subscribe waits for its channels to catch up.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the interest loop looks at subscriber counts and names.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How often the interest loop reads the stored epoch.
const EPOCH_EVERY: Duration = Duration::from_secs(2);
/// A bound on that read (NATS away: the read fails, the edge goes on).
const EPOCH_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One channel the edge knows.
#[derive(Debug)]
struct Known {
    channel: Arc<Channel>,
    /// NATS messages received for it.
    received: Arc<AtomicU64>,
    /// The stream sequence to read next (0: from the oldest retained).
    next: Arc<AtomicU64>,
    /// The last stream sequence applied, watched by `prepare`.
    applied: watch::Sender<u64>,
    /// The follow task, while followed.
    follow: Option<tokio::task::JoinHandle<()>>,
    idle_since: Option<Instant>,
}

/// A running edge.
#[derive(Debug)]
pub struct Edge {
    link: Link,
    hub: Arc<Hub>,
    known: Mutex<HashMap<Arc<str>, Known>>,
    /// When the channel names were last read from JetStream.
    names_at: Mutex<Option<Instant>>,
    /// Set once the stored epoch differed from the link's: (old, new).
    epoch_changed: Mutex<Option<(String, String)>>,
}

impl Edge {
    /// Starts the interest loop.
    pub fn start(link: Link, hub: Arc<Hub>, shutdown: &CancellationToken) -> Arc<Self> {
        let edge = Arc::new(Self {
            link,
            hub,
            known: Mutex::new(HashMap::new()),
            names_at: Mutex::new(None),
            epoch_changed: Mutex::new(None),
        });
        tokio::spawn(interest_loop(edge.clone(), shutdown.clone()));
        edge
    }

    /// The link to NATS.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The cluster's epoch changed under this edge: (old, new). Set
    /// before the edge cancels its shutdown token.
    pub fn epoch_changed(&self) -> Option<(String, String)> {
        self.epoch_changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the stored epoch; `true` when it is a new one (recorded and
    /// logged). A failed or timed-out read is no change: NATS may be
    /// away, and the edge keeps serving what it has.
    async fn epoch_is_new(&self) -> bool {
        if !self.link.connected() {
            return false;
        }
        let read = tokio::time::timeout(EPOCH_READ_TIMEOUT, self.link.stored_epoch()).await;
        let Ok(Ok(Some(stored))) = read else {
            return false;
        };
        let old = self.link.epoch();
        if *stored == **old {
            return false;
        }
        tracing::error!(
            old = %old,
            new = %stored,
            "the cluster's epoch changed from {old} to {stored} (JetStream lost the history): \
             closing every client and stopping"
        );
        *self.epoch_changed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((old.to_string(), stored));
        true
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Per channel: NATS messages received and whether it is followed.
    pub fn channels_json(&self) -> serde_json::Value {
        let known = self.known();
        let mut map = serde_json::Map::new();
        for (name, k) in known.iter() {
            map.insert(
                name.to_string(),
                serde_json::json!({
                    "received": k.received.load(Ordering::Relaxed),
                    "followed": k.follow.as_ref().is_some_and(|t| !t.is_finished()),
                    "seq": k.channel.seq(),
                }),
            );
        }
        map.into()
    }

    /// Whether a client request needs [`Edge::prepare`] first.
    pub fn needs_prepare(msg: &ClientMessage) -> bool {
        matches!(msg.kind, Some(client_message::Kind::Subscribe(_)))
    }

    /// Follows every channel a subscribe names (patterns: every known
    /// channel they match) and waits, bounded, until each has caught up
    /// with what JetStream holds now.
    pub async fn prepare(&self, msg: &ClientMessage) {
        let Some(client_message::Kind::Subscribe(sub)) = &msg.kind else {
            return;
        };
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        for name in sub.channels.iter().take(1000) {
            match Pattern::parse(name) {
                Ok(p) if p.is_exact() => names.push(name.clone()),
                Ok(p) => patterns.push(p),
                Err(_) => {}
            }
        }
        if !patterns.is_empty() {
            // names are learnt every 2 s anyway; a subscribe asks again
            // only when that is older than a second
            if self.names_age() >= Duration::from_secs(1) {
                self.learn_names().await;
            }
            let known = self.known();
            names.extend(
                known
                    .keys()
                    .filter(|n| patterns.iter().any(|p| p.matches(n)))
                    .map(|n| n.to_string()),
            );
        }
        let waits = names
            .iter()
            .map(|n| self.ensure(n, sub.resume.contains_key(n)));
        let _ = tokio::time::timeout(PREPARE_TIMEOUT, futures_util::future::join_all(waits)).await;
    }

    /// Follows `name` if JetStream has it and waits until caught up. A
    /// channel followed already is current within the NATS hop: only a
    /// resume (whose seq may come from a node a hop ahead) waits for what
    /// JetStream holds now.
    async fn ensure(&self, name: &str, resume: bool) {
        if !resume
            && let Some(k) = self.known().get_mut(name)
            && k.follow.as_ref().is_some_and(|t| !t.is_finished())
            && *k.applied.borrow() > 0
        {
            k.idle_since = None;
            return;
        }
        let Ok(Some((target, _))) = self.link.last(&event_subject(name)).await else {
            return; // not in JetStream: the session answers unknown_channel
        };
        let mut applied = {
            let Ok(channel) = self.hub.channel(name) else {
                return;
            };
            let mut known = self.known();
            let k = known
                .entry(channel.name.clone())
                .or_insert_with(|| new_known(channel));
            self.follow(k);
            k.idle_since = None;
            k.applied.subscribe()
        };
        let _ = applied.wait_for(|seq| *seq >= target).await;
    }

    /// Starts following `k` unless it is followed already.
    fn follow(&self, k: &mut Known) {
        if k.follow.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let task = Follower {
            link: self.link.clone(),
            hub: self.hub.clone(),
            channel: k.channel.clone(),
            received: k.received.clone(),
            next: k.next.clone(),
            applied: k.applied.clone(),
        };
        k.follow = Some(tokio::spawn(task.run()));
    }

    fn names_age(&self) -> Duration {
        let at = *self.names_at.lock().unwrap_or_else(|e| e.into_inner());
        at.map_or(Duration::MAX, |t| t.elapsed())
    }

    /// Adds the channels JetStream has that the edge does not know yet.
    async fn learn_names(&self) {
        let Ok(names) = self.link.channels().await else {
            return;
        };
        *self.names_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let mut known = self.known();
        for name in names {
            if known.contains_key(name.as_str()) {
                continue;
            }
            if let Ok(channel) = self.hub.channel(&name) {
                known.insert(channel.name.clone(), new_known(channel));
            }
        }
    }

    /// Follows channels that gained subscribers (pattern subscribers adopt
    /// new channels without a request) and stops following those without.
    fn look_at_interest(&self) {
        let now = Instant::now();
        let mut known = self.known();
        for k in known.values_mut() {
            let followed = k.follow.as_ref().is_some_and(|t| !t.is_finished());
            if k.channel.subscriber_count() > 0 {
                k.idle_since = None;
                if !followed {
                    self.follow(k);
                }
            } else if followed {
                let since = *k.idle_since.get_or_insert(now);
                if now.duration_since(since) >= UNFOLLOW_AFTER
                    && let Some(task) = k.follow.take()
                {
                    task.abort();
                }
            }
        }
    }
}

fn new_known(channel: Arc<Channel>) -> Known {
    Known {
        channel,
        received: Arc::default(),
        next: Arc::default(),
        applied: watch::channel(0).0,
        follow: None,
        idle_since: None,
    }
}

async fn interest_loop(edge: Arc<Edge>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    let mut epoch_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if epoch_at.is_none_or(|t| t.elapsed() >= EPOCH_EVERY) {
            epoch_at = Some(Instant::now());
            if edge.epoch_is_new().await {
                shutdown.cancel();
                break;
            }
        }
        if edge.names_age() >= Duration::from_secs(2) {
            edge.learn_names().await;
        }
        edge.look_at_interest();
    }
    for k in edge.known().values_mut() {
        if let Some(task) = k.follow.take() {
            task.abort();
        }
    }
}

/// One followed channel: an ordered consumer into the edge's hub.
struct Follower {
    link: Link,
    hub: Arc<Hub>,
    channel: Arc<Channel>,
    received: Arc<AtomicU64>,
    next: Arc<AtomicU64>,
    applied: watch::Sender<u64>,
}

impl Follower {
    async fn run(self) {
        loop {
            if let Err(e) = self.consume().await {
                tracing::warn!(channel = %self.channel.name, error = %e, "JetStream consumer failed; restarting");
            }
            self.link
                .stats()
                .consumer_restarts
                .fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A book channel without a book: the latest stored snapshot, taken
    /// once the channel reaches its seq.
    async fn book_snapshot(&self) -> Option<(u64, BookSnapshot)> {
        if self.channel.kind != ChannelKind::Book || self.channel.has_book() {
            return None;
        }
        let (_, payload) = self
            .link
            .last(&snap_subject(&self.channel.name))
            .await
            .ok()??;
        let event = decode_event(&payload)?;
        match event.payload? {
            Payload::BookSnapshot(s) => Some((event.seq, s)),
            _ => None,
        }
    }

    async fn consume(&self) -> Result<(), String> {
        let next = self.next.load(Ordering::Acquire);
        let deliver_policy = if next == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: next,
            }
        };
        let mut snapshot = self.book_snapshot().await;
        let mut snapshot_at = Instant::now();
        let consumer = self
            .link
            .events()
            .create_consumer(pull::OrderedConfig {
                filter_subject: event_subject(&self.channel.name),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        let stats = self.link.stats();
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| e.to_string())?;
            let stream_seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
            self.received.fetch_add(1, Ordering::Relaxed);
            stats.received.fetch_add(1, Ordering::Relaxed);
            // one message holds one or more consecutive events
            for event in decode_events(&m.payload).unwrap_or_default() {
                let seq = event.seq;
                if let Replicated::AfterGap { missing } = self.hub.replicate(&self.channel, event) {
                    stats.missing.fetch_add(missing, Ordering::Relaxed);
                }
                if let Some((at, snap)) = &snapshot {
                    if *at == seq {
                        self.hub.restore_book(&self.channel, seq, snap);
                    }
                    if *at <= seq {
                        snapshot = None;
                    }
                }
            }
            if snapshot.is_none()
                && self.channel.kind == ChannelKind::Book
                && !self.channel.has_book()
                && snapshot_at.elapsed() >= Duration::from_secs(1)
            {
                snapshot = self.book_snapshot().await;
                snapshot_at = Instant::now();
            }
            self.next.store(stream_seq + 1, Ordering::Release);
            self.applied.send_replace(stream_seq);
        }
        Err("the consumer's message stream ended".into())
    }
}
