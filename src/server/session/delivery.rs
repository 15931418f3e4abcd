//! Delivery: what a session writes next. Its queued control frames, then
//! its channels' events read through its cursors (`feed::cursor`) into the
//! connection's outbound batch, new channels its patterns cover, and the
//! slow-consumer policy when it falls behind (the policy as a whole is
//! described in `feed/cursor.rs`).

use std::sync::Arc;

use super::{CloseRequest, Outbound, Session};
use crate::feed::{Encoded, LagBounds, ReadOutcome};
use crate::metrics::inc;
use crate::protocol::now_ns;
use crate::protocol::pb::{self, ErrorCode, Lagged, server_message};
use crate::server::SlowConsumerPolicy;

use super::msg;

impl Session {
    /// Queues snapshot events (after the answer that announced them).
    pub(super) fn queue_snapshots(&mut self, snapshots: Vec<Arc<Encoded>>) {
        for snap in snapshots {
            let frame = snap.frame(self.format, &self.ctx.metrics).clone();
            self.enqueue(frame);
        }
    }

    /// Subscribes to channels created since the last look that a pattern
    /// covers, from their first event.
    fn adopt_new_channels(&mut self) {
        // hot path (every drain): one atomic load, no shared refcount touch
        if self.patterns.is_empty() || self.ctx.hub.registry().count() <= self.channels_seen {
            return;
        }
        let (fresh, seen) = self.ctx.hub.registry().since(self.channels_seen);
        self.channels_seen = seen;
        let mut snapshots = Vec::new();
        for channel in fresh {
            if self.index.contains_key(&channel.id) {
                continue;
            }
            // the first of the patterns that covers it sets its rate
            let Some(at) = self.patterns.iter().position(|p| p.matches(&channel.name)) else {
                continue;
            };
            let conflate_ms = self.pattern_conflate_ms[at];
            // A new channel is followed from seq 1 when its ring still
            // holds it; otherwise from a snapshot, as on subscribe.
            let from_start = pb::ResumePosition {
                seq: 0,
                epoch: self.ctx.hub.epoch().to_string(),
            };
            if self
                .add(
                    &channel,
                    false,
                    Some(&from_start),
                    true,
                    conflate_ms,
                    &mut snapshots,
                )
                .is_none()
            {
                let limit = self.ctx.config.max_subscriptions;
                let name = &channel.name;
                self.error(
                    0,
                    ErrorCode::TooManySubscriptions,
                    format!("{name}: a connection may hold at most {limit} subscriptions"),
                    name,
                );
                break;
            }
        }
        self.queue_snapshots(snapshots);
    }

    /// Moves the frames now due into `out` (at most `max`): control frames
    /// first, then events in per-channel seq order. A connection past its lag
    /// bound is resynchronised (`lagged` + snapshot per lagging channel) or,
    /// with `--slow-consumer close`, gets a close request (4008).
    ///
    /// Conflated subscriptions (`conflation.rs`) deliver only when due.
    ///
    /// hot path: per subscribed channel one lock-free "anything new?" check,
    /// then `Arc` clones of the shared events; nothing is encoded or copied.
    pub fn collect(&mut self, out: &mut Vec<Outbound>, max: usize) -> Result<(), CloseRequest> {
        // the clock is read only by sessions that conflate
        let now = if self.conflated > 0 { now_ns() } else { 0 };
        self.collect_at(out, max, now)
    }

