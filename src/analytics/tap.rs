//! The hub's hand-over of trades to the analytics engine: a bounded queue
//! fed with `try_send`, so publishing never waits for analytics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// One trade as analytics sees it.
#[derive(Debug, Clone)]
pub struct TapTrade {
    /// The trade channel (`trade.<venue>.<instrument>`).
    pub channel: Arc<str>,
    pub time_ns: i64,
    pub price: f64,
    pub quantity: f64,
}

/// The hub's end of the trade queue.
#[derive(Debug)]
pub struct Tap {
    tx: mpsc::Sender<TapTrade>,
    dropped: AtomicU64,
}

impl Tap {
    /// A tap feeding `tx`.
    pub fn new(tx: mpsc::Sender<TapTrade>) -> Self {
        Self {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Offers a trade without waiting; a full queue drops it from analytics
    /// (never from the feed) and counts it.
    pub fn offer(&self, trade: TapTrade) {
        if self.tx.try_send(trade).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Trades analytics could not take.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
