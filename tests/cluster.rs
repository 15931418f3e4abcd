//! Cluster mode over NATS JetStream, end to end: a real `nats-server -js`,
//! real `tickwire` processes (ingest and edges), real WebSocket clients.
//! See "Running several nodes" in the README.

mod support;

use std::collections::HashMap;

use support::nats::Nats;
use support::{Client, Fmt, Server, Starting, WAIT, eventually, guarded_within};
use tickwire::protocol::pb::event::Payload;
use tickwire::protocol::pb::{ResumePosition, Subscribe, client_message, server_message};

const TRADES: &str = "trade.sim.BTC-USDT";
const OTHER: &str = "trade.sim.ETH-USDT";
const BOOK: &str = "book.sim.BTC-USDT";

fn ingest_args(nats: &Nats, rate: &str) -> Vec<String> {
    [
        "--nats-url",
        &nats.url(),
        "--sim-instruments",
        "BTC-USDT,ETH-USDT",
        "--sim-rate",
        rate,
    ]
    .map(String::from)
    .to_vec()
}

fn ingest(nats: &Nats) -> Server {
    let args = ingest_args(nats, "400");
    Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn edge(nats: &Nats) -> Server {
    Server::start(&["--source", "none", "--nats-url", &nats.url()])
}

/// Waits until `server`'s `/stats` satisfies `ok`.
async fn stats_until(server: &Server, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let ok = &ok;
    eventually(what, || async move {
        let (_, stats) = server.get_json("/stats").await;
        if ok(&stats) { Ok(()) } else { Err(stats) }
    })
    .await
}

/// Waits until the ingest has stored events in JetStream.
async fn ingest_publishing(ingest: &Server) {
    stats_until(ingest, "ingest publishes", |s| {
        s["cluster"]["published"].as_u64() > Some(100)
    })
    .await;
}

/// Subscribes with optional resume positions; returns `(seq, epoch,
/// recovered)` per channel.
async fn subscribe(
    c: &mut Client,
    channels: &[&str],
    resume: &[(&str, u64, &str)],
) -> HashMap<String, (u64, String, bool)> {
    let request_id = c.request_id();
    c.send(client_message::Kind::Subscribe(Subscribe {
        request_id,
        channels: channels.iter().map(|s| s.to_string()).collect(),
        resume: resume
            .iter()
            .map(|(ch, seq, epoch)| {
                (
                    ch.to_string(),
                    ResumePosition {
                        seq: *seq,
                        epoch: epoch.to_string(),
                    },
                )
            })
            .collect(),
        snapshot: None,
        conflate_ms: 0,
    }))
    .await;
    let s = c
        .until(|k| match k {
            server_message::Kind::Subscribed(s) if s.request_id == request_id => Some(s.clone()),
            server_message::Kind::Error(e) if e.request_id == request_id => {
                panic!("subscribe failed: {e:?}")
            }
            _ => None,
        })
        .await;
    s.channels
        .into_iter()
        .map(|st| (st.channel, (st.seq, st.epoch, st.recovered)))
        .collect()
}

/// The next `n` events of `channel`: `(seq, trade id, or the payload's
/// kind for other channels)`.
async fn events(c: &mut Client, channel: &str, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = c
            .until(|k| match k {
                server_message::Kind::Event(e) if e.channel == channel => Some(e.clone()),
                server_message::Kind::Lagged(l) => panic!("lagged: {l:?}"),
                _ => None,
            })
            .await;
        let id = match ev.payload {
            Some(Payload::Trade(t)) => t.trade_id,
            Some(Payload::BookSnapshot(_)) => "book_snapshot".into(),
            Some(Payload::BookUpdate(_)) => "book_update".into(),
            _ => String::new(),
        };
        out.push((ev.seq, id));
    }
    out
}

