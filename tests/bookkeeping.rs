//! Bookkeeping under stress: per-channel subscriber counts after thousands
//! of concurrent drops, a gzip recording cut by SIGKILL, and a recorder
//! whose server dies.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::hostile::quiet_rss;
use support::{Client, Fmt, Server, WAIT, eventually, eventually_within};
use tickwire::sources::twr::Reader;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tickwire-bookkeeping-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_counts_return_to_zero_after_thousands_of_concurrent_drops() {
    // a busy feed, so channels ring their subscribers while they drop
    let server = Server::start_with_env(
        // small rings: full before the baseline, so growth after it would
        // be the connections' doing
        &[
            "--sim-rate",
            "20000",
            "--analytics",
            "off",
            "--history-messages",
            "64",
        ],
        &[("MIMALLOC_PURGE_DELAY", "0")],
    );
    const CONNS: usize = 2000;
    const WAVE: usize = 500;
    // a healthy subscriber beside the churn: its longest silence
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let healthy = {
        let (url, stop) = (server.ws_url(""), stop.clone());
        tokio::spawn(async move {
            let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
            c.welcome().await;
            c.subscribe(&["ticker.sim.*"]).await;
            let (mut last, mut longest) = (Instant::now(), Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.next().await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
            longest
        })
    };
    let mut rss_baseline = None;
    for wave in 0..CONNS / WAVE {
        let mut tasks = Vec::new();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(WAVE);
        let go = std::sync::Arc::new(tokio::sync::Notify::new());
        for i in 0..WAVE {
            let url = server.ws_url("");
            let (ready, go) = (ready_tx.clone(), go.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
                c.welcome().await;
                c.subscribe(&["trade.sim.*", "ticker.sim.BTC-USDT"]).await;
                let notified = go.notified();
                ready.send(()).await.unwrap();
                notified.await;
                // half close properly, half just vanish
                if i % 2 == 0 {
                    let _ = c.ws.close(None).await;
                }
            }));
        }
        for _ in 0..WAVE {
            tokio::time::timeout(WAIT, ready_rx.recv())
                .await
                .expect("connections subscribed in time");
        }
        let (_, stats) = server.get_json("/stats").await;
        let btc = stats["subscriptions_per_channel"]["ticker.sim.BTC-USDT"]
            .as_u64()
            .unwrap();
        assert_eq!(
            btc,
            WAVE as u64 + 1,
            "wave {wave}: every connection counted"
        );
        go.notify_waiters();
        for t in tasks {
            t.await.unwrap();
        }
        if wave == 0 {
            // the first wave warms the allocator and the runtime's pools
            settled(&server).await;
            rss_baseline = Some(quiet_rss(&server).await);
        }
    }
    let last = settled(&server).await;
    let rss_after = quiet_rss(&server).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let silence = healthy.await.unwrap();
    let rss_before = rss_baseline.unwrap();
    println!("after {CONNS} concurrent drops: {last}");
    println!("healthy client's longest silence {silence:?}; RSS {rss_before} -> {rss_after} KiB");
    assert!(silence < Duration::from_secs(10), "hang guard");
    // small rings and no purge delay, as the attack tests
    // (tests/support/hostile.rs); the first wave warmed the allocator
    support::hostile::rss_back_to(&server, rss_before, "2000 concurrent drops").await;
}

/// Waits until no connection but the healthy one and no subscription but
/// its own is counted, on every channel; returns the per-channel counts.
async fn settled(server: &Server) -> serde_json::Value {
    eventually_within(
        Duration::from_secs(20),
        "counts back to baseline",
        || async {
            let (_, stats) = server.get_json("/stats").await;
            let per_channel = stats["subscriptions_per_channel"].as_object().unwrap();
            // the healthy client holds ticker.sim.* (one per ticker channel)
            let ok = stats["connections"] == 1
                && per_channel.iter().all(|(name, v)| {
                    let own = u64::from(name.starts_with("ticker.sim."));
                    v.as_u64() == Some(own)
                });
            let counts = stats["subscriptions_per_channel"].clone();
            if ok { Ok(counts) } else { Err(stats) }
        },
    )
    .await
}

