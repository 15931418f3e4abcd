//! The WebSocket layer of the wire contract (RFC 6455), with no I/O: the
//! connection task (`server::connection`) reads and writes bytes and hands
//! them here.
//!
//! - [`frame`]: outbound (server) frames, built once per event and shared.
//! - [`inbound`]: one client frame header, parsed and checked, and unmasking.
//! - [`fragment`]: client frames to client messages: continuation frames,
//!   control frames between fragments, the size and fragment caps and UTF-8
//!   of text, each refusal with its close code.
//!
//! The close codes themselves, these and tickwire's own, are in
//! [`crate::protocol::close`].

pub mod fragment;
pub mod frame;
pub mod inbound;

pub use fragment::{Assembler, MAX_FRAGMENTS, MessageError, Received};
