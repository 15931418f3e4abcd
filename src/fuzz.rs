//! Entry points of the fuzz targets in `fuzz/` (one function per target,
//! named as the target) and of the replay of their seed corpora under
//! `cargo test` (`tests/fuzz_seeds.rs`). Each takes untrusted bytes,
//! runs one decoder the way the server does, and panics only if one of the
//! decoder's invariants breaks (errors are expected answers). Not an API:
//! hidden from the docs, and nothing in the server calls it.

use std::path::Path;

use bytes::Bytes;

use crate::protocol::ws::{Assembler, MAX_FRAGMENTS, Received, inbound};
use crate::protocol::{Format, MAX_INBOUND_FRAME_BYTES, Pattern, codec, validate_channel};

/// Most events read from one fuzzed recording (bounds a run's time).
const MAX_TWR_EVENTS: usize = 10_000;
/// Longest byte stream one `ws_fragments` input builds: four times the
/// message cap, so every cap is reachable and a run stays fast.
const MAX_WS_STREAM_BYTES: usize = 4 * MAX_INBOUND_FRAME_BYTES;

/// The protobuf `ClientMessage` decoder: a message or an error.
pub fn client_proto(data: &[u8]) {
    let _ = codec::decode_client(Format::Proto, false, data);
}

/// The JSON `ClientMessage` decoder and the request-id salvage used on bad
/// JSON.
pub fn client_json(data: &[u8]) {
    let _ = codec::decode_client(Format::Json, true, data);
    let _ = codec::salvage_json_request_id(data);
}

/// Channel names and patterns: what parses keeps the invariants the hub
/// relies on (a valid name is an exact pattern that matches itself).
pub fn channel_pattern(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mid = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(text.len());
    let (left, right) = text.split_at(mid);
    let valid_name = validate_channel(text).is_ok();
    if let Ok(p) = Pattern::parse(text) {
        assert!(text.len() <= crate::protocol::channel::MAX_CHANNEL_LEN);
        if valid_name {
            assert!(p.is_exact() && p.matches(text) && p.covers(&p));
        }
        let _ = p.matches(left);
        let _ = p.matches(right);
        if let Ok(q) = Pattern::parse(right) {
            let _ = p.covers(&q);
        }
    } else {
        assert!(!valid_name, "a valid channel name must parse as a pattern");
    }
}

/// One client frame header: a frame it accepts lies inside the buffer and
/// within the size limit.
pub fn inbound_frame(data: &[u8]) {
    if let Ok(Some(head)) = inbound::parse(data, MAX_INBOUND_FRAME_BYTES) {
        assert!(head.total_len() <= data.len());
        assert!(head.payload_len <= MAX_INBOUND_FRAME_BYTES);
        let mut payload = data[head.header_len..head.total_len()].to_vec();
        inbound::unmask(&mut payload, head.mask);
    }
}

/// A Binance stream message, depth snapshot or REST ticker.
pub fn binance_msg(data: &[u8]) {
    crate::sources::binance::decode_untrusted(data);
}

/// An OKX WebSocket message (tickers, trades, books into a checked book)
/// or REST ticker.
pub fn okx_msg(data: &[u8]) {
    crate::sources::okx::decode_untrusted(data);
}

/// A Bybit v5 public-stream message or REST ticker.
pub fn bybit_msg(data: &[u8]) {
    crate::sources::bybit::decode_untrusted(data);
}

/// A Coinbase Advanced Trade message or REST ticker.
pub fn coinbase_msg(data: &[u8]) {
    crate::sources::coinbase::decode_untrusted(data);
}

/// A Kraken v2 message (books checked against their checksum) or REST
/// ticker.
pub fn kraken_msg(data: &[u8]) {
    crate::sources::kraken::decode_untrusted(data);
}

/// A `.twr` recording: the header, then events until the end, a cut or an
/// error. A cut file reads as its whole events and then stays ended.
pub fn twr_reader(data: &[u8]) {
    let input = std::io::Cursor::new(data.to_vec());
    let Ok(mut reader) = crate::sources::twr::Reader::from_read(input, Path::new("fuzz.twr"))
    else {
        return;
    };
    let _ = reader.header();
    for read in 0..MAX_TWR_EVENTS as u64 {
        assert_eq!(reader.events_read(), read);
        match reader.next_event() {
            Ok(Some(_)) => {}
            Ok(None) => {
                if reader.truncated() {
                    assert!(
                        matches!(reader.next_event(), Ok(None)),
                        "a cut file stays ended"
                    );
                }
                return;
            }
            Err(_) => return,
        }
    }
}

/// A publish body in each of the four forms (JSON or protobuf, one event
/// or a batch). One event is one event; a batch never holds more events
/// than the body has bytes.
pub fn publish_body(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    for protobuf in [false, true] {
        for batch in [false, true] {
            if let Ok(events) = crate::server::parse_publish_body(&body, protobuf, batch) {
                if batch {
                    assert!(events.len() <= data.len().max(1), "{} events", events.len());
                } else {
                    assert_eq!(events.len(), 1);
                }
            }
        }
    }
}

