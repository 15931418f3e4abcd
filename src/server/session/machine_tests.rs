//! The session state machine without sockets: requests in, frames out,
//! against a real hub whose channels the tests publish into.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;

use super::{Outbound, Session};
use crate::feed::Channel;
use crate::protocol::Format;
use crate::protocol::pb::{
    self, ClientMessage, ErrorCode, ResumePosition, ServerMessage, client_message, event::Payload,
    server_message::Kind,
};
use crate::server::ServerContext;

/// The message of an outbound frame (proto, never gzipped here: every
/// message is under the 1 KiB threshold).
pub(super) fn decode(out: &Outbound) -> ServerMessage {
    match out {
        Outbound::Event(e) => e.message(),
        Outbound::Control(frame) => {
            let header = match frame[1] & 0x7f {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            ServerMessage::decode(&frame[header..]).expect("a proto frame")
        }
    }
}

/// Everything the session has due, decoded.
fn drain(s: &mut Session) -> Vec<Kind> {
    let mut out = Vec::new();
    s.collect(&mut out, 10_000).expect("no close");
    out.iter().filter_map(|o| decode(o).kind).collect()
}

pub(super) fn request(kind: client_message::Kind) -> ClientMessage {
    ClientMessage { kind: Some(kind) }
}

fn subscribe(id: u64, names: &[&str], resume: HashMap<String, ResumePosition>) -> ClientMessage {
    request(client_message::Kind::Subscribe(pb::Subscribe {
        request_id: id,
        channels: names.iter().map(|n| n.to_string()).collect(),
        resume,
        snapshot: None,
        conflate_ms: 0,
    }))
}

fn ticker(ctx: &ServerContext, channel: &Channel, last: f64) -> u64 {
    ctx.hub
        .publish(
            channel,
            0,
            Payload::Ticker(pb::Ticker {
                last,
                ..pb::Ticker::default()
            }),
        )
        .expect("a ticker on a ticker channel")
}

/// The seq and price of an event message.
fn event(kind: &Kind) -> Option<(u64, f64)> {
    match kind {
        Kind::Event(e) => match &e.payload {
            Some(Payload::Ticker(t)) => Some((e.seq, t.last)),
            _ => None,
        },
        _ => None,
    }
}

async fn session() -> (Arc<ServerContext>, Session) {
    let ctx = crate::server::tests::context().await;
    let mut s = Session::new(Format::Proto, ctx.clone(), "t".into(), None);
    assert!(matches!(drain(&mut s)[..], [Kind::Welcome(_)]));
    (ctx, s)
}

const NAME: &str = "ticker.sim.BTC-USDT";

#[tokio::test]
async fn subscribe_answers_then_snapshot_then_updates_in_order() {
    let (ctx, mut s) = session().await;
    let channel = ctx.hub.registry().get_or_create(NAME).unwrap();
    ticker(&ctx, &channel, 1.0);
    s.handle(subscribe(7, &[NAME], HashMap::new()));
    let due = drain(&mut s);
    let Kind::Subscribed(sub) = &due[0] else {
        panic!("subscribed first: {due:?}");
    };
    assert_eq!(sub.request_id, 7);
    assert_eq!((sub.channels[0].seq, sub.channels[0].recovered), (1, false));
    assert_eq!(event(&due[1]), Some((1, 1.0)), "the snapshot at seq 1");
    assert_eq!(due.len(), 2);
    ticker(&ctx, &channel, 2.0);
    ticker(&ctx, &channel, 3.0);
    assert!(s.doorbell().clear(), "the publishes rang");
    let due = drain(&mut s);
    let events: Vec<_> = due.iter().filter_map(event).collect();
    assert_eq!(events, vec![(2, 2.0), (3, 3.0)]);
    assert!(drain(&mut s).is_empty(), "each event once");
}

#[tokio::test]
async fn resume_recovers_from_the_ring_only_within_the_epoch_and_window() {
    let (ctx, _) = session().await;
    let channel = ctx.hub.registry().get_or_create(NAME).unwrap();
    for i in 1..=20 {
        ticker(&ctx, &channel, i as f64); // the test ring holds 16: 5..=20
    }
    let epoch = ctx.hub.epoch().to_string();
    let cases = [
        (10, epoch.clone(), true),
        (20, epoch.clone(), true),
        (2, epoch.clone(), false),          // 3 was evicted
        (10, "another".to_string(), false), // another server run
    ];
    for (seq, epoch, recovered) in cases {
        let mut s = Session::new(Format::Proto, ctx.clone(), "r".into(), None);
        let resume = HashMap::from([(NAME.to_string(), ResumePosition { seq, epoch })]);
        s.handle(subscribe(1, &[NAME], resume));
        let due = drain(&mut s);
        let Some(Kind::Subscribed(sub)) = due.get(1) else {
            panic!("welcome, subscribed: {due:?}");
        };
        assert_eq!(sub.channels[0].recovered, recovered, "resume after {seq}");
        let events: Vec<_> = due.iter().filter_map(event).map(|e| e.0).collect();
        if recovered {
            assert_eq!(sub.channels[0].seq, seq);
            assert_eq!(events, (seq + 1..=20).collect::<Vec<_>>(), "replayed");
        } else {
            assert_eq!(sub.channels[0].seq, 20);
            assert_eq!(events, vec![20], "the snapshot only");
        }
    }
}

#[tokio::test]
async fn a_reader_overrun_by_the_ring_gets_lagged_then_a_snapshot() {
    let (ctx, mut s) = session().await;
    let channel = ctx.hub.registry().get_or_create(NAME).unwrap();
    s.handle(subscribe(1, &[NAME], HashMap::new()));
    drain(&mut s);
    for i in 1..=40 {
        ticker(&ctx, &channel, i as f64); // the ring holds 16: 25..=40
    }
    let mut due = drain(&mut s);
    due.extend(drain(&mut s)); // the resync goes out on the next drain
    let Some(at) = due.iter().position(|k| matches!(k, Kind::Lagged(_))) else {
        panic!("lagged: {due:?}");
    };
    let Kind::Lagged(lagged) = &due[at] else {
        unreachable!()
    };
    assert_eq!((lagged.first_seq, lagged.last_seq), (1, 40));
    assert_eq!(lagged.channel, NAME);
    assert_eq!(
        event(&due[at + 1]),
        Some((40, 40.0)),
        "snapshot at last_seq"
    );
    assert!(
        due[..at].iter().all(|k| event(k).is_none()),
        "no event before"
    );
    ticker(&ctx, &channel, 41.0);
    let events: Vec<_> = drain(&mut s).iter().filter_map(event).collect();
    assert_eq!(events, vec![(41, 41.0)], "then on from last_seq + 1");
}

#[tokio::test]
async fn unsubscribe_answers_and_stops_the_events() {
    let (ctx, mut s) = session().await;
    let channel = ctx.hub.registry().get_or_create(NAME).unwrap();
    s.handle(subscribe(1, &[NAME], HashMap::new()));
    drain(&mut s);
    assert_eq!(channel.subscriber_count(), 1);
    s.handle(request(client_message::Kind::Unsubscribe(
        pb::Unsubscribe {
            request_id: 2,
            channels: vec![NAME.into()],
        },
    )));
    let due = drain(&mut s);
    let [Kind::Unsubscribed(u)] = &due[..] else {
        panic!("unsubscribed: {due:?}");
    };
    assert_eq!(
        (u.request_id, &u.channels[..]),
        (2, &[NAME.to_string()][..])
    );
    assert_eq!(channel.subscriber_count(), 0);
    ticker(&ctx, &channel, 1.0);
    assert!(!s.doorbell().is_pending(), "no longer rung");
    assert!(drain(&mut s).is_empty(), "no event after unsubscribe");
}

#[tokio::test]
async fn with_auth_on_a_request_before_a_token_or_a_bad_token_is_refused_and_closed() {
    let base = crate::server::tests::context().await;
    let ctx = ServerContext::new(
        base.config.clone(),
        base.hub.clone(),
        base.metrics.clone(),
        tokio_util::sync::CancellationToken::new(),
        Some(crate::server::auth::Authenticator::with_secret(b"secret")),
        Vec::new(),
        None,
    );
    // a subscribe before any token: refused, not subscribed, and closed
    let mut s = Session::new(Format::Proto, ctx.clone(), "a".into(), None);
    drain(&mut s);
    s.handle(subscribe(3, &[NAME], HashMap::new()));
    let due = drain(&mut s);
    let [Kind::Error(e)] = &due[..] else {
        panic!("an error: {due:?}");
    };
    assert_eq!((e.request_id, e.code), (3, ErrorCode::Unauthorized as i32));
    let close = s.take_close().expect("an unauthorized request closes");
    assert_eq!(close.code, crate::protocol::close::UNAUTHORIZED);
    assert_eq!(
        ctx.hub.registry().get(NAME).map(|c| c.subscriber_count()),
        None
    );
    // a bad token: refused and closed
    let mut s = Session::new(Format::Proto, ctx.clone(), "b".into(), None);
    drain(&mut s);
    s.handle(request(client_message::Kind::Auth(pb::Auth {
        token: "not-a-jwt".into(),
    })));
    let due = drain(&mut s);
    assert!(
        matches!(&due[..], [Kind::Error(e)] if e.code == ErrorCode::Unauthorized as i32),
        "{due:?}"
    );
    let close = s.take_close().expect("a bad token closes");
    assert_eq!(close.code, crate::protocol::close::UNAUTHORIZED);
}
