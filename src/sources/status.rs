//! What each running source is doing, for `/health` and `/stats`.
//!
//! Sources write these atomics as they go; the HTTP handlers read them. No
//! lock is held on the publishing path (the last error is the one exception,
//! and it is only written when something failed).
//!
//! An exchange source also publishes each change of its state (not each
//! message: a lock or two per change is fine there) as an event
//! on `status.<venue>.all` (a `custom` JSON payload, see [`SourceStatus::attach`]),
//! so clients see a venue's state with the same seq and snapshot rules as
//! market data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use crate::feed::{Channel, Hub};
use crate::protocol::now_ns;
use crate::protocol::pb::{Custom, custom, event::Payload};

/// Where a source's state changes are published.
#[derive(Debug)]
struct StatusFeed {
    hub: Arc<Hub>,
    channel: Arc<Channel>,
    venue: String,
}

/// A source's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceState {
    /// Opening its first connection.
    Connecting = 0,
    /// Streaming.
    Connected = 1,
    /// Lost its stream; waiting out a backoff or reconnecting.
    Reconnecting = 2,
    /// Finished on purpose (a replay without `--loop` reached its end).
    Finished = 3,
    /// Stopped by shutdown.
    Stopped = 4,
}

impl SourceState {
    /// The names of every state, as [`SourceState::as_str`] gives them.
    pub const NAMES: &'static [&'static str] = &[
        "connecting",
        "connected",
        "reconnecting",
        "finished",
        "stopped",
    ];

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Connected,
            2 => Self::Reconnecting,
            3 => Self::Finished,
            4 => Self::Stopped,
            _ => Self::Connecting,
        }
    }

    /// The name shown in `/health` and `/stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
        }
    }
}

/// Live state of one source.
#[derive(Debug)]
pub struct SourceStatus {
    /// `sim`, `binance`, `okx`, `replay:FILE`.
    pub name: String,
    state: AtomicU8,
    /// Connection attempts since the stream was last stable (0 when connected).
    attempt: AtomicU32,
    reconnects: AtomicU64,
    messages_in: AtomicU64,
    last_message_ns: AtomicI64,
    /// Book resyncs (gap, checksum mismatch or reconnect).
    resyncs: AtomicU64,
    /// REST fallback polls answered while the stream was down.
    rest_polls: AtomicU64,
    /// The wait before the next attempt, while reconnecting.
    backoff_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Instruments the venue refused or does not list, with the reason.
    failed: Mutex<BTreeMap<String, String>>,
    /// Where the instruments' metadata came from, or why it did not.
    metadata: Mutex<Option<String>>,
    /// Make-before-break connection replacements.
    rotations: AtomicU64,
    /// Trades of stream gaps recovered over REST.
    backfilled: AtomicU64,
    feed: OnceLock<StatusFeed>,
}

