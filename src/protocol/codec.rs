//! Encoding of server messages and decoding of client messages, in both wire
//! formats, plus the shared gzip step.
//!
//! Hot path: [`encode_proto`] runs once per published event (never per
//! client) and writes the frame header and the protobuf in one buffer, so the
//! frame every proto client receives is that single allocation. JSON and gzip
//! are likewise produced once per event (see `feed::Encoded`).

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compression, write::GzEncoder};
use prost::Message;
use thiserror::Error;

use super::pb::event::Payload;
use super::pb::{ClientMessage, ServerMessage};
use super::ws::frame::{OP_BINARY, OP_TEXT, frame, header_len, put_header};

/// The two wire formats of docs/protocol.md section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Binary frames, one encoded `ServerMessage` each.
    Proto,
    /// Text frames, canonical proto3 JSON.
    Json,
}

impl Format {
    /// `"proto"` or `"json"`, as in `Welcome.format` and `?format=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proto => "proto",
            Self::Json => "json",
        }
    }

    /// The WebSocket subprotocol naming this format.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::Proto => "tickwire.v1.proto",
            Self::Json => "tickwire.v1.json",
        }
    }

    /// Parses a `?format=` value.
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "proto" => Some(Self::Proto),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Parses a `Sec-WebSocket-Protocol` token.
    pub fn from_subprotocol(token: &str) -> Option<Self> {
        match token.trim() {
            "tickwire.v1.proto" => Some(Self::Proto),
            "tickwire.v1.json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Why a client frame could not be turned into a `ClientMessage`.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("undecodable protobuf ClientMessage: {0}")]
    Proto(#[from] prost::DecodeError),
    #[error("bad JSON ClientMessage: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "text frames are not accepted in proto mode (the default); send binary ClientMessage \
         frames, or to speak JSON connect with `?format=json` or the `tickwire.v1.json` \
         subprotocol (e.g. wscat -c 'ws://HOST:PORT/ws?format=json')"
    )]
    TextInProtoMode,
    #[error("binary frames are not accepted in json mode; send text ClientMessage frames")]
    BinaryInJsonMode,
    #[error(
        "ClientMessage has no kind set: send one of subscribe, unsubscribe, ping, auth, \
         list_channels, request_scan, e.g. {{\"subscribe\":{{\"requestId\":\"1\",\
         \"channels\":[\"ticker.sim.BTC-USDT\"]}}}}"
    )]
    EmptyMessage,
}

/// gzip level for shared compression: level 1 keeps the once-per-message
/// cost low (a 50-level book compresses in microseconds) at a ratio close to
/// the default's on this repetitive data.
const GZIP_LEVEL: u32 = 1;

/// gzip (RFC 1952) of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 32),
        Compression::new(GZIP_LEVEL),
    );
    enc.write_all(data)
        .expect("invariant: writing to a Vec cannot fail");
    enc.finish()
        .expect("invariant: writing to a Vec cannot fail")
}

fn over_threshold(len: usize, gzip_threshold: usize) -> bool {
    gzip_threshold > 0 && len > gzip_threshold
}

/// One message encoded for proto clients.
#[derive(Debug, Clone)]
pub struct ProtoEncoding {
    /// The complete WebSocket frame proto clients receive.
    pub frame: Bytes,
    /// The plain protobuf encoding when the frame is gzipped; `None` when it
    /// is the frame's own payload (no second buffer, no refcount promotion).
    gzipped_from: Option<Bytes>,
}

impl ProtoEncoding {
    /// The plain protobuf encoding (no framing, never gzipped).
    pub fn payload(&self) -> &[u8] {
        match &self.gzipped_from {
            Some(plain) => plain,
            None => payload_of_plain_frame(&self.frame),
        }
    }

    /// Whether `frame` holds the gzip of the payload.
    pub fn gzipped(&self) -> bool {
        self.gzipped_from.is_some()
    }
}

/// The payload of a frame built by [`put_header`] (unmasked, final).
fn payload_of_plain_frame(frame: &[u8]) -> &[u8] {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return &[],
    };
    frame.get(header..).unwrap_or_default()
}

