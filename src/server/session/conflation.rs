//! Conflation: a subscription with `conflate_ms` gets at most one delivery
//! per channel per interval, carrying the channel's latest state.
//!
//! # Design
//!
//! A conflated subscription keeps its cursor like any other and a
//! [`Conflation`]: its interval and `due_ns`, the next tick of the
//! interval's grid (multiples of the interval of the server clock, shared by
//! every subscriber of that interval). Events published meanwhile stay in
//! the channel's ring (nothing is copied per client); when the subscription
//! is due and has anything pending, [`Plan`] decides what goes out:
//!
//! * **Books**: the tick's state, shared by the interval's subscribers
//!   (`Hub::fold_book`, `feed/fold.rs`): one `book_update` from the seq
//!   they were all brought to at the previous tick (its checksum is the
//!   book's at the head), or the snapshot at the tick's seq for a
//!   subscriber elsewhere (the first tick after a subscribe). Both encoded
//!   once per tick.
//! * **Other stateful channels** (tickers, candles, signals, sentiment,
//!   `status.*`, `bbo.*`): one event pending is delivered as is; more are
//!   folded into the latest event (the channel's state, `Hub::position`).
//!
//! Whenever a delivery stands for more than one event, `conflated
//! {channel, first_seq, last_seq}` names the events not delivered, right
//! before the event at `last_seq + 1`; the cursor skips to it. The client's
//! seqs stay the channel's real ones and the skip is announced, never
//! silent.
//! * **Stateless channels** (trades, scans, custom): never conflated away.
//!   Everything pending is read at the interval and written in the same
//!   batch as the rest of the connection's due frames.
//!
//! # Timers and wake-ups
//!
//! One timer per connection, armed by the connection task at
//! [`Session::conflation_wake_ns`]: the earliest `due_ns` of a conflated
//! subscription with events pending or a tick ahead. A session without conflated
//! subscriptions answers `None` from a counter, so plain connections do no
//! timer work. While every subscription (and every pattern) of the session
//! is conflated and a wake-up is armed, the connection does not answer its
//! doorbell ([`Session::events_deferred`]): nothing could be delivered
//! before the timer, and a busy channel would otherwise wake it per event.
//! An event on a channel that was idle at its due time is then delivered at
//! that wake-up, at most one interval late (the price of conflating).
//!
//! # Lag
//!
//! A conflated stateful subscription needs only the latest state, so its
//! held-back events count neither against the backlog bounds nor for the
//! resync of the age bound: it is never `lagged` for holding them. A
//! conflated stateless one keeps the ordinary policy: its interval's
//! backlog counts (`--max-lag-messages`, `--max-lag-bytes`, the ring's
//! window). The age bound allows the longest interval of the connection on
//! top of `--max-lag-age`: events held for the interval are not late.

use std::sync::Arc;

use super::{Outbound, Session, Subscription};
use crate::feed::{BookFold, Encoded, ReadOutcome};
use crate::protocol::ChannelKind;
use crate::protocol::codec::control_frame;
use crate::protocol::pb::{Conflated, ServerMessage, server_message};

/// Least `conflate_ms` a subscribe may ask for (0 is "off").
pub const CONFLATE_MS_MIN: u32 = 10;
/// Most `conflate_ms` a subscribe may ask for.
pub const CONFLATE_MS_MAX: u32 = 60_000;

/// Whether `conflate_ms` is a valid subscribe option: 0 (off) or within
/// [`CONFLATE_MS_MIN`]`..=`[`CONFLATE_MS_MAX`].
pub fn valid_conflate_ms(conflate_ms: u32) -> bool {
    conflate_ms == 0 || (CONFLATE_MS_MIN..=CONFLATE_MS_MAX).contains(&conflate_ms)
}

/// The conflation of one subscription: its interval and its next due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Conflation {
    interval_ns: i64,
    /// Earliest time of the next delivery.
    due_ns: i64,
}

/// What a conflated subscription delivers when asked at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Not due, or nothing pending: nothing now.
    Wait,
    /// Read the pending events from the ring as they are (a stateless
    /// channel's backlog, or a stateful channel's single pending event).
    Read,
    /// Fold the pending events of a stateful channel into its state at the
    /// head (announce the skipped ones with `conflated`).
    Fold,
}

