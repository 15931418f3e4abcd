//! A connection's doorbell: how the hub tells a connection "one of your
//! channels has something new" without a lock, a queue or a wake per event.
//!
//! # Design
//!
//! Every connection owns one [`Doorbell`] and shares it (by `Arc`) with every
//! channel it is subscribed to, and with the registry when it subscribed to a
//! pattern (to learn of new channels). The doorbell carries no data: the
//! events are in the channels' rings, and the connection finds them by
//! reading each of its cursors up to the ring's tail (`feed/cursor.rs`). It
//! is a flag, `pending`, and one registered waker:
//!
//! * **Producer** (the hub, after appending an event to a channel's ring):
//!   [`Doorbell::ring`] sets `pending` and, only if it was clear, wakes the
//!   connection's task.
//! * **Consumer** (the connection's task), in a loop: [`Doorbell::clear`]
//!   (`pending` back to false), then drain (read every cursor to its ring's
//!   tail), then wait in [`Doorbell::rung`] until `pending` is set.
//!
//! # Invariants
//!
//! * **No lost wake-up.** For every event appended before a `ring`, either the
//!   drain that follows the consumer's `clear` sees the event, or that ring
//!   leaves `pending` set (and wakes the task), so the next `rung` returns at
//!   once and the next drain sees it. An event never waits for the next
//!   publish or the heartbeat.
//! * **Coalescing.** However many events and channels ring between two
//!   drains, the task is woken once: the first ring after a `clear` wakes,
//!   the others find `pending` set and do one atomic swap each.
//! * **Nothing blocks.** Ringing is one swap (plus one `wake` on the first
//!   event since the last drain); waiting registers a waker. No lock is shared
//!   by the hub and the connections.
//!
//! # Orderings, and why
//!
//! The hub's side is "store the event (the ring's tail), then swap the
//! flag"; the connection's side is "clear the flag, then load the tail".
//! That is the store-buffering (Dekker) shape: each side stores one location
//! and then loads the other. With a plain `store(false, Release)` on clear
//! and `Acquire` loads (the code before issue 17), nothing orders the
//! consumer's store before its later load: the load of the tail may be
//! satisfied before the store of `false` is visible (a CPU's store buffer
//! does exactly that on x86). Then the consumer reads the old tail, the
//! hub's swap reads the old `true` and rings nothing, the consumer's `false`
//! lands, and it waits with the event unseen until the next publish or the
//! 15 s heartbeat. Store-then-load needs `SeqCst` on both sides, a `SeqCst`
//! fence on each side between the store and the load, or the store made a
//! read-modify-write. We do the last:
//!
//! * `clear` is `swap(false, AcqRel)`. A read-modify-write always reads the
//!   latest value in the flag's modification order, so the hub's swap and
//!   ours are totally ordered: if the hub's comes first, ours reads its
//!   `true` and (Acquire, pairing with the hub's Release) the drain after it
//!   sees the event; if ours comes first, the hub's swap reads our `false`
//!   and wakes the task. `swap` also returns whether a ring was pending (the
//!   connection's probe needs that; a separate load before the clear raced
//!   with rings in between). On x86 an RMW is one locked instruction, the
//!   cost of a `SeqCst` store.
//! * `ring` is `swap(true, AcqRel)`: Release publishes the event appended
//!   before it to the consumer whose clear or `rung` reads this `true`.
//!   (Acquire is not needed for correctness and costs nothing on x86.)
//! * `rung` loads `pending` with Acquire (pairs with `ring`'s Release), then
//!   registers the waker and loads again: a ring between the first load and
//!   the registration found no waker to wake, and the second load sees it.
//!
//! The loom test `loom_no_lost_wake_up` below runs the real publish (ring
//! append, then ring) against the real drain loop (clear, read the ring,
//! wait); with the old `store(false, Release)` clear it fails (see the test).
//!
//! # Closing
//!
//! A connection that goes calls [`Doorbell::close`]. Nobody waits for that:
//! channels drop closed doorbells lazily, on their next ring pass
//! (`Channel::ring_subscribers`) or the registry's next sweep of pattern
//! watchers; ringing a closed doorbell is harmless. Unsubscribing removes the
//! doorbell from the channel's list at once.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::sync::{AtomicBool, Ordering, WakerSlot};

