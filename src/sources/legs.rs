//! Make-before-break connection rotation for the exchange streams.
//!
//! A session reads one WebSocket, the current leg. Before the venue would
//! cut it (Binance closes stream connections at 24 h) or when the venue
//! announces a shutdown (Binance `serverShutdown`, OKX notice `64008`), the
//! connector opens and subscribes a second leg while the first keeps
//! streaming. Messages of both legs go through the same handler, which is
//! idempotent (trades deduplicated by id, book updates by their venue
//! sequence), so the overlap publishes nothing twice. Once the new leg is
//! ready the old one is closed: subscribers see neither a gap nor a
//! duplicate across the seam.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::net::{self, Ws};
use super::{SourceError, SourceStatus};

/// A new leg that is not ready this long after opening replaces the old
/// one anyway (the old one may be about to go).
pub const SWITCH_TIMEOUT: Duration = Duration::from_secs(15);
/// After a failed attempt to open a new leg, the next try waits this long.
pub const RETRY_ROTATION: Duration = Duration::from_secs(5);

/// Which leg a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    Current,
    Next,
}

/// What [`Legs::recv`] yields: a leg's next message, `None` when its
/// stream ended.
pub type Received = Option<Result<Message, tungstenite::Error>>;

/// Whether `msg` ends its leg (a close frame, an error or the stream's end).
pub fn ended(msg: &Received) -> bool {
    matches!(msg, Some(Ok(Message::Close(_))) | Some(Err(_)) | None)
}

/// Sleeps until `at`; never wakes when there is no `at` (a `select!` branch
/// for a deadline that may not be set).
pub async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reports that `venue` opens a new connection for reason `why`.
pub fn announce(venue: &str, status: &SourceStatus, why: &str) {
    status.rotating(why);
    tracing::info!(source = venue, reason = %why, "opening a new connection (make-before-break)");
}

/// When an overlapping rotation may switch, for venues whose handler drops
/// what the other leg already delivered (Binance, OKX, Bybit): the next
/// leg's subscribe requests are all answered, it sent new data, and the old
/// leg then repeated data the new one had sent (it caught up: nothing can
/// be missed by closing it).
#[derive(Debug, Default)]
pub struct Overlap {
    /// The next leg's unanswered subscribe ids.
    pending: HashSet<String>,
    next_data: bool,
    caught_up: bool,
}

impl Overlap {
    /// A next leg was opened with subscribe requests `ids` outstanding.
    pub fn start(&mut self, ids: HashSet<String>) {
        *self = Self {
            pending: ids,
            ..Self::default()
        };
    }

    /// `leg` delivered new market data.
    pub fn data(&mut self, leg: Leg) {
        self.next_data |= leg == Leg::Next;
    }

    /// `leg` delivered market data already had from the other leg.
    pub fn repeat(&mut self, leg: Leg) {
        self.caught_up |= leg == Leg::Current && self.next_data;
    }

    /// `leg` answered subscribe request `id`.
    pub fn ack(&mut self, leg: Leg, id: &str) {
        if leg == Leg::Next {
            self.pending.remove(id);
        }
    }

    /// Whether the next leg can replace the current one.
    pub fn ready(&self) -> bool {
        self.next_data && self.caught_up && self.pending.is_empty()
    }
}

/// The current leg and, during a rotation, the next one.
pub struct Legs {
    current: Ws,
    next: Option<(Ws, Instant)>,
    rotate_after: Duration,
    /// When the next rotation is due.
    pub rotate_at: Instant,
}

impl Legs {
    /// One leg, rotated `rotate_after` from now.
    pub fn new(ws: Ws, rotate_after: Duration) -> Self {
        Self {
            current: ws,
            next: None,
            rotate_after,
            rotate_at: Instant::now() + rotate_after,
        }
    }

    /// When a rotation is due; none while one is under way.
    pub fn rotation_due(&self) -> Option<Instant> {
        (!self.rotating()).then_some(self.rotate_at)
    }

