//! Issue 19, item 2: strangers cannot create channels, and the scanner is
//! shared fairly.

mod support;

use std::time::{Duration, Instant};

use support::hostile::{Watcher, baseline_rss, memory_server, rss_back_to};
use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{
    ErrorCode, RequestScan, client_message, event::Payload, server_message::Kind,
};

fn scan(request_id: u64, venue: &str) -> client_message::Kind {
    client_message::Kind::RequestScan(RequestScan {
        request_id,
        top_n: 3,
        venue: venue.into(),
    })
}

fn analytics_server(extra: &[&str]) -> Server {
    analytics_server_with(extra, Server::start)
}

/// An analytics server started by `start` (plain, or [`memory_server`]).
fn analytics_server_with(extra: &[&str], start: fn(&[&str]) -> Server) -> Server {
    let mut args = vec![
        "--signal-interval",
        "1s",
        "--candle-intervals",
        "1s,1m",
        "--sim-seed",
        "5",
    ];
    args.extend_from_slice(extra);
    start(&args)
}

/// `request_scan` of a made-up venue used to create `scan.<venue>.all`
/// for good. Now the requester alone gets a `scan_error`, and the channel
/// list does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_an_unknown_venue_creates_nothing() {
    let server = analytics_server_with(&["--max-requests-per-second", "0"], memory_server);
    let baseline = baseline_rss(&server).await;
    let (_, before) = server.get_json("/channels").await;
    let count_before = before["channels"].as_array().unwrap().len();
    let watcher = Watcher::start(&server, &["trade.sim.*"]).await;
    let mut bystander = Client::connect(&server, Fmt::Proto).await;
    bystander.welcome().await;
    bystander.subscribe(&["scan.*.*"]).await;
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    for i in 0..200u64 {
        c.send(scan(1000 + i, &format!("fake{i}"))).await;
        let e = c
            .until(|k| match k {
                Kind::Event(e) => match &e.payload {
                    Some(Payload::ScanError(s)) if s.request_id == 1000 + i => Some(e.clone()),
                    _ => None,
                },
                Kind::Error(e) if e.request_id == 1000 + i => panic!("{e:?}"),
                _ => None,
            })
            .await;
        assert_eq!(e.channel, format!("scan.fake{i}.all"));
        assert_eq!(e.seq, 0, "outside any channel's history");
    }
    let (_, after) = server.get_json("/channels").await;
    let names: Vec<&str> = after["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("fake")),
        "channels were created: {names:?}"
    );
    // the analytics of the sim venue may have added its own channels
    // meanwhile, never 200
    assert!(
        names.len() < count_before + 50,
        "{} -> {}",
        count_before,
        names.len()
    );
    // the pattern subscriber saw none of it (ping barrier)
    bystander.ping().await;
    let s = bystander.subscribe(&["scan.*.*"]).await;
    assert!(s.channels.iter().all(|c| !c.channel.contains("fake")));
    watcher.finish("200 scans of made-up venues").await;
    drop((c, bystander));
    rss_back_to(&server, baseline, "200 scans of made-up venues").await;
}

/// Two clients that re-request a scan the moment theirs ends used to hold
/// both scan slots, so a third client's scans were mostly refused. Now
/// scans wait their turn in arrival order: every one of the victim's scans
/// runs, and the scan event rate stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_are_shared_fairly_and_their_event_rate_is_bounded() {
    let server = analytics_server(&[]);
    // the scanner needs signals, which start after the first closed candle
    let mut watch = Client::connect(&server, Fmt::Proto).await;
    watch.welcome().await;
    watch.subscribe(&["signal.sim.*"]).await;
    let mut signalled = std::collections::HashSet::new();
    while signalled.len() < 12 {
        if let Kind::Event(e) = watch.next_msg().await {
            signalled.insert(e.channel);
        }
    }
    drop(watch);
    let healthy = Watcher::start(&server, &["trade.sim.*"]).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let url = server.ws_url("");
        let stop = stop.clone();
        attackers.push(tokio::spawn(async move {
            let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
            c.welcome().await;
            let mut rid = 1u64;
            let mut scans = 0u32;
            c.send(scan(rid, "sim")).await;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let again = match c.next_msg().await {
                    Kind::Event(e) => matches!(
                        &e.payload,
                        Some(Payload::ScanDone(d)) if d.request_id == rid
                    ),
                    Kind::Error(e) => {
                        assert_eq!(e.code, ErrorCode::RateLimited as i32, "{e:?}");
                        // back off a little, as a client obeying RATE_LIMITED
                        // would: the client's behaviour, not a wait
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        true
                    }
                    _ => false,
                };
                if again {
                    scans += 1;
                    rid += 1;
                    c.send(scan(rid, "sim")).await;
                }
            }
            scans
        }));
    }
    let mut victim = Client::connect(&server, Fmt::Proto).await;
    victim.welcome().await;
    let seq_before = scan_seq(&server).await;
    let t0 = Instant::now();
    let mut refused = 0;
    let mut waits = Vec::new();
    for i in 0..5u64 {
        let asked = Instant::now();
        victim.send(scan(500 + i, "sim")).await;
        loop {
            match victim.next_msg().await {
                Kind::Event(e) => match &e.payload {
                    Some(Payload::ScanDone(d)) if d.request_id == 500 + i => break,
                    Some(Payload::ScanError(s)) if s.request_id == 500 + i => {
                        panic!("scan failed: {}", s.message)
                    }
                    _ => {}
                },
                Kind::Error(e) if e.request_id == 500 + i => {
                    refused += 1;
                    println!("victim refused: {}", e.message);
                    break;
                }
                _ => {}
            }
        }
        waits.push(asked.elapsed());
    }
    let elapsed = t0.elapsed();
    // every scan event is one seq of scan.sim.all
    let events = scan_seq(&server).await - seq_before;
    stop.store(true, std::sync::atomic::Ordering::Release);
    for a in attackers {
        a.abort();
    }
    healthy.finish("scan contention").await;
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "victim: {refused} of 5 scans refused, waits {waits:?}; about {rate:.0} scan events/s server-wide"
    );
    assert_eq!(refused, 0, "the victim's scans were refused");
    // two slots, each held >= 250 ms per scan of ~53 events: ~424/s at most
    assert!(rate < 800.0, "{rate:.0} scan events/s");
}

/// The last seq of `scan.sim.all` (0 while it does not exist).
async fn scan_seq(server: &Server) -> u64 {
    let (_, list) = server.get_json("/channels").await;
    list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "scan.sim.all")
        .map_or(0, |c| c["seq"].as_u64().unwrap())
}
