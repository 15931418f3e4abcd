//! Per-channel sequencing without I/O: what each server message means for
//! the application, and what the client must send in return.
//!
//! The tracker keeps, per channel, the last seq handed to the application
//! and its epoch. An event is handed over only when it is the next one (or
//! the snapshot a subscribe answer or a `lagged` announced); anything else
//! becomes an explicit notice first: a [`Item::Gap`] (and a resync of the
//! channel), a [`Item::Resnapshot`] (state lost: new epoch, history passed,
//! checksum mismatch), or is dropped as a duplicate. Book channels are
//! applied to an [`OrderBook`] and verified on every event.

use std::collections::HashMap;

use tickwire_proto::pb::{self, server_message};

use crate::book::OrderBook;
use crate::item::{Event, Item, ServerError};

/// Something the client must send because of what arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Unsubscribe then subscribe (with snapshot) this channel, for this reason.
    Resync(String, &'static str),
}

#[derive(Debug, Clone, Default)]
struct Position {
    last_seq: u64,
    epoch: String,
    /// A snapshot may carry this seq (a subscribe answer's or a lagged
    /// range's last seq) instead of `last_seq + 1`.
    snapshot_seq: Option<u64>,
    resync_reason: Option<&'static str>,
}

/// Counters of what the tracker saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handed to the application.
    pub events: u64,
    /// Unannounced gaps seen (each resynced).
    pub gaps: u64,
    /// Duplicate events dropped.
    pub duplicates: u64,
    /// Book checksums verified.
    pub checksums_verified: u64,
    /// Book checksum mismatches (each resynced).
    pub checksum_mismatches: u64,
    /// `conflated` announcements (with `subscribe_conflated`).
    pub conflated: u64,
}

/// Payload kinds that are a channel's whole state.
fn is_state(kind: Option<&pb::event::Payload>) -> bool {
    use pb::event::Payload as P;
    matches!(
        kind,
        Some(P::BookSnapshot(_) | P::Ticker(_) | P::Candle(_) | P::Signal(_) | P::Sentiment(_))
    )
}

/// The sequencing state of one connection's channels (kept across
/// reconnects: it is what `resume` is built from).
#[derive(Debug, Default)]
pub struct Tracker {
    epoch: String,
    positions: HashMap<String, Position>,
    books: HashMap<String, OrderBook>,
    manage_books: bool,
    stats: Stats,
}

impl Tracker {
    /// A tracker; `manage_books` keeps a verified book per `book.*` channel.
    pub fn new(manage_books: bool) -> Self {
        Self {
            manage_books,
            ..Self::default()
        }
    }

    /// The server's epoch (from the last `welcome`).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// What the tracker counted.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The verified book of a channel, once its snapshot arrived.
    pub fn book(&self, channel: &str) -> Option<&OrderBook> {
        self.books.get(channel).filter(|b| b.is_valid())
    }

    /// `{channel: (seq, epoch)}` of every channel, for `Subscribe.resume`.
    pub fn resume_positions(&self) -> HashMap<String, pb::ResumePosition> {
        self.positions
            .iter()
            .filter(|(_, p)| !p.epoch.is_empty())
            .map(|(name, p)| {
                (
                    name.clone(),
                    pb::ResumePosition {
                        seq: p.last_seq,
                        epoch: p.epoch.clone(),
                    },
                )
            })
            .collect()
    }

    /// Forgets channels the application unsubscribed.
    pub fn forget(&mut self, channels: &[String]) {
        for c in channels {
            self.positions.remove(c);
            self.books.remove(c);
        }
    }

    /// A `welcome`: returns whether the epoch changed from a previous one.
    pub fn welcome(&mut self, welcome: &pb::Welcome) -> bool {
        let changed = !self.epoch.is_empty() && self.epoch != welcome.epoch;
        self.epoch = welcome.epoch.clone();
        changed
    }

    /// Marks a channel as being resynced for `reason` (its in-flight events
    /// are dropped until the subscribe answer).
    pub fn resyncing(&mut self, channel: &str, reason: &'static str) {
        let pos = self.positions.entry(channel.to_string()).or_default();
        pos.resync_reason = Some(reason);
        if let Some(book) = self.books.get_mut(channel) {
            book.invalidate();
        }
    }

