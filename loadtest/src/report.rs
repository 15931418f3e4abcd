//! The report of a run: the table printed at the end, or one JSON line
//! (`--json`, the input of `summarize.py` and `--plot`).

use crate::run::Report;

impl Report {
    fn offered(&self) -> Option<f64> {
        self.plan.offered_per_s.filter(|o| *o > 0.0)
    }

    fn rss_per_client_kib(&self) -> Option<f64> {
        (self.plan.clients > 0 && self.rss_max_kib > 0).then(|| {
            self.rss_max_kib.saturating_sub(self.rss_before_clients_kib) as f64
                / self.plan.clients as f64
        })
    }

    fn rate(&self) -> f64 {
        self.deliveries as f64 / self.window_s.max(1e-9)
    }

    pub fn print(&self, server: &str) {
        let p = &self.plan;
        println!(
            "scenario {} | server {server} | {} clients ({} connected, {} failed) | window {:.1} s",
            p.name, p.clients, self.connected, self.connect_failures, self.window_s
        );
        if !p.description.is_empty() {
            println!("               {}", p.description);
        }
        match self.offered() {
            Some(o) => println!(
                "deliveries/s   {:>12.0}   ({:.1}% of {:.0} offered)",
                self.rate(),
                100.0 * self.rate() / o,
                o
            ),
            None => println!("deliveries/s   {:>12.0}", self.rate()),
        }
        println!(
            "gaps {} ({} messages missed) | lagged {} | closes {:?}",
            self.gaps, self.missed, self.lagged, self.closes
        );
        if self.plan.conflate_ms > 0 {
            println!(
                "conflate_ms {} | conflated {} (announced, not gaps; {} seqs folded in the window)",
                self.plan.conflate_ms, self.conflated, self.conflated_skipped
            );
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let [p50, p90, p99, p999, max] = self.latency_us;
        println!(
            "latency ms     p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  ({} samples)",
            ms(p50),
            ms(p90),
            ms(p99),
            ms(p999),
            ms(max),
            self.latency_count
        );
        println!(
            "bytes in/s     {:.1} MB/s",
            self.bytes as f64 / self.window_s / 1e6
        );
        if self.rss_max_kib > 0 {
            let per_m = if self.deliveries > 0 {
                self.server_cpu_s / (self.deliveries as f64 / 1e6)
            } else {
                0.0
            };
            println!(
                "server         RSS {:.1} MB (max {:.1} MB) | CPU {:.2} s in window ({:.0}% of a core) | {:.2} CPU-s per 1M deliveries",
                self.rss_start_kib as f64 / 1024.0,
                self.rss_max_kib as f64 / 1024.0,
                self.server_cpu_s,
                100.0 * self.server_cpu_s / self.window_s,
                per_m
            );
            if let Some(per) = self.rss_per_client_kib() {
                println!(
                    "RSS per client {per:.2} KiB (over the {:.1} MB before clients)",
                    self.rss_before_clients_kib as f64 / 1024.0
                );
            }
        }
        println!(
            "load client    CPU {:.2} s in window ({:.0}% of a core; {} threads)",
            self.client_cpu_s,
            100.0 * self.client_cpu_s / self.window_s.max(1e-9),
            p.client_threads
        );
        if let Some(e) = self.events_published_per_s {
            println!("events published/s {e:.0} (server /stats)");
        }
        if p.storm_clients > 0 {
            println!(
                "storm          {} of {} connected, {} failed",
                self.storm_connected, p.storm_clients, self.storm_failed
            );
        }
    }

    pub fn to_json(&self, server: &str) -> serde_json::Value {
        let p = &self.plan;
        let [p50, p90, p99, p999, max] = self.latency_us;
        serde_json::json!({
            "scenario": p.name, "server": server, "clients": p.clients,
            "connected": self.connected, "connect_failures": self.connect_failures,
            "window_s": self.window_s, "deliveries_per_s": self.rate(),
            "offered_per_s": self.offered(),
            "pct_of_offered": self.offered().map(|o| 100.0 * self.rate() / o),
            "gaps": self.gaps, "missed": self.missed, "lagged": self.lagged, "closes": self.closes,
            "conflate_ms": p.conflate_ms, "conflated": self.conflated,
            "conflated_skipped": self.conflated_skipped,
            "latency_ms": {"p50": p50 as f64 / 1e3, "p90": p90 as f64 / 1e3, "p99": p99 as f64 / 1e3,
                            "p99_9": p999 as f64 / 1e3, "max": max as f64 / 1e3},
            "bytes_in_per_s": self.bytes as f64 / self.window_s,
            "server_rss_kib": self.rss_start_kib, "server_rss_max_kib": self.rss_max_kib,
            "server_cpu_s": self.server_cpu_s,
            "client_cpu_s": self.client_cpu_s,
            "client_cpu_pct": 100.0 * self.client_cpu_s / self.window_s.max(1e-9),
            "client_threads": p.client_threads,
            "server_cpu_s_per_million": if self.deliveries > 0 { Some(self.server_cpu_s / (self.deliveries as f64 / 1e6)) } else { None },
            "rss_per_client_kib": self.rss_per_client_kib(),
            "events_published_per_s": self.events_published_per_s,
            "storm_connected": self.storm_connected, "storm_failed": self.storm_failed,
            "arrival": p.arrival.as_str(), "unstamped_reads": self.unstamped_reads,
        })
    }
}
