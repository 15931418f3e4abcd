//! Issue 19, items 5 and 6: secrets that mean something, and tokens whose
//! claims are applied in full (nbf, exp, channels on listing and refresh,
//! subject).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use support::{Client, Fmt, KillOnDrop, Server, eventually_sync_within};
use tickwire::protocol::pb::{self, ErrorCode, client_message, server_message::Kind};

const SECRET: &str = "tokens-test-secret-of-at-least-32-bytes";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn connect(server: &Server, token: &str) -> Client {
    let mut c =
        Client::connect_url(&server.ws_url(&format!("?token={token}")), Fmt::Proto, None).await;
    c.welcome().await;
    c
}

/// Runs `tickwire serve` with `args`/`env` and expects it to refuse to
/// start: exit status non-zero and `expect` in its stderr. A server that
/// starts anyway is killed (by its PID) after the deadline and fails.
fn refuses_to_start(args: &[&str], env: &[(&str, &str)], expect: &str) {
    let child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickwire");
    // killed (by its PID) if it is still running at the hang guard
    let mut child = KillOnDrop(child);
    let status = eventually_sync_within(
        Duration::from_secs(10),
        &format!("tickwire to refuse {args:?} {env:?}"),
        || child.0.try_wait().unwrap(),
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{args:?} {env:?}: {stderr}");
    assert!(stderr.contains(expect), "{args:?} {env:?}: {stderr}");
    assert!(
        stderr.len() < 2000,
        "a short error, not the usage: {stderr}"
    );
}

#[test]
fn empty_or_short_secrets_are_refused_at_start() {
    refuses_to_start(&["--jwt-secret", ""], &[], "empty");
    refuses_to_start(&[], &[("TICKWIRE_JWT_SECRET", "")], "empty");
    refuses_to_start(&[], &[("TICKWIRE_JWT_SECRET", "hunter2")], "at least 32");
    refuses_to_start(&["--jwt-secret", "   "], &[], "empty");
    refuses_to_start(&["--publish-key", ""], &[], "empty");
    refuses_to_start(&[], &[("TICKWIRE_PUBLISH_KEY", "")], "empty");
    refuses_to_start(&["--publish-key", "abc"], &[], "at least 16");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nbf_in_the_future_is_refused_and_a_far_exp_does_not_wrap() {
    let server = Server::start(&["--jwt-secret", SECRET]);
    let early = token(serde_json::json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300}));
    let mut c = connect(&server, &early).await;
    match c.next_msg().await {
        Kind::Error(e) => {
            assert_eq!(e.code, ErrorCode::Unauthorized as i32);
            assert!(e.message.contains("not valid yet"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.closed_with().await, Some(4001));

    // exp = 2^64 - 1 used to wrap to -1 and close at once
    let forever = token(serde_json::json!({"sub": "a", "exp": u64::MAX}));
    let mut c = connect(&server, &forever).await;
    c.subscribe(&["ticker.sim.BTC-USDT"]).await;
    c.ping().await;
    c.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_channels_shows_only_what_the_token_grants() {
    let server = Server::start(&["--jwt-secret", SECRET]);
    let t = token(serde_json::json!({"sub": "a", "exp": now() + 600, "channels": ["ticker.*.*"]}));
    let mut c = connect(&server, &t).await;
    for pattern in ["", "*.*.*", "trade.sim.*"] {
        let request_id = c.request_id();
        c.send(client_message::Kind::ListChannels(pb::ListChannels {
            request_id,
            pattern: pattern.into(),
        }))
        .await;
        let list = c
            .until(|k| match k {
                Kind::ChannelList(l) if l.request_id == request_id => Some(l.clone()),
                _ => None,
            })
            .await;
        assert!(
            list.channels
                .iter()
                .all(|ch| ch.channel.starts_with("ticker.")),
            "{pattern}: {:?}",
            list.channels
        );
        if pattern != "trade.sim.*" {
            assert!(list.channels.len() >= 10, "{pattern}: {:?}", list.channels);
        } else {
            assert!(list.channels.is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrower_refresh_ends_what_it_no_longer_covers_and_the_subject_stays() {
    let server = Server::start(&["--jwt-secret", SECRET]);
    let wide = token(serde_json::json!({
        "sub": "alice", "exp": now() + 600, "channels": ["ticker.*.*", "trade.sim.*"]
    }));
    let mut c = connect(&server, &wide).await;
    c.subscribe(&["ticker.sim.*", "trade.sim.BTC-USDT", "ticker.sim.ETH-USDT"])
        .await;

    // another subject: refused, nothing changes, the connection stays
    let mallory = token(serde_json::json!({"sub": "mallory", "exp": now() + 600}));
    c.send(client_message::Kind::Auth(pb::Auth { token: mallory }))
        .await;
    let e = c
        .until(|k| match k {
            Kind::Error(e) => Some(e.clone()),
            _ => None,
        })
        .await;
    assert_eq!(e.code, ErrorCode::Unauthorized as i32, "{e:?}");
    assert!(e.message.contains("subject"), "{}", e.message);
    c.ping().await;

    // narrower: only ETH tickers
    let narrow = token(serde_json::json!({
        "sub": "alice", "exp": now() + 600, "channels": ["ticker.sim.ETH-USDT"]
    }));
    c.send(client_message::Kind::Auth(pb::Auth { token: narrow }))
        .await;
    let e = c
        .until(|k| match k {
            Kind::Error(e) => Some(e.clone()),
            _ => None,
        })
        .await;
    assert_eq!(e.code, ErrorCode::Forbidden as i32, "{e:?}");
    assert!(e.message.contains("refreshed token"), "{}", e.message);
    let removed = match c.next_msg().await {
        Kind::Unsubscribed(u) => u.channels,
        other => panic!("{other:?}"),
    };
    assert!(removed.contains(&"ticker.sim.*".to_string()), "{removed:?}");
    assert!(
        removed.contains(&"trade.sim.BTC-USDT".to_string()),
        "{removed:?}"
    );
    assert!(
        removed.contains(&"ticker.sim.BTC-USDT".to_string()),
        "{removed:?}"
    );
    assert!(
        !removed.contains(&"ticker.sim.ETH-USDT".to_string()),
        "{removed:?}"
    );
    // from here on only ETH tickers arrive
    c.ping().await;
    let mut seen = 0;
    support::guarded("5 ETH tickers", async {
        while seen < 5 {
            if let Kind::Event(e) = c.next_msg().await {
                assert_eq!(e.channel, "ticker.sim.ETH-USDT");
                seen += 1;
            }
        }
    })
    .await;
    let (_, stats) = server.get_json("/stats").await;
    assert_eq!(stats["subscriptions"], 1, "{}", stats["subscriptions"]);
}

/// With auth on, a connection that has not shown a token creates nothing:
/// its scan request is refused (UNAUTHORIZED, 4001) and no channel appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_creates_no_state() {
    let server = Server::start(&["--jwt-secret", SECRET]);
    let (_, before) = server.get_json("/channels").await;
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    c.send(client_message::Kind::RequestScan(pb::RequestScan {
        request_id: 1,
        top_n: 1,
        venue: "sim".into(),
    }))
    .await;
    match c.next_msg().await {
        Kind::Error(e) => assert_eq!(e.code, ErrorCode::Unauthorized as i32),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.closed_with().await, Some(4001));
    let (_, after) = server.get_json("/channels").await;
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["channel"].as_str().unwrap().to_string())
            .filter(|n| n.starts_with("scan."))
            .collect()
    };
    assert_eq!(names(&before), names(&after));
    assert!(names(&after).is_empty());
}
