//! JWT authentication (docs/protocol.md section 7): off unless a secret (HS256)
//! or a public key (RS256 / ES256, PEM) is configured. A token arrives in
//! `Authorization: Bearer`, `?token=`, or an `auth` message; its `exp` is
//! enforced while connected and its optional `channels` claim (patterns)
//! limits what the holder may subscribe to and list. `nbf` is checked when
//! present; an `exp` beyond what a clock can hold means "far future".

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use thiserror::Error;

use crate::protocol::Pattern;

/// Why a token was refused (all answered with UNAUTHORIZED / close 4001).
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("no token: send Authorization: Bearer, ?token= or an auth message first")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    #[error("token's channels claim holds a bad pattern: {0}")]
    BadClaim(String),
    #[error("cannot read the JWT key {path}: {reason}")]
    Key { path: String, reason: String },
}

/// Shortest `--jwt-secret` accepted: RFC 7518 section 3.2 asks HS256 keys
/// of at least the hash's 256 bits.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// Shortest `--publish-key` accepted.
pub const MIN_PUBLISH_KEY_BYTES: usize = 16;

fn check_secret(what: &str, flag: &str, s: &str, min: usize) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(format!(
            "{what} is empty: an empty key would let anyone in; give at least {min} bytes, \
             or leave {flag} unset"
        ));
    }
    if s.len() < min {
        return Err(format!(
            "{what} is {} bytes; at least {min} are needed (e.g. `openssl rand -hex 32`)",
            s.len()
        ));
    }
    Ok(s.to_string())
}

/// clap value parser of `--jwt-secret` / `TICKWIRE_JWT_SECRET`: refuses an
/// empty or short secret at start (anyone could forge tokens with it).
pub fn parse_jwt_secret(s: &str) -> Result<String, String> {
    check_secret("the JWT secret", "--jwt-secret", s, MIN_JWT_SECRET_BYTES)
}

/// clap value parser of `--publish-key` / `TICKWIRE_PUBLISH_KEY`.
pub fn parse_publish_key(s: &str) -> Result<String, String> {
    check_secret("the publish key", "--publish-key", s, MIN_PUBLISH_KEY_BYTES)
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

/// What a verified token grants.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token's subject.
    pub subject: String,
    /// Expiry, Unix seconds (at most `i64::MAX / 1e9`, so it converts to
    /// nanoseconds without wrapping).
    pub expires_at: u64,
    /// Patterns the holder may subscribe within; `None` = every channel.
    pub channels: Option<Vec<Pattern>>,
}

impl Grant {
    /// Whether `wanted` (a channel or a pattern) lies within the grant.
    pub fn allows(&self, wanted: &Pattern) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|granted| granted.iter().any(|g| g.covers(wanted)))
    }

    /// Whether the concrete channel `name` lies within the grant.
    pub fn allows_channel(&self, name: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|granted| granted.iter().any(|g| g.matches(name)))
    }

    /// The expiry in Unix nanoseconds.
    pub fn expires_at_ns(&self) -> i64 {
        i64::try_from(self.expires_at)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000)
    }
}

/// Largest `exp` kept as is: later ones mean "never within this run".
const MAX_EXP_SECS: u64 = (i64::MAX / 1_000_000_000) as u64;

