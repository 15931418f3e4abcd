//! A channel's armed list: the subscribers a publish must wake, so that
//! publishing costs one step per subscriber actually woken, not one per
//! subscriber (issue 16: "publishing to a channel with 10 000 subscribers
//! who are already awake costs O(1)").
//!
//! # Design
//!
//! Each subscription has an [`Arm`]: its connection's [`Doorbell`] and an
//! `armed` flag. The channel keeps the armed ones in a list:
//!
//! * **Producer** (the hub, after appending an event to the ring):
//!   [`ArmedList::fire`] takes the whole list under its lock, clears each
//!   `armed` flag and rings each doorbell. Nobody armed: one uncontended
//!   lock, nothing else, however many subscribers are reading.
//! * **Consumer** (the connection, in each drain after its doorbell's
//!   `clear`): for every subscription whose flag is clear, after reading
//!   what it can, [`ArmedList::arm`] (flag set and pushed, under the lock),
//!   then one more look at the ring's tail; an event found there is read
//!   on the next pass (the connection rings its own doorbell).
//!
//! A subscription is in the list at most once (the flag changes only
//! under the lock), and a connection is rung once per event at most per
//! channel, as before; its doorbell still coalesces rings across channels.
//!
//! # Invariants, and why they hold
//!
//! * **No lost wake-up.** An event appended while the subscription is
//!   armed is rung by the `fire` that follows it. One appended while it is
//!   not armed is seen by the consumer's look at the tail after it arms:
//!   the producer appends before taking the lock in `fire`, the consumer
//!   looks after releasing it in `arm`, so whichever holds the lock second
//!   sees the other's work (the lock orders them; no fence needed).
//! * **No stuck disarm.** `fire` clears a flag before it rings that
//!   doorbell (under the lock; the ring is a Release swap). The consumer
//!   reads the flags after its doorbell's `clear` (an Acquire swap): if the
//!   `clear` read that ring, the flag reads clear and the subscription is
//!   armed again; if the ring came after the `clear`, the doorbell stays
//!   pending and the next drain looks again. A stale `true` therefore costs
//!   one more pass, never a subscription left out of the list.
//!
//! The loom test `loom_armed_list_loses_no_wake_up` below runs the real
//! ring, doorbell and list against the consumer's loop.

use std::sync::Arc;

use super::doorbell::Doorbell;
use super::sync::{AtomicBool, Mutex, MutexGuard, Ordering};

/// One subscription's place in its channel's armed list.
#[derive(Debug)]
pub struct Arm {
    bell: Arc<Doorbell>,
    /// In the list; changed only under the list's lock.
    armed: AtomicBool,
}

impl Arm {
    /// A subscription of the connection behind `bell`, not yet armed.
    pub fn new(bell: Arc<Doorbell>) -> Arc<Self> {
        Arc::new(Self {
            bell,
            armed: AtomicBool::new(false),
        })
    }

    /// Whether the next publish on the channel rings this subscription. A
    /// connection arms again whatever reads `false` (see the module
    /// documentation for why a stale `true` is harmless).
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// The connection's doorbell.
    pub fn bell(&self) -> &Arc<Doorbell> {
        &self.bell
    }
}

/// The armed subscriptions of one channel.
#[derive(Debug, Default)]
pub struct ArmedList {
    list: Mutex<Vec<Arc<Arm>>>,
}

impl ArmedList {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Arm>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `arm` in the list unless it is there. Call after reading the
    /// channel, then look at the ring's tail once more.
    pub fn arm(&self, arm: &Arc<Arm>) {
        let mut list = self.lock();
        if !arm.armed.load(Ordering::Relaxed) {
            arm.armed.store(true, Ordering::Relaxed);
            list.push(arm.clone());
        }
    }

    /// Rings and disarms every armed subscription (those whose connection
    /// is gone are dropped). Call after the event is in the ring.
    ///
    /// hot path: one lock per publish, then one step per connection woken.
    pub fn fire(&self) {
        let mut list = self.lock();
        for arm in list.drain(..) {
            // cleared before the ring: see "No stuck disarm"
            arm.armed.store(false, Ordering::Relaxed);
            if !arm.bell.is_closed() {
                arm.bell.ring();
            }
        }
    }

