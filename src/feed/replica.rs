//! Events that arrive already numbered: the cluster's copy of a channel.
//!
//! An edge node (and an ingest restarting) takes events whose seq the
//! ingest's hub assigned. [`Hub::replicate`] appends such an event to the
//! local channel exactly like `Hub::publish` would have (ring, snapshot
//! state, doorbells), but keeps its seq and times instead of making new
//! ones. A seq already held is skipped (replays overlap); a seq beyond the
//! next one starts the ring over at that seq, so a reader in the gap is
//! told it fell behind, never handed a silent gap.

use super::book::OrderBook;
use super::channel::{Channel, SnapshotState};
use super::encoded::Encoded;
use super::hub::Hub;
use crate::protocol::codec::encode_event_proto;
use crate::protocol::pb::event::Payload;
use crate::protocol::pb::{BookSnapshot, Event};

/// What [`Hub::replicate`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicated {
    /// Appended as the channel's next event.
    Appended,
    /// Its seq was held already: skipped.
    Duplicate,
    /// Appended after a gap (events between were never received): the
    /// ring starts over at this seq.
    AfterGap { missing: u64 },
}

impl Hub {
    /// Appends `event` (numbered elsewhere) to `channel`.
    pub fn replicate(&self, channel: &Channel, event: Event) -> Replicated {
        let parts = event_parts(&event);
        let Some(mut payload) = event.payload else {
            return Replicated::Duplicate;
        };
        let outcome = {
            let mut state = channel.state();
            let seq = parts.0;
            if seq <= state.seq {
                return Replicated::Duplicate;
            }
            let outcome = if seq == state.seq + 1 {
                Replicated::Appended
            } else {
                let missing = seq - state.seq - 1;
                channel.ring.restart_after(seq - 1);
                if let SnapshotState::Book(book) = &mut state.snapshot {
                    *book = None; // its updates are lost with the gap
                }
                Replicated::AfterGap { missing }
            };
            if let SnapshotState::Book(book) = &mut state.snapshot {
                match &mut payload {
                    Payload::BookSnapshot(snap) => *book = Some(OrderBook::from_snapshot(snap)),
                    Payload::BookUpdate(update) => {
                        if let Some(book) = book.as_mut() {
                            book.apply(update);
                        }
                    }
                    _ => {}
                }
            }
            let spare = channel.ring.take_evicted();
            let encoded = self.encode_replica(channel, &parts, &payload, spare, state.cum_bytes);
            state.cum_bytes = encoded.cum_bytes;
            state.seq = seq;
            state.source_time_ns = parts.1;
            state.cached_snapshot = None;
            if let SnapshotState::Last(last) = &mut state.snapshot {
                *last = Some(encoded.clone());
            }
            channel.ring.push(encoded);
            outcome
        };
        channel.ring_subscribers();
        outcome
    }

    /// Gives a book channel its book as of `seq` (a stored snapshot) when
    /// the channel is exactly at `seq` and has none yet; `true` if taken.
    pub fn restore_book(&self, channel: &Channel, seq: u64, snapshot: &BookSnapshot) -> bool {
        let mut state = channel.state();
        if state.seq != seq {
            return false;
        }
        match &mut state.snapshot {
            SnapshotState::Book(book @ None) => {
                *book = Some(OrderBook::from_snapshot(snapshot));
                state.cached_snapshot = None;
                true
            }
            _ => false,
        }
    }

    fn encode_replica(
        &self,
        channel: &Channel,
        parts: &(u64, i64, i64),
        payload: &Payload,
        mut spare: Option<std::sync::Arc<Encoded>>,
        cum_bytes_before: u64,
    ) -> std::sync::Arc<Encoded> {
        let (seq, source_time_ns, publish_time_ns) = *parts;
        let buffer = spare
            .as_mut()
            .map(Encoded::spare_buffer)
            .unwrap_or_default();
        let proto = encode_event_proto(
            &channel.name,
            seq,
            source_time_ns,
            publish_time_ns,
            payload,
            self.gzip_threshold(),
            buffer,
        );
        let cum_bytes = cum_bytes_before + proto.frame.len() as u64;
        Encoded::reuse_or_new(
            spare,
            proto,
            seq,
            publish_time_ns,
            cum_bytes,
            self.gzip_threshold(),
            self.metrics(),
        )
    }
}

/// `(seq, source time, publish time)` of an event.
fn event_parts(e: &Event) -> (u64, i64, i64) {
    (e.seq, e.source_time_ns, e.publish_time_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::registry::Registry;
    use crate::feed::ring::RingLimits;
    use crate::metrics::Metrics;
    use crate::protocol::pb::{Level, Ticker, Trade};
    use std::sync::Arc;

    fn hub() -> Hub {
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 100,
            max_age_ns: 0,
        }));
        Hub::new(registry, "e1".into(), 1024, Arc::new(Metrics::default()))
    }

    fn ev(channel: &str, seq: u64, payload: Payload) -> Event {
        Event {
            channel: channel.into(),
            seq,
            source_time_ns: 5,
            publish_time_ns: 7,
            payload: Some(payload),
        }
    }

    #[test]
    fn keeps_seqs_skips_duplicates_and_restarts_after_a_gap() {
        let hub = hub();
        let ch = hub.channel("trade.sim.A-B").unwrap();
        let t = || Payload::Trade(Trade::default());
        assert_eq!(
            hub.replicate(&ch, ev("trade.sim.A-B", 41, t())),
            Replicated::AfterGap { missing: 40 }
        );
        assert_eq!(ch.ring.first_seq(), 41);
        assert_eq!(
            hub.replicate(&ch, ev("trade.sim.A-B", 42, t())),
            Replicated::Appended
        );
        assert_eq!(
            hub.replicate(&ch, ev("trade.sim.A-B", 42, t())),
            Replicated::Duplicate
        );
        assert_eq!(ch.seq(), 42);
        // the local hub goes on from there
        assert_eq!(hub.publish(&ch, 0, t()).unwrap(), 43);
        let mut out = Vec::new();
        ch.ring.read_from(42, 10, &mut out);
        let seqs: Vec<u64> = out.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![42, 43]);
        assert_eq!(
            out[0].publish_time_ns, 7,
            "the ingest's publish time is kept"
        );
    }

    #[test]
    fn last_state_and_books_follow_replicated_events() {
        let hub = hub();
        let ticker = hub.channel("ticker.sim.A-B").unwrap();
        hub.replicate(
            &ticker,
            ev(
                "ticker.sim.A-B",
                3,
                Payload::Ticker(Ticker {
                    last: 9.0,
                    ..Default::default()
                }),
            ),
        );
        let pos = hub.position(&ticker);
        assert_eq!(pos.seq, 3);
        assert!(pos.snapshot.is_some());

        let book = hub.channel("book.sim.A-B").unwrap();
        let lv = |price, quantity| Level { price, quantity };
        let snap = BookSnapshot {
            bids: vec![lv(99.0, 1.0)],
            asks: vec![lv(101.0, 1.0)],
            checksum: 0,
            price_decimals: 1,
            size_decimals: 1,
        };
        // an update arriving before any book is kept in the ring only
        hub.replicate(
            &book,
            ev("book.sim.A-B", 10, Payload::BookUpdate(Default::default())),
        );
        assert!(hub.position(&book).snapshot.is_none());
        assert!(!hub.restore_book(&book, 9, &snap), "not at that seq");
        assert!(hub.restore_book(&book, 10, &snap));
        let pos = hub.position(&book);
        assert_eq!(pos.seq, 10);
        assert!(pos.snapshot.is_some());
    }
}
