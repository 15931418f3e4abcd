//! Issue 19, item 1: requests whose work is out of proportion to their
//! size. Each test replays one attack on loopback, bounded in count and
//! time, and prints what a healthy client went through meanwhile.

mod support;

use std::collections::HashSet;
use std::time::Instant;

use prost::Message as _;
use support::hostile::{RssSampler, Watcher, baseline_rss, memory_server, rss_back_to};
use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{self, ErrorCode, client_message, server_message::Kind};
use tokio::io::AsyncWriteExt;

fn subscribe(request_id: u64, channels: Vec<String>) -> client_message::Kind {
    client_message::Kind::Subscribe(pb::Subscribe {
        request_id,
        channels,
        ..Default::default()
    })
}

fn unsubscribe(request_id: u64, channels: Vec<String>) -> client_message::Kind {
    client_message::Kind::Unsubscribe(pb::Unsubscribe {
        request_id,
        channels,
    })
}

/// Reads until the answer (`subscribed`, `unsubscribed` or `error`) to
/// `request_id`; fails on any other answer to it.
async fn answer_to(c: &mut Client, request_id: u64) -> Kind {
    c.until(|k| match k {
        Kind::Error(e) if e.request_id == request_id => Some(k.clone()),
        Kind::Subscribed(s) if s.request_id == request_id => Some(k.clone()),
        Kind::Unsubscribed(u) if u.request_id == request_id => Some(k.clone()),
        _ => None,
    })
    .await
}

/// One attacker: three 64 KiB subscribes repeating `*.*.*` 9000 times,
/// each refused (over the name cap) or rate limited, never expanded.
async fn amplify(url: String) {
    let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
    c.welcome().await;
    let names = vec!["*.*.*".to_string(); 9000];
    assert!(
        pb::Subscribe {
            channels: names.clone(),
            ..Default::default()
        }
        .encoded_len()
            < 64 * 1024
    );
    for i in 0..3 {
        c.send(subscribe(100 + i, names.clone())).await;
    }
    for i in 0..3 {
        match answer_to(&mut c, 100 + i).await {
            Kind::Error(e) if e.code == ErrorCode::BadRequest as i32 => {
                assert!(e.message.contains("at most 256"), "{}", e.message);
                assert!(e.message.contains("--max-names-per-request"));
            }
            Kind::Error(e) => assert_eq!(e.code, ErrorCode::RateLimited as i32, "{e:?}"),
            Kind::Subscribed(s) => panic!(
                "9000 repeated patterns were expanded into a {}-channel answer",
                s.channels.len()
            ),
            other => panic!("{other:?}"),
        }
    }
}

/// Six attackers at once, each as [`amplify`]; returns when all are answered.
async fn six_attackers(server: &support::Server) {
    let mut attackers = Vec::new();
    for _ in 0..6 {
        attackers.push(tokio::spawn(amplify(server.ws_url(""))));
    }
    for a in attackers {
        a.await.expect("attacker");
    }
}

/// 64 KiB subscribes repeating `*.*.*` 9000 times used to be expanded once
/// per repetition (a 34 MB answer each). Now: over the per-request cap they
/// get one BAD_REQUEST; within it, repeats collapse and each channel is
/// answered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_patterns_collapse_and_huge_requests_are_refused() {
    let server = memory_server(&[]);
    let (_, stats) = server.get_json("/stats").await;
    assert_eq!(stats["limits"]["max_names_per_request"], 256, "{stats}");
    let watcher = Watcher::start(&server, &["trade.sim.*", "ticker.sim.*"]).await;
    // A first round of the same six attackers warms the allocator: the
    // pages mimalloc keeps per thread for reuse are not a leak (with one
    // warm-up attacker instead of six, 8 to 11.6 MiB stayed on a loaded
    // CI machine, measured). The baseline is taken after it, so a leak
    // shows as growth on the second, measured round.
    six_attackers(&server).await;
    let baseline = baseline_rss(&server).await;
    let sampler = RssSampler::start(&server);
    let started = Instant::now();
    six_attackers(&server).await;
    println!("six attackers answered in {:?}", started.elapsed());

    // within the cap, 256 copies of one pattern are one pattern
    let (_, channels) = server.get_json("/channels").await;
    let known = channels["channels"].as_array().unwrap().len();
    let mut c = Client::connect(&server, Fmt::Proto).await;
    assert_eq!(c.welcome().await.max_names_per_request, 256);
    c.send(subscribe(7, vec!["*.*.*".to_string(); 256])).await;
    let Kind::Subscribed(s) = answer_to(&mut c, 7).await else {
        panic!("256 names are within the cap");
    };
    let distinct: HashSet<&str> = s.channels.iter().map(|c| c.channel.as_str()).collect();
    assert_eq!(
        distinct.len(),
        s.channels.len(),
        "each channel answered once"
    );
    assert!(
        s.channels.len() >= known && s.channels.len() < known + 50,
        "{} channels answered, {known} known",
        s.channels.len()
    );
    drop(c);

    let peak = sampler.peak_kib();
    watcher.finish("subscribe amplification").await;
    println!("server RssAnon: baseline {baseline} KiB, peak {peak} KiB");
    assert!(
        peak < baseline + 64 * 1024,
        "the attack grew the server by {} KiB",
        peak - baseline
    );
    rss_back_to(&server, baseline, "subscribe amplification").await;
}

