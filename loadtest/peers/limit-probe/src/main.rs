//! `peer-limit-probe`: the "practical ceiling" baseline peer for tickwire's
//! load tests: how much fan-out this machine's kernel does on one core when
//! the server does almost nothing per delivery.
//!
//! Design (the strongest of those issue 16 compared):
//! - ONE thread, non-blocking sockets, a `mio` event loop; a hand-written
//!   HTTP upgrade (no WebSocket library).
//! - Every message is framed ONCE into a shared log ([`log::FrameLog`], a
//!   ring of whole frames). A client is a byte cursor into it: no per-client
//!   queue, no per-client copy, memory is the ring whatever the clients.
//! - Each loop turn (a "tick", at most 1 ms apart): publish the messages due,
//!   then ONE `writev` per socket carrying everything that client has
//!   pending (the log from its cursor to the head: one or two slices). A
//!   short write leaves the cursor inside a frame; the next write continues
//!   there. A socket that answered `WouldBlock` is skipped until `mio` says
//!   it is writable again.
//! - A client more than half the ring behind (`--log-frames`, default 4096
//!   frames: 2 s at 1000 messages/s) skips to the head, checked every tick
//!   whether its socket takes bytes or not: the rest of the frame it is
//!   inside (a short write can stop mid-frame) is copied aside and written
//!   first, then it goes on from the newest frame boundary. The frames
//!   skipped are counted (summed over clients) and printed to stderr every
//!   5 s when they changed; the client sees them as a jump in the sequence.
//!   A client whose unsent bytes were overwritten before it got them (only
//!   possible if one turn publishes more than half the ring) is closed and
//!   counted.
//!
//! Pings are not answered and client input is discarded.
//!
//! The probe before this one (in git history before the issue 16 work)
//! copied each frame into every client's own output buffer (4 MiB cap per
//! client): 2.93M deliveries/s and 5.8 GB RSS at broadcast-10k. What it
//! showed, that per-client copies and queues are what cost at 10 000
//! clients, is said in BENCHMARKS.md; it is not kept.
//!
//! CLI (same for every peer, plus --log-frames):
//!   --listen HOST:PORT  (default 127.0.0.1:9001; port 0 picks a free port)
//!   --rate N            messages per second published in total (default 1000)
//!   --size BYTES        payload size of each message (default 200, minimum 16)
//!   --log-frames N      frames the shared log holds (default 4096, minimum 16)
//!
//! Wire format: the upgrade is accepted on any path (clients use `/ws`). Every
//! message goes to every connected client as ONE binary WebSocket frame of
//! exactly `--size` bytes:
//!   bytes 0..8   sequence number, u64 little-endian (starts at 1, +1 per
//!                message, the same for all clients)
//!   bytes 8..16  publish time, i64 little-endian Unix nanoseconds, taken when
//!                the message is created
//!   bytes 16..   zero padding
//! Prints `listening on HOST:PORT` to stderr once bound.

mod handshake;
mod log;

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use handshake::Outcome;
use log::FrameLog;

/// Clients use `Token(slot + 1)`.
const LISTENER: Token = Token(0);

struct Opts {
    listen: SocketAddr,
    rate: u64,
    size: usize,
    log_frames: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: peer-limit-probe [--listen HOST:PORT] [--rate N] [--size BYTES] [--log-frames N]"
    );
    exit(2);
}

fn parse_args() -> Opts {
    let mut listen = "127.0.0.1:9001".to_string();
    let mut rate: u64 = 1000;
    let mut size: usize = 200;
    let mut log_frames: usize = 4096;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage(&format!("missing value for {flag}")))
        };
        match flag.as_str() {
            "--listen" => listen = value(),
            "--rate" => {
                rate = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--rate must be a non-negative integer"))
            }
            "--size" => {
                size = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--size must be an integer"))
            }
            "--log-frames" => {
                log_frames = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--log-frames must be an integer"))
            }
            "-h" | "--help" => usage("tickwire limit-probe peer"),
            _ => usage(&format!("unknown argument: {arg}")),
        }
    }
    if size < 16 {
        usage("--size must be at least 16");
    }
    if !(16..=1 << 24).contains(&log_frames) {
        usage("--log-frames must be from 16 to 2^24");
    }
    let listen = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .unwrap_or_else(|| usage(&format!("cannot resolve --listen {listen}")));
    Opts {
        listen,
        rate,
        size,
        log_frames,
    }
}

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// What the probe counts (printed to stderr).
#[derive(Default, PartialEq, Clone, Copy)]
struct Stats {
    /// Frames skipped by clients that fell behind, summed over clients.
    skipped: u64,
    /// Clients closed because their unsent bytes were overwritten.
    overrun: u64,
}

