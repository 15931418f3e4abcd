//! The venue's side of a book test: a reference book the mock "is", moved
//! by seeded random level changes, and the client's copy built from
//! tickwire's `book_snapshot` / `book_update` events, so that a test can
//! check that the subscriber's book equals the venue's top N.

use std::collections::BTreeMap;

use tickwire::feed::book::OrderBook;
use tickwire::protocol::pb::{Event, event::Payload};

/// Bid or ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bid,
    Ask,
}

/// Both sides of a book as (price, size), best first.
pub type Sides = (Vec<(f64, f64)>, Vec<(f64, f64)>);

/// One level change: side, price, new size ("0" removes), as strings the
/// venue would send.
pub type Change = (Side, String, String);

/// The venue's book, prices in cents (bids 90.00-99.99, asks 100.00-109.99,
/// so it never crosses).
#[derive(Debug, Default)]
pub struct RefBook {
    bids: BTreeMap<u32, String>,
    asks: BTreeMap<u32, String>,
    rng: u64,
}

fn price(cents: u32) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl RefBook {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: seed | 1,
            ..Default::default()
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64: deterministic, no dependency
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Fills `levels` levels per side; returns them as changes.
    pub fn fill(&mut self, levels: u32) -> Vec<Change> {
        let mut out = Vec::new();
        for i in 0..levels {
            out.push(self.set(Side::Bid, 9999 - i * 3, &format!("{}.5", i + 1)));
            out.push(self.set(Side::Ask, 10000 + i * 3, &format!("{}.25", i + 2)));
        }
        out
    }

    fn set(&mut self, side: Side, cents: u32, size: &str) -> Change {
        let map = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if size == "0" {
            map.remove(&cents);
        } else {
            map.insert(cents, size.to_string());
        }
        (side, price(cents), size.to_string())
    }

    /// `n` random changes near the top (a quarter of them removals).
    pub fn random_changes(&mut self, n: usize) -> Vec<Change> {
        (0..n)
            .map(|_| {
                let r = self.next();
                let side = if r & 1 == 0 { Side::Bid } else { Side::Ask };
                let offset = ((r >> 8) % 90) as u32;
                let cents = match side {
                    Side::Bid => 9999 - offset,
                    Side::Ask => 10000 + offset,
                };
                let size = if (r >> 20).is_multiple_of(4) {
                    "0".to_string()
                } else {
                    format!("{}.{}", (r >> 24) % 50 + 1, (r >> 32) % 10)
                };
                self.set(side, cents, &size)
            })
            .collect()
    }

    /// The best `n` levels per side as (price, size), best first.
    pub fn top(&self, n: usize) -> Sides {
        let lv = |(c, s): (&u32, &String)| (*c as f64 / 100.0, s.parse::<f64>().unwrap());
        (
            self.bids.iter().rev().take(n).map(lv).collect(),
            self.asks.iter().take(n).map(lv).collect(),
        )
    }
}

/// A subscriber's copy of a book channel.
#[derive(Default)]
pub struct ClientBook {
    pub book: Option<OrderBook>,
}

impl ClientBook {
    pub fn apply(&mut self, e: &Event) {
        match &e.payload {
            Some(Payload::BookSnapshot(s)) => self.book = Some(OrderBook::from_snapshot(s)),
            Some(Payload::BookUpdate(u)) => self.book.as_mut().expect("snapshot first").apply(u),
            other => panic!("not a book event: {other:?}"),
        }
    }

    /// Both sides as (price, size), best first.
    pub fn sides(&self) -> Sides {
        let b = self.book.as_ref().expect("a book");
        (
            b.bids().map(|l| (l.price, l.quantity)).collect(),
            b.asks().map(|l| (l.price, l.quantity)).collect(),
        )
    }
}