/// Verifies tokens with the configured key.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An HS256 verifier.
    pub fn with_secret(secret: &[u8]) -> Self {
        Self::with_key(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// An RS256 or ES256 verifier from a PEM public key (the algorithm
    /// follows the key type).
    pub fn with_public_key_pem(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self::with_key(key, Algorithm::RS256));
        }
        DecodingKey::from_ec_pem(pem)
            .map(|key| Self::with_key(key, Algorithm::ES256))
            .map_err(|e| format!("neither an RSA nor an EC public key in PEM: {e}"))
    }

    fn with_key(key: DecodingKey, alg: Algorithm) -> Self {
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    /// Checks signature, algorithm and expiry; parses the channels claim.
    pub fn verify(&self, token: &str) -> Result<Grant, AuthError> {
        let data =
            decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let channels = data
            .claims
            .channels
            .map(|list| {
                list.iter()
                    .map(|p| {
                        Pattern::parse(p).map_err(|e| AuthError::BadClaim(format!("{p}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Grant {
            subject: data.claims.sub,
            expires_at: data.claims.exp.min(MAX_EXP_SECS),
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(secret: &[u8], exp: u64, channels: Option<Vec<&str>>) -> String {
        let mut claims = serde_json::json!({"sub": "alice", "exp": exp});
        if let Some(c) = channels {
            claims["channels"] = c.into();
        }
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn valid_expired_forged_and_malformed_tokens() {
        let auth = Authenticator::with_secret(b"s3cret");
        let grant = auth.verify(&token(b"s3cret", now() + 60, None)).unwrap();
        assert_eq!(grant.subject, "alice");
        assert!(grant.allows(&Pattern::parse("trade.sim.BTC-USDT").unwrap()));
        assert!(matches!(
            auth.verify(&token(b"s3cret", now() - 5, None)),
            Err(AuthError::Expired)
        ));
        assert!(matches!(
            auth.verify(&token(b"other", now() + 60, None)),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth.verify("not.a.jwt"),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(auth.verify(""), Err(AuthError::Invalid(_))));
        assert!(matches!(
            auth.verify(&token(b"s3cret", now() + 60, Some(vec!["bad"]))),
            Err(AuthError::BadClaim(_))
        ));
    }

    #[test]
    fn channels_claim_limits_names_and_patterns() {
        let auth = Authenticator::with_secret(b"k");
        let grant = auth
            .verify(&token(
                b"k",
                now() + 60,
                Some(vec!["ticker.*.*", "trade.sim.BTC-USDT"]),
            ))
            .unwrap();
        let allows = |s: &str| grant.allows(&Pattern::parse(s).unwrap());
        assert!(allows("ticker.sim.ETH-USDT"));
        assert!(allows("ticker.*.ETH-USDT"));
        assert!(allows("ticker.*.*"));
        assert!(allows("trade.sim.BTC-USDT"));
        assert!(!allows("trade.sim.ETH-USDT"));
        assert!(!allows("trade.sim.*"), "a wider pattern than granted");
        assert!(!allows("*.*.*"));
    }

    fn signed(secret: &[u8], claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn nbf_is_checked_and_a_huge_exp_does_not_wrap() {
        let auth = Authenticator::with_secret(b"k");
        let later = signed(
            b"k",
            serde_json::json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300}),
        );
        assert!(matches!(auth.verify(&later), Err(AuthError::NotYetValid)));
        let ok = signed(
            b"k",
            serde_json::json!({"sub": "a", "exp": now() + 600, "nbf": now() - 1}),
        );
        assert!(auth.verify(&ok).is_ok());
        let forever = signed(b"k", serde_json::json!({"sub": "a", "exp": u64::MAX}));
        let grant = auth.verify(&forever).unwrap();
        assert!(grant.expires_at_ns() > 0, "{}", grant.expires_at_ns());
        assert!(grant.expires_at_ns() > (now() as i64 + 100 * 365 * 86400) * 1_000_000_000);
        assert!(grant.allows_channel("x.y.z"));
    }

    #[test]
    fn empty_and_short_secrets_are_refused() {
        assert!(parse_jwt_secret("").unwrap_err().contains("empty"));
        assert!(parse_jwt_secret("   ").unwrap_err().contains("empty"));
        assert!(
            parse_jwt_secret("short")
                .unwrap_err()
                .contains("at least 32")
        );
        assert!(parse_jwt_secret(&"x".repeat(32)).is_ok());
        assert!(parse_publish_key("").unwrap_err().contains("empty"));
        assert!(
            parse_publish_key("0123456789")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(parse_publish_key("0123456789abcdef").is_ok());
    }
}
