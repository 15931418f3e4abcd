//! `tickwire record`: subscribes to a running tickwire (or to sources it
//! runs itself) and writes every event it receives to a `.twr` file.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use thiserror::Error;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::protocol::pb::{
    ClientMessage, ServerMessage, Subscribe, client_message, server_message,
};
use crate::sources::record::{Header, RecordError, Writer};

/// Settings of `tickwire record`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// File to write (`.twr`).
    #[arg(long)]
    pub out: PathBuf,

    /// Channel patterns to record (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', default_value = "*.*.*")]
    pub channels: Vec<String>,

    /// WebSocket URL of the tickwire to record from.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub connect: String,

    /// Instead of connecting, run these sources in-process and record them
    /// (same values as `serve --source`; e.g. `--source sim`).
    #[arg(long = "source", value_delimiter = ',')]
    pub sources: Vec<String>,

    /// Simulator rate when recording `--source sim` (events/s or `max`).
    #[arg(long, default_value = "1000")]
    pub sim_rate: String,

    /// Gzip the file body.
    #[arg(long)]
    pub gzip: bool,

    /// Stop after this long (e.g. `30s`).
    #[arg(long, value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    pub duration: Option<Duration>,

    /// Stop after this many events.
    #[arg(long)]
    pub max_events: Option<u64>,

    /// Print the events written so far on stderr this often (`0s` = never).
    #[arg(long, default_value = "5s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    pub progress: Duration,
}

/// Why a recording failed.
#[derive(Debug, Error)]
pub enum RecorderError {
    #[error(transparent)]
    File(#[from] RecordError),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("connection: {0}")]
    Connection(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("server said: {0}")]
    Server(String),
    #[error("cannot read a server message: {0}")]
    Decode(String),
    #[error("in-process server: {0}")]
    InProcess(String),
}

/// What a recording wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    pub events: u64,
    /// Events the server skipped because the recorder fell behind (`lagged`).
    pub lagged: u64,
    pub channels: usize,
    pub seconds: f64,
    /// Why the recording ended early, when the server went away (the file
    /// is complete up to there).
    pub ended_by: Option<String>,
}

/// How often the file is flushed while recording: a recorder killed
/// outright loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

fn decode(frame: &[u8]) -> Result<ServerMessage, RecorderError> {
    let bytes = if frame.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(frame), &mut out)
            .map_err(|e| RecorderError::Decode(format!("gzip: {e}")))?;
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(frame)
    };
    ServerMessage::decode(&bytes[..]).map_err(|e| RecorderError::Decode(e.to_string()))
}

