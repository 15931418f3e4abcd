//! Outbound connections for the exchange sources: WebSocket streams, and
//! the TCP/TLS connections REST uses (see `rest.rs`), over plain TCP or TLS
//! (rustls with the webpki root store).
//!
//! `ws://` and `http://` are what the tests' mock exchanges speak on
//! loopback; the public endpoints are `wss://` and `https://`.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper::Uri;
use rustls_pki_types::ServerName;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

/// Why a connection or request failed.
#[derive(Debug, Error)]
pub enum NetError {
    #[error("bad URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("TLS with {host}: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("HTTP status {status} from {url}")]
    Status { status: u16, url: String },
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An established WebSocket to an exchange.
pub type Ws = WebSocketStream<Pin<Box<dyn Io>>>;

fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("invariant: ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// Opens a TCP (and, for `wss`/`https`, TLS) connection to `url`'s host.
pub(crate) async fn open(url: &Uri, timeout: Duration) -> Result<Pin<Box<dyn Io>>, NetError> {
    let bad = |reason: &str| NetError::Url {
        url: url.to_string(),
        reason: reason.into(),
    };
    let secure = match url.scheme_str() {
        Some("ws" | "http") => false,
        Some("wss" | "https") => true,
        _ => return Err(bad("scheme must be ws, wss, http or https")),
    };
    let host = url.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let addr = format!("{host}:{port}");
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| NetError::Timeout("connect"))?
        .map_err(|source| NetError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    if !secure {
        return Ok(Box::pin(tcp));
    }
    let name = ServerName::try_from(host.to_string()).map_err(|_| bad("host is not a DNS name"))?;
    let tls = tokio::time::timeout(timeout, tls_connector().connect(name, tcp))
        .await
        .map_err(|_| NetError::Timeout("TLS handshake"))?
        .map_err(|source| NetError::Tls {
            host: host.to_string(),
            source,
        })?;
    Ok(Box::pin(tls))
}

/// Parses `url`, naming it in the error.
pub fn parse_url(url: &str) -> Result<Uri, NetError> {
    url.parse::<Uri>().map_err(|e| NetError::Url {
        url: url.into(),
        reason: e.to_string(),
    })
}

/// Connects a WebSocket client to `url` (`ws://` or `wss://`).
pub async fn ws_connect(url: &str, timeout: Duration) -> Result<Ws, NetError> {
    let uri = parse_url(url)?;
    let io = open(&uri, timeout).await?;
    let (ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::client_async(url, io))
        .await
        .map_err(|_| NetError::Timeout("WebSocket handshake"))??;
    Ok(ws)
}