/// What the assembler made of one frame, owned (for comparing two runs).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Message(bool, Vec<u8>),
    Fragment,
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16),
    Refused(u16),
}

/// A sequence of client frames fed to the WebSocket message assembler the
/// way a connection does (bytes arrive in chunks; complete frames are
/// taken from the front of the buffer).
///
/// `data` describes frames so that short inputs reach the size and
/// fragment caps: its first byte is the read chunk size; then each frame
/// is a first byte (FIN, RSV and opcode as on the wire), two bytes of
/// payload length (big endian), one byte `n` and `n % 17` bytes of pattern
/// that the payload repeats (zeros without one), masked with a fixed key.
/// A first byte with opcode 0xF instead splices the next length's raw
/// bytes into the stream (any header a client could send). Frames stop at
/// `MAX_WS_STREAM_BYTES` of stream.
///
/// Invariants checked: no panic; a message is at most
/// [`MAX_INBOUND_FRAME_BYTES`]; a text message is UTF-8; the assembler
/// never holds more than the cap; a message takes at most
/// [`MAX_FRAGMENTS`] frames; every refusal has a close code of RFC 6455;
/// and the outcome does not depend on how the bytes were chunked.
pub fn ws_fragments(data: &[u8]) {
    let Some((&chunk, mut rest)) = data.split_first() else {
        return;
    };
    let mut stream = Vec::new();
    while let [b0, hi, lo, tail @ ..] = rest
        && stream.len() < MAX_WS_STREAM_BYTES
    {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if b0 & 0x0f == 0x0f {
            let n = len.min(tail.len());
            stream.extend_from_slice(&tail[..n]);
            rest = &tail[n..];
            continue;
        }
        let Some((n, tail)) = tail.split_first() else {
            break;
        };
        let pattern_len = usize::from(n % 17).min(tail.len());
        let (pattern, after) = tail.split_at(pattern_len);
        let payload: Vec<u8> = if pattern.is_empty() {
            vec![0; len]
        } else {
            pattern.iter().copied().cycle().take(len).collect()
        };
        put_client_frame(&mut stream, *b0, &payload);
        rest = after;
    }
    let whole = assemble(&stream, stream.len().max(1));
    let chunked = assemble(&stream, usize::from(chunk).max(1));
    assert_eq!(whole, chunked, "outcome depends on chunking");
}

/// A masked client frame with first byte `b0` (mask key 1, 2, 3, 4).
fn put_client_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
    const MASK: [u8; 4] = [1, 2, 3, 4];
    out.push(b0);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
}

/// Feeds `stream` to a new assembler `chunk` bytes at a time, as a
/// connection's read loop does, until the stream ends, the client closes
/// or a frame is refused.
fn assemble(stream: &[u8], chunk: usize) -> Vec<Outcome> {
    let mut assembler = Assembler::new();
    let mut inbuf: Vec<u8> = Vec::new();
    let mut outcomes = Vec::new();
    let mut fragments = 0;
    for piece in stream.chunks(chunk) {
        inbuf.extend_from_slice(piece);
        let mut consumed = 0;
        loop {
            let available = inbuf.len() - consumed;
            let received = assembler.next(&mut inbuf[consumed..]);
            assert!(assembler.pending_bytes() <= MAX_INBOUND_FRAME_BYTES);
            let (used, received) = match received {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let code = e.close_code();
                    assert!(
                        matches!(code, 1002 | 1007 | 1009),
                        "close code {code} for {e}"
                    );
                    outcomes.push(Outcome::Refused(code));
                    return outcomes;
                }
            };
            assert!(used >= 6 && used <= available, "frame of {used} bytes");
            consumed += used;
            let outcome = match received {
                Received::Message { text, payload } => {
                    fragments = 0;
                    check_message(text, &payload);
                    Outcome::Message(text, payload.into_owned())
                }
                Received::Fragment => {
                    fragments += 1;
                    assert!(fragments <= MAX_FRAGMENTS, "{fragments} fragments kept");
                    Outcome::Fragment
                }
                Received::Ping(p) => Outcome::Ping(p.to_vec()),
                Received::Pong(p) => Outcome::Pong(p.to_vec()),
                Received::Close(code) => {
                    assert!(crate::protocol::close::is_valid_on_wire(code));
                    outcomes.push(Outcome::Close(code));
                    return outcomes;
                }
            };
            outcomes.push(outcome);
        }
        inbuf.drain(..consumed);
    }
    outcomes
}

fn check_message(text: bool, payload: &[u8]) {
    assert!(
        payload.len() <= MAX_INBOUND_FRAME_BYTES,
        "message of {} bytes",
        payload.len()
    );
    if text {
        assert!(
            std::str::from_utf8(payload).is_ok(),
            "text message is not UTF-8"
        );
    }
}
