//! The hub's hand-over of published trades to a consumer above the feed
//! (the analytics engine): a bounded queue fed with `try_send`, so
//! publishing never waits for the consumer. The feed defines the queue and
//! knows nothing of who reads it; the composition root (`app`) gives the
//! consumer's tap to the hub with [`super::Hub::set_trade_tap`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// One published trade, as the tap hands it over.
#[derive(Debug, Clone)]
pub struct TappedTrade {
    /// The trade channel (`trade.<venue>.<instrument>`).
    pub channel: Arc<str>,
    pub time_ns: i64,
    pub price: f64,
    pub quantity: f64,
}

/// The hub's end of the trade queue.
#[derive(Debug)]
pub struct TradeTap {
    tx: mpsc::Sender<TappedTrade>,
    dropped: AtomicU64,
}

impl TradeTap {
    /// A tap feeding `tx`.
    pub fn new(tx: mpsc::Sender<TappedTrade>) -> Self {
        Self {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Offers a trade without waiting; a full queue drops it from the consumer
    /// (never from the feed) and counts it.
    pub fn offer(&self, trade: TappedTrade) {
        if self.tx.try_send(trade).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Trades the consumer could not take.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
