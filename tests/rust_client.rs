//! The Rust client (`clients/rust`, crate `tickwire-client`) against the
//! real server: the conformance scenarios every client passes (the Python
//! client runs the same ones in `clients/python/tests`): snapshot then
//! updates with every book checksum verified (proto and JSON), gzip frames,
//! a pattern covering a channel created later, a network drop resumed with
//! no gap and no duplicate, a kill -9 and restart (new epoch: resnapshot,
//! never a false recovery), a slow reader (lagged then snapshot), refused
//! names. Waits are for events, under a hang guard.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use support::{Server, free_addr};
use tickwire_client::pb::event::Payload;
use tickwire_client::{Client, ClientConfig, Error, Format, Item};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A hang guard, never a performance bound.
const GUARD: Duration = Duration::from_secs(60);

async fn next(client: &mut Client) -> Item {
    tokio::time::timeout(GUARD, client.next())
        .await
        .expect("an item within the hang guard")
        .expect("the client is open")
        .expect("no fatal error")
}

/// Per channel: every event is the previous + 1, except right after a
/// notice that announced why.
#[derive(Default)]
struct SeqCheck {
    last: HashMap<String, u64>,
    announced: std::collections::HashSet<String>,
}

impl SeqCheck {
    fn see(&mut self, item: &Item) {
        match item {
            Item::Lagged { channel, .. } | Item::Resnapshot { channel, .. } => {
                self.announced.insert(channel.clone());
            }
            Item::Gap { .. } => panic!("unexpected gap: {item:?}"),
            // the next event is exactly last_seq + 1
            Item::Conflated {
                channel, last_seq, ..
            } => {
                self.last.insert(channel.clone(), *last_seq);
            }
            Item::Event(ev) => {
                let channel = ev.channel().to_string();
                if let Some(&prev) = self.last.get(&channel)
                    && !self.announced.contains(&channel)
                {
                    assert_eq!(ev.seq(), prev + 1, "{channel}: {prev} then {}", ev.seq());
                }
                self.announced.remove(&channel);
                self.last.insert(channel, ev.seq());
            }
            _ => {}
        }
    }
}

fn config(server_addr: SocketAddr) -> ClientConfig {
    ClientConfig::new(format!("ws://{server_addr}/ws"))
        .reconnect(Duration::from_millis(20), Duration::from_millis(300))
}

async fn snapshot_then_updates(format: Format) {
    let server = Server::start(&["--sim-rate", "2000"]);
    let mut client = Client::connect(config(server.addr).format(format))
        .await
        .unwrap();
    let states = client.subscribe(&["book.sim.BTC-USDT"]).await.unwrap();
    assert_eq!(states.len(), 1);
    let first = match next(&mut client).await {
        Item::Event(first) => first,
        other => panic!("the snapshot comes first, got {other:?}"),
    };
    assert!(matches!(first.payload(), Some(Payload::BookSnapshot(_))));
    assert_eq!(
        first.seq(),
        states[0].seq,
        "the snapshot has the answer's seq"
    );
    let mut check = SeqCheck::default();
    check.see(&Item::Event(first));
    let mut updates = 0;
    while updates < 150 {
        let item = next(&mut client).await;
        assert!(
            !matches!(item, Item::Lagged { .. } | Item::Resnapshot { .. }),
            "{item:?}"
        );
        check.see(&item);
        if let Item::Event(ev) = &item {
            assert!(
                client.book(ev.channel()).is_some(),
                "verified after every event"
            );
            updates += 1;
        }
    }
    assert_eq!(client.stats().checksums_verified, 151);
    assert_eq!(client.stats().checksum_mismatches, 0);
    client.close().await;
}

#[tokio::test]
async fn rust_client_snapshot_then_updates_with_every_checksum_verified_in_proto() {
    snapshot_then_updates(Format::Proto).await;
}

#[tokio::test]
async fn rust_client_snapshot_then_updates_with_every_checksum_verified_in_json() {
    snapshot_then_updates(Format::Json).await;
}

