//! `peer-limit-probe`: the "practical ceiling" baseline peer for tickwire's
//! load tests.
//!
//! The load generator measures this server side by side with tickwire to show
//! roughly how much fan-out the machine can do at all. It does the least
//! possible work per delivery: ONE thread, non-blocking sockets and a `mio`
//! event loop; a hand-written HTTP upgrade; each message framed ONCE (unmasked
//! binary header + payload in one buffer) and appended to every client's
//! pending output; then ONE `write` per socket per loop turn of everything
//! pending, keeping any unwritten remainder for the next turn. It is not fair:
//! when a client's pending output exceeds 4 MiB the oldest whole frames are
//! dropped (down to half of that, so the copy is amortised). Pings are not
//! answered (there is no WebSocket library here); client input is discarded.
//!
//! CLI (same for every peer):
//!   --listen HOST:PORT  (default 127.0.0.1:9001; port 0 picks a free port)
//!   --rate N            messages per second published in total (default 1000)
//!   --size BYTES        payload size of each message (default 200, minimum 16)
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

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sha1::{Digest, Sha1};

/// Clients use `Token(slot + 1)`.
const LISTENER: Token = Token(0);
/// Pending output above this is trimmed by dropping the oldest whole frames.
// 4 MiB per client bounds a 10k-client run to ~40 GB worst case less the
// kernel's share; 64 MiB let one run reach 21 GB RSS on this 24 GB machine.
const MAX_PENDING: usize = 4 << 20;
/// ...down to this much, so a stuck client costs one big copy now and then.
const TRIM_TO: usize = MAX_PENDING / 2;
/// Largest HTTP request head accepted for the upgrade.
const MAX_HEAD: usize = 16 << 10;
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct Opts {
    listen: SocketAddr,
    rate: u64,
    size: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: peer-limit-probe [--listen HOST:PORT] [--rate N] [--size BYTES]");
    exit(2);
}

fn parse_args() -> Opts {
    let mut listen = "127.0.0.1:9001".to_string();
    let mut rate: u64 = 1000;
    let mut size: usize = 200;
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
            "-h" | "--help" => usage("tickwire limit-probe peer"),
            _ => usage(&format!("unknown argument: {arg}")),
        }
    }
    if size < 16 {
        usage("--size must be at least 16");
    }
    let listen = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .unwrap_or_else(|| usage(&format!("cannot resolve --listen {listen}")));
    Opts { listen, rate, size }
}

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Unmasked binary frame header (FIN + opcode 2) for a payload of `len` bytes.
fn put_frame_header(out: &mut Vec<u8>, len: usize) {
    out.push(0x82);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

enum Outcome {
    /// Keep reading.
    Incomplete,
    /// Upgrade accepted; the response to send.
    Upgrade(Vec<u8>),
    /// Not a WebSocket upgrade; the response to send before closing.
    Reject(&'static [u8]),
}

/// Parses a complete-or-partial HTTP request head and builds the 101 response.
fn handshake(head: &[u8]) -> Outcome {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if head.len() > MAX_HEAD {
            Outcome::Reject(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
            )
        } else {
            Outcome::Incomplete
        };
    };
    const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
    let Ok(text) = std::str::from_utf8(&head[..end]) else {
        return Outcome::Reject(BAD);
    };
    let mut lines = text.split("\r\n");
    if !lines.next().is_some_and(|l| l.starts_with("GET ")) {
        return Outcome::Reject(BAD);
    }
    let key = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    });
    let Some(key) = key else {
        return Outcome::Reject(BAD);
    };
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    let accept = BASE64.encode(sha.finalize());
    Outcome::Upgrade(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes(),
    )
}

struct Client {
    stream: TcpStream,
    /// Request head bytes while the upgrade is in progress; `None` once open.
    head: Option<Vec<u8>>,
    /// Pending output; `out[pos..]` is not yet written.
    out: Vec<u8>,
    pos: usize,
    /// Bytes at `out[pos..]` that are not whole, untouched frames (the rest
    /// of the 101 response or of a partly written frame). Everything after
    /// them is whole frames of `frame_len` bytes, so they can be dropped.
    head_len: usize,
    /// Close after the pending output is written (rejected handshake).
    closing: bool,
}

