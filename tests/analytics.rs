//! Analytics over WebSocket: candles from trades, signals and sentiment on
//! their channels (proto and JSON, with snapshots), and the scanner.

mod support;

use support::{Client, Fmt, Server, guarded};
use tickwire::protocol::pb::{
    Mood, RequestScan, SignalAction, client_message, event::Payload, server_message,
};

fn analytics_server() -> Server {
    Server::start(&[
        "--signal-interval",
        "1s",
        "--sentiment-interval",
        "1s",
        "--candle-intervals",
        "1s,1m",
        "--sim-seed",
        "3",
    ])
}

async fn payload_on(c: &mut Client, channel: &str) -> (u64, Payload) {
    c.until(|k| match k {
        server_message::Kind::Event(e) if e.channel == channel => {
            Some((e.seq, e.payload.clone().expect("payload")))
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_sentiment_and_candles_arrive_with_sane_values_in_both_formats() {
    let server = analytics_server();
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    // analytics channels appear with the first trade: patterns cover them
    c.subscribe(&["signal.sim.*", "sentiment.sim.*", "candle1s.sim.*"])
        .await;
    // a closed 1 s candle built from the simulator's trades
    let candle = c
        .until(|k| match k {
            server_message::Kind::Event(e) if e.channel == "candle1s.sim.BTC-USDT" => {
                match &e.payload {
                    Some(Payload::Candle(c)) if c.closed => Some(c.clone()),
                    _ => None,
                }
            }
            _ => None,
        })
        .await;
    assert_eq!(candle.interval, "1s");
    assert_eq!(candle.open_time_ns % 1_000_000_000, 0);
    assert!(
        candle.low <= candle.open.min(candle.close) && candle.high >= candle.open.max(candle.close)
    );
    assert!(candle.volume >= 0.0);

    let (_, p) = payload_on(&mut c, "signal.sim.BTC-USDT").await;
    let Payload::Signal(sig) = p else {
        panic!("{p:?}")
    };
    assert_ne!(sig.action, SignalAction::Unspecified as i32);
    assert!((0.0..=1.0).contains(&sig.strength), "{sig:?}");
    assert!(!sig.reason.is_empty());
    assert_eq!(sig.interval, "1s");
    assert!(sig.indicators.contains_key("close"), "{sig:?}");
    assert!(sig.indicators.values().all(|v| v.is_finite()));

    let (_, p) = payload_on(&mut c, "sentiment.sim.market").await;
    let Payload::Sentiment(s) = p else {
        panic!("{p:?}")
    };
    assert!((0.0..=100.0).contains(&s.fear_greed), "{s:?}");
    assert!((0.0..=1.0).contains(&s.confidence), "{s:?}");
    assert_ne!(s.mood, Mood::Unspecified as i32);
    assert_eq!(s.advancing + s.declining + s.unchanged, 12, "{s:?}");

    // JSON mode: the latest signal and sentiment are the channels' snapshots
    let mut j = Client::connect(&server, Fmt::Json).await;
    j.welcome().await;
    j.subscribe(&["signal.sim.BTC-USDT", "sentiment.sim.market"])
        .await;
    let mut seen = (false, false);
    guarded("both snapshots", async {
        while !(seen.0 && seen.1) {
            let r = j.next().await;
            let text = String::from_utf8_lossy(&r.raw).to_string();
            if text.contains("\"signal\":{") {
                assert!(text.contains("\"action\":\"SIGNAL_ACTION_"), "{text}");
                seen.0 = true;
            }
            if text.contains("\"sentiment\":{") {
                assert!(text.contains("\"fearGreed\":"), "{text}");
                assert!(text.contains("\"mood\":\"MOOD_"), "{text}");
                seen.1 = true;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_runs_to_done_in_two_passes_and_a_second_one_is_refused() {
    let server = analytics_server();
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    // signals (and so the scanner's view) start after the first closed candle
    c.subscribe(&["signal.sim.*"]).await;
    let mut signalled = std::collections::HashSet::new();
    while signalled.len() < 12 {
        if let server_message::Kind::Event(e) = c.next_msg().await
            && matches!(e.payload, Some(Payload::Signal(_)))
        {
            signalled.insert(e.channel);
        }
    }
    c.send(client_message::Kind::RequestScan(RequestScan {
        request_id: 7,
        top_n: 5,
        venue: "sim".into(),
    }))
    .await;
    c.send(client_message::Kind::RequestScan(RequestScan {
        request_id: 8,
        top_n: 5,
        venue: "sim".into(),
    }))
    .await;
    let mut refused = false;
    let mut started = Vec::new();
    let mut analyzed: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut last_remaining = std::collections::HashMap::new();
    let mut results = Vec::new();
    loop {
        match c.next_msg().await {
            server_message::Kind::Error(e) => {
                assert_eq!(e.request_id, 8, "{e:?}");
                assert_eq!(
                    e.code,
                    tickwire::protocol::pb::ErrorCode::RateLimited as i32
                );
                refused = true;
            }
            server_message::Kind::Event(e) if e.channel == "scan.sim.all" => match e.payload {
                Some(Payload::ScanStarted(s)) => {
                    assert_eq!((s.request_id, s.total), (7, 12));
                    started.push(s.pass);
                }
                Some(Payload::SymbolAnalyzed(s)) => {
                    assert!((-1.0..=1.0).contains(&s.score));
                    analyzed.entry(s.pass).or_default().push(s.instrument);
                }
                Some(Payload::ScanProgress(p)) => {
                    assert_eq!(p.processed + p.remaining, 12);
                    last_remaining.insert(p.pass, p.remaining);
                }
                Some(Payload::ScanResult(r)) => {
                    assert!(r.entries.len() <= 5 && !r.entries.is_empty());
                    let scores: Vec<f64> = r.entries.iter().map(|e| e.score.abs()).collect();
                    assert!(
                        scores.windows(2).all(|w| w[0] >= w[1]),
                        "ranked: {scores:?}"
                    );
                    assert!(r.entries.iter().all(|e| !e.reason.is_empty()));
                    results.push(r.pass);
                }
                Some(Payload::ScanDone(d)) => {
                    assert_eq!(d.request_id, 7);
                    break;
                }
                Some(Payload::ScanError(e)) => panic!("scan failed: {e:?}"),
                other => panic!("unexpected scan payload {other:?}"),
            },
            _ => {}
        }
    }
    assert!(refused, "the concurrent second scan was refused");
    assert_eq!(started, ["quick", "deep"]);
    assert_eq!(results, ["quick", "deep"]);
    for pass in ["quick", "deep"] {
        let mut names = analyzed[pass].clone();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            12,
            "one symbol_analyzed per instrument in {pass}"
        );
        assert_eq!(last_remaining[pass], 0);
    }
    // once done, a new scan is accepted
    c.send(client_message::Kind::RequestScan(RequestScan {
        request_id: 9,
        top_n: 3,
        venue: "sim".into(),
    }))
    .await;
    c.until(|k| match k {
        server_message::Kind::Event(e) => match &e.payload {
            Some(Payload::ScanDone(d)) if d.request_id == 9 => Some(()),
            _ => None,
        },
        server_message::Kind::Error(e) => panic!("{e:?}"),
        _ => None,
    })
    .await;
}
