//! The HTTP upgrade, by hand (the probe has no WebSocket library): parse a
//! complete-or-partial request head and build the `101` response, or a
//! refusal to send before closing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// Largest HTTP request head accepted for the upgrade.
const MAX_HEAD: usize = 16 << 10;
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub enum Outcome {
    /// Keep reading.
    Incomplete,
    /// Upgrade accepted; the response to send.
    Upgrade(Vec<u8>),
    /// Not a WebSocket upgrade; the response to send before closing.
    Reject(&'static [u8]),
}

/// Parses the request head received so far.
pub fn handshake(head: &[u8]) -> Outcome {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if head.len() > MAX_HEAD {
            Outcome::Reject(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
            )
        } else {
            Outcome::Incomplete
        };
    };
    const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
    let Ok(text) = std::str::from_utf8(&head[..end]) else {
        return Outcome::Reject(BAD);
    };
    let mut lines = text.split("\r\n");
    if !lines.next().is_some_and(|l| l.starts_with("GET ")) {
        return Outcome::Reject(BAD);
    }
    let key = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    });
    let Some(key) = key else {
        return Outcome::Reject(BAD);
    };
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    let accept = BASE64.encode(sha.finalize());
    Outcome::Upgrade(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// Unmasked binary frame header (FIN + opcode 2) for a payload of `len` bytes.
pub fn frame_header(len: usize) -> Vec<u8> {
    let mut out = vec![0x82];
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_rfc_6455_example_key() {
        let req = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert!(matches!(handshake(&req[..20]), Outcome::Incomplete));
        let Outcome::Upgrade(resp) = handshake(req) else {
            panic!("not upgraded")
        };
        let resp = String::from_utf8(resp).unwrap();
        assert!(
            resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{resp}"
        );
    }

    #[test]
    fn refuses_what_is_not_an_upgrade() {
        assert!(matches!(
            handshake(b"POST / HTTP/1.1\r\n\r\n"),
            Outcome::Reject(r) if r.starts_with(b"HTTP/1.1 400")
        ));
        assert!(matches!(
            handshake(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Outcome::Reject(_)
        ));
        assert!(
            matches!(handshake(&[b'a'; 17 << 10]), Outcome::Reject(r) if r.starts_with(b"HTTP/1.1 431"))
        );
    }

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        assert_eq!(frame_header(125), [0x82, 125]);
        assert_eq!(frame_header(200), [0x82, 126, 0, 200]);
        assert_eq!(frame_header(70_000)[..2], [0x82, 127]);
    }
}
