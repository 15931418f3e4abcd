//! Per-book staleness: a book that has been busy and then goes silent for
//! `--stale-after` while its connection still carries other data is
//! rebuilt, since the venue may have stopped sending it alone. Quiet books
//! (illiquid markets, OKX's 60 s keepalives) are left alone: a book counts
//! as busy when it got at least [`BUSY_PER_INTERVAL`] messages per
//! stale interval on average since it went live.

use std::time::{Duration, Instant};

/// Messages per stale interval that make a book busy.
pub const BUSY_PER_INTERVAL: f64 = 10.0;

/// The message history of one book since it went live.
#[derive(Debug, Clone, Copy)]
pub struct Activity {
    since: Instant,
    last: Instant,
    messages: u64,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// A book that went live just now.
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            since: now,
            last: now,
            messages: 0,
        }
    }

    /// A message of the book came in.
    pub fn message(&mut self) {
        self.last = Instant::now();
        self.messages += 1;
    }

    /// Whether a busy book has been silent for `stale`.
    pub fn stale(&self, stale: Duration) -> bool {
        let lived = self.since.elapsed();
        if stale.is_zero() || lived < stale {
            return false;
        }
        let busy =
            self.messages as f64 >= BUSY_PER_INTERVAL * lived.as_secs_f64() / stale.as_secs_f64();
        busy && self.last.elapsed() >= stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_book_that_went_silent_is_stale() {
        let stale = Duration::from_secs(1);
        let mut a = Activity::new();
        a.since -= Duration::from_secs(3);
        a.last -= Duration::from_secs(2);
        assert!(!a.stale(stale), "quiet all along: not busy");
        a.messages = 100;
        assert!(a.stale(stale), "busy, then silent for 2 s");
        a.message();
        assert!(!a.stale(stale), "just spoke");
    }
}
