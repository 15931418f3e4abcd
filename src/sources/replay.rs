//! The replay source (`--source replay:FILE`): publishes the events of a
//! `.twr` recording ([`super::twr`]) again. A replay publishes the same
//! payloads in the same per-channel order (the hub assigns new seqs in the
//! new epoch) and paces them by the recorded `publish_time_ns`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::twr::{Reader, TwrError};
use super::{SourceState, SourceStatus};
use crate::feed::Hub;
use crate::feed::channel::Channel;
use crate::protocol::ChannelKind;

/// How fast a replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplaySpeed {
    /// This many times the recorded pacing (1 = as recorded).
    Times(f64),
    /// As fast as the hub takes events.
    Max,
}

/// The replay source.
pub struct Replay {
    hub: Arc<Hub>,
    path: PathBuf,
    speed: ReplaySpeed,
    looped: bool,
    /// Skip recorded candle, signal, sentiment and scan events: with
    /// analytics on, the server derives them again from the replayed trades,
    /// and two publishers on one channel would interleave.
    skip_derived: bool,
    /// A truncated file is reported once, not on every loop.
    warned_truncated: std::sync::atomic::AtomicBool,
}

impl Replay {
    /// Checks that `path` is a readable recording.
    pub fn open(
        hub: Arc<Hub>,
        path: &Path,
        speed: ReplaySpeed,
        looped: bool,
        skip_derived: bool,
    ) -> Result<Self, TwrError> {
        Reader::open(path)?;
        Ok(Self {
            hub,
            path: path.to_path_buf(),
            speed,
            looped,
            skip_derived,
            warned_truncated: Default::default(),
        })
    }

    /// Publishes the file's events with their recorded pacing (scaled by the
    /// speed), once or in a loop, until shutdown.
    pub async fn run(self, status: Arc<SourceStatus>, shutdown: CancellationToken) {
        status.connected();
        let mut channels: std::collections::HashMap<String, Arc<Channel>> = Default::default();
        loop {
            let started = Instant::now();
            let result = self.pass(&status, &shutdown, &mut channels).await;
            match result {
                Ok((n, true)) => {
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(
                        file = %self.path.display(),
                        events = n,
                        seconds = secs,
                        events_per_sec = (n as f64 / secs.max(1e-9)).round(),
                        "replay pass finished: {n} events in {secs:.3} s ({:.0} events/s)",
                        n as f64 / secs.max(1e-9)
                    );
                    if !self.looped {
                        status.ended(SourceState::Finished);
                        return;
                    }
                }
                Ok((_, false)) => break,
                Err(e) => {
                    tracing::error!(error = %e, "replay stopped");
                    status.set_error(&e.to_string());
                    status.ended(SourceState::Finished);
                    return;
                }
            }
        }
        status.ended(SourceState::Stopped);
    }

    /// One pass over the file: (events published, reached the end).
    async fn pass(
        &self,
        status: &SourceStatus,
        shutdown: &CancellationToken,
        channels: &mut std::collections::HashMap<String, Arc<Channel>>,
    ) -> Result<(u64, bool), TwrError> {
        let mut reader = Reader::open(&self.path)?;
        let start = Instant::now();
        let mut first_ns: Option<i64> = None;
        let mut n: u64 = 0;
        while let Some(event) = reader.next_event()? {
            if let ReplaySpeed::Times(factor) = self.speed {
                let t0 = *first_ns.get_or_insert(event.publish_time_ns);
                let offset = (event.publish_time_ns - t0).max(0) as f64 / factor;
                let due = start + Duration::from_nanos(offset as u64);
                if due > Instant::now() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok((n, false)),
                        _ = tokio::time::sleep_until(due.into()) => {}
                    }
                }
            } else if n % 1024 == 1023 {
                if shutdown.is_cancelled() {
                    return Ok((n, false));
                }
                tokio::task::yield_now().await;
            }
            if self.skip_derived
                && matches!(
                    ChannelKind::of(&event.channel),
                    ChannelKind::Candle
                        | ChannelKind::Signal
                        | ChannelKind::Sentiment
                        | ChannelKind::Scan
                )
            {
                continue;
            }
            let channel = match channels.get(&event.channel) {
                Some(c) => c.clone(),
                None => match self.hub.channel(&event.channel) {
                    Ok(c) => {
                        channels.insert(event.channel.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        status.set_error(&format!("skipped event: {e}"));
                        continue;
                    }
                },
            };
            let Some(payload) = event.payload else {
                continue;
            };
            if let Err(e) = self.hub.publish(&channel, event.source_time_ns, payload) {
                status.set_error(&format!("skipped event on {}: {e}", channel.name));
                continue;
            }
            n += 1;
            if n.is_multiple_of(256) {
                status.messages(256);
            }
        }
        status.messages(n % 256);
        if reader.truncated()
            && !self
                .warned_truncated
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                file = %self.path.display(),
                events = reader.events_read(),
                "recording is cut short (its recorder was killed?): replaying its {} whole events",
                reader.events_read()
            );
        }
        Ok((n, true))
    }
}
