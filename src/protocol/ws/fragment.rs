//! Client frames to client messages (RFC 6455 sections 5.4 to 5.6): the
//! stateful half of reading a WebSocket, with no I/O.
//!
//! The connection hands [`Assembler::next`] its read buffer; the assembler
//! parses the frame at its start ([`super::inbound::parse`]), unmasks it in
//! place and says what it amounts to ([`Received`]). A message in one frame
//! is lent straight out of the read buffer (no copy); a fragmented one is
//! collected here and handed over, owned, when its last fragment arrives.
//!
//! # Invariants
//!
//! - A message handed out is at most [`MAX_INBOUND_FRAME_BYTES`], however
//!   many fragments it came in, and came in at most [`MAX_FRAGMENTS`]
//!   frames; the size cap is checked before a fragment is copied, so the
//!   assembler never holds more than the cap.
//! - A text message handed out is valid UTF-8 (checked once, complete, as
//!   a character may be split between fragments).
//! - Control frames (ping, pong, close) may come between fragments and are
//!   handed out at once; the message in progress is kept.
//! - Every refusal is a [`MessageError`] that names its close code
//!   ([`MessageError::close_code`]): 1002 protocol violation, 1007 text
//!   that is not UTF-8 (or a close reason that is not), 1009 too big. After
//!   a refusal the connection closes: the assembler is not used again.

use std::borrow::Cow;

use thiserror::Error;

use super::inbound::{self, FrameError};
use crate::protocol::{MAX_INBOUND_FRAME_BYTES, close};

/// Most frames one fragmented message may span (the first included); more
/// is refused with 1009. Bounds the work of a message made of many tiny or
/// empty fragments.
pub const MAX_FRAGMENTS: usize = 64;

/// What one client frame amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// A complete data message (text is valid UTF-8): borrowed from the
    /// read buffer when it came in one frame, owned when reassembled.
    Message { text: bool, payload: Cow<'a, [u8]> },
    /// A fragment was kept; its message is not complete yet.
    Fragment,
    /// A ping with its payload (answered with a pong carrying it).
    Ping(&'a [u8]),
    /// A pong with its payload.
    Pong(&'a [u8]),
    /// The client closes with this code (valid on the wire; 1000 when the
    /// frame had none), to be echoed.
    Close(u16),
}

/// Why the client's frames cannot be read as messages; each closes the
/// connection with [`MessageError::close_code`].
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// A frame header breaks RFC 6455 (1002).
    #[error("{0}")]
    Frame(FrameError),
    /// A continuation with no message in progress, or a new data frame
    /// before the last fragment of the previous message (1002).
    #[error("bad fragmentation")]
    BadFragmentation,
    /// The message (one frame or its fragments together) is over the cap
    /// (1009).
    #[error("message over {0} bytes")]
    TooBig(usize),
    /// The message spans more than [`MAX_FRAGMENTS`] frames (1009).
    #[error("message in over {0} fragments")]
    TooManyFragments(usize),
    /// A complete text message that is not UTF-8 (1007).
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    /// A malformed close frame, answered with this code and reason (see
    /// [`close::check_received`]).
    #[error("bad close frame: {reason}")]
    BadClose { code: u16, reason: &'static str },
}

impl From<FrameError> for MessageError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooBig(max) => Self::TooBig(max),
            e => Self::Frame(e),
        }
    }
}

impl MessageError {
    /// The close code this refusal is answered with.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Frame(_) | Self::BadFragmentation => close::PROTOCOL_ERROR,
            Self::TooBig(_) | Self::TooManyFragments(_) => close::TOO_BIG,
            Self::InvalidUtf8 => close::INVALID_DATA,
            Self::BadClose { code, .. } => *code,
        }
    }

    /// The reason sent in the close frame.
    pub fn close_reason(&self) -> &'static str {
        match self {
            Self::Frame(_) => "websocket protocol error",
            Self::BadFragmentation => "websocket protocol error: bad fragmentation",
            Self::TooBig(_) => "inbound message over 64 KiB",
            Self::TooManyFragments(_) => "inbound message in over 64 fragments",
            Self::InvalidUtf8 => "text message is not UTF-8",
            Self::BadClose { reason, .. } => reason,
        }
    }
}

/// A message being reassembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    payload: Vec<u8>,
    fragments: usize,
}

/// One connection's reading state: the fragmented message in progress, if
/// any. Idle (between messages) it holds no buffer.
#[derive(Debug, Default)]
pub struct Assembler {
    partial: Option<Partial>,
}

impl Assembler {
    /// An assembler with no message in progress.
    pub const fn new() -> Self {
        Self { partial: None }
    }

