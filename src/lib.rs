//! tickwire: a market-data feed server. Sources publish into the hub, which
//! numbers and encodes each event once; WebSocket connections fan the shared
//! bytes out to clients in protobuf or JSON.
//!
//! The modules form layers, each using only those below it (docs/architecture.md
//! draws them; tests/layers.rs checks them): `protocol`, `metrics`, `feed`,
//! then `analytics`, `sources` and `cluster`, then `server`, `recording`,
//! `config`, `cli`, and `app`, the composition root.

pub mod analytics;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod feed;
#[doc(hidden)]
pub mod fuzz;
pub mod metrics;
pub mod protocol;
pub mod recording;
pub mod server;
pub mod sources;
