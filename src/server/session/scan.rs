//! `request_scan`: fair, bounded, and creating nothing for strangers.
//!
//! - A scan of a venue no source feeds creates no channel: the requester
//!   alone gets a `scan_error` event (seq 0, outside any channel's ring).
//! - One scan per connection, queued or running; queued scans wait their
//!   turn in arrival order (tokio's semaphore is FIFO), so a client that
//!   re-requests the moment its scan ends goes behind those already waiting.
//! - At most `--max-concurrent-scans` run, each holding its slot at least
//!   [`crate::analytics::scanner::MIN_SCAN_SLOT`], which bounds the scan
//!   events per second server-wide; at most [`MAX_QUEUED_SCANS`] wait.

use std::sync::atomic::Ordering;

use super::{AuthState, Session, msg};
use crate::analytics::scanner::{self, ScanRequest};
use crate::protocol::pb::{self, ErrorCode, event::Payload, server_message};
use crate::protocol::{ChannelKind, now_ns};

/// Scans waiting for a slot server-wide; beyond, RATE_LIMITED.
pub const MAX_QUEUED_SCANS: usize = 64;

impl Session {
    /// Whether a source (or the publish API) feeds `venue`: some trade,
    /// ticker or book channel of it exists.
    fn venue_known(&mut self, venue: &str) -> bool {
        let all = self.ctx.hub.registry().all();
        self.work.channels += all.len() as u64;
        all.iter().any(|c| {
            matches!(
                c.kind,
                ChannelKind::Trade | ChannelKind::Ticker | ChannelKind::Book
            ) && c.name.split('.').nth(1) == Some(venue)
        })
    }

    pub(super) fn request_scan(&mut self, r: pb::RequestScan) {
        let Some(analytics) = self.ctx.analytics.clone() else {
            self.error(
                r.request_id,
                ErrorCode::BadRequest,
                "the scanner needs analytics, which is off on this server".into(),
                "",
            );
            return;
        };
        let venue = if r.venue.is_empty() {
            "sim".to_string()
        } else {
            r.venue.clone()
        };
        let name = format!("scan.{venue}.all");
        let Some(pattern) = self.parse_pattern(r.request_id, &name) else {
            return;
        };
        if let AuthState::Granted(grant) = &self.auth
            && !grant.allows(&pattern)
        {
            self.error(
                r.request_id,
                ErrorCode::Forbidden,
                format!("the token does not grant {name}"),
                &name,
            );
            return;
        }
        if self.scanning.load(Ordering::Acquire) {
            self.error(
                r.request_id,
                ErrorCode::RateLimited,
                "a scan requested by this connection is still queued or running".into(),
                &name,
            );
            return;
        }
        if self.ctx.hub.registry().get(&name).is_none() && !self.venue_known(&venue) {
            self.scan_error_to_requester(
                r.request_id,
                &name,
                format!("no source feeds venue `{venue}`: nothing to scan"),
            );
            return;
        }
        let waiting = self.ctx.scans_waiting.clone();
        if waiting.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_SCANS {
            waiting.fetch_sub(1, Ordering::AcqRel);
            self.error(
                r.request_id,
                ErrorCode::RateLimited,
                format!(
                    "{MAX_QUEUED_SCANS} scans are already waiting server-wide; try again later"
                ),
                &name,
            );
            return;
        }
        let channel = match self.ctx.hub.channel(&name) {
            Ok(c) => c,
            Err(e) => {
                waiting.fetch_sub(1, Ordering::AcqRel);
                self.error(
                    r.request_id,
                    ErrorCode::InvalidChannel,
                    e.to_string(),
                    &name,
                );
                return;
            }
        };
        let mut snapshots = Vec::new();
        // a scan channel already held keeps its rate (conflation)
        let conflate_ms = self
            .index
            .get(&channel.id)
            .and_then(|&i| self.subs[i].conflation.as_ref())
            .map_or(0, |c| c.interval_ms());
        if self
            .add(&channel, true, None, false, conflate_ms, &mut snapshots)
            .is_none()
        {
            waiting.fetch_sub(1, Ordering::AcqRel);
            self.error(
                r.request_id,
                ErrorCode::TooManySubscriptions,
                format!("cannot subscribe to {name}: subscription limit reached"),
                &name,
            );
            return;
        }
        self.scanning.store(true, Ordering::Release);
        tokio::spawn(scanner::queue_and_run(
            self.ctx.hub.clone(),
            analytics.board.clone(),
            channel,
            ScanRequest {
                request_id: r.request_id,
                venue,
                top_n: r.top_n,
            },
            self.scanning.clone(),
            analytics.scans.clone(),
            waiting,
        ));
    }

    /// A `scan_error` event for this connection only: seq 0 (not part of
    /// the channel's ring, which may not even exist).
    fn scan_error_to_requester(&mut self, request_id: u64, channel: &str, message: String) {
        let now = now_ns();
        self.push(msg(server_message::Kind::Event(pb::Event {
            channel: channel.to_string(),
            seq: 0,
            source_time_ns: now,
            publish_time_ns: now,
            payload: Some(Payload::ScanError(pb::ScanError {
                request_id,
                scan_id: String::new(),
                message,
            })),
        })));
    }
}