    /// Bytes of the fragmented message in progress (0 between messages).
    pub fn pending_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.payload.len())
    }

    /// Reads the frame at the start of `buf`: `Ok(None)` until it is
    /// complete, else the bytes it took (header and payload) and what it
    /// amounts to. The payload is unmasked in place in `buf`.
    ///
    /// Cost: one pass over the payload to unmask; a copy only for fragments
    /// of a message in several frames; one UTF-8 pass per text message.
    pub fn next<'a>(
        &mut self,
        buf: &'a mut [u8],
    ) -> Result<Option<(usize, Received<'a>)>, MessageError> {
        let Some(head) = inbound::parse(buf, MAX_INBOUND_FRAME_BYTES)? else {
            return Ok(None);
        };
        let payload: &'a mut [u8] = &mut buf[head.header_len..head.total_len()];
        inbound::unmask(payload, head.mask);
        let received = self.on_frame(head.opcode, head.fin, payload)?;
        Ok(Some((head.total_len(), received)))
    }

    fn on_frame<'a>(
        &mut self,
        opcode: u8,
        fin: bool,
        payload: &'a [u8],
    ) -> Result<Received<'a>, MessageError> {
        match (opcode, fin, self.partial.as_mut()) {
            (0x8, _, _) => close::check_received(payload)
                .map(Received::Close)
                .map_err(|(code, reason)| MessageError::BadClose { code, reason }),
            (0x9, _, _) => Ok(Received::Ping(payload)),
            (0xA, _, _) => Ok(Received::Pong(payload)),
            (0x1 | 0x2, true, None) => complete(opcode == 0x1, Cow::Borrowed(payload)),
            (0x1 | 0x2, false, None) => {
                self.partial = Some(Partial {
                    text: opcode == 0x1,
                    payload: payload.to_vec(),
                    fragments: 1,
                });
                Ok(Received::Fragment)
            }
            (0x0, fin, Some(partial)) => {
                if partial.payload.len() + payload.len() > MAX_INBOUND_FRAME_BYTES {
                    return Err(MessageError::TooBig(MAX_INBOUND_FRAME_BYTES));
                }
                partial.fragments += 1;
                if partial.fragments > MAX_FRAGMENTS {
                    return Err(MessageError::TooManyFragments(MAX_FRAGMENTS));
                }
                partial.payload.extend_from_slice(payload);
                if !fin {
                    return Ok(Received::Fragment);
                }
                let Partial { text, payload, .. } = self
                    .partial
                    .take()
                    .expect("a message is in progress (matched above)");
                complete(text, Cow::Owned(payload))
            }
            _ => Err(MessageError::BadFragmentation),
        }
    }
}

