//! The core feed over real sockets: welcome, formats, subscriptions,
//! snapshots and gap-free updates, gzip, bad input, limits, shutdown.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use support::{Client, ClientBook, Fmt, Server, guarded};
use tickwire::protocol::pb::{
    self, ErrorCode, client_message, event::Payload, server_message::Kind,
};
use tokio_tungstenite::tungstenite::Message;

const BTC_TRADES: &str = "trade.sim.BTC-USDT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_comes_first_and_format_is_negotiated() {
    let server = Server::start(&[]);
    let mut proto = Client::connect(&server, Fmt::Proto).await;
    let w = proto.welcome().await;
    assert_eq!(w.protocol, "tickwire.v1");
    assert_eq!(w.format, "proto");
    assert_eq!(w.heartbeat_interval_ms, 15_000);
    assert!(w.max_subscriptions > 0 && w.max_requests_per_second > 0);
    assert_eq!(w.epoch.len(), 16);
    assert!(!w.session_id.is_empty());

    let mut json = Client::connect(&server, Fmt::Json).await;
    let wj = json.welcome().await;
    assert_eq!(wj.format, "json");
    assert_eq!(wj.epoch, w.epoch, "one epoch per server run");
    assert_ne!(wj.session_id, w.session_id);

    // the subprotocol wins over the query and is echoed back
    let mut sub = Client::connect_url(
        &server.ws_url("?format=proto"),
        Fmt::Json,
        Some("tickwire.v1.json"),
    )
    .await;
    assert_eq!(sub.subprotocol.as_deref(), Some("tickwire.v1.json"));
    assert_eq!(sub.welcome().await.format, "json");
    let mut sub = Client::connect_url(
        &server.ws_url(""),
        Fmt::Proto,
        Some("other, tickwire.v1.proto"),
    )
    .await;
    assert_eq!(sub.subprotocol.as_deref(), Some("tickwire.v1.proto"));
    assert_eq!(sub.welcome().await.format, "proto");
    println!("welcome: {w:?}");
}

/// Environment variables configure the server; a flag beats the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_configure_and_flags_override_them() {
    let env = [
        ("TICKWIRE_HEARTBEAT_INTERVAL", "700ms"),
        ("TICKWIRE_MAX_SUBSCRIPTIONS", "7"),
    ];
    let server = Server::start_with_env(&["--max-subscriptions", "9"], &env);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    let w = c.welcome().await;
    assert_eq!(w.heartbeat_interval_ms, 700);
    assert_eq!(w.max_subscriptions, 9);
    // the limit holds: the pattern and 8 channels fit, the rest is refused
    let rid = c.request_id();
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id: rid,
        channels: vec!["book.sim.*".into()],
        ..Default::default()
    }))
    .await;
    expect_error(c.next_msg().await, ErrorCode::TooManySubscriptions, rid);
    match c.next_msg().await {
        Kind::Subscribed(s) => assert_eq!(s.channels.len(), 8),
        other => panic!("{other:?}"),
    }
    c.ping().await;
}

