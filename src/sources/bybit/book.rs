//! Bybit `orderbook.50` continuity (V5 docs, "WebSocket Stream: Orderbook",
//! "Process snapshot/delta" and the `u` field, as of 2026-05):
//!
//! - after subscribing, a `snapshot` comes first, then `delta`s;
//! - a new `snapshot` resets the local book ("if there is a problem on
//!   Bybit's end, a snapshot will be re-sent"): it overwrites, it is no gap;
//! - `u` is continuous per topic: a delta must carry the last `u` + 1,
//!   anything further is a gap, resynced by resubscribing the topic (the
//!   snapshot is in-band, so no REST call is spent);
//! - `u = 1` is the venue restarting its book: the message is snapshot
//!   data and overwrites the local book, never a gap, whatever came before;
//! - a delta or snapshot at or below the last `u` (a duplicate) is skipped.

use std::time::Instant;

use super::super::local_book::{LocalBook, Side};
use super::msg::BybitBook;

/// Where one book is.
#[derive(Debug)]
pub enum BookState {
    /// Subscribed or resubscribed: waiting for the snapshot; deltas of the
    /// old subscription are dropped meanwhile.
    Awaiting {
        since: Instant,
    },
    Live {
        book: LocalBook,
        u: u64,
    },
}

/// What a message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The first snapshot since (re)subscribing: the book went live.
    Started,
    /// A snapshot (or `u = 1` restart) replaced a live book.
    Replaced,
    Applied,
    /// Not applied: a delta while awaiting the snapshot, or a duplicate.
    Skipped,
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
        matches!(self, Self::Live { .. })
    }

    /// The live book.
    pub fn book(&self) -> Option<&LocalBook> {
        match self {
            Self::Live { book, .. } => Some(book),
            Self::Awaiting { .. } => None,
        }
    }

    /// Applies one message (`snapshot` from its `type`). `Err` names a gap.
    pub fn on_message(
        &mut self,
        snapshot: bool,
        data: &BybitBook,
        decimals: Option<(u32, u32)>,
    ) -> Result<Step, String> {
        let restart = data.u == 1;
        if snapshot || restart {
            if let Self::Live { u, .. } = self
                && !restart
                && data.u <= *u
            {
                return Ok(Step::Skipped);
            }
            let mut book = LocalBook::from_levels(&data.b, &data.a).map_err(|e| e.to_string())?;
            if let Some((p, s)) = decimals {
                book.set_decimals(p, s);
            }
            let step = if self.is_live() {
                Step::Replaced
            } else {
                Step::Started
            };
            *self = Self::Live { book, u: data.u };
            return Ok(step);
        }
        let Self::Live { book, u } = self else {
            return Ok(Step::Skipped);
        };
        if data.u <= *u {
            return Ok(Step::Skipped);
        }
        if data.u != *u + 1 {
            return Err(format!("update id u {} does not follow {}", data.u, *u));
        }
        book.apply(Side::Bid, &data.b)
            .and_then(|()| book.apply(Side::Ask, &data.a))
            .map_err(|e| e.to_string())?;
        *u = data.u;
        Ok(Step::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(u: u64, bid: (&str, &str)) -> BybitBook {
        BybitBook {
            b: vec![vec![bid.0.into(), bid.1.into()]],
            a: vec![],
            u,
        }
    }

    #[test]
    fn deltas_follow_u_and_u_1_overwrites() {
        let mut s = BookState::awaiting();
        assert_eq!(
            s.on_message(false, &msg(5, ("1", "1")), None),
            Ok(Step::Skipped)
        );
        assert_eq!(
            s.on_message(true, &msg(10, ("1", "1")), None),
            Ok(Step::Started)
        );
        assert_eq!(
            s.on_message(false, &msg(11, ("2", "1")), None),
            Ok(Step::Applied)
        );
        assert_eq!(
            s.on_message(false, &msg(11, ("2", "1")), None),
            Ok(Step::Skipped)
        );
        // a re-sent snapshot no newer than the book is a duplicate
        assert_eq!(
            s.on_message(true, &msg(11, ("2", "1")), None),
            Ok(Step::Skipped)
        );
        // the venue restarted: u = 1 overwrites
        assert_eq!(
            s.on_message(true, &msg(1, ("3", "1")), None),
            Ok(Step::Replaced)
        );
        assert_eq!(s.book().unwrap().depth(Side::Bid), 1);
        assert_eq!(
            s.on_message(false, &msg(2, ("4", "1")), None),
            Ok(Step::Applied)
        );
        // a gap
        assert!(s.on_message(false, &msg(4, ("5", "1")), None).is_err());
    }
}