/// The value of an unlabelled series in an OpenMetrics text; panics when
/// it is absent.
fn metric(text: &str, name: &str) -> f64 {
    support::metric_sample(text, &format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

fn assert_consecutive(from: u64, got: &[(u64, String)], what: &str) {
    let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
    let want: Vec<u64> = (from..from + got.len() as u64).collect();
    assert_eq!(seqs, want, "{what}: a gap or a duplicate");
}

/// One ingest, two edges: the same seqs (and events) on both; a client of
/// an edge killed with SIGKILL resumes on the other with no gap and no
/// duplicate; a channel nobody subscribed to on an edge costs it no NATS
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_agree_and_a_client_moves_between_them() {
    let nats = Nats::start();
    let ingest = ingest(&nats);
    ingest_publishing(&ingest).await;
    let edge_a = edge(&nats);
    let edge_b = edge(&nats);

    let mut ca = Client::connect(&edge_a, Fmt::Proto).await;
    let mut cb = Client::connect(&edge_b, Fmt::Json).await;
    let sa = subscribe(&mut ca, &[TRADES, BOOK], &[]).await;
    let sb = subscribe(&mut cb, &[TRADES, BOOK], &[]).await;
    let epoch = sa[TRADES].1.clone();
    assert_eq!(sb[TRADES].1, epoch, "one epoch for the cluster");
    let (_, ingest_health) = ingest.get_json("/health").await;
    assert_eq!(ingest_health["epoch"], epoch.as_str());
    assert_eq!(ingest_health["cluster"], "ok");

    let a = events(&mut ca, TRADES, 40).await;
    let b = events(&mut cb, TRADES, 40).await;
    assert_consecutive(sa[TRADES].0 + 1, &a, "edge A");
    assert_consecutive(sb[TRADES].0 + 1, &b, "edge B");
    let by_seq: HashMap<u64, &String> = a.iter().map(|(s, id)| (*s, id)).collect();
    let common: Vec<_> = b.iter().filter(|(s, _)| by_seq.contains_key(s)).collect();
    assert!(!common.is_empty(), "the two windows overlap: {a:?} {b:?}");
    for (seq, id) in common {
        assert_eq!(by_seq[seq], id, "seq {seq} is the same trade on both edges");
    }

    // interest: edge B never received a message of a channel nobody on it
    // wanted, while the ingest published plenty of it
    let (_, ingest_stats) = ingest.get_json("/stats").await;
    assert!(ingest_stats["cluster"]["published"].as_u64() > Some(200));
    let (_, b_stats) = edge_b.get_json("/stats").await;
    let channels = &b_stats["cluster"]["channels"];
    assert!(channels[TRADES]["received"].as_u64() > Some(0), "{b_stats}");
    assert_eq!(
        channels[OTHER]["received"].as_u64().unwrap_or(0),
        0,
        "an unwanted channel cost the edge messages: {b_stats}"
    );

    // /metrics: the same link counters for Prometheus
    let (_, ingest_metrics) = ingest.get("/metrics").await;
    let published = metric(&ingest_metrics, "tickwire_cluster_published_events_total");
    assert!(published > 200.0, "{ingest_metrics}");
    assert_eq!(metric(&ingest_metrics, "tickwire_cluster_connected"), 1.0);
    let (_, edge_metrics) = edge_b.get("/metrics").await;
    assert!(metric(&edge_metrics, "tickwire_cluster_received_messages_total") > 0.0);

    // kill -9 edge A; its client resumes on edge B from its last seq
    let last = a.last().unwrap().0;
    edge_a.signal("KILL");
    drop(ca);
    let mut moved = Client::connect(&edge_b, Fmt::Proto).await;
    let sm = subscribe(&mut moved, &[TRADES], &[(TRADES, last, &epoch)]).await;
    assert_eq!(sm[TRADES], (last, epoch.clone(), true), "resumed on edge B");
    let after = events(&mut moved, TRADES, 30).await;
    assert_consecutive(last + 1, &after, "moved client");
    drop(edge_a);
}

/// The ingest restarts: same epoch, seqs go on, and an edge's client sees
/// no gap and no duplicate across it. Then an edge restarts with an empty
/// ring and serves a resume from JetStream's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_the_epoch_and_history() {
    let nats = Nats::start();
    let mut first = ingest(&nats);
    ingest_publishing(&first).await;
    let edge1 = edge(&nats);
    let mut c = Client::connect(&edge1, Fmt::Proto).await;
    let s = subscribe(&mut c, &[TRADES], &[]).await;
    let (start, epoch, _) = s[TRADES].clone();
    let before = events(&mut c, TRADES, 20).await;
    assert_consecutive(start + 1, &before, "before the restart");

    first.signal("TERM");
    first.wait_exit(WAIT);
    let second = ingest(&nats);
    let (_, health) = second.get_json("/health").await;
    assert_eq!(health["epoch"], epoch.as_str(), "a restart keeps the epoch");
    // the edge's client goes on across the restart
    let across = events(&mut c, TRADES, 200).await;
    let last_before = before.last().unwrap().0;
    assert_consecutive(last_before + 1, &across, "across the ingest restart");
    let (_, second_stats) = second.get_json("/stats").await;
    assert!(
        second_stats["cluster"]["published"].as_u64() > Some(0),
        "the new ingest published: {second_stats}"
    );

    // an edge restarted with an empty ring serves the resume from JetStream
    edge1.signal("KILL");
    drop(edge1);
    let edge2 = edge(&nats);
    let mut r = Client::connect(&edge2, Fmt::Proto).await;
    let from = before[0].0; // long before anything edge2 ever held
    let sr = subscribe(&mut r, &[TRADES], &[(TRADES, from, &epoch)]).await;
    assert_eq!(
        sr[TRADES],
        (from, epoch.clone(), true),
        "resumed from JetStream"
    );
    let replay = events(&mut r, TRADES, 100).await;
    assert_consecutive(from + 1, &replay, "resume on a restarted edge");
    let by_seq: HashMap<u64, &String> = before
        .iter()
        .chain(&across)
        .map(|(s, id)| (*s, id))
        .collect();
    for (seq, id) in &replay {
        if let Some(seen) = by_seq.get(seq) {
            assert_eq!(*seen, id, "seq {seq} replayed as the same event");
        }
    }
}

/// JetStream loses the history (the events stream is deleted) and an
/// ingest starts again in a new epoch, numbering every channel from 1: a
/// running edge notices by itself, closes its client with 1001 and exits
/// non-zero (for its supervisor to start it again), its log naming both
/// epochs. A client resuming with the old epoch on an edge started
/// afterwards gets `recovered = false` and the new epoch, never a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_stops_when_the_history_is_lost() {
    let nats = Nats::start();
    let mut first = ingest(&nats);
    ingest_publishing(&first).await;
    let mut old_edge = edge(&nats);
    let mut c = Client::connect(&old_edge, Fmt::Proto).await;
    let s = subscribe(&mut c, &[TRADES], &[]).await;
    let (start, old_epoch, _) = s[TRADES].clone();
    let seen = events(&mut c, TRADES, 20).await;
    assert_consecutive(start + 1, &seen, "before the history is lost");
    let last_seen = seen.last().unwrap().0;

    first.signal("TERM");
    first.wait_exit(WAIT);
    let nc = async_nats::connect(nats.url())
        .await
        .expect("connect to NATS");
    async_nats::jetstream::new(nc)
        .delete_stream(tickwire::cluster::EVENTS_STREAM)
        .await
        .expect("delete the events stream");
    let second = ingest(&nats);
    let (_, health) = second.get_json("/health").await;
    let new_epoch = health["epoch"].as_str().expect("an epoch").to_string();
    assert_ne!(new_epoch, old_epoch, "lost history makes a new epoch");

    // the running edge tells its client and stops by itself
    assert_eq!(
        c.closed_with().await,
        Some(1001),
        "the edge's client is closed"
    );
    let status = old_edge.wait_exit(WAIT);
    assert!(!status.success(), "the edge exits non-zero: {status}");
    let log = old_edge.log();
    assert!(
        log.iter().any(|l| l.contains("epoch changed")
            && l.contains(&old_epoch)
            && l.contains(&new_epoch)),
        "the edge's log names both epochs: {log:#?}"
    );

    // started again (by its supervisor), an edge serves the new epoch: the
    // old position is not recovered, and events go on from the answer
    let new_edge = edge(&nats);
    let mut r = Client::connect(&new_edge, Fmt::Proto).await;
    let sr = subscribe(&mut r, &[TRADES], &[(TRADES, last_seen, &old_epoch)]).await;
    let (from, epoch, recovered) = sr[TRADES].clone();
    assert!(!recovered, "the old epoch's position is not recovered");
    assert_eq!(epoch, new_epoch, "the new edge serves the new epoch");
    let after = events(&mut r, TRADES, 20).await;
    assert_consecutive(from + 1, &after, "on the new edge");
}

