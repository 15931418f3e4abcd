//! Slow readers with the default configuration: a client reading slower
//! than the feed is told (`lagged`) within seconds instead of reading stale
//! data out of kernel buffers, and a client that stops reading is closed
//! with a close frame (4008). Healthy clients beside them keep their pace.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::hostile::quiet_rss;
use support::{Client, ContractChecker, Fmt, Server, WAIT};
use tickwire::protocol::now_ns;
use tickwire::protocol::pb::server_message::Kind;

/// A healthy subscriber of `*.sim.*` reading as fast as it can until
/// `stop`; returns (events, longest silence between two frames).
fn healthy_reader(
    server: &Server,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, Duration)> {
    let url = server.ws_url("");
    tokio::spawn(async move {
        let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
        c.welcome().await;
        let mut check = ContractChecker::default();
        check.subscribed(&c.subscribe(&["*.sim.*"]).await);
        let mut last = Instant::now();
        let mut longest = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let kind = c.next_msg().await;
            check.observe(&kind);
            longest = longest.max(last.elapsed());
            last = Instant::now();
        }
        assert_eq!(check.lagged, 0, "the healthy client kept up");
        (check.events, longest)
    })
}

/// Waits (hang guard `within`) until the server's `/stats` satisfies `ok`.
async fn stats_until(
    server: &Server,
    within: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) {
    let ok = &ok;
    support::eventually_within(within, what, || async move {
        let (_, stats) = server.get_json("/stats").await;
        if ok(&stats) { Ok(()) } else { Err(stats) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_at_a_quarter_of_the_feed_rate_is_told_within_seconds() {
    // the default configuration: no lag, buffer or timeout flags
    let server = Server::start_with_env(&[], &[("MIMALLOC_PURGE_DELAY", "0")]);
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_reader(&server, stop.clone());

    // the feed's rate, seen by a client that keeps up
    let mut probe = Client::connect(&server, Fmt::Proto).await;
    probe.welcome().await;
    probe.subscribe(&["*.sim.*"]).await;
    let t0 = Instant::now();
    let mut n = 0u64;
    // a second's reading measures the rate the slow reader then paces
    // itself by: a measurement, not a wait for an outcome
    while t0.elapsed() < Duration::from_secs(1) {
        if matches!(probe.next_msg().await, Kind::Event(_)) {
            n += 1;
        }
    }
    drop(probe);
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    let rss_before = quiet_rss(&server).await;

    let mut slow = Client::connect(&server, Fmt::Proto).await;
    slow.welcome().await;
    let mut check = ContractChecker::default();
    check.subscribed(&slow.subscribe(&["*.sim.*"]).await);
    let started = Instant::now();
    let pace = Duration::from_secs_f64(4.0 / rate); // a quarter of the rate
    let mut stalest = Duration::ZERO;
    let mut read = 0u64;
    // read at a quarter of the feed's rate until told
    while check.lagged == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "hang guard: no lagged in 30 s ({read} read, stalest event {stalest:?})"
        );
        let kind = slow.next_msg().await;
        if let Kind::Event(e) = &kind {
            stalest = stalest.max(Duration::from_nanos(
                (now_ns() - e.publish_time_ns).max(0) as u64
            ));
        }
        check.observe(&kind);
        read += 1;
        // the reader's pace is the subject of the test, not a wait
        tokio::time::sleep(pace).await;
    }
    let told_after = started.elapsed();
    // after the resync it is current again
    let mut fresh = None;
    while fresh.is_none() {
        if let Kind::Event(e) = slow.next_msg().await {
            fresh = Some(Duration::from_nanos(
                (now_ns() - e.publish_time_ns).max(0) as u64
            ));
        }
    }
    let (_, stats) = server.get_json("/stats").await;
    stop.store(true, Ordering::Relaxed);
    let (healthy_events, silence) = healthy.await.unwrap();
    drop(slow);
    let rss_after = quiet_rss(&server).await;
    println!(
        "feed {rate:.0} events/s; reader at a quarter: lagged after {told_after:?} ({read} frames read, stalest event {stalest:?}, first event after resync {:?} old)",
        fresh.unwrap()
    );
    println!(
        "healthy client: {healthy_events} events, longest silence {silence:?}; RSS {rss_before} -> {rss_after} KiB; limits {}",
        stats["slow_consumer_limits"]
    );
    // The promise: told within a few seconds (--max-lag-age 2 s plus what
    // the kernel and the client's own buffers hold); the previous default
    // took 24 s and more. The bound below is 4x the documented figure.
    assert!(
        told_after < Duration::from_secs(20),
        "lagged only after {told_after:?}"
    );
    assert!(stats["lagged_sent"].as_u64().unwrap() >= 1);
    assert_eq!(stats["slow_consumer_limits"]["max_lag_age_ms"], 2000);
    assert!(silence < Duration::from_secs(10), "hang guard");
    // A slow reader holds cursors, not copies: nothing stays behind. This
    // test runs the default configuration, whose history rings (10 000
    // events a channel) keep filling for minutes after start, about
    // 0.4 MiB/s at the default rate (measured with no client at all), so
    // this bound is loose; the test below checks the same for 100 stopped
    // readers against the tight bound of the attack tests, with rings that
    // are full before its baseline.
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS {rss_before} -> {rss_after} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_a_close_frame() {
    // default buffers; a short write timeout keeps the test short
    let server = Server::start(&["--write-timeout", "1s", "--sim-rate", "5000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_reader(&server, stop.clone());
    let mut stopped = Client::connect(&server, Fmt::Proto).await;
    stopped.welcome().await;
    stopped.subscribe(&["*.sim.*"]).await;
    // it stops reading; the server closes it once its writes stall
    stats_until(&server, WAIT, "a slow-consumer close", |s| {
        s["slow_consumer_closes"].as_u64().unwrap() >= 1
    })
    .await;
    // reading again, it finds the close frame after what was buffered
    let code = stopped.closed_with().await;
    stop.store(true, Ordering::Relaxed);
    let (_, silence) = healthy.await.unwrap();
    println!("stopped reader closed with {code:?}; healthy client's longest silence {silence:?}");
    assert_eq!(code, Some(4008));
    assert!(silence < Duration::from_secs(10), "hang guard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_asked_for_by_resume_is_not_lag() {
    use std::collections::HashMap;
    use tickwire::protocol::pb::{self, client_message};
    let server = Server::start(&["--sim-rate", "2000", "--analytics", "off"]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    let epoch = c.welcome().await.epoch;
    let s = c.subscribe(&["*.sim.*"]).await;
    let mut last: HashMap<String, u64> = s
        .channels
        .iter()
        .map(|c| (c.channel.clone(), c.seq))
        .collect();
    for _ in 0..50 {
        if let Kind::Event(e) = c.next_msg().await {
            last.insert(e.channel.clone(), e.seq);
        }
    }
    drop(c);
    // away for longer than --max-lag-age: the history it resumes from is
    // older than that, and still not lag (it asked for it)
    // (the time away is the subject of the test, not a wait for an outcome)
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let request_id = c.request_id();
    let resume = last
        .iter()
        .map(|(ch, seq)| {
            (
                ch.clone(),
                pb::ResumePosition {
                    seq: *seq,
                    epoch: epoch.clone(),
                },
            )
        })
        .collect();
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id,
        channels: vec!["*.sim.*".into()],
        resume,
        snapshot: None,
        conflate_ms: 0,
    }))
    .await;
    let mut check = ContractChecker::default();
    check.subscribed(
        &c.until(|k| match k {
            Kind::Subscribed(s) if s.request_id == request_id => Some(s.clone()),
            _ => None,
        })
        .await,
    );
    // read most of the replay (several batches' worth)
    let (mut replayed, mut oldest) = (0u64, Duration::ZERO);
    loop {
        let kind = c.next_msg().await;
        check.observe(&kind);
        assert!(
            !matches!(kind, Kind::Lagged(_)),
            "resumed history was taken for lag"
        );
        if let Kind::Event(e) = kind {
            let age = Duration::from_nanos((now_ns() - e.publish_time_ns).max(0) as u64);
            oldest = oldest.max(age);
            replayed += 1;
            // 3 s away at 2000 events/s: about 6000 events of history
            if replayed >= 4000 {
                break;
            }
        }
    }
    println!("resumed after 3 s away: {replayed} events, the oldest {oldest:?} old, no lagged");
    assert!(
        oldest > Duration::from_secs(2),
        "the replay held history older than --max-lag-age"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_stopped_readers_are_closed_and_leave_nothing_behind() {
    // small rings, full before the baseline is read
    let server = Server::start_with_env(
        &[
            "--write-timeout",
            "2s",
            "--sim-rate",
            "10000",
            "--history-messages",
            "32",
        ],
        &[("MIMALLOC_PURGE_DELAY", "0")],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_reader(&server, stop.clone());
    stats_until(&server, WAIT, "15 000 events published", |s| {
        s["events_published"].as_u64().unwrap() >= 15_000
    })
    .await;
    // two rounds warm the allocator (pages it keeps for reuse are not a
    // leak; the same method as the amplification attack in
    // hostile_requests.rs; after one warm-up round a loaded clean-clone CI
    // run still saw +10.3 MiB): the baseline is read after them, and a
    // leak shows as growth over the measured round
    stopped_round(&server).await;
    stopped_round(&server).await;
    let rss_before = quiet_rss(&server).await;
    stopped_round(&server).await;
    stop.store(true, Ordering::Relaxed);
    let (events, silence) = healthy.await.unwrap();
    println!(
        "100 stopped readers, three times: healthy client {events} events, longest silence {silence:?}"
    );
    assert!(silence < Duration::from_secs(10), "hang guard");
    // the healthy client's close reaches the server a moment later
    stats_until(&server, WAIT, "no connection left", |s| {
        s["connections"] == 0
    })
    .await;
    // small rings, full before the baseline, and mimalloc without purge
    // delay (tests/support/hostile.rs): what 100 stopped readers could
    // leave behind (their 256 KiB socket buffers' worth of frames, their
    // sessions) is far over the slack
    support::hostile::rss_back_to(&server, rss_before, "100 stopped readers").await;
}

/// 100 readers that subscribe to every channel and never read again, until
/// the server closed each of them with 4008.
async fn stopped_round(server: &Server) {
    let (_, stats) = server.get_json("/stats").await;
    let closes_before = stats["slow_consumer_closes"].as_u64().unwrap();
    let mut stopped = Vec::new();
    for _ in 0..100 {
        let mut c = Client::connect(server, Fmt::Proto).await;
        c.welcome().await;
        c.subscribe(&["*.sim.*"]).await;
        stopped.push(c); // and never read again until closed
    }
    stats_until(
        server,
        Duration::from_secs(30),
        "100 slow-consumer closes",
        |s| s["slow_consumer_closes"].as_u64().unwrap() >= closes_before + 100,
    )
    .await;
    let mut codes = std::collections::BTreeMap::new();
    for c in &mut stopped {
        *codes.entry(c.closed_with().await).or_insert(0) += 1;
    }
    println!("100 stopped readers: close codes {codes:?}");
    assert_eq!(codes.get(&Some(4008)), Some(&100), "{codes:?}");
}
