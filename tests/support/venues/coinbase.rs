//! The mock's Coinbase Advanced Trade mode ([`super::MockExchange::coinbase_auto`]),
//! following the Advanced Trade docs as of 2026-05 ("WebSocket Overview",
//! "WebSocket Channels", read 2026-12-07):
//!
//! - `sequence_num` counts the messages of one connection, every channel
//!   together: the mock stamps it on every message it sends (the tests'
//!   messages too), so a test makes a gap with
//!   [`super::MockExchange::coinbase_skip`];
//! - a `subscribe` is answered on the `subscriptions` channel;
//! - subscribing to `heartbeats` brings a heartbeat (with its
//!   `heartbeat_counter`) every interval;
//! - without heartbeats, a connection with no message for the idle time is
//!   closed ("most channels close within 60-90 seconds if no updates are
//!   sent"; the mock's idle time is shortened);
//! - a connection that has not subscribed within 5 s is closed.

use std::time::{Duration, Instant};

/// How the mock behaves as Coinbase.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub heartbeat_every: Duration,
    pub idle_close: Duration,
}

/// One connection's Coinbase state.
#[derive(Debug)]
pub struct Conn {
    mode: Mode,
    next_seq: u64,
    heartbeats: bool,
    counter: u64,
    last_heartbeat: Instant,
    last_sent: Instant,
    opened: Instant,
    subscribed: bool,
}

impl Conn {
    pub fn new(mode: Mode) -> Self {
        let now = Instant::now();
        Self {
            mode,
            next_seq: 0,
            heartbeats: false,
            counter: 0,
            last_heartbeat: now,
            last_sent: now,
            opened: now,
            subscribed: false,
        }
    }

    /// Leaves `n` sequence numbers out (a lost message).
    pub fn skip(&mut self, n: u64) {
        self.next_seq += n;
    }

    /// Stamps the connection's next `sequence_num` on an outgoing message.
    pub fn stamp(&mut self, text: &str) -> String {
        self.last_sent = Instant::now();
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
            return text.to_string();
        };
        if v.get("channel").is_none() {
            return text.to_string();
        }
        v["sequence_num"] = self.next_seq.into();
        self.next_seq += 1;
        v.to_string()
    }

    /// A client message: the answers to send (unstamped).
    pub fn on_client(&mut self, text: &str) -> Vec<String> {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return Vec::new();
        };
        if v["type"] != "subscribe" {
            return Vec::new();
        }
        self.subscribed = true;
        let channel = v["channel"].as_str().unwrap_or_default().to_string();
        if channel == "heartbeats" {
            self.heartbeats = true;
        }
        let products = v["product_ids"].clone();
        vec![
            serde_json::json!({"channel": "subscriptions", "client_id": "",
            "timestamp": "2026-12-07T06:00:00Z", "sequence_num": 0,
            "events": [{"subscriptions": {channel: products}}]})
            .to_string(),
        ]
    }

    /// What the mock does by itself now: `Some(text)` is a heartbeat to
    /// send, `Err(())` means close the connection.
    pub fn tick(&mut self) -> Result<Option<String>, ()> {
        let now = Instant::now();
        if !self.subscribed && now - self.opened > Duration::from_secs(5) {
            return Err(());
        }
        if self.heartbeats {
            if now - self.last_heartbeat >= self.mode.heartbeat_every {
                self.last_heartbeat = now;
                self.counter += 1;
                return Ok(Some(
                    serde_json::json!({"channel": "heartbeats", "client_id": "",
                    "timestamp": "2026-12-07T06:00:00Z", "sequence_num": 0,
                    "events": [{"current_time": "2026-12-07 06:00:00.000000000 +0000 UTC",
                                "heartbeat_counter": self.counter}]})
                    .to_string(),
                ));
            }
        } else if now - self.last_sent > self.mode.idle_close {
            return Err(());
        }
        Ok(None)
    }

    /// Heartbeats sent so far.
    pub fn heartbeats_sent(&self) -> u64 {
        self.counter
    }
}
