//! Generated protobuf types of `tickwire.v1` (prost) and their canonical
//! proto3 JSON serde impls (pbjson). Never edited by hand: see `build.rs`.
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/tickwire.v1.rs"));
include!(concat!(env!("OUT_DIR"), "/tickwire.v1.serde.rs"));
