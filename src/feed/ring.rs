//! The ring: a channel's bounded window of encoded events, the one buffer
//! that live fanout, resume and the slow-consumer policy all read from (the
//! writing half; the reading half, a subscriber's cursor, is
//! [`super::cursor`]).
//!
//! # Design
//!
//! Every channel owns one [`Ring`]: a `VecDeque` that never grows past its
//! bound, of `Arc<Encoded>` events with consecutive sequence numbers
//! `first_seq ..= last_seq`. There is one writer per channel (the hub or the
//! replica, holding the channel's publish lock) and any number of readers,
//! each with its own cursor: the next seq it wants.
//!
//! * **Writing** appends one event and evicts from the front while the
//!   window holds more than `max_messages` events or events older than
//!   `max_age` (`--history-messages` and `--history-seconds`: the flags keep
//!   the word "history", the code calls the window the ring). Then the hub rings
//!   the doorbells of the channel's subscribers (`super::doorbell`).
//! * **The tail** (`last_seq`) is also kept in an atomic, stored (Release)
//!   after the push, so a reader can tell "nothing new" without the lock; a
//!   reader that loads it (Acquire) and finds seq `n` finds events up to `n`
//!   under the lock.
//! * **Reading** copies out `Arc`s (a reference-count increment each, no
//!   payload copy) under the read lock, so readers never block each other and
//!   the writer waits only for those short copies.
//! * **Buffer reuse.** At a full ring the writer takes the event it evicts
//!   ([`Ring::take_evicted`]) and builds the next event in its allocations
//!   (`Encoded::reuse_or_new`, `Encoded::spare_buffer`), so publishing
//!   allocates nothing. Only an event nobody else holds is reused: a reader
//!   that still holds the evicted event (`Arc`), or one of its frames
//!   (`Bytes`), keeps it as it was and the writer allocates a new one.
//!
//! # Invariants
//!
//! * Seqs in the window are consecutive; `last_seq` never goes back (except
//!   [`Ring::restart_after`], which moves it forward past a gap).
//! * A reader is never handed a gap: a cursor older than `first_seq` is told
//!   [`ReadOutcome::Behind`] and decides (the lag policy lives in
//!   `super::cursor`).
//! * An event or frame a reader holds is never rewritten, however many times
//!   the writer laps the ring (tested under loom below).
//!
//! # Closing
//!
//! A ring is never closed: it lives as long as its channel, and a channel is
//! retired only when nobody holds it (`Registry::retire_idle`). A source
//! that stops simply stops appending; readers see nothing new.
//!
//! The same window serves live fanout and replay on resume: a resumed client
//! is just a cursor that starts in the past.

use std::collections::VecDeque;
use std::sync::Arc;

use super::encoded::Encoded;
use super::sync::{AtomicU64, Ordering, RwLock};

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

/// Bounds of a channel's ring (`--history-messages`, `--history-seconds`).
#[derive(Debug, Clone, Copy)]
pub struct RingLimits {
    /// Most events kept (at least 1).
    pub max_messages: usize,
    /// Oldest event kept, in ns of publish time (0 = no age bound).
    pub max_age_ns: i64,
}

/// What [`Ring::read_from`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `n` events were appended to the output (0 when up to date).
    Read(usize),
    /// The cursor is older than the window: events before `first_seq` are gone.
    Behind { first_seq: u64 },
}

/// A channel's bounded ring of encoded events (see the module documentation).
#[derive(Debug)]
pub struct Ring {
    entries: RwLock<VecDeque<Arc<Encoded>>>,
    last_seq: AtomicU64,
    limits: RingLimits,
}

