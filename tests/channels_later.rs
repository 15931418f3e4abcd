//! Patterns cover channels created after the subscribe, and resume replays
//! from the history. The server runs in-process here (real listener, real
//! sockets) so the test can create channels through the hub.

mod support;

use std::sync::Arc;

use support::{Client, Fmt};
use tickwire::cli::Cli;
use tickwire::feed::Hub;
use tickwire::protocol::pb::{
    self, Custom, client_message, custom, event::Payload, server_message::Kind,
};
use tokio_util::sync::CancellationToken;

async fn start() -> (String, Arc<Hub>, CancellationToken) {
    let config = Cli::load(vec![
        "tickwire".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ])
    .unwrap()
    .into_config();
    let shutdown = CancellationToken::new();
    let server = tickwire::app::bind(config, shutdown.clone()).await.unwrap();
    let url = format!("ws://{}/ws", server.local_addr().unwrap());
    let hub = server.hub().clone();
    tokio::spawn(server.serve());
    (url, hub, shutdown)
}

fn custom_json(text: &str) -> Payload {
    Payload::Custom(Custom {
        body: Some(custom::Body::Json(text.into())),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_covers_channels_that_appear_later() {
    let (url, hub, shutdown) = start().await;
    let mut c = Client::connect_url(&format!("{url}?format=json"), Fmt::Json, None).await;
    c.welcome().await;
    let s = c.subscribe(&["news.app.*"]).await;
    assert!(s.channels.is_empty(), "nothing matches yet: {s:?}");
    // an exact name that does not exist is refused, a pattern is not
    let ch = hub.channel("news.app.alpha").unwrap();
    for i in 1..=3 {
        let seq = hub
            .publish(&ch, 0, custom_json(&format!("{{\"n\":{i}}}")))
            .unwrap();
        assert_eq!(seq, i);
    }
    let other = hub.channel("news.other.beta").unwrap();
    hub.publish(&other, 0, custom_json("{}")).unwrap();
    let later = hub.channel("news.app.gamma").unwrap();
    hub.publish(&later, 0, custom_json("{\"late\":true}"))
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        if let Kind::Event(e) = c.next_msg().await {
            assert!(e.channel.starts_with("news.app."), "{}", e.channel);
            seen.push((e.channel, e.seq));
        }
    }
    let alpha: Vec<u64> = seen
        .iter()
        .filter(|(c, _)| c == "news.app.alpha")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(alpha, vec![1, 2, 3], "from the first event, in order");
    assert!(seen.contains(&("news.app.gamma".into(), 1)));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_after_the_last_seq_or_falls_back_to_a_snapshot() {
    let (url, hub, shutdown) = start().await;
    let ch = hub.channel("ticker.sim.BTC-USDT").unwrap();
    let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
    let epoch = c.welcome().await.epoch;
    let s = c.subscribe(&["ticker.sim.BTC-USDT"]).await;
    let mut last = s.channels[0].seq;
    let mut events = 0;
    while events < 5 {
        if let Kind::Event(e) = c.next_msg().await
            && e.seq == last + 1
        {
            last = e.seq;
            events += 1;
        }
    }
    drop(c);
    // let the channel move on while we are away
    while ch.seq() < last + 5 {
        tokio::task::yield_now().await;
    }
    let resume = |epoch: &str| {
        let mut m = std::collections::HashMap::new();
        m.insert(
            "ticker.sim.BTC-USDT".to_string(),
            pb::ResumePosition {
                seq: last,
                epoch: epoch.into(),
            },
        );
        m
    };
    let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
    c.welcome().await;
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id: 5,
        channels: vec!["ticker.sim.BTC-USDT".into()],
        resume: resume(&epoch),
        snapshot: None,
        conflate_ms: 0,
    }))
    .await;
    let state = match c.next_msg().await {
        Kind::Subscribed(s) => s.channels[0].clone(),
        other => panic!("{other:?}"),
    };
    assert!(state.recovered);
    assert_eq!(state.seq, last);
    for want in last + 1..=last + 5 {
        match c.next_msg().await {
            Kind::Event(e) => assert_eq!(e.seq, want, "replayed in order, no gap"),
            other => panic!("{other:?}"),
        }
    }
    let mut c = Client::connect_url(&url, Fmt::Proto, None).await;
    c.welcome().await;
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id: 6,
        channels: vec!["ticker.sim.BTC-USDT".into()],
        resume: resume("another-epoch"),
        snapshot: None,
        conflate_ms: 0,
    }))
    .await;
    let state = match c.next_msg().await {
        Kind::Subscribed(s) => s.channels[0].clone(),
        other => panic!("{other:?}"),
    };
    assert!(!state.recovered, "another epoch cannot resume");
    match c.next_msg().await {
        Kind::Event(e) => {
            assert_eq!(e.seq, state.seq, "a fresh snapshot instead");
            assert!(matches!(e.payload, Some(Payload::Ticker(_))));
        }
        other => panic!("{other:?}"),
    }
    shutdown.cancel();
}
