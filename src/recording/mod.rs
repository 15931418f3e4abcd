//! `tickwire record`: writes every event of the channels asked for to a
//! `.twr` file (read back by the replay source, `sources::replay`).
//!
//! The events come from one of two places: a running tickwire over
//! WebSocket ([`remote`], `record --connect URL`), or the hub of sources run
//! in this process ([`local`], `record --source ...`), read directly through
//! the hub's event sink. Both feed the same writing loop ([`run`]).

pub mod local;
pub mod remote;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::protocol::pb::Event;
use crate::sources::twr::{Header, TwrError, Writer};

/// Settings of a recording.
#[derive(Debug, Clone)]
pub struct Settings {
    /// File to write (`.twr`).
    pub out: PathBuf,
    /// Channel patterns to record.
    pub channels: Vec<String>,
    /// Gzip the file body.
    pub gzip: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many events.
    pub max_events: Option<u64>,
    /// Print the events written so far on stderr this often (zero = never).
    pub progress: Duration,
}

/// Why a recording failed.
#[derive(Debug, Error)]
pub enum RecorderError {
    #[error(transparent)]
    File(#[from] TwrError),
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
    #[error("channel pattern: {0}")]
    Pattern(#[from] crate::protocol::ChannelError),
}

/// What a recording wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    pub events: u64,
    /// Events skipped because the recorder fell behind (`lagged` from a
    /// server, or a full queue from the local hub).
    pub lagged: u64,
    pub channels: usize,
    pub seconds: f64,
    /// Why the recording ended early, when the server went away (the file
    /// is complete up to there).
    pub ended_by: Option<String>,
}

/// What a source of events hands the writing loop next.
pub(crate) enum Next {
    /// An event to write.
    Event(Event),
    /// This many events were skipped because the recorder fell behind.
    Lagged(u64),
    /// Nothing to write (a control message).
    Nothing,
    /// The events stopped coming, for this reason.
    Ended(String),
}

/// Where a recording's events come from.
pub(crate) trait EventFeed {
    /// The next thing that happened.
    async fn next(&mut self) -> Result<Next, RecorderError>;
    /// Says goodbye (closes a connection); called once at the end.
    async fn close(&mut self);
}

/// How often the file is flushed while recording: a recorder killed
/// outright loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The next progress tick, or never when progress is off.
async fn tick(t: &mut Option<tokio::time::Interval>) -> Option<tokio::time::Instant> {
    match t {
        Some(t) => Some(t.tick().await),
        None => std::future::pending().await,
    }
}

/// Writes what `feed` hands over to the file of `settings`, whose header
/// names `origin`, until `shutdown`, the duration, the event count or the
/// end of the feed.
pub(crate) async fn run(
    settings: &Settings,
    origin: &str,
    mut feed: impl EventFeed,
    shutdown: CancellationToken,
) -> Result<Summary, RecorderError> {
    let header = Header {
        format: 1,
        created_ns: crate::protocol::now_ns(),
        origin: origin.to_string(),
        channels: settings.channels.clone(),
    };
    let mut writer = Writer::create(&settings.out, settings.gzip, &header)?;
    let started = Instant::now();
    let deadline = settings.duration.map(|d| started + d);
    let mut seen = std::collections::HashSet::new();
    let mut lagged = 0;
    let far = started + Duration::from_secs(86_400 * 365);
    let every = settings.progress;
    let mut progress = (!every.is_zero()).then(|| {
        let mut t = tokio::time::interval_at((started + every).into(), every);
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
        if settings.max_events.is_some_and(|m| writer.events() >= m) {
            break;
        }
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(deadline.unwrap_or(far).into()) => break,
            Some(now) = tick(&mut progress) => {
                let now = now.into_std();
                let rate = (writer.events() - last.1) as f64 / (now - last.0).as_secs_f64();
                eprintln!(
                    "record: {} events on {} channels written to {} ({rate:.0} events/s)",
                    writer.events(),
                    seen.len(),
                    settings.out.display()
                );
                last = (now, writer.events());
                continue;
            }
            n = feed.next() => n?,
        };
        match next {
            Next::Event(event) => {
                if !seen.contains(&event.channel) {
                    seen.insert(event.channel.clone());
                }
                writer.write(&event)?;
            }
            Next::Lagged(n) => lagged += n,
            Next::Nothing => {}
            // The server going away ends the recording, not the file: what
            // was received is written out whole and the recorder succeeds.
            Next::Ended(why) => {
                ended_by = Some(why);
                break;
            }
        }
    }
    if shutdown.is_cancelled() {
        // our own stop (an in-process source stops on the same signal)
        ended_by = None;
    }
    feed.close().await;
    let events = writer.finish()?;
    Ok(Summary {
        events,
        lagged,
        channels: seen.len(),
        seconds: started.elapsed().as_secs_f64(),
        ended_by,
    })
}
