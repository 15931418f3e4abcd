//! Conflated book deliveries shared by every subscriber of one interval.
//!
//! A conflated book subscriber (`server/session/conflation.rs`) is served
//! at the ticks of its interval's grid (multiples of `conflate_ms` of the
//! server clock), so every subscriber of one interval is served at the same
//! instants. Per book channel and interval, [`BookFolds`] keeps the state
//! all of them were brought to at the previous tick (`base`: seq and book)
//! and, for the current tick, the state at the head (`out`): a subscriber
//! still at `base` gets the **update from base to out** (one `book_update`
//! whose checksum is the book's at `out.seq`, encoded once per tick and
//! shared), any other subscriber the **snapshot at out.seq** (encoded once,
//! when first needed). Either way every subscriber of the tick ends at
//! `out.seq`, which is the next tick's `base`: after one tick all of them
//! take the small shared update.
//!
//! Bounded: at most [`MAX_INTERVALS`] intervals per channel are kept (one
//! book copy each); a new interval evicts the least recently used, whose
//! subscribers then start again from a snapshot at their next tick.

use std::sync::Arc;

use super::book::OrderBook;
use super::encoded::Encoded;

/// Intervals whose folds one book channel keeps.
pub const MAX_INTERVALS: usize = 8;

/// The folds of one book channel, one entry per interval (under the
/// channel's lock).
#[derive(Debug, Default)]
pub(crate) struct BookFolds {
    entries: Vec<Entry>,
}

/// The folds of one interval.
#[derive(Debug)]
pub(crate) struct Entry {
    pub interval_ms: u32,
    /// The grid tick `out` was made for.
    pub tick: i64,
    /// When the entry was last used (for eviction).
    pub used_ns: i64,
    /// The state every subscriber of the previous tick was brought to.
    pub base: Option<(u64, OrderBook)>,
    /// The state of this tick.
    pub out: Option<Out>,
}

/// The state a tick delivers and its two encodings.
#[derive(Debug)]
pub(crate) struct Out {
    pub seq: u64,
    pub book: OrderBook,
    pub source_time_ns: i64,
    /// The update from `base` (none for the first tick).
    pub update: Option<Arc<Encoded>>,
    /// The snapshot at `seq`, made when a subscriber off `base` needs it.
    pub snapshot: Option<Arc<Encoded>>,
}

impl BookFolds {
    /// The entry of `interval_ms`, made (evicting the least recently used
    /// past [`MAX_INTERVALS`]) when missing.
    pub(crate) fn entry(&mut self, interval_ms: u32, now_ns: i64) -> &mut Entry {
        let at = match self
            .entries
            .iter()
            .position(|e| e.interval_ms == interval_ms)
        {
            Some(i) => i,
            None => {
                let fresh = Entry {
                    interval_ms,
                    tick: i64::MIN,
                    used_ns: now_ns,
                    base: None,
                    out: None,
                };
                if self.entries.len() < MAX_INTERVALS {
                    self.entries.push(fresh);
                    self.entries.len() - 1
                } else {
                    let (lru, _) = self
                        .entries
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.used_ns)
                        .expect("MAX_INTERVALS > 0");
                    self.entries[lru] = fresh;
                    lru
                }
            }
        };
        let entry = &mut self.entries[at];
        entry.used_ns = now_ns;
        entry
    }

    /// Intervals kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Entry {
    /// Moves to `tick` when it is newer than the entry's: the previous
    /// tick's state becomes the base. `true` when `out` must be made anew.
    pub(crate) fn advance(&mut self, tick: i64) -> bool {
        if tick <= self.tick && self.out.is_some() {
            return false;
        }
        if let Some(out) = self.out.take() {
            self.base = Some((out.seq, out.book));
        }
        self.tick = tick.max(self.tick);
        true
    }
}

/// What a conflated book subscriber gets at a tick.
#[derive(Debug, Clone)]
pub enum BookFold {
    /// The book's state at `seq`: an update from the subscriber's own seq
    /// (`update` true) or a snapshot.
    Deliver {
        seq: u64,
        event: Arc<Encoded>,
        update: bool,
    },
    /// The tick's state is not newer than what the subscriber has.
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded_least_recently_used_first() {
        let mut folds = BookFolds::default();
        for i in 0..MAX_INTERVALS as u32 {
            folds.entry(100 + i, i64::from(i));
        }
        folds.entry(100, 1_000); // used again: kept
        folds.entry(999, 1_001); // evicts 101, the least recently used
        assert_eq!(folds.len(), MAX_INTERVALS);
        assert!(folds.entries.iter().any(|e| e.interval_ms == 100));
        assert!(!folds.entries.iter().any(|e| e.interval_ms == 101));
    }

    #[test]
    fn a_newer_tick_makes_the_last_state_the_base() {
        let mut folds = BookFolds::default();
        let e = folds.entry(100, 0);
        assert!(e.advance(5), "the first tick");
        e.out = Some(Out {
            seq: 7,
            book: OrderBook::new(1, 1),
            source_time_ns: 0,
            update: None,
            snapshot: None,
        });
        assert!(!e.advance(5), "same tick: the same state");
        assert!(!e.advance(4), "a late subscriber: the current state");
        assert!(e.advance(6));
        assert_eq!(e.base.as_ref().map(|b| b.0), Some(7));
        assert!(e.out.is_none());
    }
}
