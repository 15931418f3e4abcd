//! A channel: its identity, its ring, its snapshot state, the connections
//! subscribed to it and which of them a publish must wake (`armed.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use prometheus_client::metrics::histogram::Histogram;

use super::armed::{Arm, ArmedList};
use super::book::OrderBook;
use super::doorbell::Doorbell;
use super::encoded::Encoded;
use super::ring::{Ring, RingLimits};
use crate::protocol::ChannelKind;
use crate::protocol::pb::Level;

/// Dense index of a channel in the registry; hot paths use it, not names.
pub type ChannelId = u32;

/// What a new subscriber is shown as the channel's current state.
#[derive(Debug)]
pub(crate) enum SnapshotState {
    /// No state: trades, scans, custom events (the stream is all there is).
    None,
    /// The last event is the state (ticker, candle, signal, sentiment).
    Last(Option<Arc<Encoded>>),
    /// An L2 book, rebuilt from `book_snapshot` and `book_update` events.
    Book(Option<OrderBook>),
}

/// Mutable state of a channel, changed only under its lock by the publisher.
#[derive(Debug)]
pub(crate) struct PublishState {
    /// Seq of the last event published.
    pub seq: u64,
    /// Source time of the last event.
    pub source_time_ns: i64,
    /// Proto frame bytes published on the channel so far.
    pub cum_bytes: u64,
    pub snapshot: SnapshotState,
    /// The book snapshot event encoded for the current seq, shared by every
    /// subscriber that arrives before the next event.
    pub cached_snapshot: Option<Arc<Encoded>>,
    /// Conflated deliveries of a book, per interval (`super::fold`).
    pub folds: super::fold::BookFolds,
    /// A book's best bid and ask as last handed to the consolidated book
    /// (kept only while `bbo.all.*` runs).
    pub top: (Option<Level>, Option<Level>),
}

/// One channel of the feed.
#[derive(Debug)]
pub struct Channel {
    /// Dense id (index in the registry).
    pub id: ChannelId,
    /// Full name, `<stream>.<venue>.<instrument>`.
    pub name: Arc<str>,
    /// What the channel carries.
    pub kind: ChannelKind,
    /// The ring every subscriber reads from (through its `Cursor`).
    pub ring: Ring,
    state: Mutex<PublishState>,
    /// Every subscription (its count is `subscriber_count`).
    subscribers: Mutex<Vec<Arc<Arm>>>,
    /// The subscriptions the next publish wakes.
    armed: ArmedList,
    subscriber_count: AtomicU64,
    /// Whether the channel has a state (a snapshot at every seq): books,
    /// tickers, candles, signals, sentiment, `status.*` and `bbo.*`.
    /// Conflation (`server/session/conflation.rs`) folds such a channel's
    /// events into its latest state; the others it only batches.
    pub stateful: bool,
    /// The exchange-lag histogram of this channel's venue, resolved on the
    /// first venue event (see `Hub::publish`).
    lag: OnceLock<Histogram>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `status.<venue>.all` and `bbo.all.<BASE-QUOTE>`: `custom` payloads whose
/// last event is the channel's state.
fn is_stateful_custom(name: &str) -> bool {
    name.starts_with("status.") || name.starts_with("bbo.")
}

impl Channel {
    pub(crate) fn new(id: ChannelId, name: &str, limits: RingLimits) -> Self {
        let kind = ChannelKind::of(name);
        let snapshot = match kind {
            ChannelKind::Book => SnapshotState::Book(None),
            ChannelKind::Ticker
            | ChannelKind::Candle
            | ChannelKind::Signal
            | ChannelKind::Sentiment => SnapshotState::Last(None),
            // venue state and the consolidated book are states too: a new
            // subscriber starts from the last event
            ChannelKind::Custom if is_stateful_custom(name) => SnapshotState::Last(None),
            ChannelKind::Trade | ChannelKind::Scan | ChannelKind::Custom => SnapshotState::None,
        };
        let stateful = !matches!(snapshot, SnapshotState::None);
        Self {
            id,
            name: name.into(),
            kind,
            stateful,
            ring: Ring::new(limits),
            state: Mutex::new(PublishState {
                seq: 0,
                source_time_ns: 0,
                cum_bytes: 0,
                snapshot,
                cached_snapshot: None,
                folds: Default::default(),
                top: (None, None),
            }),
            subscribers: Mutex::new(Vec::new()),
            armed: ArmedList::default(),
            subscriber_count: AtomicU64::new(0),
            lag: OnceLock::new(),
        }
    }

    /// The venue token of the name (`binance` in `trade.binance.BTC-USDT`).
    pub fn venue(&self) -> &str {
        self.name.split('.').nth(1).unwrap_or("")
    }

