//! The network face of tickwire: one listener for HTTP and WebSocket, the
//! per-connection sessions, and graceful shutdown.

mod assets;
pub mod auth;
mod connection;
mod handshake;
mod http;
mod inbound;
pub mod limits;
mod probe;
mod publish;
pub(crate) use publish::parse as parse_publish_body;
pub mod session;
mod settings;
mod socket;
mod tls;
mod wake;
pub mod writer;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::feed::Hub;
use crate::metrics::Metrics;
use crate::sources::SourceStatus;
pub use settings::{Settings, SlowConsumerPolicy};

/// Why the server could not run.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("JWT public key: {0}")]
    JwtKey(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// What every connection and route shares.
#[derive(Debug)]
pub struct ServerContext {
    /// The server's settings (named `config` where the sessions read them).
    pub config: Settings,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins shutting down.
    pub shutdown: CancellationToken,
    /// True from the start of shutdown: `/health` answers 503.
    pub draining: AtomicBool,
    /// Connection tasks, awaited on shutdown.
    pub tracker: TaskTracker,
    pub next_conn_id: AtomicU64,
    /// Connection limits (server-wide and per address).
    pub admission: Arc<limits::Admission>,
    /// JWT verifier; `None` when auth is off.
    pub auth: Option<auth::Authenticator>,
    /// The running sources' states, for `/health` and `/stats`.
    pub sources: Vec<Arc<SourceStatus>>,
    /// The analytics engine (scanner state), when analytics is on.
    pub analytics: Option<crate::analytics::Handle>,
    /// Scans waiting for a slot (bounded, see `session::scan`).
    pub scans_waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// Idle channels retired so far (see [`RETIRE_IDLE_EVERY`]).
    pub channels_retired: AtomicU64,
    /// This node's part in a cluster (`--nats-url`); unset on a single node.
    pub cluster: std::sync::OnceLock<crate::cluster::Node>,
}

/// How often channels that never carried an event and that nobody holds
/// are retired (`Registry::retire_idle`).
pub const RETIRE_IDLE_EVERY: Duration = Duration::from_secs(60);

impl ServerContext {
    /// A context for a server that has not accepted anything yet.
    pub fn new(
        config: Settings,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        auth: Option<auth::Authenticator>,
        sources: Vec<Arc<SourceStatus>>,
        analytics: Option<crate::analytics::Handle>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            hub,
            metrics,
            shutdown,
            draining: AtomicBool::new(false),
            tracker: TaskTracker::new(),
            next_conn_id: AtomicU64::new(1),
            admission: Arc::default(),
            auth,
            sources,
            analytics,
            scans_waiting: Arc::default(),
            channels_retired: AtomicU64::new(0),
            cluster: std::sync::OnceLock::new(),
        })
    }
}

/// What the composition root built for the server to serve: the hub with
/// its sources running, and the optional analytics and cluster parts.
pub struct Parts {
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// The running sources' states, for `/health` and `/stats`.
    pub sources: Vec<Arc<SourceStatus>>,
    /// The sources' own thread, joined on shutdown.
    pub sources_handle: crate::sources::SourcesHandle,
    pub analytics: Option<crate::analytics::Handle>,
    pub cluster: Option<crate::cluster::Node>,
}

/// A bound server with its sources running, ready to serve.
pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Arc<ServerContext>,
    /// The running sources (see [`crate::sources::start`]).
    sources: crate::sources::SourcesHandle,
}

/// The `host:port` to show in a URL for a listening address: a wildcard
/// address is shown as loopback, with a note that every interface listens.
fn url_host(local: SocketAddr) -> (String, &'static str) {
    let port = local.port();
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (
            format!("127.0.0.1:{port}"),
            " (listening on every interface)",
        ),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            (format!("[::1]:{port}"), " (listening on every interface)")
        }
        _ => (local.to_string(), ""),
    }
}

/// A listener with the server's auth and TLS ready, waiting for the hub
/// and the sources (see [`Server::bind`]).
pub struct Bound {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Option<auth::Authenticator>,
    config: Settings,
}

impl Bound {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The server serving what `parts` holds, ready to [`Server::serve`].
    pub fn with(self, parts: Parts, shutdown: CancellationToken) -> Server {
        let Self {
            listener,
            tls,
            auth,
            config,
        } = self;
        let ctx = ServerContext::new(
            config,
            parts.hub,
            parts.metrics,
            shutdown,
            auth,
            parts.sources,
            parts.analytics,
        );
        if let Some(node) = parts.cluster {
            if let crate::cluster::Node::Ingest(_) = &node {
                tokio::spawn(publish::serve_forwarded(ctx.clone(), node.link().clone()));
            }
            let _ = ctx.cluster.set(node);
        }
        Server {
            listener,
            tls,
            ctx,
            sources: parts.sources_handle,
        }
    }
}