/// Two ingests with the same sources: one active under the lease, one
/// standby. kill -9 of the active one under load: the standby takes over in
/// the same epoch, seqs go on with no gap and no duplicate for an edge's
/// client, and the book's next event is a fresh snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_ingest_takes_over_after_kill_9() {
    let nats = Nats::start();
    let args = ingest_args(&nats, "2000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let active = Server::start(&args);
    ingest_publishing(&active).await;
    let standby = Starting::spawn(&args);
    eventually("the standby's log line", || {
        let log = standby.log();
        std::future::ready(if log.iter().any(|l| l.contains("standby")) {
            Ok(())
        } else {
            Err(log)
        })
    })
    .await;
    let edge = edge(&nats);
    let mut trades = Client::connect(&edge, Fmt::Proto).await;
    let mut books = Client::connect(&edge, Fmt::Proto).await;
    let st = subscribe(&mut trades, &[TRADES], &[]).await;
    let sb = subscribe(&mut books, &[BOOK], &[]).await;
    let epoch = st[TRADES].1.clone();
    let before = events(&mut trades, TRADES, 50).await;
    assert_consecutive(st[TRADES].0 + 1, &before, "before the failover");
    let mut books_before = events(&mut books, BOOK, 51).await;
    // the edge's book (bootstrapped from JetStream) came as the snapshot
    let snapshot = books_before.remove(0);
    assert_eq!(snapshot, (sb[BOOK].0, "book_snapshot".to_string()));
    assert_consecutive(sb[BOOK].0 + 1, &books_before, "book before the failover");

    active.signal("KILL");
    let taken_over = standby.ready(WAIT);
    let (_, health) = taken_over.get_json("/health").await;
    assert_eq!(health["epoch"], epoch.as_str(), "same epoch after failover");
    // where the new ingest is now: the edge's client must get past it
    let mut direct = Client::connect(&taken_over, Fmt::Proto).await;
    let now = subscribe(&mut direct, &[TRADES], &[]).await[TRADES].0;
    let mut after = Vec::new();
    while after
        .last()
        .is_none_or(|(s, _): &(u64, String)| *s <= now + 20)
    {
        after.extend(events(&mut trades, TRADES, 10).await);
    }
    let last_before = before.last().unwrap().0;
    assert_consecutive(last_before + 1, &after, "trades across the failover");

    let book_after = events(&mut books, BOOK, 200).await;
    assert_consecutive(
        books_before.last().unwrap().0 + 1,
        &book_after,
        "book across the failover",
    );
    let first_snapshot = book_after.iter().position(|(_, k)| k == "book_snapshot");
    let first_snapshot =
        first_snapshot.unwrap_or_else(|| panic!("no fresh snapshot: {book_after:?}"));
    assert!(
        book_after[first_snapshot + 1..]
            .iter()
            .all(|(_, k)| k == "book_update"),
        "one snapshot, then updates"
    );
    let (_, stats) = taken_over.get_json("/stats").await;
    assert!(stats["cluster"]["published"].as_u64() > Some(0), "{stats}");
}

