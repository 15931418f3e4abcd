//! Channel names and subscription patterns: the schema crate's
//! (`tickwire_proto::channel`), shared with the clients.

pub use tickwire_proto::channel::*;
