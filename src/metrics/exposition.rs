//! The OpenMetrics text of `/metrics`, built at scrape time.
//!
//! A `prometheus-client` collector reads the server's atomics and
//! histograms, the sources' states and the process's figures from /proc.
//! Histograms are `prometheus-client`'s own and encode themselves, so each
//! bucket is counted once (the text encoder sums per-bucket counts into the
//! cumulative `le` series; handing it running totals counted them twice).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;

use super::Metrics;

type Res = Result<(), std::fmt::Error>;

/// Everything a scrape reports.
#[derive(Debug)]
pub struct Exposition {
    pub metrics: Arc<Metrics>,
    /// The running sources' states as `/stats` shows them (`name`,
    /// `state` and the counters), one label value each. JSON keeps this
    /// module below the sources: it reads what they show, not their types.
    pub sources: Vec<serde_json::Value>,
    /// Every state a source can be in, for the 0/1 `tickwire_source_state`
    /// series.
    pub source_states: &'static [&'static str],
    /// Trades the analytics tap dropped because its queue was full.
    pub analytics_dropped: u64,
    /// The limits in force, named as in `/stats` (`limits` and
    /// `slow_consumer_limits`), one `tickwire_limit{limit=...}` series each.
    pub limits: Vec<(String, f64)>,
    /// The `cluster` object of `/stats` in cluster mode (`None` on a
    /// single node): the `tickwire_cluster_*` series. JSON, as for the
    /// sources, keeps this module below the cluster.
    pub cluster: Option<serde_json::Value>,
}

/// The `tickwire_cluster_*` series: `/stats` `cluster` key, metric name,
/// help, counter (or gauge). An ingest has the first seven, an edge the
/// last three.
const CLUSTER_SERIES: &[(&str, &str, &str, bool)] = &[
    (
        "offered",
        "tickwire_cluster_offered_events",
        "Events the hub handed to the ingest's outbox",
        true,
    ),
    (
        "published",
        "tickwire_cluster_published_events",
        "Events JetStream acknowledged",
        true,
    ),
    (
        "messages",
        "tickwire_cluster_messages",
        "NATS messages sent to tw.ev.* (each 1 to 64 events)",
        true,
    ),
    (
        "dropped",
        "tickwire_cluster_dropped_events",
        "Events that did not reach JetStream (outbox full, NATS unreachable, lease lost)",
        true,
    ),
    (
        "publish_errors",
        "tickwire_cluster_publish_errors",
        "Publishes or acks that failed",
        true,
    ),
    (
        "snapshots_stored",
        "tickwire_cluster_snapshots_stored",
        "Book snapshots stored in JetStream",
        true,
    ),
    (
        "outbox_queued",
        "tickwire_cluster_outbox_queued",
        "Events waiting in the ingest's outbox",
        false,
    ),
    (
        "received",
        "tickwire_cluster_received_messages",
        "NATS messages an edge received",
        true,
    ),
    (
        "missing",
        "tickwire_cluster_missing_events",
        "Events missing in what JetStream delivered to an edge (announced with lagged)",
        true,
    ),
    (
        "consumer_restarts",
        "tickwire_cluster_consumer_restarts",
        "An edge's JetStream consumers restarted after an error",
        true,
    ),
];

