//! Market analytics computed inside tickwire from the live event stream of
//! any source: candles, indicators, signals, sentiment and the scanner.

pub mod board;
pub mod candles;
pub mod engine;
pub mod indicators;
pub mod scanner;
pub mod sentiment;
pub mod signals;
pub mod tap;

use std::sync::Arc;

use crate::config::Config;

/// What the server keeps of a running analytics engine.
#[derive(Debug, Clone)]
pub struct Handle {
    /// Latest indicator values per instrument (the scanner reads them).
    pub board: Arc<board::Board>,
    /// The hub's trade queue to the engine (for its drop count).
    pub tap: Arc<tap::Tap>,
    /// Server-wide bound on concurrent scans.
    pub scans: Arc<tokio::sync::Semaphore>,
}

/// The engine's settings from the server's (labels were validated by clap).
pub fn config_of(config: &Config) -> engine::AnalyticsConfig {
    let interval = |label: &String| {
        (
            label.clone(),
            candles::parse_interval(label).unwrap_or(60_000_000_000),
        )
    };
    engine::AnalyticsConfig {
        candle_intervals: config.candle_intervals.iter().map(interval).collect(),
        signal_interval: interval(&config.signal_interval),
        sentiment_interval: config
            .sentiment_interval
            .max(std::time::Duration::from_millis(100)),
    }
}
