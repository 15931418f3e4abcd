//! Trade ids already published, for venues whose ids are not consecutive
//! (Bybit spot, Coinbase across products' snapshots): a bounded window of
//! the most recent ids, so that a trade repeated by a reconnect's snapshot
//! or by an overlapping connection is published once.

use std::collections::{HashSet, VecDeque};

/// Ids remembered per market.
pub const WINDOW: usize = 4096;

/// The last [`WINDOW`] trade ids of one market.
#[derive(Debug, Default, Clone)]
pub struct RecentIds {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl RecentIds {
    /// True the first time `id` is offered (and remembers it), false for
    /// a repeat. The oldest id is forgotten once the window is full.
    pub fn first(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(id.to_string());
        self.seen.insert(id.to_string());
        true
    }

    /// Whether any id has been seen.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_refused_within_the_window() {
        let mut r = RecentIds::default();
        assert!(r.first("a"));
        assert!(!r.first("a"));
        for i in 0..WINDOW {
            assert!(r.first(&i.to_string()));
        }
        // "a" was the oldest and has been forgotten
        assert!(r.first("a"));
        assert!(!r.first(&(WINDOW - 1).to_string()));
    }
}
