//! The feed: channels, their history rings and snapshot state, and the hub
//! that publishes into them. docs/architecture.md follows the path a message
//! takes.

pub mod bbo;
pub mod book;
pub mod channel;
pub mod encoded;
pub mod hub;
pub mod log;
pub mod registry;
pub mod replica;
pub mod trade_tap;

pub use channel::{Channel, ChannelId, Doorbell};
pub use encoded::Encoded;
pub use hub::{EventSink, Hub, Position, PublishError, payload_name};
pub use log::{ChannelLog, LogLimits, ReadOutcome};
pub use registry::Registry;
pub use replica::Replicated;
pub use trade_tap::{TappedTrade, TradeTap};
