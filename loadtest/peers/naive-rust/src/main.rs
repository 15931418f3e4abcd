//! `peer-naive-rust`: the "naive Rust" baseline peer for tickwire's load tests.
//!
//! The load generator measures this server side by side with tickwire. It is
//! what a straightforward async Rust broadcaster looks like: tokio
//! (multi-thread runtime) + tokio-tungstenite, one task per connection fed by a
//! `tokio::sync::broadcast` channel (capacity 1024), and one `ws.send(..)` per
//! message (no batching, no coalescing). A receiver that lags just skips the
//! messages it missed.
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
//! Client input is read and discarded (tungstenite queues pongs for pings).
//! Prints `listening on HOST:PORT` to stderr once bound.

use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

const CHANNEL_CAPACITY: usize = 1024;

struct Opts {
    listen: String,
    rate: u64,
    size: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: peer-naive-rust [--listen HOST:PORT] [--rate N] [--size BYTES]");
    exit(2);
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        listen: "127.0.0.1:9001".to_string(),
        rate: 1000,
        size: 200,
    };
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
            "--listen" => opts.listen = value(),
            "--rate" => {
                opts.rate = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--rate must be a non-negative integer"))
            }
            "--size" => {
                opts.size = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--size must be an integer"))
            }
            "-h" | "--help" => usage("tickwire naive Rust peer"),
            _ => usage(&format!("unknown argument: {arg}")),
        }
    }
    if opts.size < 16 {
        usage("--size must be at least 16");
    }
    opts
}

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Publishes `rate` messages per second: every 1 ms, sends the number of
/// messages that are due by elapsed time (accumulator, so the average is exact).
async fn publisher(tx: broadcast::Sender<Bytes>, rate: u64, size: usize) {
    let start = Instant::now();
    let mut seq: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = (start.elapsed().as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
        while seq < due {
            seq += 1;
            let mut buf = BytesMut::with_capacity(size);
            buf.put_u64_le(seq);
            buf.put_i64_le(unix_nanos());
            buf.put_bytes(0, size - 16);
            // Err only means "no subscribers right now"; the sequence still advances.
            let _ = tx.send(buf.freeze());
        }
    }
}

async fn handle(stream: TcpStream, tx: broadcast::Sender<Bytes>) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let mut rx = tx.subscribe();
    let (mut sink, mut source) = ws.split();

    // Reader side: read and discard everything until the client goes away.
    let mut reader = tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });

    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(payload) => {
                    // One send (feed + flush) per message: the naive way.
                    if sink.send(Message::Binary(payload)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            _ = &mut reader => break,
        }
    }
    reader.abort();
}

#[tokio::main]
async fn main() {
    let opts = parse_args();
    let listener = TcpListener::bind(&opts.listen).await.unwrap_or_else(|e| {
        eprintln!("cannot listen on {}: {e}", opts.listen);
        exit(1);
    });
    match listener.local_addr() {
        Ok(addr) => eprintln!("listening on {addr}"),
        Err(_) => eprintln!("listening on {}", opts.listen),
    }

    let (tx, _) = broadcast::channel::<Bytes>(CHANNEL_CAPACITY);
    tokio::spawn(publisher(tx.clone(), opts.rate, opts.size));

    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, tx.clone()));
            }
            Err(e) => {
                // e.g. EMFILE: back off briefly instead of spinning.
                eprintln!("accept error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