impl Ring {
    /// An empty log.
    pub fn new(limits: RingLimits) -> Self {
        Self {
            entries: RwLock::new(VecDeque::new()),
            last_seq: AtomicU64::new(0),
            limits: RingLimits {
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
    pub(crate) fn push(&self, event: Arc<Encoded>) {
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
    pub(crate) fn restart_after(&self, seq: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.clear();
        self.last_seq.store(seq, Ordering::Release);
    }

    /// Removes and returns the oldest event when the ring is full, so that
    /// the caller can build the next event in its allocations (see
    /// `Encoded::reuse_or_new`) before [`Ring::push`]. The caller is
    /// the channel's only writer.
    pub(crate) fn take_evicted(&self) -> Option<Arc<Encoded>> {
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

    fn log(max_messages: usize) -> Ring {
        Ring::new(RingLimits {
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
        let log = Ring::new(RingLimits {
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

/// What the loom tests of the ring and the doorbell share: events built
/// outside the model (encoding touches no loom type) and the model runner.
#[cfg(all(test, tickwire_loom))]
pub(crate) mod loom_support {
    use std::sync::Arc;

    use crate::feed::encoded::Encoded;
    use crate::metrics::Metrics;
    use crate::protocol::codec::encode_event_proto;
    use crate::protocol::pb::Trade;
    use crate::protocol::pb::event::Payload;

    /// The name every test event is published on.
    pub(crate) const CHANNEL: &str = "trade.sim.BTC-USDT";

    /// The trade event `seq` (price = seq), encoded as the hub encodes it,
    /// in `spare`'s buffer.
    pub(crate) fn encode(seq: u64, spare: Vec<u8>) -> crate::protocol::codec::ProtoEncoding {
        let payload = Payload::Trade(Trade {
            price: seq as f64,
            quantity: 1.0,
            ..Trade::default()
        });
        encode_event_proto(CHANNEL, seq, 1, seq as i64, &payload, 0, spare)
    }

    /// A fresh event `seq`.
    pub(crate) fn event(seq: u64) -> Arc<Encoded> {
        Encoded::reuse_or_new(
            None,
            encode(seq, Vec::new()),
            seq,
            seq as i64,
            0,
            0,
            &Metrics::default(),
        )
    }

    /// Runs `f` under loom, every interleaving up to `LOOM_MAX_PREEMPTIONS`
    /// preemptions (3 unless set): keeps a run to seconds.
    pub(crate) fn model<F: Fn() + Sync + Send + 'static>(f: F) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }
}

/// loom model of buffer reuse (run with `RUSTFLAGS="--cfg tickwire_loom" cargo test
/// --lib --release loom`): the writer laps the ring, reusing evicted events,
/// while a reader holds events and frames it read.
#[cfg(all(test, tickwire_loom))]
mod loom_tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use loom::thread;

    use super::loom_support::{encode, model};
    use super::{ReadOutcome, Ring, RingLimits};
    use crate::feed::encoded::Encoded;
    use crate::metrics::Metrics;
    use crate::protocol::Format;

    /// What the hub does per publish at a full ring: take the evicted event,
    /// encode the next one into its buffer, reuse its allocation, append.
    fn publish(ring: &Ring, seq: u64, metrics: &Metrics) {
        let mut spare = ring.take_evicted();
        let buffer = spare
            .as_mut()
            .map(Encoded::spare_buffer)
            .unwrap_or_default();
        let proto = encode(seq, buffer);
        ring.push(Encoded::reuse_or_new(
            spare, proto, seq, seq as i64, 0, 0, metrics,
        ));
    }

    /// Reads the oldest event the ring holds, and a clone of its frame.
    fn read_oldest(ring: &Ring, metrics: &Metrics) -> (Arc<Encoded>, Bytes) {
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            match ring.read_from(from, 1, &mut out) {
                ReadOutcome::Read(1) => break,
                // between `take_evicted` and `push` the one-slot ring is
                // empty, and the tail is stored after the push's lock: wait
                ReadOutcome::Read(_) => thread::yield_now(),
                ReadOutcome::Behind { first_seq } => from = first_seq,
            }
        }
        let event = out.pop().expect("one event read");
        let frame = event.frame(Format::Proto, metrics).clone();
        (event, frame)
    }

    /// A one-slot ring, so every publish evicts and reuses: a reader that
    /// holds an event (and its frame) while the writer laps the ring twice
    /// still holds exactly what was published under that seq.
    ///
    /// Checked to fail when it was written: with `Encoded::reuse_or_new`
    /// sabotaged to rewrite the evicted event in place even while shared,
    /// loom finds the interleaving (`a held frame was rewritten`: the held
    /// event claimed seq 3 while its frame, cloned when read, was seq 1's).
    #[test]
    fn loom_a_held_event_is_never_rewritten() {
        let expected: Arc<Vec<Bytes>> =
            Arc::new((1..=3).map(|seq| encode(seq, Vec::new()).frame).collect());
        let metrics = Arc::new(Metrics::default());
        model(move || {
            let ring = Arc::new(Ring::new(RingLimits {
                max_messages: 1,
                max_age_ns: 0,
            }));
            // built in the model: each run reuses (rewrites) its own events
            ring.push(Encoded::reuse_or_new(
                None,
                encode(1, Vec::new()),
                1,
                1,
                0,
                0,
                &metrics,
            ));
            let writer = {
                let (ring, metrics) = (ring.clone(), metrics.clone());
                thread::spawn(move || {
                    for seq in 2..=3 {
                        publish(&ring, seq, &metrics);
                    }
                })
            };
            let held = read_oldest(&ring, &metrics);
            let held_later = read_oldest(&ring, &metrics);
            writer.join().expect("writer thread");
            for (event, frame) in [held, held_later] {
                let want = &expected[event.seq as usize - 1];
                assert_eq!(&frame, want, "a held frame was rewritten");
                assert_eq!(
                    event.frame(Format::Proto, &metrics),
                    want,
                    "a held event was rewritten"
                );
            }
        });
    }
}
