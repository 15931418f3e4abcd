//! A cursor: one reader's position in one channel's ring, the reading half
//! of the ring ([`super::ring`] is the writing half), and the lag policy
//! that decides what happens to a reader that falls behind.
//!
//! # Design
//!
//! A connection holds one [`Cursor`] per subscribed channel: the channel and
//! `next_seq`, the seq of the next event it gets. Cursors are private to
//! their connection (no atomics, no sharing); everything shared is in the
//! ring. Reading ([`Cursor::read`]) copies `Arc`s of the events from
//! `next_seq` on, under the ring's read lock, and advances the cursor past
//! them. [`Cursor::has_new`] answers "anything new?" from the ring's atomic
//! tail without the lock: that is the check a connection makes per channel
//! per wake-up (`super::doorbell` says when to make it).
//!
//! # Invariants
//!
//! * A cursor moves only forward, by the events it read or by an announced
//!   skip ([`Cursor::skip_to`], which returns the first skipped seq for the
//!   `lagged` message): a reader gets every seq in order, once, or is told
//!   exactly which range it missed. Never a silent gap.
//! * `next_seq - 1` is the last seq the reader has (or was given as a
//!   snapshot): that is the seq a `subscribed` answer reports and a later
//!   `resume` starts from.
//!
//! # Resume
//!
//! A client that reconnects with `resume {seq, epoch}` gets a cursor that
//! starts in the past ([`Cursor::resume`]) when the epoch is this server
//! run's (checked by the caller) and the ring still holds `seq + 1` (or
//! `seq` is the tail): its events are replayed from the ring, `recovered:
//! true`. Otherwise it starts at the head after a snapshot
//! ([`Cursor::at`]), `recovered: false`.
//!
//! # Lagging: the whole slow-consumer policy in one place
//!
//! The rings are shared and bounded, so a slow reader never costs the others
//! memory or time; it costs itself events. It is a **slow consumer** when
//! any of these holds (each checked where its evidence is):
//!
//! 1. **Ring overrun**: its cursor is older than the ring's first seq (the
//!    writer evicted events it had not read): [`ReadOutcome::Behind`] from
//!    [`Cursor::read`] (`server/session/delivery.rs`, per channel).
//! 2. **Backlog bound**: its cursors have more than `--max-lag-messages`
//!    events, or `--max-lag-bytes` of proto frames, not yet taken from the
//!    rings ([`LagBounds::exceeded`], checked on every drain, all channels).
//! 3. **Age bound**, `--max-lag-age` (2 s): the events just written to it
//!    were published longer ago than that (a replay it asked for by `resume`
//!    counts from its subscribe), or its events have been held back that
//!    long behind an unanswered lag probe (`server/probe.rs`: the probe, a
//!    WebSocket ping sent ahead of the events, measures what the client has
//!    *read*, which kernel buffers would otherwise hide; the connection
//!    holds events back while a probe is overdue so the backlog builds in
//!    the ring, where it is measured).
//!
//! For all three the outcome is `--slow-consumer`'s: `lagged` (the default)
//! sends, for every channel with a backlog (or the one overrun channel),
//! `lagged {channel, first_seq, last_seq}` naming exactly the skipped range,
//! then the channel's snapshot at `last_seq` (stateful channels), then its
//! events from `last_seq + 1` (the cursor [`Cursor::skip_to`]s the head);
//! `close` closes the connection with 4008. Two more cases always close
//! with 4008, whatever the policy, because no skip can help:
//!
//! 4. **Not reading**: a socket write (the kernel may hold only
//!    `--socket-send-buffer`, and at most `--socket-unsent-limit` unsent) or
//!    a lag probe has waited `--write-timeout` (`server/connection.rs`).
//! 5. **Answers not read**: the frames queued for this client alone (replies,
//!    snapshots) pass the larger of `--max-lag-bytes` and 1 MiB, or 65 536
//!    frames (`server/session.rs`).
//!
//! # Closing
//!
//! A cursor needs no closing: dropping it releases its `Arc` of the channel.
//! The connection's doorbell is what the channel must forget, on unsubscribe
//! (at once) or when the connection goes (lazily, see `super::doorbell`).

use std::sync::Arc;

use super::channel::Channel;
use super::encoded::Encoded;
use super::ring::ReadOutcome;

/// One reader's position in one channel's ring.
#[derive(Debug)]
pub struct Cursor {
    channel: Arc<Channel>,
    /// Seq of the next event this reader gets.
    next_seq: u64,
}

impl Cursor {
    /// A cursor that has everything up to `seq` (a snapshot at `seq`, or
    /// nothing when `seq` is 0): the next event it reads is `seq + 1`.
    pub fn at(channel: &Arc<Channel>, seq: u64) -> Self {
        Self {
            channel: channel.clone(),
            next_seq: seq + 1,
        }
    }

    /// A cursor resuming after `seq`, when the ring can replay everything
    /// after it (or `seq` is the tail); `None` when `seq` is ahead of the
    /// channel or its successors were evicted. The caller checks the epoch.
    pub fn resume(channel: &Arc<Channel>, seq: u64) -> Option<Self> {
        (seq <= channel.seq() && channel.ring.first_seq() <= seq + 1)
            .then(|| Self::at(channel, seq))
    }

    /// The channel read.
    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// Seq of the next event this reader gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the channel has published past this cursor.
    ///
    /// hot path: one atomic load (the ring's tail), no lock.
    pub fn has_new(&self) -> bool {
        self.channel.seq() >= self.next_seq
    }