/// Records until `shutdown`, `--duration` or `--max-events`.
pub async fn record(
    args: RecordArgs,
    shutdown: CancellationToken,
) -> Result<Summary, RecorderError> {
    if args.sources.is_empty() {
        return record_from(&args, &args.connect, shutdown).await;
    }
    // Run the sources in a private server on loopback and record from it.
    let mut argv: Vec<String> = ["tickwire", "serve", "--listen", "127.0.0.1:0", "--sim-rate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(args.sim_rate.clone());
    for s in &args.sources {
        argv.push("--source".into());
        argv.push(s.clone());
    }
    let config = crate::config::Cli::load(argv)
        .map_err(|e| RecorderError::InProcess(e.to_string()))?
        .into_config();
    let inner = shutdown.child_token();
    let server = crate::server::Server::bind(config, inner.clone())
        .await
        .map_err(|e| RecorderError::InProcess(e.to_string()))?;
    let addr = server
        .local_addr()
        .map_err(|e| RecorderError::InProcess(e.to_string()))?;
    let serving = tokio::spawn(server.serve());
    let result = record_from(&args, &format!("ws://{addr}/ws"), shutdown).await;
    inner.cancel();
    let _ = serving.await;
    result
}

/// The next progress tick, or never when progress is off.
async fn tick(t: &mut Option<tokio::time::Interval>) -> Option<tokio::time::Instant> {
    match t {
        Some(t) => Some(t.tick().await),
        None => std::future::pending().await,
    }
}

async fn record_from(
    args: &RecordArgs,
    url: &str,
    shutdown: CancellationToken,
) -> Result<Summary, RecorderError> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|source| RecorderError::Connect {
            url: url.to_string(),
            source,
        })?;
    let subscribe = ClientMessage {
        kind: Some(client_message::Kind::Subscribe(Subscribe {
            request_id: 1,
            channels: args.channels.clone(),
            resume: Default::default(),
            snapshot: Some(true),
        })),
    };
    ws.send(Message::binary(subscribe.encode_to_vec())).await?;
    let header = Header {
        format: 1,
        created_ns: crate::protocol::now_ns(),
        origin: url.to_string(),
        channels: args.channels.clone(),
    };
    let mut writer = Writer::create(&args.out, args.gzip, &header)?;
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let mut seen = std::collections::HashSet::new();
    let mut lagged = 0;
    let far = started + Duration::from_secs(86_400 * 365);
    let mut progress = (!args.progress.is_zero()).then(|| {
        let mut t = tokio::time::interval_at((started + args.progress).into(), args.progress);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut last = (started, 0u64);
    let mut flushed_at = Instant::now();
    let mut ended_by = None;
    loop {
        if flushed_at.elapsed() >= FLUSH_EVERY {
            writer.flush()?;
            flushed_at = Instant::now();
        }
        if args.max_events.is_some_and(|m| writer.events() >= m) {
            break;
        }
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(deadline.unwrap_or(far).into()) => break,
            Some(now) = tick(&mut progress) => {
                let now = now.into_std();
                let rate = (writer.events() - last.1) as f64 / (now - last.0).as_secs_f64();
                eprintln!(
                    "record: {} events on {} channels written to {} ({rate:.0} events/s)",
                    writer.events(),
                    seen.len(),
                    args.out.display()
                );
                last = (now, writer.events());
                continue;
            }
            m = ws.next() => m,
        };
        // The server going away ends the recording, not the file: what was
        // received is written out whole and the recorder succeeds.
        let frame = match msg {
            None => {
                ended_by = Some("the server closed the connection".to_string());
                break;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "connection to the server lost; finishing the file");
                ended_by = Some(format!("connection lost: {e}"));
                break;
            }
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(c))) => {
                ended_by = Some(match c {
                    Some(c) => format!("the server closed with {} {}", c.code, c.reason),
                    None => "the server closed".to_string(),
                });
                break;
            }
            Some(Ok(_)) => continue,
        };
        match decode(&frame)?.kind {
            Some(server_message::Kind::Event(event)) => {
                if !seen.contains(&event.channel) {
                    seen.insert(event.channel.clone());
                }
                writer.write(&event)?;
            }
            Some(server_message::Kind::Error(e)) => return Err(RecorderError::Server(e.message)),
            Some(server_message::Kind::Subscribed(s)) if s.channels.is_empty() => {
                tracing::warn!(
                    "no channel matches {} yet; waiting for channels created later \
                     (GET /channels lists what the server has)",
                    args.channels.join(",")
                );
            }
            Some(server_message::Kind::Lagged(l)) => {
                lagged += l.last_seq.saturating_sub(l.first_seq) + 1;
                tracing::warn!(channel = %l.channel, first = l.first_seq, last = l.last_seq, "recorder fell behind; the server skipped events");
            }
            _ => {}
        }
    }
    if shutdown.is_cancelled() {
        // our own stop (an in-process server closes on the same signal)
        ended_by = None;
    }
    let _ = ws.close(None).await;
    let events = writer.finish()?;
    Ok(Summary {
        events,
        lagged,
        channels: seen.len(),
        seconds: started.elapsed().as_secs_f64(),
        ended_by,
    })
}