    /// Whether a second leg is open.
    pub fn rotating(&self) -> bool {
        self.next.is_some()
    }

    /// When the open second leg must be switched to, ready or not.
    pub fn switch_deadline(&self) -> Option<Instant> {
        self.next
            .as_ref()
            .map(|(_, opened)| *opened + SWITCH_TIMEOUT)
    }

    /// Adds `ws` as the next leg.
    pub fn start(&mut self, ws: Ws) {
        self.next = Some((ws, Instant::now()));
    }

    /// The leg's socket.
    pub fn ws(&mut self, leg: Leg) -> Option<&mut Ws> {
        match leg {
            Leg::Current => Some(&mut self.current),
            Leg::Next => self.next.as_mut().map(|(ws, _)| ws),
        }
    }

    /// The next message of either leg.
    pub async fn recv(&mut self) -> (Leg, Received) {
        match &mut self.next {
            None => (Leg::Current, self.current.next().await),
            Some((next, _)) => tokio::select! {
                m = self.current.next() => (Leg::Current, m),
                m = next.next() => (Leg::Next, m),
            },
        }
    }

    /// Adds the leg `opened` for a rotation and returns what came with it;
    /// when it could not be opened, logs that and keeps the current leg.
    pub fn start_opened<T>(
        &mut self,
        venue: &str,
        opened: Result<(Ws, T), SourceError>,
    ) -> Option<T> {
        match opened {
            Ok((ws, extra)) => {
                self.start(ws);
                Some(extra)
            }
            Err(e) => {
                tracing::warn!(source = venue, error = %e, "new connection failed; keeping the current one");
                self.abandon_next();
                None
            }
        }
    }

    /// Reads `msg`, which [`Legs::recv`] returned from `leg`: the text of a
    /// text frame; `None` for another frame (pings are answered by
    /// tungstenite) and for an ended leg the other one replaces; the error
    /// ending the session when no leg is left.
    pub async fn text(
        &mut self,
        leg: Leg,
        msg: Received,
    ) -> Result<Option<Utf8Bytes>, SourceError> {
        match msg {
            Some(Ok(Message::Text(text))) => Ok(Some(text)),
            msg if ended(&msg) => {
                if self.lost(leg).await {
                    return Ok(None); // the other leg carries on
                }
                Err(match msg {
                    Some(Err(e)) => net::NetError::from(e).into(),
                    _ => SourceError::Closed,
                })
            }
            _ => Ok(None),
        }
    }

    /// Makes the next leg current, closes the old one and logs it.
    pub async fn switch_logged(&mut self, venue: &str) {
        if self.switch().await {
            tracing::info!(source = venue, "switched to the new connection");
        }
    }

    /// Makes the next leg current and closes the old one. False when there
    /// was no next leg.
    pub async fn switch(&mut self) -> bool {
        let Some((next, _)) = self.next.take() else {
            return false;
        };
        let mut old = std::mem::replace(&mut self.current, next);
        self.rotate_at = Instant::now() + self.rotate_after;
        // a polite close, bounded: the old leg is done either way
        let _ = tokio::time::timeout(Duration::from_secs(1), old.close(None)).await;
        true
    }

    /// A leg's stream ended: a lost next leg is dropped, a lost current one
    /// is replaced by the next. True when a leg is left to go on with.
    pub async fn lost(&mut self, leg: Leg) -> bool {
        match leg {
            Leg::Next => {
                self.abandon_next();
                true
            }
            Leg::Current => self.switch().await,
        }
    }

    /// Drops the next leg (it failed); the current one goes on.
    pub fn abandon_next(&mut self) {
        self.next = None;
        self.rotate_at = Instant::now() + RETRY_ROTATION;
    }

    /// Sends `msg` on a leg.
    pub async fn send(&mut self, leg: Leg, msg: Message) -> Result<(), tungstenite::Error> {
        match self.ws(leg) {
            Some(ws) => ws.send(msg).await,
            None => Ok(()),
        }
    }
}
