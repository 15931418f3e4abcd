//! The registry of channels: name -> dense id, creation on first publish, and
//! the doorbells of connections whose patterns must learn of new channels.
//!
//! Ids are slots in creation order and are never reused. A channel that
//! never carried an event, has no subscriber and is held by nobody (no
//! source handle, no connection) can be retired ([`Registry::retire_idle`]):
//! its slot becomes empty and its name free; nobody ever saw a seq of it,
//! so a later channel of the same name starting again at seq 1 breaks no
//! promise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use super::channel::{Channel, ChannelId};
use super::doorbell::Doorbell;
use super::ring::RingLimits;
use crate::protocol::{ChannelError, validate_channel};

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<Arc<str>, Arc<Channel>>,
    /// Index = id; `None` once retired.
    list: Vec<Option<Arc<Channel>>>,
}

/// Doorbells of pattern subscribers, and the length at which the next sweep
/// of closed ones is due.
#[derive(Debug, Default)]
struct Watchers {
    bells: Vec<Weak<Doorbell>>,
    sweep_at: usize,
}

impl Watchers {
    fn sweep(&mut self) {
        self.bells
            .retain(|w| w.upgrade().is_some_and(|b| !b.is_closed()));
        self.sweep_at = (2 * self.bells.len()).max(64);
    }
}

/// Every channel the server knows, in creation order (index = [`ChannelId`]).
#[derive(Debug)]
pub struct Registry {
    inner: RwLock<Inner>,
    count: AtomicUsize,
    watchers: Mutex<Watchers>,
    limits: RingLimits,
}

impl Registry {
    /// An empty registry whose channels' rings keep `limits`.
    pub fn new(limits: RingLimits) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            count: AtomicUsize::new(0),
            watchers: Mutex::new(Watchers::default()),
            limits,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The channel of that name, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.read().by_name.get(name).cloned()
    }

    /// The channel of that name, created if new (and pattern watchers rung).
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Channel>, ChannelError> {
        if let Some(ch) = self.get(name) {
            return Ok(ch);
        }
        validate_channel(name)?;
        let channel = {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if let Some(ch) = inner.by_name.get(name) {
                return Ok(ch.clone());
            }
            let id =
                ChannelId::try_from(inner.list.len()).expect("invariant: fewer than 2^32 channels");
            let channel = Arc::new(Channel::new(id, name, self.limits));
            inner.by_name.insert(channel.name.clone(), channel.clone());
            inner.list.push(Some(channel.clone()));
            self.count.store(inner.list.len(), Ordering::Release);
            channel
        };
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.bells.retain(|w| match w.upgrade() {
            Some(bell) if !bell.is_closed() => {
                bell.ring();
                true
            }
            _ => false,
        });
        Ok(channel)
    }

    /// Number of channel ids handed out (retired ones included). Lock-free,
    /// for "did anything appear?" checks.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Number of live channels.
    pub fn live(&self) -> usize {
        self.read().by_name.len()
    }

    /// Live channels with id `start` and above, in id order, and the id
    /// count they were read at (where the next look should start).
    pub fn since(&self, start: usize) -> (Vec<Arc<Channel>>, usize) {
        let inner = self.read();
        let list = inner.list.get(start..).unwrap_or_default();
        (list.iter().flatten().cloned().collect(), inner.list.len())
    }

    /// All live channels, in id order.
    pub fn all(&self) -> Vec<Arc<Channel>> {
        self.since(0).0
    }

    /// Retires every channel that never carried an event, has no
    /// subscriber and that nothing but the registry holds; returns how many.
    /// Cold path (periodic); O(channels) under the write lock.
    pub fn retire_idle(&self) -> usize {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Inner { by_name, list } = &mut *inner;
        let mut retired = 0;
        for slot in list.iter_mut() {
            // by_name and this slot hold it; under the write lock nobody can
            // look it up, so a count of 2 means nobody else has it
            let idle = slot.as_ref().is_some_and(|c| {
                c.seq() == 0 && c.subscriber_count() == 0 && Arc::strong_count(c) == 2
            });
            if idle && let Some(c) = slot.take() {
                by_name.remove(&c.name);
                retired += 1;
            }
        }
        retired
    }

    /// Rings `bell` whenever a channel is created (for pattern subscribers).
    ///
    /// Watchers of closed connections are dropped when a channel is created,
    /// and also here whenever the list has doubled since the last sweep, so
    /// connection churn on a fixed set of channels cannot grow it without
    /// bound (amortised O(1) per call).
    pub fn watch_new_channels(&self, bell: &Arc<Doorbell>) {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if watchers.bells.len() >= watchers.sweep_at {
            watchers.sweep();
        }
        watchers.bells.push(Arc::downgrade(bell));
    }

    /// Number of pattern watchers held, live or not yet swept (for `/stats`).
    pub fn watcher_count(&self) -> usize {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bells
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churning_pattern_subscribers_do_not_pile_up_as_watchers() {
        let registry = Registry::new(RingLimits {
            max_messages: 8,
            max_age_ns: 0,
        });
        let live = Arc::new(Doorbell::default());
        registry.watch_new_channels(&live);
        for _ in 0..10_000 {
            let bell = Arc::new(Doorbell::default());
            registry.watch_new_channels(&bell);
            bell.close();
        }
        assert!(
            registry.watcher_count() <= 130,
            "{} watchers held",
            registry.watcher_count()
        );
        // the live one is still rung
        registry.get_or_create("trades.sim.BTC-USD").unwrap();
        assert!(live.is_pending());
        assert_eq!(registry.watcher_count(), 1);
    }

    #[test]
    fn only_idle_unheld_channels_are_retired() {
        let registry = Registry::new(RingLimits {
            max_messages: 8,
            max_age_ns: 0,
        });
        let held = registry.get_or_create("a.b.held").unwrap();
        let subscribed = registry.get_or_create("a.b.subscribed").unwrap();
        let bell = Doorbell::new();
        subscribed.add_subscriber(&bell);
        drop(subscribed);
        let idle = registry.get_or_create("a.b.idle").unwrap();
        let idle_id = idle.id;
        drop(idle);
        assert_eq!(registry.retire_idle(), 1);
        assert!(registry.get("a.b.idle").is_none());
        assert!(registry.get("a.b.held").is_some());
        assert!(registry.get("a.b.subscribed").is_some());
        assert_eq!(registry.live(), 2);
        assert_eq!(registry.count(), 3, "ids are not reused");
        let (listed, next) = registry.since(0);
        assert_eq!(listed.len(), 2);
        assert_eq!(next, 3);
        // the name can come back, under a new id
        let again = registry.get_or_create("a.b.idle").unwrap();
        assert_ne!(again.id, idle_id);
        assert_eq!(registry.retire_idle(), 0, "held again");
        drop(held);
    }
}
