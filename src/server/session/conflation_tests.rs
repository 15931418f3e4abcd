//! The conflation state machine of a session without sockets: requests in,
//! frames out at chosen times (`collect_at`), against a real hub.

use std::collections::HashMap;
use std::sync::Arc;

use super::machine_tests::{decode, request};
use super::{Outbound, Session};
use crate::feed::Channel;
use crate::protocol::pb::{
    self, BookSnapshot, BookUpdate, ErrorCode, Level, ServerMessage, client_message,
    event::Payload, server_message::Kind,
};
use crate::protocol::{Format, now_ns};
use crate::server::ServerContext;

const MS: i64 = 1_000_000;

fn subscribe(id: u64, names: &[&str], conflate_ms: u32) -> pb::ClientMessage {
    request(client_message::Kind::Subscribe(pb::Subscribe {
        request_id: id,
        channels: names.iter().map(|n| n.to_string()).collect(),
        resume: HashMap::new(),
        snapshot: None,
        conflate_ms,
    }))
}

/// Everything due at `now`, decoded.
fn drain_at(s: &mut Session, now: i64) -> Vec<Kind> {
    let mut out = Vec::new();
    s.collect_at(&mut out, 10_000, now).expect("no close");
    out.iter()
        .map(|o: &Outbound| decode(o))
        .filter_map(|m: ServerMessage| m.kind)
        .collect()
}

/// A short description of each message: `E<seq>` for an event (`S<seq>`
/// for a book snapshot), `C<first>-<last>` for `conflated`, `L...` for
/// `lagged`, the kind's name otherwise.
fn shape(kinds: &[Kind]) -> Vec<String> {
    kinds
        .iter()
        .map(|k| match k {
            Kind::Event(e) if matches!(e.payload, Some(Payload::BookSnapshot(_))) => {
                format!("S{}", e.seq)
            }
            Kind::Event(e) => format!("E{}", e.seq),
            Kind::Conflated(c) => format!("C{}-{}", c.first_seq, c.last_seq),
            Kind::Lagged(l) => format!("L{}-{}", l.first_seq, l.last_seq),
            Kind::Subscribed(_) => "subscribed".into(),
            Kind::Error(e) => format!("error {}", e.code),
            other => format!("{other:?}"),
        })
        .collect()
}

async fn session() -> (Arc<ServerContext>, Session) {
    let ctx = crate::server::tests::context().await;
    let mut s = Session::new(Format::Proto, ctx.clone(), "c".into(), None);
    drain_at(&mut s, 0); // welcome
    (ctx, s)
}

fn ticker(ctx: &ServerContext, channel: &Channel, n: u64) {
    for i in 0..n {
        let t = pb::Ticker {
            last: i as f64,
            ..Default::default()
        };
        ctx.hub.publish(channel, 0, Payload::Ticker(t)).unwrap();
    }
}

fn trades(ctx: &ServerContext, channel: &Channel, n: u64) {
    for i in 0..n {
        let t = pb::Trade {
            price: i as f64,
            ..Default::default()
        };
        ctx.hub.publish(channel, 0, Payload::Trade(t)).unwrap();
    }
}

fn lv(price: f64, quantity: f64) -> Level {
    Level { price, quantity }
}

#[tokio::test]
async fn a_conflated_ticker_gets_the_latest_once_per_interval_and_the_skip_announced() {
    let (ctx, mut s) = session().await;
    let ch = ctx.hub.registry().get_or_create("ticker.sim.A-B").unwrap();
    ticker(&ctx, &ch, 1);
    s.handle(subscribe(1, &["ticker.sim.A-B"], 100));
    let t0 = now_ns();
    assert_eq!(shape(&drain_at(&mut s, t0)), ["subscribed", "E1"]);
    ticker(&ctx, &ch, 5); // 2..=6
    let t1 = s
        .conflation_wake_ns(now_ns())
        .expect("events pending: a wake-up");
    assert_eq!(t1 % (100 * MS), 0, "a tick of the 100 ms grid");
    assert!(drain_at(&mut s, t1 - 1).is_empty(), "not due yet");
    assert_eq!(shape(&drain_at(&mut s, t1)), ["C2-5", "E6"]);
    ticker(&ctx, &ch, 1); // 7
    assert!(
        drain_at(&mut s, t1 + 99 * MS).is_empty(),
        "one per interval"
    );
    assert_eq!(s.conflation_wake_ns(now_ns()), Some(t1 + 100 * MS));
    assert_eq!(
        shape(&drain_at(&mut s, t1 + 100 * MS)),
        ["E7"],
        "a single pending event goes as is, nothing skipped"
    );
    let next = t1 + 200 * MS;
    assert_eq!(
        s.conflation_wake_ns(t1 + 100 * MS),
        Some(next),
        "nothing pending, the next tick ahead: the timer, not the doorbell"
    );
    assert_eq!(
        s.conflation_wake_ns(next),
        None,
        "idle past it: the doorbell"
    );
}

