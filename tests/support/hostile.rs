//! Helpers of the attack tests: a healthy client that measures its longest
//! silence while an attack runs, and server memory sampling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{Client, Fmt, Server, WAIT};

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
