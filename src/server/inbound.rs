//! One complete inbound (client) message, from bytes to the session:
//! decode it in the connection's format, charge it to the request rate,
//! note a subscribe's time for the lag age, hold a subscribe a cluster edge
//! must prepare first, and answer bad input with an `error` message.
//!
//! Framing is done before this (`protocol::ws`); the I/O around it is
//! `connection.rs`.

use super::limits::{RateDecision, RequestLimiter};
use super::session::{CloseRequest, Session};
use crate::protocol::codec::{decode_client, salvage_json_request_id};
use crate::protocol::pb::{ClientMessage, ErrorCode};
use crate::protocol::{Format, close, now_ns};

/// Close 4029: the client kept sending past its request rate.
pub(super) fn rate_close() -> CloseRequest {
    CloseRequest {
        code: close::TOO_MANY_REQUESTS,
        reason: "too many requests",
    }
}

/// Decodes one complete inbound (client) message and hands it to the
/// session; bad input becomes an `error` answer, never a close (except a
/// client that keeps sending past its request rate: 4029). Text is already
/// known to be UTF-8 (the assembler closes with 1007 otherwise).
pub(super) fn handle_inbound_message(
    session: &mut Session,
    format: Format,
    is_text: bool,
    payload: &[u8],
    rate: &mut RequestLimiter,
    subscribed_at_ns: &mut i64,
    // a cluster edge's slot for a subscribe it must prepare first
    defer: Option<&mut Option<Box<ClientMessage>>>,
) -> Option<CloseRequest> {
    let decoded = decode_client(format, is_text, payload);
    match rate.admit() {
        RateDecision::Allow => {}
        RateDecision::Refuse => {
            let request_id = match &decoded {
                Ok(m) => super::session::request_id_of(m),
                Err(_) if is_text => salvage_json_request_id(payload),
                Err(_) => 0,
            };
            session.error(
                request_id,
                ErrorCode::RateLimited,
                "request rate limit exceeded".into(),
                "",
            );
            return None;
        }
        RateDecision::Close => return Some(rate_close()),
    }
    match decoded {
        // a close it asks for (bad token) is sent by the loop after the
        // drain, so the client reads the error first
        Ok(m) => {
            if matches!(
                m.kind,
                Some(crate::protocol::pb::client_message::Kind::Subscribe(_))
            ) {
                *subscribed_at_ns = now_ns();
            }
            if let Some(slot) = defer
                && crate::cluster::edge::Edge::needs_prepare(&m)
            {
                // handled (and its work charged) after the edge prepared
                *slot = Some(Box::new(m));
                return None;
            }
            session.handle(m)
        }
        Err(e) => {
            let request_id = if is_text {
                salvage_json_request_id(payload)
            } else {
                0
            };
            session.error(request_id, ErrorCode::BadRequest, e.to_string(), "");
        }
    }
    // the work the request caused is paid with the next one
    rate.charge(session.take_work_units());
    None
}
