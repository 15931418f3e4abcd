//! The ingest side: every event the hub publishes goes to JetStream.
//!
//! The hub hands each event to the [`Outbox`] under the channel's lock (so
//! in seq order) with one `try_send`: it never waits. One publisher task
//! takes what the outbox holds (up to [`DRAIN`] events at once) and sends
//! it to `tw.ev.<channel>`, one NATS message per channel holding that
//! channel's consecutive events as length-delimited protobuf frames (up to
//! [`BATCH_EVENTS`] events or [`BATCH_BYTES`] bytes; see [`batch`]). At
//! light load a message holds one event and nothing waits for a batch to
//! fill; under a backlog JetStream stores one message for many events,
//! which is what lets it keep up (nats-server 2.9 spends several
//! microseconds per stored message once the per-subject limit removes one
//! message for every one it stores).
//!
//! Every 32nd message asks for an ack (and the last one before the outbox
//! runs empty); an acker task awaits those acks in order while the
//! publisher goes on, so the publisher never stalls on a round trip (up to
//! [`ACKS_IN_FLIGHT`] acks are outstanding). A full outbox drops the event
//! and counts it: the ingest's own clients lose nothing, edges find the
//! gap.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use bytes::{Bytes, BytesMut};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, ClusterStats, Link, event_subject, snap_subject};
use crate::feed::{Channel, Encoded, EventSink, Hub};
use crate::protocol::ChannelKind;
use crate::protocol::pb::{ServerMessage, server_message};

/// Events the outbox holds before it drops (about a second at 100k/s).
pub const OUTBOX_CAPACITY: usize = 131_072;
/// Events the publisher takes from the outbox at once.
const DRAIN: usize = 4096;
/// Events one NATS message holds at most.
pub const BATCH_EVENTS: usize = 64;
/// Bytes of frames one NATS message holds at most (a single larger event
/// still goes alone; NATS's default `max_payload` is 1 MiB).
const BATCH_BYTES: usize = 128 * 1024;
/// Acked publishes outstanding at most: the publisher waits only when
/// JetStream is this far behind.
const ACKS_IN_FLIGHT: usize = 256;
/// One message in this many is published with an ack request; the others
/// go as plain NATS messages on the same connection, which JetStream
/// stores in order: the ack of a later message confirms them. The last
/// message before the outbox runs empty is always acked.
const ACK_EVERY: u64 = 32;
/// How often a book channel's snapshot is stored at most.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

struct Item {
    channel: Arc<str>,
    book: bool,
    event: Arc<Encoded>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.channel, self.event.seq)
    }
}

/// The hub's side of the outbox.
#[derive(Debug)]
struct Outbox {
    tx: mpsc::Sender<Item>,
    stats: Arc<ClusterStats>,
}

