//! Resume: replay + live with no gap and no duplicate at the seam while
//! events flow at full rate; too-old and wrong-epoch resumes fall back to a
//! snapshot; a restart (kill -9) changes the epoch.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::{Client, Fmt, Server, guarded};
use tickwire::protocol::now_ns;
use tickwire::protocol::pb::{self, client_message, event::Payload, server_message::Kind};

async fn subscribe_resume(
    c: &mut Client,
    channels: &[&str],
    resume: HashMap<String, pb::ResumePosition>,
) -> pb::Subscribed {
    let request_id = c.request_id();
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id,
        channels: channels.iter().map(|s| s.to_string()).collect(),
        resume,
        snapshot: None,
        conflate_ms: 0,
    }))
    .await;
    c.until(|k| match k {
        Kind::Subscribed(s) if s.request_id == request_id => Some(s.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_at_full_rate_has_no_gap_and_no_duplicate_at_the_seam() {
    // analytics off: its channels appear with the first trades, and this
    // test compares the channel set of two subscribes to `*.*.*`
    let server = Server::start(&["--sim-rate", "5000", "--analytics", "off"]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    let epoch = c.welcome().await.epoch;
    let s = c.subscribe(&["*.*.*"]).await;
    let mut last: HashMap<String, u64> = s
        .channels
        .iter()
        .map(|c| (c.channel.clone(), c.seq))
        .collect();
    // mid-stream: 2000 events in
    let mut read = 0;
    guarded("2000 events", async {
        while read < 2000 {
            if let Kind::Event(e) = c.next_msg().await {
                last.insert(e.channel.clone(), e.seq);
                read += 1;
            }
        }
    })
    .await;
    drop(c); // disconnect mid-stream; events keep flowing at 5000/s
    let resume: HashMap<_, _> = last
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
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let resumed_at = now_ns();
    let s = subscribe_resume(&mut c, &["*.*.*"], resume).await;
    assert_eq!(s.channels.len(), last.len());
    for st in &s.channels {
        assert!(st.recovered, "{} not recovered", st.channel);
        assert_eq!(st.seq, last[&st.channel], "resumed from the position asked");
    }
    let mut next: HashMap<String, u64> = last.iter().map(|(c, s)| (c.clone(), s + 1)).collect();
    let (mut replayed_or_live, mut max_seen_jump) = (0u64, 0u64);
    // across the seam: the replay of what was missed, then more than 5000
    // events including live ones (published after the resume)
    let mut live = false;
    guarded(
        "5000 events after the resume, live ones among them",
        async {
            while replayed_or_live <= 5000 || !live {
                match c.next_msg().await {
                    Kind::Event(e) => {
                        let want = next[&e.channel];
                        assert_eq!(
                            e.seq, want,
                            "{}: gap or duplicate at the replay/live seam",
                            e.channel
                        );
                        assert!(
                            !matches!(e.payload, Some(Payload::BookSnapshot(_))),
                            "no snapshot when recovered"
                        );
                        next.insert(e.channel.clone(), want + 1);
                        replayed_or_live += 1;
                        live |= e.publish_time_ns > resumed_at;
                        max_seen_jump = max_seen_jump.max(e.seq - last[&e.channel]);
                    }
                    Kind::Lagged(l) => panic!("unexpected lagged {l:?}"),
                    _ => {}
                }
            }
        },
    )
    .await;
    assert!(
        replayed_or_live > 5000,
        "{replayed_or_live} events after resume"
    );
    println!(
        "resumed 48 channels at 5000 events/s: {replayed_or_live} events replayed then live, 0 gaps, 0 duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_future_and_wrong_epoch_resumes_get_a_snapshot() {
    let server = Server::start(&["--history-messages", "20", "--sim-rate", "3000"]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    let epoch = c.welcome().await.epoch;
    let book = "book.sim.BTC-USDT";
    let s = c.subscribe(&[book]).await;
    let first = s.channels[0].seq;
    // wait (by events) until the channel is far past the 20-event window
    while let Kind::Event(e) = c.next_msg().await {
        if e.seq > first + 100 {
            break;
        }
    }
    for (seq, ep, why) in [
        (first, epoch.clone(), "outside the window"),
        (u64::MAX / 2, epoch.clone(), "a seq that never existed"),
        (first + 99, "0000000000000000".to_string(), "another epoch"),
    ] {
        let mut r = Client::connect(&server, Fmt::Proto).await;
        r.welcome().await;
        let resume = HashMap::from([(book.to_string(), pb::ResumePosition { seq, epoch: ep })]);
        let s = subscribe_resume(&mut r, &[book], resume).await;
        assert!(!s.channels[0].recovered, "{why}");
        match r.next_msg().await {
            Kind::Event(e) => {
                assert_eq!(
                    e.seq, s.channels[0].seq,
                    "{why}: snapshot at the subscribed seq"
                );
                assert!(matches!(e.payload, Some(Payload::BookSnapshot(_))), "{why}");
            }
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_kill_9_changes_the_epoch() {
    let mut server = Server::start(&[]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    let before = c.welcome().await.epoch;
    server.signal("KILL");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let server = Server::start(&[]);
    let mut c = Client::connect(&server, Fmt::Proto).await;
    let after = c.welcome().await.epoch;
    assert_ne!(
        before, after,
        "history is not persisted, so the epoch must change"
    );
    // and a resume against the old epoch is not recovered
    let resume = HashMap::from([(
        "ticker.sim.BTC-USDT".to_string(),
        pb::ResumePosition {
            seq: 1,
            epoch: before,
        },
    )]);
    let s = subscribe_resume(&mut c, &["ticker.sim.BTC-USDT"], resume).await;
    assert!(!s.channels[0].recovered);
}
