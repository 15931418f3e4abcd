//! An exchange's full order book as the exchange sends it, kept to the
//! exchange's own rules, and the top-of-book view tickwire publishes.
//!
//! Prices and sizes arrive as decimal strings. They are keyed exactly (a
//! scaled integer, no float rounding) and kept as received, because OKX's
//! checksum is computed over the original strings. tickwire's channel
//! carries the top `depth` levels: after each exchange update the connector
//! publishes only the levels of that view that changed, so the hub's book
//! (and its docs/protocol.md checksum) always equals the exchange book's top.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use thiserror::Error;

use crate::protocol::pb::{BookSnapshot, BookUpdate, Level};

/// Fractional digits of the exact price key.
const KEY_DECIMALS: usize = 12;

/// A level the exchange sent that cannot be read.
#[derive(Debug, Error, PartialEq)]
#[error("not a decimal number: {0:?}")]
pub struct BadNumber(pub String);

/// Exact scaled-integer key of a decimal string (`"8476.98"`).
fn key(s: &str) -> Result<i128, BadNumber> {
    let bad = || BadNumber(s.to_string());
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > KEY_DECIMALS
        || int.len() > 20
    {
        return Err(bad());
    }
    let mut v: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    for i in 0..KEY_DECIMALS {
        let d = frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as i128);
        v = v * 10 + d;
    }
    Ok(v)
}

fn decimals(s: &str) -> u32 {
    s.split_once('.').map_or(0, |(_, f)| f.len() as u32)
}

#[derive(Debug, Clone)]
struct Entry {
    price: f64,
    quantity: f64,
    px: Box<str>,
    sz: Box<str>,
}

/// Which side a level is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bid,
    Ask,
}

/// The exchange's book, full depth.
#[derive(Debug, Clone, Default)]
pub struct LocalBook {
    bids: BTreeMap<Reverse<i128>, Entry>,
    asks: BTreeMap<i128, Entry>,
    price_decimals: u32,
    size_decimals: u32,
}

impl LocalBook {
    /// A book from snapshot levels (`[price, size]` strings).
    pub fn from_levels<L: AsRef<[S]>, S: AsRef<str>>(
        bids: &[L],
        asks: &[L],
    ) -> Result<Self, BadNumber> {
        let mut book = Self::default();
        for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
            for level in levels {
                let (px, sz) = pair(level.as_ref())?;
                book.price_decimals = book.price_decimals.max(decimals(px));
                book.size_decimals = book.size_decimals.max(decimals(sz));
                book.set(side, px, sz)?;
            }
        }
        Ok(book)
    }

    /// Price and size decimals from the venue's tick and lot sizes, instead
    /// of those read from the levels' strings.
    pub fn set_decimals(&mut self, price: u32, size: u32) {
        self.price_decimals = price;
        self.size_decimals = size;
    }

    /// Sets one level; size 0 removes it.
    pub fn set(&mut self, side: Side, px: &str, sz: &str) -> Result<(), BadNumber> {
        let k = key(px)?;
        let quantity: f64 = sz.parse().map_err(|_| BadNumber(sz.to_string()))?;
        key(sz)?;
        let price: f64 = px.parse().map_err(|_| BadNumber(px.to_string()))?;
        if quantity == 0.0 {
            match side {
                Side::Bid => self.bids.remove(&Reverse(k)),
                Side::Ask => self.asks.remove(&k),
            };
            return Ok(());
        }
        let entry = Entry {
            price,
            quantity,
            px: px.into(),
            sz: sz.into(),
        };
        match side {
            Side::Bid => self.bids.insert(Reverse(k), entry),
            Side::Ask => self.asks.insert(k, entry),
        };
        Ok(())
    }

    /// Applies `[price, size, ...]` levels of one side.
    pub fn apply<S: AsRef<str>>(
        &mut self,
        side: Side,
        levels: &[impl AsRef<[S]>],
    ) -> Result<(), BadNumber> {
        for level in levels {
            let (px, sz) = pair(level.as_ref())?;
            self.set(side, px, sz)?;
        }
        Ok(())
    }

    fn side(&self, side: Side) -> Box<dyn Iterator<Item = &Entry> + '_> {
        match side {
            Side::Bid => Box::new(self.bids.values()),
            Side::Ask => Box::new(self.asks.values()),
        }
    }

    /// Levels on a side.
    pub fn depth(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    /// The best `n` levels of a side, best first.
    pub fn top(&self, side: Side, n: usize) -> Vec<Level> {
        self.side(side)
            .take(n)
            .map(|e| Level {
                price: e.price,
                quantity: e.quantity,
            })
            .collect()
    }

    /// The top `depth` levels as a tickwire snapshot (checksum is the hub's).
    pub fn snapshot(&self, depth: usize) -> BookSnapshot {
        BookSnapshot {
            bids: self.top(Side::Bid, depth),
            asks: self.top(Side::Ask, depth),
            checksum: 0,
            price_decimals: self.price_decimals,
            size_decimals: self.size_decimals,
        }
    }

    /// Drops the levels beyond the best `depth` of each side (Kraken: the
    /// venue sends no removal for levels that fall out of the subscribed
    /// depth).
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_last();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    /// The best `n` levels of a side as the venue wrote them (price, size).
    pub fn top_text(&self, side: Side, n: usize) -> Vec<(&str, &str)> {
        self.side(side).take(n).map(|e| (&*e.px, &*e.sz)).collect()
    }

    /// OKX's checksum: the best 25 bids and asks interleaved as
    /// `bidPx:bidSz:askPx:askSz:...` from the strings as received (the
    /// longer side's remaining levels follow alone), CRC32 as a signed int.
    pub fn okx_checksum(&self) -> i32 {
        let mut text = String::with_capacity(25 * 40);
        let mut bids = self.bids.values().take(25);
        let mut asks = self.asks.values().take(25);
        loop {
            let (b, a) = (bids.next(), asks.next());
            if b.is_none() && a.is_none() {
                break;
            }
            for e in [b, a].into_iter().flatten() {
                if !text.is_empty() {
                    text.push(':');
                }
                text.push_str(&e.px);
                text.push(':');
                text.push_str(&e.sz);
            }
        }
        crc32fast::hash(text.as_bytes()) as i32
    }
}

