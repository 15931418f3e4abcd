//! The client side of the wire, kept minimal so that one core can consume
//! about a million messages per second: a WebSocket frame reader over a
//! large buffer, and decoders that pull only what the load test measures
//! (channel, seq, publish time) without allocating.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tickwire_proto::fields::{event, server_message};

// Field numbers from the schema (tickwire-proto generates them from the
// .proto), as the u64 the varint reader yields.
const MSG_SUBSCRIBED: u64 = server_message::SUBSCRIBED as u64;
const MSG_EVENT: u64 = server_message::EVENT as u64;
const MSG_LAGGED: u64 = server_message::LAGGED as u64;
const MSG_CONFLATED: u64 = server_message::CONFLATED as u64;
// `Conflated` fields (channel = 1, first_seq = 2, last_seq = 3)
const CONFLATED_CHANNEL: u64 = 1;
const CONFLATED_FIRST_SEQ: u64 = 2;
const CONFLATED_LAST_SEQ: u64 = 3;
const EVENT_CHANNEL: u64 = event::CHANNEL as u64;
const EVENT_SEQ: u64 = event::SEQ as u64;
const EVENT_PUBLISH_TIME_NS: u64 = event::PUBLISH_TIME_NS as u64;

/// What one received frame means to the load test.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    Event {
        channel: &'a [u8],
        seq: u64,
        publish_time_ns: i64,
    },
    Subscribed,
    Lagged,
    /// An announced conflation skip: `first_seq..=last_seq` of `channel`
    /// were folded into its next event (seq `last_seq + 1`).
    Conflated {
        channel: &'a [u8],
        first_seq: u64,
        last_seq: u64,
    },
    Other,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Skips a field of wire type `wt`; returns the slice for length-delimited.
fn field<'a>(buf: &'a [u8], pos: &mut usize, wt: u64) -> Option<Option<&'a [u8]>> {
    match wt {
        0 => varint(buf, pos).map(|_| None),
        1 => {
            *pos += 8;
            (*pos <= buf.len()).then_some(None)
        }
        2 => {
            let len = varint(buf, pos)? as usize;
            let start = *pos;
            *pos = pos.checked_add(len)?;
            buf.get(start..*pos).map(Some)
        }
        5 => {
            *pos += 4;
            (*pos <= buf.len()).then_some(None)
        }
        _ => None,
    }
}

/// Decodes the parts of a protobuf `ServerMessage` the load test needs.
pub fn decode_proto(buf: &[u8]) -> Option<Seen<'_>> {
    let mut pos = 0;
    let mut seen = Seen::Other;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wt) = (key >> 3, key & 7);
        let body = field(buf, &mut pos, wt)?;
        match (num, body) {
            (MSG_EVENT, Some(event)) => seen = decode_event(event)?,
            (MSG_SUBSCRIBED, Some(_)) => seen = Seen::Subscribed,
            (MSG_LAGGED, Some(_)) => seen = Seen::Lagged,
            (MSG_CONFLATED, Some(body)) => seen = decode_conflated(body)?,
            _ => {}
        }
    }
    Some(seen)
}

fn decode_conflated(buf: &[u8]) -> Option<Seen<'_>> {
    let (mut channel, mut first_seq, mut last_seq) = (&[][..], 0, 0);
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wt) = (key >> 3, key & 7);
        match (num, wt) {
            (CONFLATED_FIRST_SEQ, 0) => first_seq = varint(buf, &mut pos)?,
            (CONFLATED_LAST_SEQ, 0) => last_seq = varint(buf, &mut pos)?,
            _ => {
                if let Some(body) = field(buf, &mut pos, wt)?
                    && num == CONFLATED_CHANNEL
                {
                    channel = body;
                }
            }
        }
    }
    Some(Seen::Conflated {
        channel,
        first_seq,
        last_seq,
    })
}

fn decode_event(buf: &[u8]) -> Option<Seen<'_>> {
    let (mut channel, mut seq, mut publish_time_ns) = (&[][..], 0, 0);
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wt) = (key >> 3, key & 7);
        match (num, wt) {
            (EVENT_SEQ, 0) => seq = varint(buf, &mut pos)?,
            (EVENT_PUBLISH_TIME_NS, 0) => publish_time_ns = varint(buf, &mut pos)? as i64,
            _ => {
                if let Some(body) = field(buf, &mut pos, wt)?
                    && num == EVENT_CHANNEL
                {
                    channel = body;
                }
            }
        }
    }
    Some(Seen::Event {
        channel,
        seq,
        publish_time_ns,
    })
}

