//! The registry of channels: name -> dense id, creation on first publish, and
//! the doorbells of connections whose patterns must learn of new channels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use super::channel::{Channel, ChannelId, Doorbell};
use super::log::LogLimits;
use crate::protocol::{ChannelError, validate_channel};

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<Arc<str>, Arc<Channel>>,
    list: Vec<Arc<Channel>>,
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
    limits: LogLimits,
}

impl Registry {
    /// An empty registry whose channels keep `limits` of history.
    pub fn new(limits: LogLimits) -> Self {
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
            inner.list.push(channel.clone());
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

    /// Number of channels. Lock-free, for "did anything appear?" checks.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Channels with id `start` and above, in id order.
    pub fn since(&self, start: usize) -> Vec<Arc<Channel>> {
        self.read().list.get(start..).unwrap_or_default().to_vec()
    }

    /// All channels, in id order.
    pub fn all(&self) -> Vec<Arc<Channel>> {
        self.since(0)
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
        let registry = Registry::new(LogLimits {
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
}
