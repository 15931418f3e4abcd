//! Admission and request-rate limits: how many connections the server (and
//! one client address) may hold, and how fast one connection may send
//! requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// A token bucket of `rate` requests per second with a burst of `rate`.
/// Refused requests count as strikes that fade at the same rate; more than
/// `rate` outstanding strikes (a client that kept sending at more than
/// twice the limit for a second) closes the connection.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    tokens: f64,
    strikes: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket; `rate` 0 disables limiting.
    pub fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            strikes: 0.0,
            last: Instant::now(),
        }
    }

    /// Decides about one request arriving at `now`.
    pub fn check(&mut self, now: Instant) -> RateDecision {
        if self.rate <= 0.0 {
            return RateDecision::Allow;
        }
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.last = now;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.strikes = (self.strikes - refill).max(0.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return RateDecision::Allow;
        }
        self.strikes += 1.0;
        if self.strikes > self.rate {
            RateDecision::Close
        } else {
            RateDecision::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refuses_then_closes() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10);
        for _ in 0..10 {
            assert_eq!(rl.check(t0), RateDecision::Allow);
        }
        for _ in 0..10 {
            assert_eq!(rl.check(t0), RateDecision::Refuse);
        }
        assert_eq!(rl.check(t0), RateDecision::Close);
    }

    #[test]
    fn bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10);
        for _ in 0..10 {
            rl.check(t0);
        }
        assert_eq!(rl.check(t0), RateDecision::Refuse);
        // 0.5 s later: 5 tokens back, and the strike has faded
        let t1 = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            assert_eq!(rl.check(t1), RateDecision::Allow);
        }
        assert_eq!(rl.check(t1), RateDecision::Refuse);
        // a steady client at the limit is never refused
        let mut rl = RateLimiter::new(10);
        for i in 0..100 {
            assert_eq!(
                rl.check(t0 + Duration::from_millis(100 * i)),
                RateDecision::Allow
            );
        }
        assert_eq!(RateLimiter::new(0).check(t0), RateDecision::Allow);
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
