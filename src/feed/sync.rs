//! The atomics, locks and waker slot that the ring ([`super::ring`]), the
//! doorbell ([`super::doorbell`]) and the armed list ([`super::armed`]) are
//! built from: std's (and the
//! `atomic-waker` crate's) in a normal build, loom's models in the unit
//! tests built with `RUSTFLAGS="--cfg tickwire_loom"`, so the loom tests in
//! those files explore every interleaving and every weak-memory outcome of
//! the real code.
//!
//! The cfg is `tickwire_loom`, not loom's customary `loom`: RUSTFLAGS reach
//! every crate, and tokio built with `--cfg loom` drops `tokio::net` (it
//! models itself under that name), which tokio-tungstenite and this crate
//! need.
//!
//! Only the crate's own unit tests see loom's types (loom is a
//! dev-dependency): any other build under the flag uses std's. loom types
//! only work inside `loom::model`, so under the flag only the loom tests
//! may run: `RUSTFLAGS="--cfg tickwire_loom" cargo test --lib --release loom`.

#[cfg(all(test, tickwire_loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(all(test, tickwire_loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock};

#[cfg(not(all(test, tickwire_loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(all(test, tickwire_loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock};

use std::task::Waker;

/// One task's registered waker, set by the owner and taken by whoever wakes
/// it, without a lock (`atomic_waker::AtomicWaker`; loom's model of it under
/// `--cfg tickwire_loom`).
#[derive(Debug, Default)]
pub(crate) struct WakerSlot {
    #[cfg(not(all(test, tickwire_loom)))]
    inner: atomic_waker::AtomicWaker,
    #[cfg(all(test, tickwire_loom))]
    inner: loom::future::AtomicWaker,
}

impl WakerSlot {
    /// Makes `waker` the one the next [`WakerSlot::wake`] wakes.
    pub(crate) fn register(&self, waker: &Waker) {
        #[cfg(not(all(test, tickwire_loom)))]
        self.inner.register(waker);
        #[cfg(all(test, tickwire_loom))]
        self.inner.register_by_ref(waker);
    }

    /// Wakes the registered task, if any (and forgets it).
    pub(crate) fn wake(&self) {
        self.inner.wake();
    }
}
