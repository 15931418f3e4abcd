//! Market analytics computed inside tickwire from the live event stream of
//! any source: candles, indicators, signals, sentiment and the scanner.

pub mod board;
pub mod candles;
pub mod engine;
pub mod indicators;
pub mod scanner;
pub mod sentiment;
pub mod signals;

use std::sync::Arc;
use std::time::Duration;

pub use candles::CandleInterval;

/// What the server keeps of a running analytics engine.
#[derive(Debug, Clone)]
pub struct Handle {
    /// Latest indicator values per instrument (the scanner reads them).
    pub board: Arc<board::Board>,
    /// The hub's trade queue to the engine (for its drop count).
    pub tap: Arc<crate::feed::TradeTap>,
    /// Server-wide bound on concurrent scans.
    pub scans: Arc<tokio::sync::Semaphore>,
}

/// Settings of the analytics engine, built by the composition root from the
/// configuration (intervals already parsed there).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Published candle intervals (`candle<label>.<venue>.<instrument>`).
    pub candle_intervals: Vec<CandleInterval>,
    /// The interval at whose close signals are computed.
    pub signal_interval: CandleInterval,
    /// How often each venue's sentiment index is published (at least 100 ms).
    pub sentiment_interval: Duration,
    /// Scans running at once, server-wide (at least 1).
    pub max_concurrent_scans: usize,
}

/// Starts analytics over `hub`: gives the hub the engine's trade tap and
/// returns the engine's task (to run beside the sources) and the handle the
/// server keeps.
pub fn start(hub: &Arc<crate::feed::Hub>, settings: Settings) -> (engine::Engine, Handle) {
    let scans = settings.max_concurrent_scans.max(1);
    let (tap, engine, board) = engine::new(hub.clone(), settings);
    hub.set_trade_tap(tap.clone());
    let handle = Handle {
        board,
        tap,
        scans: Arc::new(tokio::sync::Semaphore::new(scans)),
    };
    (engine, handle)
}