/// The first tick of the `interval_ns` grid (multiples of the interval
/// of the server clock) after `now_ns`.
fn next_tick_ns(now_ns: i64, interval_ns: i64) -> i64 {
    (now_ns.div_euclid(interval_ns) + 1) * interval_ns
}

impl Conflation {
    /// A conflation of `conflate_ms` (valid, non-zero) that first delivers
    /// at the next tick of its grid (the subscribe's snapshot is the state
    /// until then). Every subscriber of one interval shares the grid, so
    /// their book folds are shared (`feed::fold`).
    pub(super) fn new(conflate_ms: u32, now_ns: i64) -> Self {
        let interval_ns = i64::from(conflate_ms) * 1_000_000;
        Self {
            interval_ns,
            due_ns: next_tick_ns(now_ns, interval_ns),
        }
    }

    /// The grid tick the subscription is due at (its index on the grid).
    pub(super) fn tick(&self) -> i64 {
        self.due_ns.div_euclid(self.interval_ns)
    }

    /// The interval in nanoseconds.
    pub(super) fn interval_ns(&self) -> i64 {
        self.interval_ns
    }

    /// The interval in milliseconds (as the subscribe asked it).
    pub(super) fn interval_ms(&self) -> u32 {
        (self.interval_ns / 1_000_000) as u32
    }

    /// Earliest time of the next delivery.
    pub(super) fn due_ns(&self) -> i64 {
        self.due_ns
    }

    /// A new interval for a subscription already conflated: the next
    /// delivery is no later than one new interval from now.
    pub(super) fn retime(&mut self, conflate_ms: u32, now_ns: i64) {
        let next = Self::new(conflate_ms, now_ns);
        self.interval_ns = next.interval_ns;
        self.due_ns = self.due_ns.min(next.due_ns);
    }

    /// What to deliver at `now_ns` with `pending` events not yet read.
    pub(super) fn plan(&self, now_ns: i64, stateful: bool, pending: u64) -> Plan {
        if pending == 0 || now_ns < self.due_ns {
            Plan::Wait
        } else if stateful && pending > 1 {
            Plan::Fold
        } else {
            Plan::Read
        }
    }

    /// A delivery went out at `now_ns`: the next one is at the next tick.
    pub(super) fn delivered(&mut self, now_ns: i64) {
        self.due_ns = next_tick_ns(now_ns, self.interval_ns);
    }
}

/// The seqs a fold skips: from the cursor's `next_seq` to just before the
/// `head` whose state is delivered; `None` when nothing is skipped.
pub(super) fn skipped_range(next_seq: u64, head: u64) -> Option<(u64, u64)> {
    (head > next_seq).then(|| (next_seq, head - 1))
}

impl Subscription {
    /// Whether the held-back events of this subscription are exempt from
    /// the lag policy (a conflated stateful channel needs only its head).
    pub(super) fn lag_exempt(&self) -> bool {
        self.conflation.is_some() && self.channel().stateful
    }
}

impl Session {
    /// Sets the conflation of the subscription at `i` to `conflate_ms`
    /// (0 = off), keeping the session's counts true.
    pub(super) fn set_conflation(&mut self, i: usize, conflate_ms: u32, now_ns: i64) {
        let sub = &mut self.subs[i];
        match (&mut sub.conflation, conflate_ms) {
            (None, 0) => {}
            (Some(_), 0) => {
                sub.conflation = None;
                self.conflated -= 1;
            }
            (Some(c), ms) => c.retime(ms, now_ns),
            (None, ms) => {
                sub.conflation = Some(Conflation::new(ms, now_ns));
                self.conflated += 1;
            }
        }
        if let Some(c) = &self.subs[i].conflation {
            self.conflation_allowance_ns = self.conflation_allowance_ns.max(c.interval_ns());
        }
    }

    /// When the connection must wake for its conflated subscriptions at
    /// `now_ns`: the earliest due time of one with events pending or with
    /// its next tick still ahead (a busy channel just served: its next
    /// events will be due then, so the doorbell need not wake the
    /// connection for them meanwhile). `None` when every conflated
    /// subscription is idle past its tick: the doorbell announces the next
    /// event, delivered at once.
    ///
    /// hot path (every loop of the connection): a counter check for a
    /// session without conflated subscriptions.
    pub fn conflation_wake_ns(&self, now_ns: i64) -> Option<i64> {
        if self.conflated == 0 {
            return None;
        }
        self.subs
            .iter()
            .filter_map(|s| s.conflation.as_ref().map(|c| (s, c)))
            .filter(|(s, c)| c.due_ns() > now_ns || s.cursor.has_new())
            .map(|(_, c)| c.due_ns())
            .min()
    }

