//! A Coinbase session: its connections (legs), their subscriptions, the
//! `sequence_num` resubscriptions and the make-before-break rotation.
//!
//! Rotation: Coinbase's level2 updates carry no sequence of their own, so
//! two connections' updates cannot be merged. The next connection builds
//! its books privately (`Market::next`) from its own snapshots; once every
//! book is live there (and so `market_trades` and `ticker`, subscribed
//! before `level2`, are flowing too), tickwire adopts them: subscribers get
//! the difference between the old top and the new one as a `book_update`,
//! and the old connection is closed. The next connection's trades are held until
//! then (the two streams are not in step: published at once, one could
//! overtake the current connection's earlier trades) and published from
//! the last id on at the switch, deduplicated by id; tickers are
//! deduplicated by time across the overlap.

use std::time::Instant;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use super::super::activity::Activity;
use super::super::legs::{self, Leg, Legs};
use super::super::{SourceError, SourceStatus, net};
use super::book::BookState;
use super::msg::subscription;
use super::{CHECK_EVERY, Coinbase, SUBSCRIBE_PACE, Sequences, VENUE};
use crate::protocol::pb::event::Payload;

impl Coinbase {
    async fn send_paced(ws: &mut net::Ws, msgs: Vec<Message>) -> Result<(), SourceError> {
        for (i, m) in msgs.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(SUBSCRIBE_PACE).await;
            }
            ws.send(m).await.map_err(net::NetError::from)?;
        }
        Ok(())
    }

    /// Connects and subscribes: `heartbeats` first, `level2` last, one
    /// channel per message.
    async fn open_leg(&self) -> Result<net::Ws, SourceError> {
        let mut ws = net::ws_connect(&self.cfg.ws_url, self.cfg.io_timeout).await?;
        let mut subscribes = vec![subscription("subscribe", "heartbeats", &[])];
        subscribes.extend(self.product_subscriptions());
        Self::send_paced(&mut ws, subscribes).await?;
        Ok(ws)
    }

    /// `market_trades`, `ticker` and `level2` for the products not
    /// refused (none when all were).
    fn product_subscriptions(&self) -> Vec<Message> {
        let products = self.products();
        if products.is_empty() {
            return Vec::new();
        }
        ["market_trades", "ticker", "level2"]
            .iter()
            .map(|channel| subscription("subscribe", channel, &products))
            .collect()
    }

    /// An error naming one of the connection's products ("Failed to
    /// subscribe", reason "X is not a valid product"; Coinbase then ignores
    /// the whole subscribe): that product is marked failed and the others
    /// are subscribed again without it. Other errors are only reported.
    pub(super) async fn on_refusal(
        &mut self,
        why: &str,
        leg: Leg,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let words: Vec<&str> = why
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .collect();
        let named = self
            .markets
            .iter_mut()
            .filter(|m| !m.failed && words.contains(&m.inst.dashed().as_str()));
        let mut any = false;
        for m in named {
            m.failed = true;
            any = true;
            tracing::error!(source = VENUE, instrument = %m.inst.dashed(), "{why}; product skipped");
            status.instrument_failed(&m.inst.dashed(), why);
        }
        let msgs = self.product_subscriptions();
        match legs.ws(leg) {
            Some(ws) if any => Self::send_paced(ws, msgs).await,
            _ => Ok(()),
        }
    }

    pub(super) async fn stream_session(
        &mut self,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let ws = self.open_leg().await?;
        for m in &mut self.markets {
            m.state = BookState::awaiting();
        }
        status.connected();
        tracing::info!(source = VENUE, "stream connected");
        let mut legs = Legs::new(ws, self.cfg.rotate_after);
        let mut seqs = Sequences::default();
        let stale = self.cfg.stale_after;
        let mut last_alive = Instant::now();
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            let (rotate_at, switch_at) = (legs.rotation_due(), legs.switch_deadline());
            let mut rotate = false;
            tokio::select! {
                (leg, msg) = legs.recv() => {
                    if legs::ended(&msg) && leg == Leg::Current && legs.rotating() {
                        self.adopt_next(&mut seqs, status);
                    }
                    let Some(text) = legs.text(leg, msg).await? else {
                        continue;
                    };
                    match self.on_text(text.as_str(), leg, &mut seqs, &mut legs, status).await {
                        Ok(data) => {
                            // heartbeats count: the venue is there, markets are quiet
                            last_alive = Instant::now();
                            if data && leg == Leg::Current {
                                status.messages(1);
                            }
                        }
                        Err(SourceError::Net(e)) => return Err(e.into()),
                        Err(e) => super::super::skipped(VENUE, status, &e),
                    }
                }
                _ = legs::until(rotate_at) => rotate = true,
                _ = legs::until(switch_at) => {
                    // its books never all came: the current connection stays
                    tracing::warn!(source = VENUE, "new connection not ready in time; keeping the current one");
                    legs.abandon_next();
                }
                _ = check.tick() => self.check_books(&mut legs, status).await?,
                _ = tokio::time::sleep_until((last_alive + stale).into()) => {
                    status.stale(None, &format!("coinbase: no message for {stale:?}"));
                    return Err(SourceError::Stale(stale));
                }
            }
            if rotate && !legs.rotating() {
                let why = format!("connection is {:?} old", self.cfg.rotate_after);
                legs::announce(VENUE, status, &why);
                for m in &mut self.markets {
                    m.next = BookState::awaiting();
                }
                seqs.next = Default::default();
                let opened = self.open_leg().await.map(|ws| (ws, ()));
                legs.start_opened(VENUE, opened);
            }
            if legs.rotating() && self.markets.iter().all(|m| m.failed || m.next.is_live()) {
                self.adopt_next(&mut seqs, status);
                self.publish_held_trades()?;
                legs.switch_logged(VENUE).await;
            }
        }
    }

    /// The next connection's books become the published ones: each
    /// subscriber gets the difference of the top as one `book_update`.
    fn adopt_next(&mut self, seqs: &mut Sequences, status: &SourceStatus) {
        let depth = self.cfg.book_depth;
        for m in self.markets.iter_mut().filter(|m| !m.failed) {
            let was_live = m.state.is_live();
            m.state = std::mem::replace(&mut m.next, BookState::awaiting());
            let BookState::Live(book) = &m.state else {
                continue; // left awaiting: the snapshot timeout resubscribes it
            };
            m.activity = Activity::new();
            if let Some(update) = m.view.advance(book, depth) {
                let now = crate::protocol::now_ns();
                self.hub
                    .publish_or_log(&m.channels.book, now, Payload::BookUpdate(update));
            }
            if !was_live {
                status.book_live(&m.inst.dashed());
            }
        }
        seqs.current = std::mem::take(&mut seqs.next);
    }

    /// A `sequence_num` gap (or a book that cannot be read) on `leg`: every
    /// book of that connection waits for a fresh snapshot from a new
    /// `level2` subscription.
    pub(super) async fn resubscribe_books(
        &mut self,
        why: &str,
        leg: Leg,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        tracing::warn!(source = VENUE, ?leg, "{why}; resubscribing level2");
        for m in self.markets.iter_mut().filter(|m| !m.failed) {
            if leg == Leg::Next {
                m.next = BookState::awaiting();
                continue;
            }
            let inst = m.inst.dashed();
            status.resyncing(
                &inst,
                &format!("coinbase {inst}: {why}; resubscribing level2"),
            );
            m.state = BookState::awaiting();
        }
        let products = self.products();
        let Some(ws) = legs.ws(leg).filter(|_| !products.is_empty()) else {
            return Ok(());
        };
        Self::send_paced(
            ws,
            vec![
                subscription("unsubscribe", "level2", &products),
                subscription("subscribe", "level2", &products),
            ],
        )
        .await
    }

    /// A book without a snapshot `--snapshot-timeout` after subscribing,
    /// or a busy book gone silent, resubscribes the connection's books.
    async fn check_books(
        &mut self,
        legs: &mut Legs,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let (timeout, stale) = (self.cfg.snapshot_timeout, self.cfg.stale_after);
        let mut why = None;
        for m in self.markets.iter().filter(|m| !m.failed) {
            match &m.state {
                BookState::Awaiting { since } if since.elapsed() >= timeout => {
                    why = Some(format!(
                        "{}: no snapshot {timeout:?} after subscribing",
                        m.inst.dashed()
                    ));
                }
                BookState::Live(_) if m.activity.stale(stale) => {
                    let inst = m.inst.dashed();
                    status.stale(
                        Some(&inst),
                        &format!("coinbase {inst}: book silent for {stale:?}"),
                    );
                    why = Some(format!("{inst}: book silent"));
                }
                _ => {}
            }
        }
        match why {
            Some(why) => {
                self.resubscribe_books(&why, Leg::Current, legs, status)
                    .await
            }
            None => Ok(()),
        }
    }
}
