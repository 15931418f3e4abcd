//! The per-channel ring: a bounded window of a channel's encoded events.
//!
//! # Design
//!
//! Every channel owns one `ChannelLog`: a ring (a `VecDeque` that never grows
//! past its bound) of `Arc<Encoded>` events with consecutive sequence numbers
//! `first_seq ..= last_seq`. There is one writer at a time per channel (the
//! hub, holding the channel's state lock) and any number of readers, each of
//! which keeps its own cursor: the next seq it wants.
//!
//! * Writing appends one event and evicts from the front while the window
//!   holds more than `max_messages` events or events older than `max_age`.
//! * `last_seq` is also kept in an atomic, published after the push, so a
//!   reader can tell "nothing new" without touching the lock.
//! * A reader copies out `Arc`s (a reference-count increment each, no payload
//!   copy) under the read lock, so readers never block each other and the
//!   writer waits only for those short copies.
//! * A reader whose cursor is older than `first_seq` has lost events: it is
//!   told so ([`ReadOutcome::Behind`]) and never handed a gap silently.
//!
//! The same window serves live fanout and replay on resume: a resumed client
//! is just a cursor that starts in the past.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::encoded::Encoded;

/// Hints the CPU to load the cache line at `p`; does nothing off x86-64.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the
    // address, and SSE (which provides it) is part of every x86-64 CPU.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bounds of a channel's history window.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Most events kept (at least 1).
    pub max_messages: usize,
    /// Oldest event kept, in ns of publish time (0 = no age bound).
    pub max_age_ns: i64,
}

/// What [`ChannelLog::read_from`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `n` events were appended to the output (0 when up to date).
    Read(usize),
    /// The cursor is older than the window: events before `first_seq` are gone.
    Behind { first_seq: u64 },
}

/// A channel's bounded ring of encoded events.
#[derive(Debug)]
pub struct ChannelLog {
    entries: RwLock<VecDeque<Arc<Encoded>>>,
    last_seq: AtomicU64,
    limits: LogLimits,
}

impl ChannelLog {
    /// An empty log.
    pub fn new(limits: LogLimits) -> Self {
        Self {
            entries: RwLock::new(VecDeque::new()),
            last_seq: AtomicU64::new(0),
            limits: LogLimits {
                max_messages: limits.max_messages.max(1),
                ..limits
            },
        }
    }

    /// Seq of the newest event (0 when none was ever published). Lock-free.
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Seq of the oldest event still held (`last_seq + 1` when empty).
    pub fn first_seq(&self) -> u64 {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.front().map_or(self.last_seq() + 1, |e| e.seq)
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the log holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the next event. The caller is the channel's only writer and
    /// `event.seq` is `last_seq + 1`.
    ///
    /// hot path: no allocation once the ring reached its bound.
    pub fn push(&self, event: Arc<Encoded>) {
        let seq = event.seq;
        debug_assert_eq!(seq, self.last_seq() + 1, "log seqs must be consecutive");
        let oldest_kept = event.publish_time_ns - self.limits.max_age_ns;
        {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= self.limits.max_messages {
                entries.pop_front();
            }
            if self.limits.max_age_ns > 0 {
                while entries
                    .front()
                    .is_some_and(|e| e.publish_time_ns < oldest_kept)
                {
                    entries.pop_front();
                }
            }
            // The front events are evicted by the next pushes. At high
            // rates the ring is far larger than the caches, so they are
            // cold: start loading the next two now, not when evicting.
            if entries.len() >= self.limits.max_messages.saturating_sub(1) {
                if let Some(next) = entries.front() {
                    prefetch(next.frame_ptr());
                }
                if let Some(after) = entries.get(1) {
                    prefetch(Arc::as_ptr(after).cast());
                }
            }
            entries.push_back(event);
        }
        self.last_seq.store(seq, Ordering::Release);
    }

    /// Empties the ring and makes `seq` the last one published: the next
    /// push is `seq + 1` (a replica that learned of a gap; see
    /// `Hub::replicate`). Readers before it are told they fell behind.
    pub fn restart_after(&self, seq: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.clear();
        self.last_seq.store(seq, Ordering::Release);
    }

    /// Removes and returns the oldest event when the ring is full, so that
    /// the caller can build the next event in its allocations (see
    /// `Encoded::reuse_or_new`) before [`ChannelLog::push`]. The caller is
    /// the channel's only writer.
    pub fn take_evicted(&self) -> Option<Arc<Encoded>> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.limits.max_messages {
            entries.pop_front()
        } else {
            None
        }
    }

