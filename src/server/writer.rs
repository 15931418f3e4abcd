//! The write side of a connection: a batch of shared frames out in as few
//! vectored writes as the kernel allows, with the stall timer.
//!
//! Public (not re-exported) so that `benches/fanout.rs` measures this code
//! itself rather than a copy of it.

use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio_util::sync::WaitForCancellationFuture;

use super::session::Outbound;
use crate::metrics::{Metrics, add};
use crate::protocol::{Format, now_ns};

/// IoSlices per `writev` (well under IOV_MAX).
const IOV_PER_WRITE: usize = 64;

/// Why a batch write stopped.
pub enum WriteEnd {
    Failed,
    /// No progress for `--write-timeout`; holds the unwritten rest of a
    /// frame cut in the middle (empty at a frame boundary).
    Stalled(Vec<u8>),
    Shutdown,
}

/// What a batch write put on the wire.
pub struct Written {
    pub bytes: u64,
    /// Publish time of the batch's oldest event (none: control frames only).
    pub oldest_ns: Option<i64>,
}

/// The bytes of one outbound frame in `format` (shared, never copied).
fn frame_bytes<'a>(out: &'a Outbound, format: Format, metrics: &Metrics) -> &'a [u8] {
    match out {
        Outbound::Control(b) => b,
        Outbound::Event(e) => e.frame(format, metrics),
    }
}

/// One `writev` of the batch from `(frame, offset)` on.
fn poll_write_from<W: AsyncWrite + Unpin>(
    io: &mut W,
    batch: &[Outbound],
    (first, offset): (usize, usize),
    format: Format,
    metrics: &Metrics,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    let mut storage = [IoSlice::new(&[]); IOV_PER_WRITE];
    let mut n = 0;
    for (slot, out) in storage.iter_mut().zip(&batch[first..]) {
        let bytes = frame_bytes(out, format, metrics);
        *slot = IoSlice::new(if n == 0 { &bytes[offset..] } else { bytes });
        n += 1;
    }
    Pin::new(io).poll_write_vectored(cx, &storage[..n])
}

/// One batch of frames in as few `writev` calls as the kernel allows.
///
/// hot path: no allocation; IoSlices point at the shared frames. Each
/// `writev` is first tried without waiting; only a full socket buffer
/// arms the stall timer (`write_timeout`, `--write-timeout`) and watches
/// for shutdown.
pub async fn write_batch<W: AsyncWrite + Unpin>(
    io: &mut W,
    batch: &[Outbound],
    format: Format,
    metrics: &Metrics,
    write_timeout: Duration,
    mut shutdown: Pin<&mut WaitForCancellationFuture<'_>>,
) -> Result<Written, WriteEnd> {
    let mut bytes_total = 0u64;
    let mut cursor = (0usize, 0usize);
    while cursor.0 < batch.len() {
        let first_try = {
            let mut noop = Context::from_waker(Waker::noop());
            poll_write_from(io, batch, cursor, format, metrics, &mut noop)
        };
        let written = match first_try {
            Poll::Ready(r) => r,
            Poll::Pending => {
                let write = poll_fn(|cx| poll_write_from(io, batch, cursor, format, metrics, cx));
                tokio::select! {
                    r = tokio::time::timeout(write_timeout, write) => match r {
                        Ok(r) => r,
                        Err(_) => {
                            let rest = match cursor.1 {
                                0 => Vec::new(),
                                done => frame_bytes(&batch[cursor.0], format, metrics)[done..].to_vec(),
                            };
                            return Err(WriteEnd::Stalled(rest));
                        }
                    },
                    _ = shutdown.as_mut() => return Err(WriteEnd::Shutdown),
                }
            }
        };
        let mut n = match written {
            Ok(0) | Err(_) => return Err(WriteEnd::Failed),
            Ok(n) => n,
        };
        bytes_total += n as u64;
        while n > 0 {
            let left = frame_bytes(&batch[cursor.0], format, metrics).len() - cursor.1;
            if n >= left {
                n -= left;
                cursor = (cursor.0 + 1, 0);
            } else {
                cursor.1 += n;
                n = 0;
            }
        }
    }
    add(&metrics.messages_delivered, batch.len() as u64);
    add(&metrics.bytes_delivered, bytes_total);
    let oldest_ns = batch
        .iter()
        .filter_map(|o| match o {
            Outbound::Event(e) => Some(e.publish_time_ns),
            Outbound::Control(_) => None,
        })
        .min();
    if let Some(t) = oldest_ns {
        metrics.write_latency.observe((now_ns() - t) as f64 / 1e9);
    }
    Ok(Written {
        bytes: bytes_total,
        oldest_ns,
    })
}
