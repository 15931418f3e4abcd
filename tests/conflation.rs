//! Conflation over real sockets (`conflate_ms`, docs/protocol.md section 5):
//! a conflated book stays verifiable after every message, no trade is
//! conflated away, every skipped seq is announced by `conflated` naming it
//! exactly, a bad `conflate_ms` is refused without harm, and live
//! subscribers beside conflated ones are unaffected. Waits count messages,
//! never time.

mod support;

use std::collections::HashMap;

use support::{Client, ClientBook, ContractChecker, Fmt, Server};
use tickwire::protocol::pb::{
    self, ErrorCode, Subscribed, client_message, event::Payload, server_message::Kind,
};

const BOOK: &str = "book.sim.BTC-USDT";
const TICKER: &str = "ticker.sim.BTC-USDT";
const TRADES: &str = "trade.sim.BTC-USDT";

/// One instrument: its ~1000 events/s fall on a few channels, so every
/// conflation interval holds many events.
fn server() -> Server {
    Server::start(&["--sim-instruments", "BTC-USDT", "--analytics", "off"])
}

async fn subscribe(c: &mut Client, channels: &[&str], conflate_ms: u32) -> Subscribed {
    let request_id = c.request_id();
    c.send(client_message::Kind::Subscribe(pb::Subscribe {
        request_id,
        channels: channels.iter().map(|s| s.to_string()).collect(),
        conflate_ms,
        ..Default::default()
    }))
    .await;
    c.until(|k| match k {
        Kind::Subscribed(s) if s.request_id == request_id => Some(s.clone()),
        Kind::Error(e) if e.request_id == request_id => panic!("refused: {e:?}"),
        _ => None,
    })
    .await
}

/// What one client saw: the delivery contract checked on every message
/// (seqs consecutive but for announced skips), books rebuilt and their
/// checksums verified after every book message.
#[derive(Default)]
struct Observer {
    contract: ContractChecker,
    books: HashMap<String, ClientBook>,
    /// Per channel: events, `conflated` messages, book checksums verified.
    events: HashMap<String, u64>,
    conflated: HashMap<String, u64>,
    verified: HashMap<String, u64>,
    /// Per channel: the seq the next event must carry after a `conflated`.
    announced: HashMap<String, u64>,
    /// Book updates that stood for several folded events.
    folded_updates: u64,
}

impl Observer {
    fn subscribed(&mut self, s: &Subscribed) {
        self.contract.subscribed(s);
    }

