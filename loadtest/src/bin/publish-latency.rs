//! Publish-to-client latency of `POST /publish`: one keep-alive HTTP client
//! publishes at a fixed rate, stamping each event's `sourceTimeNs` with the
//! time just before the request is written; one WebSocket client subscribed
//! to it (by pattern, as it is created by the first publish) records `receive time - sourceTimeNs` (same host clock).
//!
//! `publish-latency --addr 127.0.0.1:8080 --key KEY [--rate 1000] [--seconds 10]`

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use prost::Message as _;
use tickwire::protocol::now_ns;
use tickwire::protocol::pb::{ServerMessage, event::Payload, server_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../wire.rs"]
#[allow(dead_code)]
mod wire;

#[path = "../arrival.rs"]
#[allow(dead_code)]
mod arrival;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    #[arg(long)]
    key: String,
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const CHANNEL: &str = "latency.probe.all";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // subscriber
    let mut ws = TcpStream::connect(&args.addr).await?;
    ws.set_nodelay(true)?;
    let leftover = wire::handshake(&mut ws, &args.addr, "/ws").await?;
    let (mut rd, mut wr) = ws.into_split();
    let msg = tickwire::protocol::pb::ClientMessage {
        kind: Some(tickwire::protocol::pb::client_message::Kind::Subscribe(
            tickwire::protocol::pb::Subscribe {
                request_id: 1,
                channels: vec!["latency.probe.*".into()],
                ..Default::default()
            },
        )),
    };
    wr.write_all(&wire::client_frame(2, &msg.encode_to_vec()))
        .await?;
    let total = args.rate as u64 * args.seconds;
    let reader = tokio::spawn(async move {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut frames = wire::FrameReader::new(1 << 16, &leftover);
        while hist.len() < total {
            let Ok(Some((frame, _))) = frames.next(&mut rd).await else {
                break;
            };
            let now = now_ns();
            let Ok(m) = ServerMessage::decode(frames.payload(&frame)) else {
                continue;
            };
            if let Some(server_message::Kind::Event(e)) = m.kind
                && matches!(e.payload, Some(Payload::Custom(_)))
            {
                let _ = hist.record((now - e.source_time_ns).max(1) as u64);
            }
        }
        hist
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // publisher
    let mut http = TcpStream::connect(&args.addr).await?;
    http.set_nodelay(true)?;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    let mut buf = vec![0u8; 4096];
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let body = format!(
            "{{\"channel\":\"{CHANNEL}\",\"sourceTimeNs\":\"{}\",\"custom\":{{\"json\":\"{i}\"}}}}",
            now_ns()
        );
        let req = format!(
            "POST /publish HTTP/1.1\r\nHost: x\r\nX-Api-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            args.key,
            body.len()
        );
        http.write_all(req.as_bytes()).await?;
        // read one response (small, one read is enough on loopback in practice)
        let mut got = Vec::new();
        loop {
            let n = http.read(&mut buf).await?;
            if n == 0 {
                return Err("publish connection closed".into());
            }
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    if !head.starts_with("HTTP/1.1 200") {
                        return Err(format!("publish refused: {head}").into());
                    }
                    break;
                }
            }
        }
    }
    let hist = tokio::time::timeout(Duration::from_secs(10), reader).await??;
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "publish-to-client latency over {} events at {}/s: p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us",
        hist.len(),
        args.rate,
        us(0.5),
        us(0.9),
        us(0.99),
        hist.max() as f64 / 1000.0
    );
    Ok(())
}
