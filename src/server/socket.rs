//! What the kernel may buffer for one client: socket options set at
//! accept, and their release when a stalled client is closed.
//!
//! A client that reads slower than the feed must be noticed by the server
//! (see `connection.rs`), not hidden in kernel buffers: with autotuning a
//! socket's send buffer grows to several MiB, which at a slow reader's pace
//! is tens of seconds of stale data the server cannot see. So the send
//! buffer is bounded (`--socket-send-buffer`) and the kernel is asked to
//! take no more while a little is still unsent (`--socket-unsent-limit`,
//! TCP_NOTSENT_LOWAT): the backlog then stays in the server's rings, where
//! its size and age are measured and the client is told with `lagged`.

use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use super::Settings;

/// Sets the per-client socket options of `config` on an accepted stream
/// (best effort: a refused option leaves the kernel default).
pub(crate) fn tune(stream: &TcpStream, config: &Settings) {
    let _ = stream.set_nodelay(true);
    let sock = SockRef::from(stream);
    if config.socket_send_buffer > 0 {
        let _ = sock.set_send_buffer_size(config.socket_send_buffer);
    }
    if config.socket_unsent_limit > 0 {
        let _ = sock.set_tcp_notsent_lowat(config.socket_unsent_limit);
    }
}

/// A connection's write half that can let the kernel take a last frame.
pub(crate) trait SendQueue {
    /// Lifts the unsent-bytes limit, so that a close frame for a client
    /// that stopped reading still fits in the send buffer's free space.
    fn lift_unsent_limit(&self);
}

impl SendQueue for OwnedWriteHalf {
    fn lift_unsent_limit(&self) {
        // 0 restores the system default (no limit)
        let _ = SockRef::from(self.as_ref()).set_tcp_notsent_lowat(0);
    }
}

/// TLS and other wrapped streams: the option stays (the close frame goes
/// out only if the client reads again).
impl<T> SendQueue for tokio::io::WriteHalf<T> {
    fn lift_unsent_limit(&self) {}
}