/// A connection's wake-up: rung by the hub when a subscribed channel gets an
/// event, at most one pending wake at a time however many events arrive.
/// See the module documentation for the protocol and its orderings.
#[derive(Debug, Default)]
pub struct Doorbell {
    pending: AtomicBool,
    closed: AtomicBool,
    waker: WakerSlot,
}

impl Doorbell {
    /// A new doorbell, shared between the connection and its channels.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Wakes the owner unless a wake is already pending. Call after the
    /// event is in the ring.
    ///
    /// hot path: one atomic swap per subscriber per event; a notify only on
    /// the first event since the owner's last drain.
    pub fn ring(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Ready when rung; registers `cx`'s waker otherwise (the poll form of
    /// [`Doorbell::rung`], for a task that waits on several things).
    pub fn poll_rung(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // a ring between the check and the registration found no waker
        if self.pending.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until rung (at once while a ring is pending, i.e. not cleared).
    pub async fn rung(&self) {
        poll_fn(|cx| self.poll_rung(cx)).await
    }

    /// Whether a ring is pending.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Marks the pending wake as handled and says whether there was one;
    /// call before draining. A read-modify-write, not a store: see the
    /// module documentation (a store here can miss an event).
    pub fn clear(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }

    /// Marks the owner gone so channels drop this doorbell lazily.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the owner is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// loom models of the doorbell (run with `RUSTFLAGS="--cfg tickwire_loom" cargo test
/// --lib --release loom`): every interleaving of a publish against the
/// connection's drain loop, with loom's weak-memory model of the atomics, the
/// ring's lock and the waker slot (see `super::sync`).
#[cfg(all(test, tickwire_loom))]
mod loom_tests {
    use std::sync::Arc;

    use loom::thread;

    use super::Doorbell;
    use crate::feed::ring::loom_support::{event, model};
    use crate::feed::ring::{ReadOutcome, Ring, RingLimits};

    /// The hub appends an event and rings while the connection clears,
    /// drains and waits: the connection always gets the event (loom reports
    /// a deadlock when the consumer waits with nobody left to wake it).
    ///
    /// The situation of the missed wake-up: the connection has read seq 1,
    /// and the ring for seq 1 came after its last clear, so `pending` is
    /// still set. With the old clear (`pending.load(Acquire)` then
    /// `pending.store(false, Release)`) this test fails (checked when it was
    /// written, loom 0.7.3):
    ///
    /// ```text
    /// thread 'feed::doorbell::loom_tests::loom_no_lost_wake_up' panicked at
    /// loom-0.7.3/src/rt/execution.rs:215:13:
    /// deadlock; threads = [(Id(0), Blocked(Location(None))), (Id(1), Terminated)]
    /// ```
    ///
    /// (the producer's swap read the old `true`, the consumer's load of the
    /// ring's tail read the old seq, and the consumer waited forever). With
    /// `swap(false, AcqRel)` it passes.
    #[test]
    fn loom_no_lost_wake_up() {
        let first = event(1);
        let second = event(2);
        model(move || {
            let ring = Arc::new(Ring::new(RingLimits {
                max_messages: 4,
                max_age_ns: 0,
            }));
            let bell = Arc::new(Doorbell::default());
            // seq 1 is published and read; its ring came after the last clear
            ring.push(first.clone());
            bell.ring();
            let producer = {
                let (ring, bell, second) = (ring.clone(), bell.clone(), second.clone());
                thread::spawn(move || {
                    // what `Hub::publish` does: append, then ring
                    ring.push(second);
                    bell.ring();
                })
            };
            // what the connection's loop does: clear, drain, wait
            loom::future::block_on(async {
                let mut next = 2;
                let mut out = Vec::new();
                loop {
                    bell.clear();
                    out.clear();
                    match ring.read_from(next, 16, &mut out) {
                        ReadOutcome::Read(n) => next += n as u64,
                        ReadOutcome::Behind { .. } => unreachable!("the ring holds 4"),
                    }
                    if next > 2 {
                        break;
                    }
                    bell.rung().await;
                }
            });
            producer.join().expect("producer thread");
        });
    }
}