impl EventSink for Outbox {
    fn offer(&self, channel: &Channel, event: &Arc<Encoded>) {
        let item = Item {
            channel: channel.name.clone(),
            book: channel.kind == ChannelKind::Book,
            event: event.clone(),
        };
        match self.tx.try_send(item) {
            Ok(()) => self.stats.offered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// A running ingest.
#[derive(Debug)]
pub struct Ingest {
    link: Link,
    tx: mpsc::Sender<Item>,
    publisher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Cancelled once the outbox reached JetStream: the lease is released.
    release: CancellationToken,
    keeper: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Ingest {
    /// Continues every channel's seq from JetStream, then sends every
    /// event `hub` publishes from now on.
    pub async fn start(
        link: Link,
        hub: Arc<Hub>,
        shutdown: &CancellationToken,
    ) -> Result<Arc<Self>, ClusterError> {
        restore(&link, &hub).await?;
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        hub.set_sink(Arc::new(Outbox {
            tx: tx.clone(),
            stats: link.stats().clone(),
        }));
        let task = tokio::spawn(publisher(link.clone(), hub, rx, shutdown.clone()));
        tokio::spawn(report_drops(link.stats().clone(), shutdown.clone()));
        let release = CancellationToken::new();
        let keeper = link.take_lease().map(|lease| {
            tokio::spawn(lease.keep(release.clone(), link.stats().clone(), shutdown.clone()))
        });
        Ok(Arc::new(Self {
            link,
            tx,
            publisher: std::sync::Mutex::new(Some(task)),
            release,
            keeper: std::sync::Mutex::new(keeper),
        }))
    }

    /// Waits (at most `within`) until the publisher sent what was queued
    /// at shutdown and JetStream acknowledged it.
    pub async fn finish(&self, within: Duration) {
        let task = self
            .publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task
            && tokio::time::timeout(within, task).await.is_err()
        {
            tracing::warn!("shutdown: the outbox did not reach JetStream in time");
        }
        // only now may a standby take over and continue the seqs
        self.release.cancel();
        let keeper = self.keeper.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(keeper) = keeper {
            let _ = tokio::time::timeout(Duration::from_secs(2), keeper).await;
        }
    }

    /// The link to NATS.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Events waiting in the outbox.
    pub fn queued(&self) -> usize {
        OUTBOX_CAPACITY - self.tx.capacity()
    }

    /// Whether events were dropped or the outbox is over half full.
    pub fn degraded(&self) -> bool {
        self.link.stats().dropped.load(Ordering::Relaxed) > 0 || self.queued() > OUTBOX_CAPACITY / 2
    }
}

/// Says in the log, at most every 5 s, how many events did not reach
/// JetStream since the last report (`/stats` has the running totals).
async fn report_drops(stats: Arc<ClusterStats>, shutdown: CancellationToken) {
    let mut reported = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let dropped = stats.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            tracing::warn!(
                dropped = dropped - reported,
                total = dropped,
                "events did not reach JetStream (outbox full, NATS unreachable or lease lost): edges see a gap and send `lagged`"
            );
            reported = dropped;
        }
    }
}

/// Decodes one plain `ServerMessage` holding an event: a stored book
/// snapshot (`tw.snap.<channel>`) or one frame of [`decode_events`].
pub fn decode_event(payload: &[u8]) -> Option<crate::protocol::pb::Event> {
    match ServerMessage::decode(payload).ok()?.kind? {
        server_message::Kind::Event(e) => Some(e),
        _ => None,
    }
}

/// Decodes a message of `tw.ev.<channel>`: one or more length-delimited
/// `ServerMessage` frames, each an event, in seq order. `None` when any
/// frame is not an event.
pub fn decode_events(mut payload: &[u8]) -> Option<Vec<crate::protocol::pb::Event>> {
    let mut events = Vec::new();
    while !payload.is_empty() {
        let len = prost::decode_length_delimiter(&mut payload).ok()?;
        let frame = payload.get(..len)?;
        events.push(decode_event(frame)?);
        payload = &payload[len..];
    }
    Some(events)
}

/// One NATS message being filled: consecutive events of one channel.
#[derive(Debug)]
struct Batch {
    channel: Arc<str>,
    book: bool,
    frames: BytesMut,
    events: u64,
}

/// Groups `items` (in outbox order) into messages: one per channel, its
/// events in seq order as length-delimited frames, a new one when a batch
/// holds [`BATCH_EVENTS`] events or would pass [`BATCH_BYTES`]. A
/// channel's batches come out in order; different channels' interleave
/// in the order their first event came.
fn batch(items: impl IntoIterator<Item = Item>) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    let mut open: HashMap<Arc<str>, usize> = HashMap::new();
    for item in items {
        let frame = item.event.proto_payload();
        let size = prost::length_delimiter_len(frame.len()) + frame.len();
        let at = match open.get(&item.channel) {
            Some(&i)
                if batches[i].events < BATCH_EVENTS as u64
                    && batches[i].frames.len() + size <= BATCH_BYTES =>
            {
                i
            }
            _ => {
                batches.push(Batch {
                    channel: item.channel.clone(),
                    book: item.book,
                    frames: BytesMut::with_capacity(size),
                    events: 0,
                });
                open.insert(item.channel, batches.len() - 1);
                batches.len() - 1
            }
        };
        let b = &mut batches[at];
        prost::encode_length_delimiter(frame.len(), &mut b.frames)
            .expect("BytesMut grows as needed");
        b.frames.extend_from_slice(frame);
        b.events += 1;
    }
    batches
}

/// Gives every channel JetStream knows its last event: the hub's seqs
/// continue from there (and ticker-like channels have their state).
async fn restore(link: &Link, hub: &Hub) -> Result<(), ClusterError> {
    let err = |reason| ClusterError::Stream {
        stream: super::EVENTS_STREAM,
        reason,
    };
    let channels = link.channels().await.map_err(err)?;
    let mut restored = 0;
    for name in channels {
        let Some((_, payload)) = link.last(&event_subject(&name)).await.map_err(err)? else {
            continue;
        };
        let last = decode_events(&payload).and_then(|mut events| events.pop());
        let (Some(event), Ok(channel)) = (last, hub.channel(&name)) else {
            tracing::warn!(channel = %name, "JetStream holds an event tickwire cannot read; skipped");
            continue;
        };
        hub.replicate(&channel, event);
        restored += 1;
    }
    tracing::info!(channels = restored, epoch = %link.epoch(), "seqs continue from JetStream");
    Ok(())
}

/// Takes what the outbox holds (waiting for the first event unless
/// stopping); 0 when the outbox is closed, or empty while stopping.
async fn take(
    rx: &mut mpsc::Receiver<Item>,
    items: &mut Vec<Item>,
    stopping: &mut bool,
    shutdown: &CancellationToken,
) -> usize {
    if !*stopping {
        tokio::select! {
            n = rx.recv_many(items, DRAIN) => return n,
            _ = shutdown.cancelled() => *stopping = true,
        }
    }
    // on shutdown, what is queued still goes out (what the sources
    // published before they stopped): a restart then loses nothing
    while items.len() < DRAIN {
        match rx.try_recv() {
            Ok(item) => items.push(item),
            Err(_) => break,
        }
    }
    items.len()
}

/// Sends the outbox to JetStream until shutdown.
async fn publisher(
    link: Link,
    hub: Arc<Hub>,
    mut rx: mpsc::Receiver<Item>,
    shutdown: CancellationToken,
) {
    let stats = link.stats().clone();
    // each acked publish with the number of events it confirms
    let (acks, pending) = mpsc::channel(ACKS_IN_FLIGHT);
    let acker = tokio::spawn(await_acks(pending, stats.clone()));
    let mut items = Vec::with_capacity(DRAIN);
    let (mut unacked_messages, mut unacked_events) = (0u64, 0u64);
    let mut snapshot_at: HashMap<Arc<str>, Instant> = HashMap::new();
    let mut stopping = false;
    'outbox: loop {
        let taken = take(&mut rx, &mut items, &mut stopping, &shutdown).await;
        if taken == 0 {
            break;
        }
        if stats.fenced.load(Ordering::Acquire) {
            // another ingest holds the lease: publishing would fork seqs
            stats.dropped.fetch_add(taken as u64, Ordering::Relaxed);
            items.clear();
            continue;
        }
        let batches = batch(items.drain(..));
        let count = batches.len();
        let mut books = Vec::new();
        for (i, b) in batches.into_iter().enumerate() {
            let subject = event_subject(&b.channel);
            if b.book {
                books.push(b.channel);
            }
            stats.messages.fetch_add(1, Ordering::Relaxed);
            unacked_events += b.events;
            unacked_messages += 1;
            let payload = b.frames.freeze();
            if unacked_messages >= ACK_EVERY || (i + 1 == count && rx.is_empty()) {
                match link.js().publish(subject, payload).await {
                    Ok(ack) => {
                        // waits only when ACKS_IN_FLIGHT acks are outstanding
                        if acks.send((ack, unacked_events)).await.is_err() {
                            break 'outbox;
                        }
                    }
                    Err(_) => {
                        stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                        stats.dropped.fetch_add(unacked_events, Ordering::Relaxed);
                    }
                }
                (unacked_messages, unacked_events) = (0, 0);
            } else if link.client().publish(subject, payload).await.is_err() {
                stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                stats.dropped.fetch_add(b.events, Ordering::Relaxed);
                unacked_events -= b.events;
            }
        }
        books.sort();
        books.dedup();
        for channel in books {
            let due = snapshot_at
                .get(&channel)
                .is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY);
            if due && store_snapshot(&link, &hub, &channel).await {
                snapshot_at.insert(channel, Instant::now());
            }
        }
    }
    drop(acks);
    let _ = acker.await;
}

