//! OKX `books` continuity, by `seqId` / `prevSeqId` (OKX API v5 docs,
//! "Order book channel", "Sequence ID"; checksum deprecated by the notice
//! "Order Book Channels Checksum Field Deprecation" of 2026-05-21, always 0
//! in production since 2026-06-23):
//!
//! - a snapshot has `prevSeqId = -1`;
//! - an update follows when its `prevSeqId` is the last applied `seqId`;
//! - keepalive: with no change for about 60 s OKX sends empty bids/asks
//!   with `prevSeqId == seqId`, which that rule accepts;
//! - sequence reset (maintenance): `seqId` may be smaller than `prevSeqId`;
//!   it still follows when `prevSeqId` is the last applied `seqId`;
//! - after a REST snapshot (`GET /api/v5/market/books?instId=..&source=0`,
//!   the WebSocket snapshot being delisted), buffered and later updates
//!   with `seqId <= snapshot seqId` are dropped, and the first one applied
//!   must straddle it: `prevSeqId <= snapshot seqId < seqId`.
//!
//! The same update can arrive twice while two connections overlap
//! (make-before-break rotation, see `legs.rs`): a repeat of the last
//! applied `(prevSeqId, seqId)` or an older `seqId` is skipped.
//! A non-zero checksum (older environments) is still verified; 0 or absent
//! is not.

use std::time::Instant;

use serde::Deserialize;

use super::super::local_book::{LocalBook, Side};

/// Updates kept while waiting for a snapshot; beyond this, start over.
const MAX_BUFFERED: usize = 10_000;

/// One `books` push or REST snapshot entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OkxBook {
    #[serde(default)]
    pub asks: Vec<Vec<String>>,
    #[serde(default)]
    pub bids: Vec<Vec<String>>,
    pub ts: String,
    pub checksum: Option<i64>,
    pub seq_id: Option<i64>,
    pub prev_seq_id: Option<i64>,
}

/// Where one instrument's book is.
#[derive(Debug)]
pub enum BookSync {
    /// Subscribed or resyncing: waiting for a snapshot (WebSocket or REST),
    /// updates kept meanwhile.
    Awaiting {
        since: Instant,
        buffer: Vec<OkxBook>,
        /// A REST snapshot has been asked for.
        fetching: bool,
    },
    /// In step.
    Live {
        book: LocalBook,
        seq: i64,
        prev: i64,
        /// Just built from a REST snapshot: the next update must straddle `seq`.
        bridge: bool,
    },
}

/// What an update did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Kept until the snapshot comes.
    Buffered,
    /// Already applied (a repeat from the other connection, or older than
    /// the REST snapshot).
    Repeat,
    /// Applied to the book.
    Applied,
}

impl BookSync {
    /// Waiting for a fresh snapshot from now.
    pub fn awaiting(fetching: bool) -> Self {
        Self::Awaiting {
            since: Instant::now(),
            buffer: Vec::new(),
            fetching,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Self::Live { .. })
    }

    /// Starts the book from a snapshot (`bridge` for a REST one) and
    /// replays the updates buffered while waiting. `Err` names the break.
    pub fn start(&mut self, book: LocalBook, seq: i64, bridge: bool) -> Result<(), String> {
        let buffered = match std::mem::replace(
            self,
            Self::Live {
                book,
                seq,
                prev: -1,
                bridge,
            },
        ) {
            Self::Awaiting { buffer, .. } => buffer,
            Self::Live { .. } => Vec::new(),
        };
        for b in &buffered {
            self.update(b)?;
        }
        Ok(())
    }

