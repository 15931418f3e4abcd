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

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::net::Ws;

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
    pub async fn recv(&mut self) -> (Leg, Option<Result<Message, tungstenite::Error>>) {
        match &mut self.next {
            None => (Leg::Current, self.current.next().await),
            Some((next, _)) => tokio::select! {
                m = self.current.next() => (Leg::Current, m),
                m = next.next() => (Leg::Next, m),
            },
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