/// A raw HTTP/1.1 POST with a publish key: (status, body as JSON).
async fn post(server: &Server, key: &str, body: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or_default())
}

/// `POST /publish` on an edge goes to the ingest, which assigns the seq;
/// the answer carries it and the edge's subscribers get the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_an_edge_is_numbered_by_the_ingest() {
    const KEY: &str = "cluster-publish-key";
    const ALERTS: &str = "custom.app.alerts";
    let nats = Nats::start();
    let mut args = ingest_args(&nats, "100");
    args.extend(["--publish-key".to_string(), KEY.to_string()]);
    let ingest = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let edge = Server::start(&[
        "--source",
        "none",
        "--nats-url",
        &nats.url(),
        "--publish-key",
        KEY,
    ]);
    let body = format!(r#"{{"channel": "{ALERTS}", "custom": {{"json": "{{\"n\": 1}}"}}}}"#);
    let (status, answer) = post(&edge, KEY, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["seq"], 1, "{answer}");
    let (status, answer) = post(&edge, "wrong", &body).await;
    assert_eq!(status, 401, "the edge checks the key: {answer}");

    let mut c = Client::connect(&edge, Fmt::Json).await;
    let s = subscribe(&mut c, &[ALERTS], &[]).await;
    assert_eq!(s[ALERTS].0, 1);
    let (status, answer) = post(&edge, KEY, &body).await;
    assert_eq!((status, answer["seq"].as_u64()), (200, Some(2)), "{answer}");
    let got = events(&mut c, ALERTS, 1).await;
    assert_eq!(got[0].0, 2);
    // the ingest holds the same channel at the same seq
    let mut direct = Client::connect(&ingest, Fmt::Proto).await;
    assert_eq!(subscribe(&mut direct, &[ALERTS], &[]).await[ALERTS].0, 2);
    // a bad event is refused by the ingest, and the edge says so
    let (status, answer) = post(&edge, KEY, r#"{"channel": "bad name"}"#).await;
    assert_eq!(status, 400, "{answer}");
}

/// NATS goes away and comes back: the edge says so in /health, keeps its
/// clients, and then goes on with no silent gap (a gap, if any, comes
/// with `lagged`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_survives_a_nats_outage() {
    let mut nats = Nats::start();
    let ingest = ingest(&nats);
    ingest_publishing(&ingest).await;
    let edge = edge(&nats);
    let mut c = Client::connect(&edge, Fmt::Proto).await;
    let s = subscribe(&mut c, &[TRADES], &[]).await;
    let before = events(&mut c, TRADES, 10).await;
    assert_consecutive(s[TRADES].0 + 1, &before, "before the outage");

    nats.stop();
    let edge_ref = &edge;
    let health_is = move |want: &'static str| {
        eventually(want, move || async move {
            let edge = edge_ref;
            let (status, h) = edge.get_json("/health").await;
            assert_eq!(status, 200, "an edge without NATS still serves");
            if h["cluster"] == want { Ok(()) } else { Err(h) }
        })
    };
    health_is("disconnected").await;
    // the edge still answers clients (a second one: a ping skips events)
    let mut other = Client::connect(&edge, Fmt::Json).await;
    other.ping().await;
    nats.restart();
    health_is("ok").await;

    // after the outage: more events, consecutive unless `lagged` said so
    let mut last = before.last().unwrap().0;
    let mut got = 0;
    let mut lagged = false;
    guarded_within(WAIT * 2, "100 trades after the outage", async {
        while got < 100 {
            match c.next_msg().await {
                server_message::Kind::Event(e) if e.channel == TRADES => {
                    if !(e.seq == last + 1 || (lagged && e.seq > last)) {
                        let (_, es) = edge.get_json("/stats").await;
                        let (_, is) = ingest.get_json("/stats").await;
                        panic!(
                            "silent gap or duplicate: {last} then {}\nedge: {}\ningest: {}",
                            e.seq, es["cluster"], is["cluster"]
                        );
                    }
                    lagged = false;
                    last = e.seq;
                    got += 1;
                }
                server_message::Kind::Lagged(_) => lagged = true,
                _ => {}
            }
        }
    })
    .await;
}

