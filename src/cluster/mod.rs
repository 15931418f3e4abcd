//! Cluster mode over NATS JetStream (`--nats-url`): one ingest assigns
//! seqs, JetStream keeps the history, edges serve clients. See the README's
//! "Running several nodes" for the design and what each failure does.
//!
//! Nothing here runs without `--nats-url`: the single-node hot path only
//! checks that the hub has no [`crate::feed::EventSink`].

pub mod edge;
pub mod ingest;
pub mod lease;
mod link;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

pub use link::Link;

/// The stream holding every channel's events (`tw.ev.<channel>`) and the
/// books' stored snapshots (`tw.snap.<channel>`).
pub const EVENTS_STREAM: &str = "TW_EVENTS";
/// The stream holding the cluster's epoch.
pub const META_STREAM: &str = "TW_META";
/// Where the epoch is kept (one message).
pub const EPOCH_SUBJECT: &str = "tw.meta.epoch";
const EVENT_PREFIX: &str = "tw.ev.";
const SNAP_PREFIX: &str = "tw.snap.";

/// The subject of a channel's events. Channel names are dot-separated
/// tokens, so a pattern (`trade.*.BTC-USDT`) maps onto the NATS `*`
/// wildcard token for token.
pub fn event_subject(channel: &str) -> String {
    format!("{EVENT_PREFIX}{channel}")
}

/// The subject of a book channel's stored snapshot.
pub fn snap_subject(channel: &str) -> String {
    format!("{SNAP_PREFIX}{channel}")
}

/// The channel of an event subject.
pub fn channel_of(subject: &str) -> Option<&str> {
    subject.strip_prefix(EVENT_PREFIX)
}

/// Why cluster mode could not start or went wrong.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS credentials {path}: {reason}")]
    Creds { path: String, reason: String },
    #[error("JetStream stream {stream}: {reason}")]
    Stream {
        stream: &'static str,
        reason: String,
    },
    #[error("JetStream epoch: {0}")]
    Epoch(String),
    #[error("stopped while standby (another ingest held the lease)")]
    StoppedAsStandby,
    #[error(
        "no ingest has started the cluster yet (no {EVENTS_STREAM} stream or epoch) after {0} s"
    )]
    NoIngest(u64),
    #[error(
        "the cluster's epoch changed from {old} to {new}: JetStream lost the history \
         ({EVENTS_STREAM} was deleted); this edge closed its clients and stopped: start it \
         again to serve the new epoch (its clients then resume from a snapshot)"
    )]
    EpochChanged { old: String, new: String },
}

/// Counters of the cluster link, shown in `/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Events handed to the outbox (ingest).
    pub offered: AtomicU64,
    /// Events JetStream acknowledged (ingest).
    pub published: AtomicU64,
    /// NATS messages sent to `tw.ev.*`, each holding one or more
    /// consecutive events of a channel (ingest).
    pub messages: AtomicU64,
    /// Events dropped: outbox full, or publish failed (ingest).
    pub dropped: AtomicU64,
    /// Publishes or acks that failed (ingest).
    pub publish_errors: AtomicU64,
    /// Book snapshots stored (ingest).
    pub snapshots_stored: AtomicU64,
    /// NATS messages received (edge).
    pub received: AtomicU64,
    /// Gaps found in what JetStream delivered (edge): events missing.
    pub missing: AtomicU64,
    /// Consumer restarts after an error (edge).
    pub consumer_restarts: AtomicU64,
    /// Set when the ingest lost its lease: nothing more is published.
    pub fenced: std::sync::atomic::AtomicBool,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// This node's part in the cluster.
#[derive(Debug, Clone)]
pub enum Node {
    Ingest(Arc<ingest::Ingest>),
    Edge(Arc<edge::Edge>),
}

impl Node {
    /// The link to NATS.
    pub fn link(&self) -> &Link {
        match self {
            Node::Ingest(i) => i.link(),
            Node::Edge(e) => e.link(),
        }
    }

    /// Waits (at most `within`) for the ingest's outbox to reach JetStream.
    pub async fn finish(&self, within: std::time::Duration) {
        if let Node::Ingest(i) = self {
            i.finish(within).await;
        }
    }

    /// Why the node stopped serving by itself, if it did: an edge that
    /// saw the cluster's epoch change.
    pub fn failure(&self) -> Option<ClusterError> {
        let (old, new) = self.edge()?.epoch_changed()?;
        Some(ClusterError::EpochChanged { old, new })
    }

    /// The edge, on an edge node.
    pub fn edge(&self) -> Option<&Arc<edge::Edge>> {
        match self {
            Node::Edge(e) => Some(e),
            Node::Ingest(_) => None,
        }
    }

    /// `ok`, or what is wrong with the link (for `/health`).
    pub fn health(&self) -> &'static str {
        if !self.link().connected() {
            return "disconnected";
        }
        match self {
            Node::Ingest(i) if i.degraded() => "degraded",
            _ => "ok",
        }
    }

    /// The `cluster` object of `/stats`.
    pub fn stats_json(&self) -> serde_json::Value {
        let link = self.link();
        let s = link.stats();
        let mut v = serde_json::json!({
            "role": match self { Node::Ingest(_) => "ingest", Node::Edge(_) => "edge" },
            "link": self.health(),
            "connected": link.connected(),
            "epoch": link.epoch().to_string(),
        });
        match self {
            Node::Ingest(i) => {
                v["offered"] = get(&s.offered).into();
                v["published"] = get(&s.published).into();
                v["messages"] = get(&s.messages).into();
                v["dropped"] = get(&s.dropped).into();
                v["publish_errors"] = get(&s.publish_errors).into();
                v["snapshots_stored"] = get(&s.snapshots_stored).into();
                v["outbox_queued"] = i.queued().into();
            }
            Node::Edge(e) => {
                v["received"] = get(&s.received).into();
                v["missing"] = get(&s.missing).into();
                v["consumer_restarts"] = get(&s.consumer_restarts).into();
                v["channels"] = e.channels_json();
            }
        }
        v
    }
}

/// Settings of cluster mode, built by the composition root from the
/// configuration (`--nats-*` and the history bounds).
#[derive(Debug, Clone)]
pub struct Settings {
    /// NATS server (`nats://HOST:PORT`).
    pub nats_url: String,
    /// NATS credentials file.
    pub nats_creds: Option<std::path::PathBuf>,
    /// PEM file of the CA of the NATS server's certificate (TLS on).
    pub nats_tls_ca: Option<std::path::PathBuf>,
    /// Copies JetStream keeps of the event history.
    pub nats_replicas: usize,
    /// This node is an edge (`--source none`): it serves what the ingest publishes.
    pub edge: bool,
    /// Events of history kept per channel (JetStream keeps this many
    /// messages per channel, each holding one or more events).
    pub history_messages: usize,
    /// Seconds of history kept per channel.
    pub history_seconds: u64,
}

/// Starts cluster mode for `hub` as `config` says: an edge when the only
/// source is `none`, else an ingest (whose seqs continue from JetStream).
/// Call before the sources start.
pub async fn start(
    config: &Settings,
    link: Link,
    hub: &Arc<crate::feed::Hub>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Node, ClusterError> {
    if config.edge {
        Ok(Node::Edge(edge::Edge::start(link, hub.clone(), shutdown)))
    } else {
        Ok(Node::Ingest(
            ingest::Ingest::start(link, hub.clone(), shutdown).await?,
        ))
    }
}
