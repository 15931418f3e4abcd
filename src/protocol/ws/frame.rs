//! Outbound WebSocket frames (RFC 6455 section 5.2), built once and shared.
//!
//! Server frames are never masked, so a frame is a 2 to 10 byte header
//! followed by the payload. tickwire builds each event's frame once, header
//! and payload in one buffer, and every connection writes that same `Bytes`:
//! no per-client framing, copy or allocation.

use bytes::{BufMut, Bytes, BytesMut};

/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// Largest header of an unmasked frame.
pub const MAX_HEADER_LEN: usize = 10;

/// Length of the header of an unmasked frame carrying `payload_len` bytes.
pub fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Appends the header of a final, unmasked frame to `buf`.
pub fn put_header(buf: &mut impl BufMut, opcode: u8, payload_len: usize) {
    buf.put_u8(0x80 | opcode);
    match payload_len {
        0..=125 => buf.put_u8(payload_len as u8),
        126..=65535 => {
            buf.put_u8(126);
            buf.put_u16(payload_len as u16);
        }
        _ => {
            buf.put_u8(127);
            buf.put_u64(payload_len as u64);
        }
    }
}

/// A complete frame holding a copy of `payload` (cold path: control messages).
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    put_header(&mut buf, opcode, payload.len());
    buf.put_slice(payload);
    buf.freeze()
}

/// A close frame with a status code and a reason (truncated to fit 125 bytes).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(OP_CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes_follow_rfc6455() {
        for (len, want) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let mut buf = BytesMut::new();
            put_header(&mut buf, OP_BINARY, len);
            assert_eq!(buf.len(), want, "len {len}");
            assert_eq!(header_len(len), want);
            assert_eq!(buf[0], 0x82);
        }
        let mut buf = BytesMut::new();
        put_header(&mut buf, OP_TEXT, 300);
        assert_eq!(&buf[..], &[0x81, 126, 0x01, 0x2c]);
        let mut buf = BytesMut::new();
        put_header(&mut buf, OP_BINARY, 70000);
        assert_eq!(&buf[..], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        let f = close_frame(4008, "slow consumer");
        assert_eq!(f[0], 0x88);
        assert_eq!(f[1] as usize, 2 + "slow consumer".len());
        assert_eq!(u16::from_be_bytes([f[2], f[3]]), 4008);
        let long = "é".repeat(100);
        let f = close_frame(1000, &long);
        assert!(f[1] <= 125);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }
}