/// `tickwire record ... --connect URL` as a child process (killed by its
/// own PID when the test is done with it).
fn spawn_recorder(url: &str, out: &Path, gzip: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    cmd.args(["record", "--connect", url, "--channels", "*.sim.*", "--out"])
        .arg(out)
        .env("TICKWIRE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if gzip {
        cmd.arg("--gzip");
    }
    cmd.spawn().expect("spawn tickwire record")
}

/// Waits until `file` holds more than `bytes` bytes.
async fn wait_for_size(file: &Path, bytes: u64) {
    eventually("the recording to grow", || async {
        std::fs::metadata(file).map_or(0, |m| m.len()) > bytes
    })
    .await;
}

/// Reads a recording to its end (an error before it fails the test);
/// returns its whole events.
fn read_all(file: &Path) -> u64 {
    let mut reader = Reader::open(file).expect("recording opens");
    let mut n = 0;
    loop {
        match reader.next_event() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return n,
            Err(e) => panic!("after {n} events: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_recording_cut_by_sigkill_replays_to_its_last_event_and_loops() {
    let dir = temp_dir("cut");
    let file = dir.join("cut.twr");
    let source = Server::start(&["--sim-rate", "5000", "--analytics", "off"]);
    let mut recorder = spawn_recorder(&source.ws_url(""), &file, true);
    // the recorder flushes every second: wait for a few flushes' worth
    wait_for_size(&file, 64 * 1024).await;
    recorder.kill().expect("SIGKILL our recorder");
    let _ = recorder.wait();
    drop(source);

    let events = read_all(&file);
    println!("cut recording: {events} whole events");
    assert!(events > 100, "{events} events");

    let replay = Server::start(&[
        "--source",
        &format!("replay:{}", file.display()),
        "--replay-speed",
        "max",
        "--loop",
        "--analytics",
        "off",
    ]);
    // three passes and still going: the cut did not stop the loop
    let last = eventually("three replay passes", || async {
        let (_, stats) = replay.get_json("/stats").await;
        let source = stats["sources"][0].clone();
        if source["messages_in"].as_u64().unwrap_or(0) >= 3 * events {
            Ok(source)
        } else {
            Err(source)
        }
    })
    .await;
    assert_eq!(last["state"], "connected", "{last}");
    assert!(last["last_error"].is_null(), "{last}");
    assert!(
        replay
            .log()
            .iter()
            .any(|l| l.contains("recording is cut short")),
        "the cut is reported: {:?}",
        replay.log()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_exits_0_with_a_complete_file_when_its_server_dies() {
    let dir = temp_dir("dies");
    for gzip in [false, true] {
        let file = dir.join(format!("dies-{gzip}.twr"));
        let source = Server::start(&["--sim-rate", "5000", "--analytics", "off"]);
        let mut recorder = spawn_recorder(&source.ws_url(""), &file, gzip);
        wait_for_size(&file, 16 * 1024).await;
        source.signal("KILL");
        let status = eventually("the recorder to exit", || {
            std::future::ready(recorder.try_wait().expect("try_wait"))
        })
        .await;
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut recorder.stderr.take().unwrap(), &mut stderr).unwrap();
        println!("gzip {gzip}: {status}: {stderr}");
        assert!(status.success(), "recorder failed: {stderr}");
        assert!(stderr.contains("ended early"), "{stderr}");
        let said: u64 = stderr
            .split("recorded ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no event count in {stderr}"));
        let events = read_all(&file);
        assert_eq!(events, said, "every event it reports is in the file");
        assert!(events > 0);
    }
    std::fs::remove_dir_all(&dir).ok();
}
