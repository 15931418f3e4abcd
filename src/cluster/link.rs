//! The connection to NATS, the two JetStream streams and the epoch.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use super::Settings;
use super::{
    ClusterError, ClusterStats, EPOCH_SUBJECT, EVENT_PREFIX, EVENTS_STREAM, META_STREAM,
    SNAP_PREFIX,
};

/// How long an edge waits at startup for an ingest to create the streams.
const WAIT_FOR_INGEST: Duration = Duration::from_secs(30);

/// A connected client, the streams, and the cluster's epoch.
#[derive(Debug, Clone)]
pub struct Link {
    client: async_nats::Client,
    js: jetstream::Context,
    events: stream::Stream,
    /// The stream holding the epoch, read again by an edge to notice a
    /// new one (the history was lost).
    meta: stream::Stream,
    epoch: Arc<str>,
    stats: Arc<ClusterStats>,
    /// The ingest lease, until the ingest starts keeping it.
    lease: Arc<std::sync::Mutex<Option<super::lease::Lease>>>,
}

fn stream_err(stream: &'static str) -> impl Fn(String) -> ClusterError {
    move |reason| ClusterError::Stream { stream, reason }
}

/// A random epoch: 16 hex digits.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Link {
    /// Connects as `config` says (`--nats-url`, `--nats-creds`,
    /// `--nats-tls-ca`). An ingest creates the streams if missing and reads
    /// or makes the epoch; an edge waits for them.
    /// An ingest first waits for the ingest lease (a standby waits here
    /// until the active ingest is gone, or `shutdown`).
    pub async fn connect(
        config: &Settings,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Self, ClusterError> {
        let url = config.nats_url.clone();
        let mut opts = async_nats::ConnectOptions::new()
            .name("tickwire")
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &config.nats_creds {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| ClusterError::Creds {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
        }
        if let Some(ca) = &config.nats_tls_ca {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = opts
            .connect(url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let mut lease = None;
        let (events, meta, epoch) = if config.edge {
            wait_for_ingest(&js).await?
        } else {
            lease = super::lease::acquire(&js, config.nats_replicas, shutdown).await?;
            if lease.is_none() {
                return Err(ClusterError::StoppedAsStandby);
            }
            create_streams(&js, config).await?
        };
        Ok(Self {
            client,
            js,
            events,
            meta,
            epoch: epoch.into(),
            stats: Arc::default(),
            lease: Arc::new(std::sync::Mutex::new(lease)),
        })
    }

    /// The cluster's epoch (the same on every node).
    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// The epoch stored in JetStream now (`None`: none is stored). It
    /// differs from [`Link::epoch`] only once an ingest made a new one
    /// because the history was lost; an error says nothing about that
    /// (NATS may just be away).
    pub async fn stored_epoch(&self) -> Result<Option<String>, ClusterError> {
        read_epoch(&self.meta).await
    }

    /// The ingest lease (once: the ingest keeps it).
    pub fn take_lease(&self) -> Option<super::lease::Lease> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The NATS client (plain request/reply: forwarded publishes).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn js(&self) -> &jetstream::Context {
        &self.js
    }

    /// The events stream.
    pub fn events(&self) -> &stream::Stream {
        &self.events
    }

    /// The link's counters.
    pub fn stats(&self) -> &Arc<ClusterStats> {
        &self.stats
    }

    /// Whether the client is connected to a NATS server now.
    pub fn connected(&self) -> bool {
        matches!(
            self.client.connection_state(),
            async_nats::connection::State::Connected
        )
    }

    /// The last message of `subject`, `None` when it has none.
    pub async fn last(&self, subject: &str) -> Result<Option<(u64, Bytes)>, String> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        match self.events.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some((m.sequence, m.payload))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Every channel that has events in the stream.
    pub async fn channels(&self) -> Result<Vec<String>, String> {
        use futures_util::TryStreamExt;
        let events = self.events.clone();
        let subjects = events
            .info_with_subjects(format!("{EVENT_PREFIX}>"))
            .await
            .map_err(|e| e.to_string())?;
        let all: Vec<(String, usize)> = subjects.try_collect().await.map_err(|e| e.to_string())?;
        Ok(all
            .into_iter()
            .filter_map(|(s, _)| super::channel_of(&s).map(str::to_string))
            .collect())
    }
}

/// The events stream's settings: per subject, `--history-messages` NATS
/// messages (each 1 to 64 events: at least that many events) and
/// `--history-seconds`.
fn events_config(config: &Settings) -> stream::Config {
    stream::Config {
        name: EVENTS_STREAM.into(),
        subjects: vec![format!("{EVENT_PREFIX}>"), format!("{SNAP_PREFIX}>")],
        max_messages_per_subject: config.history_messages.max(1) as i64,
        max_age: Duration::from_secs(config.history_seconds),
        storage: stream::StorageType::File,
        num_replicas: config.nats_replicas.max(1),
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the streams if missing; the epoch is kept while the events
/// stream (the history) exists, and made anew when it did not.
async fn create_streams(
    js: &jetstream::Context,
    config: &Settings,
) -> Result<(stream::Stream, stream::Stream, String), ClusterError> {
    let had_history = js.get_stream(EVENTS_STREAM).await.is_ok();
    let events = js
        .get_or_create_stream(events_config(config))
        .await
        .map_err(|e| stream_err(EVENTS_STREAM)(e.to_string()))?;
    let meta = js
        .get_or_create_stream(stream::Config {
            name: META_STREAM.into(),
            subjects: vec!["tw.meta.>".into()],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: config.nats_replicas.max(1),
            allow_direct: true,
            ..Default::default()
        })
        .await
        .map_err(|e| stream_err(META_STREAM)(e.to_string()))?;
    let stored = read_epoch(&meta).await?;
    let epoch = match stored {
        Some(epoch) if had_history => epoch,
        _ => {
            let epoch = new_epoch();
            js.publish(EPOCH_SUBJECT, Bytes::from(epoch.clone()))
                .await
                .map_err(|e| ClusterError::Epoch(e.to_string()))?
                .await
                .map_err(|e| ClusterError::Epoch(e.to_string()))?;
            epoch
        }
    };
    Ok((events, meta, epoch))
}

async fn read_epoch(meta: &stream::Stream) -> Result<Option<String>, ClusterError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match meta.get_last_raw_message_by_subject(EPOCH_SUBJECT).await {
        Ok(m) => String::from_utf8(m.payload.to_vec())
            .map(Some)
            .map_err(|_| ClusterError::Epoch("the stored epoch is not UTF-8".into())),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(ClusterError::Epoch(e.to_string())),
    }
}

/// An edge starts after (or with) an ingest: wait for its streams.
async fn wait_for_ingest(
    js: &jetstream::Context,
) -> Result<(stream::Stream, stream::Stream, String), ClusterError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_INGEST;
    loop {
        if let (Ok(events), Ok(meta)) = (
            js.get_stream(EVENTS_STREAM).await,
            js.get_stream(META_STREAM).await,
        ) && let Some(epoch) = read_epoch(&meta).await?
        {
            return Ok((events, meta, epoch));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::NoIngest(WAIT_FOR_INGEST.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
