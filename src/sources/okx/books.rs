//! An OKX connection's books: WebSocket snapshots and updates, the REST
//! snapshot (`GET /api/v5/market/books?instId=..&sz=400&source=0`) after a
//! break or a snapshot timeout, and per-book staleness.

use std::time::Duration;

use super::super::activity::Activity;
use super::super::legs::{Leg, Legs};
use super::super::local_book::{LocalBook, TopView};
use super::super::rest::RestError;
use super::super::{SourceError, SourceStatus, net};
use super::msg::{RestReply, op, ts_ns};
use super::sync::{BookSync, OkxBook, Step};
use super::{Okx, REST_DEPTH, VENUE};
use crate::protocol::pb::event::Payload;

impl Okx {
    /// A WebSocket snapshot: starts the book unless it is live and the
    /// snapshot is not newer (the other connection's copy).
    pub(super) fn on_ws_snapshot(
        &mut self,
        idx: usize,
        b: OkxBook,
        status: &SourceStatus,
    ) -> Result<Step, String> {
        let m = &mut self.markets[idx];
        let seq = b.seq_id.unwrap_or(0);
        m.activity.message();
        if let BookSync::Live { seq: last, .. } = &m.sync
            && seq <= *last
        {
            return Ok(Step::Repeat);
        }
        self.start_book(idx, b, false, status)?;
        Ok(Step::Applied)
    }

    pub(super) fn start_book(
        &mut self,
        idx: usize,
        b: OkxBook,
        bridge: bool,
        status: &SourceStatus,
    ) -> Result<(), String> {
        let depth = self.cfg.book_depth;
        let m = &mut self.markets[idx];
        let mut book = LocalBook::from_levels(&b.bids, &b.asks).map_err(|e| e.to_string())?;
        if let Some((p, s)) = m.decimals {
            book.set_decimals(p, s);
        }
        super::sync::check(&book, b.checksum)?;
        let was_live = m.sync.is_live();
        let mut sync = std::mem::replace(&mut m.sync, BookSync::awaiting(false));
        let started = sync.start(book, b.seq_id.unwrap_or(0), bridge);
        m.sync = sync;
        started?;
        let BookSync::Live { book, .. } = &m.sync else {
            return Ok(());
        };
        let snap = book.snapshot(depth);
        m.view = TopView::of(&snap);
        m.activity = Activity::new();
        m.backoff.reset();
        self.hub
            .publish_or_log(&m.channels.book, ts_ns(&b.ts), Payload::BookSnapshot(snap));
        if !was_live {
            status.book_live(&m.inst.dashed());
        }
        Ok(())
    }

    pub(super) fn on_update(&mut self, idx: usize, b: &OkxBook) -> Result<Step, String> {
        let depth = self.cfg.book_depth;
        let m = &mut self.markets[idx];
        m.activity.message();
        let step = m.sync.update(b)?;
        if step != Step::Applied {
            return Ok(step);
        }
        let BookSync::Live { book, .. } = &m.sync else {
            return Ok(step);
        };
        if let Some(update) = m.view.advance(book, depth) {
            self.hub
                .publish_or_log(&m.channels.book, ts_ns(&b.ts), Payload::BookUpdate(update));
        }
        Ok(step)
    }

    /// Rebuilds a book from the REST snapshot, keeping updates meanwhile.
    pub(super) fn resync(&mut self, idx: usize, why: &str, status: &SourceStatus) {
        let inst = self.markets[idx].inst.dashed();
        let why = format!("okx {inst}: {why}; fetching a REST snapshot");
        tracing::warn!("{why}");
        status.resyncing(&inst, &why);
        self.markets[idx].sync = BookSync::awaiting(true);
        self.fetch_snapshot(idx, Duration::ZERO);
    }

    /// `GET /api/v5/market/books?instId=..&sz=400&source=0` after `delay`.
    pub(super) fn fetch_snapshot(&mut self, idx: usize, delay: Duration) {
        let m = &mut self.markets[idx];
        m.generation += 1;
        let generation = m.generation;
        let path = format!(
            "/api/v5/market/books?instId={}&sz={REST_DEPTH}&source=0",
            m.inst.dashed()
        );
        let rest = self.cfg.rest.clone();
        let tx = self.snap_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let result = rest.get(&path, 1).await.and_then(|body| {
                let reply: RestReply<OkxBook> =
                    serde_json::from_slice(&body).map_err(|e| RestError::Decode {
                        venue: VENUE,
                        detail: e.to_string(),
                    })?;
                match reply.data.into_iter().next() {
                    Some(b) if reply.code == "0" && b.seq_id.is_some() => Ok(b),
                    _ => Err(RestError::Refused {
                        venue: VENUE,
                        status: 200,
                        code: reply.code,
                        msg: format!("no book snapshot with a seqId: {}", reply.msg),
                    }),
                }
            });
            let _ = tx.send((idx, generation, result)).await;
        });
    }

    pub(super) async fn on_rest_snapshot(
        &mut self,
        idx: usize,
        generation: u64,
        result: Result<OkxBook, RestError>,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let m = &mut self.markets[idx];
        if generation != m.generation || m.sync.is_live() {
            return Ok(()); // superseded (a WebSocket snapshot came first)
        }
        match result {
            Ok(b) => {
                if let Err(why) = self.start_book(idx, b, true, status) {
                    self.resync(idx, &why, status);
                }
            }
            Err(e) => match m.backoff.next(&e) {
                Some(delay) => {
                    tracing::warn!(source = "okx", error = %e, "REST book snapshot failed; retrying");
                    status.set_error(&e.to_string());
                    self.fetch_snapshot(idx, delay);
                }
                None => {
                    // REST will not give it: ask the WebSocket for a snapshot
                    let inst = m.inst.dashed();
                    status.set_error(&format!("okx {inst}: {e}; resubscribing the book"));
                    m.sync = BookSync::awaiting(false);
                    let arg = [("books", inst.as_str())];
                    legs.send(Leg::Current, op("unsubscribe", None, &arg))
                        .await
                        .map_err(net::NetError::from)?;
                    self.next_id += 1;
                    let id = self.next_id.to_string();
                    self.requests.insert(id.clone(), idx);
                    legs.send(Leg::Current, op("subscribe", Some(&id), &arg))
                        .await
                        .map_err(net::NetError::from)?;
                }
            },
        }
        Ok(())
    }

    /// Snapshot timeouts (fall back to REST) and per-book staleness (a
    /// liquid book silent for `--stale-after` is rebuilt).
    pub(super) fn check_books(&mut self, status: &SourceStatus) {
        let timeout = self.cfg.snapshot_timeout;
        let stale = self.cfg.stale_after;
        for idx in 0..self.markets.len() {
            let m = &mut self.markets[idx];
            if m.failed {
                continue;
            }
            match &mut m.sync {
                BookSync::Awaiting {
                    since, fetching, ..
                } => {
                    if !*fetching && since.elapsed() >= timeout {
                        *fetching = true;
                        let inst = m.inst.dashed();
                        let why = format!(
                            "okx {inst}: no book snapshot {timeout:?} after subscribing; fetching it over REST"
                        );
                        status.resyncing(&inst, &why);
                        self.fetch_snapshot(idx, Duration::ZERO);
                    }
                }
                BookSync::Live { .. } => {
                    if m.activity.stale(stale) {
                        let inst = m.inst.dashed();
                        let why = format!("okx {inst}: book silent for {stale:?}");
                        status.stale(Some(&inst), &why);
                        self.resync(idx, "book silent", status);
                    }
                }
            }
        }
    }
}
