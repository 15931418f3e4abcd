//! A Coinbase connection's integrity and its books (Advanced Trade docs,
//! "WebSocket Overview: Sequence Numbers" and "WebSocket Channels: Level2
//! Channel", as of 2026-05):
//!
//! - `level2` sends a `snapshot` event per product, then `update` events
//!   whose `new_quantity` is the level's new size (0 removes it); a level
//!   has no sequence of its own;
//! - `sequence_num` counts the messages of the whole connection, every
//!   channel together. A jump means a message of *some* channel was lost,
//!   and nothing says which product it was for: every book of the
//!   connection is resubscribed for a fresh snapshot. That is why a
//!   connection carries few books (see `BOOKS_PER_CONNECTION`).

use std::time::Instant;

use super::super::local_book::{LocalBook, Side};
use super::msg::L2Update;

/// Where one book is.
#[derive(Debug)]
pub enum BookState {
    /// (Re)subscribed: updates are dropped until the snapshot.
    Awaiting {
        since: Instant,
    },
    Live(LocalBook),
}

impl BookState {
    /// Waiting for a snapshot from now (for the snapshot timeout).
    pub fn awaiting() -> Self {
        Self::Awaiting {
            since: Instant::now(),
        }
    }

    /// Whether the book is in step with the venue.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Live(_))
    }

    /// A snapshot's levels as a book.
    pub fn start(
        &mut self,
        updates: &[L2Update],
        decimals: Option<(u32, u32)>,
    ) -> Result<&LocalBook, String> {
        let (bids, asks) = levels(updates);
        let mut book = LocalBook::from_levels(&bids, &asks).map_err(|e| e.to_string())?;
        if let Some((p, s)) = decimals {
            book.set_decimals(p, s);
        }
        side_of_all(updates)?;
        *self = Self::Live(book);
        match self {
            Self::Live(book) => Ok(book),
            Self::Awaiting { .. } => unreachable!("just set live"),
        }
    }

    /// Applies updates to a live book; `None` while awaiting.
    pub fn update(&mut self, updates: &[L2Update]) -> Result<Option<&LocalBook>, String> {
        match self {
            Self::Live(book) => {
                apply(book, updates)?;
                Ok(Some(book))
            }
            Self::Awaiting { .. } => Ok(None),
        }
    }
}

fn side_of(s: &str) -> Result<Side, String> {
    match s {
        "bid" => Ok(Side::Bid),
        "offer" | "ask" => Ok(Side::Ask),
        other => Err(format!("unknown book side {other:?}")),
    }
}

fn apply(book: &mut LocalBook, updates: &[L2Update]) -> Result<(), String> {
    for u in updates {
        book.set(side_of(&u.side)?, &u.price_level, &u.new_quantity)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn side_of_all(updates: &[L2Update]) -> Result<(), String> {
    updates
        .iter()
        .try_for_each(|u| side_of(&u.side).map(|_| ()))
}

/// `[price, size]` levels of a snapshot, by side.
fn levels(updates: &[L2Update]) -> (Vec<[&str; 2]>, Vec<[&str; 2]>) {
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    for u in updates {
        let level = [u.price_level.as_str(), u.new_quantity.as_str()];
        if u.side == "bid" {
            bids.push(level);
        } else {
            asks.push(level);
        }
    }
    (bids, asks)
}

/// The connection's `sequence_num` check.
#[derive(Debug, Default)]
pub struct Sequence {
    last: Option<u64>,
}

impl Sequence {
    /// Records `seq`; `Err` when it does not follow the last one.
    pub fn next(&mut self, seq: u64) -> Result<(), String> {
        let last = self.last.replace(seq);
        match last {
            Some(last) if seq != last + 1 => {
                Err(format!("sequence_num {seq} does not follow {last}"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(side: &str, px: &str, qty: &str) -> L2Update {
        L2Update {
            side: side.into(),
            price_level: px.into(),
            new_quantity: qty.into(),
        }
    }

    #[test]
    fn books_start_from_snapshots_and_sequence_gaps_are_found() {
        let mut s = BookState::awaiting();
        assert!(s.update(&[up("bid", "1", "1")]).unwrap().is_none());
        let book = s
            .start(&[up("bid", "100.00", "1"), up("offer", "101.5", "2")], None)
            .unwrap();
        assert_eq!(book.snapshot(5).price_decimals, 2);
        let book = s.update(&[up("bid", "100.00", "0")]).unwrap().unwrap();
        assert_eq!(book.depth(Side::Bid), 0);
        assert!(s.update(&[up("middle", "1", "1")]).is_err());
        let mut q = Sequence::default();
        assert!(q.next(7).is_ok(), "a connection may start anywhere");
        assert!(q.next(8).is_ok());
        assert!(q.next(10).is_err());
        assert!(q.next(11).is_ok());
    }
}
