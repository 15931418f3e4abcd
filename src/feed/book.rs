//! An L2 order book and its checksum (docs/protocol.md section 8, as Kraken's).
//!
//! Levels are keyed by price in integer ticks (`price * 10^price_decimals`,
//! rounded) so that a float price always finds its level again. The hub keeps
//! one book per `book.*` channel: it is what a subscriber's `book_snapshot`
//! shows and what every `book_update` checksum is computed over, so a client
//! that applies the updates to the snapshot can prove it holds the same book.

use std::collections::BTreeMap;

use crate::protocol::pb::{BookSnapshot, BookUpdate, Level};
pub use tickwire_proto::checksum::{CHECKSUM_DEPTH, checksum};
use tickwire_proto::checksum::{LEVEL_TEXT_MAX as LEVEL_TEXT, write_level};

/// An L2 book: price level -> quantity per side.
///
/// Each level keeps its checksum text (price digits then quantity digits),
/// rendered once when the level is set: an update changes a few levels but
/// the checksum reads twenty, so rendering at `set` makes the checksum a
/// copy and one CRC pass.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBook {
    bids: BTreeMap<i64, BookLevel>,
    asks: BTreeMap<i64, BookLevel>,
    price_decimals: u32,
    size_decimals: u32,
    /// `10^price_decimals`, the tick scale of the level keys.
    price_scale: f64,
    /// `10^size_decimals`.
    size_scale: f64,
}

/// A level and its checksum text.
#[derive(Debug, Clone, PartialEq)]
struct BookLevel {
    level: Level,
    text: [u8; LEVEL_TEXT],
    text_len: u8,
}

impl BookLevel {
    fn new(level: Level, price_scale: f64, size_scale: f64) -> Self {
        let mut text = [0u8; LEVEL_TEXT];
        let len = write_level(&mut text, &level, price_scale, size_scale);
        Self {
            level,
            text,
            text_len: len as u8,
        }
    }

    fn text(&self) -> &[u8] {
        &self.text[..usize::from(self.text_len)]
    }
}

/// Which side of the book a level is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookSide {
    Bid,
    Ask,
}

impl OrderBook {
    /// An empty book whose prices and sizes have the given decimals.
    pub fn new(price_decimals: u32, size_decimals: u32) -> Self {
        Self {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            price_decimals,
            size_decimals,
            price_scale: 10f64.powi(price_decimals as i32),
            size_scale: 10f64.powi(size_decimals as i32),
        }
    }

    /// The book a snapshot describes.
    pub fn from_snapshot(snapshot: &BookSnapshot) -> Self {
        let mut book = Self::new(snapshot.price_decimals, snapshot.size_decimals);
        for level in &snapshot.bids {
            book.set(BookSide::Bid, level.price, level.quantity);
        }
        for level in &snapshot.asks {
            book.set(BookSide::Ask, level.price, level.quantity);
        }
        book
    }

    /// Decimals of prices, as in `BookSnapshot.price_decimals`.
    pub fn price_decimals(&self) -> u32 {
        self.price_decimals
    }

    /// Decimals of sizes, as in `BookSnapshot.size_decimals`.
    pub fn size_decimals(&self) -> u32 {
        self.size_decimals
    }

    fn key(&self, price: f64) -> i64 {
        (price * self.price_scale).round() as i64
    }

    /// Sets a level; quantity 0 (or less) removes it.
    pub fn set(&mut self, side: BookSide, price: f64, quantity: f64) {
        let key = self.key(price);
        let levels = match side {
            BookSide::Bid => &mut self.bids,
            BookSide::Ask => &mut self.asks,
        };
        if quantity > 0.0 {
            let level =
                BookLevel::new(Level { price, quantity }, self.price_scale, self.size_scale);
            levels.insert(key, level);
        } else {
            levels.remove(&key);
        }
    }

    /// Applies the changed levels of an update.
    pub fn apply(&mut self, update: &BookUpdate) {
        for level in &update.bids {
            self.set(BookSide::Bid, level.price, level.quantity);
        }
        for level in &update.asks {
            self.set(BookSide::Ask, level.price, level.quantity);
        }
    }

