//! Client-to-server WebSocket frames (RFC 6455 section 5), parsed from a
//! byte buffer with no I/O, so the parser can be tested and fuzzed alone.
//!
//! tickwire reads client frames itself instead of through a library's read
//! half so that an idle connection holds no read buffer at all: bytes are
//! buffered only while a client message is in flight (see
//! `server::connection`). Messages are assembled from these frames by
//! [`super::fragment::Assembler`].

use thiserror::Error;

/// Why a client frame violates the protocol.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    #[error("reserved bits set (no extension was negotiated)")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    BadOpcode(u8),
    #[error("client frames must be masked")]
    Unmasked,
    #[error("control frames must be final and at most 125 bytes")]
    BadControl,
    #[error("message over {0} bytes")]
    TooBig(usize),
}

/// One parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    pub opcode: u8,
    pub mask: [u8; 4],
    /// Bytes of header before the payload.
    pub header_len: usize,
    pub payload_len: usize,
}

impl FrameHead {
    /// Header plus payload.
    pub fn total_len(&self) -> usize {
        self.header_len + self.payload_len
    }

    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Parses the frame at the start of `buf`. `Ok(None)` until the whole frame
/// (header and payload) is in `buf`; payloads over `max_payload` are refused
/// from the header alone, before they arrive.
pub fn parse(buf: &[u8], max_payload: usize) -> Result<Option<FrameHead>, FrameError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
    if !matches!(opcode, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA) {
        return Err(FrameError::BadOpcode(opcode));
    }
    if b1 & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (payload_len, len_bytes) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 2),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 8),
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    let is_control = opcode & 0x8 != 0;
    if is_control && (!fin || payload_len > 125) {
        return Err(FrameError::BadControl);
    }
    if payload_len > max_payload as u64 {
        return Err(FrameError::TooBig(max_payload));
    }
    let header_len = 2 + len_bytes + 4;
    let Some(mask) = buf.get(2 + len_bytes..header_len) else {
        return Ok(None);
    };
    let head = FrameHead {
        fin,
        opcode,
        mask: mask.try_into().expect("4 bytes"),
        header_len,
        payload_len: payload_len as usize,
    };
    Ok((buf.len() >= head.total_len()).then_some(head))
}

/// Unmasks a payload in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A client frame: masked, with the shortest length form.
    pub(in crate::protocol::ws) fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=65535 => {
                out.push(0x80 | 126);
                out.extend((n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend((n as u64).to_be_bytes());
            }
        }
        out.extend(mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn parses_every_length_form_and_unmasks() {
        for len in [0usize, 5, 125, 126, 1000, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = masked(true, 0x2, &payload);
            let head = parse(&frame, 1 << 20).unwrap().unwrap();
            assert_eq!((head.fin, head.opcode, head.payload_len), (true, 2, len));
            assert_eq!(head.total_len(), frame.len());
            let mut body = frame[head.header_len..].to_vec();
            unmask(&mut body, head.mask);
            assert_eq!(body, payload);
            // every strict prefix is incomplete, never an error
            for cut in [0, 1, head.header_len - 1, frame.len() - 1] {
                if cut < frame.len() {
                    assert_eq!(
                        parse(&frame[..cut], 1 << 20),
                        Ok(None),
                        "len {len} cut {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn refuses_protocol_violations() {
        assert_eq!(parse(&[0x82, 0x05], 100), Err(FrameError::Unmasked));
        assert_eq!(parse(&[0xC2, 0x80], 100), Err(FrameError::ReservedBits));
        assert_eq!(parse(&[0x83, 0x80], 100), Err(FrameError::BadOpcode(3)));
        assert_eq!(
            parse(&masked(false, 0x9, b"x"), 100),
            Err(FrameError::BadControl)
        );
        assert_eq!(
            parse(&masked(true, 0x8, &[0; 126]), 1000),
            Err(FrameError::BadControl)
        );
    }

    #[test]
    fn too_big_is_known_from_the_header_alone() {
        let header = [0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0x90, 0x00];
        assert_eq!(parse(&header, 65536), Err(FrameError::TooBig(65536)));
        let exactly = masked(true, 0x2, &[7; 65536]);
        assert!(parse(&exactly, 65536).unwrap().is_some());
    }
}