    /// Applies one update, or buffers it while awaiting a snapshot. `Err`
    /// says why the book must be rebuilt.
    pub fn update(&mut self, b: &OkxBook) -> Result<Step, String> {
        let (book, last, last_prev, bridge) = match self {
            Self::Awaiting { buffer, .. } => {
                if buffer.len() >= MAX_BUFFERED {
                    buffer.clear();
                }
                buffer.push(b.clone());
                return Ok(Step::Buffered);
            }
            Self::Live {
                book,
                seq,
                prev,
                bridge,
            } => (book, seq, prev, bridge),
        };
        let (Some(seq), Some(prev)) = (b.seq_id, b.prev_seq_id) else {
            return Err("update without seqId/prevSeqId".into());
        };
        if *bridge {
            if seq <= *last {
                return Ok(Step::Repeat); // before the REST snapshot
            }
            if prev > *last {
                return Err(format!(
                    "first update after the REST snapshot ({last}) has prevSeqId {prev}: gap"
                ));
            }
            *bridge = false;
        } else if prev == *last_prev && seq == *last {
            return Ok(Step::Repeat); // the same update from the other connection
        } else if prev != *last {
            if seq <= *last && prev < *last {
                return Ok(Step::Repeat); // an older update from a lagging connection
            }
            return Err(format!("prevSeqId {prev} does not follow seqId {last}"));
        }
        book.apply(Side::Bid, &b.bids)
            .and_then(|()| book.apply(Side::Ask, &b.asks))
            .map_err(|e| e.to_string())?;
        check(book, b.checksum)?;
        *last_prev = prev;
        *last = seq;
        Ok(Step::Applied)
    }
}

/// Verifies OKX's CRC32 when the venue sent one; 0 (deprecated, the value
/// sent since 2026-06-23) or absent is not a checksum.
pub fn check(book: &LocalBook, expected: Option<i64>) -> Result<(), String> {
    match expected {
        Some(want) if want != 0 && want != i64::from(book.okx_checksum()) => Err(format!(
            "checksum mismatch: exchange {want}, local {}",
            book.okx_checksum()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(prev: i64, seq: i64, bid: Option<(&str, &str)>) -> OkxBook {
        OkxBook {
            asks: vec![],
            bids: bid
                .map(|(p, s)| vec![vec![p.to_string(), s.to_string()]])
                .unwrap_or_default(),
            ts: "1".into(),
            checksum: Some(0),
            seq_id: Some(seq),
            prev_seq_id: Some(prev),
        }
    }

    fn live(seq: i64) -> BookSync {
        let mut s = BookSync::awaiting(false);
        s.start(LocalBook::default(), seq, false).unwrap();
        s
    }

    #[test]
    fn keepalive_reset_and_repeats_follow_okx_rules() {
        let mut s = live(10);
        assert_eq!(s.update(&up(10, 12, Some(("1", "1")))), Ok(Step::Applied));
        // keepalive: prevSeqId == seqId, empty
        assert_eq!(s.update(&up(12, 12, None)), Ok(Step::Applied));
        // the same keepalive from the other connection
        assert_eq!(s.update(&up(12, 12, None)), Ok(Step::Repeat));
        // sequence reset: seqId smaller than prevSeqId
        assert_eq!(s.update(&up(12, 3, Some(("1", "2")))), Ok(Step::Applied));
        assert_eq!(s.update(&up(12, 3, Some(("1", "2")))), Ok(Step::Repeat));
        assert_eq!(s.update(&up(3, 5, None)), Ok(Step::Applied));
        // a gap
        assert!(s.update(&up(7, 9, None)).is_err());
    }

    #[test]
    fn a_rest_snapshot_needs_a_straddling_first_update() {
        let mut s = BookSync::awaiting(true);
        // buffered while the REST call was out
        assert_eq!(s.update(&up(90, 95, None)), Ok(Step::Buffered));
        assert_eq!(s.update(&up(95, 101, None)), Ok(Step::Buffered));
        assert_eq!(s.update(&up(101, 104, None)), Ok(Step::Buffered));
        // snapshot at 99: 95 dropped, 101 straddles (95 <= 99 < 101), 104 follows
        s.start(LocalBook::default(), 99, true).unwrap();
        let BookSync::Live { seq, .. } = &s else {
            panic!()
        };
        assert_eq!(*seq, 104);
        // a snapshot the stream does not reach is a gap
        let mut s = BookSync::awaiting(true);
        s.update(&up(120, 130, None)).unwrap();
        assert!(s.start(LocalBook::default(), 99, true).is_err());
    }

    #[test]
    fn checksum_zero_or_absent_is_not_verified() {
        let book = LocalBook::from_levels(&[vec!["1", "1"]], &[vec!["2", "1"]]).unwrap();
        assert!(check(&book, Some(0)).is_ok());
        assert!(check(&book, None).is_ok());
        assert!(check(&book, Some(12345)).is_err());
        assert!(check(&book, Some(i64::from(book.okx_checksum()))).is_ok());
    }
}
