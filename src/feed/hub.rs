//! The hub: the one place an event becomes part of a channel's ring.
//!
//! `publish` assigns the channel's next seq, updates the channel's snapshot
//! state (book, last ticker/candle), encodes the message once, appends it to
//! the channel's ring and rings the subscribers' doorbells. Sources call it
//! directly; the channel's lock serialises publishers of the same channel,
//! so per-channel order is the order of `publish` calls.

use std::sync::{Arc, OnceLock};

use thiserror::Error;

use super::book::OrderBook;
use super::channel::{Channel, SnapshotState};
use super::encoded::Encoded;
use super::registry::Registry;
use super::trade_tap::{TappedTrade, TradeTap};
use crate::metrics::{Metrics, inc};
use crate::protocol::codec::encode_event_proto;
use crate::protocol::pb::event::Payload;
use crate::protocol::{ChannelError, ChannelKind, now_ns};

/// Why an event was not published.
#[derive(Debug, Error)]
pub enum PublishError {
    #[error(transparent)]
    InvalidChannel(#[from] ChannelError),
    #[error("channel {0} has no book yet: publish a book_snapshot before book_update")]
    UpdateBeforeSnapshot(String),
    #[error("channel {channel} is a {kind} channel and cannot carry a {payload} payload")]
    WrongPayload {
        channel: String,
        kind: &'static str,
        payload: &'static str,
    },
    #[error("event has no payload")]
    NoPayload,
}

/// The proto field name of a payload (`trade`, `book_update`, ...).
pub fn payload_name(p: &Payload) -> &'static str {
    match p {
        Payload::Trade(_) => "trade",
        Payload::Ticker(_) => "ticker",
        Payload::BookSnapshot(_) => "book_snapshot",
        Payload::BookUpdate(_) => "book_update",
        Payload::Candle(_) => "candle",
        Payload::Signal(_) => "signal",
        Payload::Sentiment(_) => "sentiment",
        Payload::ScanStarted(_) => "scan_started",
        Payload::ScanResult(_) => "scan_result",
        Payload::SymbolAnalyzed(_) => "symbol_analyzed",
        Payload::ScanProgress(_) => "scan_progress",
        Payload::ScanDone(_) => "scan_done",
        Payload::ScanError(_) => "scan_error",
        Payload::Custom(_) => "custom",
    }
}

/// Where every event the hub publishes also goes: a cluster ingest's outbox,
/// or an in-process recorder. Called under the channel's lock, so in seq
/// order per channel; it must not block (a bounded queue that counts what
/// it drops).
pub trait EventSink: Send + Sync + std::fmt::Debug {
    fn offer(&self, channel: &Channel, event: &Arc<Encoded>);
}

/// Where a new subscriber starts: the channel's current seq and, when the
/// channel has state, the snapshot event valid at that seq.
#[derive(Debug, Clone)]
pub struct Position {
    pub seq: u64,
    pub snapshot: Option<Arc<Encoded>>,
}

/// Assigns seqs, keeps snapshot state, encodes once, fans out.
#[derive(Debug)]
pub struct Hub {
    registry: Arc<Registry>,
    epoch: Arc<str>,
    gzip_threshold: usize,
    metrics: Arc<Metrics>,
    /// Where trades go for a consumer above the feed (analytics; set once).
    tap: OnceLock<Arc<TradeTap>>,
    /// Where book tops and venue states go for `bbo.all.*` (set once,
    /// when an exchange source runs).
    bbo: OnceLock<Arc<super::bbo::BboTap>>,
    /// The cluster's outbox (set once, in cluster mode only).
    sink: OnceLock<Arc<dyn EventSink>>,
}

