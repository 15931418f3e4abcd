//! Reconnect delays: exponential backoff with full jitter, capped, and
//! forgotten once a connection has stayed up for a while (AWS's "full
//! jitter": sleep a uniform random time in `[0, min(cap, base * 2^n)]`, so
//! that many clients dropped at once do not come back in lockstep).
//!
//! Kept hand-written rather than `backon` (1.6): backon's jitter adds a
//! random `[0, d)` to the delay `d`, so delays land in `[d, 2d)`: never
//! below the exponential ceiling (no full jitter) and up to twice
//! `--reconnect-max`. Its builders also own the retry loop, while a
//! connector needs the current ceiling for `/health` (`backoff_ms`) and a
//! reset after a stable connection; what would be left to reuse is the
//! one-line `min(cap, base * 2^n)` below.

use std::time::Duration;

use rand::Rng;

/// Backoff state of one source.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Connections that lasted this long reset the attempt count.
    stable_after: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays grow from `base` up to `cap`.
    pub fn new(base: Duration, cap: Duration, stable_after: Duration) -> Self {
        Self {
            base,
            cap,
            stable_after,
            attempt: 0,
        }
    }

    /// Failed attempts since the last stable connection.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Records a failure after a connection that lasted `uptime`, and returns
    /// how long to wait before the next attempt.
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.stable_after {
            self.attempt = 0;
        }
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset_after_a_stable_connection() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling());
            let d = b.next_delay(Duration::ZERO);
            assert!(d <= *ceilings.last().unwrap());
        }
        assert_eq!(ceilings[0], Duration::from_millis(100));
        assert_eq!(ceilings[1], Duration::from_millis(200));
        assert_eq!(ceilings[5], Duration::from_millis(3200));
        assert_eq!(ceilings[9], Duration::from_secs(5), "capped");
        assert_eq!(b.attempt(), 10);
        b.next_delay(Duration::from_secs(61));
        assert_eq!(b.attempt(), 1, "a stable connection resets the count");
    }

    #[test]
    fn jitter_spreads_delays_over_the_whole_range() {
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..200 {
            let mut b = Backoff::new(
                Duration::from_secs(1),
                Duration::from_secs(1),
                Duration::MAX,
            );
            let d = b.next_delay(Duration::ZERO);
            seen_low |= d < Duration::from_millis(250);
            seen_high |= d > Duration::from_millis(750);
        }
        assert!(seen_low && seen_high);
    }
}
