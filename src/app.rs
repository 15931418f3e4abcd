//! The composition root: builds the parts of a run from the configuration
//! and wires them together. Every layer takes its own typed settings
//! ([`settings`] derives them from the [`Config`]); only this module knows
//! how the hub, the sources, analytics, the cluster and the server fit.
//!
//! `serve`: metrics, registry and hub (with the cluster's epoch in cluster
//! mode), the cluster node, analytics (its trade tap given to the hub, its
//! engine run beside the sources), the sources on their own thread, then the
//! server. `record --source`: the same hub and sources with the recorder as
//! the hub's event sink, no server.

pub mod settings;

use std::sync::Arc;

use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::cli::RecordArgs;
use crate::config::Config;
use crate::feed::{Hub, Registry, RingLimits};
use crate::metrics::Metrics;
use crate::recording::{RecorderError, Summary};
use crate::server::{Parts, Server, ServerError};
use crate::sources::{Running, StartError, Task};

/// Why a run could not start.
#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("sources: {0}")]
    Sources(#[from] StartError),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    #[error("in-process sources: {0}")]
    Config(#[from] crate::config::ConfigError),
}

/// A random epoch: 16 hex digits, different on every start.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The hub of a run with its history bounds.
fn hub(config: &Config, epoch: Arc<str>) -> Arc<Hub> {
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(Registry::new(RingLimits {
        max_messages: config.history_messages,
        max_age_ns: (config.history_seconds as i64).saturating_mul(1_000_000_000),
    }));
    Arc::new(Hub::new(registry, epoch, config.gzip_threshold, metrics))
}

/// Starts analytics (when on) and the sources over `hub`.
fn start_sources(
    hub: &Arc<Hub>,
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<(Running, Option<crate::analytics::Handle>), StartError> {
    let mut beside: Vec<Task> = Vec::new();
    let analytics = config.analytics_on().then(|| {
        let (engine, handle) = crate::analytics::start(hub, settings::analytics(config));
        beside.push(Box::pin(engine.run(shutdown.clone())));
        handle
    });
    let running = crate::sources::start(hub, &settings::sources(config), beside, shutdown)?;
    Ok((running, analytics))
}

/// Binds the listener and starts everything behind it; the server is ready
/// to [`Server::serve`].
pub async fn bind(config: Config, shutdown: CancellationToken) -> Result<Server, AppError> {
    let bound = Server::bind(settings::server(&config)).await?;
    // cluster mode: the epoch is the cluster's, kept in JetStream
    let cluster = settings::cluster(&config);
    let link = match &cluster {
        Some(c) => Some(crate::cluster::Link::connect(c, &shutdown).await?),
        None => None,
    };
    let epoch = link
        .as_ref()
        .map_or_else(|| new_epoch().into(), |l| l.epoch().clone());
    let hub = hub(&config, epoch);
    let node = match (cluster, link) {
        (Some(c), Some(link)) => Some(crate::cluster::start(&c, link, &hub, &shutdown).await?),
        _ => None,
    };
    let (running, analytics) = start_sources(&hub, &config, &shutdown)?;
    let parts = Parts {
        metrics: hub.metrics().clone(),
        hub,
        sources: running.statuses,
        sources_handle: running.handle,
        analytics,
        cluster: node,
    };
    Ok(bound.with(parts, shutdown))
}

/// `tickwire serve`: binds and serves until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), AppError> {
    Ok(bind(config, shutdown).await?.serve().await?)
}

/// `tickwire record`: from a running server (`--connect`), or from sources
/// run here (`--source`) whose hub the recorder reads directly.
pub async fn record(args: &RecordArgs, shutdown: CancellationToken) -> Result<Summary, AppError> {
    let settings = args.settings();
    if args.sources.is_empty() {
        return Ok(crate::recording::remote::record(&settings, &args.connect, shutdown).await?);
    }
    let config = settings::record_config(args)?;
    let hub = hub(&config, new_epoch().into());
    let recorder = crate::recording::local::Recorder::attach(&hub, &settings)?;
    // the sources stop with the recording, whatever ended it
    let sources_stop = shutdown.child_token();
    let (running, _analytics) = start_sources(&hub, &config, &sources_stop)?;
    let names: Vec<String> = config.sources.iter().map(|s| s.to_string()).collect();
    let origin = format!("in-process: {}", names.join(","));
    let summary = recorder.record(&settings, &origin, shutdown).await;
    sources_stop.cancel();
    running.handle.join().await;
    Ok(summary?)
}
