//! This process's resource use, for the standard `process_*` metrics
//! (the names every Prometheus client library exports, so stock dashboards
//! and alerts work unchanged). Read from /proc with the `procfs` crate at
//! scrape time; on other systems nothing is reported.

/// One sample of the process's resource use.
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    /// The soft limit on open files, if there is one.
    pub max_fds: Option<u64>,
    pub threads: u64,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Samples this process (`None` where /proc cannot be read).
#[cfg(target_os = "linux")]
pub fn sample() -> Option<ProcessStats> {
    use procfs::process::{LimitValue, Process};
    let me = Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let boot = procfs::boot_time_secs().ok()? as f64;
    let max_fds = me
        .limits()
        .ok()
        .and_then(|l| match l.max_open_files.soft_limit {
            LimitValue::Value(v) => Some(v),
            LimitValue::Unlimited => None,
        });
    Some(ProcessStats {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        resident_bytes: stat.rss * procfs::page_size(),
        virtual_bytes: stat.vsize,
        open_fds: me.fd_count().ok()? as u64,
        max_fds,
        threads: stat.num_threads.max(0) as u64,
        start_time_seconds: boot + stat.starttime as f64 / ticks,
    })
}

/// Samples this process (`None` where /proc cannot be read).
#[cfg(not(target_os = "linux"))]
pub fn sample() -> Option<ProcessStats> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn sample_is_plausible() {
        let p = super::sample().expect("/proc/self is readable");
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.open_fds >= 3, "{p:?}");
        assert!(p.threads >= 1, "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        // started within the last day, not in the future (+2 s of rounding)
        assert!(
            p.start_time_seconds <= now + 2.0 && p.start_time_seconds > now - 86_400.0,
            "{p:?}"
        );
    }
}
