//! An async (tokio) client of the tickwire market-data feed that never
//! hands the application a silent gap.
//!
//! - connect over `ws://` or `wss://` with a token, in protobuf or JSON;
//! - subscribe and unsubscribe by name or `*` pattern;
//! - a stream of [`Item`]s: events in per-channel seq order, and explicit
//!   [`Item::Gap`], [`Item::Lagged`], [`Item::Conflated`],
//!   [`Item::Resnapshot`] and [`Item::Reconnected`] notices;
//! - conflation ([`Client::subscribe_conflated`]): at most one message per
//!   channel per interval, the skips announced;
//! - automatic reconnect with exponential backoff and full jitter that
//!   resumes every channel from its last seq (checking the epoch);
//! - gzip frames; an [`OrderBook`] per book channel whose checksum is
//!   verified on every event, resynced by itself on a mismatch.
//!
//! The wire contract is docs/protocol.md of the tickwire repository.
//!
//! Keeping a verified book:
//!
//! ```no_run
//! use tickwire_client::{Client, ClientConfig, Item};
//!
//! # async fn run() -> Result<(), tickwire_client::Error> {
//! let mut client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws")).await?;
//! client.subscribe(&["book.sim.BTC-USDT"]).await?;
//! while let Some(item) = client.next().await {
//!     if let Item::Event(ev) = item? {
//!         if let Some(book) = client.book(ev.channel()) {
//!             let (bid, ask) = book.best();
//!             println!("{} bid {:?} ask {:?}", ev.seq(), bid, ask);
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The sequencing is a pure state machine ([`Tracker`]) that can be driven
//! without a socket:
//!
//! ```
//! use tickwire_client::{Item, Tracker};
//! use tickwire_proto::pb::{self, server_message::Kind};
//!
//! let mut tracker = Tracker::new(false);
//! let mut items = Vec::new();
//! let event = |seq| pb::ServerMessage {
//!     kind: Some(Kind::Event(pb::Event { channel: "trade.sim.X".into(), seq, ..Default::default() })),
//! };
//! tracker.handle(event(1), &mut items);
//! tracker.handle(event(3), &mut items); // seq 2 is missing
//! assert!(matches!(items[1], Item::Gap { expected_seq: 2, got_seq: 3, .. }));
//! ```

mod book;
mod client;
mod item;
mod tracker;

pub use book::OrderBook;
pub use client::{Client, ClientConfig, ConnectionStats, Error, Format};
pub use item::{Event, Item, ServerError};
pub use tickwire_proto::{self as proto, pb};
pub use tracker::{Action, Stats, Tracker};
