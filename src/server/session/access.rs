//! Authentication state changes of a session: the first token, refreshes
//! (same subject; a narrower grant ends what it no longer covers), and the
//! deadlines (time to show a token, the token's expiry).

use super::{AuthState, CloseRequest, Session, msg};
use crate::protocol::pb::{ErrorCode, Unsubscribed, server_message};

impl Session {
    /// Verifies a token (handshake or `auth` message): a valid one grants
    /// (or refreshes) access, anything else is UNAUTHORIZED and close 4001.
    ///
    /// A refresh keeps the subject: another subject's token is refused
    /// (UNAUTHORIZED, the current grant stays until it expires). A refresh
    /// with a narrower `channels` claim ends the subscriptions it no longer
    /// covers: a FORBIDDEN `error` says which and why, then `unsubscribed`
    /// (request id 0) lists them.
    pub(super) fn authenticate(&mut self, request_id: u64, token: &str) {
        let Some(verifier) = &self.ctx.auth else {
            return;
        };
        let grant = match verifier.verify(token) {
            Ok(grant) => grant,
            Err(e) => return self.unauthorized(request_id, e.to_string()),
        };
        if let AuthState::Granted(current) = &self.auth
            && current.subject != grant.subject
        {
            let message = format!(
                "token refresh refused: its subject `{}` is not this connection's `{}` \
                 (reconnect to change identity)",
                grant.subject, current.subject
            );
            self.error(request_id, ErrorCode::Unauthorized, message, "");
            return;
        }
        self.auth = AuthState::Granted(grant);
        let revoked = self.revoke_uncovered();
        if !revoked.is_empty() {
            let shown: Vec<&str> = revoked.iter().take(8).map(String::as_str).collect();
            let more = revoked.len().saturating_sub(shown.len());
            let message = format!(
                "the refreshed token does not cover {} subscription(s), now ended: {}{}",
                revoked.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
            self.error_with(
                request_id,
                ErrorCode::Forbidden,
                message,
                "",
                revoked.clone(),
            );
            self.push(msg(server_message::Kind::Unsubscribed(Unsubscribed {
                request_id,
                channels: revoked,
            })));
        }
    }

    pub(super) fn unauthorized(&mut self, request_id: u64, message: String) {
        self.error(request_id, ErrorCode::Unauthorized, message, "");
        self.close = Some(CloseRequest {
            code: crate::protocol::close::UNAUTHORIZED,
            reason: "missing, invalid or expired token",
        });
    }

    /// A close the last request asked for (bad or missing token).
    pub fn take_close(&mut self) -> Option<CloseRequest> {
        self.close.take()
    }

    /// When the connection must next re-check its authentication (Unix ns):
    /// the deadline to authenticate, or the token's expiry.
    pub fn auth_deadline_ns(&self) -> Option<i64> {
        match &self.auth {
            AuthState::Off => None,
            AuthState::Pending { deadline_ns } => Some(*deadline_ns),
            AuthState::Granted(g) => Some(g.expires_at_ns()),
        }
    }

    /// Called at [`Session::auth_deadline_ns`]: the close to send, if the
    /// deadline passed without (new) authentication.
    pub fn auth_expired(&mut self, now_ns: i64) -> Option<CloseRequest> {
        let deadline = self.auth_deadline_ns()?;
        if now_ns < deadline {
            return None;
        }
        let message = match self.auth {
            AuthState::Pending { .. } => "no token was shown in time",
            _ => "token has expired",
        };
        self.unauthorized(0, message.into());
        self.take_close()
    }
}
