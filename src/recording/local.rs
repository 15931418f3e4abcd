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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::feed::{Registry, RingLimits};
    use crate::metrics::Metrics;
    use crate::protocol::pb::{Custom, Trade, custom, event::Payload};
    use crate::sources::twr::Reader;

    fn hub() -> Arc<Hub> {
        let metrics = Arc::new(Metrics::default());
        let registry = Arc::new(Registry::new(RingLimits {
            max_messages: 16,
            max_age_ns: 0,
        }));
        Arc::new(Hub::new(registry, "test".into(), 1024, metrics))
    }

    fn settings(out: &std::path::Path, max_events: u64) -> Settings {
        Settings {
            out: out.to_path_buf(),
            channels: vec!["trade.*.*".into()],
            gzip: false,
            duration: None,
            max_events: Some(max_events),
            progress: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn the_recorder_writes_the_matching_channels_of_the_hub_in_order() {
        let dir = std::env::temp_dir().join(format!("tickwire-local-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("local.twr");
        let hub = hub();
        let settings = settings(&out, 3);
        let recorder = Recorder::attach(&hub, &settings).unwrap();
        let trade = hub.channel("trade.sim.BTC-USDT").unwrap();
        let other = hub.channel("custom.sim.x").unwrap();
        for i in 1..=3 {
            let t = Trade {
                price: i as f64,
                ..Default::default()
            };
            hub.publish(&trade, i, Payload::Trade(t)).unwrap();
            let c = Custom {
                body: Some(custom::Body::Json("{}".into())),
            };
            hub.publish(&other, i, Payload::Custom(c)).unwrap();
        }
        let summary = recorder
            .record(&settings, "in-process: test", CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            (summary.events, summary.channels, summary.lagged),
            (3, 1, 0)
        );
        let mut reader = Reader::open(&out).unwrap();
        assert_eq!(reader.header().origin, "in-process: test");
        let mut seqs = Vec::new();
        while let Some(e) = reader.next_event().unwrap() {
            assert_eq!(e.channel, "trade.sim.BTC-USDT");
            seqs.push(e.seq);
        }
        assert_eq!(seqs, [1, 2, 3]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_pattern_is_refused_before_anything_is_recorded() {
        let hub = hub();
        let mut s = settings(std::path::Path::new("/nonexistent/x.twr"), 1);
        s.channels = vec!["not a pattern".into()];
        let err = Recorder::attach(&hub, &s).err().expect("refused");
        assert!(matches!(err, RecorderError::Pattern(_)), "{err}");
    }
}
