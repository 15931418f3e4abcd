//! Telling a doorbell-only wake-up from one that needs a connection's
//! socket and timers looked at.
//!
//! A connection task waits on six things: shutdown, client bytes, its
//! doorbell, the heartbeat, the authentication deadline and the lag
//! probe's timer. Under a light load nearly every wake-up is the doorbell
//! alone (an event to write), and polling the other five each time costs a
//! readiness check, three timer polls and a cancellation check per event
//! written (issue 16: "no timer or readiness work on doorbell-only
//! wake-ups").
//!
//! # Design
//!
//! The five other sources are polled with a waker of their own,
//! [`OtherWakes::waker`], which sets a flag and then wakes the task. The
//! doorbell is polled with the task's own waker. A wait then:
//!
//! 1. takes the flag ([`OtherWakes::take_fired`]); set, it polls the five
//!    others with the flag's waker (each stays registered with it until it
//!    fires) and returns the first that is ready, setting the flag again so
//!    that the others are polled once more on the next wait;
//! 2. polls the doorbell.
//!
//! A source that fires between two waits sets the flag before it wakes the
//! task, so the next wait polls it: nothing is missed, and a doorbell that
//! is always ready cannot starve the socket or the heartbeat (a fired
//! source is polled before the doorbell). The flag is set at the start, and
//! by the connection whenever it re-arms a timer (a reset deadline must be
//! polled to register).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

use atomic_waker::AtomicWaker;

/// The flag and waker the non-doorbell sources of one connection share.
#[derive(Debug)]
pub(super) struct OtherWakes {
    inner: Arc<Fired>,
    /// [`Fired`] as a waker, built once (cloned into each registration).
    waker: Waker,
}

#[derive(Debug, Default)]
struct Fired {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // flag first: the task woken below must see it (Release pairs with
        // `take_fired`'s Acquire)
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl OtherWakes {
    /// A new set, flagged: the first wait polls every source.
    pub(super) fn new() -> Self {
        let inner = Arc::new(Fired::default());
        inner.fired.store(true, Ordering::Relaxed);
        let waker = Waker::from(inner.clone());
        Self { inner, waker }
    }

    /// Whether a non-doorbell source may be ready (and clears the flag):
    /// the caller then polls them all with [`OtherWakes::waker`]. Also
    /// registers `task` as the task those sources wake.
    pub(super) fn take_fired(&self, task: &Waker) -> bool {
        self.inner.task.register(task);
        self.inner.fired.swap(false, Ordering::AcqRel)
    }

    /// Makes the next wait poll every source (a timer was re-armed, or one
    /// source was returned while others may be ready too).
    pub(super) fn mark(&self) {
        self.inner.fired.store(true, Ordering::Release);
    }

    /// The waker to poll the non-doorbell sources with.
    pub(super) fn waker(&self) -> &Waker {
        &self.waker
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Context;

    /// A counting task waker.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn starts_flagged_so_the_first_wait_polls_everything() {
        let task = Waker::from(Arc::new(Count::default()));
        let w = OtherWakes::new();
        assert!(w.take_fired(&task));
        assert!(!w.take_fired(&task), "taken once");
    }

    #[test]
    fn a_source_that_fires_flags_and_wakes_the_task() {
        let count = Arc::new(Count::default());
        let task = Waker::from(count.clone());
        let w = OtherWakes::new();
        assert!(w.take_fired(&task));
        // a timer registered with the flag's waker fires
        let cx = Context::from_waker(w.waker());
        cx.waker().wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(w.take_fired(&task), "and the next wait polls the sources");
        assert!(!w.take_fired(&task));
    }

    #[test]
    fn a_doorbell_only_wake_leaves_the_flag_clear() {
        let count = Arc::new(Count::default());
        let task = Waker::from(count.clone());
        let w = OtherWakes::new();
        assert!(w.take_fired(&task));
        // the doorbell wakes the task through its own waker
        task.wake_by_ref();
        assert!(!w.take_fired(&task), "nothing else to poll");
        w.mark();
        assert!(w.take_fired(&task), "unless marked");
    }
}
