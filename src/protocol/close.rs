//! Every WebSocket close code the server sends (docs/protocol.md section 6),
//! in one place: RFC 6455's (1000-1009, the ones the WebSocket layer in
//! `protocol::ws` refuses frames with) and tickwire's own (4000-4999).
//! Outside tests, no code in `src/` sends a close code written as a
//! number. The contract also reserves 1008, 1011 and 4003, which this
//! server never sends, so they have no constant here.

/// Normal close.
pub const NORMAL: u16 = 1000;
/// Server shutting down: reconnect elsewhere.
pub const GOING_AWAY: u16 = 1001;
/// WebSocket protocol violation.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text message (or close reason) that is not UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// Inbound frame too big.
pub const TOO_BIG: u16 = 1009;
/// Heartbeat timeout: for two heartbeat intervals the client sent nothing
/// and its socket accepted no events (liveness by progress: a client that
/// reads is alive even while its pong waits behind its backlog). Not a
/// deliberate close: the client should reconnect (and
/// resume).
pub const HEARTBEAT_TIMEOUT: u16 = 4000;
/// Missing, invalid or expired token.
pub const UNAUTHORIZED: u16 = 4001;
/// Slow consumer.
pub const SLOW_CONSUMER: u16 = 4008;
/// Too many requests.
pub const TOO_MANY_REQUESTS: u16 = 4029;

/// Whether a close code received from a peer may appear on the wire (RFC
/// 6455 section 7.4): the defined codes 1000-1003 and 1007-1014, and the
/// registered (3000-3999) and private (4000-4999) ranges. 1004 is reserved,
/// 1005, 1006 and 1015 must never be sent, and anything else is unassigned.
pub fn is_valid_on_wire(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What a received close frame's payload asks for: the code to echo, or
/// the code and reason to answer a malformed close with.
pub fn check_received(payload: &[u8]) -> Result<u16, (u16, &'static str)> {
    match payload {
        // no status: answered with a normal close
        [] => Ok(NORMAL),
        [_] => Err((PROTOCOL_ERROR, "close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_on_wire(code) {
                return Err((PROTOCOL_ERROR, "invalid close code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err((INVALID_DATA, "close reason is not UTF-8"));
            }
            Ok(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_close_payloads() {
        assert_eq!(check_received(&[]), Ok(NORMAL));
        assert_eq!(check_received(&[3]).unwrap_err().0, PROTOCOL_ERROR);
        for ok in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert_eq!(check_received(&ok.to_be_bytes()), Ok(ok), "{ok}");
        }
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(
                check_received(&bad.to_be_bytes()).unwrap_err().0,
                PROTOCOL_ERROR,
                "{bad}"
            );
        }
        let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
        bad_utf8.extend([0xce, 0xba, 0xe1, 0xbd]); // cut inside a character
        assert_eq!(check_received(&bad_utf8).unwrap_err().0, INVALID_DATA);
        let mut good = 1000u16.to_be_bytes().to_vec();
        good.extend("κόσμε".as_bytes());
        assert_eq!(check_received(&good), Ok(1000));
    }
}