    /// Handles one server message: items for the application go to `out`,
    /// actions for the client are returned.
    pub fn handle(&mut self, msg: pb::ServerMessage, out: &mut Vec<Item>) -> Option<Action> {
        match msg.kind? {
            server_message::Kind::Event(ev) => return self.event(ev, out),
            server_message::Kind::Subscribed(sub) => self.subscribed(&sub, out),
            server_message::Kind::Lagged(lag) => {
                let pos = self.positions.entry(lag.channel.clone()).or_default();
                pos.last_seq = lag.last_seq;
                pos.snapshot_seq = Some(lag.last_seq);
                if pos.epoch.is_empty() {
                    pos.epoch = self.epoch.clone();
                }
                if let Some(book) = self.books.get_mut(&lag.channel) {
                    book.invalidate();
                }
                out.push(Item::Lagged {
                    channel: lag.channel,
                    first_seq: lag.first_seq,
                    last_seq: lag.last_seq,
                });
            }
            // an announced conflation skip: the next event (`last_seq + 1`)
            // carries the state; nothing is dropped or resynced
            server_message::Kind::Conflated(c) => {
                if let Some(pos) = self.positions.get_mut(&c.channel)
                    && pos.resync_reason.is_none()
                {
                    pos.last_seq = pos.last_seq.max(c.last_seq);
                    pos.snapshot_seq = None;
                }
                self.stats.conflated += 1;
                out.push(Item::Conflated {
                    channel: c.channel,
                    first_seq: c.first_seq,
                    last_seq: c.last_seq,
                });
            }
            server_message::Kind::Error(e) => out.push(Item::Error(ServerError {
                request_id: e.request_id,
                code: pb::ErrorCode::try_from(e.code).unwrap_or(pb::ErrorCode::Unspecified),
                message: e.message,
                channel: e.channel,
            })),
            _ => {}
        }
        None
    }

    fn subscribed(&mut self, sub: &pb::Subscribed, out: &mut Vec<Item>) {
        for state in &sub.channels {
            let old = self.positions.get(&state.channel);
            if let Some(p) = old
                && p.resync_reason.is_none()
                && p.epoch == state.epoch
                && p.last_seq == state.seq
            {
                continue; // subscribed again to a channel held: nothing missed
            }
            let reason = match old {
                Some(p) if p.resync_reason.is_some() => p.resync_reason,
                Some(p) if !p.epoch.is_empty() && !state.recovered => {
                    Some(if p.epoch != state.epoch {
                        "new epoch"
                    } else {
                        "history window passed"
                    })
                }
                _ => None,
            };
            if let Some(reason) = reason {
                out.push(Item::Resnapshot {
                    channel: state.channel.clone(),
                    seq: state.seq,
                    epoch: state.epoch.clone(),
                    reason,
                });
            }
            if !state.recovered
                && let Some(book) = self.books.get_mut(&state.channel)
            {
                book.invalidate();
            }
            self.positions.insert(
                state.channel.clone(),
                Position {
                    last_seq: state.seq,
                    epoch: state.epoch.clone(),
                    snapshot_seq: (!state.recovered).then_some(state.seq),
                    resync_reason: None,
                },
            );
        }
    }