struct Client {
    stream: TcpStream,
    /// Request head bytes while the upgrade is in progress; `None` once open.
    head: Option<Vec<u8>>,
    /// Bytes to write before the log's: the HTTP response, or the rest of
    /// the frame a skipped client was inside (`prefix[prefix_pos..]`).
    prefix: Vec<u8>,
    prefix_pos: usize,
    /// Upgraded: reads the log from `cursor`.
    open: bool,
    /// Close once the response is written (rejected handshake).
    closing: bool,
    /// The next log byte this client gets.
    cursor: u64,
    /// False after `WouldBlock`, until `mio` reports the socket writable.
    writable: bool,
}

/// The first `len` bytes of the two slices `a` then `b`.
fn cut<'a>(a: &'a [u8], b: &'a [u8], len: usize) -> (&'a [u8], &'a [u8]) {
    if len <= a.len() {
        (&a[..len], &[])
    } else {
        (a, &b[..(len - a.len()).min(b.len())])
    }
}

impl Client {
    /// Skips a client more than `max_lag` bytes behind to the head (also
    /// while its socket is full: a stalled client holds nothing back). If
    /// it is inside a frame, the rest of that frame (under `frame_len`
    /// bytes, its only copy) goes to `prefix` so its stream stays whole.
    fn catch_up(&mut self, log: &FrameLog, max_lag: u64, stats: &mut Stats) -> bool {
        let head = log.head();
        if !self.open || head - self.cursor <= max_lag {
            return true;
        }
        let frame_len = log.frame_len() as u64;
        let into_frame = self.cursor % frame_len;
        let mut from = self.cursor;
        if into_frame != 0 {
            let rest = frame_len - into_frame;
            match log.since(self.cursor) {
                Some((a, b)) => {
                    let (a, b) = cut(a, b, rest as usize);
                    self.prefix.drain(..self.prefix_pos);
                    self.prefix_pos = 0;
                    self.prefix.extend_from_slice(a);
                    self.prefix.extend_from_slice(b);
                }
                None => {
                    stats.overrun += 1;
                    return false;
                }
            }
            from += rest;
        }
        stats.skipped += (head - from) / frame_len;
        self.cursor = head;
        true
    }