/// A JSON client and a proto client get the same events; the JSON parses
/// with the canonical proto3 JSON mapping into the very same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_is_the_canonical_mapping_of_the_same_events() {
    let server = Server::start(&[]);
    let mut proto = Client::connect(&server, Fmt::Proto).await;
    let mut json = Client::connect(&server, Fmt::Json).await;
    proto.welcome().await;
    json.welcome().await;
    let chans = ["ticker.sim.BTC-USDT", BTC_TRADES];
    proto.subscribe(&chans).await;
    json.subscribe(&chans).await;
    let mut by_proto = HashMap::new();
    let mut by_json = HashMap::new();
    let mut raw_json = Vec::new();
    while by_proto.len() < 30 || by_json.len() < 30 {
        if by_proto.len() < 30 {
            let r = proto.next().await;
            if let Some(Kind::Event(e)) = &r.msg.kind {
                by_proto.insert((e.channel.clone(), e.seq), r.msg.clone());
            }
        }
        if by_json.len() < 30 {
            let r = json.next().await;
            if let Some(Kind::Event(e)) = &r.msg.kind {
                by_json.insert((e.channel.clone(), e.seq), r.msg.clone());
                raw_json.push(String::from_utf8(r.raw).unwrap());
            }
        }
    }
    let common: Vec<_> = by_proto
        .keys()
        .filter(|k| by_json.contains_key(*k))
        .collect();
    assert!(common.len() >= 20, "only {} events in common", common.len());
    for key in &common {
        assert_eq!(
            by_proto[*key], by_json[*key],
            "{key:?} differs between formats"
        );
    }
    // canonical mapping: lowerCamelCase names, 64-bit integers as strings
    let sample = raw_json
        .iter()
        .find(|t| t.contains("\"trade\""))
        .expect("a trade in JSON");
    let v: serde_json::Value = serde_json::from_str(sample).unwrap();
    assert!(v["event"]["seq"].is_string(), "{sample}");
    assert!(v["event"]["publishTimeNs"].is_string(), "{sample}");
    assert!(v["event"]["trade"]["tradeId"].is_string(), "{sample}");
    assert!(
        sample.contains("\"SIDE_BUY\"") || sample.contains("\"SIDE_SELL\""),
        "{sample}"
    );
    println!(
        "{} events identical in both formats; sample: {sample}",
        common.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_give_snapshot_then_gap_free_updates_and_books_rebuild() {
    snapshot_then_gap_free_updates(&[]).await;
}

/// The same guarantees with the sources on the connections' runtime
/// (`--sources-on workers`, the light-load setting) instead of their own
/// thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sources_on_the_workers_the_feed_is_the_same() {
    snapshot_then_gap_free_updates(&["--sources-on", "workers"]).await;
}