/// The numeric leaves of a JSON object as `(name, value)`: nested objects
/// join their keys with `_` (`request_cost.names_per_unit` becomes
/// `request_cost_names_per_unit`); strings, booleans and nulls are skipped.
/// `/metrics` takes its limits from the same JSON `/stats` shows, so the two
/// cannot disagree.
pub fn numeric_leaves(prefix: &str, json: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    let Some(obj) = json.as_object() else {
        return;
    };
    for (key, value) in obj {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}_{key}")
        };
        if let Some(v) = value.as_f64() {
            out.push((name, v));
        } else if value.is_object() {
            numeric_leaves(&name, value, out);
        }
    }
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Res {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Res {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn histogram(enc: &mut DescriptorEncoder, name: &str, help: &str, h: &Histogram) -> Res {
    h.encode(enc.encode_descriptor(name, help, None, MetricType::Histogram)?)
}

/// One metric with a value per source (`source="binance"`). `value` returns
/// `None` for a source that has no value (no message yet, say).
fn per_source<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    sources: &[(String, serde_json::Value)],
    name: &str,
    help: &str,
    ty: MetricType,
    value: impl Fn(&serde_json::Value) -> Option<M>,
) -> Res {
    let mut family = enc.encode_descriptor(name, help, None, ty)?;
    for (source, json) in sources {
        if let Some(v) = value(json) {
            let labels = [("source", source.as_str())];
            v.encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

impl Exposition {
    fn server(&self, e: &mut DescriptorEncoder) -> Res {
        let m = &self.metrics;
        let now = |a: &AtomicU64| a.load(Relaxed) as f64;
        gauge(
            e,
            "tickwire_connections",
            "WebSocket connections open now",
            now(&m.connections),
        )?;
        gauge(
            e,
            "tickwire_subscriptions",
            "Channel subscriptions held now",
            now(&m.subscriptions),
        )?;
        gauge(
            e,
            "tickwire_uptime_seconds",
            "Seconds since start",
            m.uptime_secs().floor(),
        )?;
        for (name, help, v) in [
            (
                "tickwire_connections_accepted",
                "WebSocket connections accepted",
                &m.connections_total,
            ),
            (
                "tickwire_events_published",
                "Events published by the hub (in)",
                &m.events_published,
            ),
            (
                "tickwire_messages_delivered",
                "Messages written to clients (out)",
                &m.messages_delivered,
            ),
            (
                "tickwire_bytes_delivered",
                "Bytes written to clients",
                &m.bytes_delivered,
            ),
            (
                "tickwire_gzip_compressed",
                "Messages gzipped (once each)",
                &m.gzip_compressed,
            ),
            (
                "tickwire_errors_sent",
                "error messages sent to clients",
                &m.errors_sent,
            ),
            (
                "tickwire_slow_consumer_closes",
                "Connections closed as slow consumers",
                &m.slow_consumer_closes,
            ),
            (
                "tickwire_lagged_sent",
                "lagged messages sent to slow consumers",
                &m.lagged_sent,
            ),
            (
                "tickwire_conflated_sent",
                "conflated messages sent to conflated subscriptions",
                &m.conflated_sent,
            ),
            (
                "tickwire_oversized_frames",
                "Inbound frames refused as too big",
                &m.oversized_frames,
            ),
            (
                "tickwire_heartbeat_timeouts",
                "Connections closed after two silent heartbeats",
                &m.heartbeat_timeouts,
            ),
        ] {
            counter(e, name, help, v.load(Relaxed))?;
        }
        {
            let mut family = e.encode_descriptor(
                "tickwire_limit",
                "A limit in force (README Limits; the same figures as /stats)",
                None,
                MetricType::Gauge,
            )?;
            for (limit, v) in &self.limits {
                let labels = [("limit", limit.as_str())];
                ConstGauge::new(*v).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "tickwire_analytics_dropped",
            "Trades the analytics engine dropped (its queue was full)",
            self.analytics_dropped,
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
        )?;
        let venues = m.exchange_lag.snapshot();
        let mut lag = e.encode_descriptor(
            "tickwire_exchange_lag_seconds",
            "publish_time - source_time of venue trades, tickers and books",
            None,
            MetricType::Histogram,
        )?;
        for (venue, h) in &venues {
            let labels = [("venue", venue.as_str())];
            h.encode(lag.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn sources(&self, e: &mut DescriptorEncoder) -> Res {
        let name = |j: &serde_json::Value| j["name"].as_str().unwrap_or_default().to_string();
        let sources: Vec<(String, serde_json::Value)> =
            self.sources.iter().map(|j| (name(j), j.clone())).collect();
        {
            let mut family = e.encode_descriptor(
                "tickwire_source_state",
                "1 for the state each source is in, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for (source, json) in &sources {
                let current = json["state"].as_str().unwrap_or_default();
                for state in self.source_states {
                    let labels = [("source", source.as_str()), ("state", *state)];
                    ConstGauge::new(i64::from(*state == current))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let count =
            |key: &'static str| move |j: &serde_json::Value| j[key].as_u64().map(ConstCounter::new);
        per_source(
            e,
            &sources,
            "tickwire_source_reconnects",
            "Times the source lost its stream",
            MetricType::Counter,
            count("reconnects"),
        )?;
        per_source(
            e,
            &sources,
            "tickwire_source_messages",
            "Messages received from the source",
            MetricType::Counter,
            count("messages_in"),
        )?;
        per_source(
            e,
            &sources,
            "tickwire_source_resyncs",
            "Book resyncs (gap, checksum mismatch or reconnect)",
            MetricType::Counter,
            count("resyncs"),
        )?;
        per_source(
            e,
            &sources,
            "tickwire_source_rest_polls",
            "REST fallback polls answered while the stream was down",
            MetricType::Counter,
            count("rest_polls"),
        )?;
        per_source(
            e,
            &sources,
            "tickwire_source_last_message_age_seconds",
            "Seconds since the source's last message (absent before the first)",
            MetricType::Gauge,
            |j| {
                j["last_message_age_ms"]
                    .as_u64()
                    .map(|ms| ConstGauge::new(ms as f64 / 1000.0))
            },
        )
    }

    fn process(&self, e: &mut DescriptorEncoder) -> Res {
        let Some(p) = super::process::sample() else {
            return Ok(());
        };
        ConstCounter::new(p.cpu_seconds).encode(e.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            MetricType::Counter,
        )?)?;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.resident_bytes as f64,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            p.virtual_bytes as f64,
        )?;
        gauge(
            e,
            "process_open_fds",
            "Open file descriptors",
            p.open_fds as f64,
        )?;
        if let Some(max) = p.max_fds {
            gauge(
                e,
                "process_max_fds",
                "Maximum open file descriptors",
                max as f64,
            )?;
        }
        gauge(
            e,
            "process_threads",
            "OS threads in the process",
            p.threads as f64,
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time since the Unix epoch, in seconds",
            p.start_time_seconds,
        )
    }
}

impl Exposition {
    /// `tickwire_cluster_connected` and the link's counters (cluster mode).
    fn cluster(&self, e: &mut DescriptorEncoder) -> Res {
        let Some(c) = &self.cluster else {
            return Ok(());
        };
        let connected = c["connected"].as_bool().unwrap_or(false);
        gauge(
            e,
            "tickwire_cluster_connected",
            "1 while the node's NATS connection is up",
            if connected { 1.0 } else { 0.0 },
        )?;
        for (key, name, help, is_counter) in CLUSTER_SERIES {
            let Some(v) = c[*key].as_u64() else { continue };
            if *is_counter {
                counter(e, name, help, v)?;
            } else {
                gauge(e, name, help, v as f64)?;
            }
        }
        Ok(())
    }
}

impl prometheus_client::collector::Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> Res {
        self.server(&mut enc)?;
        self.sources(&mut enc)?;
        self.cluster(&mut enc)?;
        self.process(&mut enc)
    }
}

/// The OpenMetrics text exposition of `/metrics`.
pub fn render_prometheus(exposition: Exposition) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(exposition));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("invariant: writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::inc;

    const STATES: &[&str] = &[
        "connecting",
        "connected",
        "reconnecting",
        "finished",
        "stopped",
    ];

    fn render(m: &Arc<Metrics>, sources: Vec<serde_json::Value>) -> String {
        render_prometheus(Exposition {
            metrics: m.clone(),
            sources,
            source_states: STATES,
            analytics_dropped: 7,
            limits: vec![("max_connections".into(), 100.0)],
            cluster: None,
        })
    }

    #[test]
    fn exposition_names_every_figure() {
        let m = Arc::new(Metrics::default());
        inc(&m.events_published);
        m.write_latency.observe(0.0003);
        m.exchange_lag.for_venue("binance").observe(0.02);
        // as `SourceStatus::to_json` shows a connected source with 3 messages
        let src = serde_json::json!({
            "name": "binance",
            "state": "connected",
            "reconnects": 0,
            "messages_in": 3,
            "last_message_age_ms": 0,
        });
        let text = render(&m, vec![src]);
        for name in [
            "tickwire_connections ",
            "tickwire_events_published_total 1",
            "tickwire_bytes_delivered_total",
            "tickwire_slow_consumer_closes_total",
            "tickwire_analytics_dropped_total 7",
            "tickwire_write_latency_seconds_bucket{le=\"0.000309\"} 1",
            "tickwire_connection_queue_depth_count 0",
            "tickwire_exchange_lag_seconds_count{venue=\"binance\"} 1",
            "tickwire_source_state{source=\"binance\",state=\"connected\"} 1",
            "tickwire_source_state{source=\"binance\",state=\"reconnecting\"} 0",
            "tickwire_source_messages_total{source=\"binance\"} 3",
            "tickwire_source_reconnects_total{source=\"binance\"} 0",
            "tickwire_source_last_message_age_seconds{source=\"binance\"}",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_start_time_seconds",
            "tickwire_limit{limit=\"max_connections\"} 100.0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(
            !text.contains("tickwire_cluster"),
            "no cluster series on a single node"
        );
    }

    /// In cluster mode the link's `/stats` figures become
    /// `tickwire_cluster_*` series; keys a role does not have are left out.
    #[test]
    fn cluster_mode_adds_the_link_series() {
        let render_cluster = |cluster: serde_json::Value| {
            render_prometheus(Exposition {
                metrics: Arc::new(Metrics::default()),
                sources: vec![],
                source_states: STATES,
                analytics_dropped: 0,
                limits: vec![],
                cluster: Some(cluster),
            })
        };
        let text = render_cluster(serde_json::json!({
            "role": "ingest", "connected": true, "offered": 10, "published": 8,
            "messages": 2, "dropped": 1, "publish_errors": 0, "snapshots_stored": 3,
            "outbox_queued": 2,
        }));
        for line in [
            "tickwire_cluster_connected 1",
            "tickwire_cluster_offered_events_total 10",
            "tickwire_cluster_published_events_total 8",
            "tickwire_cluster_messages_total 2",
            "tickwire_cluster_dropped_events_total 1",
            "tickwire_cluster_snapshots_stored_total 3",
            "tickwire_cluster_outbox_queued 2",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("tickwire_cluster_received"), "{text}");
        let text = render_cluster(serde_json::json!({
            "role": "edge", "connected": false, "received": 5, "missing": 0,
            "consumer_restarts": 1, "channels": {"trade.sim.A-B": {"received": 5}},
        }));
        assert!(text.contains("tickwire_cluster_connected 0"), "{text}");
        assert!(
            text.contains("tickwire_cluster_received_messages_total 5"),
            "{text}"
        );
        assert!(
            text.contains("tickwire_cluster_consumer_restarts_total 1"),
            "{text}"
        );
        assert!(!text.contains("tickwire_cluster_published"), "{text}");
    }

    #[test]
    fn limits_come_from_the_stats_json() {
        let json = serde_json::json!({
            "max_subscriptions": 1000,
            "policy": "lagged",
            "request_cost": {"names_per_unit": 16},
        });
        let mut out = Vec::new();
        numeric_leaves("", &json, &mut out);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            out,
            vec![
                ("max_subscriptions".to_string(), 1000.0),
                ("request_cost_names_per_unit".to_string(), 16.0),
            ]
        );
    }

    /// Each bucket is counted once: `+Inf` equals `_count` and the
    /// cumulative series never exceeds it (the bug this module fixed had
    /// `+Inf` at the sum of running totals).
    #[test]
    fn histogram_buckets_are_cumulative_once() {
        let m = Arc::new(Metrics::default());
        for v in [0.00002, 0.0004, 0.0004, 0.003, 5.0] {
            m.write_latency.observe(v);
        }
        for d in [1.0, 3.0, 3.0, 100.0] {
            m.queue_depth.observe(d);
        }
        let text = render(&m, Vec::new());
        for (name, count) in [
            ("tickwire_write_latency_seconds", 5),
            ("tickwire_connection_queue_depth", 4),
        ] {
            assert!(text.contains(&format!("{name}_count {count}\n")), "{text}");
            assert!(
                text.contains(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n")),
                "{text}"
            );
            let buckets: Vec<u64> = text
                .lines()
                .filter(|l| l.starts_with(&format!("{name}_bucket")))
                .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                .collect();
            assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
            assert!(buckets.iter().all(|b| *b <= count), "{buckets:?}");
        }
        assert!(text.contains("tickwire_connection_queue_depth_bucket{le=\"4.0\"} 3\n"));
    }
}