    fn event(&mut self, ev: pb::Event, out: &mut Vec<Item>) -> Option<Action> {
        // hot path: the channel's next event (or its announced snapshot),
        // one hash lookup
        if let Some(pos) = self.positions.get_mut(&ev.channel)
            && pos.resync_reason.is_none()
            && pos.epoch == self.epoch
            && (ev.seq == pos.last_seq + 1 || pos.snapshot_seq == Some(ev.seq))
        {
            pos.last_seq = ev.seq;
            pos.snapshot_seq = None;
            return self.deliver(ev, out);
        }
        let epoch = &self.epoch;
        match self.positions.get_mut(&ev.channel) {
            Some(pos) if pos.resync_reason.is_some() => return None, // in flight; snapshot follows
            Some(pos) if pos.epoch != *epoch => {
                // Known from a previous epoch and adopted again by a pattern
                // after a restart: its history is gone.
                out.push(Item::Resnapshot {
                    channel: ev.channel.clone(),
                    seq: ev.seq,
                    epoch: epoch.clone(),
                    reason: "new epoch",
                });
                if let Some(book) = self.books.get_mut(&ev.channel) {
                    book.invalidate();
                }
                pos.epoch = epoch.clone();
            }
            Some(pos) => {
                if pos.snapshot_seq == Some(ev.seq) {
                    // the announced snapshot
                } else if ev.seq <= pos.last_seq {
                    self.stats.duplicates += 1;
                    return None;
                } else if ev.seq != pos.last_seq + 1 {
                    self.stats.gaps += 1;
                    out.push(Item::Gap {
                        channel: ev.channel.clone(),
                        expected_seq: pos.last_seq + 1,
                        got_seq: ev.seq,
                    });
                    return Some(Action::Resync(ev.channel, "gap"));
                }
            }
            None => {
                // A channel a pattern adopted: it starts at seq 1, or (its
                // history already past seq 1) at its snapshot.
                if ev.seq != 1 {
                    if is_state(ev.payload.as_ref()) {
                        out.push(Item::Resnapshot {
                            channel: ev.channel.clone(),
                            seq: ev.seq,
                            epoch: epoch.clone(),
                            reason: "channel joined after its history start",
                        });
                    } else {
                        self.stats.gaps += 1;
                        out.push(Item::Gap {
                            channel: ev.channel.clone(),
                            expected_seq: 1,
                            got_seq: ev.seq,
                        });
                    }
                }
                let fresh = Position {
                    epoch: epoch.clone(),
                    ..Position::default()
                };
                self.positions.insert(ev.channel.clone(), fresh);
            }
        }
        let pos = self
            .positions
            .get_mut(&ev.channel)
            .expect("every branch above left a position");
        pos.last_seq = ev.seq;
        pos.snapshot_seq = None;
        self.deliver(ev, out)
    }

