//! The wire contract of docs/protocol.md: generated types, channel names and
//! patterns, codecs, close codes and error mapping, and the WebSocket layer
//! (frames and message assembly, in [`ws`]).

pub mod channel;
pub mod close;
pub mod codec;
pub mod pb;
pub mod ws;

pub use channel::{ChannelError, ChannelKind, Pattern, validate_channel};
pub use codec::{CodecError, Format};

/// Value of `Welcome.protocol`.
pub use tickwire_proto::PROTOCOL_NAME;

/// Largest inbound client message, in bytes (docs/protocol.md section 3).
pub const MAX_INBOUND_FRAME_BYTES: usize = 64 * 1024;

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
