//! A sequence of client frames fed to the WebSocket message assembler the
//! way a connection does (bytes arrive in chunks; complete frames are
//! taken from the front of the buffer).
//!
//! `data` describes frames so that short inputs reach the size and
//! fragment caps: its first byte is the read chunk size; then each frame
//! is a first byte (FIN, RSV and opcode as on the wire), two bytes of
//! payload length (big endian) and a payload that repeats the bytes that
//! follow (up to 16 of them), masked with a fixed key. A first byte with
//! opcode 0xF instead splices the next length's raw bytes into the stream
//! (any header a client could send).
//!
//! Invariants checked: no panic; a message is at most
//! `MAX_INBOUND_FRAME_BYTES`; a text message is UTF-8; the assembler
//! never holds more than the cap; a message takes at most
//! `MAX_FRAGMENTS` frames; every refusal has a close code of RFC 6455;
//! and the outcome does not depend on how the bytes were chunked.
//!
//! The checks are in `tickwire::fuzz::ws_fragments` (shared with the seed replay
//! in `tests/fuzz_seeds.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickwire::fuzz::ws_fragments(data));