/// Awaits the acked publishes in order and counts the events each one
/// confirms as published.
async fn await_acks(
    mut pending: mpsc::Receiver<(PublishAckFuture, u64)>,
    stats: Arc<ClusterStats>,
) {
    while let Some((ack, events)) = pending.recv().await {
        match ack.await {
            Ok(_) => stats.published.fetch_add(events, Ordering::Relaxed),
            // the events it would have confirmed are unknown: edges find
            // any gap and say `lagged`
            Err(_) => stats.publish_errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Stores the book of `channel` as of its current seq on `tw.snap.<channel>`
/// (events up to that seq were sent before it, so an edge that starts from
/// it and replays what follows has the whole book).
async fn store_snapshot(link: &Link, hub: &Hub, channel: &str) -> bool {
    let Some(ch) = hub.registry().get(channel) else {
        return false;
    };
    let Some(snap) = hub.position(&ch).snapshot else {
        return false;
    };
    let payload = Bytes::copy_from_slice(snap.proto_payload());
    match link.js().publish(snap_subject(channel), payload).await {
        Ok(_) => {
            link.stats()
                .snapshots_stored
                .fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{Registry, RingLimits};
    use crate::metrics::Metrics;
    use crate::protocol::pb::Trade;
    use crate::protocol::pb::event::Payload;

    /// A full outbox never blocks the hub: it drops and counts, and what
    /// it took comes out in seq order.
    #[test]
    fn a_full_outbox_drops_and_counts() {
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 16,
            max_age_ns: 0,
        }));
        let hub = Hub::new(registry, "e".into(), 0, Arc::new(Metrics::default()));
        let (tx, mut rx) = mpsc::channel(2);
        let stats = Arc::new(ClusterStats::default());
        hub.set_sink(Arc::new(Outbox {
            tx,
            stats: stats.clone(),
        }));
        let ch = hub.channel("trade.sim.A-B").unwrap();
        for _ in 0..5 {
            hub.publish(&ch, 0, Payload::Trade(Trade::default()))
                .unwrap();
        }
        assert_eq!(ch.seq(), 5, "the hub published everything");
        assert_eq!(stats.offered.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|i| i.event.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2]);
    }

    fn item(channel: &Arc<str>, seq: u64, size: usize) -> Item {
        let msg = ServerMessage {
            kind: Some(server_message::Kind::Event(crate::protocol::pb::Event {
                channel: channel.to_string(),
                seq,
                payload: Some(Payload::Trade(Trade {
                    trade_id: "x".repeat(size),
                    ..Default::default()
                })),
                ..Default::default()
            })),
        };
        Item {
            channel: channel.clone(),
            book: false,
            event: Arc::new(Encoded::new(&msg, seq, 0, 0, &Metrics::default())),
        }
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        decode_events(&b.frames)
            .expect("frames decode")
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    /// Interleaved channels come out one batch per channel, each in seq
    /// order; a batch closes at BATCH_EVENTS events.
    #[test]
    fn batches_keep_each_channels_order_and_cap_events() {
        let (a, b): (Arc<str>, Arc<str>) = ("trade.sim.A-B".into(), "trade.sim.C-D".into());
        let items = (1..=100).flat_map(|seq| [item(&a, seq, 4), item(&b, seq, 4)]);
        let batches = batch(items);
        let names: Vec<&str> = batches.iter().map(|b| &*b.channel).collect();
        assert_eq!(names, [&*a, &*b, &*a, &*b]);
        assert_eq!(seqs(&batches[0]), (1..=64).collect::<Vec<_>>());
        assert_eq!(seqs(&batches[2]), (65..=100).collect::<Vec<_>>());
        assert_eq!(batches[3].events, 36);
    }

    /// A batch closes before it would pass BATCH_BYTES; a single event
    /// larger than that goes alone.
    #[test]
    fn batches_cap_bytes_and_a_big_event_goes_alone() {
        let a: Arc<str> = "trade.sim.A-B".into();
        let items = [
            item(&a, 1, BATCH_BYTES / 2),
            item(&a, 2, BATCH_BYTES / 2),
            item(&a, 3, BATCH_BYTES * 2),
            item(&a, 4, 8),
        ];
        let batches = batch(items);
        let got: Vec<Vec<u64>> = batches.iter().map(seqs).collect();
        assert_eq!(got, [vec![1], vec![2], vec![3], vec![4]]);
        assert!(
            batches
                .iter()
                .all(|b| b.frames.len() <= BATCH_BYTES || b.events == 1)
        );
    }

    /// A payload that is not length-delimited events is refused whole.
    #[test]
    fn a_malformed_message_decodes_to_none() {
        let a: Arc<str> = "trade.sim.A-B".into();
        let good = batch([item(&a, 1, 4), item(&a, 2, 4)]).remove(0).frames;
        assert_eq!(decode_events(&good).map(|e| e.len()), Some(2));
        assert_eq!(decode_events(&good[..good.len() - 1]), None, "truncated");
        assert_eq!(decode_events(&[0xff, 0xff, 0xff]), None, "bad length");
        assert_eq!(decode_events(&[]), Some(vec![]));
    }
}
