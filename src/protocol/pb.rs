//! Generated protobuf types of `tickwire.v1` and their canonical proto3 JSON
//! serde impls, from the `tickwire-proto` crate (one schema for the server,
//! the load tester and the clients).

pub use tickwire_proto::pb::*;