    /// Applies a book event to its book (verifying the checksum) and hands
    /// the event over; a mismatch is a Resnapshot and a resync instead.
    fn deliver(&mut self, ev: pb::Event, out: &mut Vec<Item>) -> Option<Action> {
        if self.manage_books
            && matches!(
                ev.payload,
                Some(pb::event::Payload::BookSnapshot(_) | pb::event::Payload::BookUpdate(_))
            )
        {
            if !self.books.contains_key(&ev.channel) {
                self.books.insert(ev.channel.clone(), OrderBook::default());
            }
            let book = self
                .books
                .get_mut(&ev.channel)
                .expect("inserted above when missing");
            match book.apply(&ev) {
                Ok(true) => self.stats.checksums_verified += 1,
                Ok(false) => {}
                Err(mismatch) => {
                    self.stats.checksum_mismatches += 1;
                    out.push(Item::Resnapshot {
                        channel: ev.channel.clone(),
                        seq: ev.seq,
                        epoch: self.epoch.clone(),
                        reason: mismatch,
                    });
                    return Some(Action::Resync(ev.channel, mismatch));
                }
            }
        }
        self.stats.events += 1;
        out.push(Item::Event(Event(ev)));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::server_message::Kind;

    fn event(channel: &str, seq: u64) -> pb::ServerMessage {
        pb::ServerMessage {
            kind: Some(Kind::Event(pb::Event {
                channel: channel.into(),
                seq,
                payload: Some(pb::event::Payload::Trade(pb::Trade::default())),
                ..Default::default()
            })),
        }
    }

    fn subscribed(channel: &str, seq: u64, epoch: &str, recovered: bool) -> pb::ServerMessage {
        pb::ServerMessage {
            kind: Some(Kind::Subscribed(pb::Subscribed {
                request_id: 1,
                channels: vec![pb::ChannelState {
                    channel: channel.into(),
                    seq,
                    epoch: epoch.into(),
                    recovered,
                }],
            })),
        }
    }

    fn tracker(epoch: &str) -> Tracker {
        let mut t = Tracker::new(true);
        t.welcome(&pb::Welcome {
            epoch: epoch.into(),
            ..Default::default()
        });
        t
    }

    fn feed(t: &mut Tracker, msg: pb::ServerMessage) -> (Vec<Item>, Option<Action>) {
        let mut out = Vec::new();
        let action = t.handle(msg, &mut out);
        (out, action)
    }

    fn seqs(items: &[Item]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.seq()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn events_after_the_answer_pass_in_order_and_duplicates_are_dropped() {
        let mut t = tracker("e1");
        feed(&mut t, subscribed("trade.x.A", 5, "e1", false));
        let mut all = Vec::new();
        for seq in [6, 7, 7, 8] {
            all.extend(feed(&mut t, event("trade.x.A", seq)).0);
        }
        assert_eq!(seqs(&all), vec![6, 7, 8]);
        assert_eq!(t.stats().duplicates, 1);
    }

    #[test]
    fn a_gap_is_announced_and_asks_for_a_resync() {
        let mut t = tracker("e1");
        feed(&mut t, subscribed("trade.x.A", 5, "e1", false));
        let (items, action) = feed(&mut t, event("trade.x.A", 9));
        assert!(matches!(
            &items[..],
            [Item::Gap {
                expected_seq: 6,
                got_seq: 9,
                ..
            }]
        ));
        assert_eq!(action, Some(Action::Resync("trade.x.A".into(), "gap")));
        t.resyncing("trade.x.A", "gap");
        assert!(
            feed(&mut t, event("trade.x.A", 10)).0.is_empty(),
            "in flight"
        );
        let (items, _) = feed(&mut t, subscribed("trade.x.A", 12, "e1", false));
        assert!(matches!(
            &items[..],
            [Item::Resnapshot {
                reason: "gap",
                seq: 12,
                ..
            }]
        ));
        assert_eq!(seqs(&feed(&mut t, event("trade.x.A", 13)).0), vec![13]);
    }

    #[test]
    fn a_lost_resume_is_a_resnapshot_and_a_kept_one_is_silent() {
        let mut t = tracker("e1");
        feed(&mut t, subscribed("trade.x.A", 5, "e1", false));
        feed(&mut t, event("trade.x.A", 6));
        // reconnect, same epoch, recovered: replay follows silently
        let (items, _) = feed(&mut t, subscribed("trade.x.A", 6, "e1", true));
        assert!(items.is_empty());
        // reconnect to a restarted server: new epoch, not recovered
        t.welcome(&pb::Welcome {
            epoch: "e2".into(),
            ..Default::default()
        });
        let (items, _) = feed(&mut t, subscribed("trade.x.A", 40, "e2", false));
        assert!(matches!(
            &items[..],
            [Item::Resnapshot {
                reason: "new epoch",
                ..
            }]
        ));
        assert_eq!(seqs(&feed(&mut t, event("trade.x.A", 41)).0), vec![41]);
    }

    #[test]
    fn lagged_allows_the_snapshot_at_its_last_seq() {
        let mut t = tracker("e1");
        feed(&mut t, subscribed("trade.x.A", 5, "e1", false));
        let lagged = pb::ServerMessage {
            kind: Some(Kind::Lagged(pb::Lagged {
                channel: "trade.x.A".into(),
                first_seq: 6,
                last_seq: 20,
            })),
        };
        let (items, _) = feed(&mut t, lagged);
        assert!(matches!(
            &items[..],
            [Item::Lagged {
                first_seq: 6,
                last_seq: 20,
                ..
            }]
        ));
        assert_eq!(seqs(&feed(&mut t, event("trade.x.A", 21)).0), vec![21]);
        assert_eq!(t.stats().gaps, 0);
    }

    #[test]
    fn a_channel_adopted_late_by_a_pattern_without_seq_1_is_announced() {
        let mut t = tracker("e1");
        let (items, _) = feed(&mut t, event("trade.x.NEW", 3));
        assert!(matches!(
            &items[0],
            Item::Gap {
                expected_seq: 1,
                got_seq: 3,
                ..
            }
        ));
        let (items, _) = feed(&mut t, event("trade.x.OTHER", 1));
        assert_eq!(seqs(&items), vec![1]);
    }
}
