//! Bybit v5 public spot messages (V5 docs, "WebSocket Stream: Connect",
//! "Orderbook", "Trade", "Ticker", and "Get Tickers", as of 2026-05).

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

/// Any message of the public stream: an op answer (`op`, `success`,
/// `ret_msg`, `req_id`) or a topic push (`topic`, `type`, `ts`, `data`).
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    pub(super) op: Option<String>,
    pub(super) success: Option<bool>,
    #[serde(default)]
    pub(super) ret_msg: String,
    pub(super) req_id: Option<String>,
    pub(super) topic: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) ts: i64,
    pub(super) data: Option<serde_json::Value>,
}

/// `orderbook.50.<SYMBOL>` data: `u` is the update id, continuous per topic.
#[derive(Debug, Clone, Deserialize)]
pub struct BybitBook {
    #[serde(default)]
    pub b: Vec<Vec<String>>,
    #[serde(default)]
    pub a: Vec<Vec<String>>,
    pub u: u64,
}

/// One `publicTrade.<SYMBOL>` fill; `S` is the taker's side.
#[derive(Debug, Deserialize)]
pub(super) struct BybitTrade {
    pub(super) i: String,
    #[serde(rename = "T")]
    pub(super) time_ms: i64,
    pub(super) p: String,
    pub(super) v: String,
    #[serde(rename = "S")]
    pub(super) side: String,
}

/// `tickers.<SYMBOL>` data, and an entry of `GET /v5/market/tickers`
/// (only REST carries the best bid and ask).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BybitTicker {
    pub(super) last_price: String,
    pub(super) high_price24h: String,
    pub(super) low_price24h: String,
    pub(super) prev_price24h: String,
    pub(super) volume24h: String,
    pub(super) turnover24h: String,
    #[serde(default)]
    pub(super) bid1_price: Option<String>,
    #[serde(default)]
    pub(super) bid1_size: Option<String>,
    #[serde(default)]
    pub(super) ask1_price: Option<String>,
    #[serde(default)]
    pub(super) ask1_size: Option<String>,
}

pub(super) fn ticker_payload(t: &BybitTicker) -> Result<Ticker, SourceError> {
    let last = num(&t.last_price, "ticker")?;
    let open = num(&t.prev_price24h, "ticker")?;
    let opt = |v: &Option<String>| v.as_deref().map_or(Ok(0.0), |s| num(s, "ticker"));
    Ok(Ticker {
        last,
        bid: opt(&t.bid1_price)?,
        bid_size: opt(&t.bid1_size)?,
        ask: opt(&t.ask1_price)?,
        ask_size: opt(&t.ask1_size)?,
        open_24h: open,
        high_24h: num(&t.high_price24h, "ticker")?,
        low_24h: num(&t.low_price24h, "ticker")?,
        change_pct_24h: if open > 0.0 {
            (last - open) / open * 100.0
        } else {
            0.0
        },
        volume_24h: num(&t.volume24h, "ticker")?,
        quote_volume_24h: num(&t.turnover24h, "ticker")?,
    })
}

/// `{"req_id":..,"op":..,"args":[..]}`.
pub(super) fn op(op: &str, req_id: &str, args: &[String]) -> Message {
    Message::text(serde_json::json!({"req_id": req_id, "op": op, "args": args}).to_string())
}

#[derive(Debug, Deserialize)]
struct RestReply {
    #[serde(rename = "retCode")]
    ret_code: i64,
    #[serde(rename = "retMsg", default)]
    ret_msg: String,
    #[serde(default)]
    result: Option<RestList>,
    #[serde(default)]
    time: i64,
}

#[derive(Debug, Deserialize)]
struct RestList {
    #[serde(default)]
    list: Vec<BybitTicker>,
}

/// Reads `GET /v5/market/tickers?category=spot&symbol=X`.
pub(super) fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let reply: RestReply = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: "REST ticker",
        detail: e.to_string(),
    })?;
    if reply.ret_code != 0 {
        return Err(SourceError::Refused(format!(
            "{} {}",
            reply.ret_code, reply.ret_msg
        )));
    }
    let time_ns = reply.time.saturating_mul(1_000_000);
    reply
        .result
        .map(|r| r.list)
        .unwrap_or_default()
        .iter()
        .map(|t| Ok((time_ns, ticker_payload(t)?)))
        .collect()
}

/// Reads `data` as every message the Bybit source decodes (the envelope,
/// then trades, a ticker or a book's levels into a book, and a REST
/// ticker), without a hub: the entry of the `bybit_msg` fuzz target (see
/// `crate::fuzz`). Errors are expected; a panic is a bug.
pub(crate) fn decode_untrusted(data: &[u8]) {
    use super::super::local_book::{LocalBook, TopView};
    let _ = parse_rest_ticker(data);
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    let (Some(topic), Some(data)) = (env.topic, env.data) else {
        return;
    };
    let _ = env.ts.saturating_mul(1_000_000);
    match topic.rsplit_once('.').map(|(stream, _)| stream) {
        Some("publicTrade") => {
            for t in decode::<Vec<BybitTrade>>(data, "trade").unwrap_or_default() {
                let _ = (num(&t.p, "trade"), num(&t.v, "trade"));
            }
        }
        Some("tickers") => {
            if let Ok(t) = decode::<BybitTicker>(data, "ticker") {
                let _ = ticker_payload(&t);
            }
        }
        Some(s) if s.starts_with("orderbook.") => {
            if let Ok(b) = decode::<BybitBook>(data, "book")
                && let Ok(book) = LocalBook::from_levels(&b.b, &b.a)
            {
                let _ = TopView::default().advance(&book, 50);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_ticker_carries_bid_and_ask() {
        let body = br#"{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[
            {"symbol":"BTCUSDT","bid1Price":"100","bid1Size":"1","ask1Price":"101","ask1Size":"2",
             "lastPrice":"100.5","prevPrice24h":"90","price24hPcnt":"0.1","highPrice24h":"110",
             "lowPrice24h":"80","turnover24h":"1000","volume24h":"10"}]},"time":1700000000000}"#;
        let t = parse_rest_ticker(body).unwrap();
        assert_eq!(t[0].0, 1_700_000_000_000_000_000);
        assert_eq!((t[0].1.bid, t[0].1.ask, t[0].1.last), (100.0, 101.0, 100.5));
        let refused = br#"{"retCode":10001,"retMsg":"Not supported symbols","result":{},"time":1}"#;
        assert!(parse_rest_ticker(refused).is_err());
    }
}