/// A complete message, once its text (if text) is known to be UTF-8.
fn complete(text: bool, payload: Cow<'_, [u8]>) -> Result<Received<'_>, MessageError> {
    if text && std::str::from_utf8(&payload).is_err() {
        return Err(MessageError::InvalidUtf8);
    }
    Ok(Received::Message { text, payload })
}

#[cfg(test)]
mod tests {
    use super::super::inbound::tests::masked;
    use super::*;

    /// Feeds `frames` one after another and collects what they amount to
    /// (owned), stopping at the first refusal.
    fn feed(frames: &[Vec<u8>]) -> (Vec<String>, Option<MessageError>) {
        let mut a = Assembler::new();
        let mut stream: Vec<u8> = frames.concat();
        let mut at = 0;
        let mut seen = Vec::new();
        loop {
            match a.next(&mut stream[at..]) {
                Ok(None) => return (seen, None),
                Ok(Some((used, r))) => {
                    at += used;
                    seen.push(match r {
                        Received::Message { text, payload } => {
                            format!(
                                "{}:{}",
                                if text { "text" } else { "bin" },
                                String::from_utf8_lossy(&payload)
                            )
                        }
                        Received::Fragment => "frag".into(),
                        Received::Ping(p) => format!("ping:{}", String::from_utf8_lossy(p)),
                        Received::Pong(p) => format!("pong:{}", String::from_utf8_lossy(p)),
                        Received::Close(code) => format!("close:{code}"),
                    });
                }
                Err(e) => return (seen, Some(e)),
            }
        }
    }

    #[test]
    fn a_single_frame_message_is_lent_from_the_buffer() {
        let mut buf = masked(true, 0x1, b"{\"ping\":{}}");
        let len = buf.len();
        let mut a = Assembler::new();
        let (used, r) = a.next(&mut buf).unwrap().unwrap();
        assert_eq!(used, len);
        assert!(matches!(
            r,
            Received::Message {
                text: true,
                payload: Cow::Borrowed(b"{\"ping\":{}}")
            }
        ));
        assert_eq!(a.pending_bytes(), 0);
    }

    #[test]
    fn fragments_are_reassembled_in_order() {
        let (seen, err) = feed(&[
            masked(false, 0x2, b"ab"),
            masked(false, 0x0, b""),
            masked(false, 0x0, b"cd"),
            masked(true, 0x0, b"e"),
            masked(true, 0x2, b"next"),
        ]);
        assert_eq!(err, None);
        assert_eq!(seen, ["frag", "frag", "frag", "bin:abcde", "bin:next"]);
    }

    #[test]
    fn control_frames_between_fragments_keep_the_message() {
        let (seen, err) = feed(&[
            masked(false, 0x1, b"hel"),
            masked(true, 0x9, b"p1"),
            masked(true, 0xA, b"p2"),
            masked(true, 0x0, b"lo"),
        ]);
        assert_eq!(err, None);
        assert_eq!(seen, ["frag", "ping:p1", "pong:p2", "text:hello"]);
    }

    #[test]
    fn an_incomplete_frame_waits_for_more_bytes() {
        let frame = masked(true, 0x2, &[7; 300]);
        let mut a = Assembler::new();
        for cut in [0, 1, 3, 7, frame.len() - 1] {
            let mut part = frame[..cut].to_vec();
            assert_eq!(a.next(&mut part), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn text_split_inside_a_character_is_valid_once_complete() {
        let word = "κόσμε".as_bytes();
        let (seen, err) = feed(&[
            masked(false, 0x1, &word[..3]),
            masked(true, 0x0, &word[3..]),
        ]);
        assert_eq!(err, None);
        assert_eq!(seen, ["frag", "text:κόσμε"]);
    }

    #[test]
    fn text_that_is_not_utf8_closes_1007() {
        for frames in [
            vec![masked(true, 0x1, &[0xce, 0xba, 0xe1, 0xbd])],
            vec![masked(false, 0x1, b"ok"), masked(true, 0x0, &[0xff])],
        ] {
            let (_, err) = feed(&frames);
            let err = err.expect("refused");
            assert_eq!(err, MessageError::InvalidUtf8);
            assert_eq!(err.close_code(), 1007);
        }
        // binary messages are not text: any bytes go
        let (seen, err) = feed(&[masked(true, 0x2, &[0xff])]);
        assert_eq!((seen.len(), err), (1, None));
    }

    #[test]
    fn oversize_messages_close_1009() {
        // one frame: known from the header
        let big = vec![0u8; MAX_INBOUND_FRAME_BYTES + 1];
        let (_, err) = feed(&[masked(true, 0x2, &big)]);
        assert_eq!(err.map(|e| e.close_code()), Some(1009));
        // fragments together: refused before the one that passes the cap
        let half = vec![b'x'; MAX_INBOUND_FRAME_BYTES / 2];
        let (seen, err) = feed(&[
            masked(false, 0x2, &half),
            masked(false, 0x0, &half),
            masked(true, 0x0, b"!"),
        ]);
        assert_eq!(seen, ["frag", "frag"]);
        assert_eq!(err, Some(MessageError::TooBig(MAX_INBOUND_FRAME_BYTES)));
        assert_eq!(err.unwrap().close_code(), 1009);
        // exactly the cap is fine
        let (seen, err) = feed(&[masked(false, 0x2, &half), masked(true, 0x0, &half)]);
        assert_eq!((seen.len(), err), (2, None));
    }

    #[test]
    fn too_many_fragments_close_1009() {
        let mut frames = vec![masked(false, 0x2, b"")];
        frames.extend((1..MAX_FRAGMENTS).map(|_| masked(false, 0x0, b"")));
        let (seen, err) = feed(&frames);
        assert_eq!((seen.len(), err), (MAX_FRAGMENTS, None));
        frames.push(masked(true, 0x0, b""));
        let (_, err) = feed(&frames);
        assert_eq!(err, Some(MessageError::TooManyFragments(MAX_FRAGMENTS)));
        assert_eq!(err.unwrap().close_code(), 1009);
        assert_eq!(
            err.unwrap().close_reason(),
            "inbound message in over 64 fragments"
        );
    }

    #[test]
    fn protocol_violations_close_1002() {
        let cases: [(&str, Vec<Vec<u8>>); 5] = [
            (
                "continuation with nothing to continue",
                vec![masked(true, 0x0, b"x")],
            ),
            (
                "new message before the last fragment",
                vec![masked(false, 0x1, b"a"), masked(true, 0x1, b"b")],
            ),
            ("unmasked frame", vec![vec![0x82, 0x00]]),
            ("reserved bits", vec![vec![0xC2, 0x80, 0, 0, 0, 0]]),
            ("fragmented ping", vec![masked(false, 0x9, b"")]),
        ];
        for (what, frames) in cases {
            let (_, err) = feed(&frames);
            let err = err.unwrap_or_else(|| panic!("{what}: accepted"));
            assert_eq!(err.close_code(), 1002, "{what}: {err}");
        }
    }

    #[test]
    fn close_frames_are_echoed_or_refused() {
        let (seen, _) = feed(&[masked(true, 0x8, &4001u16.to_be_bytes())]);
        assert_eq!(seen, ["close:4001"]);
        let (seen, _) = feed(&[masked(true, 0x8, b"")]);
        assert_eq!(seen, ["close:1000"]);
        let (_, err) = feed(&[masked(true, 0x8, &1005u16.to_be_bytes())]);
        assert_eq!(err.map(|e| e.close_code()), Some(1002));
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.push(0xff);
        let (_, err) = feed(&[masked(true, 0x8, &bad_reason)]);
        assert_eq!(err.map(|e| e.close_code()), Some(1007));
    }
}