impl Server {
    /// Binds the listener on `config.listen` and reads the auth key and
    /// the TLS files: everything that can fail, before the sources start.
    pub async fn bind(config: Settings) -> Result<Bound, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let auth = match (&config.jwt_secret, &config.jwt_public_key) {
            (Some(secret), _) => Some(auth::Authenticator::with_secret(secret.as_bytes())),
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|e| ServerError::JwtKey(format!("{}: {e}", path.display())))?;
                Some(
                    auth::Authenticator::with_public_key_pem(&pem)
                        .map_err(|e| ServerError::JwtKey(format!("{}: {e}", path.display())))?,
                )
            }
            (None, None) => None,
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(ServerError::Tls)?),
            _ => None,
        };
        Ok(Bound {
            listener,
            tls,
            auth,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
    /// The hub, for publishing from the embedding program.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.ctx.hub
    }

    /// Serves until the shutdown token is cancelled; then sends every client
    /// close 1001 and returns once they are gone (or the shutdown timeout
    /// passed). An error when the cluster node stopped the server itself
    /// (an edge that saw the cluster's epoch change): the process must
    /// exit non-zero so that its supervisor starts it again.
    pub async fn serve(self) -> Result<(), ServerError> {
        let Self {
            listener,
            tls,
            ctx,
            sources,
        } = self;
        let shutdown = ctx.shutdown.clone();
        if let Ok(local) = listener.local_addr() {
            info!(addr = %local, epoch = %ctx.hub.epoch(), "tickwire listening on {local}");
            let (http, ws) = if tls.is_some() {
                ("https", "wss")
            } else {
                ("http", "ws")
            };
            let (host, note) = url_host(local);
            info!("dashboard: {http}://{host}/  WebSocket: {ws}://{host}/ws{note}");
        }
        tokio::spawn(retire_idle_channels(ctx.clone()));
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(v) => v,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            socket::tune(&stream, &ctx.config);
            let ctx = ctx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_http(stream, ctx, peer).await,
                    Some(acceptor) => {
                        let handshake = acceptor.accept(stream);
                        match tokio::time::timeout(ctx.config.handshake_timeout, handshake).await {
                            Ok(Ok(stream)) => serve_http(stream, ctx, peer).await,
                            Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }

        ctx.draining.store(true, Ordering::Release);
        drop(listener);
        info!(
            connections = ctx.metrics.connections.load(Ordering::Relaxed),
            "shutting down: closing clients with 1001"
        );
        ctx.tracker.close();
        if tokio::time::timeout(ctx.config.shutdown_timeout, ctx.tracker.wait())
            .await
            .is_err()
        {
            warn!("shutdown timeout: some connections did not close in time");
        }
        // The sources saw the same token; they end within a step.
        sources.join().await;
        // cluster ingest: what the sources published goes to JetStream
        if let Some(node) = ctx.cluster.get() {
            node.finish(ctx.config.shutdown_timeout).await;
            if let Some(failure) = node.failure() {
                return Err(failure.into());
            }
        }
        info!("stopped");
        Ok(())
    }
}

/// Retires idle channels every [`RETIRE_IDLE_EVERY`] until shutdown.
async fn retire_idle_channels(ctx: Arc<ServerContext>) {
    let mut tick = tokio::time::interval(RETIRE_IDLE_EVERY);
    tick.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let n = ctx.hub.registry().retire_idle();
        if n > 0 {
            ctx.channels_retired.fetch_add(n as u64, Ordering::Relaxed);
            debug!(retired = n, "idle channels retired");
        }
    }
}

/// Serves HTTP/1.1 (with WebSocket upgrades) on one accepted connection,
/// plain or TLS.
async fn serve_http<I>(io: I, ctx: Arc<ServerContext>, peer: SocketAddr)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = ctx.shutdown.clone();
    let service = service_fn(|req| http::route(req, ctx.clone(), peer));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.config.handshake_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::select! {
        r = conn => if let Err(e) = r { debug!(%peer, error = %e, "http connection ended") },
        _ = shutdown.cancelled() => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::feed::{Registry, RingLimits};

    /// A server context with default settings and no listener, for unit tests.
    pub(crate) async fn context() -> Arc<ServerContext> {
        let config = settings::tests::defaults();
        let metrics = Arc::new(Metrics::default());
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 16,
            max_age_ns: 0,
        }));
        let hub = Arc::new(Hub::new(registry, "test".into(), 1024, metrics.clone()));
        ServerContext::new(
            config,
            hub,
            metrics,
            CancellationToken::new(),
            None,
            Vec::new(),
            None,
        )
    }
}
