//! An independent client-side L2 book for the tests: sorted levels and
//! the checksum of docs/protocol.md section 8, written from the spec, not
//! from the server's code.

use std::collections::BTreeMap;

use tickwire::protocol::pb::{BookSnapshot, Level};

/// Independent client-side book: sorted levels and the checksum of
/// docs/protocol.md section 8 written from the spec, not from the server's code.
#[derive(Default)]
pub struct ClientBook {
    pub bids: BTreeMap<i64, (f64, f64)>,
    pub asks: BTreeMap<i64, (f64, f64)>,
    pub price_decimals: u32,
    pub size_decimals: u32,
}

impl ClientBook {
    fn key(&self, p: f64) -> i64 {
        (p * 10f64.powi(self.price_decimals as i32)).round() as i64
    }
    pub fn apply(&mut self, bids: &[Level], asks: &[Level]) {
        for (levels, is_bid) in [(bids, true), (asks, false)] {
            for l in levels {
                let k = self.key(l.price);
                let side = if is_bid {
                    &mut self.bids
                } else {
                    &mut self.asks
                };
                if l.quantity == 0.0 {
                    side.remove(&k);
                } else {
                    side.insert(k, (l.price, l.quantity));
                }
            }
        }
    }
    pub fn checksum(&self) -> u32 {
        let fmt = |v: f64, d: u32| {
            let s = format!("{:.*}", d as usize, v).replace('.', "");
            s.trim_start_matches('0').to_string()
        };
        let mut text = String::new();
        for (p, q) in self
            .asks
            .values()
            .take(10)
            .chain(self.bids.values().rev().take(10))
        {
            text += &fmt(*p, self.price_decimals);
            text += &fmt(*q, self.size_decimals);
        }
        crc32fast::hash(text.as_bytes())
    }
}

impl ClientBook {
    /// The book a `book_snapshot` describes (replacing any other).
    pub fn from_snapshot(s: &BookSnapshot) -> Self {
        let mut b = Self {
            price_decimals: s.price_decimals,
            size_decimals: s.size_decimals,
            ..Default::default()
        };
        b.apply(&s.bids, &s.asks);
        b
    }
}
