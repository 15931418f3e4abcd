//! `/metrics` of a real server, after real traffic, through the reference
//! OpenMetrics parser (Python `prometheus_client`, via
//! `tests/tools/openmetrics_parse.py`): the whole scrape must parse (the
//! parser rejects a histogram whose `+Inf` bucket differs from `_count`,
//! the double counting this test guards against), and the per-source,
//! exchange-lag, analytics and process figures must be there.
//!
//! Needs `python3` with `prometheus_client` (`.ci/run` installs it); when
//! it is missing the test fails with the install command.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{Client, Fmt, Server};
use tickwire::protocol::pb::server_message::Kind;

/// Runs the reference parser over `text`; panics with its verdict (or the
/// install command) when it does not accept it.
pub fn parse_openmetrics(text: &str) -> serde_json::Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tools/openmetrics_parse.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 not found ({e}): `apt-get install python3`, then `python3 -m pip install prometheus_client`")
        });
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(text.as_bytes())
        .expect("write the scrape to the parser");
    let out = child.wait_with_output().expect("parser ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => serde_json::from_slice(&out.stdout).expect("parser prints JSON"),
        Some(3) => panic!("{stderr}: run `python3 -m pip install prometheus_client`"),
        _ => panic!("{stderr}\n--- the scrape ---\n{text}"),
    }
}

fn histogram<'a>(
    parsed: &'a serde_json::Value,
    name: &str,
    label: Option<(&str, &str)>,
) -> &'a serde_json::Value {
    parsed["histograms"]
        .as_array()
        .expect("histograms")
        .iter()
        .find(|h| {
            h["name"] == name && label.is_none_or(|(k, v)| h["labels"][k].as_str() == Some(v))
        })
        .unwrap_or_else(|| panic!("no histogram {name} {label:?} in {parsed}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_passes_the_openmetrics_parser_with_every_family() {
    let server = Server::start(&["--sim-rate", "500"]);
    let mut client = Client::connect(&server, Fmt::Proto).await;
    client.welcome().await;
    client.subscribe(&["*.sim.*"]).await;
    let mut events = 0;
    while events < 300 {
        if let Kind::Event(_) = client.next_msg().await {
            events += 1;
        }
    }
    let (status, text) = server.get("/metrics").await;
    assert_eq!(status, 200);
    let parsed = parse_openmetrics(&text);

    let families = &parsed["families"];
    for (name, ty) in [
        ("tickwire_connections", "gauge"),
        ("tickwire_events_published", "counter"),
        ("tickwire_messages_delivered", "counter"),
        ("tickwire_analytics_dropped", "counter"),
        ("tickwire_write_latency_seconds", "histogram"),
        ("tickwire_connection_queue_depth", "histogram"),
        ("tickwire_exchange_lag_seconds", "histogram"),
        ("tickwire_source_state", "gauge"),
        ("tickwire_source_reconnects", "counter"),
        ("tickwire_source_messages", "counter"),
        ("tickwire_source_resyncs", "counter"),
        ("tickwire_source_rest_polls", "counter"),
        ("tickwire_source_last_message_age_seconds", "gauge"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(families[name], ty, "{name} in {families}");
    }

    // the histograms saw this traffic, each write once
    for (name, label) in [
        ("tickwire_write_latency_seconds", None),
        ("tickwire_connection_queue_depth", None),
        ("tickwire_exchange_lag_seconds", Some(("venue", "sim"))),
    ] {
        let h = histogram(&parsed, name, label);
        let count = h["count"].as_f64().expect("count");
        assert!(count > 0.0, "{name} observed nothing: {h}");
        let inf = h["buckets"]
            .as_array()
            .and_then(|b| b.last())
            .and_then(|b| b[1].as_f64());
        assert_eq!(inf, Some(count), "{name}: +Inf == _count");
    }
    assert!(
        text.contains("tickwire_source_state{source=\"sim\",state=\"connected\"} 1"),
        "{text}"
    );
    let rss_line = text
        .lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .expect("rss line");
    let rss: f64 = rss_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("rss value");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("server's /proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    assert!(
        (rss / 1024.0 - kib).abs() < kib * 0.5,
        "process_resident_memory_bytes {rss} vs /proc {kib} KiB"
    );
}