#[tokio::test]
async fn rust_client_decodes_gzip_frames() {
    let server = Server::start(&["--gzip-threshold", "64"]);
    let mut client = Client::connect(config(server.addr).format(Format::Json))
        .await
        .unwrap();
    client.subscribe(&["book.sim.*"]).await.unwrap();
    let mut events = 0;
    while events < 50 {
        if let Item::Event(ev) = next(&mut client).await {
            assert!(client.book(ev.channel()).is_some());
            events += 1;
        }
    }
    assert!(client.connection_stats().gzip_frames > 0);
}

#[tokio::test]
async fn rust_client_pattern_covers_a_channel_created_later_from_seq_1() {
    let key = "rust-client-publish-key";
    let server = Server::start(&["--publish-key", key]);
    let mut client = Client::connect(config(server.addr)).await.unwrap();
    assert!(
        client
            .subscribe(&["alerts.app.*"])
            .await
            .unwrap()
            .is_empty()
    );
    let body = r#"{"channel":"alerts.app.BTC-USDT","custom":{"json":"1"}}"#;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let Item::Event(ev) = next(&mut client).await else {
        panic!("the new channel's first event");
    };
    assert_eq!((ev.channel(), ev.seq()), ("alerts.app.BTC-USDT", 1));
}

/// Forwards loopback TCP to `target`. Sending on the returned watch cuts
/// every open connection (a network drop the server sees as a reset); the
/// listener stays, so the client can connect through it again.
async fn proxy(target: SocketAddr) -> (SocketAddr, tokio::sync::watch::Sender<u32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, cuts) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let mut cuts = cuts.clone();
            cuts.borrow_and_update();
            tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cuts.changed() => {}
                    }
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test]
async fn rust_client_resumes_after_a_network_drop_with_no_gap_and_no_duplicate() {
    let server = Server::start(&["--sim-rate", "1000"]);
    let (via, cut) = proxy(server.addr).await;
    let mut client = Client::connect(config(via)).await.unwrap();
    client
        .subscribe(&["trade.sim.*", "book.sim.ETH-USDT"])
        .await
        .unwrap();
    let mut check = SeqCheck::default();
    let mut events = 0;
    while events < 200 {
        let item = next(&mut client).await;
        check.see(&item);
        events += matches!(item, Item::Event(_)) as u32;
    }
    cut.send_modify(|n| *n += 1);
    let mut reconnected = None;
    let mut after = 0;
    while after < 200 {
        let item = next(&mut client).await;
        assert!(
            !matches!(item, Item::Lagged { .. } | Item::Resnapshot { .. }),
            "{item:?}"
        );
        check.see(&item);
        match item {
            Item::Reconnected { epoch_changed, .. } => reconnected = Some(epoch_changed),
            Item::Event(_) if reconnected.is_some() => after += 1,
            _ => {}
        }
    }
    assert_eq!(reconnected, Some(false), "same server, same epoch: resumed");
    assert_eq!(client.stats().duplicates, 0);
    assert_eq!(client.connection_stats().reconnects, 1);
    assert!(client.book("book.sim.ETH-USDT").is_some());
}

#[tokio::test]
async fn rust_client_announces_a_server_restart_as_a_new_epoch() {
    let addr = free_addr();
    let server = Server::start_on(addr, &[]);
    let mut client = Client::connect(config(addr)).await.unwrap();
    client
        .subscribe(&["book.sim.BTC-USDT", "ticker.sim.*"])
        .await
        .unwrap();
    let old_epoch = client.epoch().to_string();
    for _ in 0..20 {
        next(&mut client).await;
    }
    drop(server); // kill -9: the history dies with the process
    let _server = Server::start_on(addr, &[]);
    let mut reconnected = None;
    let mut resnapshots = HashMap::new();
    loop {
        match next(&mut client).await {
            Item::Reconnected { epoch_changed, .. } => reconnected = Some(epoch_changed),
            Item::Resnapshot {
                channel, reason, ..
            } => {
                resnapshots.insert(channel, reason);
            }
            Item::Gap { .. } => panic!("a restart is announced, not a gap"),
            _ => {}
        }
        if resnapshots.contains_key("book.sim.BTC-USDT")
            && resnapshots.contains_key("ticker.sim.BTC-USDT")
            && client.book("book.sim.BTC-USDT").is_some()
        {
            break;
        }
    }
    assert_eq!(reconnected, Some(true));
    assert_ne!(client.epoch(), old_epoch);
    assert!(
        resnapshots.values().all(|r| *r == "new epoch"),
        "{resnapshots:?}"
    );
}

