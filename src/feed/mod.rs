//! The feed: channels, their rings (written by the hub: `ring.rs`; read
//! through cursors: `cursor.rs`), doorbells and snapshot state, and the hub
//! that publishes into them. `docs/architecture.md` follows the path a
//! message takes.

pub mod armed;
pub mod bbo;
pub mod book;
pub mod channel;
pub mod cursor;
pub mod doorbell;
pub mod encoded;
pub mod fold;
pub mod hub;
pub mod registry;
pub mod replica;
pub mod ring;
pub(crate) mod sync;
pub mod trade_tap;

pub use armed::{Arm, ArmedList};
pub use channel::{Channel, ChannelId};
pub use cursor::{Cursor, LagBounds};
pub use doorbell::Doorbell;
pub use encoded::Encoded;
pub use fold::BookFold;
pub use hub::{EventSink, Hub, Position, PublishError, payload_name};
pub use registry::Registry;
pub use replica::Replicated;
pub use ring::{ReadOutcome, Ring, RingLimits};
pub use trade_tap::{TappedTrade, TradeTap};
