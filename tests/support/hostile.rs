//! Helpers of the attack tests: a healthy client that measures its longest
//! silence while an attack runs, and server memory sampling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{Client, Fmt, Server, WAIT, eventually};

/// A subscribed client reading in the background; records the longest gap
/// between two frames it received.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Duration>,
}

impl Watcher {
    /// Connects, subscribes to `channels` and starts reading.
    pub async fn start(server: &Server, channels: &[&str]) -> Self {
        let mut c = Client::connect(server, Fmt::Proto).await;
        c.welcome().await;
        c.subscribe(channels).await;
        // wait for the first event so the feed is known to flow
        c.next_frame().await;
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let (s, f) = (stop.clone(), frames.clone());
        let task = tokio::spawn(async move {
            let mut last = Instant::now();
            let mut longest = Duration::ZERO;
            while !s.load(Ordering::Acquire) {
                // a bounded read so that `stop` is seen on a quiet feed: not
                // a wait for an outcome
                match tokio::time::timeout(Duration::from_millis(100), c.ws.next()).await {
                    Err(_) => {}
                    Ok(Some(Ok(Message::Binary(_) | Message::Text(_)))) => {
                        longest = longest.max(last.elapsed());
                        last = Instant::now();
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(other) => panic!("healthy client lost its connection: {other:?}"),
                }
            }
            longest.max(last.elapsed())
        });
        Self { stop, frames, task }
    }

    /// Frames received so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Stops reading; prints and returns the longest silence, after a
    /// generous hang guard (the goal, 0.5 s, is printed, not asserted).
    pub async fn finish(self, what: &str) -> Duration {
        self.stop.store(true, Ordering::Release);
        let longest = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("watcher ends")
            .expect("watcher task");
        println!(
            "{what}: healthy client's longest silence {:.1} ms over {} frames (goal < 500 ms)",
            longest.as_secs_f64() * 1e3,
            self.frames.load(Ordering::Relaxed)
        );
        assert!(
            longest < Duration::from_secs(10),
            "{what}: the healthy client heard nothing for {longest:?}"
        );
        longest
    }
}

/// Samples the server's anonymous RSS every 20 ms until stopped; returns
/// the peak in KiB.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    task: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(server: &Server) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let path = format!("/proc/{}/status", server.pid());
        let task = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(Ordering::Acquire) {
                if let Ok(status) = std::fs::read_to_string(&path)
                    && let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("RssAnon:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                {
                    peak = u64::max(peak, kib);
                }
                // the sampling rate of the peak: pacing a measurement,
                // not waiting for anything
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Self { stop, task }
    }

    pub fn peak_kib(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.task.join().expect("sampler")
    }
}

/// Flags of an attack test that checks the server's memory afterwards: a
/// 64-event history ring per channel. With the default 10 000 the rings go
/// on filling for minutes after start (measured with no client at all:
/// RssAnon 12 -> 24 MiB over the first 30 s at the default simulator rate,
/// the same with and without mimalloc's purge delay), which is growth of
/// the feed, not of the attack, and would hide a leak of that size. With 64
/// events the rings are full within 3 s and RssAnon stays flat (14 MiB,
/// measured over 30 s). The attacks do not depend on the history's length.
pub const MEMORY_FLAGS: [&str; 2] = ["--history-messages", "64"];

/// mimalloc returns freed pages to the OS at once instead of after its
/// purge delay, so RssAnon follows live memory, not the allocator's timing.
pub const MEMORY_ENV: [(&str, &str); 1] = [("MIMALLOC_PURGE_DELAY", "0")];

/// How far above its baseline the server's RssAnon may stay once an attack
/// is over. What remains without a leak is the allocator's working set:
/// mimalloc keeps a thread's freed pages for that thread's next
/// allocations (a tokio blocking thread that checked a 1 MB publish batch
/// and went idle held 13.9 MiB of them), so a test whose attack allocates
/// on threads that then sit idle runs it once to warm up before it takes
/// the baseline, as tests/churn.rs does. After that, measured on the
/// loaded 2-core session machine: -4.4 to +3.5 MiB across the attack
/// tests. Anything an attack could leave behind is larger: one unbounded
/// answer was 34 MB, 100 unread error floods hundreds of MB, 100 leaked
/// connections with their 64 KiB read buffers and sessions about 10 MiB.
pub const RSS_SLACK_KIB: u64 = 6 * 1024;

/// Starts a server for an attack test that checks memory
/// ([`MEMORY_FLAGS`], [`MEMORY_ENV`]) with `args` besides.
pub fn memory_server(args: &[&str]) -> Server {
    let mut all: Vec<&str> = MEMORY_FLAGS.to_vec();
    all.extend_from_slice(args);
    Server::start_with_env(&all, &MEMORY_ENV)
}

/// The smallest RssAnon seen over half a second: what the server holds,
/// not a peak it is about to give back.
pub async fn quiet_rss(server: &Server) -> u64 {
    let mut least = u64::MAX;
    for _ in 0..10 {
        least = least.min(server.rss_kib());
        // ten samples over half a second are the measurement itself, not
        // a wait for something to happen
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    least
}

/// The baseline of a memory check: RssAnon once it stopped growing (two
/// quiet readings a second apart within 256 KiB; the history rings are full
/// by then).
pub async fn baseline_rss(server: &Server) -> u64 {
    let last = &std::cell::Cell::new(quiet_rss(server).await);
    eventually("RssAnon to settle", || async move {
        // the readings are half a second apart (what "settled" means), on
        // top of quiet_rss's own half second: sampling, not a wait
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = quiet_rss(server).await;
        if now <= last.get() + 256 {
            return Ok(now);
        }
        Err(format!("{} -> {now} KiB", last.replace(now)))
    })
    .await
}

/// Waits until RssAnon is back within [`RSS_SLACK_KIB`] of `baseline`
/// (what the attack allocated is freed as its connections close); fails
/// with the figures after a generous hang guard.
pub async fn rss_back_to(server: &Server, baseline: u64, what: &str) {
    rss_back_within(server, baseline, RSS_SLACK_KIB, what).await
}

/// [`rss_back_to`] with its own slack, for an attack whose freed memory
/// sits in allocator caches of threads that outlive it (say why at the
/// call).
pub async fn rss_back_within(server: &Server, baseline: u64, slack_kib: u64, what: &str) {
    let now = eventually(
        &format!("{what}: RssAnon back to its baseline"),
        || async move {
            let now = quiet_rss(server).await;
            if now <= baseline + slack_kib {
                Ok(now)
            } else {
                Err(format!(
                    "{now} KiB, {} KiB over its baseline {baseline} KiB",
                    now - baseline
                ))
            }
        },
    )
    .await;
    println!(
        "{what}: server RssAnon {baseline} -> {now} KiB ({:+} KiB, {} KiB allowed)",
        now as i64 - baseline as i64,
        slack_kib
    );
}