#[tokio::test]
async fn rust_client_slow_reader_is_told_lagged_then_gets_a_snapshot() {
    let server = Server::start(&[
        "--sim-rate",
        "10000",
        "--max-lag-messages",
        "64",
        "--socket-send-buffer",
        "4096",
    ]);
    let mut client = Client::connect(config(server.addr)).await.unwrap();
    client
        .subscribe(&["book.sim.*", "trade.sim.*"])
        .await
        .unwrap();
    // Read nothing while the server publishes far more than the socket
    // buffers hold.
    let published = |v: &serde_json::Value| v["events_published"].as_u64().unwrap();
    let start = published(&server.get_json("/stats").await.1);
    support::eventually(
        "20 000 events published while the client does not read",
        || async { published(&server.get_json("/stats").await.1) >= start + 20_000 },
    )
    .await;
    let mut check = SeqCheck::default();
    let mut lagged_book = None;
    loop {
        let item = next(&mut client).await;
        check.see(&item);
        match &item {
            Item::Lagged {
                channel, last_seq, ..
            } if channel.starts_with("book.") && lagged_book.is_none() => {
                lagged_book = Some((channel.clone(), *last_seq));
            }
            Item::Event(ev) => {
                if let Some((channel, last_seq)) = &lagged_book
                    && ev.channel() == channel
                {
                    assert!(matches!(ev.payload(), Some(Payload::BookSnapshot(_))));
                    assert_eq!(ev.seq(), *last_seq);
                    assert!(client.book(channel).is_some());
                    break;
                }
            }
            _ => {}
        }
    }
}

/// `subscribe_conflated`: the server's skips arrive as `Item::Conflated`
/// (never a gap), the managed book verifies after every message (a fold
/// brings a whole snapshot), trades keep every seq.
#[tokio::test]
async fn rust_client_conflated_subscription_announces_skips_and_keeps_books_valid() {
    let server = Server::start(&["--sim-instruments", "BTC-USDT", "--analytics", "off"]);
    let mut client = Client::connect(config(server.addr)).await.unwrap();
    let channels = [
        "book.sim.BTC-USDT",
        "ticker.sim.BTC-USDT",
        "trade.sim.BTC-USDT",
    ];
    client.subscribe_conflated(&channels, 50).await.unwrap();
    let mut check = SeqCheck::default();
    let mut folds: HashMap<String, u64> = HashMap::new();
    let mut trades = 0;
    while folds.get(channels[0]).copied().unwrap_or(0) < 3
        || folds.get(channels[1]).copied().unwrap_or(0) < 3
        || trades < 200
    {
        let item = next(&mut client).await;
        check.see(&item);
        match &item {
            Item::Conflated { channel, .. } => *folds.entry(channel.clone()).or_default() += 1,
            Item::Event(ev) if ev.channel() == channels[2] => trades += 1,
            Item::Event(_) => {}
            other => panic!("only events and conflated notices: {other:?}"),
        }
    }
    assert!(!folds.contains_key(channels[2]), "trades are never folded");
    let stats = client.stats();
    assert_eq!((stats.gaps, stats.checksum_mismatches), (0, 0));
    assert!(stats.checksums_verified >= 4, "{stats:?}");
    assert_eq!(stats.conflated, folds.values().sum::<u64>());
    assert!(client.book(channels[0]).is_some_and(|b| b.is_valid()));
}

#[tokio::test]
async fn rust_client_refused_names_come_back_with_the_servers_reasons() {
    let server = Server::start(&[]);
    let mut client = Client::connect(config(server.addr)).await.unwrap();
    let Err(Error::Refused(errors)) = client.subscribe(&["book.sim.NOPE-USDT", "bad..name"]).await
    else {
        panic!("every name is refused");
    };
    let mut codes: Vec<_> = errors.iter().map(|e| e.code.as_str_name()).collect();
    codes.sort();
    assert_eq!(
        codes,
        ["ERROR_CODE_INVALID_CHANNEL", "ERROR_CODE_UNKNOWN_CHANNEL"]
    );
    assert!(!client.list_channels("book.sim.*").await.unwrap().is_empty());
}
