//! The ingest side: every event the hub publishes goes to JetStream.
//!
//! The hub hands each event to the [`Outbox`] under the channel's lock (so
//! in seq order) with one `try_send`: it never waits. One publisher task
//! sends the events' protobuf bytes to `tw.ev.<channel>`, asking for an ack
//! on every 32nd event (and on the last one before the outbox runs empty),
//! and awaits the acks in batches. A full outbox drops the event and counts
//! it: the ingest's own clients lose nothing, edges find the gap.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, ClusterStats, Link, event_subject, snap_subject};
use crate::feed::{Channel, Encoded, EventSink, Hub};
use crate::protocol::ChannelKind;
use crate::protocol::pb::{ServerMessage, server_message};

/// Events the outbox holds before it drops (about a second at 100k/s).
pub const OUTBOX_CAPACITY: usize = 131_072;
/// Acked publishes awaited together.
const ACK_BATCH: usize = 64;
/// One event in this many is published with an ack request; the others go
/// as plain NATS messages on the same connection, which JetStream stores
/// in order: the ack of a later event confirms them. The last event before
/// the outbox runs empty is always acked.
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

/// Decodes an event stored in JetStream.
pub fn decode_event(payload: &[u8]) -> Option<crate::protocol::pb::Event> {
    match ServerMessage::decode(payload).ok()?.kind? {
        server_message::Kind::Event(e) => Some(e),
        _ => None,
    }
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
        let (Some(event), Ok(channel)) = (decode_event(&payload), hub.channel(&name)) else {
            tracing::warn!(channel = %name, "JetStream holds an event tickwire cannot read; skipped");
            continue;
        };
        hub.replicate(&channel, event);
        restored += 1;
    }
    tracing::info!(channels = restored, epoch = %link.epoch(), "seqs continue from JetStream");
    Ok(())
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
    let mut acks: VecDeque<(PublishAckFuture, u64)> = VecDeque::with_capacity(ACK_BATCH);
    let mut unacked = 0u64;
    let mut snapshot_at: HashMap<Arc<str>, Instant> = HashMap::new();
    let mut stopping = false;
    loop {
        // on shutdown, what is queued still goes out (what the sources
        // published before they stopped): a restart then loses nothing
        let item = if stopping {
            rx.try_recv().ok()
        } else {
            tokio::select! {
                item = rx.recv() => item,
                _ = shutdown.cancelled() => {
                    stopping = true;
                    rx.try_recv().ok()
                }
            }
        };
        let Some(item) = item else { break };
        if stats.fenced.load(Ordering::Acquire) {
            // another ingest holds the lease: publishing would fork seqs
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let payload = Bytes::copy_from_slice(item.event.proto_payload());
        let subject = event_subject(&item.channel);
        if unacked + 1 >= ACK_EVERY || rx.is_empty() {
            match link.js().publish(subject, payload).await {
                Ok(ack) => acks.push_back((ack, unacked + 1)),
                Err(_) => {
                    stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                    stats.dropped.fetch_add(unacked + 1, Ordering::Relaxed);
                }
            }
            unacked = 0;
        } else {
            match link.client().publish(subject, payload).await {
                Ok(()) => unacked += 1,
                Err(_) => {
                    stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if item.book {
            let due = snapshot_at
                .get(&item.channel)
                .is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY);
            if due && store_snapshot(&link, &hub, &item.channel).await {
                snapshot_at.insert(item.channel.clone(), Instant::now());
            }
        }
        if acks.len() >= ACK_BATCH || rx.is_empty() {
            for (ack, events) in acks.drain(..) {
                match ack.await {
                    Ok(_) => stats.published.fetch_add(events, Ordering::Relaxed),
                    // the events it would have confirmed are unknown: edges
                    // find any gap and say `lagged`
                    Err(_) => stats.publish_errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }
    }
    for (ack, events) in acks.drain(..) {
        if ack.await.is_ok() {
            stats.published.fetch_add(events, Ordering::Relaxed);
        }
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
}
