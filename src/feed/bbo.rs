//! The consolidated cross-venue top of book, `bbo.all.<BASE-QUOTE>`.
//!
//! A hub consumer, like analytics' trade tap: the hub hands over a book
//! channel's top (best bid and ask) only when it changed, or when the book
//! was rebuilt from a snapshot, and every `status.<venue>.all` event,
//! through a bounded queue fed with `try_send` (publishing never waits;
//! a full queue drops the hand-over and counts it, and the next change of
//! that book corrects the consolidated view).
//!
//! The engine keeps each venue's top per instrument and publishes, on
//! every change of any venue's top, one `custom` JSON event (see
//! [`Consolidated::event_json`]): the best bid and best ask across the
//! venues that are in, the venue of each side, the spread, `crossed` (a
//! bid on one venue above an ask on another), which venues are in and
//! which are out, and each venue's own top. The channel's snapshot is its
//! last event.
//!
//! Who is in: a venue's book enters with its first snapshot and leaves
//! when its venue reports it `resyncing` or `stale` (that instrument) or
//! the whole connection `stale` or `reconnecting`; it comes back with its
//! next snapshot. Quote currencies stay apart (`BTC-USD` and `BTC-USDT`
//! are two consolidated books) unless `--consolidate USDT=USD` maps one
//! onto the other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Channel, Hub};
use crate::protocol::now_ns;
use crate::protocol::pb::{Custom, Level, custom, event::Payload};

/// Hand-overs queued for the engine; beyond this they are dropped.
const QUEUE: usize = 8192;

/// One hand-over from the hub.
#[derive(Debug)]
pub enum BboInput {
    /// A book channel's best levels after an event.
    Top {
        /// `book.<venue>.<BASE-QUOTE>`.
        channel: Arc<str>,
        bid: Option<Level>,
        ask: Option<Level>,
        /// The book was rebuilt from a snapshot (it is in sync again).
        snapshot: bool,
        time_ns: i64,
    },
    /// The JSON of a `status.<venue>.all` event.
    Status(String),
}

/// The hub's end of the queue.
#[derive(Debug)]
pub struct BboTap {
    tx: mpsc::Sender<BboInput>,
    dropped: AtomicU64,
    quote_map: HashMap<String, String>,
}

impl BboTap {
    /// `bbo.all.<BASE-QUOTE>` of an instrument, its quote mapped.
    pub fn channel_name(&self, base: &str, quote: &str) -> String {
        let quote = self.quote_map.get(quote).map_or(quote, String::as_str);
        format!("bbo.all.{base}-{quote}")
    }

    /// Creates the consolidated channel of an instrument a venue streams,
    /// so that clients can subscribe before the first book arrives.
    pub fn declare(
        &self,
        hub: &Hub,
        base: &str,
        quote: &str,
    ) -> Result<(), crate::protocol::ChannelError> {
        hub.channel(&self.channel_name(base, quote)).map(|_| ())
    }

