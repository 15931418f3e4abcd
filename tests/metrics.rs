//! `/metrics` of a real server, after real traffic, through the reference
//! OpenMetrics parser (Python `prometheus_client`, via
//! `tests/tools/openmetrics_parse.py`): the whole scrape must parse (the
//! parser rejects a histogram whose `+Inf` bucket differs from `_count`,
//! the double counting this test guards against), and the per-source,
//! exchange-lag, analytics and process figures must be there, also for a
//! real exchange connector (Binance's, against the local mock).
//!
//! Needs `python3` with `prometheus_client` (`.ci/run` installs it); when
//! it is missing the test fails with the install command.

mod support;

use support::venues;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{Client, Fmt, Server, metric_sample};
use tickwire::protocol::pb::server_message::Kind;
use venues::MockExchange;

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
        ("tickwire_limit", "gauge"),
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
    let rss = metric_sample(&text, "process_resident_memory_bytes ").expect("rss value");
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

    // every limit /stats shows is a `tickwire_limit` series with its value
    let (status, stats) = server.get("/stats").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats json");
    let mut limits = Vec::new();
    for group in ["limits", "slow_consumer_limits"] {
        for (key, value) in stats[group].as_object().expect(group) {
            if let Some(v) = value.as_f64() {
                limits.push((key.clone(), v));
            }
            for (sub, v) in value.as_object().into_iter().flatten() {
                limits.push((format!("{key}_{sub}"), v.as_f64().expect("number")));
            }
        }
    }
    limits.retain(|(k, _)| k != "scans_waiting");
    assert!(limits.len() >= 20, "{limits:?}");
    for (key, v) in &limits {
        let series = format!("tickwire_limit{{limit=\"{key}\"}} ");
        assert_eq!(
            metric_sample(&text, &series),
            Some(*v),
            "{series} in\n{text}"
        );
        assert_eq!(text.matches(&series).count(), 1, "one series of {key}");
    }
    for (key, v) in [
        ("max_names_per_request", 256.0),
        ("socket_send_buffer", 262144.0),
        ("max_lag_age_ms", 2000.0),
        ("request_cost_names_per_unit", 16.0),
    ] {
        let series = format!("tickwire_limit{{limit=\"{key}\"}} ");
        assert_eq!(metric_sample(&text, &series), Some(v), "{series}");
    }
}

/// Scrapes until `cond` holds on the text (each scrape through the parser).
async fn scrape_until(server: &Server, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let cond = &cond;
    support::eventually(what, || async move {
        let (_, text) = server.get("/metrics").await;
        parse_openmetrics(&text);
        if cond(&text) { Ok(text) } else { Err(text) }
    })
    .await
}

/// A real exchange connector (Binance's, against a local mock): its state,
/// messages and reconnects per source, and the exchange lag of its trade
/// under `venue="binance"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_metrics_follow_an_exchange_source_and_its_lag() {
    let mock = MockExchange::start().await;
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let server = Server::start(&[
        "--source",
        "binance",
        "--binance-ws-url",
        &ws,
        "--binance-rest-url",
        &rest,
        "--symbols",
        "BTCUSDT",
    ]);
    mock.wait_for("the stream connection", |m| m.connected() == 1)
        .await;
    scrape_until(&server, "binance connected", |t| {
        t.contains("tickwire_source_state{source=\"binance\",state=\"connected\"} 1")
    })
    .await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["trade.binance.BTC-USDT"]).await;
    // a trade that happened 250 ms ago by the exchange's clock
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let then = now_ms - 250;
    mock.send(
        serde_json::json!({"stream": "btcusdt@trade", "data": {"e": "trade", "E": then,
            "s": "BTCUSDT", "t": 1, "p": "100.2", "q": "0.5", "T": then, "m": true, "M": true}})
        .to_string(),
    );
    loop {
        if let Kind::Event(e) = c.next_msg().await
            && e.channel == "trade.binance.BTC-USDT"
        {
            break;
        }
    }
    let (_, text) = server.get("/metrics").await;
    let parsed = parse_openmetrics(&text);
    let lag = histogram(
        &parsed,
        "tickwire_exchange_lag_seconds",
        Some(("venue", "binance")),
    );
    assert_eq!(lag["count"].as_f64(), Some(1.0), "{lag}");
    let sum = lag["sum"].as_f64().expect("sum");
    assert!(
        (0.25..5.0).contains(&sum),
        "lag of a 250 ms old trade: {sum} s"
    );
    // no bucket under 0.2 s holds it
    let below = lag["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter(|b| b[0].as_f64().is_some_and(|le| le < 0.2))
        .map(|b| b[1].as_f64().expect("count"))
        .fold(0.0, f64::max);
    assert_eq!(below, 0.0, "{lag}");
    assert!(
        metric_sample(&text, "tickwire_source_messages_total{source=\"binance\"}").unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        metric_sample(
            &text,
            "tickwire_source_last_message_age_seconds{source=\"binance\"}"
        )
        .is_some_and(|age| age < 60.0),
        "{text}"
    );
    assert_eq!(
        metric_sample(
            &text,
            "tickwire_source_reconnects_total{source=\"binance\"}"
        ),
        Some(0.0)
    );

    // the exchange drops the stream and refuses new ones: reconnecting
    mock.refuse(true);
    mock.drop_all();
    let text = scrape_until(&server, "binance reconnecting", |t| {
        t.contains("tickwire_source_state{source=\"binance\",state=\"reconnecting\"} 1")
    })
    .await;
    assert!(
        text.contains("tickwire_source_state{source=\"binance\",state=\"connected\"} 0"),
        "{text}"
    );
    assert!(
        metric_sample(
            &text,
            "tickwire_source_reconnects_total{source=\"binance\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
}
