//! Server-wide counters behind `/stats` and `/metrics`.
//!
//! Counters are plain relaxed atomics: each is bumped once per event
//! published or once per connection write (not once per message per
//! client), so they stay off the hot path's critical cost. Distributions are
//! `prometheus-client` histograms, observed once per socket write, per
//! connection drain and per published venue event. `/metrics` reads all of
//! it at scrape time (see [`exposition`]).

pub mod exposition;
pub mod process;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

pub use exposition::render_prometheus;

/// Upper bounds of the latency histograms, in seconds: 129 buckets from
/// 10 µs to 2 s, each 1.1 times the last (rounded to 3 significant
/// digits). Fine enough that a quantile Prometheus interpolates inside one
/// bucket is within a few per cent of the exact one: with 1.25x buckets
/// the linear interpolation alone read p50 8-10 % high on a
/// sub-millisecond distribution (tested against the load tester's exact
/// quantiles in `loadtest/tests/metrics_agree.rs`, 10 % allowed). The
/// price is a longer scrape (about 6 KB for this histogram) and a longer
/// bucket search per observation (once per write).
pub fn latency_bounds() -> Vec<f64> {
    (0..129)
        .map(|i| round_sig(10e-6 * 1.1f64.powi(i), 3))
        .collect()
}

/// Upper bounds of the exchange-lag histograms, in seconds: 30 buckets from
/// 100 µs to 42 s, each 1.55 times the last (a venue's lag spans more
/// decades than a local write, and is wanted less finely).
pub fn lag_bounds() -> Vec<f64> {
    (0..30)
        .map(|i| round_sig(100e-6 * 1.55f64.powi(i), 3))
        .collect()
}

const DEPTH_BOUNDS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// `x` rounded to `digits` significant digits, so bucket bounds print as
/// `0.0000153` rather than `1.5258789062500001e-5`.
fn round_sig(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// At most this many venues get their own exchange-lag histogram; events of
/// further venues (publish API users can invent any) share `venue="other"`,
/// so a careless publisher cannot blow up the scrape.
pub const MAX_LAG_VENUES: usize = 32;

/// One exchange-lag histogram per venue (`publish_time - source_time` of
/// every trade, ticker and book event the venue's source published).
#[derive(Debug, Default)]
pub struct VenueLag {
    venues: Mutex<Vec<(String, Histogram)>>,
}

impl VenueLag {
    /// The histogram of `venue`, created on first use. Channels resolve it
    /// once and keep it, so this runs once per channel, not per event.
    pub fn for_venue(&self, venue: &str) -> Histogram {
        let mut venues = self.venues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, h)) = venues.iter().find(|(v, _)| v == venue) {
            return h.clone();
        }
        let name = if venues.len() >= MAX_LAG_VENUES {
            "other"
        } else {
            venue
        };
        if let Some((_, h)) = venues.iter().find(|(v, _)| v == name) {
            return h.clone();
        }
        let h = Histogram::new(lag_bounds());
        venues.push((name.to_string(), h.clone()));
        h
    }

    /// `(venue, histogram)` pairs, in order of first use.
    pub fn snapshot(&self) -> Vec<(String, Histogram)> {
        self.venues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Counters and gauges of one server run.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// WebSocket connections open now.
    pub connections: AtomicU64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Concrete channel subscriptions held by all connections now.
    pub subscriptions: AtomicU64,
    /// Events published by the hub (each counted once).
    pub events_published: AtomicU64,
    /// Messages written to clients (events, snapshots, answers, errors).
    pub messages_delivered: AtomicU64,
    /// Bytes written to clients, frame headers included.
    pub bytes_delivered: AtomicU64,
    /// Messages gzipped (once each, shared by all clients).
    pub gzip_compressed: AtomicU64,
    /// `error` messages sent to clients.
    pub errors_sent: AtomicU64,
    /// Connections closed with 4008 (or dropped after a stalled write)
    /// because they fell behind.
    pub slow_consumer_closes: AtomicU64,
    /// `lagged` messages sent (a channel skipped and resynchronised).
    pub lagged_sent: AtomicU64,
    /// `conflated` messages sent (a conflated subscription's skipped seqs
    /// announced; its state follows).
    pub conflated_sent: AtomicU64,
    /// Frames refused as too big (close 1009).
    pub oversized_frames: AtomicU64,
    /// Connections closed for sending nothing for two heartbeat intervals.
    pub heartbeat_timeouts: AtomicU64,
    /// Seconds from an event's publish to the end of the socket write that
    /// carried it; observed once per write, for the oldest event in it.
    pub write_latency: Histogram,
    /// Frames due when a connection drained (its queue depth at wake-up).
    pub queue_depth: Histogram,
    /// Exchange lag per venue.
    pub exchange_lag: VenueLag,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            events_published: AtomicU64::new(0),
            messages_delivered: AtomicU64::new(0),
            bytes_delivered: AtomicU64::new(0),
            gzip_compressed: AtomicU64::new(0),
            errors_sent: AtomicU64::new(0),
            slow_consumer_closes: AtomicU64::new(0),
            lagged_sent: AtomicU64::new(0),
            conflated_sent: AtomicU64::new(0),
            oversized_frames: AtomicU64::new(0),
            heartbeat_timeouts: AtomicU64::new(0),
            write_latency: Histogram::new(latency_bounds()),
            queue_depth: Histogram::new(DEPTH_BOUNDS),
            exchange_lag: VenueLag::default(),
        }
    }
}

/// Adds one to a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Subtracts one from a gauge.
pub fn dec(gauge: &AtomicU64) {
    gauge.fetch_sub(1, Relaxed);
}

impl Metrics {
    /// Seconds since the server started.
    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// All counters as a JSON object, for `/stats`.
    pub fn to_json(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Relaxed);
        serde_json::json!({
            "connections": g(&self.connections),
            "connections_total": g(&self.connections_total),
            "subscriptions": g(&self.subscriptions),
            "events_published": g(&self.events_published),
            "messages_delivered": g(&self.messages_delivered),
            "bytes_delivered": g(&self.bytes_delivered),
            "gzip_compressed": g(&self.gzip_compressed),
            "errors_sent": g(&self.errors_sent),
            "slow_consumer_closes": g(&self.slow_consumer_closes),
            "lagged_sent": g(&self.lagged_sent),
            "conflated_sent": g(&self.conflated_sent),
            "oversized_frames": g(&self.oversized_frames),
            "heartbeat_timeouts": g(&self.heartbeat_timeouts),
            "uptime_secs": self.uptime_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_ascend_and_print_short() {
        for bounds in [latency_bounds(), lag_bounds()] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
            for b in &bounds {
                assert!(b.to_string().len() <= 12, "bound {b} prints long");
            }
        }
        assert_eq!(latency_bounds()[0], 0.00001);
        assert_eq!(latency_bounds()[1], 0.000011);
        assert_eq!(latency_bounds().last(), Some(&1.99));
    }

    #[test]
    fn venues_are_capped() {
        let lag = VenueLag::default();
        let a = lag.for_venue("binance");
        let b = lag.for_venue("binance");
        assert_eq!(lag.snapshot().len(), 1, "one histogram per venue");
        drop((a, b));
        for i in 0..MAX_LAG_VENUES + 5 {
            lag.for_venue(&format!("v{i}"));
        }
        let names: Vec<String> = lag.snapshot().into_iter().map(|(v, _)| v).collect();
        assert_eq!(names.len(), MAX_LAG_VENUES + 1);
        assert_eq!(names.last().map(String::as_str), Some("other"));
    }
}