    /// [`Session::collect`] at the time `now_ns` (which only conflated
    /// subscriptions look at).
    pub(super) fn collect_at(
        &mut self,
        out: &mut Vec<Outbound>,
        max: usize,
        now_ns: i64,
    ) -> Result<(), CloseRequest> {
        self.adopt_new_channels();
        // Lag is settled before control frames go out, so a `lagged` and its
        // snapshot always precede the channel's newer events.
        if self.over_lag_bound() {
            self.fell_behind(None)?;
        }
        if self.overflowed {
            inc(&self.ctx.metrics.slow_consumer_closes);
            return Err(CloseRequest {
                code: crate::protocol::close::SLOW_CONSUMER,
                reason: "slow consumer: answers not read",
            });
        }
        while out.len() < max {
            let Some(frame) = self.control.pop_front() else {
                break;
            };
            self.control_bytes -= frame.len() as u64;
            out.push(Outbound::Control(frame));
        }
        let mut behind = Vec::new();
        if self.conflated > 0 {
            self.read_with_conflation(out, max, now_ns, &mut behind);
            if self.rearm_live() {
                self.bell.ring();
            }
            for i in behind {
                self.fell_behind(Some(i))?;
            }
            return Ok(());
        }
        let mut events = std::mem::take(&mut self.scratch);
        let mut look_again = false;
        for (i, sub) in self.subs.iter_mut().enumerate() {
            if sub.cursor.has_new() {
                let room = max.saturating_sub(out.len() + events.len());
                if room == 0 {
                    break;
                }
                if let ReadOutcome::Behind { .. } = sub.cursor.read(room, &mut events) {
                    behind.push(i);
                }
            }
            // Woken (or read past what woke it): armed again, then one more
            // look, since an event published before the arm rang nobody
            // (`feed/armed.rs`). `rearm_live` does the same for conflating
            // sessions; here it rides the read's pass (hot path: one pass
            // over the subscriptions per drain, not two).
            if !sub.arm.is_armed() {
                sub.cursor.channel().rearm(&sub.arm);
                look_again |= sub.cursor.has_new();
            }
        }
        if look_again {
            // the next drain reads it (the connection's loop comes back)
            self.bell.ring();
        }
        out.extend(events.drain(..).map(Outbound::Event));
        self.scratch = events;
        for i in behind {
            // its frames go out on the next drain, before its newer events
            self.fell_behind(Some(i))?;
        }
        Ok(())
    }

    /// Arms again every live subscription a publish woke (`feed/armed.rs`)
    /// and says whether one of them has an event the read before missed.
    /// Conflated subscriptions stay unarmed: their timer, not their
    /// channel, says when they are due, so their events cost no wake-up.
    fn rearm_live(&mut self) -> bool {
        let mut look_again = false;
        for sub in &self.subs {
            if sub.conflation.is_none() && !sub.arm.is_armed() {
                sub.cursor.channel().rearm(&sub.arm);
                look_again |= sub.cursor.has_new();
            }
        }
        look_again
    }

    /// Moves only the queued control frames (replies, errors) into `out`, at
    /// most `max`: what a connection about to close still owes the client.
    pub fn collect_control(&mut self, out: &mut Vec<Outbound>, max: usize) {
        while out.len() < max {
            let Some(frame) = self.control.pop_front() else {
                break;
            };
            out.push(Outbound::Control(frame));
        }
    }

    /// Applies the slow-consumer policy now (the connection found itself
    /// too far behind in time): `lagged` and a snapshot for every channel
    /// with a backlog, or a 4008 close request.
    pub fn resync_lagging(&mut self) -> Result<(), CloseRequest> {
        self.fell_behind(None)
    }

    /// Whether the events (or bytes) not yet taken from the channels' rings
    /// exceed the configured bound (`--max-lag-messages`, `--max-lag-bytes`).
    fn over_lag_bound(&self) -> bool {
        let cfg = &self.ctx.config;
        LagBounds {
            max_messages: cfg.max_lag_messages,
            max_bytes: cfg.max_lag_bytes,
        }
        .exceeded(
            self.subs
                .iter()
                .filter(|s| !s.lag_exempt())
                .map(|s| &s.cursor),
        )
    }

    /// Applies the slow-consumer policy to one channel (`Some(i)`, it fell
    /// out of its ring) or to every channel with a backlog.
    fn fell_behind(&mut self, only: Option<usize>) -> Result<(), CloseRequest> {
        if self.ctx.config.slow_consumer == SlowConsumerPolicy::Close {
            inc(&self.ctx.metrics.slow_consumer_closes);
            return Err(CloseRequest {
                code: crate::protocol::close::SLOW_CONSUMER,
                reason: "slow consumer: fell too far behind",
            });
        }
        let lagging: Vec<usize> = match only {
            Some(i) => vec![i],
            // a conflated stateful channel gets its head at its interval
            None => (0..self.subs.len())
                .filter(|&i| self.subs[i].cursor.has_new() && !self.subs[i].lag_exempt())
                .collect(),
        };
        for i in lagging {
            let channel = self.subs[i].channel().clone();
            let pos = self.ctx.hub.position(&channel);
            let first_seq = self.subs[i].cursor.skip_to(pos.seq);
            inc(&self.ctx.metrics.lagged_sent);
            self.push(msg(server_message::Kind::Lagged(Lagged {
                channel: channel.name.to_string(),
                first_seq,
                last_seq: pos.seq,
            })));
            if let Some(snap) = pos.snapshot {
                let frame = snap.frame(self.format, &self.ctx.metrics).clone();
                self.enqueue(frame);
            }
        }
        Ok(())
    }
}