    /// Offers without waiting; a full queue drops it and counts it.
    pub fn offer(&self, input: BboInput) {
        if self.tx.try_send(input).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hand-overs the engine could not take.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A venue's top of one instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
struct VenueTop {
    bid: Option<Level>,
    ask: Option<Level>,
    /// In the consolidated book (in sync).
    live: bool,
}

/// One consolidated instrument.
#[derive(Debug)]
struct Book {
    channel: Arc<Channel>,
    /// By venue; the instrument as the venue names it is in `names`.
    venues: BTreeMap<String, VenueTop>,
    names: BTreeMap<String, String>,
    last: Option<String>,
}

/// The engine: venue tops in, `bbo.all.*` events out.
#[derive(Debug)]
pub struct Consolidated {
    hub: Arc<Hub>,
    rx: mpsc::Receiver<BboInput>,
    quote_map: HashMap<String, String>,
    books: BTreeMap<String, Book>,
}

/// A tap for the hub and the engine that reads it.
pub fn new(hub: Arc<Hub>, quote_map: &[(String, String)]) -> (Arc<BboTap>, Consolidated) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let tap = Arc::new(BboTap {
        tx,
        dropped: AtomicU64::new(0),
        quote_map: quote_map.iter().cloned().collect(),
    });
    let engine = Consolidated {
        hub,
        rx,
        quote_map: quote_map.iter().cloned().collect(),
        books: BTreeMap::new(),
    };
    (tap, engine)
}

impl Consolidated {
    /// Runs until shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let input = tokio::select! {
                _ = shutdown.cancelled() => return,
                i = self.rx.recv() => match i { Some(i) => i, None => return },
            };
            self.on_input(input);
        }
    }

    /// The consolidated name of `BASE-QUOTE` after quote mapping.
    fn key(&self, inst: &str) -> Option<String> {
        let (base, quote) = inst.split_once('-')?;
        let quote = self.quote_map.get(quote).map_or(quote, String::as_str);
        Some(format!("{base}-{quote}"))
    }

    fn on_input(&mut self, input: BboInput) {
        match input {
            BboInput::Top {
                channel,
                bid,
                ask,
                snapshot,
                time_ns,
            } => {
                let mut parts = channel.splitn(3, '.');
                let (Some(_), Some(venue), Some(inst)) = (parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                let Some(key) = self.key(inst) else { return };
                if !self.books.contains_key(&key) {
                    let Ok(ch) = self.hub.channel(&format!("bbo.all.{key}")) else {
                        return;
                    };
                    self.books.insert(
                        key.clone(),
                        Book {
                            channel: ch,
                            venues: BTreeMap::new(),
                            names: BTreeMap::new(),
                            last: None,
                        },
                    );
                }
                let Some(book) = self.books.get_mut(&key) else {
                    return;
                };
                let top = book.venues.entry(venue.to_string()).or_insert(VenueTop {
                    bid: None,
                    ask: None,
                    live: false,
                });
                top.bid = bid;
                top.ask = ask;
                top.live |= snapshot;
                book.names.insert(venue.to_string(), inst.to_string());
                self.publish(&key, time_ns);
            }
            BboInput::Status(json) => {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) else {
                    return;
                };
                let (Some(venue), Some(event)) = (v["venue"].as_str(), v["event"].as_str()) else {
                    return;
                };
                let inst = v["instrument"].as_str();
                let leaves = matches!(
                    (event, inst),
                    ("resyncing" | "stale", _) | ("reconnecting", None)
                );
                if !leaves {
                    return;
                }
                let keys: Vec<String> = self
                    .books
                    .iter()
                    .filter(|(_, b)| {
                        b.names
                            .get(venue)
                            .is_some_and(|name| inst.is_none_or(|i| i == name))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    if let Some(top) = self
                        .books
                        .get_mut(&key)
                        .and_then(|b| b.venues.get_mut(venue))
                        && top.live
                    {
                        top.live = false;
                        self.publish(&key, now_ns());
                    }
                }
            }
        }
    }

    /// Publishes `key`'s consolidated book when it differs from the last.
    fn publish(&mut self, key: &str, time_ns: i64) {
        let Some(book) = self.books.get_mut(key) else {
            return;
        };
        let json = event_json(key, &book.venues, &book.names);
        if book.last.as_deref() == Some(json.as_str()) {
            return;
        }
        book.last = Some(json.clone());
        let payload = Payload::Custom(Custom {
            body: Some(custom::Body::Json(json)),
        });
        self.hub.publish_or_log(&book.channel, time_ns, payload);
    }
}

fn level_json(l: Option<Level>) -> (serde_json::Value, serde_json::Value) {
    match l {
        Some(l) => (l.price.into(), l.quantity.into()),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    }
}

