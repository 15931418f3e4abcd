//! The atomics, lock and waker slot that the ring ([`super::ring`]) and the
//! doorbell ([`super::doorbell`]) are built from: std's (and the
//! `atomic-waker` crate's) in a normal build, loom's models under
//! `RUSTFLAGS="--cfg tickwire_loom"`, so the loom tests in those files explore every
//! interleaving and every weak-memory outcome of the real code.
//!
//! The cfg is `tickwire_loom`, not loom's customary `loom`: RUSTFLAGS reach
//! every crate, and tokio built with `--cfg loom` drops `tokio::net` (it
//! models itself under that name), which tokio-tungstenite and this crate
//! need.
//!
//! loom types only work inside `loom::model`: under `--cfg tickwire_loom` only the
//! loom tests (`cargo test --lib --release loom`) may run.

#[cfg(tickwire_loom)]
pub(crate) use loom::sync::RwLock;
#[cfg(tickwire_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(not(tickwire_loom))]
pub(crate) use std::sync::RwLock;
#[cfg(not(tickwire_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::task::Waker;

/// One task's registered waker, set by the owner and taken by whoever wakes
/// it, without a lock (`atomic_waker::AtomicWaker`; loom's model of it under
/// `--cfg tickwire_loom`).
#[derive(Debug, Default)]
pub(crate) struct WakerSlot {
    #[cfg(not(tickwire_loom))]
    inner: atomic_waker::AtomicWaker,
    #[cfg(tickwire_loom)]
    inner: loom::future::AtomicWaker,
}

impl WakerSlot {
    /// Makes `waker` the one the next [`WakerSlot::wake`] wakes.
    pub(crate) fn register(&self, waker: &Waker) {
        #[cfg(not(tickwire_loom))]
        self.inner.register(waker);
        #[cfg(tickwire_loom)]
        self.inner.register_by_ref(waker);
    }

    /// Wakes the registered task, if any (and forgets it).
    pub(crate) fn wake(&self) {
        self.inner.wake();
    }
}