    /// Appends up to `max` events from the cursor on to `out` and moves past
    /// them; [`ReadOutcome::Behind`] (and no move) when the ring no longer
    /// holds `next_seq`: the reader must [`Cursor::skip_to`] and say so.
    ///
    /// hot path: see `Ring::read_from`.
    pub fn read(&mut self, max: usize, out: &mut Vec<Arc<Encoded>>) -> ReadOutcome {
        let outcome = self.channel.ring.read_from(self.next_seq, max, out);
        if let ReadOutcome::Read(n) = outcome {
            self.next_seq += n as u64;
        }
        outcome
    }

    /// Events published and not yet read.
    pub fn backlog_events(&self) -> u64 {
        (self.channel.seq() + 1).saturating_sub(self.next_seq)
    }

    /// Proto frame bytes published and not yet read (`u64::MAX` once the
    /// ring no longer holds the cursor: that backlog is over any bound).
    pub fn backlog_bytes(&self) -> u64 {
        self.channel
            .ring
            .pending_bytes(self.next_seq)
            .unwrap_or(u64::MAX)
    }

    /// Skips to just after `seq` (the head, whose state the reader is sent
    /// as a snapshot) and returns the first seq skipped, for `lagged`.
    pub fn skip_to(&mut self, seq: u64) -> u64 {
        let first_skipped = self.next_seq;
        self.next_seq = seq + 1;
        first_skipped
    }
}

/// The backlog bounds of one reader over all its cursors
/// (`--max-lag-messages`, `--max-lag-bytes`).
#[derive(Debug, Clone, Copy)]
pub struct LagBounds {
    /// Most events not yet read, over all channels.
    pub max_messages: u64,
    /// Most proto frame bytes not yet read, over all channels (0 = no bound).
    pub max_bytes: u64,
}

impl LagBounds {
    /// Backlogs under this many events are not worth sizing in bytes.
    const BYTES_CHECKED_PAST: u64 = 64;

    /// Whether the cursors' backlog passes a bound.
    ///
    /// hot path (every drain): one atomic load per cursor; the ring locks
    /// only once the backlog is over 64 events and a byte bound is set.
    pub fn exceeded<'a>(&self, cursors: impl Iterator<Item = &'a Cursor> + Clone) -> bool {
        let pending: u64 = cursors.clone().map(Cursor::backlog_events).sum();
        if pending > self.max_messages {
            return true;
        }
        self.max_bytes > 0
            && pending > Self::BYTES_CHECKED_PAST
            && cursors
                .map(Cursor::backlog_bytes)
                .fold(0u64, u64::saturating_add)
                > self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::ring::RingLimits;
    use crate::feed::{Hub, Registry};
    use crate::metrics::Metrics;
    use crate::protocol::pb::{Trade, event::Payload};

    fn hub(max_messages: usize) -> (Hub, Arc<Channel>) {
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages,
            max_age_ns: 0,
        }));
        let hub = Hub::new(registry, "e".into(), 0, Arc::new(Metrics::default()));
        let channel = hub.registry().get_or_create("trade.sim.BTC-USDT").unwrap();
        (hub, channel)
    }

    fn publish(hub: &Hub, channel: &Channel, n: u64) {
        for i in 0..n {
            let trade = Payload::Trade(Trade {
                price: i as f64,
                ..Trade::default()
            });
            hub.publish(channel, 0, trade).unwrap();
        }
    }

    #[test]
    fn reads_advance_and_skips_name_the_gap() {
        let (hub, channel) = hub(4);
        let mut cursor = Cursor::at(&channel, 0);
        assert!(!cursor.has_new());
        publish(&hub, &channel, 3);
        assert_eq!(cursor.backlog_events(), 3);
        let mut out = Vec::new();
        assert_eq!(cursor.read(2, &mut out), ReadOutcome::Read(2));
        assert_eq!(cursor.next_seq(), 3);
        publish(&hub, &channel, 5); // seq 8; the ring holds 5..=8
        assert_eq!(
            cursor.read(10, &mut out),
            ReadOutcome::Behind { first_seq: 5 }
        );
        assert_eq!(cursor.next_seq(), 3, "no move on overrun");
        assert_eq!(cursor.skip_to(8), 3, "lagged from 3");
        assert!(!cursor.has_new());
    }

    #[test]
    fn resume_only_while_the_ring_holds_the_successor() {
        let (hub, channel) = hub(4);
        publish(&hub, &channel, 6); // the ring holds 3..=6
        assert!(Cursor::resume(&channel, 2).is_some(), "3 is held");
        assert!(Cursor::resume(&channel, 6).is_some(), "the tail");
        assert!(Cursor::resume(&channel, 1).is_none(), "2 was evicted");
        assert!(
            Cursor::resume(&channel, 7).is_none(),
            "ahead of the channel"
        );
    }

    #[test]
    fn lag_bounds_count_every_cursor() {
        let (hub, channel) = hub(1000);
        let cursors = [Cursor::at(&channel, 0), Cursor::at(&channel, 0)];
        publish(&hub, &channel, 60);
        let by_count = LagBounds {
            max_messages: 100,
            max_bytes: 0,
        };
        assert!(by_count.exceeded(cursors.iter()), "2 x 60 events > 100");
        assert!(!by_count.exceeded(cursors[..1].iter()));
        let by_bytes = LagBounds {
            max_messages: u64::MAX,
            max_bytes: 100,
        };
        assert!(by_bytes.exceeded(cursors.iter()), "120 frames > 100 bytes");
    }
}