/// The event of one consolidated book:
/// `{"instrument","bid","bid_size","bid_venue","ask","ask_size","ask_venue",
/// "spread","crossed","venues","out","tops":{venue:{"instrument","bid",
/// "bid_size","ask","ask_size","live"}}}` (null sides when no venue is in).
fn event_json(
    key: &str,
    venues_in: &BTreeMap<String, VenueTop>,
    names: &BTreeMap<String, String>,
) -> String {
    let mut best_bid: Option<(Level, &str)> = None;
    let mut best_ask: Option<(Level, &str)> = None;
    let (mut venues, mut out) = (Vec::new(), Vec::new());
    let mut tops = serde_json::Map::new();
    for (venue, top) in venues_in {
        let (b, bs) = level_json(top.bid);
        let (a, asz) = level_json(top.ask);
        tops.insert(
            venue.clone(),
            serde_json::json!({"instrument": names.get(venue), "bid": b, "bid_size": bs,
                "ask": a, "ask_size": asz, "live": top.live}),
        );
        if !top.live {
            out.push(venue.as_str());
            continue;
        }
        venues.push(venue.as_str());
        if let Some(l) = top.bid
            && best_bid.is_none_or(|(b, _)| l.price > b.price)
        {
            best_bid = Some((l, venue));
        }
        if let Some(l) = top.ask
            && best_ask.is_none_or(|(a, _)| l.price < a.price)
        {
            best_ask = Some((l, venue));
        }
    }
    let (bid, bid_size) = level_json(best_bid.map(|(l, _)| l));
    let (ask, ask_size) = level_json(best_ask.map(|(l, _)| l));
    let (spread, crossed) = match (best_bid, best_ask) {
        (Some((b, _)), Some((a, _))) => (serde_json::json!(a.price - b.price), b.price > a.price),
        _ => (serde_json::Value::Null, false),
    };
    serde_json::json!({
        "instrument": key,
        "bid": bid, "bid_size": bid_size, "bid_venue": best_bid.map(|(_, v)| v),
        "ask": ask, "ask_size": ask_size, "ask_venue": best_ask.map(|(_, v)| v),
        "spread": spread, "crossed": crossed,
        "venues": venues, "out": out, "tops": tops,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(price: f64, quantity: f64) -> Option<Level> {
        Some(Level { price, quantity })
    }

    fn engine() -> Consolidated {
        use crate::feed::{Registry, RingLimits};
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 100,
            max_age_ns: 0,
        }));
        let hub = Arc::new(Hub::new(
            registry,
            "e1".into(),
            1024,
            Arc::new(crate::metrics::Metrics::default()),
        ));
        new(hub, &[("USDT".into(), "USD".into())]).1
    }

    fn top(e: &mut Consolidated, channel: &str, bid: f64, ask: f64, snapshot: bool) {
        e.on_input(BboInput::Top {
            channel: channel.into(),
            bid: lv(bid, 1.0),
            ask: lv(ask, 1.0),
            snapshot,
            time_ns: 1,
        });
    }

    fn last(e: &Consolidated) -> serde_json::Value {
        serde_json::from_str(e.books["BTC-USD"].last.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn stale_and_reconnecting_venues_leave_and_a_snapshot_brings_them_back() {
        let mut e = engine();
        top(&mut e, "book.okx.BTC-USDT", 100.0, 101.0, true);
        top(&mut e, "book.kraken.BTC-USD", 100.5, 102.0, true);
        assert_eq!(last(&e)["venues"], serde_json::json!(["kraken", "okx"]));
        let status = |venue: &str, event: &str, inst: Option<&str>| {
            let mut v = serde_json::json!({"venue": venue, "event": event});
            if let Some(i) = inst {
                v["instrument"] = i.into();
            }
            BboInput::Status(v.to_string())
        };
        // another instrument of the venue going stale changes nothing
        e.on_input(status("kraken", "stale", Some("ETH-USD")));
        assert_eq!(last(&e)["out"], serde_json::json!([]));
        e.on_input(status("kraken", "stale", Some("BTC-USD")));
        assert_eq!(last(&e)["out"], serde_json::json!(["kraken"]));
        assert_eq!(last(&e)["bid_venue"], "okx");
        // an update while out does not bring it back; a snapshot does
        top(&mut e, "book.kraken.BTC-USD", 100.6, 102.0, false);
        assert_eq!(last(&e)["out"], serde_json::json!(["kraken"]));
        top(&mut e, "book.kraken.BTC-USD", 100.6, 102.0, true);
        assert_eq!(last(&e)["bid_venue"], "kraken");
        // the whole connection stale: every book of the venue leaves
        e.on_input(status("okx", "stale", None));
        assert_eq!(last(&e)["out"], serde_json::json!(["okx"]));
        e.on_input(status("kraken", "reconnecting", None));
        let v = last(&e);
        assert!(v["bid"].is_null(), "{v}");
        assert_eq!(v["venues"], serde_json::json!([]));
    }

    #[test]
    fn best_sides_come_from_live_venues_and_a_cross_is_flagged() {
        let mut venues = BTreeMap::new();
        let names = BTreeMap::new();
        let top = |bid, ask, live| VenueTop { bid, ask, live };
        venues.insert("a".into(), top(lv(100.0, 1.0), lv(101.0, 1.0), true));
        venues.insert("b".into(), top(lv(100.5, 2.0), lv(102.0, 1.0), true));
        venues.insert("c".into(), top(lv(200.0, 2.0), lv(50.0, 1.0), false));
        let v: serde_json::Value =
            serde_json::from_str(&event_json("BTC-USD", &venues, &names)).unwrap();
        assert_eq!(
            (v["bid"].as_f64(), v["bid_venue"].as_str()),
            (Some(100.5), Some("b"))
        );
        assert_eq!(
            (v["ask"].as_f64(), v["ask_venue"].as_str()),
            (Some(101.0), Some("a"))
        );
        assert_eq!(v["spread"].as_f64(), Some(0.5));
        assert_eq!(v["crossed"], false);
        assert_eq!(v["out"], serde_json::json!(["c"]));
        venues.insert("b".into(), top(lv(101.5, 2.0), lv(102.0, 1.0), true));
        let v: serde_json::Value =
            serde_json::from_str(&event_json("BTC-USD", &venues, &names)).unwrap();
        assert_eq!(v["crossed"], true);
    }
}