impl SourceStatus {
    /// A source that has not connected yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            state: AtomicU8::new(SourceState::Connecting as u8),
            attempt: AtomicU32::new(0),
            reconnects: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            last_message_ns: AtomicI64::new(0),
            resyncs: AtomicU64::new(0),
            rest_polls: AtomicU64::new(0),
            backoff_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            failed: Mutex::new(BTreeMap::new()),
            metadata: Mutex::new(None),
            rotations: AtomicU64::new(0),
            backfilled: AtomicU64::new(0),
            feed: OnceLock::new(),
        }
    }

    /// Publishes this source's state changes on `status.<venue>.all` from
    /// now on, starting with its current state.
    ///
    /// Each event's payload is `custom.json`: `{"venue", "event", "state",
    /// "instrument"?, "reason"?, "failed_instruments", "time_ns"}`, where
    /// `event` is `connecting`, `live`, `reconnecting`, `resyncing`,
    /// `book_live`, `stale`, `instrument_failed`, `rotating` or
    /// `metadata`. Every event carries the whole state, so the channel's
    /// snapshot (its last event) is complete on its own.
    pub fn attach(&self, hub: &Arc<Hub>, venue: &str) -> Result<(), crate::protocol::ChannelError> {
        let channel = hub.channel(&format!("status.{venue}.all"))?;
        let _ = self.feed.set(StatusFeed {
            hub: hub.clone(),
            channel,
            venue: venue.to_string(),
        });
        self.emit("connecting", None, None);
        Ok(())
    }

    /// Publishes one state change (nothing when not attached).
    fn emit(&self, event: &str, instrument: Option<&str>, reason: Option<&str>) {
        let Some(feed) = self.feed.get() else { return };
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut v = serde_json::json!({
            "venue": feed.venue,
            "event": event,
            "state": self.state_name(),
            "failed_instruments": failed,
            "time_ns": now_ns(),
        });
        if let Some(i) = instrument {
            v["instrument"] = i.into();
        }
        if let Some(r) = reason {
            v["reason"] = r.into();
        }
        let payload = Payload::Custom(Custom {
            body: Some(custom::Body::Json(v.to_string())),
        });
        feed.hub.publish_or_log(&feed.channel, now_ns(), payload);
    }

    /// `live` rather than `connected` once streaming, as the status
    /// channel names it.
    fn state_name(&self) -> &'static str {
        match self.state() {
            SourceState::Connected => "live",
            s => s.as_str(),
        }
    }

    /// A book of `instrument` is being rebuilt because of `why`.
    pub fn resyncing(&self, instrument: &str, why: &str) {
        self.resynced(why);
        self.emit("resyncing", Some(instrument), Some(why));
    }

    /// A book of `instrument` is in step again after a resync.
    pub fn book_live(&self, instrument: &str) {
        self.emit("book_live", Some(instrument), None);
    }

    /// `instrument` (or the connection, when `None`) went silent.
    pub fn stale(&self, instrument: Option<&str>, why: &str) {
        self.set_error(why);
        self.emit("stale", instrument, Some(why));
    }

    /// The venue refused or does not list `instrument`: it is skipped.
    pub fn instrument_failed(&self, instrument: &str, why: &str) {
        let new = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(instrument.to_string(), why.to_string())
            .is_none();
        if new {
            self.set_error(why);
            self.emit("instrument_failed", Some(instrument), Some(why));
        }
    }

    /// Instruments marked failed, with their reasons.
    pub fn failed_instruments(&self) -> BTreeMap<String, String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A connection is being replaced make-before-break because of `why`.
    pub fn rotating(&self, why: &str) {
        self.rotations.fetch_add(1, Relaxed);
        self.emit("rotating", None, Some(why));
    }

    /// `n` trades missing from the stream were recovered over REST.
    pub fn backfilled(&self, n: u64) {
        self.backfilled.fetch_add(n, Relaxed);
    }

    /// Where instrument metadata came from (or why it could not be had).
    pub fn metadata(&self, note: &str) {
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some(note.to_string());
        self.emit("metadata", None, Some(note));
    }

    /// Current state.
    pub fn state(&self) -> SourceState {
        SourceState::from_u8(self.state.load(Relaxed))
    }

    /// The stream is up.
    pub fn connected(&self) {
        let was = self.state.swap(SourceState::Connected as u8, Relaxed);
        self.backoff_ms.store(0, Relaxed);
        if was != SourceState::Connected as u8 {
            self.emit("live", None, None);
        }
    }

    /// The stream was lost; attempt `attempt` comes after `backoff_ms`.
    pub fn reconnecting(&self, attempt: u32, backoff_ms: u64, error: &str) {
        self.state.store(SourceState::Reconnecting as u8, Relaxed);
        self.attempt.store(attempt, Relaxed);
        self.backoff_ms.store(backoff_ms, Relaxed);
        self.reconnects.fetch_add(1, Relaxed);
        self.set_error(error);
        self.emit("reconnecting", None, Some(error));
    }

    /// The stream has been stable long enough to forget past failures.
    pub fn stable(&self) {
        self.attempt.store(0, Relaxed);
    }

    /// The source ended (`Finished` or `Stopped`).
    pub fn ended(&self, state: SourceState) {
        self.state.store(state as u8, Relaxed);
    }

    /// `n` messages came in from the source just now.
    pub fn messages(&self, n: u64) {
        self.messages_in.fetch_add(n, Relaxed);
        self.last_message_ns.store(now_ns(), Relaxed);
    }

    /// Messages in so far.
    pub fn messages_in(&self) -> u64 {
        self.messages_in.load(Relaxed)
    }

    /// A book was rebuilt from a fresh snapshot.
    pub fn resynced(&self, why: &str) {
        self.resyncs.fetch_add(1, Relaxed);
        self.set_error(why);
    }

    /// Book resyncs so far.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Relaxed)
    }

    /// A REST fallback poll was answered.
    pub fn rest_polled(&self) {
        self.rest_polls.fetch_add(1, Relaxed);
    }

    /// Remembers the last thing that went wrong, for operators.
    pub fn set_error(&self, error: &str) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    }

    /// The state as JSON, for `/health` and `/stats`.
    pub fn to_json(&self) -> serde_json::Value {
        let last = self.last_message_ns.load(Relaxed);
        let age_ms = (last > 0).then(|| (now_ns() - last).max(0) / 1_000_000);
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        serde_json::json!({
            "name": self.name,
            "state": self.state().as_str(),
            "attempt": self.attempt.load(Relaxed),
            "reconnects": self.reconnects.load(Relaxed),
            "backoff_ms": self.backoff_ms.load(Relaxed),
            "messages_in": self.messages_in.load(Relaxed),
            "last_message_age_ms": age_ms,
            "resyncs": self.resyncs.load(Relaxed),
            "rest_polls": self.rest_polls.load(Relaxed),
            "last_error": error,
            "failed_instruments": self.failed_instruments(),
            "metadata": self.metadata.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            "rotations": self.rotations.load(Relaxed),
            "trades_backfilled": self.backfilled.load(Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_names_are_those_the_states_show() {
        let all = (0..5).map(|v| SourceState::from_u8(v).as_str());
        assert_eq!(all.collect::<Vec<_>>(), SourceState::NAMES);
    }
}
