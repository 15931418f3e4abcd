//! The `tickwire.v1` wire schema, shared by the tickwire server, its load
//! tester and its clients, so that field numbers and the checksum live in
//! one place.
//!
//! - [`pb`]: the generated protobuf types (prost) with canonical proto3 JSON
//!   serde impls (pbjson), compiled from `tickwire/v1/tickwire.proto` beside
//!   this crate by `build.rs` in pure Rust (no system `protoc`);
//! - [`fields`]: every message's field numbers, generated from the same
//!   schema, for decoders that read the wire by hand;
//! - [`channel`]: channel names and `*` patterns (validation, matching,
//!   the stream's kind);
//! - [`checksum`]: the order-book checksum of docs/protocol.md section 8;
//! - [`framing`]: length-delimited protobuf messages (recordings, publish
//!   batches).
//!
//! ```
//! use tickwire_proto::pb::{client_message, ClientMessage, Subscribe};
//! use prost::Message;
//!
//! let subscribe = ClientMessage {
//!     kind: Some(client_message::Kind::Subscribe(Subscribe {
//!         request_id: 1,
//!         channels: vec!["book.sim.BTC-USDT".into()],
//!         ..Default::default()
//!     })),
//! };
//! let bytes = subscribe.encode_to_vec();
//! assert_eq!(ClientMessage::decode(bytes.as_slice()).unwrap(), subscribe);
//! // JSON mode: canonical proto3 JSON
//! let json = serde_json::to_string(&subscribe).unwrap();
//! assert_eq!(json, r#"{"subscribe":{"requestId":"1","channels":["book.sim.BTC-USDT"]}}"#);
//! ```

pub mod channel;
pub mod checksum;
pub mod framing;

/// Generated protobuf types of `tickwire.v1` (prost) and their canonical
/// proto3 JSON serde impls (pbjson). Never edited by hand: see `build.rs`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tickwire.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/tickwire.v1.serde.rs"));
}

/// Field numbers of every message of the schema, generated from it:
/// `fields::event::SEQ == 2`.
pub mod fields {
    include!(concat!(env!("OUT_DIR"), "/tickwire.v1.fields.rs"));
}

/// The encoded `FileDescriptorSet` of the schema (for reflection).
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tickwire_descriptor.bin"));

/// The protocol name of the `welcome` message and the subprotocols' prefix.
pub const PROTOCOL_NAME: &str = "tickwire.v1";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn generated_field_numbers_match_what_prost_encodes() {
        let event = pb::Event {
            channel: "a.b.c".into(),
            seq: 7,
            ..Default::default()
        };
        let bytes = event.encode_to_vec();
        // key = field number << 3 | wire type (2 = length-delimited, 0 = varint)
        assert_eq!(u32::from(bytes[0]), fields::event::CHANNEL << 3 | 2);
        assert_eq!(u32::from(bytes[7]), fields::event::SEQ << 3);
        let msg = pb::ServerMessage {
            kind: Some(pb::server_message::Kind::Event(event)),
        };
        assert_eq!(
            u32::from(msg.encode_to_vec()[0]),
            fields::server_message::EVENT << 3 | 2
        );
        assert_eq!(fields::welcome::EPOCH, 8);
    }
}
