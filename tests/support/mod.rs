//! Shared integration-test support: start the real `tickwire` binary on an
//! ephemeral port and talk to it over real sockets with an independent
//! WebSocket client (tungstenite).
#![allow(dead_code)]
// each test file uses a part of the support
#![allow(unused_imports)]

pub mod book;
pub mod client;
pub mod contract;
pub mod hostile;
pub mod nats;
pub mod node;
pub mod server;
pub mod venues;
pub mod wait;

pub use book::ClientBook;
pub use client::*;
pub use contract::ContractChecker;
pub use server::{KillOnDrop, Server, Starting, free_addr};
pub use wait::{
    WAIT, eventually, eventually_sync, eventually_sync_within, eventually_within, guarded,
    guarded_within,
};

/// The value of the one `/metrics` sample line starting with `prefix`
/// (labels included; end the name with a space to match it exactly), if
/// there is one.
pub fn metric_sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