    /// Whether the doorbell may wait for the conflation timer: every
    /// subscription and every pattern of the session is conflated, so no
    /// event can be due before [`Session::conflation_wake_ns`].
    pub fn events_deferred(&self) -> bool {
        self.conflated > 0
            && self.conflated == self.subs.len()
            && self.pattern_conflate_ms.iter().all(|&ms| ms > 0)
    }

    /// How much older than `--max-lag-age` an event may be when written:
    /// the longest conflation interval the connection has held (0 without
    /// conflation; kept until the last conflated subscription goes).
    pub fn conflation_allowance_ns(&self) -> i64 {
        if self.conflated == 0 {
            0
        } else {
            self.conflation_allowance_ns
        }
    }

    /// Reads what the subscriptions have due into `out` (at most `max`
    /// frames in all) when some are conflated: live ones as usual, due
    /// conflated ones per their [`Plan`]. Indices of subscriptions overrun
    /// by their ring go to `behind`.
    ///
    /// hot path (connections with conflated subscriptions): per channel an
    /// atomic load; a fold takes the channel's lock once for its shared
    /// snapshot and encodes one small `conflated` frame for this client.
    pub(super) fn read_with_conflation(
        &mut self,
        out: &mut Vec<Outbound>,
        max: usize,
        now_ns: i64,
        behind: &mut Vec<usize>,
    ) {
        let mut events: Vec<Arc<Encoded>> = std::mem::take(&mut self.scratch);
        let hub = &self.ctx.hub;
        let format = self.format;
        // counted once per drain, not per fold (a shared cache line)
        let mut folds = 0;
        for (i, sub) in self.subs.iter_mut().enumerate() {
            if !sub.cursor.has_new() {
                continue;
            }
            let room = max.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            let Some(c) = &sub.conflation else {
                Self::read_sub(sub, i, room, &mut events, out, behind);
                continue;
            };
            let stateful = sub.channel().stateful;
            let plan = c.plan(now_ns, stateful, sub.cursor.backlog_events());
            if plan == Plan::Wait {
                continue;
            }
            // a book: the tick's state shared by its interval's subscribers,
            // as one update from where they all are (`feed::fold`)
            let since = sub.cursor.next_seq() - 1;
            let fold = if sub.channel().kind == ChannelKind::Book {
                hub.fold_book(sub.channel(), c.interval_ms(), c.tick(), since)
            } else {
                None
            };
            let complete = match (fold, plan) {
                (Some(BookFold::Nothing), _) => true, // its next tick brings the rest
                (Some(BookFold::Deliver { .. }), _) if room < 2 => break,
                (Some(BookFold::Deliver { seq, event, .. }), _) => {
                    if let Some((first_seq, last_seq)) = skipped_range(since + 1, seq) {
                        let m = ServerMessage {
                            kind: Some(server_message::Kind::Conflated(Conflated {
                                channel: sub.channel().name.to_string(),
                                first_seq,
                                last_seq,
                            })),
                        };
                        out.push(Outbound::Control(control_frame(
                            &m,
                            format,
                            hub.gzip_threshold(),
                        )));
                        folds += 1;
                    }
                    sub.cursor.skip_to(seq);
                    out.push(Outbound::Event(event));
                    true
                }
                (None, Plan::Wait) => continue,
                (None, Plan::Fold) if room < 2 => break, // the timer brings it back
                (None, Plan::Fold) => {
                    let pos = hub.position(sub.channel());
                    match pos.snapshot {
                        Some(state) if pos.seq >= sub.cursor.next_seq() => {
                            let first = sub.cursor.next_seq();
                            sub.cursor.skip_to(pos.seq);
                            if let Some((first_seq, last_seq)) = skipped_range(first, pos.seq) {
                                let m = ServerMessage {
                                    kind: Some(server_message::Kind::Conflated(Conflated {
                                        channel: sub.channel().name.to_string(),
                                        first_seq,
                                        last_seq,
                                    })),
                                };
                                let frame = control_frame(&m, format, hub.gzip_threshold());
                                out.push(Outbound::Control(frame));
                                folds += 1;
                            }
                            out.push(Outbound::Event(state));
                            true
                        }
                        // no state to fold into (not for a channel with
                        // events): delivered as to a live subscriber
                        _ => Self::read_sub(sub, i, room, &mut events, out, behind),
                    }
                }
                // a stateful channel's single pending event, not more: what
                // arrived since is for the next interval
                (None, Plan::Read) if stateful => {
                    Self::read_sub(sub, i, 1, &mut events, out, behind)
                }
                // a stateless backlog cut by the batch's room stays due
                (None, Plan::Read) => {
                    let before = out.len();
                    Self::read_sub(sub, i, room, &mut events, out, behind)
                        && out.len() - before < room
                }
            };
            if complete && let Some(c) = &mut sub.conflation {
                c.delivered(now_ns);
            }
        }
        self.scratch = events;
        if folds > 0 {
            self.ctx
                .metrics
                .conflated_sent
                .fetch_add(folds, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Reads up to `max` events of `sub` into `out` (through `events`, the
    /// reused scratch); records an overrun in `behind`. `false` when the
    /// ring no longer held the cursor.
    fn read_sub(
        sub: &mut Subscription,
        i: usize,
        max: usize,
        events: &mut Vec<Arc<Encoded>>,
        out: &mut Vec<Outbound>,
        behind: &mut Vec<usize>,
    ) -> bool {
        if let ReadOutcome::Behind { .. } = sub.cursor.read(max, events) {
            behind.push(i);
            return false;
        }
        out.extend(events.drain(..).map(Outbound::Event));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_off_or_within_its_bounds() {
        assert!(valid_conflate_ms(0));
        assert!(valid_conflate_ms(10));
        assert!(valid_conflate_ms(60_000));
        assert!(!valid_conflate_ms(9));
        assert!(!valid_conflate_ms(60_001));
        assert!(!valid_conflate_ms(u32::MAX));
    }

    #[test]
    fn nothing_is_due_before_the_interval_or_without_events() {
        let c = Conflation::new(100, 1_000);
        assert_eq!(c.due_ns(), 100_000_000, "the next tick of the 100 ms grid");
        assert_eq!(c.tick(), 1);
        assert_eq!(c.interval_ms(), 100);
        assert_eq!(c.plan(c.due_ns() - 1, true, 5), Plan::Wait);
        assert_eq!(c.plan(c.due_ns(), true, 0), Plan::Wait);
        assert_eq!(c.plan(c.due_ns(), false, 0), Plan::Wait);
    }

    #[test]
    fn stateful_channels_fold_more_than_one_event_stateless_ones_never() {
        let c = Conflation::new(100, 0);
        let due = c.due_ns();
        assert_eq!(c.plan(due, true, 1), Plan::Read, "one update as is");
        assert_eq!(c.plan(due, true, 2), Plan::Fold);
        assert_eq!(c.plan(due, true, 10_000), Plan::Fold);
        assert_eq!(c.plan(due, false, 1), Plan::Read);
        assert_eq!(c.plan(due, false, 10_000), Plan::Read, "trades: all");
    }

    #[test]
    fn a_delivery_moves_the_due_time_to_the_next_tick() {
        let mut c = Conflation::new(50, 0);
        assert_eq!(c.due_ns(), 50_000_000, "0 is a tick: the next one");
        c.delivered(70_000_000);
        assert_eq!(c.due_ns(), 100_000_000);
        assert_eq!(c.plan(99_999_999, true, 3), Plan::Wait);
        c.delivered(100_000_000);
        assert_eq!(c.due_ns(), 150_000_000, "one interval after a tick");
        // a shorter interval takes effect at once, a longer one after the
        // delivery already due
        c.retime(10, 101_000_000);
        assert_eq!(c.due_ns(), 110_000_000);
        c.retime(1000, 101_000_000);
        assert_eq!(c.due_ns(), 110_000_000);
        assert_eq!(c.interval_ns(), 1_000_000_000);
    }

    #[test]
    fn the_skipped_range_ends_just_before_the_delivered_head() {
        assert_eq!(skipped_range(5, 5), None, "the head is the next event");
        assert_eq!(skipped_range(5, 6), Some((5, 5)));
        assert_eq!(skipped_range(5, 9), Some((5, 8)));
    }
}
