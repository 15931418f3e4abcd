//! The server's own settings, built by the composition root (`app`) from
//! the configuration: listener, limits, slow-consumer bounds, auth and TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What happens to a client that falls too far behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlowConsumerPolicy {
    /// Send `lagged` naming the skipped range, then a fresh snapshot.
    Lagged,
    /// Close the connection with 4008.
    Close,
}

/// Everything the server reads of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (HTTP and WebSocket).
    pub listen: SocketAddr,
    /// How long a client may take to send its request head (and to authenticate).
    pub handshake_timeout: Duration,
    /// Interval of server pings; silent clients are closed after two.
    pub heartbeat_interval: Duration,
    /// How long to wait for clients to take their close 1001 on shutdown.
    pub shutdown_timeout: Duration,
    /// Messages over this many bytes are sent gzipped (0 = never); shown in `welcome`.
    pub gzip_threshold: usize,
    /// Most subscriptions per connection.
    pub max_subscriptions: u32,
    /// Most names or patterns per subscribe or unsubscribe.
    pub max_names_per_request: u32,
    /// Client requests per second per connection (0 = none).
    pub max_requests_per_second: u32,
    /// Most WebSocket connections at once (0 = none).
    pub max_connections: u64,
    /// Most WebSocket connections from one address (0 = none).
    pub max_connections_per_ip: u32,
    /// Origins allowed to open WebSockets (empty = any).
    pub allowed_origins: Vec<String>,
    /// Scans running at once, server-wide (shown in `/stats`).
    pub max_concurrent_scans: usize,
    /// Events pending for one connection beyond which it is a slow consumer.
    pub max_lag_messages: u64,
    /// Bytes pending for one connection beyond which it is a slow consumer (0 = none).
    pub max_lag_bytes: u64,
    /// Age of the oldest event being written beyond which a connection is a
    /// slow consumer (0 = none).
    pub max_lag_age: Duration,
    /// What a slow consumer gets.
    pub slow_consumer: SlowConsumerPolicy,
    /// How long a write may stall before the client is closed (4008).
    pub write_timeout: Duration,
    /// SO_SNDBUF of client sockets (0 = kernel autotuning).
    pub socket_send_buffer: usize,
    /// TCP_NOTSENT_LOWAT of client sockets (0 = none).
    pub socket_unsent_limit: u32,
    /// Key of `POST /publish` (`None`: the endpoint answers 404).
    pub publish_key: Option<String>,
    /// HS256 secret of JWT auth.
    pub jwt_secret: Option<String>,
    /// RS256/ES256 public key (PEM file) of JWT auth.
    pub jwt_public_key: Option<PathBuf>,
    /// Certificate chain (PEM) for TLS.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The defaults of the `serve` flags, for unit tests of the server
    /// (tests/config_cli.rs checks the flags themselves).
    pub(crate) fn defaults() -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(5),
            gzip_threshold: 1024,
            max_subscriptions: 1000,
            max_names_per_request: 256,
            max_requests_per_second: 50,
            max_connections: 100_000,
            max_connections_per_ip: 0,
            allowed_origins: Vec::new(),
            max_concurrent_scans: 2,
            max_lag_messages: 8192,
            max_lag_bytes: 8 << 20,
            max_lag_age: Duration::from_secs(2),
            slow_consumer: SlowConsumerPolicy::Lagged,
            write_timeout: Duration::from_secs(10),
            socket_send_buffer: 256 << 10,
            socket_unsent_limit: 16 << 10,
            publish_key: None,
            jwt_secret: None,
            jwt_public_key: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}
