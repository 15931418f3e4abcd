//! Samples a server process from /proc (with the `procfs` crate, as the
//! server's own `process_*` metrics do): resident memory and CPU time.

/// Resident set size in KiB (0 if the process is gone).
#[cfg(target_os = "linux")]
pub fn rss_kib(pid: u32) -> u64 {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.vmrss)
        .unwrap_or(0)
}

/// User + system CPU time in seconds (0 if the process is gone).
#[cfg(target_os = "linux")]
pub fn cpu_secs(pid: u32) -> f64 {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .map(|s| (s.utime + s.stime) as f64 / procfs::ticks_per_second() as f64)
        .unwrap_or(0.0)
}

/// Resident set size in KiB (not sampled on this system).
#[cfg(not(target_os = "linux"))]
pub fn rss_kib(_pid: u32) -> u64 {
    0
}

/// CPU time in seconds (not sampled on this system).
#[cfg(not(target_os = "linux"))]
pub fn cpu_secs(_pid: u32) -> f64 {
    0.0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        assert!(super::rss_kib(me) > 1024);
        // spend more than one clock tick (10 ms) of CPU first
        let burn: u64 = (0..20_000_000u64).fold(0, |a, x| a ^ x.wrapping_mul(31));
        std::hint::black_box(burn);
        assert!(super::cpu_secs(me) > 0.0);
        assert_eq!(super::rss_kib(u32::MAX), 0, "a missing process reads 0");
    }
}
