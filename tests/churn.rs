//! Connection storms, malformed upgrades and half-open sockets leave the
//! server's file descriptors and memory where they were.

mod support;

use std::time::Duration;

use support::hostile::quiet_rss;
use support::{Client, Fmt, Server, eventually_within};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn burst(server: &Server, n: usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = server.ws_url(if i % 2 == 0 { "" } else { "?format=json" });
        tasks.push(tokio::spawn(async move {
            let fmt = if url.contains("json") {
                Fmt::Json
            } else {
                Fmt::Proto
            };
            let mut c = Client::connect_url(&url, fmt, None).await;
            c.welcome().await;
            if i % 3 == 0 {
                c.subscribe(&["ticker.sim.*"]).await;
            }
            // dropped without a close handshake half of the time
            if i % 2 == 0 {
                let _ = c.ws.close(None).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Waits until no connection, subscription or surplus fd is left; returns
/// the fd count and the server's live task count then.
async fn settle(server: &Server, fds: usize, tasks: u64) -> (usize, u64) {
    eventually_within(Duration::from_secs(20), "connections, fds and tasks back to baseline", || async {
        let (_, stats) = server.get_json("/stats").await;
        let now = fd_count(server.pid());
        let live_tasks = stats["tasks"].as_u64().expect("tasks in /stats");
        if stats["connections"] == 0
            && stats["subscriptions"] == 0
            && now <= fds
            && live_tasks <= tasks
        {
            Ok((now, live_tasks))
        } else {
            Err(format!("fds {now} (baseline {fds}), tasks {live_tasks} (baseline {tasks}), stats {stats}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2000_connection_burst_leaves_fds_and_rss_where_they_were() {
    // A small history ring and a slow simulator: the rings are full before the
    // baseline is read, so whatever grows after it is the connections' doing.
    // mimalloc returns freed pages to the OS at once instead of after a
    // delay, so RSS follows live memory rather than the allocator's timing.
    let server = Server::start_with_env(
        &[
            "--handshake-timeout",
            "1s",
            "--history-messages",
            "64",
            "--sim-rate",
            "100",
        ],
        &[("MIMALLOC_PURGE_DELAY", "0")],
    );
    // A first burst of the same size warms the allocator and the runtime's
    // pools (memory they keep for reuse is not a leak); a leak would show as
    // growth on the second.
    burst(&server, 2000).await;
    let (fds_before, tasks_before) = settle(&server, usize::MAX, u64::MAX).await;
    let rss_before = quiet_rss(&server).await;

    burst(&server, 2000).await;
    // malformed upgrades and half-open sockets alongside
    for i in 0..100 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let junk: &[u8] = match i % 3 {
            0 => b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            1 => b"\x16\x03\x01\x00\xa5garbage that is not http\r\n\r\n",
            _ => b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 99\r\n\r\n",
        };
        let _ = s.write_all(junk).await;
    }
    let mut half_open = Vec::new();
    for _ in 0..100 {
        half_open.push(TcpStream::connect(server.addr).await.unwrap()); // says nothing
    }
    let (fds_after, tasks_after) = settle(&server, fds_before, tasks_before).await;
    drop(half_open);
    let rss_after = quiet_rss(&server).await;
    println!(
        "2000-connection burst + 100 malformed + 100 half-open: fds {fds_before} -> {fds_after}, tasks {tasks_before} -> {tasks_after}, RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(fds_after <= fds_before);
    // Tasks and fds above are exact. RSS is coarse (the allocator's caches
    // move it by a few MiB either way); 2000 leaked connections with their
    // buffers and sessions would add well over 12 MiB.
    assert!(
        rss_after < rss_before + 12 * 1024,
        "RSS grew {rss_before} -> {rss_after} KiB"
    );
    // still serving
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.ping().await;
}