    /// This tick's ONE write: the prefix and everything pending in the log.
    /// Returns false if the client is to be dropped.
    fn flush(&mut self, log: &FrameLog, max_lag: u64, stats: &mut Stats) -> bool {
        if !self.catch_up(log, max_lag, stats) {
            return false;
        }
        if !self.writable {
            return true;
        }
        let (a, b) = if self.open {
            match log.since(self.cursor) {
                Some(slices) => slices,
                None => {
                    stats.overrun += 1;
                    return false;
                }
            }
        } else {
            (&[][..], &[][..])
        };
        let prefix = &self.prefix[self.prefix_pos..];
        if prefix.is_empty() && a.is_empty() {
            return !self.closing;
        }
        let bufs = [IoSlice::new(prefix), IoSlice::new(a), IoSlice::new(b)];
        let skip = if prefix.is_empty() { 1 } else { 0 };
        match self.stream.write_vectored(&bufs[skip..]) {
            Ok(0) => false,
            Ok(n) => {
                let to_prefix = n.min(prefix.len());
                self.prefix_pos += to_prefix;
                if self.prefix_pos == self.prefix.len() {
                    self.prefix.clear();
                    self.prefix_pos = 0;
                }
                self.cursor += (n - to_prefix) as u64;
                !(self.closing && self.prefix.is_empty())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(_) => false,
        }
    }
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    log: FrameLog,
    max_lag: u64,
    stats: Stats,
}

impl Server {
    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let idx = self.free.pop().unwrap_or_else(|| {
                        self.clients.push(None);
                        self.clients.len() - 1
                    });
                    if self
                        .poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(idx + 1),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        self.free.push(idx);
                        continue;
                    }
                    self.clients[idx] = Some(Client {
                        stream,
                        head: Some(Vec::new()),
                        prefix: Vec::new(),
                        prefix_pos: 0,
                        open: false,
                        closing: false,
                        cursor: 0,
                        writable: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // e.g. EMFILE: try again on the next turn.
                    eprintln!("accept error: {e}");
                    return;
                }
            }
        }
    }

    fn drop_client(&mut self, idx: usize) {
        if let Some(mut c) = self.clients[idx].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.free.push(idx);
        }
    }

    /// Reads everything available; handshake bytes are parsed, the rest discarded.
    fn read(&mut self, idx: usize, scratch: &mut [u8]) {
        let head = self.log.head();
        let Some(c) = self.clients[idx].as_mut() else {
            return;
        };
        let alive = loop {
            match c.stream.read(scratch) {
                Ok(0) => break false,
                Ok(n) => {
                    let Some(req) = c.head.as_mut() else {
                        continue; // open connection: discard input
                    };
                    req.extend_from_slice(&scratch[..n]);
                    match handshake::handshake(req) {
                        Outcome::Incomplete => {}
                        Outcome::Upgrade(resp) => {
                            c.head = None;
                            c.prefix = resp;
                            c.open = true;
                            // new clients start at the newest frame boundary
                            c.cursor = head;
                        }
                        Outcome::Reject(resp) => {
                            c.head = None;
                            c.closing = true;
                            c.prefix = resp.to_vec();
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        if !alive {
            self.drop_client(idx);
        }
    }

    /// One write per socket that has something pending.
    fn flush_all(&mut self) {
        for idx in 0..self.clients.len() {
            if let Some(c) = self.clients[idx].as_mut()
                && !c.flush(&self.log, self.max_lag, &mut self.stats)
            {
                self.drop_client(idx);
            }
        }
    }
}

fn main() {
    let opts = parse_args();
    let mut listener = TcpListener::bind(opts.listen).unwrap_or_else(|e| {
        eprintln!("cannot listen on {}: {e}", opts.listen);
        exit(1);
    });
    let poll = Poll::new().unwrap_or_else(|e| {
        eprintln!("cannot create poll: {e}");
        exit(1);
    });
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap_or_else(|e| {
            eprintln!("cannot register listener: {e}");
            exit(1);
        });
    match listener.local_addr() {
        Ok(addr) => eprintln!("listening on {addr}"),
        Err(_) => eprintln!("listening on {}", opts.listen),
    }

    let header = handshake::frame_header(opts.size);
    let frame_len = header.len() + opts.size;
    let log = FrameLog::new(frame_len, opts.log_frames);
    let max_lag = log.capacity() / 2;
    let mut server = Server {
        poll,
        listener,
        clients: Vec::new(),
        free: Vec::new(),
        log,
        max_lag,
        stats: Stats::default(),
    };
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 << 10];
    let start = Instant::now();
    let mut seq: u64 = 0;
    let mut reported = Stats::default();
    let mut report_at = start + Duration::from_secs(5);

    loop {
        match server
            .poll
            .poll(&mut events, Some(Duration::from_millis(1)))
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("poll error: {e}");
                exit(1);
            }
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => server.accept(),
                Token(t) => {
                    if ev.is_writable()
                        && let Some(c) = server.clients[t - 1].as_mut()
                    {
                        c.writable = true;
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        server.read(t - 1, &mut scratch);
                    }
                }
            }
        }

        // Publish the messages due by elapsed time, each framed once.
        let due = (start.elapsed().as_nanos() * u128::from(opts.rate) / 1_000_000_000) as u64;
        while seq < due {
            seq += 1;
            server.log.push(|f| {
                let (h, body) = f.split_at_mut(header.len());
                h.copy_from_slice(&header);
                body[..8].copy_from_slice(&seq.to_le_bytes());
                body[8..16].copy_from_slice(&unix_nanos().to_le_bytes());
                body[16..].fill(0);
            });
        }

        server.flush_all();

        if Instant::now() >= report_at {
            report_at += Duration::from_secs(5);
            if server.stats != reported {
                reported = server.stats;
                let open = server.clients.iter().flatten().count();
                eprintln!(
                    "skipped {} frames (summed over clients), {} clients closed for overrun; {open} clients; {seq} published",
                    reported.skipped, reported.overrun
                );
            }
        }
    }
}