/// Encodes `msg` once for every proto client.
///
/// hot path: one allocation when not gzipped (header and payload share it).
pub fn encode_proto(msg: &ServerMessage, gzip_threshold: usize) -> ProtoEncoding {
    encode_framed(msg.encoded_len(), gzip_threshold, Vec::new(), |buf| {
        msg.encode(buf)
            .expect("invariant: buffer was sized by encoded_len");
    })
}

/// Encodes `ServerMessage { event: Event { channel, seq, source_time_ns,
/// publish_time_ns, payload } }` once for every proto client, byte for byte
/// what prost would produce, without building the `Event` (so without
/// copying the channel name into a `String` per event). The frame is
/// written into `spare` (an evicted event's buffer) when it is large enough.
///
/// hot path: once per published event.
pub fn encode_event_proto(
    channel: &str,
    seq: u64,
    source_time_ns: i64,
    publish_time_ns: i64,
    payload: &Payload,
    gzip_threshold: usize,
    spare: Vec<u8>,
) -> ProtoEncoding {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    let varint_field = |tag: u32, v: u64| {
        if v == 0 {
            0
        } else {
            key_len(tag) + encoded_len_varint(v)
        }
    };
    let channel_len = if channel.is_empty() {
        0
    } else {
        key_len(1) + encoded_len_varint(channel.len() as u64) + channel.len()
    };
    let event_len = channel_len
        + varint_field(2, seq)
        + varint_field(3, source_time_ns as u64)
        + varint_field(4, publish_time_ns as u64)
        + payload.encoded_len();
    let len = key_len(4) + encoded_len_varint(event_len as u64) + event_len;
    encode_framed(len, gzip_threshold, spare, |buf| {
        encode_key(4, WireType::LengthDelimited, buf);
        encode_varint(event_len as u64, buf);
        if !channel.is_empty() {
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint(channel.len() as u64, buf);
            buf.put_slice(channel.as_bytes());
        }
        for (tag, v) in [
            (2, seq),
            (3, source_time_ns as u64),
            (4, publish_time_ns as u64),
        ] {
            if v != 0 {
                encode_key(tag, WireType::Varint, buf);
                encode_varint(v, buf);
            }
        }
        payload.encode(buf);
    })
}

/// Frames a protobuf body of `len` bytes written by `write`: header and
/// body in one buffer (`spare`'s allocation when it can hold them), or the
/// gzip of the body when over the threshold.
///
/// The buffer ends up exactly as long as its capacity, so `Bytes` takes it
/// over without allocating a shared header (mimalloc grows and shrinks a
/// block within its size class in place).
fn encode_framed(
    len: usize,
    gzip_threshold: usize,
    spare: Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>),
) -> ProtoEncoding {
    if over_threshold(len, gzip_threshold) {
        let mut plain = Vec::with_capacity(len);
        write(&mut plain);
        let payload = Bytes::from(plain);
        let frame = frame(OP_BINARY, &gzip(&payload));
        return ProtoEncoding {
            frame,
            gzipped_from: Some(payload),
        };
    }
    let header = header_len(len);
    let mut buf = spare;
    buf.clear();
    buf.reserve_exact(header + len);
    put_header(&mut buf, OP_BINARY, len);
    write(&mut buf);
    debug_assert_eq!(buf.len(), header + len, "encoded length mismatch");
    buf.shrink_to_fit();
    ProtoEncoding {
        frame: Bytes::from(buf),
        gzipped_from: None,
    }
}

/// Frames an already rendered JSON message: a text frame, or a binary frame
/// of its gzip when over the threshold. Returns the frame and whether it is
/// gzipped.
pub fn json_frame(json: &[u8], gzip_threshold: usize) -> (Bytes, bool) {
    if over_threshold(json.len(), gzip_threshold) {
        (frame(OP_BINARY, &gzip(json)), true)
    } else {
        let mut buf = BytesMut::with_capacity(header_len(json.len()) + json.len());
        put_header(&mut buf, OP_TEXT, json.len());
        buf.put_slice(json);
        (buf.freeze(), false)
    }
}

/// Renders `msg` as canonical proto3 JSON.
pub fn render_json(msg: &ServerMessage) -> Vec<u8> {
    serde_json::to_vec(msg).expect("invariant: generated serde impls cannot fail on valid messages")
}

