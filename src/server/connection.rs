//! One WebSocket connection's I/O, in one task that owns the socket and the
//! [`Session`].
//!
//! The task sleeps until something is due (client bytes, a doorbell ring
//! from a subscribed channel, a heartbeat tick, shutdown), then drains
//! everything pending and writes it with vectored writes: many frames per
//! syscall, each frame the shared bytes of the encoded event.
//!
//! Client frames become messages in the pure [`Assembler`]
//! (`protocol::ws`): this task only moves bytes, applies the request rate
//! and hands complete messages to the session.
//!
//! Memory: an idle connection holds no read buffer (client bytes are
//! buffered only while a message is incomplete, see `protocol::ws`), and
//! the task's future keeps no I/O scratch across awaits (read chunks and
//! IoSlice arrays live on the stack inside `poll`).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::sync::WaitForCancellationFuture;
use tracing::{Instrument, debug};

use super::ServerContext;
use super::inbound::{handle_inbound_message, rate_close};
use super::limits::{RateDecision, RequestLimiter};
use super::probe::{LagProbe, Verdict};
use super::session::{CloseRequest, Outbound, Session};
use super::socket::SendQueue;
use super::wake::OtherWakes;
use super::writer::{self, WriteEnd};
use crate::metrics::{dec, inc};
use crate::protocol::pb::ClientMessage;
use crate::protocol::ws::frame::{OP_PING, OP_PONG, close_frame, frame};
use crate::protocol::ws::{Assembler, MessageError, Received};
use crate::protocol::{Format, close, now_ns};

/// Frames moved per drain step; also bounds one write's batch.
const MAX_BATCH: usize = 256;
/// Drain steps before the connection looks at its socket and timers again:
/// a connection that always has more to send must still read the client's
/// requests and pongs (else a busy client would time out its heartbeat).
const MAX_STEPS_PER_DRAIN: usize = 4;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 4096;
/// How long the closing handshake may take before the socket is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Most queued replies written out after a close is decided while reading
/// (the answers to the frames read before the one that closed).
const MAX_REPLIES_BEFORE_CLOSE: usize = 4 * MAX_BATCH;

/// Why the connection loop ended.
enum End {
    /// Send this close frame, then linger for the client's close.
    Close(CloseRequest),
    /// The client sent close: echo its code and finish.
    EchoClose(u16),
    /// The socket is gone or unusable; nothing more to send.
    Gone,
}

/// What woke the connection.
enum Wake {
    Shutdown,
    Read(std::io::Result<usize>),
    Rung,
    Heartbeat,
    AuthDeadline,
    /// The lag probe's verdict may have changed.
    Probe,
    /// A conflated subscription is due (`session/conflation.rs`).
    Conflation,
}

struct Connection<R, W> {
    read: R,
    write: W,
    ctx: Arc<ServerContext>,
    format: Format,
    /// Client bytes not yet parsed; empty (unallocated) between messages.
    inbuf: Vec<u8>,
    /// Client frames to messages (the fragmented message in progress).
    assembler: Assembler,
    /// When the client last sent anything (bytes of any frame).
    last_seen_ns: i64,
    /// Whether the socket accepted a batch of events since the last
    /// heartbeat tick: a client that drains its socket is alive even when
    /// its pong waits behind its own backlog (liveness by progress).
    events_accepted: bool,
    /// The last heartbeat tick that found `events_accepted`.
    last_progress_ns: i64,
    /// Client requests per second (`--max-requests-per-second`).
    rate: RequestLimiter,
    /// When the client last subscribed: history it asked for (resume) is
    /// not lag, so event ages count from here at the earliest.
    subscribed_at_ns: i64,
    /// The rest of a frame cut by a write stall, written before the close.
    unfinished: Vec<u8>,
    /// Where the client really is (in-band pings, see `probe.rs`).
    probe: LagProbe,
    /// A subscribe held until a cluster edge has its channels (see
    /// `cluster::edge`); always `None` on a single node.
    deferred: Option<Box<ClientMessage>>,
}

