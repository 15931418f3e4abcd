//! Progress lines on stderr while a run goes on (stdout stays the report,
//! so `--json` output is unaffected): connects during the ramp, then one
//! live line a second in the measurement window. `--quiet` turns them off.

use std::time::{Duration, Instant};

/// Prints at most once per `every`.
pub struct Progress {
    enabled: bool,
    every: Duration,
    last: Instant,
    /// Deliveries and CPU seconds at the previous line, for rates.
    prev: (u64, f64),
}

impl Progress {
    pub fn new(enabled: bool, every: Duration) -> Self {
        Self {
            enabled,
            every,
            last: Instant::now(),
            prev: (0, 0.0),
        }
    }

    fn due(&mut self) -> Option<f64> {
        let dt = self.last.elapsed();
        if !self.enabled || dt < self.every {
            return None;
        }
        self.last = Instant::now();
        Some(dt.as_secs_f64())
    }

    /// `connecting 400/1000 (2 failed)`.
    pub fn connects(&mut self, connected: u64, failed: u64, total: usize) {
        if self.due().is_some() {
            eprintln!("connecting {connected}/{total} ({failed} failed)");
        }
    }

    /// Forces the next call to print (at a phase change).
    pub fn reset(&mut self, deliveries: u64, cpu_s: f64) {
        self.last = Instant::now();
        self.prev = (deliveries, cpu_s);
    }

    /// One line of the window: elapsed, deliveries/s since the last line,
    /// gaps, lagged and (with a server PID) its RSS and CPU use.
    pub fn window(
        &mut self,
        at: Duration,
        deliveries: u64,
        gaps: u64,
        lagged: u64,
        server: Option<(u64, f64)>,
    ) {
        let Some(dt) = self.due() else { return };
        let rate = deliveries.saturating_sub(self.prev.0) as f64 / dt;
        let mut line = format!(
            "{:>5.1} s  {:>10.0} deliveries/s  gaps {gaps}  lagged {lagged}",
            at.as_secs_f64(),
            rate
        );
        if let Some((rss_kib, cpu_s)) = server {
            line.push_str(&format!(
                "  server RSS {:.1} MB CPU {:.0}%",
                rss_kib as f64 / 1024.0,
                100.0 * (cpu_s - self.prev.1) / dt
            ));
            self.prev.1 = cpu_s;
        }
        self.prev.0 = deliveries;
        eprintln!("{line}");
    }
}