#[derive(serde::Deserialize)]
struct JsonEvent<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(default)]
    seq: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "publishTimeNs", default)]
    publish_time_ns: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct JsonMessage<'a> {
    #[serde(borrow, default)]
    event: Option<JsonEvent<'a>>,
    #[serde(default)]
    subscribed: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    lagged: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default)]
    conflated: Option<JsonConflated<'a>>,
}

#[derive(serde::Deserialize)]
struct JsonConflated<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(rename = "firstSeq", default)]
    first_seq: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "lastSeq", default)]
    last_seq: Option<std::borrow::Cow<'a, str>>,
}

/// What a JSON message means to the load test (channel names are owned:
/// JSON strings may need unescaping).
#[derive(Debug, PartialEq, Eq)]
pub struct JsonSeen {
    /// (channel, seq, publish time) of an event.
    pub event: Option<(String, u64, i64)>,
    pub subscribed: bool,
    pub lagged: bool,
    /// (channel, first_seq, last_seq) of a `conflated` announcement.
    pub conflated: Option<(String, u64, u64)>,
}

/// Decodes the parts of a JSON `ServerMessage` the load test needs.
pub fn decode_json(buf: &[u8]) -> Option<JsonSeen> {
    let m: JsonMessage = serde_json::from_slice(buf).ok()?;
    let event = m.event.map(|e| {
        let seq = e.seq.and_then(|s| s.parse().ok()).unwrap_or(0);
        let t = e.publish_time_ns.and_then(|s| s.parse().ok()).unwrap_or(0);
        (e.channel.into_owned(), seq, t)
    });
    let seq = |s: Option<std::borrow::Cow<'_, str>>| s.and_then(|s| s.parse().ok()).unwrap_or(0);
    let conflated = m
        .conflated
        .map(|c| (c.channel.into_owned(), seq(c.first_seq), seq(c.last_seq)));
    Some(JsonSeen {
        event,
        subscribed: m.subscribed.is_some(),
        lagged: m.lagged.is_some(),
        conflated,
    })
}

/// The peers' payload: seq u64 LE, publish time i64 LE, padding.
pub fn decode_peer(buf: &[u8]) -> Option<(u64, i64)> {
    let seq = u64::from_le_bytes(buf.get(0..8)?.try_into().ok()?);
    let t = i64::from_le_bytes(buf.get(8..16)?.try_into().ok()?);
    Some((seq, t))
}

/// One frame read from the server.
pub struct Frame {
    pub opcode: u8,
    /// Range of the payload inside the reader's buffer.
    pub start: usize,
    pub end: usize,
}

/// Reads server frames from a socket through one large reusable buffer.
pub struct FrameReader {
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    /// When the last read returned (the arrival time of every frame it
    /// completed), in ns since the Unix epoch.
    arrived_ns: i64,
    arrival: crate::arrival::Arrival,
    /// Reads in kernel mode that came without a kernel timestamp.
    unstamped: u64,
}

impl FrameReader {
    #[allow(dead_code)] // the publish-latency binary reads this way
    pub fn new(capacity: usize, leftover: &[u8]) -> Self {
        Self::with_arrival(capacity, leftover, crate::arrival::Arrival::Read)
    }

    /// A reader stamping arrivals as `arrival` says (the socket must have
    /// kernel stamps enabled for [`crate::arrival::Arrival::Kernel`]).
    pub fn with_arrival(
        capacity: usize,
        leftover: &[u8],
        arrival: crate::arrival::Arrival,
    ) -> Self {
        let mut buf = vec![0; capacity.max(leftover.len() * 2)];
        buf[..leftover.len()].copy_from_slice(leftover);
        Self {
            buf,
            head: 0,
            tail: leftover.len(),
            arrived_ns: tickwire::protocol::now_ns(),
            arrival,
            unstamped: 0,
        }
    }

    /// Reads (in kernel mode) that carried no kernel timestamp and were
    /// stamped with the clock instead, since the last call.
    pub fn take_unstamped(&mut self) -> u64 {
        std::mem::take(&mut self.unstamped)
    }

    /// When the bytes of the frame last returned by [`Self::next`] arrived:
    /// latency is measured to here, not to the end of decoding, so a client
    /// decoding a burst does not add its own decode time to later frames.
    pub fn arrived_ns(&self) -> i64 {
        self.arrived_ns
    }

    pub fn payload(&self, f: &Frame) -> &[u8] {
        &self.buf[f.start..f.end]
    }

