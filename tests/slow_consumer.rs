//! Slow consumers: told (lagged + resync, or close 4008), never left with an
//! unannounced gap, and no harm to the clients beside them.

mod support;

use std::time::{Duration, Instant};

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

/// Reads `client` for `for_how_long`, checking the contract.
async fn read_checked(client: &mut Client, checker: &mut ContractChecker, for_how_long: Duration) {
    let until = Instant::now() + for_how_long;
    while Instant::now() < until {
        let kind = client.next_msg().await;
        checker.observe(&kind);
    }
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
    // while the healthy one keeps up with every event.
    let healthy_task = tokio::spawn(async move {
        read_checked(
            &mut healthy,
            &mut healthy_check,
            Duration::from_millis(2500),
        )
        .await;
        healthy_check
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Then it reads again: whatever it missed was announced.
    let deadline = Instant::now() + support::WAIT;
    while slow_check.lagged == 0 {
        assert!(Instant::now() < deadline, "no lagged message arrived");
        let kind = slow.next_msg().await;
        slow_check.observe(&kind);
    }
    read_checked(&mut slow, &mut slow_check, Duration::from_millis(500)).await;
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
    let (_, stats) = server.get_json("/stats").await;
    assert!(stats["slow_consumer_closes"].as_u64().unwrap() >= 1);
}
