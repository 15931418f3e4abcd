//! The harness both peer tests share (`loadtest/tests/uws_peer.rs` and the
//! limit probe's own `tests/limit_probe.rs`): start a peer process on an
//! ephemeral port, connect raw WebSocket clients, read its frames, and the
//! two checks every peer must pass.
//!
//! - A reading client gets binary frames of exactly [`SIZE`] bytes whose
//!   sequence numbers start where it joined and go up by one, with publish
//!   times of this run.
//! - A client that stops reading (a 4 KiB receive buffer) is skipped by the
//!   server, which counts it (its stderr line `skipped N ...`, N > 0); once
//!   it reads again its stream still parses frame by frame and jumps
//!   forward in sequence (the skipped messages), then goes on by one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Payload bytes per message (a 2-byte frame header: under 126).
pub const SIZE: usize = 64;
/// Hang guard for every wait (never a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Peer {
    pub child: Child,
    pub addr: SocketAddr,
    /// The peer's stderr lines after `listening on`.
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(program: &Path, args: &[&str]) -> Peer {
    let mut child = Command::new(program)
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--size", &SIZE.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("{} printed nothing ({e})", program.display()));
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{}: unexpected first line {first:?}", program.display()));
    Peer {
        child,
        addr,
        lines: rx,
    }
}

/// A connected, upgraded client; `rcvbuf` shrinks its receive buffer
/// before the connect (so a stalled client backs the server up at once).
pub fn client(addr: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n).expect("SO_RCVBUF");
        }
        socket.connect(addr).await.expect("connect")
    });
    let mut stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
        .write_all(
            format!(
                "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("send upgrade");
    // the response head, byte by byte so no frame byte is consumed
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read upgrade response");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// The next frame's (seq, publish time ns); checks its shape.
pub fn frame(stream: &mut TcpStream) -> (u64, i64) {
    let mut buf = [0u8; 2 + SIZE];
    stream.read_exact(&mut buf).expect("read a frame");
    assert_eq!(buf[0], 0x82, "a final binary frame: {:02x?}", &buf[..2]);
    assert_eq!(buf[1] as usize, SIZE, "unmasked, {SIZE} bytes");
    let seq = u64::from_le_bytes(buf[2..10].try_into().expect("8 bytes"));
    let t = i64::from_le_bytes(buf[10..18].try_into().expect("8 bytes"));
    assert!(buf[18..].iter().all(|&b| b == 0), "zero padding");
    (seq, t)
}

pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

pub fn reads_consecutive_frames(peer: &Peer) {
    let began = unix_nanos();
    let mut c = client(peer.addr, None);
    let (mut last, _) = frame(&mut c);
    assert!(last >= 1);
    for _ in 0..2000 {
        let (seq, t) = frame(&mut c);
        if seq != last + 1 {
            // a reader starved by a loaded machine may be skipped too; that
            // is the policy, not a broken stream (tested below)
            assert!(seq > last + 1, "seq went back: {last} -> {seq}");
        }
        // a publish time of this run (a bound of seconds: Node's clock anchor
        // may lead the system clock by microseconds, and this is no timing)
        let now = unix_nanos();
        assert!(
            t > began - 1_000_000_000 && t < now + 1_000_000_000,
            "publish time {t} not within this run ({began}..{now})"
        );
        last = seq;
    }
}

pub fn skips_a_stalled_client_and_keeps_its_stream_whole(peer: &Peer) {
    let mut stalled = client(peer.addr, Some(4096));
    let (first, _) = frame(&mut stalled);
    // stop reading until the server says it skipped someone
    let skipped = loop {
        let line = peer
            .lines
            .recv_timeout(PATIENCE)
            .expect("the peer reports skipped messages");
        let n = line
            .strip_prefix("skipped ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n.filter(|&n| n > 0) {
            break n;
        }
    };
    assert!(skipped > 0);
    // reading again: every frame parses (what the kernel and the server
    // still held first), the sequence jumps forward (the skipped messages)
    // and goes on from there
    let give_up = Instant::now() + PATIENCE;
    let mut last = first;
    loop {
        let (seq, _) = frame(&mut stalled);
        assert!(seq > last, "seq went back: {last} -> {seq}");
        let jumped = seq > last + 1;
        last = seq;
        if jumped {
            break;
        }
        assert!(Instant::now() < give_up, "no jump in seq up to {seq}");
    }
    for _ in 0..1000 {
        let (seq, _) = frame(&mut stalled);
        assert!(seq > last, "seq went back: {last} -> {seq}");
        last = seq;
    }
}