async fn snapshot_then_gap_free_updates(args: &[&str]) {
    let server = Server::start(args);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let subscribed = c
        .subscribe(&["trade.sim.*", "ticker.*.*", "book.sim.*", "candle1m.sim.*"])
        .await;
    assert!(
        subscribed.channels.len() >= 40,
        "{} channels",
        subscribed.channels.len()
    );
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut snapshot_pending: HashMap<String, bool> = HashMap::new();
    for s in &subscribed.channels {
        assert!(!s.recovered);
        assert_eq!(s.epoch.len(), 16);
        next.insert(s.channel.clone(), s.seq + 1);
        // a stateful channel shows its state first, once it has any
        snapshot_pending.insert(
            s.channel.clone(),
            !s.channel.starts_with("trade.") && s.seq > 0,
        );
    }
    let mut books: HashMap<String, ClientBook> = HashMap::new();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut checksums_verified = 0u64;
    let started = Instant::now();
    // until every stateful channel sent its snapshot, 40 channels sent
    // events and 1500 book updates were verified (a few seconds of the
    // default feed)
    guarded(
        "snapshots, 40 channels and 1500 verified book updates",
        async {
            while snapshot_pending.values().any(|p| *p)
                || counts.len() < 40
                || checksums_verified < 1500
            {
                let Kind::Event(e) = c.next_msg().await else {
                    continue;
                };
                let want = next[&e.channel];
                if snapshot_pending[&e.channel] {
                    assert_eq!(
                        e.seq,
                        want - 1,
                        "{}: snapshot must carry the subscribed seq",
                        e.channel
                    );
                    snapshot_pending.insert(e.channel.clone(), false);
                } else {
                    assert_eq!(e.seq, want, "{}: gap or duplicate", e.channel);
                    next.insert(e.channel.clone(), want + 1);
                }
                *counts.entry(e.channel.clone()).or_default() += 1;
                match e.payload {
                    Some(Payload::BookSnapshot(s)) => {
                        assert!(s.bids.len() == 50 && s.asks.len() == 50, "50 levels a side");
                        let mut b = ClientBook {
                            price_decimals: s.price_decimals,
                            size_decimals: s.size_decimals,
                            ..Default::default()
                        };
                        b.apply(&s.bids, &s.asks);
                        assert_eq!(b.checksum(), s.checksum, "{}: snapshot checksum", e.channel);
                        books.insert(e.channel.clone(), b);
                    }
                    Some(Payload::BookUpdate(u)) => {
                        let b = books.get_mut(&e.channel).expect("update after snapshot");
                        b.apply(&u.bids, &u.asks);
                        assert_eq!(
                            b.checksum(),
                            u.checksum,
                            "{} seq {}: book diverged",
                            e.channel,
                            e.seq
                        );
                        checksums_verified += 1;
                    }
                    _ => {}
                }
            }
        },
    )
    .await;
    let total: u64 = counts.values().sum();
    assert!(
        snapshot_pending.values().all(|p| !p),
        "every stateful channel sent its snapshot"
    );
    assert!(counts.len() >= 40, "events on {} channels", counts.len());
    assert!(
        checksums_verified > 100,
        "{checksums_verified} book updates verified"
    );
    println!(
        "{total} events on {} channels in {:?}, 0 gaps; {checksums_verified} book checksums verified client-side",
        counts.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_messages_over_the_threshold_are_gzipped() {
    let server = Server::start(&[]);
    for fmt in [Fmt::Proto, Fmt::Json] {
        let mut c = Client::connect(&server, fmt).await;
        c.welcome().await;
        c.subscribe(&["book.sim.ETH-USDT", "trade.sim.ETH-USDT"])
            .await;
        let (mut big, mut small) = (0, 0);
        while big < 1 || small < 20 {
            let r = c.next().await;
            let encoded_len = r.raw.len();
            if r.gzipped {
                assert!(encoded_len > 1024, "{encoded_len} B gzipped");
                assert!(
                    matches!(&r.msg.kind, Some(Kind::Event(e)) if matches!(e.payload, Some(Payload::BookSnapshot(_))))
                );
                big += 1;
            } else {
                assert!(encoded_len <= 1024, "{encoded_len} B sent plain");
                assert_eq!(r.text, fmt == Fmt::Json);
                small += 1;
            }
        }
        println!("{fmt:?}: book snapshot gzipped, {small} small messages plain");
    }
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["gzip_compressed"].as_u64().unwrap() >= 2);

    let server = Server::start(&["--gzip-threshold", "0"]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.subscribe(&["book.sim.ETH-USDT"]).await;
    let r = c.next().await;
    assert!(
        !r.gzipped && r.raw.len() > 1024,
        "threshold 0 disables gzip"
    );
}

fn expect_error(kind: Kind, code: ErrorCode, request_id: u64) -> pb::Error {
    match kind {
        Kind::Error(e) => {
            assert_eq!(e.code, code as i32, "{e:?}");
            assert_eq!(e.request_id, request_id, "{e:?}");
            assert!(!e.message.is_empty());
            e
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let mut bystander = Client::connect(&server, Fmt::Proto).await;
    bystander.welcome().await;
    let sub = bystander.subscribe(&[BTC_TRADES]).await;
    let mut bystander_next = sub.channels[0].seq + 1;

    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.send_raw(Message::Binary(vec![0xff, 0xff, 0xff, 0x01].into()))
        .await;
    expect_error(c.next_msg().await, ErrorCode::BadRequest, 0);
    c.ping().await;
    c.send_raw(Message::Text("{\"ping\":{}}".into())).await;
    let e = expect_error(c.next_msg().await, ErrorCode::BadRequest, 0);
    assert!(e.message.contains("proto mode"), "{}", e.message);
    c.ping().await;
    c.send_raw(Message::Binary(Vec::new().into())).await;
    expect_error(c.next_msg().await, ErrorCode::BadRequest, 0);

    for (name, code) in [
        ("trade..BTC", ErrorCode::InvalidChannel),
        ("trade.sim.BTC/USDT", ErrorCode::InvalidChannel),
        ("trade.sim", ErrorCode::InvalidChannel),
        ("trade.sim.NOPE-USDT", ErrorCode::UnknownChannel),
    ] {
        let rid = c.request_id();
        c.send(client_message::Kind::Subscribe(pb::Subscribe {
            request_id: rid,
            channels: vec![name.into()],
            ..Default::default()
        }))
        .await;
        let e = expect_error(c.next_msg().await, code, rid);
        assert_eq!(e.channel, name);
        c.ping().await;
    }
    // one bad name does not spoil the good one in the same request
    let rid = c.request_id();
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id: rid,
        channels: vec!["x".into(), "ticker.sim.BTC-USDT".into()],
        ..Default::default()
    }))
    .await;
    expect_error(c.next_msg().await, ErrorCode::InvalidChannel, rid);
    match c.next_msg().await {
        Kind::Subscribed(s) => {
            assert_eq!(s.request_id, rid);
            assert_eq!(s.channels.len(), 1);
        }
        other => panic!("{other:?}"),
    }

    let mut j = Client::connect(&server, Fmt::Json).await;
    j.welcome().await;
    j.send_raw(Message::Text("{not json".into())).await;
    expect_error(j.next_msg().await, ErrorCode::BadRequest, 0);
    j.send_raw(Message::Text(
        r#"{"subscribe":{"requestId":"77","channels":"trade.sim.BTC-USDT"}}"#.into(),
    ))
    .await;
    expect_error(j.next_msg().await, ErrorCode::BadRequest, 77);
    j.send_raw(Message::Binary(vec![0x1a, 0x00].into())).await;
    let e = expect_error(j.next_msg().await, ErrorCode::BadRequest, 0);
    assert!(e.message.contains("json mode"), "{}", e.message);
    j.send_raw(Message::Text(r#"{"unknownKind":{}}"#.into()))
        .await;
    expect_error(j.next_msg().await, ErrorCode::BadRequest, 0);
    let raw = {
        j.send_raw(Message::Text("[1,2]".into())).await;
        j.next().await.raw
    };
    assert!(
        String::from_utf8(raw)
            .unwrap()
            .contains("ERROR_CODE_BAD_REQUEST"),
        "enum shown by name"
    );
    j.ping().await;
    // original snake_case field names are accepted too
    j.send_raw(Message::Text(
        r#"{"subscribe":{"request_id":9,"channels":["trade.sim.ETH-USDT"]}}"#.into(),
    ))
    .await;
    j.until(|k| matches!(k, Kind::Subscribed(s) if s.request_id == 9).then_some(()))
        .await;

    // the bystander saw every event in order meanwhile: everything up to
    // its pong (sent after all of the above) and 5 events at least
    let ping_id = bystander.request_id();
    bystander
        .send(client_message::Kind::Ping(tickwire::protocol::pb::Ping {
            request_id: ping_id,
        }))
        .await;
    let (mut seen, mut ponged) = (0, false);
    guarded("the bystander's pong and 5 events", async {
        while !ponged || seen < 5 {
            match bystander.next_msg().await {
                Kind::Event(e) => {
                    assert_eq!(e.seq, bystander_next, "bystander gap");
                    bystander_next += 1;
                    seen += 1;
                }
                Kind::Pong(p) if p.request_id == ping_id => ponged = true,
                _ => {}
            }
        }
    })
    .await;
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["errors_sent"].as_u64().unwrap() >= 12, "{stats}");
    println!(
        "errors answered: {}; bystander got {seen} events gap-free",
        stats["errors_sent"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_frame_is_closed_with_1009() {
    let server = Server::start(&[]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.send_raw(Message::Binary(vec![0u8; 100 * 1024].into()))
        .await;
    assert_eq!(c.closed_with().await, Some(1009));
    // a 64 KiB message is still accepted (answered with an error, not closed)
    let mut ok = Client::connect(&server, Fmt::Proto).await;
    ok.welcome().await;
    ok.send_raw(Message::Binary(vec![0xffu8; 64 * 1024].into()))
        .await;
    expect_error(ok.next_msg().await, ErrorCode::BadRequest, 0);
    ok.ping().await;
    let (_, stats) = server.get_json("/stats").await;
    assert_eq!(stats["oversized_frames"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_receive_the_same_gap_free_sequence() {
    let server = Server::start(&[]);
    let (_, channels) = server.get_json("/channels").await;
    let start_seq = channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == BTC_TRADES)
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let target = start_seq + 80;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let url = server.ws_url("");
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
            c.welcome().await;
            let s = c.subscribe(&[BTC_TRADES]).await;
            let mut next = s.channels[0].seq + 1;
            let mut got = BTreeMap::new();
            while next <= target {
                let r = c.next().await;
                if let Some(Kind::Event(e)) = &r.msg.kind {
                    assert_eq!(e.seq, next, "gap or duplicate");
                    next += 1;
                    got.insert(e.seq, r.raw);
                }
            }
            got
        }));
    }
    let mut reference: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut deliveries = 0;
    for t in tasks {
        for (seq, raw) in t.await.unwrap() {
            deliveries += 1;
            match reference.get(&seq) {
                Some(r) => assert_eq!(r, &raw, "seq {seq} differs between clients"),
                None => {
                    reference.insert(seq, raw);
                }
            }
        }
    }
    assert!(reference.contains_key(&target));
    println!("200 clients, {deliveries} deliveries, identical bytes per seq, no gaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_list_channels_and_http_endpoints() {
    let server = Server::start(&[]);
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let (status, list) = server.get_json("/channels").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    for stream in ["trade", "ticker", "book", "candle1m"] {
        for inst in ["BTC-USDT", "ETH-USDT"] {
            assert!(names.contains(&format!("{stream}.sim.{inst}").as_str()));
        }
    }
    assert!(names.len() >= 40, "at least 10 instruments x 4 streams");
    assert_eq!(server.get("/nope").await.0, 404);
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "tickwire_events_published_total",
        "tickwire_connections ",
        "tickwire_write_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    let rid = c.request_id();
    c.send(client_message::Kind::ListChannels(pb::ListChannels {
        request_id: rid,
        pattern: "book.sim.*".into(),
    }))
    .await;
    let listed = c
        .until(|k| match k {
            Kind::ChannelList(l) if l.request_id == rid => Some(l.clone()),
            _ => None,
        })
        .await;
    assert!(listed.channels.len() >= 10);
    assert!(
        listed
            .channels
            .iter()
            .all(|c| c.kind == "book" && c.channel.starts_with("book.sim.") && c.seq > 0)
    );

    c.subscribe(&["trade.sim.*", "ticker.sim.BTC-USDT"]).await;
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["subscriptions"].as_u64().unwrap() >= 13, "{stats}");
    assert_eq!(stats["subscriptions_per_channel"][BTC_TRADES], 1);
    assert_eq!(stats["connections"], 1);
    let rid = c.request_id();
    c.send(client_message::Kind::Unsubscribe(pb::Unsubscribe {
        request_id: rid,
        channels: vec!["trade.sim.*".into()],
    }))
    .await;
    let removed = c
        .until(|k| match k {
            Kind::Unsubscribed(u) if u.request_id == rid => Some(u.channels.clone()),
            _ => None,
        })
        .await;
    assert!(
        removed.contains(&BTC_TRADES.to_string()) && removed.contains(&"trade.sim.*".to_string())
    );
    // after the answer, no trade arrives; tickers keep flowing
    let mut tickers = 0;
    while tickers < 10 {
        if let Kind::Event(e) = c.next_msg().await {
            assert!(
                !e.channel.starts_with("trade."),
                "event after unsubscribe: {}",
                e.channel
            );
            tickers += 1;
        }
    }
    let (_, stats) = server.get_json("/stats").await;
    assert_eq!(stats["subscriptions_per_channel"][BTC_TRADES], 0);
    assert!(stats["messages_delivered"].as_u64().unwrap() > 10);
    assert!(stats["bytes_delivered"].as_u64().unwrap() > 1000);
    assert!(stats["events_published"].as_u64().unwrap() > 100);
    assert!(stats["uptime_secs"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_pings_flow_and_silent_clients_are_closed() {
    let server = Server::start(&["--heartbeat-interval", "300ms"]);
    let mut live = Client::connect(&server, Fmt::Proto).await;
    assert_eq!(live.welcome().await.heartbeat_interval_ms, 300);
    let mut silent = Client::connect(&server, Fmt::Proto).await;
    // The live client reads (tungstenite answers each ping with a pong).
    let mut pings = 0;
    let started = Instant::now();
    while pings < 5 {
        use futures_util::StreamExt;
        match tokio::time::timeout(support::WAIT, live.ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Ping(_) => pings += 1,
            Message::Close(c) => panic!("live client closed: {c:?}"),
            _ => {}
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(1200));
    live.ping().await;
    // The silent client never read, so never answered: it was closed with
    // 4000, which says "reconnect" (1000 would read as a deliberate close).
    let code = silent.closed_with().await;
    assert_eq!(code, Some(4000));
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["heartbeat_timeouts"].as_u64().unwrap() >= 1);
}

/// Liveness by progress: a client that keeps reading its events is alive
/// even though it never answers a ping (its pong would wait behind its own
/// backlog); only a client that neither sends nor reads is closed with 4000.
/// Before this rule it was closed after two intervals: the test reads until
/// five pings arrived (2.5 times the two intervals), never writing a byte
/// after its subscribe. The interval is 1 s, not less: the simulator's
/// trades must not pause for two intervals on a loaded test machine. The
/// lag probe (whose pings this client leaves unanswered too) would hold its
/// events back, and judging a late reader is the probe's job (lagged, 4008):
/// `--max-lag-age 0` turns probes off so this test sees the heartbeat alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_its_events_but_never_pongs_is_not_closed_by_the_heartbeat() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&["--heartbeat-interval", "1s", "--max-lag-age", "0"]);
    let mut raw = support::raw_connect(&server, "?format=json").await;
    let subscribe = br#"{"subscribe":{"channels":["trade.sim.*"]}}"#;
    raw.write_all(&support::raw_frame(true, 0x1, subscribe, true))
        .await
        .unwrap();
    // a reader of server frames (never masked), counting pings and events
    let (mut pings, mut texts) = (0, 0);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while pings < 5 {
        let n = tokio::time::timeout(support::WAIT, raw.read(&mut chunk))
            .await
            .expect("the server keeps sending")
            .unwrap();
        assert!(
            n > 0,
            "the server closed the connection after {pings} pings"
        );
        buf.extend_from_slice(&chunk[..n]);
        loop {
            if buf.len() < 2 {
                break;
            }
            let opcode = buf[0] & 0x0f;
            let (len, head) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if buf.len() < head + len {
                break;
            }
            let payload = buf[head..head + len].to_vec();
            buf.drain(..head + len);
            match opcode {
                0x9 => pings += 1,
                0x1 => texts += 1,
                0x8 => {
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    panic!("a reading client was closed with {code:?} after {pings} pings");
                }
                _ => {}
            }
        }
    }
    assert!(
        texts > pings,
        "events flowed between the pings ({texts} frames)"
    );
    let (_, stats) = server.get_json("/stats").await;
    assert_eq!(
        stats["heartbeat_timeouts"], 0,
        "nobody was closed by the heartbeat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_1001_to_every_client_and_exits_0() {
    sigterm_closes_every_client_and_exits_0(&[]).await;
}

/// Shutdown also waits for sources that run as a task of the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_sources_on_the_workers_exits_0() {
    sigterm_closes_every_client_and_exits_0(&["--sources-on", "workers"]).await;
}

async fn sigterm_closes_every_client_and_exits_0(args: &[&str]) {
    let mut server = Server::start(args);
    let mut clients = Vec::new();
    for fmt in [Fmt::Proto, Fmt::Json, Fmt::Proto] {
        let mut c = Client::connect(&server, fmt).await;
        c.welcome().await;
        c.subscribe(&["book.sim.*"]).await;
        clients.push(c);
    }
    server.signal("TERM");
    for c in &mut clients {
        assert_eq!(c.closed_with().await, Some(1001));
    }
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{:?}", server.log());
}