    /// Takes `arm` out of the list (unsubscribe).
    pub fn remove(&self, arm: &Arc<Arm>) {
        let mut list = self.lock();
        if arm.armed.load(Ordering::Relaxed) {
            if let Some(i) = list.iter().position(|a| Arc::ptr_eq(a, arm)) {
                list.swap_remove(i);
            }
            arm.armed.store(false, Ordering::Relaxed);
        }
    }

    /// Subscriptions armed now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nobody is armed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, not(tickwire_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fire_rings_and_disarms_only_the_armed() {
        let list = ArmedList::default();
        let (a, b) = (Doorbell::new(), Doorbell::new());
        let (arm_a, arm_b) = (Arm::new(a.clone()), Arm::new(b.clone()));
        list.arm(&arm_a);
        list.arm(&arm_a); // once in the list
        assert_eq!(list.len(), 1);
        list.fire();
        assert!(a.is_pending(), "armed: rung");
        assert!(!b.is_pending(), "not armed: not rung");
        assert!(!arm_a.is_armed() && list.is_empty());
        // awake subscribers (not armed again) cost a publish nothing
        a.clear();
        list.fire();
        assert!(!a.is_pending());
        list.arm(&arm_b);
        list.remove(&arm_b);
        assert!(list.is_empty() && !arm_b.is_armed());
    }

    #[test]
    fn closed_doorbells_are_dropped_unrung() {
        let list = ArmedList::default();
        let bell = Doorbell::new();
        let arm = Arm::new(bell.clone());
        list.arm(&arm);
        bell.close();
        list.fire();
        assert!(!bell.is_pending());
        assert!(list.is_empty());
    }
}

/// loom model of the armed list (run with `RUSTFLAGS="--cfg tickwire_loom"
/// cargo test --lib --release loom`): a publish against a connection that
/// reads, arms and waits, with loom's model of the lock, the atomics and
/// the waker slot.
#[cfg(all(test, tickwire_loom))]
mod loom_tests {
    use std::sync::Arc;

    use loom::thread;

    use super::{Arm, ArmedList};
    use crate::feed::doorbell::Doorbell;
    use crate::feed::ring::loom_support::{event, model};
    use crate::feed::ring::{ReadOutcome, Ring, RingLimits};

    /// The connection has read seq 1 and its subscription was disarmed by
    /// seq 1's publish; the hub publishes seq 2 while the connection clears
    /// its doorbell, reads, arms and waits. The connection always gets seq
    /// 2 (loom reports a deadlock when it waits with nobody left to wake
    /// it). Without the look at the tail after arming it fails (checked
    /// when it was written, loom 0.7.3: `deadlock; threads = [(Id(0),
    /// Blocked(Location(None))), (Id(1), Terminated)]`).
    #[test]
    fn loom_armed_list_loses_no_wake_up() {
        let first = event(1);
        let second = event(2);
        model(move || {
            let ring = Arc::new(Ring::new(RingLimits {
                max_messages: 4,
                max_age_ns: 0,
            }));
            let armed = Arc::new(ArmedList::default());
            let bell = Arc::new(Doorbell::default());
            let arm = Arm::new(bell.clone());
            // seq 1: armed, published (disarmed and rung), then read
            armed.arm(&arm);
            ring.push(first.clone());
            armed.fire();
            let producer = {
                let (ring, armed, second) = (ring.clone(), armed.clone(), second.clone());
                thread::spawn(move || {
                    // what `Hub::publish` does: append, then fire
                    ring.push(second);
                    armed.fire();
                })
            };
            // what the connection does: clear, read, arm, look, wait
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
                    if !arm.is_armed() {
                        armed.arm(&arm);
                        if ring.last_seq() >= next {
                            continue;
                        }
                    }
                    bell.rung().await;
                }
            });
            producer.join().expect("producer thread");
        });
    }
}
