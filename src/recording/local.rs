//! Recording the hub of sources run in this process (`record --source`):
//! the recorder is the hub's event sink, so every event published on a
//! matching channel reaches it without a socket in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EventFeed, Next, RecorderError, Settings, Summary};
use crate::feed::{Channel, Encoded, EventSink, Hub};
use crate::protocol::Pattern;
use crate::protocol::pb::server_message;

/// Events queued between the hub and the file writer. A writer this far
/// behind loses events (counted as lagged), never slows the hub.
const QUEUE: usize = 65_536;

/// The hub's end: offers the events of matching channels without waiting.
#[derive(Debug)]
struct Sink {
    patterns: Vec<Pattern>,
    tx: mpsc::Sender<Arc<Encoded>>,
    dropped: Arc<AtomicU64>,
}

impl EventSink for Sink {
    fn offer(&self, channel: &Channel, event: &Arc<Encoded>) {
        if self.patterns.iter().any(|p| p.matches(&channel.name))
            && self.tx.try_send(event.clone()).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The writer's end.
struct Queue {
    rx: mpsc::Receiver<Arc<Encoded>>,
    dropped: Arc<AtomicU64>,
    /// Drops already reported as lagged.
    reported: u64,
}

impl EventFeed for Queue {
    async fn next(&mut self) -> Result<Next, RecorderError> {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported {
            let n = dropped - self.reported;
            self.reported = dropped;
            tracing::warn!(skipped = n, "recorder fell behind the hub; events skipped");
            return Ok(Next::Lagged(n));
        }
        Ok(match self.rx.recv().await {
            None => Next::Ended("the hub stopped".into()),
            Some(encoded) => match encoded.message().kind {
                Some(server_message::Kind::Event(event)) => Next::Event(event),
                _ => Next::Nothing,
            },
        })
    }

    async fn close(&mut self) {}
}

/// The recorder of a hub whose sources have not started yet.
pub struct Recorder {
    queue: Queue,
}

impl Recorder {
    /// Makes the recorder `hub`'s event sink. Call before the sources start,
    /// so the file holds every event from each channel's first (with the
    /// books' snapshots). The hub has one sink: not in cluster mode.
    pub fn attach(hub: &Hub, settings: &Settings) -> Result<Self, RecorderError> {
        let patterns = settings
            .channels
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        hub.set_sink(Arc::new(Sink {
            patterns,
            tx,
            dropped: dropped.clone(),
        }));
        Ok(Self {
            queue: Queue {
                rx,
                dropped,
                reported: 0,
            },
        })
    }

    /// Records until `shutdown`, the duration or the event count; the
    /// file's header names `origin` (the sources recorded).
    pub async fn record(
        self,
        settings: &Settings,
        origin: &str,
        shutdown: CancellationToken,
    ) -> Result<Summary, RecorderError> {
        super::run(settings, origin, self.queue, shutdown).await
    }
}