fn pair<S: AsRef<str>>(level: &[S]) -> Result<(&str, &str), BadNumber> {
    match level {
        [px, sz, ..] => Ok((px.as_ref(), sz.as_ref())),
        _ => Err(BadNumber(format!(
            "a level needs price and size, got {} fields",
            level.len()
        ))),
    }
}

/// The levels of `new` that differ from `old` (same side, best first), as
/// a `book_update` side: changed or new levels with their size, vanished
/// ones with size 0.
fn side_diff(old: &[Level], new: &[Level]) -> Vec<Level> {
    let mut out = Vec::new();
    for o in old {
        if !new.iter().any(|n| n.price == o.price) {
            out.push(Level {
                price: o.price,
                quantity: 0.0,
            });
        }
    }
    for n in new {
        if !old
            .iter()
            .any(|o| o.price == n.price && o.quantity == n.quantity)
        {
            out.push(*n);
        }
    }
    out
}

/// The published top-of-book view of an exchange book.
#[derive(Debug, Clone, Default)]
pub struct TopView {
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl TopView {
    /// The view a snapshot shows.
    pub fn of(snapshot: &BookSnapshot) -> Self {
        Self {
            bids: snapshot.bids.clone(),
            asks: snapshot.asks.clone(),
        }
    }

    /// Moves the view to `book`'s top `depth` and returns the update that
    /// does the same to a subscriber's book, or `None` if the top is unchanged.
    pub fn advance(&mut self, book: &LocalBook, depth: usize) -> Option<BookUpdate> {
        let bids = book.top(Side::Bid, depth);
        let asks = book.top(Side::Ask, depth);
        let update = BookUpdate {
            bids: side_diff(&self.bids, &bids),
            asks: side_diff(&self.asks, &asks),
            checksum: 0,
        };
        self.bids = bids;
        self.asks = asks;
        (!update.bids.is_empty() || !update.asks.is_empty()).then_some(update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::book::OrderBook;

    fn lv(v: &[[&str; 2]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn keys_are_exact_and_bad_numbers_are_refused() {
        assert_eq!(key("8476.98").unwrap(), key("8476.980").unwrap());
        assert!(key("8476.98").unwrap() < key("8476.99").unwrap());
        assert_eq!(key("0.00000001").unwrap(), 10_000);
        for bad in ["", "-1", "1e5", "abc", "1.2.3", "NaN"] {
            assert!(key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn okx_checksum_matches_the_documented_example() {
        // OKX API docs, "Checksum" (order book channel): bids 3366.1:7 and
        // 3366:6, asks 3366.8:9 and 3368:8 give the string
        // "3366.1:7:3366.8:9:3366:6:3368:8"; its CRC32 as a signed int,
        // computed independently with Python's zlib.crc32, is -1881014294.
        let book = LocalBook::from_levels(
            &lv(&[["3366.1", "7"], ["3366", "6"]]),
            &lv(&[["3366.8", "9"], ["3368", "8"]]),
        )
        .unwrap();
        assert_eq!(book.okx_checksum(), -1881014294);
        // the longer side's levels follow alone
        let book = LocalBook::from_levels(
            &lv(&[["3366.1", "7"]]),
            &lv(&[["3366.8", "9"], ["3368", "8"], ["3372", "8"]]),
        )
        .unwrap();
        assert_eq!(
            book.okx_checksum(),
            crc32fast::hash(b"3366.1:7:3366.8:9:3368:8:3372:8") as i32
        );
    }

    #[test]
    fn top_view_updates_keep_the_subscribers_book_equal_to_the_exchange_top() {
        let mut book = LocalBook::from_levels(
            &lv(&[["100.0", "1"], ["99.5", "2"], ["99.0", "3"], ["98.5", "4"]]),
            &lv(&[["100.5", "1"], ["101.0", "2"], ["101.5", "3"]]),
        )
        .unwrap();
        let depth = 2;
        let snap = book.snapshot(depth);
        let mut view = TopView::of(&snap);
        let mut theirs = OrderBook::from_snapshot(&snap);
        // remove the best bid: 98.5 is outside the view, 99.0 enters it
        book.set(Side::Bid, "100.0", "0").unwrap();
        book.set(Side::Ask, "101.0", "5").unwrap();
        book.set(Side::Ask, "105.0", "1").unwrap(); // outside the view: no update
        let up = view.advance(&book, depth).unwrap();
        theirs.apply(&up);
        assert_eq!(
            OrderBook::from_snapshot(&book.snapshot(depth)).checksum(),
            theirs.checksum()
        );
        assert_eq!(theirs.bids().count(), 2);
        book.set(Side::Ask, "106.0", "1").unwrap();
        assert!(view.advance(&book, depth).is_none());
    }
}
