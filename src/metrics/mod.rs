//! Server-wide counters behind `/stats` and `/metrics`.
//!
//! Plain relaxed atomics: each is bumped once per event published or once
//! per connection write (not once per message per client), so they stay off
//! the hot path's critical cost. `/metrics` reads the same atomics at scrape
//! time through a `prometheus-client` collector, so nothing is counted twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A fixed-bucket histogram of atomics: observing is a bucket search and
/// two relaxed adds, no lock (unlike a mutex-guarded histogram, it is safe
/// on the write path of every connection).
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    /// Sum of observations in millionths of the unit.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds (ascending); `+Inf` is implied.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micro
            .fetch_add((value.max(0.0) * 1e6) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Cumulative `(upper bound, count)` pairs, `+Inf` last.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.buckets)
            .map(|(bound, b)| {
                total += b.load(Relaxed);
                (bound, total)
            })
            .collect()
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn sum(&self) -> f64 {
        self.sum_micro.load(Relaxed) as f64 / 1e6
    }
}

const LATENCY_BOUNDS_S: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];
const DEPTH_BOUNDS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

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
    /// Frames refused as too big (close 1009).
    pub oversized_frames: AtomicU64,
    /// Connections closed for sending nothing for two heartbeat intervals.
    pub heartbeat_timeouts: AtomicU64,
    /// Seconds from an event's publish to the end of the socket write that
    /// carried it; observed once per write, for the oldest event in it.
    pub write_latency: AtomicHistogram,
    /// Frames due when a connection drained (its queue depth at wake-up).
    pub queue_depth: AtomicHistogram,
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
            oversized_frames: AtomicU64::new(0),
            heartbeat_timeouts: AtomicU64::new(0),
            write_latency: AtomicHistogram::new(LATENCY_BOUNDS_S),
            queue_depth: AtomicHistogram::new(DEPTH_BOUNDS),
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
            "oversized_frames": g(&self.oversized_frames),
            "heartbeat_timeouts": g(&self.heartbeat_timeouts),
            "uptime_secs": self.uptime_secs(),
        })
    }
}

/// Exposes [`Metrics`] to a `prometheus-client` registry at scrape time.
#[derive(Debug)]
pub struct MetricsCollector(pub Arc<Metrics>);

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(v.load(Relaxed)).encode(enc.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &AtomicHistogram,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum(), h.count(), &h.cumulative(), None)
}

impl prometheus_client::collector::Collector for MetricsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        let e = &mut enc;
        gauge(
            e,
            "tickwire_connections",
            "WebSocket connections open now",
            m.connections.load(Relaxed) as i64,
        )?;
        gauge(
            e,
            "tickwire_subscriptions",
            "Channel subscriptions held now",
            m.subscriptions.load(Relaxed) as i64,
        )?;
        gauge(
            e,
            "tickwire_uptime_seconds",
            "Seconds since start",
            m.uptime_secs() as i64,
        )?;
        counter(
            e,
            "tickwire_connections_accepted",
            "WebSocket connections accepted",
            &m.connections_total,
        )?;
        counter(
            e,
            "tickwire_events_published",
            "Events published by the hub (in)",
            &m.events_published,
        )?;
        counter(
            e,
            "tickwire_messages_delivered",
            "Messages written to clients (out)",
            &m.messages_delivered,
        )?;
        counter(
            e,
            "tickwire_bytes_delivered",
            "Bytes written to clients",
            &m.bytes_delivered,
        )?;
        counter(
            e,
            "tickwire_gzip_compressed",
            "Messages gzipped (once each)",
            &m.gzip_compressed,
        )?;
        counter(
            e,
            "tickwire_errors_sent",
            "error messages sent to clients",
            &m.errors_sent,
        )?;
        counter(
            e,
            "tickwire_slow_consumer_closes",
            "Connections closed as slow consumers",
            &m.slow_consumer_closes,
        )?;
        counter(
            e,
            "tickwire_lagged_sent",
            "lagged messages sent to slow consumers",
            &m.lagged_sent,
        )?;
        counter(
            e,
            "tickwire_oversized_frames",
            "Inbound frames refused as too big",
            &m.oversized_frames,
        )?;
        counter(
            e,
            "tickwire_heartbeat_timeouts",
            "Connections closed after two silent heartbeats",
            &m.heartbeat_timeouts,
        )?;
        histogram(
            e,
            "tickwire_write_latency_seconds",
            "Publish to socket write, oldest event per write",
            &m.write_latency,
        )?;
        histogram(
            e,
            "tickwire_connection_queue_depth",
            "Frames due per connection drain",
            &m.queue_depth,
        )
    }
}

/// The Prometheus text exposition of `metrics`.
pub fn render_prometheus(metrics: &Arc<Metrics>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(MetricsCollector(metrics.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("invariant: writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = AtomicHistogram::new(&[1.0, 10.0]);
        for v in [0.5, 2.0, 3.0, 100.0] {
            h.observe(v);
        }
        assert_eq!(
            h.cumulative(),
            vec![(1.0, 1), (10.0, 3), (f64::INFINITY, 4)]
        );
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 105.5).abs() < 1e-6);
    }

    #[test]
    fn exposition_names_every_figure() {
        let m = Arc::new(Metrics::default());
        inc(&m.events_published);
        m.write_latency.observe(0.0003);
        let text = render_prometheus(&m);
        for name in [
            "tickwire_connections ",
            "tickwire_events_published_total 1",
            "tickwire_bytes_delivered_total",
            "tickwire_slow_consumer_closes_total",
            "tickwire_write_latency_seconds_bucket{le=\"0.0005\"} 1",
            "tickwire_connection_queue_depth_count 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