    /// Proto frame bytes of the events from `next_seq` to the newest, or
    /// `None` when `next_seq` is no longer in the window. O(1): each event
    /// carries the channel's running byte total.
    pub fn pending_bytes(&self, next_seq: u64) -> Option<u64> {
        if next_seq > self.last_seq() {
            return Some(0);
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let front = entries.front()?;
        let from = entries.get(next_seq.checked_sub(front.seq)? as usize)?;
        let newest = entries.back()?;
        Some(newest.cum_bytes - from.cum_bytes + from.frame_len() as u64)
    }

    /// Appends to `out` up to `max` events starting at `next_seq`.
    ///
    /// hot path: one read lock and one `Arc` clone per event, no allocation
    /// beyond `out`'s reused capacity.
    pub fn read_from(&self, next_seq: u64, max: usize, out: &mut Vec<Arc<Encoded>>) -> ReadOutcome {
        if next_seq > self.last_seq() {
            return ReadOutcome::Read(0);
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let Some(front) = entries.front() else {
            return ReadOutcome::Behind {
                first_seq: self.last_seq() + 1,
            };
        };
        if next_seq < front.seq {
            return ReadOutcome::Behind {
                first_seq: front.seq,
            };
        }
        let start = (next_seq - front.seq) as usize;
        let before = out.len();
        out.extend(entries.range(start..).take(max).cloned());
        ReadOutcome::Read(out.len() - before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::protocol::pb::{Pong, ServerMessage, server_message};

    fn event(seq: u64, t: i64) -> Arc<Encoded> {
        let msg = ServerMessage {
            kind: Some(server_message::Kind::Pong(Pong {
                request_id: seq,
                server_time_ns: t,
            })),
        };
        Arc::new(Encoded::new(&msg, seq, t, 0, &Metrics::default()))
    }

    fn log(max_messages: usize) -> ChannelLog {
        ChannelLog::new(LogLimits {
            max_messages,
            max_age_ns: 0,
        })
    }

    fn seqs(v: &[Arc<Encoded>]) -> Vec<u64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn reads_in_order_from_a_cursor() {
        let log = log(8);
        let mut out = Vec::new();
        assert_eq!(log.read_from(1, 100, &mut out), ReadOutcome::Read(0));
        for seq in 1..=5 {
            log.push(event(seq, 0));
        }
        assert_eq!(log.read_from(3, 100, &mut out), ReadOutcome::Read(3));
        assert_eq!(seqs(&out), vec![3, 4, 5]);
        out.clear();
        assert_eq!(log.read_from(1, 2, &mut out), ReadOutcome::Read(2));
        assert_eq!(seqs(&out), vec![1, 2]);
        out.clear();
        assert_eq!(log.read_from(6, 100, &mut out), ReadOutcome::Read(0));
    }

    #[test]
    fn wraps_around_keeping_the_newest() {
        let log = log(4);
        for seq in 1..=10 {
            log.push(event(seq, 0));
        }
        assert_eq!(log.len(), 4);
        assert_eq!(log.first_seq(), 7);
        assert_eq!(log.last_seq(), 10);
        let mut out = Vec::new();
        assert_eq!(log.read_from(7, 100, &mut out), ReadOutcome::Read(4));
        assert_eq!(seqs(&out), vec![7, 8, 9, 10]);
    }

    #[test]
    fn a_reader_that_fell_behind_is_told() {
        let log = log(4);
        for seq in 1..=10 {
            log.push(event(seq, 0));
        }
        let mut out = Vec::new();
        assert_eq!(
            log.read_from(3, 100, &mut out),
            ReadOutcome::Behind { first_seq: 7 }
        );
        assert!(out.is_empty(), "no partial read across a gap");
    }

    #[test]
    fn old_events_age_out() {
        let log = ChannelLog::new(LogLimits {
            max_messages: 100,
            max_age_ns: 10,
        });
        for seq in 1..=5 {
            log.push(event(seq, seq as i64 * 5));
        }
        // newest at t=25: events older than t=15 are gone
        assert_eq!(log.first_seq(), 3);
    }

    /// One writer publishing while readers chase it: every reader sees every
    /// seq exactly once and in order, or is told it fell behind.
    #[test]
    fn concurrent_readers_see_consecutive_seqs() {
        let log = Arc::new(log(64));
        let total = 20_000u64;
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut next = 1u64;
                    let mut out = Vec::new();
                    let mut behind = 0;
                    while next <= total {
                        out.clear();
                        match log.read_from(next, 16, &mut out) {
                            ReadOutcome::Read(_) => {
                                for e in &out {
                                    assert_eq!(e.seq, next);
                                    next += 1;
                                }
                            }
                            ReadOutcome::Behind { first_seq } => {
                                assert!(first_seq > next);
                                behind += 1;
                                next = first_seq;
                            }
                        }
                        std::thread::yield_now();
                    }
                    behind
                })
            })
            .collect();
        for seq in 1..=total {
            log.push(event(seq, 0));
        }
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(log.last_seq(), total);
    }
}