impl Hub {
    /// A hub over `registry` for one server run identified by `epoch`.
    pub fn new(
        registry: Arc<Registry>,
        epoch: Arc<str>,
        gzip_threshold: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            registry,
            epoch,
            gzip_threshold,
            metrics,
            tap: OnceLock::new(),
            bbo: OnceLock::new(),
            sink: OnceLock::new(),
        }
    }

    /// Hands every published trade to `tap` from now on.
    pub fn set_trade_tap(&self, tap: Arc<TradeTap>) {
        let _ = self.tap.set(tap);
    }

    /// Hands book-top changes and venue states to `tap` from now on.
    pub fn set_bbo_tap(&self, tap: Arc<super::bbo::BboTap>) {
        let _ = self.bbo.set(tap);
    }

    /// The consolidated book's tap, if set.
    pub fn bbo_tap(&self) -> Option<&Arc<super::bbo::BboTap>> {
        self.bbo.get()
    }

    /// Hands every published event to `sink` from now on (set once: the
    /// cluster ingest's outbox, or the recorder of `tickwire record --source`).
    pub fn set_sink(&self, sink: Arc<dyn EventSink>) {
        let _ = self.sink.set(sink);
    }

    /// The trade tap, if set.
    pub fn trade_tap(&self) -> Option<&Arc<TradeTap>> {
        self.tap.get()
    }

    /// The epoch of this server run.
    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// The channel registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Messages over this many bytes are gzipped (0 = never).
    pub fn gzip_threshold(&self) -> usize {
        self.gzip_threshold
    }

    /// The channel of that name, created if new. Sources resolve their
    /// channels once and publish by handle.
    pub fn channel(&self, name: &str) -> Result<Arc<Channel>, ChannelError> {
        self.registry.get_or_create(name)
    }

    /// Publishes like [`Hub::publish`], logging (not returning) a refusal:
    /// for the program's own publishers (sources, analytics, the
    /// consolidated book), whose events are built by code, so a refusal is
    /// a bug to see in the log and not an answer owed to anyone.
    pub fn publish_or_log(&self, channel: &Channel, source_time_ns: i64, payload: Payload) {
        if let Err(e) = self.publish(channel, source_time_ns, payload) {
            tracing::error!(channel = %channel.name, error = %e, "event refused");
        }
    }

    /// Publishes one event on `channel` and returns its seq.
    ///
    /// hot path: one encode, one ring append, one doorbell pass; nothing per
    /// client beyond the doorbell.
    pub fn publish(
        &self,
        channel: &Channel,
        source_time_ns: i64,
        mut payload: Payload,
    ) -> Result<u64, PublishError> {
        let is_book_payload = matches!(payload, Payload::BookSnapshot(_) | Payload::BookUpdate(_));
        if let (Payload::Trade(t), Some(tap)) = (&payload, self.tap.get())
            && channel.kind == ChannelKind::Trade
        {
            tap.offer(TappedTrade {
                channel: channel.name.clone(),
                time_ns: source_time_ns,
                price: t.price,
                quantity: t.quantity,
            });
        }
        if is_book_payload != (channel.kind == ChannelKind::Book) {
            return Err(PublishError::WrongPayload {
                channel: channel.name.to_string(),
                kind: channel.kind.as_str(),
                payload: payload_name(&payload),
            });
        }
        let lag_s;
        let seq = {
            let mut state = channel.state();
            if let SnapshotState::Book(book) = &mut state.snapshot {
                match &mut payload {
                    Payload::BookSnapshot(snap) => {
                        let fresh = OrderBook::from_snapshot(snap);
                        snap.checksum = fresh.checksum();
                        *book = Some(fresh);
                    }
                    Payload::BookUpdate(update) => {
                        let Some(book) = book.as_mut() else {
                            return Err(PublishError::UpdateBeforeSnapshot(
                                channel.name.to_string(),
                            ));
                        };
                        book.apply(update);
                        update.checksum = book.checksum();
                    }
                    _ => unreachable!("book channels only take book payloads (checked above)"),
                }
                if let (Some(bbo), Some(book)) = (self.bbo.get(), book.as_ref()) {
                    // only a changed top (or a rebuilt book) is handed over
                    let top = (book.bids().next().copied(), book.asks().next().copied());
                    let snapshot = matches!(payload, Payload::BookSnapshot(_));
                    if snapshot || state.top != top {
                        state.top = top;
                        bbo.offer(super::bbo::BboInput::Top {
                            channel: channel.name.clone(),
                            bid: top.0,
                            ask: top.1,
                            snapshot,
                            time_ns: source_time_ns,
                        });
                    }
                }
            } else if let (Payload::Custom(c), Some(bbo)) = (&payload, self.bbo.get())
                && channel.name.starts_with("status.")
                && let Some(crate::protocol::pb::custom::Body::Json(j)) = &c.body
            {
                bbo.offer(super::bbo::BboInput::Status(j.clone()));
            }
            let seq = state.seq + 1;
            // at a full ring the evicted event becomes the new one
            let spare = channel.ring.take_evicted();
            let encoded = self.encode_event(
                channel,
                seq,
                source_time_ns,
                &payload,
                spare,
                state.cum_bytes,
            );
            lag_s = (encoded.publish_time_ns - source_time_ns).max(0) as f64 / 1e9;
            state.cum_bytes = encoded.cum_bytes;
            state.seq = seq;
            state.source_time_ns = source_time_ns;
            state.cached_snapshot = None;
            if let SnapshotState::Last(last) = &mut state.snapshot {
                *last = Some(encoded.clone());
            }
            if let Some(sink) = self.sink.get() {
                sink.offer(channel, &encoded);
            }
            channel.ring.push(encoded);
            seq
        };
        channel.ring_subscribers();
        inc(&self.metrics.events_published);
        // exchange lag, per venue: market data only (analytics events are
        // derived, their source time is a candle's), and only with a source
        // time (0 = unknown); a source clock ahead of ours counts as 0
        if source_time_ns > 0
            && matches!(
                channel.kind,
                ChannelKind::Trade | ChannelKind::Ticker | ChannelKind::Book
            )
        {
            channel
                .lag_histogram(|| self.metrics.exchange_lag.for_venue(channel.venue()))
                .observe(lag_s);
        }
        Ok(seq)
    }

    /// Encodes one `event` of `channel`, stamped with the publish time now,
    /// in `spare`'s allocations when nobody else holds them (see
    /// `Encoded::reuse_or_new`). `cum_bytes_before` is the channel's frame
    /// bytes before this event (0 for a snapshot, which no ring holds).
    fn encode_event(
        &self,
        channel: &Channel,
        seq: u64,
        source_time_ns: i64,
        payload: &Payload,
        mut spare: Option<Arc<Encoded>>,
        cum_bytes_before: u64,
    ) -> Arc<Encoded> {
        let publish_time_ns = now_ns();
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
            self.gzip_threshold,
            buffer,
        );
        let cum_bytes = cum_bytes_before + proto.frame.len() as u64;
        Encoded::reuse_or_new(
            spare,
            proto,
            seq,
            publish_time_ns,
            cum_bytes,
            self.gzip_threshold,
            &self.metrics,
        )
    }

    /// What a conflated subscriber of a book at `since_seq` gets at grid
    /// tick `tick` of `interval_ms` (see `super::fold`): the update from
    /// the tick's base when it is there, else the snapshot at the tick's
    /// seq, both encoded once per tick and shared. `None` when the channel
    /// is not a book with state.
    ///
    /// Cost: under the channel's lock; the first subscriber of a tick
    /// clones the book and encodes the update (the snapshot when one is
    /// first needed); the others clone an `Arc`.
    pub fn fold_book(
        &self,
        channel: &Channel,
        interval_ms: u32,
        tick: i64,
        since_seq: u64,
    ) -> Option<super::BookFold> {
        use super::fold::{BookFold, Out};
        let mut guard = channel.state();
        let state = &mut *guard;
        let SnapshotState::Book(Some(book)) = &state.snapshot else {
            return None;
        };
        let entry = state.folds.entry(interval_ms, now_ns());
        if entry.advance(tick) {
            let update = entry.base.as_ref().map(|(_, base)| {
                let payload = Payload::BookUpdate(base.diff_to(book));
                self.encode_event(channel, state.seq, state.source_time_ns, &payload, None, 0)
            });
            entry.out = Some(Out {
                seq: state.seq,
                book: book.clone(),
                source_time_ns: state.source_time_ns,
                update,
                snapshot: None,
            });
        }
        let base_seq = entry.base.as_ref().map(|(seq, _)| *seq);
        let out = entry.out.as_mut().expect("advance left a state");
        if since_seq >= out.seq {
            return Some(BookFold::Nothing);
        }
        if base_seq == Some(since_seq)
            && let Some(update) = &out.update
        {
            return Some(BookFold::Deliver {
                seq: out.seq,
                event: update.clone(),
                update: true,
            });
        }
        let snapshot = match &out.snapshot {
            Some(s) => s.clone(),
            None => {
                let payload = Payload::BookSnapshot(out.book.to_snapshot());
                let s = self.encode_event(channel, out.seq, out.source_time_ns, &payload, None, 0);
                out.snapshot = Some(s.clone());
                s
            }
        };
        Some(BookFold::Deliver {
            seq: out.seq,
            event: snapshot,
            update: false,
        })
    }

    /// The current seq of `channel` and its snapshot event, if it has state.
    /// A book snapshot is encoded once per seq and shared.
    pub fn position(&self, channel: &Channel) -> Position {
        let mut state = channel.state();
        let seq = state.seq;
        let snapshot = match &state.snapshot {
            SnapshotState::None => None,
            SnapshotState::Last(last) => last.clone(),
            SnapshotState::Book(None) => None,
            SnapshotState::Book(Some(book)) => {
                if let Some(cached) = &state.cached_snapshot {
                    Some(cached.clone())
                } else {
                    let snapshot = Payload::BookSnapshot(book.to_snapshot());
                    let encoded =
                        self.encode_event(channel, seq, state.source_time_ns, &snapshot, None, 0);
                    state.cached_snapshot = Some(encoded.clone());
                    Some(encoded)
                }
            }
        };
        Position { seq, snapshot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::ring::RingLimits;
    use crate::protocol::pb::{
        BookSnapshot, BookUpdate, Event, Level, Ticker, Trade, server_message,
    };

    fn hub() -> Hub {
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 100,
            max_age_ns: 0,
        }));
        Hub::new(registry, "e1".into(), 1024, Arc::new(Metrics::default()))
    }

    fn event_of(e: &Encoded) -> Event {
        match e.message().kind {
            Some(server_message::Kind::Event(ev)) => ev,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seqs_start_at_one_and_increase_by_one_per_channel() {
        let hub = hub();
        let a = hub.channel("trade.sim.A-B").unwrap();
        let b = hub.channel("trade.sim.C-D").unwrap();
        let trade = || Payload::Trade(Trade::default());
        assert_eq!(hub.publish(&a, 0, trade()).unwrap(), 1);
        assert_eq!(hub.publish(&a, 0, trade()).unwrap(), 2);
        assert_eq!(hub.publish(&b, 0, trade()).unwrap(), 1);
        assert_eq!(a.seq(), 2);
        assert!(hub.position(&a).snapshot.is_none(), "trades have no state");
    }

    #[test]
    fn a_full_ring_reuses_evicted_events_but_never_one_still_held() {
        use crate::feed::ring::ReadOutcome;
        use crate::protocol::Format;
        let hub = hub(); // rings of 100 events
        let ch = hub.channel("trade.sim.A-B").unwrap();
        let trade = |id: u64| {
            Payload::Trade(Trade {
                price: id as f64,
                trade_id: id.to_string(),
                count: 0,
                ..Default::default()
            })
        };
        let read = |seq: u64| {
            let mut out = Vec::new();
            assert_eq!(ch.ring.read_from(seq, 1, &mut out), ReadOutcome::Read(1));
            out.pop().unwrap()
        };
        for id in 1..=100 {
            hub.publish(&ch, 0, trade(id)).unwrap();
        }
        // a reader holds event 1 (the Arc) and event 2's frame bytes
        let held_event = read(1);
        let held_frame = read(2).frame(Format::Proto, hub.metrics()).clone();
        let (event_before, frame_before) = (event_of(&held_event), held_frame.to_vec());
        let unheld = Arc::as_ptr(&read(3));
        for id in 101..=103 {
            hub.publish(&ch, 0, trade(id)).unwrap();
        }
        assert_eq!(
            event_of(&held_event),
            event_before,
            "a held event is never rewritten"
        );
        assert_eq!(
            held_frame.to_vec(),
            frame_before,
            "held frame bytes are never rewritten"
        );
        assert_eq!(
            Arc::as_ptr(&read(103)),
            unheld,
            "event 3's allocation now holds 103"
        );
        for seq in 101..=103 {
            let ev = event_of(&read(seq));
            assert_eq!((ev.seq, ev.channel.as_str()), (seq, "trade.sim.A-B"));
            assert_eq!(ev.payload, Some(trade(seq)));
        }
        assert_eq!(ch.ring.first_seq(), 4);
    }

    #[test]
    fn ticker_snapshot_is_the_last_event() {
        let hub = hub();
        let ch = hub.channel("ticker.sim.A-B").unwrap();
        for last in [1.0, 2.0, 3.0] {
            hub.publish(
                &ch,
                0,
                Payload::Ticker(Ticker {
                    last,
                    ..Default::default()
                }),
            )
            .unwrap();
        }
        let pos = hub.position(&ch);
        assert_eq!(pos.seq, 3);
        let ev = event_of(&pos.snapshot.unwrap());
        assert_eq!(ev.seq, 3);
        assert!(matches!(ev.payload, Some(Payload::Ticker(t)) if t.last == 3.0));
    }

    #[test]
    fn book_state_follows_updates_and_checksums_are_filled() {
        let hub = hub();
        let ch = hub.channel("book.sim.A-B").unwrap();
        let lv = |price, quantity| Level { price, quantity };
        let update = Payload::BookUpdate(BookUpdate {
            bids: vec![lv(99.0, 0.0)],
            ..Default::default()
        });
        assert!(matches!(
            hub.publish(&ch, 0, update.clone()),
            Err(PublishError::UpdateBeforeSnapshot(_))
        ));
        hub.publish(
            &ch,
            0,
            Payload::BookSnapshot(BookSnapshot {
                bids: vec![lv(99.0, 1.0), lv(98.0, 1.0)],
                asks: vec![lv(101.0, 1.0)],
                checksum: 0,
                price_decimals: 1,
                size_decimals: 1,
            }),
        )
        .unwrap();
        hub.publish(&ch, 0, update).unwrap();
        let pos = hub.position(&ch);
        assert_eq!(pos.seq, 2);
        let snap = match event_of(pos.snapshot.as_ref().unwrap()).payload {
            Some(Payload::BookSnapshot(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(snap.bids, vec![lv(98.0, 1.0)]);
        assert_eq!(snap.checksum, OrderBook::from_snapshot(&snap).checksum());
        // cached: the same encoded snapshot until the next event
        assert!(Arc::ptr_eq(
            pos.snapshot.as_ref().unwrap(),
            hub.position(&ch).snapshot.as_ref().unwrap()
        ));
        // the stored update carries the checksum of the book after it
        let mut out = Vec::new();
        ch.ring.read_from(2, 1, &mut out);
        match event_of(&out[0]).payload {
            Some(Payload::BookUpdate(u)) => assert_eq!(u.checksum, snap.checksum),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn payload_must_fit_the_channel() {
        let hub = hub();
        let trades = hub.channel("trade.sim.A-B").unwrap();
        let err = hub
            .publish(&trades, 0, Payload::BookUpdate(BookUpdate::default()))
            .unwrap_err();
        assert!(err.to_string().contains("book_update"), "{err}");
        assert_eq!(trades.seq(), 0, "a refused event takes no seq");
        assert!(hub.channel("bad name").is_err());
    }
}
