//! In-band lag probes: how far behind a client really is.
//!
//! Kernel buffers on both ends (the server's send buffer, and the client's
//! receive buffer, which autotuning grows to several MiB) accept a slow
//! reader's backlog long before the server's own queues see it: the client
//! then reads data that is seconds old while the server believes it keeps
//! up. A WebSocket ping is answered only once the client has *read*
//! everything sent before it, so a ping's round trip measures the client's
//! true position. While events flow, each connection keeps one probe (a
//! ping whose payload is its send time, sent ahead of events) in flight, at
//! most every `--max-lag-age`/4:
//!
//! - unanswered for `--max-lag-age`/4, or once more bytes were written
//!   after it than the client has been reading in that time: events are
//!   held back (replies and control frames still go), so the backlog builds
//!   in the server's rings, where it is measured and skipped with `lagged`,
//!   instead of piling up in buffers;
//! - held back for `--max-lag-age`: the slow-consumer policy applies
//!   (`lagged` + snapshots, or 4008), once per `--max-lag-age`;
//! - unanswered for `--write-timeout`: the client is not reading (or does
//!   not answer pings, which RFC 6455 requires) and is closed with 4008.
//!
//! A pure state machine over nanosecond timestamps: the connection feeds it
//! the clock, sends its pings and obeys its verdicts.

use std::time::Duration;

use bytes::Bytes;

use crate::protocol::ws::frame::{OP_PING, frame};

/// What the connection should do about events now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write events as usual.
    Flow,
    /// Hold events back; write only control frames.
    Hold,
    /// Hold events back and apply the slow-consumer policy now.
    Resync,
    /// The client has not read for `--write-timeout`: close it (4008).
    NotReading,
}

/// One connection's probe state.
#[derive(Debug)]
pub(crate) struct LagProbe {
    interval_ns: i64,
    hold_ns: i64,
    resync_ns: i64,
    give_up_ns: i64,
    /// Send time (and payload) of the probe in flight.
    outstanding: Option<i64>,
    last_sent_ns: i64,
    /// When the policy was last applied during the current hold.
    resynced_at: Option<i64>,
    /// Bytes and frames written to the client so far.
    written: u64,
    frames: u64,
    /// `written` when the probe in flight was sent.
    probe_written: u64,
    /// What the client had confirmed reading at the last answer (or the
    /// connection's start), and when.
    confirmed: Option<(u64, i64)>,
    /// Bytes that may follow a probe before events are held back: what the
    /// client reads in `--max-lag-age`/4 at its measured pace.
    window: u64,
}

