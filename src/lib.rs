//! tickwire: a market-data feed server. Sources publish into the hub, which
//! numbers and encodes each event once; WebSocket connections fan the shared
//! bytes out to clients in protobuf or JSON.

pub mod analytics;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod feed;
#[doc(hidden)]
pub mod fuzz;
pub mod metrics;
pub mod protocol;
pub mod recorder;
pub mod server;
pub mod sources;
