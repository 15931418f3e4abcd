//! Admission and request-rate limits: how many connections the server (and
//! one client address) may hold, and how fast one connection may send
//! requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` reached (HTTP 503).
    ServerFull,
    /// `--max-connections-per-ip` reached for this address (HTTP 429).
    AddressFull,
}

/// Counts admitted connections, server-wide and per client address.
#[derive(Debug, Default)]
pub struct Admission {
    total: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// Holds one admitted connection's place; released on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Admits a connection from `ip` unless a limit (0 = none) is reached.
    /// Cold path: once per connection.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: u64,
        max_per_ip: u32,
    ) -> Result<Ticket, Refusal> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        if max_total > 0 && before >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::ServerFull);
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_default();
        if max_per_ip > 0 && *n >= max_per_ip {
            drop(per_ip);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::AddressFull);
        }
        *n += 1;
        Ok(Ticket {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections admitted now.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.total.fetch_sub(1, Ordering::AcqRel);
        let mut per_ip = self
            .admission
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// What the rate limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allow,
    /// Refuse this request with RATE_LIMITED.
    Refuse,
    /// Refused for too long: close with 4029.
    Close,
}

type Bucket<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Work units a request costs beyond its first (see [`RequestLimiter`]):
/// one unit per this many channel names it carries...
pub const NAMES_PER_UNIT: u64 = 16;
/// ...per this many channels examined (pattern expansion, listings)...
pub const CHANNELS_PER_UNIT: u64 = 4096;
/// ...and per this many bytes of answer queued for the client.
pub const ANSWER_BYTES_PER_UNIT: u64 = 16 * 1024;

/// Charges a connection's requests by the work they cause, with the
/// `governor` crate's GCRA bucket: `rate` units per second with a burst of
/// `rate`. Every request costs one unit when it arrives; the work it then
/// caused (names, channels examined, answer bytes; see the `*_PER_UNIT`
/// constants) is owed and paid with the next request, so one heavy request
/// delays the next ones as many light ones would.
///
/// Refused requests count as strikes that fade at the same rate; more than
/// `rate` outstanding strikes (a client that kept sending at more than
/// twice the limit for a second) closes the connection.
///
/// Replaces a hand-written token bucket (issue 18): `check_n` does the same
/// arithmetic, and the GCRA state is one atomic word.
pub struct RequestLimiter<C: Clock = DefaultClock> {
    /// `None` when limiting is off (`rate` 0).
    limits: Option<(Bucket<C>, Bucket<C>)>,
    burst: u32,
    /// Units owed by earlier requests, charged with the next one.
    debt: u64,
}

impl<C: Clock> std::fmt::Debug for RequestLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLimiter")
            .field("burst", &self.burst)
            .field("debt", &self.debt)
            .finish_non_exhaustive()
    }
}

impl RequestLimiter {
    /// A full bucket; `rate` 0 disables limiting.
    pub fn new(rate: u32) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RequestLimiter<C> {
    /// A full bucket that reads time from `clock`.
    pub fn with_clock(rate: u32, clock: C) -> Self {
        let limits = NonZeroU32::new(rate).map(|r| {
            let quota = Quota::per_second(r);
            (
                governor::RateLimiter::direct_with_clock(quota, clock.clone()),
                governor::RateLimiter::direct_with_clock(quota, clock),
            )
        });
        Self {
            limits,
            burst: rate,
            debt: 0,
        }
    }

    /// Decides about one request arriving now: it pays one unit and
    /// whatever earlier requests still owe (at most a full burst).
    pub fn admit(&mut self) -> RateDecision {
        let Some((bucket, strikes)) = &self.limits else {
            return RateDecision::Allow;
        };
        let cost = (1 + self.debt).min(u64::from(self.burst)) as u32;
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        if let Ok(Ok(())) = bucket.check_n(cost) {
            self.debt = 0;
            return RateDecision::Allow;
        }
        match strikes.check() {
            Ok(()) => RateDecision::Refuse,
            Err(_) => RateDecision::Close,
        }
    }

    /// Records work an admitted request caused beyond its first unit.
    pub fn charge(&mut self, units: u64) {
        self.debt = self.debt.saturating_add(units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn fake(rate: u32) -> (RequestLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RequestLimiter::with_clock(rate, clock.clone()), clock)
    }

    #[test]
    fn bucket_allows_burst_then_refuses_then_closes() {
        let (mut rl, _clock) = fake(10);
        for _ in 0..10 {
            assert_eq!(rl.admit(), RateDecision::Allow);
        }
        for _ in 0..10 {
            assert_eq!(rl.admit(), RateDecision::Refuse);
        }
        assert_eq!(rl.admit(), RateDecision::Close);
    }

    #[test]
    fn bucket_refills_over_time() {
        let (mut rl, clock) = fake(10);
        for _ in 0..10 {
            rl.admit();
        }
        assert_eq!(rl.admit(), RateDecision::Refuse);
        // 0.5 s later: 5 units back
        clock.advance(Duration::from_millis(500));
        for _ in 0..5 {
            assert_eq!(rl.admit(), RateDecision::Allow);
        }
        assert_eq!(rl.admit(), RateDecision::Refuse);
        // a steady client at the limit is never refused
        let (mut rl, clock) = fake(10);
        for _ in 0..100 {
            assert_eq!(rl.admit(), RateDecision::Allow);
            clock.advance(Duration::from_millis(100));
        }
        assert_eq!(RequestLimiter::new(0).admit(), RateDecision::Allow);
    }

    #[test]
    fn heavy_requests_pay_for_their_work() {
        let (mut rl, clock) = fake(10);
        assert_eq!(rl.admit(), RateDecision::Allow);
        rl.charge(9); // the first request did the work of 10
        assert_eq!(rl.admit(), RateDecision::Refuse, "9 owed + 1 > the 9 left");
        clock.advance(Duration::from_millis(800));
        assert_eq!(rl.admit(), RateDecision::Allow, "paid after refill");
        // a debt larger than the burst costs one full bucket, not forever
        rl.charge(1_000_000);
        clock.advance(Duration::from_secs(1));
        assert_eq!(rl.admit(), RateDecision::Allow);
        assert_eq!(rl.admit(), RateDecision::Refuse);
    }

    #[test]
    fn admission_counts_per_address_and_releases() {
        let a = Arc::new(Admission::default());
        let ip1: IpAddr = "127.0.0.2".parse().unwrap();
        let ip2: IpAddr = "127.0.0.3".parse().unwrap();
        let t1 = a.admit(ip1, 3, 2).unwrap();
        let _t2 = a.admit(ip1, 3, 2).unwrap();
        assert_eq!(a.admit(ip1, 3, 2).unwrap_err(), Refusal::AddressFull);
        let _t3 = a.admit(ip2, 3, 2).unwrap();
        assert_eq!(a.admit(ip2, 3, 2).unwrap_err(), Refusal::ServerFull);
        assert_eq!(a.total(), 3);
        drop(t1);
        assert_eq!(a.total(), 2);
        assert!(a.admit(ip1, 3, 2).is_ok());
        assert!(a.admit(ip1, 0, 0).is_ok(), "0 means no limit");
    }
}
