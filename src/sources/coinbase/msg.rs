//! Coinbase Advanced Trade market data messages (Advanced Trade docs,
//! "WebSocket Overview" and "WebSocket Channels": `level2` answered on
//! `l2_data`, `market_trades`, `ticker`, `heartbeats`; REST "Get Public
//! Product Ticker"; as of 2026-05).

use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::super::{SourceError, num};
use crate::protocol::pb::Ticker;

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    what: &'static str,
) -> Result<T, SourceError> {
    serde_json::from_value(v).map_err(|e| SourceError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// RFC 3339 (`2023-02-09T20:32:50.714964855Z`) in ns since the epoch; 0
/// when unreadable.
pub(super) fn time_ns(s: &str) -> i64 {
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Every message: `channel`, the connection's `sequence_num`, and events;
/// or an error (`type: "error"`).
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    #[serde(default)]
    pub(super) channel: String,
    pub(super) sequence_num: Option<u64>,
    #[serde(default)]
    pub(super) timestamp: String,
    #[serde(default)]
    pub(super) events: Vec<serde_json::Value>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) message: Option<String>,
    pub(super) reason: Option<String>,
}

/// One `l2_data` event: a product's snapshot or updates.
#[derive(Debug, Deserialize)]
pub(super) struct L2Event {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) product_id: String,
    #[serde(default)]
    pub(super) updates: Vec<L2Update>,
}

/// `side` is `bid` or `offer`; `new_quantity` is the level's new size.
#[derive(Debug, Deserialize)]
pub struct L2Update {
    pub side: String,
    pub price_level: String,
    pub new_quantity: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct TradesEvent {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) trades: Vec<CoinbaseTrade>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CoinbaseTrade {
    pub(super) trade_id: String,
    pub(super) product_id: String,
    pub(super) price: String,
    pub(super) size: String,
    pub(super) side: String,
    pub(super) time: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct TickerEvent {
    #[serde(default)]
    pub(super) tickers: Vec<CoinbaseTicker>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CoinbaseTicker {
    pub(super) product_id: String,
    pub(super) price: String,
    #[serde(default)]
    pub(super) volume_24_h: String,
    #[serde(default)]
    pub(super) low_24_h: String,
    #[serde(default)]
    pub(super) high_24_h: String,
    #[serde(default)]
    pub(super) price_percent_chg_24_h: String,
    #[serde(default)]
    pub(super) best_bid: String,
    #[serde(default)]
    pub(super) best_bid_quantity: String,
    #[serde(default)]
    pub(super) best_ask: String,
    #[serde(default)]
    pub(super) best_ask_quantity: String,
}

/// An optional decimal field: empty is 0.
fn opt(s: &str) -> Result<f64, SourceError> {
    if s.is_empty() {
        Ok(0.0)
    } else {
        num(s, "ticker")
    }
}

pub(super) fn ticker_payload(t: &CoinbaseTicker) -> Result<Ticker, SourceError> {
    let last = num(&t.price, "ticker")?;
    let pct = opt(&t.price_percent_chg_24_h)?;
    Ok(Ticker {
        last,
        bid: opt(&t.best_bid)?,
        bid_size: opt(&t.best_bid_quantity)?,
        ask: opt(&t.best_ask)?,
        ask_size: opt(&t.best_ask_quantity)?,
        open_24h: if pct > -100.0 {
            last / (1.0 + pct / 100.0)
        } else {
            0.0
        },
        high_24h: opt(&t.high_24_h)?,
        low_24h: opt(&t.low_24_h)?,
        change_pct_24h: pct,
        volume_24h: opt(&t.volume_24_h)?,
        quote_volume_24h: 0.0,
    })
}

/// `{"type":"subscribe"|"unsubscribe","product_ids":[..],"channel":..}`:
/// one channel per message, as Coinbase requires.
pub(super) fn subscription(kind: &str, channel: &str, products: &[String]) -> Message {
    let mut v = serde_json::json!({"type": kind, "channel": channel});
    if !products.is_empty() {
        v["product_ids"] = products.into();
    }
    Message::text(v.to_string())
}

#[derive(Debug, Deserialize)]
struct RestTicker {
    #[serde(default)]
    trades: Vec<CoinbaseTrade>,
    #[serde(default)]
    best_bid: String,
    #[serde(default)]
    best_ask: String,
}

/// Reads `GET /api/v3/brokerage/market/products/{id}/ticker?limit=1`: the
/// last trade's price and the best bid and ask (no 24 h figures).
pub(super) fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let reply: RestTicker = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: "REST ticker",
        detail: e.to_string(),
    })?;
    let Some(last) = reply.trades.first() else {
        return Ok(Vec::new());
    };
    let ticker = Ticker {
        last: num(&last.price, "ticker")?,
        bid: opt(&reply.best_bid)?,
        ask: opt(&reply.best_ask)?,
        ..Default::default()
    };
    Ok(vec![(time_ns(&last.time), ticker)])
}

/// Reads `data` as every message the Coinbase source decodes (the
/// envelope, then level2 updates into a book, trades or tickers, and a REST
/// ticker), without a hub: the entry of the `coinbase_msg` fuzz target (see
/// `crate::fuzz`). Errors are expected; a panic is a bug.
pub(crate) fn decode_untrusted(data: &[u8]) {
    use super::super::local_book::{LocalBook, Side, TopView};
    let _ = parse_rest_ticker(data);
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    let _ = time_ns(&env.timestamp);
    for ev in env.events {
        match env.channel.as_str() {
            "l2_data" => {
                let Ok(ev) = decode::<L2Event>(ev, "level2 event") else {
                    continue;
                };
                let empty: [Vec<String>; 0] = [];
                let Ok(mut book) = LocalBook::from_levels(&empty, &empty) else {
                    continue;
                };
                for u in &ev.updates {
                    let side = if u.side == "bid" {
                        Side::Bid
                    } else {
                        Side::Ask
                    };
                    if book.set(side, &u.price_level, &u.new_quantity).is_err() {
                        break;
                    }
                }
                let _ = TopView::default().advance(&book, 50);
            }
            "market_trades" => {
                if let Ok(ev) = decode::<TradesEvent>(ev, "market_trades event") {
                    for t in &ev.trades {
                        let _ = (
                            num(&t.price, "trade"),
                            num(&t.size, "trade"),
                            time_ns(&t.time),
                        );
                    }
                }
            }
            "ticker" => {
                if let Ok(ev) = decode::<TickerEvent>(ev, "ticker event") {
                    for t in &ev.tickers {
                        let _ = ticker_payload(t);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_the_rest_ticker_are_read() {
        assert_eq!(
            time_ns("2023-02-09T20:32:50.714964855Z"),
            1_675_974_770_714_964_855
        );
        assert_eq!(time_ns("not a time"), 0);
        let body =
            br#"{"trades":[{"trade_id":"9","product_id":"BTC-USD","price":"100.5","size":"1",
            "time":"2023-02-09T20:32:50Z","side":"BUY","bid":"","ask":""}],
            "best_bid":"100","best_ask":"101"}"#;
        let t = parse_rest_ticker(body).unwrap();
        assert_eq!((t[0].1.last, t[0].1.bid, t[0].1.ask), (100.5, 100.0, 101.0));
    }
}
