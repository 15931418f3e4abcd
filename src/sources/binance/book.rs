//! Binance's local-book procedure (Spot API docs, "How to manage a local
//! order book correctly", as corrected on 2025-11-12), without I/O.

use super::super::local_book::{LocalBook, Side, TopView};
use super::msg::{DepthMsg, DepthSnapshot};
use super::{Activity, Market};
use crate::feed::Hub;
use crate::protocol::pb::event::Payload;

/// Where one instrument's book is in the procedure.
#[derive(Debug)]
pub(super) enum BookSync {
    /// Waiting for a REST snapshot; diffs are kept meanwhile. `fetching`
    /// once the snapshot was asked for (after the first diff came).
    Buffering {
        diffs: Vec<DepthMsg>,
        fetching: bool,
    },
    /// In step with the stream; `last_u` is the last applied diff's `u`.
    Live { book: LocalBook, last_u: u64 },
    /// The venue refused the symbol; nothing more is asked.
    Failed,
}

impl BookSync {
    pub(super) fn buffering() -> Self {
        Self::Buffering {
            diffs: Vec::new(),
            fetching: false,
        }
    }
}

/// The 2025-11-12 update rule: `Ok(false)` for a diff already in the book
/// (`u <= local`), `Err` for a gap (`U > local + 1`), else applied.
pub(super) fn apply_diff(
    book: &mut LocalBook,
    last_u: &mut u64,
    d: &DepthMsg,
) -> Result<bool, String> {
    if d.last <= *last_u {
        return Ok(false);
    }
    if d.first > *last_u + 1 {
        return Err(format!("diff U={} after u={}: gap", d.first, last_u));
    }
    book.apply(Side::Bid, &d.b)
        .and_then(|()| book.apply(Side::Ask, &d.a))
        .map_err(|e| format!("depth diff: {e}"))?;
    *last_u = d.last;
    Ok(true)
}

/// Why a snapshot did not bring a book in step.
pub(super) enum Retry {
    /// The snapshot is older than the buffered stream: fetch another.
    Now,
    /// The buffered diffs do not follow the snapshot.
    Resync(String),
    /// The snapshot could not be read.
    Later(String),
}

/// Steps 4-7 of Binance's procedure: the snapshot plus the buffered diffs
/// that follow it become the live book, published as a `book_snapshot`.
pub(super) fn sync_from_snapshot(
    market: &mut Market,
    snap: DepthSnapshot,
    depth: usize,
    hub: &Hub,
) -> Result<(), Retry> {
    let BookSync::Buffering { diffs, .. } = &mut market.sync else {
        return Ok(()); // a late answer to a superseded request
    };
    let lid = snap.last_update_id;
    // older than the stream by a gap (the docs' step 4; a snapshot right
    // before the first diff, `lastUpdateId + 1 == U`, is continuous under
    // the update rule and is kept)
    if diffs.first().is_some_and(|d| lid + 1 < d.first) {
        return Err(Retry::Now);
    }
    let mut book = LocalBook::from_levels(&snap.bids, &snap.asks)
        .map_err(|e| Retry::Later(format!("depth snapshot: {e}")))?;
    if let Some((p, s)) = market.decimals {
        book.set_decimals(p, s);
    }
    let mut last_u = lid;
    for d in diffs.drain(..) {
        if let Err(why) = apply_diff(&mut book, &mut last_u, &d) {
            return Err(Retry::Resync(format!(
                "binance {}: buffered {why}, refetching",
                market.inst.joined()
            )));
        }
    }
    let snapshot = book.snapshot(depth);
    market.view = TopView::of(&snapshot);
    hub.publish_or_log(
        &market.channels.book,
        crate::protocol::now_ns(),
        Payload::BookSnapshot(snapshot),
    );
    market.sync = BookSync::Live { book, last_u };
    market.activity = Activity::new();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(first: u64, last: u64) -> DepthMsg {
        DepthMsg {
            time: 0,
            s: "BTCUSDT".into(),
            first,
            last,
            b: vec![vec!["1.0".into(), "1".into()]],
            a: vec![],
        }
    }

    #[test]
    fn the_2025_11_12_rule_applies_a_late_straddle_and_only_u_beyond_local_plus_one_is_a_gap() {
        let mut book = LocalBook::default();
        let mut local = 100;
        assert_eq!(apply_diff(&mut book, &mut local, &diff(90, 100)), Ok(false));
        // straddles local + 1 = 101, whenever it arrives
        assert_eq!(apply_diff(&mut book, &mut local, &diff(96, 103)), Ok(true));
        assert_eq!(local, 103);
        assert_eq!(apply_diff(&mut book, &mut local, &diff(104, 104)), Ok(true));
        assert!(apply_diff(&mut book, &mut local, &diff(106, 107)).is_err());
    }
}
