//! Binance stream and REST messages (WebSocket Streams docs, "Trade
//! streams", "Individual Symbol Ticker Streams", "Diff. Depth Stream";
//! Spot API docs, "Order book", "24hr ticker price change statistics").

use serde::Deserialize;

use super::super::{SourceError, num};
use crate::protocol::pb::Ticker;

pub(super) fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

#[derive(Debug, Deserialize)]
pub(super) struct Combined {
    pub(super) data: StreamData,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "e")]
pub(super) enum StreamData {
    #[serde(rename = "trade")]
    Trade(TradeMsg),
    #[serde(rename = "24hrTicker")]
    Ticker(TickerMsg),
    #[serde(rename = "depthUpdate")]
    Depth(DepthMsg),
    /// The server is about to shut down (WebSocket Streams docs, "General
    /// WSS information"): reconnect early.
    #[serde(rename = "serverShutdown")]
    Shutdown,
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(super) struct TradeMsg {
    pub(super) s: String,
    pub(super) t: u64,
    pub(super) p: String,
    pub(super) q: String,
    #[serde(rename = "T")]
    pub(super) time: i64,
    /// The buyer was the maker: the taker sold.
    pub(super) m: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct TickerMsg {
    #[serde(rename = "E")]
    pub(super) time: i64,
    pub(super) s: String,
    #[serde(rename = "P")]
    pub(super) change_pct: String,
    pub(super) c: String,
    pub(super) b: String,
    #[serde(rename = "B")]
    pub(super) bid_size: String,
    pub(super) a: String,
    #[serde(rename = "A")]
    pub(super) ask_size: String,
    pub(super) o: String,
    pub(super) h: String,
    pub(super) l: String,
    pub(super) v: String,
    pub(super) q: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct DepthMsg {
    #[serde(rename = "E")]
    pub(super) time: i64,
    pub(super) s: String,
    #[serde(rename = "U")]
    pub(super) first: u64,
    #[serde(rename = "u")]
    pub(super) last: u64,
    pub(super) b: Vec<Vec<String>>,
    pub(super) a: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct DepthSnapshot {
    #[serde(rename = "lastUpdateId")]
    pub(super) last_update_id: u64,
    pub(super) bids: Vec<Vec<String>>,
    pub(super) asks: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RestTicker {
    pub(super) last_price: String,
    pub(super) bid_price: String,
    pub(super) bid_qty: String,
    pub(super) ask_price: String,
    pub(super) ask_qty: String,
    pub(super) open_price: String,
    pub(super) high_price: String,
    pub(super) low_price: String,
    pub(super) price_change_percent: String,
    pub(super) volume: String,
    pub(super) quote_volume: String,
    pub(super) close_time: i64,
}

pub(super) fn ticker_payload(t: &TickerMsg) -> Result<Ticker, SourceError> {
    Ok(Ticker {
        last: num(&t.c, "ticker")?,
        bid: num(&t.b, "ticker")?,
        bid_size: num(&t.bid_size, "ticker")?,
        ask: num(&t.a, "ticker")?,
        ask_size: num(&t.ask_size, "ticker")?,
        open_24h: num(&t.o, "ticker")?,
        high_24h: num(&t.h, "ticker")?,
        low_24h: num(&t.l, "ticker")?,
        change_pct_24h: num(&t.change_pct, "ticker")?,
        volume_24h: num(&t.v, "ticker")?,
        quote_volume_24h: num(&t.q, "ticker")?,
    })
}

pub(super) fn rest_ticker_payload(t: &RestTicker) -> Result<Ticker, SourceError> {
    Ok(Ticker {
        last: num(&t.last_price, "REST ticker")?,
        bid: num(&t.bid_price, "REST ticker")?,
        bid_size: num(&t.bid_qty, "REST ticker")?,
        ask: num(&t.ask_price, "REST ticker")?,
        ask_size: num(&t.ask_qty, "REST ticker")?,
        open_24h: num(&t.open_price, "REST ticker")?,
        high_24h: num(&t.high_price, "REST ticker")?,
        low_24h: num(&t.low_price, "REST ticker")?,
        change_pct_24h: num(&t.price_change_percent, "REST ticker")?,
        volume_24h: num(&t.volume, "REST ticker")?,
        quote_volume_24h: num(&t.quote_volume, "REST ticker")?,
    })
}

/// Reads `/api/v3/ticker/24hr?symbol=X`.
pub(super) fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let t: RestTicker = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: "REST ticker",
        detail: e.to_string(),
    })?;
    Ok(vec![(ms_to_ns(t.close_time), rest_ticker_payload(&t)?)])
}

/// Reads `data` as every message the Binance source decodes (a stream
/// message and its payload, a depth snapshot, a REST ticker) and applies a
/// depth diff or snapshot to a book, as the source does but without a hub:
/// the entry of the `binance_msg` fuzz target (see `crate::fuzz`). Errors
/// are expected; a panic is a bug.
pub(crate) fn decode_untrusted(data: &[u8]) {
    use super::super::local_book::{LocalBook, TopView};
    if let Ok(Combined { data: message }) = serde_json::from_slice::<Combined>(data) {
        match message {
            StreamData::Trade(t) => {
                let _ = (num(&t.p, "trade"), num(&t.q, "trade"), ms_to_ns(t.time));
            }
            StreamData::Ticker(t) => {
                let _ = (ticker_payload(&t), ms_to_ns(t.time));
            }
            StreamData::Depth(d) => {
                let empty: [Vec<String>; 0] = [];
                if let Ok(mut book) = LocalBook::from_levels(&empty, &empty) {
                    let mut last_u = d.first.saturating_sub(1);
                    if let Ok(true) = super::book::apply_diff(&mut book, &mut last_u, &d) {
                        let _ = TopView::default().advance(&book, 20);
                    }
                }
            }
            StreamData::Shutdown | StreamData::Other => {}
        }
    }
    if let Ok(snap) = serde_json::from_slice::<DepthSnapshot>(data)
        && let Ok(book) = LocalBook::from_levels(&snap.bids, &snap.asks)
    {
        let _ = TopView::of(&book.snapshot(20));
    }
    let _ = parse_rest_ticker(data);
}