    fn parse(&self) -> Option<(Frame, usize)> {
        let avail = &self.buf[self.head..self.tail];
        if avail.len() < 2 {
            return None;
        }
        let opcode = avail[0] & 0x0f;
        let (len, hlen) = match avail[1] & 0x7f {
            126 if avail.len() >= 4 => (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4),
            127 if avail.len() >= 10 => (
                u64::from_be_bytes(avail[2..10].try_into().ok()?) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if avail.len() < hlen + len {
            return None;
        }
        let start = self.head + hlen;
        Some((
            Frame {
                opcode,
                start,
                end: start + len,
            },
            hlen + len,
        ))
    }

    /// The next frame; `Ok(None)` at EOF.
    pub async fn next(
        &mut self,
        sock: &mut tokio::net::tcp::OwnedReadHalf,
    ) -> io::Result<Option<(Frame, usize)>> {
        loop {
            if let Some((frame, used)) = self.parse() {
                self.head += used;
                return Ok(Some((frame, used)));
            }
            // compact, grow if one frame is larger than the buffer
            if self.head > 0 {
                self.buf.copy_within(self.head..self.tail, 0);
                self.tail -= self.head;
                self.head = 0;
            }
            if self.tail == self.buf.len() {
                let new_len = self.buf.len() * 2;
                self.buf.resize(new_len, 0);
            }
            let (n, stamp) = match self.arrival {
                crate::arrival::Arrival::Read => {
                    (sock.read(&mut self.buf[self.tail..]).await?, None)
                }
                crate::arrival::Arrival::Kernel => {
                    crate::arrival::read_stamped(sock, &mut self.buf[self.tail..]).await?
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.tail += n;
            self.arrived_ns = match stamp {
                Some(t) => t,
                None => {
                    if self.arrival == crate::arrival::Arrival::Kernel {
                        self.unstamped += 1;
                    }
                    tickwire::protocol::now_ns()
                }
            };
        }
    }
}

/// A masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask: [u8; 4] = rand::random();
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
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
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Performs the HTTP upgrade; returns bytes read past the response head.
pub async fn handshake(
    sock: &mut TcpStream,
    host: &str,
    path_and_query: &str,
) -> io::Result<Vec<u8>> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let req = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during handshake",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                let line = String::from_utf8_lossy(
                    &buf[..buf.iter().position(|b| *b == b'\r').unwrap_or(buf.len())],
                )
                .to_string();
                return Err(io::Error::other(format!("upgrade refused: {line}")));
            }
            return Ok(buf[end + 4..].to_vec());
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use tickwire::protocol::pb::{
        Event, ServerMessage, Trade, event::Payload, server_message::Kind,
    };

    #[test]
    fn proto_fast_path_agrees_with_prost() {
        let msg = ServerMessage {
            kind: Some(Kind::Event(Event {
                channel: "trade.sim.BTC-USDT".into(),
                seq: 123_456_789_012,
                source_time_ns: 5,
                publish_time_ns: 1_795_000_000_000_000_000,
                payload: Some(Payload::Trade(Trade {
                    price: 1.5,
                    quantity: 2.0,
                    side: 1,
                    trade_id: "x".into(),
                    count: 0,
                })),
            })),
        };
        let bytes = msg.encode_to_vec();
        assert_eq!(
            decode_proto(&bytes),
            Some(Seen::Event {
                channel: b"trade.sim.BTC-USDT",
                seq: 123_456_789_012,
                publish_time_ns: 1_795_000_000_000_000_000
            })
        );
        assert_eq!(
            decode_proto(&bytes[..bytes.len() - 3]),
            None,
            "truncated input is refused"
        );
        let json = serde_json::to_vec(&msg).unwrap();
        let seen = decode_json(&json).unwrap();
        assert_eq!(
            seen.event,
            Some((
                "trade.sim.BTC-USDT".to_string(),
                123_456_789_012,
                1_795_000_000_000_000_000
            ))
        );
    }

    #[test]
    fn conflated_announcements_decode_in_both_formats() {
        let msg = ServerMessage {
            kind: Some(Kind::Conflated(tickwire::protocol::pb::Conflated {
                channel: "book.sim.BTC-USDT".into(),
                first_seq: 41,
                last_seq: 57,
            })),
        };
        assert_eq!(
            decode_proto(&msg.encode_to_vec()),
            Some(Seen::Conflated {
                channel: b"book.sim.BTC-USDT",
                first_seq: 41,
                last_seq: 57
            })
        );
        let seen = decode_json(&serde_json::to_vec(&msg).unwrap()).unwrap();
        assert_eq!(
            seen.conflated,
            Some(("book.sim.BTC-USDT".to_string(), 41, 57))
        );
    }

    #[test]
    fn peer_payload() {
        let mut p = vec![0u8; 200];
        p[..8].copy_from_slice(&7u64.to_le_bytes());
        p[8..16].copy_from_slice(&99i64.to_le_bytes());
        assert_eq!(decode_peer(&p), Some((7, 99)));
        assert_eq!(decode_peer(&p[..10]), None);
    }
}