/// A subscribe naming thousands of bad names used to get one error frame
/// per name (31x amplification), queued without bound for clients that do
/// not read. Now one error per code, with every name in `channels`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bad_names_get_one_error_even_for_clients_that_do_not_read() {
    let server = memory_server(&[]);
    let watcher = Watcher::start(&server, &["trade.sim.*", "ticker.sim.*"]).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let bad: Vec<String> = (0..256).map(|i| format!("no such {i}")).collect();
    c.send(subscribe(5, bad.clone())).await;
    match c.next_msg().await {
        Kind::Error(e) => {
            assert_eq!(e.code, ErrorCode::InvalidChannel as i32);
            assert_eq!(e.request_id, 5);
            assert_eq!(e.channels, bad, "every refused name is listed");
            assert!(e.message.starts_with("256 names refused"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    // mixed: one error per code, then the answer for the good name
    let mut names: Vec<String> = (0..100).map(|i| format!("trade.sim.NOPE{i}")).collect();
    names.extend((0..100).map(|i| format!("bad{i}")));
    names.push("ticker.sim.BTC-USDT".into());
    c.send(subscribe(6, names)).await;
    let mut codes = Vec::new();
    loop {
        match c.next_msg().await {
            Kind::Error(e) => {
                assert_eq!(e.channels.len(), 100);
                codes.push(e.code);
            }
            Kind::Subscribed(s) => {
                assert_eq!(s.channels.len(), 1);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        codes,
        [
            ErrorCode::UnknownChannel as i32,
            ErrorCode::InvalidChannel as i32
        ]
    );
    // nothing else was queued: the next answer is the pong
    c.ping().await;

    // 100 connections that never read, each sending a 60 KB subscribe of
    // ~20 000 invalid names
    let baseline = baseline_rss(&server).await;
    let sampler = RssSampler::start(&server);
    let names: Vec<String> = (0..20_000).map(|i| format!("{}", i % 10)).collect();
    let request = pb::ClientMessage {
        kind: Some(subscribe(1, names)),
    }
    .encode_to_vec();
    assert!(request.len() < 64 * 1024);
    let frame = support::raw_frame(true, 0x2, &request, true);
    let (_, before) = server.get_json("/stats").await;
    let errors_before = before["errors_sent"].as_u64().unwrap();
    let mut silent = Vec::new();
    for _ in 0..100 {
        let mut s = support::raw_connect(&server, "").await;
        s.write_all(&frame).await.unwrap();
        silent.push(s);
    }
    // every request was handled once the error count moved by 100
    support::eventually("100 requests handled", || async {
        let (_, stats) = server.get_json("/stats").await;
        if stats["errors_sent"].as_u64().unwrap() >= errors_before + 100 {
            Ok(())
        } else {
            Err(stats)
        }
    })
    .await;
    let (_, stats) = server.get_json("/stats").await;
    let errors = stats["errors_sent"].as_u64().unwrap() - errors_before;
    let peak = sampler.peak_kib();
    println!(
        "100 silent clients x 20 000 bad names: {errors} error frames, RssAnon {baseline} -> peak {peak} KiB"
    );
    assert!(errors <= 100, "{errors} error frames for 100 requests");
    assert!(
        peak < baseline + 64 * 1024,
        "grew by {} KiB",
        peak - baseline
    );
    drop(silent);
    watcher.finish("bad-name floods").await;
    rss_back_to(&server, baseline, "100 silent bad-name floods").await;
}

/// The rate limit charges work, not messages: ten requests that each name
/// 256 channels cost far more than ten pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_charged_by_the_work_they_cause() {
    let server = Server::start(&["--max-requests-per-second", "50"]);
    let watcher = Watcher::start(&server, &["trade.sim.*"]).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let names: Vec<String> = (0..256).map(|i| format!("trade.sim.X{i}")).collect();
    for i in 0..10 {
        c.send(unsubscribe(10 + i, names.clone())).await;
    }
    let mut limited = 0;
    for i in 0..10 {
        match answer_to(&mut c, 10 + i).await {
            Kind::Error(e) => {
                assert_eq!(e.code, ErrorCode::RateLimited as i32, "{e:?}");
                limited += 1;
            }
            Kind::Unsubscribed(u) => assert!(u.channels.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    println!("10 unsubscribes of 256 names: {limited} refused as RATE_LIMITED");
    assert!(
        limited >= 5,
        "only {limited} of 10 heavy requests were limited"
    );
    // ten light requests on a fresh connection all pass
    let mut light = Client::connect(&server, Fmt::Proto).await;
    light.welcome().await;
    for _ in 0..10 {
        light.ping().await;
    }
    watcher.finish("heavy requests").await;
}

/// Unsubscribing thousands of channels touches each subscription once (it
/// used to rebuild the connection's whole index per name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_thousands_of_channels_is_incremental() {
    const KEY: &str = "hostile-test-publish-key";
    const N: usize = 3000;
    let server = Server::start(&[
        "--publish-key",
        KEY,
        "--max-subscriptions",
        "10000",
        "--max-names-per-request",
        "4000",
        "--max-requests-per-second",
        "0",
    ]);
    let events: Vec<serde_json::Value> = (0..N)
        .map(|i| serde_json::json!({"channel": format!("custom.load.c{i}"), "custom": {"json": "{}"}}))
        .collect();
    let body = serde_json::to_string(&events).unwrap();
    let (status, text) = support_post(&server, "/publish/batch", KEY, &body).await;
    assert_eq!(status, 200, "{text}");
    let watcher = Watcher::start(&server, &["trade.sim.*"]).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let s = c.subscribe(&["custom.load.*"]).await;
    assert_eq!(s.channels.len(), N);
    let names: Vec<String> = (0..N).map(|i| format!("custom.load.c{i}")).collect();
    let t0 = Instant::now();
    c.send(unsubscribe(3, names)).await;
    let Kind::Unsubscribed(u) = answer_to(&mut c, 3).await else {
        panic!("unsubscribe refused");
    };
    println!(
        "unsubscribe of {N} names answered in {:?} (goal: milliseconds)",
        t0.elapsed()
    );
    assert_eq!(u.channels.len(), N);
    let t0 = Instant::now();
    c.send(unsubscribe(4, vec!["custom.load.*".into()])).await;
    let Kind::Unsubscribed(u) = answer_to(&mut c, 4).await else {
        panic!("unsubscribe refused");
    };
    assert_eq!(u.channels, ["custom.load.*"]);
    println!("pattern unsubscribe answered in {:?}", t0.elapsed());
    let (_, stats) = server.get_json("/stats").await;
    // the watcher's trade channels
    let base = stats["subscriptions_per_channel"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("trade.sim."))
        .count() as u64;
    assert_eq!(stats["subscriptions"], base, "{}", stats["subscriptions"]);
    // and back: a pattern plus exact names, removed pattern-first
    c.subscribe(&["custom.load.*"]).await;
    c.subscribe(&["custom.load.c1", "custom.load.c2"]).await;
    c.send(unsubscribe(5, vec!["custom.load.*".into()])).await;
    let Kind::Unsubscribed(u) = answer_to(&mut c, 5).await else {
        panic!("unsubscribe refused");
    };
    assert_eq!(u.channels.len(), 1 + N - 2, "exact names stay");
    let (_, stats) = server.get_json("/stats").await;
    assert_eq!(stats["subscriptions"], base + 2);
    watcher.finish("unsubscribing thousands").await;
}

/// POSTs `body` with the publish key; (status, body).
async fn support_post(server: &Server, path: &str, key: &str, body: &str) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(support::WAIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    (
        status,
        text.split("\r\n\r\n").nth(1).unwrap_or_default().into(),
    )
}
