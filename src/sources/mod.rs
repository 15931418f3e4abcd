//! Sources of events. Each resolves its channels once and publishes into
//! the hub by handle.

pub mod sim;