/// Serves one upgraded connection until it closes.
pub(crate) async fn serve<R, W>(
    read: R,
    write: W,
    format: Format,
    ctx: Arc<ServerContext>,
    conn_id: u64,
    token: Option<String>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + SendQueue + Unpin + Send + 'static,
{
    let span = tracing::debug_span!("conn", conn_id, format = format.as_str());
    async move {
        inc(&ctx.metrics.connections);
        inc(&ctx.metrics.connections_total);
        let session = Session::new(format, ctx.clone(), format!("{conn_id:016x}"), token);
        let mut conn = Connection {
            read,
            write,
            ctx: ctx.clone(),
            format,
            inbuf: Vec::new(),
            assembler: Assembler::new(),
            last_seen_ns: now_ns(),
            events_accepted: false,
            last_progress_ns: 0,
            rate: RequestLimiter::new(ctx.config.max_requests_per_second),
            subscribed_at_ns: 0,
            unfinished: Vec::new(),
            probe: LagProbe::new(ctx.config.max_lag_age, ctx.config.write_timeout, now_ns()),
            deferred: None,
        };
        let end = conn.run(session).await;
        let linger = match end {
            End::Close(req) => {
                debug!(code = req.code, reason = req.reason, "closing");
                // a client that stopped reading: let the kernel take the
                // close frame into the send buffer's free space
                conn.write.lift_unsent_limit();
                let mut f = std::mem::take(&mut conn.unfinished);
                f.extend_from_slice(&close_frame(req.code, req.reason));
                let _ = tokio::time::timeout(CLOSE_LINGER, conn.write.write_all(&f)).await;
                true
            }
            End::EchoClose(code) => {
                let _ = tokio::time::timeout(
                    CLOSE_LINGER,
                    conn.write.write_all(&close_frame(code, "")),
                )
                .await;
                false
            }
            End::Gone => false,
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, conn.write.shutdown()).await;
        if linger {
            // Read and discard until the client closes, so our close frame
            // is not lost to a reset caused by unread client data.
            let _ = tokio::time::timeout(CLOSE_LINGER, conn.discard_until_eof()).await;
        }
        dec(&ctx.metrics.connections);
    }
    .instrument(span)
    .await
}

/// Reads one chunk from `read` and appends it to `inbuf`.
fn poll_read_into<R: AsyncRead + Unpin>(
    read: &mut R,
    inbuf: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    // Uninitialised: this runs on every wake-up, so no 4 KiB memset.
    let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut buf = ReadBuf::uninit(&mut chunk);
    ready!(Pin::new(read).poll_read(cx, &mut buf))?;
    inbuf.extend_from_slice(buf.filled());
    Poll::Ready(Ok(buf.filled().len()))
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    /// Resynchronises the session when the events just written were
    /// published more than `--max-lag-age` ago (counted from the latest
    /// subscribe at the earliest): the client is that far behind the feed,
    /// whatever the size of its backlog. Channels with a backlog get
    /// `lagged` and a snapshot (or the connection 4008, per policy).
    fn check_lag_age(&self, session: &mut Session, oldest_ns: Option<i64>) -> Result<(), End> {
        let max = self.ctx.config.max_lag_age;
        let Some(oldest) = oldest_ns else {
            return Ok(());
        };
        if max.is_zero() {
            return Ok(());
        }
        let age_ns = now_ns() - oldest.max(self.subscribed_at_ns);
        // events held for a conflation interval are not late
        if age_ns > max.as_nanos() as i64 + session.conflation_allowance_ns() {
            session.resync_lagging().map_err(End::Close)?;
        }
        Ok(())
    }

    async fn run(&mut self, mut session: Session) -> End {
        let ctx = self.ctx.clone();
        let bell = session.doorbell().clone();
        let interval = ctx.config.heartbeat_interval.max(Duration::from_millis(10));
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        // Grows on the first busy drain; idle connections never pay for it.
        let mut batch = Vec::new();
        // Registered once on the server-wide token, not once per wake-up.
        let shutdown = ctx.shutdown.cancelled();
        tokio::pin!(shutdown);
        // Authentication deadline (token expiry, or time to show one); the
        // timer is re-armed only when the deadline changes.
        let never = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let auth_timer = tokio::time::sleep_until(never);
        tokio::pin!(auth_timer);
        let mut armed_for = None;
        let probe_timer = tokio::time::sleep_until(never);
        tokio::pin!(probe_timer);
        let mut probe_armed_for = None;
        let others = OtherWakes::new();
        // One timer for all the conflated subscriptions: the earliest due
        // one with events pending. Never armed for a session without them.
        let conflation_timer = tokio::time::sleep_until(never);
        tokio::pin!(conflation_timer);
        let mut conflation_armed_for = None;
        loop {
            if let Err(end) = self
                .drain(&mut session, &mut batch, shutdown.as_mut())
                .await
            {
                return end;
            }
            // a request (or the handshake's token) was refused: the error
            // went out with the drain above, now the close
            if let Some(close) = session.take_close() {
                return End::Close(close);
            }
            let deadline = session.auth_deadline_ns();
            if deadline != armed_for {
                armed_for = deadline;
                let when = deadline.map_or(never, |d| {
                    tokio::time::Instant::now() + Duration::from_nanos((d - now_ns()).max(0) as u64)
                });
                auth_timer.as_mut().reset(when);
                others.mark();
            }
            let now = now_ns();
            let probe_at = self.probe.next_change_ns(now);
            if probe_at != probe_armed_for {
                probe_armed_for = probe_at;
                let when = probe_at.map_or(never, |t| {
                    tokio::time::Instant::now() + Duration::from_nanos((t - now).max(0) as u64)
                });
                probe_timer.as_mut().reset(when);
                others.mark();
            }
            let conflation_at = session.conflation_wake_ns(now);
            if conflation_at != conflation_armed_for {
                conflation_armed_for = conflation_at;
                let when = conflation_at.map_or(never, |t| {
                    tokio::time::Instant::now() + Duration::from_nanos((t - now).max(0) as u64)
                });
                conflation_timer.as_mut().reset(when);
                others.mark();
            }
            // while events are held back, their doorbell waits; so it does
            // while only conflated channels are followed and their timer
            // is armed (nothing is due before it)
            let holding =
                self.probe.holding(now) || (conflation_at.is_some() && session.events_deferred());
            let conflating = conflation_armed_for.is_some();
            // The doorbell alone woke the task for most events: the other
            // sources are polled only when one of them fired (or a timer
            // was re-armed), see `wake.rs`; a fired source goes before the
            // doorbell, which under load is nearly always ready.
            let wake = poll_fn(|cx| {
                if others.take_fired(cx.waker()) {
                    let mut ocx = Context::from_waker(others.waker());
                    let woke = if shutdown.as_mut().poll(&mut ocx).is_ready() {
                        Some(Wake::Shutdown)
                    } else if let Poll::Ready(r) =
                        poll_read_into(&mut self.read, &mut self.inbuf, &mut ocx)
                    {
                        Some(Wake::Read(r))
                    } else if heartbeat.poll_tick(&mut ocx).is_ready() {
                        Some(Wake::Heartbeat)
                    } else if auth_timer.as_mut().poll(&mut ocx).is_ready() {
                        Some(Wake::AuthDeadline)
                    } else if probe_timer.as_mut().poll(&mut ocx).is_ready() {
                        Some(Wake::Probe)
                    // never polled by a connection without conflated
                    // subscriptions
                    } else if conflating && conflation_timer.as_mut().poll(&mut ocx).is_ready() {
                        Some(Wake::Conflation)
                    } else {
                        None
                    };
                    if let Some(woke) = woke {
                        // the sources after it may be ready too
                        others.mark();
                        return Poll::Ready(woke);
                    }
                }
                if !holding && bell.poll_rung(cx).is_ready() {
                    return Poll::Ready(Wake::Rung);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Shutdown => {
                    return End::Close(CloseRequest {
                        code: close::GOING_AWAY,
                        reason: "server shutting down",
                    });
                }
                Wake::Read(Ok(0) | Err(_)) => return End::Gone,
                Wake::Read(Ok(_)) => {
                    self.last_seen_ns = now_ns();
                    let mut end = self.process_inbound(&mut session);
                    // cluster edge: a subscribe waits for its channels
                    while end.is_none()
                        && let Some(request) = self.deferred.take()
                    {
                        if let Some(edge) = ctx.cluster.get().and_then(|n| n.edge()) {
                            Box::pin(edge.prepare(&request)).await;
                        }
                        session.handle(*request);
                        self.rate.charge(session.take_work_units());
                        end = self.process_inbound(&mut session);
                    }
                    if let Some(end) = end {
                        // the answers to the frames before the one that ends
                        // the connection go out first (pongs, errors)
                        if !matches!(end, End::Gone) {
                            self.flush_replies(&mut session, &mut batch, shutdown.as_mut())
                                .await;
                        }
                        return end;
                    }
                }
                Wake::Rung => {}
                Wake::Probe => probe_armed_for = None,
                Wake::Conflation => conflation_armed_for = None,
                Wake::AuthDeadline => {
                    if let Some(close) = session.auth_expired(now_ns()) {
                        // the UNAUTHORIZED error goes out before the close
                        if let Err(end) = self
                            .drain(&mut session, &mut batch, shutdown.as_mut())
                            .await
                        {
                            return end;
                        }
                        return End::Close(close);
                    }
                    armed_for = None; // fired early (clock skew): re-arm
                }
                Wake::Heartbeat => {
                    // alive while it sends anything or its socket accepts
                    // events: closed only after two intervals of neither
                    let now = now_ns();
                    if std::mem::take(&mut self.events_accepted) {
                        self.last_progress_ns = now;
                    }
                    let alive_at = self.last_seen_ns.max(self.last_progress_ns);
                    if now - alive_at > 2 * interval.as_nanos() as i64 {
                        inc(&ctx.metrics.heartbeat_timeouts);
                        return End::Close(CloseRequest {
                            code: close::HEARTBEAT_TIMEOUT,
                            reason: "heartbeat timeout: nothing received or read for two intervals; reconnect",
                        });
                    }
                    session.push_raw(frame(OP_PING, b""));
                }
            }
        }
    }

    /// Handles every complete frame in `inbuf`; frees the buffer when empty.
    fn process_inbound(&mut self, session: &mut Session) -> Option<End> {
        let mut consumed = 0;
        let edge = self.ctx.cluster.get().is_some_and(|n| n.edge().is_some());
        let end = loop {
            if self.deferred.is_some() {
                break None; // the run loop prepares it, then comes back
            }
            let (used, received) = match self.assembler.next(&mut self.inbuf[consumed..]) {
                Ok(Some(frame)) => frame,
                Ok(None) => break None,
                Err(e) => break Some(self.refused(e)),
            };
            consumed += used;
            match received {
                Received::Fragment => {}
                Received::Close(code) => break Some(End::EchoClose(code)),
                // pings cost a pong each: they count against the request
                // rate (a refused ping is not answered)
                Received::Ping(payload) => match self.rate.admit() {
                    RateDecision::Allow => session.push_raw(frame(OP_PONG, payload)),
                    RateDecision::Refuse => {}
                    RateDecision::Close => break Some(End::Close(rate_close())),
                },
                Received::Pong(payload) => self.probe.on_pong(payload, now_ns()),
                Received::Message { text, payload } => {
                    if let Some(close) = handle_inbound_message(
                        session,
                        self.format,
                        text,
                        &payload,
                        &mut self.rate,
                        &mut self.subscribed_at_ns,
                        edge.then_some(&mut self.deferred),
                    ) {
                        break Some(End::Close(close));
                    }
                }
            }
        };
        self.inbuf.drain(..consumed);
        if self.inbuf.is_empty() {
            self.inbuf = Vec::new(); // idle connections hold no read buffer
        }
        end
    }

    /// The close for client frames that cannot be read as messages.
    fn refused(&self, e: MessageError) -> End {
        match e {
            MessageError::TooBig(_) | MessageError::TooManyFragments(_) => {
                inc(&self.ctx.metrics.oversized_frames);
            }
            MessageError::Frame(_) | MessageError::BadFragmentation => {
                debug!(error = %e, "protocol error");
            }
            MessageError::InvalidUtf8 | MessageError::BadClose { .. } => {}
        }
        End::Close(CloseRequest {
            code: e.close_code(),
            reason: e.close_reason(),
        })
    }

    /// Writes the replies already queued (control frames only: no new
    /// events) before a close decided while reading; bounded, and best
    /// effort (a failed write just ends it).
    async fn flush_replies(
        &mut self,
        session: &mut Session,
        batch: &mut Vec<Outbound>,
        mut shutdown: Pin<&mut WaitForCancellationFuture<'_>>,
    ) {
        let mut sent = 0;
        while sent < MAX_REPLIES_BEFORE_CLOSE {
            batch.clear();
            session.collect_control(batch, MAX_BATCH);
            if batch.is_empty() {
                return;
            }
            sent += batch.len();
            if self.write_batch(batch, shutdown.as_mut()).await.is_err() {
                return;
            }
        }
    }

    async fn discard_until_eof(&mut self) {
        loop {
            self.inbuf.clear();
            match poll_fn(|cx| poll_read_into(&mut self.read, &mut self.inbuf, cx)).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Writes everything the session has due.
    async fn drain(
        &mut self,
        session: &mut Session,
        batch: &mut Vec<Outbound>,
        mut shutdown: Pin<&mut WaitForCancellationFuture<'_>>,
    ) -> Result<(), End> {
        match self.probe.verdict(now_ns()) {
            Verdict::Flow | Verdict::Hold => {}
            Verdict::Resync => session.resync_lagging().map_err(End::Close)?,
            Verdict::NotReading => {
                inc(&self.ctx.metrics.slow_consumer_closes);
                return Err(End::Close(CloseRequest {
                    code: close::SLOW_CONSUMER,
                    reason: "slow consumer: not reading",
                }));
            }
        }
        for _ in 0..MAX_STEPS_PER_DRAIN {
            batch.clear();
            // checked per batch: a drain may write several
            let now = now_ns();
            let max = if !self.probe.holding(now) {
                let bell = session.doorbell();
                // one swap: a load before the clear raced with rings
                let rung = bell.clear();
                // events are due: a probe goes out ahead of them
                if rung && let Some(ping) = self.probe.before_events(now) {
                    session.push_raw(ping);
                }
                let max = self.probe.batch_limit(MAX_BATCH);
                session.collect(batch, max).map_err(End::Close)?;
                max
            } else {
                // held back: replies, pings and `lagged` only
                session.collect_control(batch, MAX_BATCH);
                MAX_BATCH
            };
            if batch.is_empty() {
                return Ok(());
            }
            self.ctx.metrics.queue_depth.observe(batch.len() as f64);
            match self.write_batch(batch, shutdown.as_mut()).await {
                Ok(oldest_ns) => self.check_lag_age(session, oldest_ns)?,
                Err(WriteEnd::Failed | WriteEnd::Shutdown) => return Err(End::Gone),
                Err(WriteEnd::Stalled(rest)) => {
                    inc(&self.ctx.metrics.slow_consumer_closes);
                    self.unfinished = rest;
                    return Err(End::Close(CloseRequest {
                        code: close::SLOW_CONSUMER,
                        reason: "slow consumer: not reading",
                    }));
                }
            }
            // A short batch took everything that was due; anything published
            // since rang the doorbell (cleared above), so the loop comes back.
            if batch.len() < max {
                return Ok(());
            }
        }
        // More is due: make sure the loop comes straight back after one
        // look at the socket and timers.
        session.doorbell().ring();
        Ok(())
    }

    /// Writes one batch (see [`writer::write_batch`]) and tells the lag
    /// probe what went out; returns the publish time of its oldest event.
    async fn write_batch(
        &mut self,
        batch: &[Outbound],
        shutdown: Pin<&mut WaitForCancellationFuture<'_>>,
    ) -> Result<Option<i64>, WriteEnd> {
        let written = writer::write_batch(
            &mut self.write,
            batch,
            self.format,
            &self.ctx.metrics,
            self.ctx.config.write_timeout,
            shutdown,
        )
        .await?;
        self.probe.written(written.bytes, batch.len() as u64);
        // pings and replies alone do not count: a dead peer's socket
        // accepts those for a long time
        self.events_accepted |= written.oldest_ns.is_some();
        Ok(written.oldest_ns)
    }
}

#[cfg(test)]
mod tests {
    /// The task future of an idle connection is most of its memory: keep it
    /// small (no buffers held inline across awaits).
    #[tokio::test]
    async fn connection_future_stays_small() {
        let ctx = crate::server::tests::context().await;
        let (a, _b) = tokio::io::duplex(64);
        let (r, w) = tokio::io::split(a);
        let fut = super::serve(r, w, crate::protocol::Format::Proto, ctx, 1, None);
        let size = std::mem::size_of_val(&fut);
        println!("connection future: {size} bytes");
        assert!(size < 4096, "connection future is {size} bytes");
    }
}
