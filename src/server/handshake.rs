//! The WebSocket opening handshake's checks (RFC 6455 section 4.2.1), made
//! before anything is allocated for the connection: a request that is not a
//! well-formed version-13 upgrade gets a plain HTTP error saying what is
//! wrong.

use base64::Engine as _;
use hyper::header::{HOST, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode, Version};

/// Why an upgrade request is refused, with the HTTP status it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("WebSocket needs HTTP/1.1 or later")]
    HttpVersion,
    #[error("missing Host header")]
    NoHost,
    #[error("this endpoint speaks WebSocket only (Upgrade: websocket, Connection: Upgrade)")]
    NotUpgrade,
    #[error("exactly one Sec-WebSocket-Key header is required")]
    KeyCount,
    #[error("Sec-WebSocket-Key must be the base64 of 16 bytes")]
    BadKey,
    #[error("unsupported Sec-WebSocket-Version: this server speaks 13")]
    BadVersion,
}

impl HandshakeError {
    /// The HTTP status of the refusal: 426 (with `Sec-WebSocket-Version:
    /// 13`, see [`SUPPORTED_VERSION`]) for a version mismatch or a request
    /// that is not an upgrade, 505 for HTTP/1.0, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::HttpVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            Self::NotUpgrade | Self::BadVersion => StatusCode::UPGRADE_REQUIRED,
            Self::NoHost | Self::KeyCount | Self::BadKey => StatusCode::BAD_REQUEST,
        }
    }
}

/// What a 426 answer carries in `Sec-WebSocket-Version`.
pub const SUPPORTED_VERSION: HeaderValue = HeaderValue::from_static("13");

/// Checks everything RFC 6455 asks of a client's opening handshake that the
/// server can check: HTTP/1.1+, a Host, `Upgrade: websocket` with
/// `Connection: Upgrade`, exactly one `Sec-WebSocket-Key` that is the base64
/// of 16 bytes, and exactly one `Sec-WebSocket-Version` of 13. (The method is
/// GET by routing.)
pub fn check<B>(req: &Request<B>) -> Result<(), HandshakeError> {
    if req.version() < Version::HTTP_11 {
        return Err(HandshakeError::HttpVersion);
    }
    let headers = req.headers();
    if !headers.contains_key(HOST) {
        return Err(HandshakeError::NoHost);
    }
    if !fastwebsockets::upgrade::is_upgrade_request(req) {
        return Err(HandshakeError::NotUpgrade);
    }
    let key = single(headers, "sec-websocket-key").ok_or(HandshakeError::KeyCount)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .map_err(|_| HandshakeError::BadKey)?;
    if decoded.len() != 16 {
        return Err(HandshakeError::BadKey);
    }
    match single(headers, "sec-websocket-version") {
        Some(v) if v.as_bytes() == b"13" => Ok(()),
        _ => Err(HandshakeError::BadVersion),
    }
}

/// The header's value when it occurs exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/ws").version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request builds")
    }

    const GOOD: &[(&str, &str)] = &[
        ("host", "x"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    fn with(change: &[(&str, Option<&str>)]) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> =
            GOOD.iter().map(|(k, v)| (*k, v.to_string())).collect();
        for (k, v) in change {
            out.retain(|(name, _)| name != k);
            if let Some(v) = v {
                let name = GOOD.iter().find(|(n, _)| n == k).expect("known header").0;
                out.push((name, v.to_string()));
            }
        }
        out
    }

    fn check_with(change: &[(&str, Option<&str>)]) -> Result<(), HandshakeError> {
        let headers = with(change);
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check(&req(Version::HTTP_11, &refs))
    }

    #[test]
    fn a_well_formed_upgrade_passes() {
        assert_eq!(check_with(&[]), Ok(()));
    }

    #[test]
    fn each_defect_is_named() {
        use HandshakeError::*;
        assert_eq!(check(&req(Version::HTTP_10, GOOD)), Err(HttpVersion));
        assert_eq!(check_with(&[("host", None)]), Err(NoHost));
        assert_eq!(check_with(&[("upgrade", None)]), Err(NotUpgrade));
        assert_eq!(check_with(&[("sec-websocket-key", None)]), Err(KeyCount));
        assert_eq!(
            check_with(&[("sec-websocket-key", Some("abc"))]),
            Err(BadKey)
        );
        // base64 of 15 and 17 bytes, and not base64 at all
        for key in [
            "AAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAA=",
            "!!!!!!!!!!!!!!!!!!!!!!==",
        ] {
            assert_eq!(
                check_with(&[("sec-websocket-key", Some(key))]),
                Err(BadKey),
                "{key}"
            );
        }
        assert_eq!(
            check_with(&[("sec-websocket-version", Some("8"))]),
            Err(BadVersion)
        );
        assert_eq!(
            check_with(&[("sec-websocket-version", None)]),
            Err(BadVersion)
        );
        let mut two_keys = GOOD.to_vec();
        two_keys.push(("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="));
        assert_eq!(check(&req(Version::HTTP_11, &two_keys)), Err(KeyCount));
        let mut two_versions = GOOD.to_vec();
        two_versions.push(("sec-websocket-version", "13"));
        assert_eq!(
            check(&req(Version::HTTP_11, &two_versions)),
            Err(BadVersion)
        );
    }
}