    fn observe(&mut self, kind: &Kind) {
        self.contract.observe(kind);
        match kind {
            Kind::Conflated(c) => {
                *self.conflated.entry(c.channel.clone()).or_default() += 1;
                self.announced.insert(c.channel.clone(), c.last_seq + 1);
            }
            Kind::Lagged(l) => panic!("a conflated or light subscriber lagged: {l:?}"),
            Kind::Event(e) => {
                *self.events.entry(e.channel.clone()).or_default() += 1;
                let after_fold = self.announced.remove(&e.channel);
                if let Some(seq) = after_fold {
                    assert_eq!(e.seq, seq, "{}: the state right after the skip", e.channel);
                }
                match &e.payload {
                    Some(Payload::BookSnapshot(s)) => {
                        let b = ClientBook::from_snapshot(s);
                        assert_eq!(b.checksum(), s.checksum, "{} seq {}", e.channel, e.seq);
                        self.books.insert(e.channel.clone(), b);
                        *self.verified.entry(e.channel.clone()).or_default() += 1;
                    }
                    Some(Payload::BookUpdate(u)) => {
                        // after a fold too: the update from where the
                        // client is to the head, whose checksum must hold
                        if after_fold.is_some() {
                            self.folded_updates += 1;
                        }
                        let b = self
                            .books
                            .get_mut(&e.channel)
                            .expect("update after snapshot");
                        b.apply(&u.bids, &u.asks);
                        assert_eq!(
                            b.checksum(),
                            u.checksum,
                            "{} seq {}: book diverged",
                            e.channel,
                            e.seq
                        );
                        *self.verified.entry(e.channel.clone()).or_default() += 1;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn count(map: &HashMap<String, u64>, channel: &str) -> u64 {
        map.get(channel).copied().unwrap_or(0)
    }
}

/// Reads until `done` holds for what was observed (the hang guard is the
/// support's `WAIT`, never a condition of the test).
async fn observe_until(c: &mut Client, o: &mut Observer, done: impl Fn(&Observer) -> bool) {
    while !done(o) {
        let kind = c.next_msg().await;
        o.observe(&kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflated_book_verifies_after_every_message_and_every_skip_is_announced() {
    let server = server();
    // json mode: the announcement is also read by a JSON client
    let mut c = Client::connect(&server, Fmt::Json).await;
    c.welcome().await;
    let mut o = Observer::default();
    let s = subscribe(&mut c, &[BOOK, TICKER], 50).await;
    o.subscribed(&s);
    // after its first tick a subscriber gets the interval's shared update
    // (several events folded into one book_update), not a snapshot
    observe_until(&mut c, &mut o, |o| {
        Observer::count(&o.conflated, BOOK) >= 5
            && Observer::count(&o.conflated, TICKER) >= 5
            && Observer::count(&o.verified, BOOK) >= 10
            && o.folded_updates >= 3
    })
    .await;
    // the announcements are counted (/stats, /metrics)
    let folds = Observer::count(&o.conflated, BOOK) + Observer::count(&o.conflated, TICKER);
    let (_, stats) = server.get_json("/stats").await;
    let sent = stats["conflated_sent"].as_u64().expect("conflated_sent");
    assert!(sent >= folds, "{sent} counted, {folds} received");
    println!(
        "book: {} messages verified, {} folds; ticker: {} events, {} folds",
        Observer::count(&o.verified, BOOK),
        Observer::count(&o.conflated, BOOK),
        Observer::count(&o.events, TICKER),
        Observer::count(&o.conflated, TICKER),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflated_trades_arrive_every_seq_once_in_order() {
    let server = server();
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    let mut o = Observer::default();
    // the book beside them shows the interval really conflates
    let s = subscribe(&mut c, &[TRADES, BOOK], 50).await;
    o.subscribed(&s);
    let mut first_trade = None;
    let mut last_trade = 0;
    while Observer::count(&o.events, TRADES) < 300 || Observer::count(&o.conflated, BOOK) < 3 {
        let kind = c.next_msg().await;
        if let Kind::Event(e) = &kind
            && e.channel == TRADES
        {
            first_trade.get_or_insert(e.seq);
            last_trade = e.seq;
        }
        o.observe(&kind);
    }
    assert_eq!(
        Observer::count(&o.conflated, TRADES),
        0,
        "trades never fold"
    );
    let first = first_trade.expect("trades");
    assert_eq!(
        Observer::count(&o.events, TRADES),
        last_trade - first + 1,
        "every trade seq from {first} to {last_trade} exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_conflate_ms_is_refused_and_the_connection_keeps_working() {
    let server = server();
    let mut c = Client::connect(&server, Fmt::Proto).await;
    c.welcome().await;
    for bad in [1, 9, 60_001] {
        let request_id = c.request_id();
        c.send(client_message::Kind::Subscribe(pb::Subscribe {
            request_id,
            channels: vec![TICKER.into()],
            conflate_ms: bad,
            ..Default::default()
        }))
        .await;
        match c.next_msg().await {
            Kind::Error(e) => {
                assert_eq!(e.code, ErrorCode::BadRequest as i32, "{e:?}");
                assert_eq!(e.request_id, request_id);
                assert!(e.message.contains("conflate_ms"), "{}", e.message);
            }
            other => panic!("conflate_ms {bad}: {other:?}"),
        }
    }
    // nothing was subscribed: only the pong comes back
    let request_id = c.request_id();
    c.send(client_message::Kind::Ping(pb::Ping { request_id }))
        .await;
    match c.next_msg().await {
        Kind::Pong(p) => assert_eq!(p.request_id, request_id),
        other => panic!("nothing but the pong: {other:?}"),
    }
    let s = subscribe(&mut c, &[TICKER], 10).await;
    assert_eq!(s.channels.len(), 1, "the bounds themselves are valid");
    let s = subscribe(&mut c, &[TRADES], 60_000).await;
    assert_eq!(s.channels[0].channel, TRADES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_subscribers_beside_conflated_ones_get_every_event() {
    let server = server();
    // one connection: the book conflated, the ticker live
    let mut mixed = Client::connect(&server, Fmt::Proto).await;
    mixed.welcome().await;
    let mut om = Observer::default();
    let s = subscribe(&mut mixed, &[BOOK], 50).await;
    om.subscribed(&s);
    let s = subscribe(&mut mixed, &[TICKER], 0).await;
    om.subscribed(&s);
    // another connection: the same book live
    let mut live = Client::connect(&server, Fmt::Proto).await;
    live.welcome().await;
    let mut ol = Observer::default();
    let s = subscribe(&mut live, &[BOOK], 0).await;
    ol.subscribed(&s);

    observe_until(&mut mixed, &mut om, |o| {
        Observer::count(&o.conflated, BOOK) >= 3 && Observer::count(&o.events, TICKER) >= 50
    })
    .await;
    assert_eq!(Observer::count(&om.conflated, TICKER), 0, "the live ticker");
    observe_until(&mut live, &mut ol, |o| {
        Observer::count(&o.verified, BOOK) >= 200
    })
    .await;
    assert!(ol.conflated.is_empty(), "the live connection never folds");
    assert_eq!(
        Observer::count(&ol.verified, BOOK),
        Observer::count(&ol.events, BOOK),
        "every book message of the live subscriber verified, seqs consecutive"
    );
}
