//! Slow consumers: told (lagged + resync, or close 4008), never left with an
//! unannounced gap, and no harm to the clients beside them.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use support::{Client, ContractChecker, Fmt, Server};
use tickwire::protocol::pb::server_message::Kind;

const LAG_ARGS: [&str; 6] = [
    "--sim-rate",
    "2000",
    "--max-lag-messages",
    "200",
    "--socket-send-buffer",
    "4096",
];

/// The server's `/stats` counter `name`.
async fn stat(server: &Server, name: &str) -> u64 {
    let (_, stats) = server.get_json("/stats").await;
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {stats}"))
}

/// Reads `client`, checking the contract, until `done` holds (hang guard:
/// [`support::WAIT`] for the whole read).
async fn read_checked_until(
    client: &mut Client,
    checker: &mut ContractChecker,
    what: &str,
    mut done: impl FnMut(&ContractChecker) -> bool,
) {
    tokio::time::timeout(support::WAIT, async {
        while !done(checker) {
            let kind = client.next_msg().await;
            checker.observe(&kind);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out reading until {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_client_is_told_with_lagged_and_resynchronised() {
    let server = Server::start(&LAG_ARGS);
    let rss_before = server.rss_kib();
    let mut healthy = Client::connect(&server, Fmt::Proto).await;
    healthy.welcome().await;
    let mut healthy_check = ContractChecker::default();
    healthy_check.subscribed(&healthy.subscribe(&["*.*.*"]).await);
    let mut slow = Client::connect_small_buffer(&server, Fmt::Proto, 4096).await;
    slow.welcome().await;
    let mut slow_check = ContractChecker::default();
    slow_check.subscribed(&slow.subscribe(&["*.*.*"]).await);

    // The slow client stops reading (the behaviour under test is a pause)
    // while the healthy one keeps up with every event until the slow one has
    // been resynchronised.
    let resynced = Arc::new(AtomicBool::new(false));
    let healthy_seen = Arc::new(AtomicU64::new(0));
    let (slow_done, seen) = (resynced.clone(), healthy_seen.clone());
    let healthy_task = tokio::spawn(async move {
        read_checked_until(&mut healthy, &mut healthy_check, "2000 events", |c| {
            seen.store(c.events, Ordering::Relaxed);
            c.events > 2000 && slow_done.load(Ordering::Relaxed)
        })
        .await;
        healthy_check
    });
    // The pause lasts until 2000 events were published after the subscribe
    // (the healthy client saw them): far more than the socket buffers of
    // the slow client hold (a few hundred) plus --max-lag-messages (200),
    // so the server finds it behind as soon as it writes to it again.
    support::eventually("2000 events published during the pause", || async {
        healthy_seen.load(Ordering::Relaxed) >= 2000
    })
    .await;
    // Then it reads again: whatever it missed was announced.
    read_checked_until(&mut slow, &mut slow_check, "a lagged message", |c| {
        c.lagged > 0
    })
    .await;
    let after_resync = slow_check.events;
    read_checked_until(
        &mut slow,
        &mut slow_check,
        "500 events after the resync",
        |c| c.events >= after_resync + 500,
    )
    .await;
    resynced.store(true, Ordering::Relaxed);
    let healthy_check = healthy_task.await.unwrap();
    assert_eq!(
        healthy_check.lagged, 0,
        "the healthy client was never behind"
    );
    assert!(
        healthy_check.events > 2000,
        "{} events",
        healthy_check.events
    );
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["lagged_sent"].as_u64().unwrap() >= slow_check.lagged);
    let rss_after = server.rss_kib();
    assert!(
        rss_after < rss_before + 200 * 1024,
        "RSS {rss_before} -> {rss_after} KiB"
    );
    println!(
        "slow client: {} lagged, {} events after resync; healthy: {} events, 0 gaps; server RSS {} -> {} KiB",
        slow_check.lagged, slow_check.events, healthy_check.events, rss_before, rss_after
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_close_policy_a_paused_client_gets_4008() {
    let mut args = LAG_ARGS.to_vec();
    args.extend(["--slow-consumer", "close"]);
    let server = Server::start(&args);
    let mut slow = Client::connect_small_buffer(&server, Fmt::Proto, 4096).await;
    slow.welcome().await;
    let mut check = ContractChecker::default();
    check.subscribed(&slow.subscribe(&["*.*.*"]).await);
    // The pause lasts until the server has applied the close policy.
    let server = &server;
    support::eventually("the slow-consumer close", || async move {
        stat(server, "slow_consumer_closes").await >= 1
    })
    .await;
    // Everything before the close frame is still gap-free.
    let code = loop {
        use futures_util::StreamExt;
        match tokio::time::timeout(support::WAIT, slow.ws.next())
            .await
            .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) => {
                let r = support::decode(Fmt::Proto, false, &b);
                let kind = r.msg.kind.unwrap();
                assert!(
                    !matches!(kind, Kind::Lagged(_)),
                    "close policy sends no lagged"
                );
                check.observe(&kind);
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                break u16::from(f.code);
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, 4008);
}