#[tokio::test]
async fn a_conflated_book_gets_the_shared_snapshot_at_the_head() {
    let (ctx, mut s) = session().await;
    let ch = ctx.hub.registry().get_or_create("book.sim.A-B").unwrap();
    let snap = BookSnapshot {
        bids: vec![lv(99.0, 1.0), lv(98.0, 1.0)],
        asks: vec![lv(101.0, 1.0)],
        price_decimals: 1,
        size_decimals: 1,
        ..Default::default()
    };
    ctx.hub
        .publish(&ch, 0, Payload::BookSnapshot(snap))
        .unwrap();
    s.handle(subscribe(1, &["book.sim.A-B"], 50));
    let t0 = now_ns();
    assert_eq!(shape(&drain_at(&mut s, t0)), ["subscribed", "S1"]);
    for q in 2..=4 {
        let u = BookUpdate {
            bids: vec![lv(99.0, q as f64)],
            ..Default::default()
        };
        ctx.hub.publish(&ch, 0, Payload::BookUpdate(u)).unwrap();
    }
    let t1 = s.conflation_wake_ns(now_ns()).expect("a wake-up");
    assert!(t1 <= t0 + 50 * MS);
    let due = drain_at(&mut s, t1);
    assert_eq!(shape(&due), ["C2-3", "S4"], "the first tick: a snapshot");
    let Kind::Event(e) = &due[1] else {
        unreachable!()
    };
    let Some(Payload::BookSnapshot(b)) = &e.payload else {
        unreachable!()
    };
    assert_eq!(b.bids[0], lv(99.0, 4.0), "the state after seq 4");
    let mut book = crate::feed::book::OrderBook::from_snapshot(b);
    // a second subscriber of the same interval, subscribed at seq 4
    let mut other = Session::new(Format::Proto, ctx.clone(), "o".into(), None);
    other.handle(subscribe(1, &["book.sim.A-B"], 50));
    drain_at(&mut other, t1);
    for (q, ask) in [(5.0, 100.5), (6.0, 101.0)] {
        let u = BookUpdate {
            bids: vec![lv(99.0, q)],
            asks: vec![lv(ask, 0.0)],
            ..Default::default()
        };
        ctx.hub.publish(&ch, 0, Payload::BookUpdate(u)).unwrap();
    }
    // the next tick: both at the base (4): one shared update 4 -> 6
    let t2 = t1 + 50 * MS;
    assert_eq!(s.conflation_wake_ns(now_ns()), Some(t2));
    let due = drain_at(&mut s, t2);
    assert_eq!(shape(&due), ["C5-5", "E6"]);
    let Kind::Event(e) = &due[1] else {
        unreachable!()
    };
    let Some(Payload::BookUpdate(u)) = &e.payload else {
        panic!("an update, not a snapshot: {e:?}")
    };
    book.apply(u);
    assert_eq!(book.checksum(), u.checksum, "the update keeps the checksum");
    assert_eq!(book.bids().next(), Some(&lv(99.0, 6.0)));
    let theirs = drain_at(&mut other, t2);
    assert_eq!(shape(&theirs), ["C5-5", "E6"]);
    assert_eq!(theirs[1], due[1], "the same update for both");
}

#[tokio::test]
async fn conflated_trades_are_batched_at_the_interval_never_dropped() {
    let (ctx, mut s) = session().await;
    let ch = ctx.hub.registry().get_or_create("trade.sim.A-B").unwrap();
    s.handle(subscribe(1, &["trade.sim.A-B"], 200));
    let t0 = now_ns();
    assert_eq!(shape(&drain_at(&mut s, t0)), ["subscribed"]);
    trades(&ctx, &ch, 10);
    let due = s.conflation_wake_ns(now_ns()).expect("a wake-up");
    assert!(drain_at(&mut s, due - 1).is_empty());
    let want: Vec<String> = (1..=10).map(|i| format!("E{i}")).collect();
    assert_eq!(shape(&drain_at(&mut s, due)), want);
}