    /// This channel's exchange-lag histogram, made by `make` on first use.
    pub(crate) fn lag_histogram(&self, make: impl FnOnce() -> Histogram) -> &Histogram {
        self.lag.get_or_init(make)
    }

    /// Seq of the last event published (0 before the first). Lock-free.
    pub fn seq(&self) -> u64 {
        self.ring.last_seq()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, PublishState> {
        lock(&self.state)
    }

    /// Whether this is a book channel that has received its first snapshot
    /// (so a `book_update` can be applied).
    pub fn has_book(&self) -> bool {
        matches!(self.state().snapshot, SnapshotState::Book(Some(_)))
    }

    /// Subscribes the connection behind `bell`: armed, so the next event
    /// wakes it. Keep the returned [`Arm`]: the connection arms it again
    /// after reading ([`Channel::rearm`]) and unsubscribes with it.
    pub fn add_subscriber(&self, bell: &Arc<Doorbell>) -> Arc<Arm> {
        let arm = Arm::new(bell.clone());
        let mut subs = lock(&self.subscribers);
        subs.push(arm.clone());
        self.publish_count(&subs);
        drop(subs);
        self.armed.arm(&arm);
        arm
    }

    /// Unsubscribes (the connection is no longer woken).
    pub fn remove_subscriber(&self, arm: &Arc<Arm>) {
        self.armed.remove(arm);
        let mut subs = lock(&self.subscribers);
        if let Some(i) = subs.iter().position(|a| Arc::ptr_eq(a, arm)) {
            subs.swap_remove(i);
            self.publish_count(&subs);
        }
    }

    /// Makes the next event wake the subscription again (it was woken, or
    /// its connection read past what woke it). Then look at the ring once
    /// more: an event published before this call may not have rung it.
    pub fn rearm(&self, arm: &Arc<Arm>) {
        self.armed.arm(arm);
    }

    /// Connections subscribed now (lock-free; exact as of the last change
    /// to the list).
    pub fn subscriber_count(&self) -> u64 {
        self.subscriber_count.load(Ordering::Relaxed)
    }

    /// Subscriptions the next event will wake.
    pub fn armed_count(&self) -> usize {
        self.armed.len()
    }

    /// Sets the lock-free count from the list itself, under its lock: the
    /// count is a copy of the list's length, never a running sum that a
    /// race could make drift.
    fn publish_count(&self, subs: &[Arc<Arm>]) {
        self.subscriber_count
            .store(subs.len() as u64, Ordering::Relaxed);
    }

    /// Wakes every armed subscriber (see `armed.rs`): subscribers still
    /// reading an earlier event cost nothing.
    ///
    /// hot path: one lock, then one step per connection woken.
    pub(crate) fn ring_subscribers(&self) {
        self.armed.fire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::AtomicBool;

    /// Thousands of subscribers arming, closing and removing themselves
    /// while a publisher rings the channel: the count and the armed list
    /// end empty (the count once drifted upward when a bell closed between
    /// a ring pass and its `retain`).
    #[test]
    fn subscriber_count_is_exact_under_concurrent_drops() {
        let channel = Arc::new(Channel::new(
            0,
            "trade.sim.BTC-USDT",
            RingLimits {
                max_messages: 4,
                max_age_ns: 0,
            },
        ));
        let done = Arc::new(AtomicBool::new(false));
        let ringer = {
            let (channel, done) = (channel.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    channel.ring_subscribers();
                }
            })
        };
        const THREADS: usize = 4;
        const PER_THREAD: usize = 1000;
        // several rounds: one round shows the drift most of the time
        for _round in 0..20 {
            let barrier = Arc::new(Barrier::new(THREADS));
            let droppers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (channel, barrier) = (channel.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let bells: Vec<_> = (0..PER_THREAD).map(|_| Doorbell::new()).collect();
                        let arms: Vec<_> =
                            bells.iter().map(|b| channel.add_subscriber(b)).collect();
                        barrier.wait();
                        // what a connection does after reading: arm again
                        for a in &arms {
                            channel.rearm(a);
                        }
                        // what a session's drop does: close, then remove
                        for (b, a) in bells.iter().zip(&arms) {
                            b.close();
                            channel.remove_subscriber(a);
                        }
                    })
                })
                .collect();
            for d in droppers {
                d.join().expect("dropper thread");
            }
        }
        done.store(true, Ordering::Relaxed);
        ringer.join().expect("ringer thread");
        assert_eq!(lock(&channel.subscribers).len(), 0);
        assert_eq!(channel.subscriber_count(), 0, "count drifted");
        assert_eq!(channel.armed_count(), 0, "an unsubscribed arm stayed armed");
    }
}
