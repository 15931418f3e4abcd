//! The ingest lease: at most one ingest publishes at a time.
//!
//! The lease is one key in a JetStream KV bucket whose entries expire after
//! [`LEASE_TTL`]. An ingest takes it with an atomic create (a second create
//! fails while the key exists) and renews it with a compare-and-set on its
//! revision every third of the TTL. A standby keeps trying to create it;
//! when the active ingest dies (even `kill -9`), its entry expires and the
//! standby's create succeeds. An active ingest that cannot renew in time
//! stops (it must not publish beside its successor).
//!
//! The bucket's stream is created here (`KV_tw_lease`) because the
//! client's own bucket creation cannot read nats-server 2.9's answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::kv::{CreateErrorKind, Store, UpdateErrorKind};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{ClusterError, ClusterStats};

/// The KV bucket holding the lease.
pub const LEASE_BUCKET: &str = "tw_lease";
/// The key of the ingest lease.
const LEASE_KEY: &str = "ingest";
/// How long a lease outlives its last renewal (the failover time).
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often a standby tries to take the lease.
const TRY_EVERY: Duration = Duration::from_millis(250);

/// A held lease.
#[derive(Debug)]
pub struct Lease {
    kv: Store,
    id: String,
    revision: u64,
}

fn err(reason: impl ToString) -> ClusterError {
    ClusterError::Stream {
        stream: "KV_tw_lease",
        reason: reason.to_string(),
    }
}

/// Waits until this node holds the lease (at once when nobody does);
/// `None` if `shutdown` comes first.
pub async fn acquire(
    js: &jetstream::Context,
    replicas: usize,
    shutdown: &CancellationToken,
) -> Result<Option<Lease>, ClusterError> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{LEASE_BUCKET}"),
        subjects: vec![format!("$KV.{LEASE_BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: LEASE_TTL,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    })
    .await
    .map_err(err)?;
    let kv = js.get_key_value(LEASE_BUCKET).await.map_err(err)?;
    let id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let mut told = false;
    loop {
        match kv.create(LEASE_KEY, Bytes::from(id.clone())).await {
            Ok(revision) => {
                tracing::info!(id = %id, "holding the ingest lease: this ingest is active");
                return Ok(Some(Lease { kv, id, revision }));
            }
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                if !told {
                    tracing::info!(
                        "standby: another ingest holds the lease; taking over when it lapses"
                    );
                    told = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot take the ingest lease; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(TRY_EVERY) => {}
        }
    }
}

impl Lease {
    /// Renews the lease until `release` (cancelled once the outbox reached
    /// JetStream at shutdown), then releases it so that a standby takes
    /// over at once. If it cannot be renewed before it lapses (or another
    /// ingest holds it), sets `stats.fenced` (nothing more is published) and
    /// cancels `stop` (the node shuts down).
    pub async fn keep(
        mut self,
        release: CancellationToken,
        stats: Arc<ClusterStats>,
        stop: CancellationToken,
    ) {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = release.cancelled() => break,
                _ = tokio::time::sleep(LEASE_TTL / 3) => {}
            }
            let update = self
                .kv
                .update(LEASE_KEY, Bytes::from(self.id.clone()), self.revision);
            let taken = match tokio::time::timeout(LEASE_TTL / 3, update).await {
                Ok(Ok(revision)) => {
                    self.revision = revision;
                    renewed = tokio::time::Instant::now();
                    false
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot renew the ingest lease");
                    e.kind() == UpdateErrorKind::WrongLastRevision
                }
                Err(_) => {
                    tracing::warn!("renewing the ingest lease timed out");
                    false
                }
            };
            if taken || renewed.elapsed() >= LEASE_TTL * 2 / 3 {
                stats.fenced.store(true, Ordering::Release);
                tracing::error!("lost the ingest lease: stopping so that one ingest publishes");
                stop.cancel();
                return;
            }
        }
        let _ = self.kv.delete(LEASE_KEY).await;
    }
}