/// The smallest window: never hold back less than this after a probe.
const MIN_WINDOW: u64 = 16 << 10;
/// The window before the client's pace is known.
const INITIAL_WINDOW: u64 = 64 << 10;

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl LagProbe {
    /// Probes paced by `max_lag_age` (zero disables them) for a connection
    /// opened at `now_ns`; a probe unanswered for `not_reading` means the
    /// client stopped reading.
    pub(crate) fn new(max_lag_age: Duration, not_reading: Duration, now_ns: i64) -> Self {
        let age = ns(max_lag_age);
        Self {
            interval_ns: age / 4,
            hold_ns: age / 4,
            resync_ns: age,
            give_up_ns: ns(not_reading).max(age),
            outstanding: None,
            last_sent_ns: i64::MIN / 2,
            resynced_at: None,
            written: 0,
            frames: 0,
            probe_written: 0,
            confirmed: Some((0, now_ns)),
            window: INITIAL_WINDOW,
        }
    }

    fn enabled(&self) -> bool {
        self.resync_ns > 0
    }

    /// Counts bytes and frames written to the client.
    pub(crate) fn written(&mut self, bytes: u64, frames: u64) {
        self.written += bytes;
        self.frames += frames;
    }

    /// How many frames the next batch may hold (at most `max`): about what
    /// is left of the window after the probe in flight, at the average
    /// frame size seen so far.
    pub(crate) fn batch_limit(&self, max: usize) -> usize {
        if self.outstanding.is_none() {
            return max;
        }
        let left = self
            .window
            .saturating_sub(self.written - self.probe_written);
        let frame = self.written.checked_div(self.frames).unwrap_or(256).max(1);
        usize::try_from(left / frame).unwrap_or(max).clamp(1, max)
    }

    /// Before events are written: a new probe (a ping frame, to go out
    /// ahead of them) when none is in flight and the last one is an
    /// interval old.
    pub(crate) fn before_events(&mut self, now_ns: i64) -> Option<Bytes> {
        if !self.enabled()
            || self.outstanding.is_some()
            || now_ns - self.last_sent_ns < self.interval_ns
        {
            return None;
        }
        self.outstanding = Some(now_ns);
        self.last_sent_ns = now_ns;
        self.probe_written = self.written;
        Some(frame(OP_PING, &now_ns.to_be_bytes()))
    }

    /// A pong arrived at `now_ns`: the client has read everything sent
    /// before the probe it answers (other pongs, e.g. to heartbeats, are
    /// ignored). Its pace since the previous answer sizes the window.
    pub(crate) fn on_pong(&mut self, payload: &[u8], now_ns: i64) {
        let Some(sent) = self.outstanding else {
            return;
        };
        if payload != sent.to_be_bytes() {
            return;
        }
        if let Some((bytes, at)) = self.confirmed
            && now_ns > at
        {
            let per_ns = (self.probe_written - bytes) as f64 / (now_ns - at) as f64;
            self.window = ((per_ns * self.hold_ns as f64) as u64).max(MIN_WINDOW);
        }
        self.confirmed = Some((self.probe_written, now_ns));
        self.outstanding = None;
        self.resynced_at = None;
    }

    /// Whether events are held back at `now_ns` (no state change).
    pub(crate) fn holding(&self, now_ns: i64) -> bool {
        self.outstanding.is_some_and(|sent| {
            now_ns - sent >= self.hold_ns || self.written - self.probe_written >= self.window
        })
    }

    /// What to do about events at `now_ns`.
    pub(crate) fn verdict(&mut self, now_ns: i64) -> Verdict {
        let Some(sent) = self.outstanding else {
            return Verdict::Flow;
        };
        let age = now_ns - sent;
        if age >= self.give_up_ns {
            return Verdict::NotReading;
        }
        if !self.holding(now_ns) {
            return Verdict::Flow;
        }
        let since = self.resynced_at.unwrap_or(sent + self.hold_ns);
        if now_ns - since >= self.resync_ns {
            self.resynced_at = Some(now_ns);
            return Verdict::Resync;
        }
        Verdict::Hold
    }

    /// When, after `now_ns`, the verdict next changes by itself (`None`:
    /// only a pong or new events change it).
    pub(crate) fn next_change_ns(&self, now_ns: i64) -> Option<i64> {
        let sent = self.outstanding?;
        let hold_at = sent + self.hold_ns;
        if now_ns < hold_at {
            return Some(hold_at);
        }
        let resync_at = self.resynced_at.unwrap_or(hold_at) + self.resync_ns;
        Some(resync_at.min(sent + self.give_up_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    impl LagProbe {
        fn written_test(&mut self, bytes: u64) {
            self.written(bytes, 1);
        }
    }

    fn probe() -> LagProbe {
        LagProbe::new(Duration::from_secs(2), Duration::from_secs(10), 0)
    }

    fn payload(f: &Bytes) -> Vec<u8> {
        f[2..].to_vec() // unmasked, short: 2 header bytes
    }

    #[test]
    fn an_answered_probe_keeps_events_flowing() {
        let mut p = probe();
        let ping = p.before_events(0).expect("first probe");
        assert_eq!(ping[0] & 0x0f, OP_PING);
        assert!(p.before_events(10 * MS).is_none(), "one in flight");
        assert_eq!(p.verdict(100 * MS), Verdict::Flow);
        p.on_pong(b"", 20 * MS);
        assert!(
            p.outstanding.is_some(),
            "a heartbeat pong is not the probe's"
        );
        p.on_pong(&payload(&ping), 20 * MS);
        assert_eq!(p.verdict(5_000 * MS), Verdict::Flow);
        assert!(p.before_events(400 * MS).is_none(), "paced");
        assert!(p.before_events(500 * MS).is_some());
    }

    #[test]
    fn an_unanswered_probe_holds_then_resyncs_once_per_age_then_closes() {
        let mut p = probe();
        p.before_events(0).expect("probe");
        assert_eq!(p.next_change_ns(0), Some(500 * MS));
        assert_eq!(p.verdict(499 * MS), Verdict::Flow);
        assert_eq!(p.verdict(500 * MS), Verdict::Hold);
        assert!(p.holding(500 * MS));
        assert_eq!(p.next_change_ns(500 * MS), Some(2_500 * MS));
        assert_eq!(p.verdict(2_499 * MS), Verdict::Hold);
        assert_eq!(p.verdict(2_500 * MS), Verdict::Resync);
        assert_eq!(p.verdict(2_600 * MS), Verdict::Hold, "once per age");
        assert_eq!(p.next_change_ns(2_600 * MS), Some(4_500 * MS));
        assert_eq!(p.verdict(4_500 * MS), Verdict::Resync);
        assert_eq!(p.verdict(10_000 * MS), Verdict::NotReading);
    }

    #[test]
    fn bytes_beyond_the_measured_pace_are_held_back() {
        let mut p = probe();
        p.written_test(70 << 10);
        let ping = p.before_events(0).expect("probe");
        p.written_test(60 << 10); // no pace known yet: the initial window
        assert!(!p.holding(MS));
        p.written_test(10 << 10);
        assert!(p.holding(MS));
        // the answer at 1 s: the 70 KiB before the probe read in 1 s since
        // the start, so about 35 KiB per 500 ms
        p.on_pong(&payload(&ping), 1_000 * MS);
        let w = p.window;
        assert!(w > 30 << 10 && w < 40 << 10, "{w}");
        p.before_events(2_000 * MS).expect("probe");
        p.written_test(w - 1);
        assert!(!p.holding(2_001 * MS));
        p.written_test(1);
        assert!(p.holding(2_001 * MS), "over the window");
        assert_eq!(p.verdict(2_001 * MS), Verdict::Hold);
    }

    #[test]
    fn zero_age_disables_probes() {
        let mut p = LagProbe::new(Duration::ZERO, Duration::from_secs(10), 0);
        assert!(p.before_events(0).is_none());
        assert_eq!(p.verdict(60_000 * MS), Verdict::Flow);
        assert_eq!(p.next_change_ns(0), None);
    }
}