/// A backlog in the ingest's outbox goes to JetStream as few messages of
/// many consecutive events each (64 at most), and an edge replays them
/// one by one: a resume from JetStream's history is gap-free and in order.
/// The ingest runs in this test's one thread, so the 1000 events published
/// here are all in the outbox before its publisher first looks: exactly 8
/// messages per channel, whatever the machine's speed.
#[tokio::test(flavor = "current_thread")]
async fn a_backlog_is_stored_many_events_per_message_and_replayed_in_order() {
    use std::sync::Arc;
    use tickwire::cluster::{self, Link, Settings};
    use tickwire::feed::{Hub, Registry, RingLimits};
    use tickwire::metrics::Metrics;
    use tickwire::protocol::pb::Trade;

    let nats = Nats::start();
    let settings = Settings {
        nats_url: nats.url(),
        nats_creds: None,
        nats_tls_ca: None,
        nats_replicas: 1,
        edge: false,
        history_messages: 10_000,
        history_seconds: 300,
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let link = Link::connect(&settings, &shutdown).await.expect("connect");
    let epoch = link.epoch().to_string();
    let registry = Arc::new(Registry::new(RingLimits {
        max_messages: 10_000,
        max_age_ns: 0,
    }));
    let hub = Arc::new(Hub::new(
        registry,
        epoch.as_str().into(),
        0,
        Arc::new(Metrics::default()),
    ));
    let node = cluster::start(&settings, link, &hub, &shutdown)
        .await
        .expect("ingest");
    let channels = [hub.channel(TRADES).unwrap(), hub.channel(OTHER).unwrap()];
    for i in 1..=500 {
        for ch in &channels {
            let trade = Trade {
                trade_id: format!("{}-{i}", ch.name),
                ..Default::default()
            };
            hub.publish(ch, 0, Payload::Trade(trade)).unwrap();
        }
    }
    let node = &node;
    eventually("JetStream acknowledged the 1000 events", || async move {
        let s = node.stats_json();
        if s["published"] == 1000 {
            Ok(())
        } else {
            Err(s)
        }
    })
    .await;
    let stats = node.stats_json();
    assert_eq!(stats["dropped"], 0, "{stats}");
    assert_eq!(
        stats["messages"], 16,
        "ceil(500 / 64) messages per channel: {stats}"
    );

    // an edge starts with an empty ring: the resume is served from the
    // batched history, event by event
    let edge = edge(&nats);
    let mut c = Client::connect(&edge, Fmt::Proto).await;
    let s = subscribe(&mut c, &[TRADES], &[(TRADES, 1, &epoch)]).await;
    assert_eq!(
        s[TRADES],
        (1, epoch.clone(), true),
        "resumed from JetStream"
    );
    let got = events(&mut c, TRADES, 499).await;
    assert_consecutive(2, &got, "replayed history");
    let ids: Vec<String> = (2..=500).map(|i| format!("{TRADES}-{i}")).collect();
    assert_eq!(got.into_iter().map(|e| e.1).collect::<Vec<_>>(), ids);
    shutdown.cancel();
    node.finish(std::time::Duration::from_secs(5)).await;
}