#[tokio::test]
async fn a_conflated_stateful_channel_is_never_lagged_for_what_it_holds() {
    let (ctx, mut s) = session().await;
    let ch = ctx.hub.registry().get_or_create("ticker.sim.A-B").unwrap();
    s.handle(subscribe(1, &["ticker.sim.A-B"], 100));
    let t0 = now_ns();
    drain_at(&mut s, t0);
    ticker(&ctx, &ch, 40); // far past the test ring's 16
    let due = s.conflation_wake_ns(now_ns()).expect("a wake-up");
    assert!(drain_at(&mut s, due - 1).is_empty(), "no lagged");
    s.resync_lagging().expect("lagged policy");
    assert!(drain_at(&mut s, due - 1).is_empty(), "not even by age");
    assert_eq!(shape(&drain_at(&mut s, due)), ["C1-39", "E40"]);
}

#[tokio::test]
async fn an_out_of_range_conflate_ms_is_refused_and_changes_nothing() {
    let (ctx, mut s) = session().await;
    ctx.hub.registry().get_or_create("ticker.sim.A-B").unwrap();
    for bad in [1, 9, 60_001, u32::MAX] {
        s.handle(subscribe(3, &["ticker.sim.A-B"], bad));
        let due = drain_at(&mut s, 0);
        let [Kind::Error(e)] = &due[..] else {
            panic!("one error: {due:?}");
        };
        assert_eq!(e.code, ErrorCode::BadRequest as i32);
        assert_eq!(e.request_id, 3);
        assert!(e.message.contains("conflate_ms"), "{}", e.message);
    }
    assert_eq!(s.subscription_count(), 0);
    assert_eq!(s.conflation_wake_ns(now_ns()), None);
}

#[tokio::test]
async fn a_live_subscription_beside_conflated_ones_gets_every_event_at_once() {
    let (ctx, mut s) = session().await;
    let live = ctx.hub.registry().get_or_create("ticker.sim.L-L").unwrap();
    let slow = ctx.hub.registry().get_or_create("ticker.sim.S-S").unwrap();
    s.handle(subscribe(1, &["ticker.sim.S-S"], 100));
    s.handle(subscribe(2, &["ticker.sim.L-L"], 0));
    let t0 = now_ns();
    drain_at(&mut s, t0);
    assert!(!s.events_deferred(), "a live channel needs its doorbell");
    ticker(&ctx, &live, 3);
    ticker(&ctx, &slow, 3);
    assert_eq!(shape(&drain_at(&mut s, t0)), ["E1", "E2", "E3"]);
    let wake = s
        .conflation_wake_ns(now_ns())
        .expect("the held channel's timer");
    assert!(t0 < wake && wake <= t0 + 100 * MS, "its first interval");
}

#[tokio::test]
async fn a_resubscribe_sets_the_rate_and_keeps_the_position() {
    let (ctx, mut s) = session().await;
    let ch = ctx.hub.registry().get_or_create("ticker.sim.A-B").unwrap();
    s.handle(subscribe(1, &["ticker.*.*"], 100));
    let t0 = now_ns();
    drain_at(&mut s, t0);
    assert!(s.events_deferred(), "only conflated channels and patterns");
    ticker(&ctx, &ch, 3);
    assert!(drain_at(&mut s, t0).is_empty());
    s.handle(subscribe(2, &["ticker.sim.A-B"], 0));
    let due = drain_at(&mut s, t0);
    assert_eq!(
        shape(&due),
        ["subscribed", "E1", "E2", "E3"],
        "live again: what was held, in order"
    );
    assert!(!s.events_deferred());
    assert_eq!(s.conflated, 0);
}

#[tokio::test]
async fn a_channel_a_conflated_pattern_adopts_later_is_conflated() {
    let (ctx, mut s) = session().await;
    s.handle(subscribe(1, &["trade.sim.*"], 100));
    let t0 = now_ns();
    drain_at(&mut s, t0);
    let ch = ctx.hub.registry().get_or_create("trade.sim.N-W").unwrap();
    trades(&ctx, &ch, 2);
    assert!(
        drain_at(&mut s, t0).is_empty(),
        "adopted, held to its interval"
    );
    assert_eq!(s.conflated, 1);
    let later = t0 + 1000 * MS;
    assert_eq!(shape(&drain_at(&mut s, later)), ["E1", "E2"]);
}