/// Encodes a per-connection message (welcome, answers, errors) in `format`.
/// Cold path: built for one client only.
pub fn control_frame(msg: &ServerMessage, format: Format, gzip_threshold: usize) -> Bytes {
    match format {
        Format::Proto => encode_proto(msg, gzip_threshold).frame,
        Format::Json => json_frame(&render_json(msg), gzip_threshold).0,
    }
}

/// Decodes one complete client message. `is_text` tells the frame type.
pub fn decode_client(
    format: Format,
    is_text: bool,
    payload: &[u8],
) -> Result<ClientMessage, CodecError> {
    let msg = match (format, is_text) {
        (Format::Proto, false) => ClientMessage::decode(payload)?,
        (Format::Json, true) => serde_json::from_slice::<ClientMessage>(payload)?,
        (Format::Proto, true) => return Err(CodecError::TextInProtoMode),
        (Format::Json, false) => return Err(CodecError::BinaryInJsonMode),
    };
    if msg.kind.is_none() {
        return Err(CodecError::EmptyMessage);
    }
    Ok(msg)
}

/// Best effort: the request id of a JSON client message that failed to
/// decode, so the `error` can name the request (`0` when none is found).
pub fn salvage_json_request_id(payload: &[u8]) -> u64 {
    let Ok(serde_json::Value::Object(top)) = serde_json::from_slice::<serde_json::Value>(payload)
    else {
        return 0;
    };
    top.values()
        .filter_map(|v| v.as_object())
        .flat_map(|o| {
            ["requestId", "request_id"]
                .into_iter()
                .filter_map(|k| o.get(k))
        })
        .find_map(|id| match id {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::pb::{
        self, BookSnapshot, Event, Level, client_message, event, server_message,
    };
    use std::io::Read;

    fn book_event(levels: usize) -> ServerMessage {
        let lv = |i: usize| Level {
            price: 100.0 + i as f64,
            quantity: 1.5,
        };
        ServerMessage {
            kind: Some(server_message::Kind::Event(Event {
                channel: "book.sim.BTC-USDT".into(),
                seq: 7,
                source_time_ns: 1,
                publish_time_ns: 2,
                payload: Some(event::Payload::BookSnapshot(BookSnapshot {
                    bids: (0..levels).map(lv).collect(),
                    asks: (0..levels).map(lv).collect(),
                    checksum: 42,
                    price_decimals: 2,
                    size_decimals: 4,
                })),
            })),
        }
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn small_message_is_one_plain_binary_frame() {
        let msg = book_event(1);
        let enc = encode_proto(&msg, 1024);
        assert!(!enc.gzipped());
        assert_eq!(enc.frame[0], 0x82);
        assert_eq!(&enc.frame[header_len(enc.payload().len())..], enc.payload());
        assert_eq!(ServerMessage::decode(enc.payload()).unwrap(), msg);
    }

    #[test]
    fn large_message_is_gzipped_once_and_decodes() {
        let msg = book_event(50);
        let enc = encode_proto(&msg, 1024);
        assert!(enc.gzipped());
        assert!(enc.payload().len() > 1024);
        let body = &enc.frame[header_len(enc.frame.len() - 4)..];
        assert_eq!(&body[..2], &[0x1f, 0x8b]);
        assert_eq!(gunzip(body), enc.payload().to_vec());
        // threshold 0 disables compression
        assert!(!encode_proto(&msg, 0).gzipped());
    }

    #[test]
    fn event_encoding_without_the_struct_equals_prost() {
        let trade = event::Payload::Trade(pb::Trade {
            price: 1.5,
            quantity: 2.0,
            side: 1,
            trade_id: "9".into(),
            count: 0,
        });
        let cases = [
            ("book.sim.BTC-USDT", 7, 1, 2, book_event(3)),
            ("trade.sim.A-B", 0, 0, 0, book_event(0)),
            ("", 1, -5, i64::MAX, book_event(60)),
        ];
        for (channel, seq, src, publ, template) in cases {
            let Some(server_message::Kind::Event(ev)) = template.kind else {
                unreachable!()
            };
            for payload in [ev.payload.clone().unwrap(), trade.clone()] {
                let msg = ServerMessage {
                    kind: Some(server_message::Kind::Event(Event {
                        channel: channel.into(),
                        seq,
                        source_time_ns: src,
                        publish_time_ns: publ,
                        payload: Some(payload.clone()),
                    })),
                };
                for threshold in [0, 64, 1024] {
                    let spare = b"an old frame, longer than some".to_vec();
                    let ours =
                        encode_event_proto(channel, seq, src, publ, &payload, threshold, spare);
                    let theirs = encode_proto(&msg, threshold);
                    assert_eq!(
                        ours.payload(),
                        theirs.payload(),
                        "{channel} {seq} {threshold}"
                    );
                    assert_eq!(ours.gzipped(), theirs.gzipped());
                    if !ours.gzipped() {
                        assert_eq!(ours.frame, theirs.frame);
                    }
                }
            }
        }
    }

    #[test]
    fn json_round_trips_through_the_canonical_mapping() {
        let msg = book_event(3);
        let json = render_json(&msg);
        let text = std::str::from_utf8(&json).unwrap();
        assert!(text.contains("\"bookSnapshot\""), "{text}");
        assert!(text.contains("\"seq\":\"7\""), "64-bit as string: {text}");
        let back: ServerMessage = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, msg);
        let (frame, gz) = json_frame(&json, 1024);
        assert!(!gz);
        assert_eq!(frame[0], 0x81);
    }

    /// JSON numbers must parse back to the very same double (the mapping is
    /// lossless only with an exact float parser).
    #[test]
    fn json_doubles_round_trip_exactly() {
        let msg = ServerMessage {
            kind: Some(server_message::Kind::Event(Event {
                payload: Some(event::Payload::Ticker(pb::Ticker {
                    change_pct_24h: 3.6159534185897013,
                    last: 0.1 + 0.2,
                    volume_24h: 1e-300,
                    ..Default::default()
                })),
                ..Default::default()
            })),
        };
        let back: ServerMessage = serde_json::from_slice(&render_json(&msg)).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn client_json_accepts_both_field_spellings() {
        for text in [
            r#"{"subscribe":{"requestId":"5","channels":["trade.sim.*"]}}"#,
            r#"{"subscribe":{"request_id":5,"channels":["trade.sim.*"]}}"#,
        ] {
            let msg = decode_client(Format::Json, true, text.as_bytes()).unwrap();
            match msg.kind {
                Some(client_message::Kind::Subscribe(s)) => {
                    assert_eq!(s.request_id, 5);
                    assert_eq!(s.channels, vec!["trade.sim.*".to_string()]);
                    assert_eq!(s.snapshot, None);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn client_decode_errors() {
        assert!(matches!(
            decode_client(Format::Proto, true, b"{}"),
            Err(CodecError::TextInProtoMode)
        ));
        assert!(matches!(
            decode_client(Format::Json, false, b"\x0a"),
            Err(CodecError::BinaryInJsonMode)
        ));
        assert!(matches!(
            decode_client(Format::Json, true, b"{not json"),
            Err(CodecError::Json(_))
        ));
        assert!(matches!(
            decode_client(Format::Proto, false, &[0xff, 0xff, 0xff]),
            Err(CodecError::Proto(_))
        ));
        assert!(matches!(
            decode_client(Format::Json, true, b"{}"),
            Err(CodecError::EmptyMessage)
        ));
        let ping = pb::ClientMessage {
            kind: Some(client_message::Kind::Ping(pb::Ping { request_id: 9 })),
        };
        let ok = decode_client(Format::Proto, false, &ping.encode_to_vec()).unwrap();
        assert_eq!(ok, ping);
    }

    #[test]
    fn request_id_is_salvaged_from_bad_json() {
        assert_eq!(
            salvage_json_request_id(br#"{"subscribe":{"requestId":"12","channels":5}}"#),
            12
        );
        assert_eq!(
            salvage_json_request_id(br#"{"ping":{"request_id":3,"x":[}"#),
            0
        );
        assert_eq!(salvage_json_request_id(b"[]"), 0);
    }
}