    /// Bids, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = &Level> {
        self.bids.values().rev().map(|l| &l.level)
    }

    /// Asks, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = &Level> {
        self.asks.values().map(|l| &l.level)
    }

    /// Number of levels on a side.
    pub fn depth(&self, side: BookSide) -> usize {
        match side {
            BookSide::Bid => self.bids.len(),
            BookSide::Ask => self.asks.len(),
        }
    }

    /// Whether a price level exists on a side.
    pub fn contains(&self, side: BookSide, price: f64) -> bool {
        let key = self.key(price);
        match side {
            BookSide::Bid => self.bids.contains_key(&key),
            BookSide::Ask => self.asks.contains_key(&key),
        }
    }

    /// The checksum of docs/protocol.md section 8 over the current book.
    ///
    /// hot path (every book update): copies the levels' cached texts into
    /// one stack buffer and hashes it once.
    pub fn checksum(&self) -> u32 {
        let mut text = [0u8; 2 * CHECKSUM_DEPTH * LEVEL_TEXT];
        let mut len = 0;
        let top = self.asks.values().take(CHECKSUM_DEPTH);
        for level in top.chain(self.bids.values().rev().take(CHECKSUM_DEPTH)) {
            let t = level.text();
            text[len..len + t.len()].copy_from_slice(t);
            len += t.len();
        }
        crc32fast::hash(&text[..len])
    }

    /// The update that turns this book into `newer` (same decimals): every
    /// level of `newer` that is new or changed, and quantity 0 for every
    /// level it no longer has; its checksum is `newer`'s. What a conflated
    /// subscriber gets for several updates folded into one (`feed::fold`).
    pub fn diff_to(&self, newer: &OrderBook) -> BookUpdate {
        fn side(old: &BTreeMap<i64, BookLevel>, new: &BTreeMap<i64, BookLevel>) -> Vec<Level> {
            let gone = old
                .iter()
                .filter(|(k, _)| !new.contains_key(k))
                .map(|(_, l)| Level {
                    price: l.level.price,
                    quantity: 0.0,
                });
            let set = new
                .iter()
                .filter(|(k, l)| {
                    old.get(k)
                        .is_none_or(|o| o.level.quantity != l.level.quantity)
                })
                .map(|(_, l)| l.level);
            gone.chain(set).collect()
        }
        BookUpdate {
            bids: side(&self.bids, &newer.bids),
            asks: side(&self.asks, &newer.asks),
            checksum: newer.checksum(),
        }
    }

    /// The whole book as a snapshot payload (with its checksum).
    pub fn to_snapshot(&self) -> BookSnapshot {
        BookSnapshot {
            bids: self.bids().cloned().collect(),
            asks: self.asks().cloned().collect(),
            checksum: self.checksum(),
            price_decimals: self.price_decimals,
            size_decimals: self.size_decimals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's wording done literally (format, drop the point, strip
    /// leading zeros): the oracle the fast path is checked against.
    fn push_text_number(out: &mut String, value: f64, decimals: u32) {
        let text = format!("{:.*}", decimals as usize, value).replace('.', "");
        out.push_str(text.trim_start_matches('0'));
    }

    fn checksum_by_text(asks: &[Level], bids: &[Level], pd: u32, sd: u32) -> u32 {
        let mut text = String::new();
        for l in asks.iter().chain(bids) {
            push_text_number(&mut text, l.price, pd);
            push_text_number(&mut text, l.quantity, sd);
        }
        crc32fast::hash(text.as_bytes())
    }

    #[test]
    fn fast_checksum_equals_the_literal_text_method() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for _ in 0..2_000 {
            let pd = rng.random_range(0..9);
            let sd = rng.random_range(0..9);
            let round = |v: f64, d: u32| (v * 10f64.powi(d as i32)).round() / 10f64.powi(d as i32);
            let mut side = || -> Vec<Level> {
                (0..rng.random_range(0..12))
                    .map(|_| Level {
                        price: round(rng.random_range(0.0001..100_000.0), pd),
                        quantity: round(rng.random_range(0.0..50.0), sd),
                    })
                    .collect()
            };
            let (asks, bids) = (side(), side());
            assert_eq!(
                checksum(asks.iter(), bids.iter(), pd, sd),
                checksum_by_text(&asks, &bids, pd, sd),
                "pd {pd} sd {sd} {asks:?} {bids:?}"
            );
        }
    }

    #[test]
    fn cached_level_texts_give_the_reference_checksum_as_the_book_changes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let (pd, sd) = (2, 4);
        let mut book = OrderBook::new(pd, sd);
        for _ in 0..3_000 {
            let side = if rng.random::<bool>() {
                BookSide::Bid
            } else {
                BookSide::Ask
            };
            let price = (rng.random_range(9_000..11_000) as f64) / 100.0;
            let quantity = if rng.random_range(0..4) == 0 {
                0.0
            } else {
                (rng.random_range(1..500_000) as f64) / 10_000.0
            };
            book.set(side, price, quantity);
            let reference = checksum(
                book.asks().take(CHECKSUM_DEPTH),
                book.bids().take(CHECKSUM_DEPTH),
                pd,
                sd,
            );
            assert_eq!(book.checksum(), reference);
        }
        assert!(book.depth(BookSide::Bid) > CHECKSUM_DEPTH);
    }

    fn lv(price: f64, quantity: f64) -> Level {
        Level { price, quantity }
    }

    #[test]
    fn checksum_text_follows_krakens_rules() {
        let mut s = String::new();
        push_text_number(&mut s, 0.05005, 5);
        assert_eq!(s, "5005");
        push_text_number(&mut s, 45283.5, 1);
        assert_eq!(s, "5005452835");
        let mut s = String::new();
        push_text_number(&mut s, 0.00000500, 8);
        assert_eq!(s, "500");
    }

    /// Kraken's published example (WebSocket v1 book checksum guide): ten
    /// asks from 0.05005 up, 0.00005 apart, and ten bids from 0.05000 down
    /// (0.04985 absent), each of 0.00000500, with 5 price and 8 size
    /// decimals, give 974947235.
    #[test]
    fn checksum_matches_krakens_published_example() {
        let asks: Vec<_> = (0..10)
            .map(|i| lv(0.05005 + i as f64 * 0.00005, 0.000005))
            .collect();
        let bids: Vec<_> = [5000, 4995, 4990, 4980, 4975, 4970, 4965, 4960, 4955, 4950]
            .iter()
            .map(|p| lv(*p as f64 / 100_000.0, 0.000005))
            .collect();
        assert_eq!(checksum(asks.iter(), bids.iter(), 5, 8), 974_947_235);
        let mut book = OrderBook::new(5, 8);
        for l in asks.iter().chain(&bids) {
            let side = if l.price > 0.05001 {
                BookSide::Ask
            } else {
                BookSide::Bid
            };
            book.set(side, l.price, l.quantity);
        }
        book.set(BookSide::Bid, 0.04, 1.0); // beyond the top 10: not covered
        assert_eq!(book.checksum(), 974_947_235);
    }

    #[test]
    fn book_orders_sides_and_applies_updates() {
        let snap = BookSnapshot {
            bids: vec![lv(99.0, 1.0), lv(98.0, 2.0)],
            asks: vec![lv(101.0, 1.0), lv(102.0, 3.0)],
            checksum: 0,
            price_decimals: 2,
            size_decimals: 3,
        };
        let mut book = OrderBook::from_snapshot(&snap);
        assert_eq!(book.bids().next().unwrap().price, 99.0);
        assert_eq!(book.asks().next().unwrap().price, 101.0);
        book.apply(&BookUpdate {
            bids: vec![lv(99.0, 0.0), lv(99.5, 4.0)],
            asks: vec![lv(101.0, 0.5)],
            checksum: 0,
        });
        let bids: Vec<_> = book.bids().map(|l| (l.price, l.quantity)).collect();
        assert_eq!(bids, vec![(99.5, 4.0), (98.0, 2.0)]);
        assert_eq!(book.asks().next().unwrap().quantity, 0.5);
        // float noise in a price still finds its level
        book.set(BookSide::Bid, 98.000000001, 0.0);
        assert_eq!(book.depth(BookSide::Bid), 1);
        let round_trip = OrderBook::from_snapshot(&book.to_snapshot());
        assert_eq!(round_trip.checksum(), book.checksum());
    }

    #[test]
    fn checksum_covers_only_top_ten() {
        let mut book = OrderBook::new(1, 2);
        for i in 0..20 {
            book.set(BookSide::Bid, 100.0 - i as f64, 1.0);
            book.set(BookSide::Ask, 101.0 + i as f64, 1.0);
        }
        let before = book.checksum();
        book.set(BookSide::Bid, 80.0, 5.0); // 21st bid: outside the top 10
        assert_eq!(book.checksum(), before);
        book.set(BookSide::Bid, 99.0, 5.0);
        assert_ne!(book.checksum(), before);
    }

    /// Several updates folded into one diff: applying it to the older book
    /// gives the newer one, checksum included.
    #[test]
    fn a_diff_turns_the_older_book_into_the_newer() {
        let lv = |price, quantity| Level { price, quantity };
        let old = OrderBook::from_snapshot(&BookSnapshot {
            bids: vec![lv(99.0, 1.0), lv(98.0, 2.0), lv(97.0, 3.0)],
            asks: vec![lv(101.0, 1.0), lv(102.0, 2.0)],
            price_decimals: 1,
            size_decimals: 1,
            ..Default::default()
        });
        let mut new = old.clone();
        for u in [
            BookUpdate {
                bids: vec![lv(99.0, 0.0), lv(99.5, 4.0)],
                asks: vec![lv(101.0, 1.5)],
                ..Default::default()
            },
            BookUpdate {
                bids: vec![lv(99.5, 0.0), lv(98.0, 2.5)],
                asks: vec![lv(103.0, 1.0), lv(102.0, 0.0)],
                ..Default::default()
            },
        ] {
            new.apply(&u);
        }
        let diff = old.diff_to(&new);
        assert_eq!(diff.checksum, new.checksum());
        let mut applied = old.clone();
        applied.apply(&diff);
        assert_eq!(applied, new);
        // 99.5 came and went: not in the diff; 97 unchanged: not either
        assert!(diff.bids.iter().all(|l| l.price != 99.5 && l.price != 97.0));
        assert!(old.diff_to(&old).bids.is_empty() && old.diff_to(&old).asks.is_empty());
    }
}