impl Client {
    fn pending(&self) -> usize {
        self.out.len() - self.pos
    }

    /// ONE write of everything pending. Returns false if the client is gone.
    fn flush(&mut self, frame_len: usize) -> bool {
        if self.pending() == 0 {
            return !self.closing;
        }
        match self.stream.write(&self.out[self.pos..]) {
            Ok(0) => return false,
            Ok(n) => {
                if n <= self.head_len {
                    self.head_len -= n;
                } else {
                    let into_frames = (n - self.head_len) % frame_len;
                    self.head_len = if into_frames == 0 {
                        0
                    } else {
                        frame_len - into_frames
                    };
                }
                self.pos += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
        if self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
            return !self.closing;
        }
        // Compact once the written prefix dominates (amortised memmove).
        if self.pos >= 64 << 10 && self.pos * 2 >= self.out.len() {
            self.out.drain(..self.pos);
            self.pos = 0;
        }
        true
    }

    /// Drops the oldest whole frames if pending output exceeds `MAX_PENDING`.
    fn trim(&mut self, frame_len: usize) {
        if self.pending() <= MAX_PENDING {
            return;
        }
        let first = self.pos + self.head_len;
        let whole = (self.out.len() - first) / frame_len;
        let excess = self.pending() - TRIM_TO;
        let drop = excess.div_ceil(frame_len).min(whole);
        self.out.drain(first..first + drop * frame_len);
    }
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    frame_len: usize,
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
                        out: Vec::new(),
                        pos: 0,
                        head_len: 0,
                        closing: false,
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
        let Some(c) = self.clients[idx].as_mut() else {
            return;
        };
        let alive = loop {
            match c.stream.read(scratch) {
                Ok(0) => break false,
                Ok(n) => {
                    let Some(head) = c.head.as_mut() else {
                        continue; // open connection: discard input
                    };
                    head.extend_from_slice(&scratch[..n]);
                    match handshake(head) {
                        Outcome::Incomplete => {}
                        Outcome::Upgrade(resp) => {
                            c.head = None;
                            c.head_len = resp.len();
                            c.out.extend_from_slice(&resp);
                        }
                        Outcome::Reject(resp) => {
                            c.head = None;
                            c.closing = true;
                            c.head_len = resp.len();
                            c.out.extend_from_slice(resp);
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

    /// Appends a batch of whole frames to every open client.
    fn broadcast(&mut self, frames: &[u8]) {
        for c in self.clients.iter_mut().flatten() {
            if c.head.is_none() && !c.closing {
                c.out.extend_from_slice(frames);
                c.trim(self.frame_len);
            }
        }
    }

    /// One write per socket with pending output.
    fn flush_all(&mut self) {
        for idx in 0..self.clients.len() {
            let frame_len = self.frame_len;
            if let Some(c) = self.clients[idx].as_mut()
                && !c.flush(frame_len)
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

    let mut header = Vec::with_capacity(10);
    put_frame_header(&mut header, opts.size);
    let frame_len = header.len() + opts.size;

    let mut server = Server {
        poll,
        listener,
        clients: Vec::new(),
        free: Vec::new(),
        frame_len,
    };
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 << 10];
    let mut batch: Vec<u8> = Vec::new();
    let start = Instant::now();
    let mut seq: u64 = 0;

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
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        server.read(t - 1, &mut scratch);
                    }
                    // Writability needs no handling: every turn flushes.
                }
            }
        }

        // Publish the messages due by elapsed time, each framed once.
        let due = (start.elapsed().as_nanos() * u128::from(opts.rate) / 1_000_000_000) as u64;
        if seq < due {
            batch.clear();
            while seq < due {
                seq += 1;
                batch.extend_from_slice(&header);
                batch.extend_from_slice(&seq.to_le_bytes());
                batch.extend_from_slice(&unix_nanos().to_le_bytes());
                batch.resize(batch.len() + opts.size - 16, 0);
            }
            server.broadcast(&batch);
        }

        server.flush_all();
    }
}
