//! A local L2 order book verified against the server's checksum
//! (docs/protocol.md section 8) on every event.

use std::collections::BTreeMap;

use tickwire_proto::checksum::{CHECKSUM_DEPTH, checksum};
use tickwire_proto::pb::{self, Level, event::Payload};

/// An L2 book keyed by price ticks; `depth` levels a side are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderBook {
    bids: BTreeMap<i64, Level>,
    asks: BTreeMap<i64, Level>,
    price_decimals: u32,
    size_decimals: u32,
    depth: usize,
    seq: u64,
    valid: bool,
}

impl OrderBook {
    fn key(&self, price: f64) -> i64 {
        (price * 10f64.powi(self.price_decimals as i32)).round() as i64
    }

    /// Applies a `book_snapshot` or `book_update` event and verifies its
    /// checksum: `Ok(true)` verified, `Ok(false)` not a book event or no
    /// snapshot yet, `Err` the local book differs from the server's (it is
    /// then invalid until the next snapshot).
    pub fn apply(&mut self, event: &pb::Event) -> Result<bool, &'static str> {
        let expected = match &event.payload {
            Some(Payload::BookSnapshot(s)) => {
                self.price_decimals = s.price_decimals;
                self.size_decimals = s.size_decimals;
                self.bids.clear();
                self.asks.clear();
                self.depth = s.bids.len().max(s.asks.len());
                self.set_levels(&s.bids, &s.asks);
                self.valid = true;
                s.checksum
            }
            Some(Payload::BookUpdate(u)) if self.valid => {
                self.set_levels(&u.bids, &u.asks);
                self.truncate();
                u.checksum
            }
            _ => return Ok(false),
        };
        self.seq = event.seq;
        if self.checksum() != expected {
            self.valid = false;
            return Err("checksum mismatch");
        }
        Ok(true)
    }

    fn set_levels(&mut self, bids: &[Level], asks: &[Level]) {
        for (side, levels) in [(true, bids), (false, asks)] {
            for level in levels {
                let key = self.key(level.price);
                let map = if side { &mut self.bids } else { &mut self.asks };
                if level.quantity > 0.0 {
                    map.insert(key, *level);
                } else {
                    map.remove(&key);
                }
            }
        }
    }

    fn truncate(&mut self) {
        if self.depth == 0 {
            return;
        }
        while self.bids.len() > self.depth {
            self.bids.pop_first(); // the lowest bid is the worst
        }
        while self.asks.len() > self.depth {
            self.asks.pop_last(); // the highest ask is the worst
        }
    }

    /// Marks the book stale (lagged, resync): updates are ignored until a
    /// snapshot arrives.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Whether the book equals the server's as of [`OrderBook::seq`].
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Decimals of prices (from the snapshot).
    pub fn price_decimals(&self) -> u32 {
        self.price_decimals
    }

    /// Decimals of sizes (from the snapshot).
    pub fn size_decimals(&self) -> u32 {
        self.size_decimals
    }

    /// The seq of the last event applied.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Bids, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = &Level> {
        self.bids.values().rev()
    }

    /// Asks, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = &Level> {
        self.asks.values()
    }

    /// Best bid and best ask.
    pub fn best(&self) -> (Option<&Level>, Option<&Level>) {
        (self.bids().next(), self.asks().next())
    }

    /// The checksum of the book as it is now.
    pub fn checksum(&self) -> u32 {
        checksum(
            self.asks().take(CHECKSUM_DEPTH),
            self.bids().take(CHECKSUM_DEPTH),
            self.price_decimals,
            self.size_decimals,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(price: f64, quantity: f64) -> Level {
        Level { price, quantity }
    }

    fn ev(seq: u64, payload: Payload) -> pb::Event {
        pb::Event {
            channel: "book.t.X".into(),
            seq,
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn updates_are_verified_and_a_wrong_checksum_invalidates() {
        let (bids, asks) = (
            vec![lv(100.25, 0.5), lv(100.0, 2.0)],
            vec![lv(100.5, 1.25), lv(101.0, 3.0)],
        );
        let snap = pb::BookSnapshot {
            checksum: checksum(asks.iter(), bids.iter(), 2, 3),
            bids,
            asks,
            price_decimals: 2,
            size_decimals: 3,
        };
        let mut book = OrderBook::default();
        assert_eq!(book.apply(&ev(1, Payload::BookSnapshot(snap))), Ok(true));
        let (after_bids, after_asks) = ([lv(100.0, 2.0)], [lv(100.4, 1.0), lv(100.5, 1.25)]);
        let update = pb::BookUpdate {
            bids: vec![lv(100.25, 0.0)],
            asks: vec![lv(100.4, 1.0)],
            checksum: checksum(after_asks.iter(), after_bids.iter(), 2, 3),
        };
        assert_eq!(
            book.apply(&ev(2, Payload::BookUpdate(update.clone()))),
            Ok(true)
        );
        assert_eq!(book.seq(), 2);
        assert_eq!(
            book.asks().cloned().collect::<Vec<_>>(),
            after_asks,
            "depth 2 kept"
        );
        let wrong = pb::BookUpdate {
            bids: vec![lv(99.0, 1.0)],
            ..update
        };
        assert_eq!(
            book.apply(&ev(3, Payload::BookUpdate(wrong))),
            Err("checksum mismatch")
        );
        assert!(!book.is_valid());
    }
}
