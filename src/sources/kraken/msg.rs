//! Kraken Spot WebSocket v2 and REST messages (Kraken API Center, "Spot
//! WebSocket v2": `book`, `trade`, `ticker`, `subscribe`; "Book checksum
//! (WebSocket v2)"; REST "Get Ticker Information"; as read 2026-12-07).
//!
//! Prices and quantities are JSON numbers written with the instrument's
//! full precision (`0.00100000`). They are kept as the raw JSON text
//! ([`RawValue`]), never read through `f64`, because the checksum is
//! computed over that text.

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

use super::super::local_book::{LocalBook, Side};
use super::super::{Pair, SourceError};
use crate::protocol::pb::Ticker;

/// Any message: a channel push (`channel`, `type`, `data`) or a method
/// answer (`method`, `success`, `error`).
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    pub(super) channel: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) data: Option<Box<RawValue>>,
    pub(super) method: Option<String>,
    pub(super) success: Option<bool>,
    pub(super) error: Option<String>,
    pub(super) symbol: Option<String>,
    pub(super) result: Option<serde_json::Value>,
}

/// One `[price, qty]` level with the numbers' text as sent.
#[derive(Debug, Deserialize)]
pub(super) struct RawLevel {
    pub(super) price: Box<RawValue>,
    pub(super) qty: Box<RawValue>,
}

impl RawLevel {
    pub(super) fn texts(&self) -> [&str; 2] {
        [self.price.get(), self.qty.get()]
    }
}

/// One `book` snapshot or update entry.
#[derive(Debug, Deserialize)]
pub(super) struct KrakenBook {
    pub(super) symbol: String,
    #[serde(default)]
    pub(super) bids: Vec<RawLevel>,
    #[serde(default)]
    pub(super) asks: Vec<RawLevel>,
    pub(super) checksum: u32,
    pub(super) timestamp: Option<String>,
}

/// One `trade` entry.
#[derive(Debug, Deserialize)]
pub(super) struct KrakenTrade {
    pub(super) symbol: String,
    pub(super) side: String,
    pub(super) price: f64,
    pub(super) qty: f64,
    pub(super) trade_id: u64,
    pub(super) timestamp: String,
}

/// One `ticker` entry.
#[derive(Debug, Deserialize)]
pub(super) struct KrakenTicker {
    pub(super) symbol: String,
    pub(super) bid: f64,
    pub(super) bid_qty: f64,
    pub(super) ask: f64,
    pub(super) ask_qty: f64,
    pub(super) last: f64,
    pub(super) volume: f64,
    #[serde(default)]
    pub(super) vwap: f64,
    pub(super) low: f64,
    pub(super) high: f64,
    pub(super) change: f64,
    pub(super) change_pct: f64,
    pub(super) timestamp: Option<String>,
}

pub(super) fn decode<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    what: &'static str,
) -> Result<T, SourceError> {
    serde_json::from_str(raw.get()).map_err(|e| SourceError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// RFC 3339 (`2023-09-25T07:49:37.708706Z`) in ns since the epoch; 0 when unreadable.
pub(super) fn ts_ns(ts: Option<&str>) -> i64 {
    ts.and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `BTC-USD` -> `BTC/USD`, the v2 symbol.
pub(super) fn ws_symbol(inst: &Pair) -> String {
    format!("{}/{}", inst.base, inst.quote)
}

/// A `subscribe`/`unsubscribe` of one channel for `symbols`.
pub(super) fn method(
    method: &str,
    channel: &str,
    symbols: &[String],
    depth: Option<usize>,
    req_id: u64,
) -> Message {
    let mut params = serde_json::json!({"channel": channel, "symbol": symbols});
    if let Some(d) = depth {
        params["depth"] = d.into();
    }
    if method == "subscribe" {
        // books start with a snapshot; trades only from now (ids dedup seams)
        params["snapshot"] = (channel != "trade").into();
    }
    Message::text(
        serde_json::json!({"method": method, "params": params, "req_id": req_id}).to_string(),
    )
}

/// `.` removed, then leading zeros (Kraken's checksum text of a number).
fn push_number(out: &mut String, text: &str) {
    let start = out.len();
    for c in text.chars().filter(|c| *c != '.') {
        if c == '0' && out.len() == start {
            continue;
        }
        out.push(c);
    }
}

/// Kraken's book checksum: the top 10 asks (low to high) then the top 10
/// bids (high to low), each as price then qty text (`.` and leading zeros
/// removed), CRC32 of the concatenation.
pub(super) fn checksum(book: &LocalBook) -> u32 {
    let mut text = String::with_capacity(20 * 24);
    for side in [Side::Ask, Side::Bid] {
        for (px, sz) in book.top_text(side, 10) {
            push_number(&mut text, px);
            push_number(&mut text, sz);
        }
    }
    crc32fast::hash(text.as_bytes())
}

#[derive(Debug, Deserialize)]
struct RestReply {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    result: std::collections::HashMap<String, RestTicker>,
}

/// `GET /0/public/Ticker` entry: arrays of decimal strings.
#[derive(Debug, Deserialize)]
struct RestTicker {
    a: Vec<String>,
    b: Vec<String>,
    c: Vec<String>,
    v: Vec<String>,
    l: Vec<String>,
    h: Vec<String>,
    o: String,
}

/// Reads `/0/public/Ticker?pair=X`.
pub(super) fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let reply: RestReply = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: "REST ticker",
        detail: e.to_string(),
    })?;
    if !reply.error.is_empty() {
        return Err(SourceError::Refused(reply.error.join("; ")));
    }
    let n = |v: &[String], i: usize| -> Result<f64, SourceError> {
        super::super::num(v.get(i).map_or("", String::as_str), "REST ticker")
    };
    reply
        .result
        .values()
        .map(|t| {
            let last = n(&t.c, 0)?;
            let open = super::super::num(&t.o, "REST ticker")?;
            Ok((
                crate::protocol::now_ns(),
                Ticker {
                    last,
                    bid: n(&t.b, 0)?,
                    bid_size: n(&t.b, 2)?,
                    ask: n(&t.a, 0)?,
                    ask_size: n(&t.a, 2)?,
                    open_24h: open,
                    high_24h: n(&t.h, 1)?,
                    low_24h: n(&t.l, 1)?,
                    change_pct_24h: if open > 0.0 {
                        (last - open) / open * 100.0
                    } else {
                        0.0
                    },
                    volume_24h: n(&t.v, 1)?,
                    quote_volume_24h: 0.0,
                },
            ))
        })
        .collect()
}

/// The WebSocket ticker as tickwire's.
pub(super) fn ticker_payload(t: &KrakenTicker) -> Ticker {
    let open = t.last - t.change;
    Ticker {
        last: t.last,
        bid: t.bid,
        bid_size: t.bid_qty,
        ask: t.ask,
        ask_size: t.ask_qty,
        open_24h: open,
        high_24h: t.high,
        low_24h: t.low,
        change_pct_24h: t.change_pct,
        volume_24h: t.volume,
        quote_volume_24h: t.volume * t.vwap,
    }
}

/// Reads `data` as every message the Kraken source decodes (the envelope,
/// then book levels into a book with its checksum, trades or tickers, and
/// a REST ticker), without a hub: the entry of the `kraken_msg` fuzz target
/// (see `crate::fuzz`). Errors are expected; a panic is a bug.
pub(crate) fn decode_untrusted(data: &[u8]) {
    let _ = parse_rest_ticker(data);
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    let (Some(channel), Some(data)) = (env.channel.as_deref(), env.data.as_deref()) else {
        return;
    };
    match channel {
        "book" => {
            for b in decode::<Vec<KrakenBook>>(data, "book").unwrap_or_default() {
                let empty: [Vec<String>; 0] = [];
                let Ok(mut book) = LocalBook::from_levels(&empty, &empty) else {
                    continue;
                };
                let levels = b.bids.iter().map(|l| (Side::Bid, l));
                let levels = levels.chain(b.asks.iter().map(|l| (Side::Ask, l)));
                if levels
                    .map(|(side, l)| {
                        let [price, qty] = l.texts();
                        book.set(side, price, qty)
                    })
                    .all(|set| set.is_ok())
                {
                    let _ = checksum(&book) == b.checksum;
                }
                let _ = ts_ns(b.timestamp.as_deref());
            }
        }
        "trade" => {
            for t in decode::<Vec<KrakenTrade>>(data, "trade").unwrap_or_default() {
                let _ = ts_ns(Some(&t.timestamp));
            }
        }
        "ticker" => {
            for t in decode::<Vec<KrakenTicker>>(data, "ticker").unwrap_or_default() {
                let _ = (ticker_payload(&t), ts_ns(t.timestamp.as_deref()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_follows_the_documented_text_rules() {
        // Kraken "Book checksum (WebSocket v2)": price 45285.2 -> "452852",
        // qty 0.00100000 -> "100000"; asks low to high, then bids high to low
        let asks = vec![vec!["45285.2", "0.00100000"], vec!["45286.4", "1.54571953"]];
        let bids = vec![vec!["45283.5", "0.10000000"], vec!["45283.4", "4.54582015"]];
        let book = LocalBook::from_levels(&bids, &asks).unwrap();
        // "452852100000" "452864154571953" "45283510000000" "452834454582015",
        // whose CRC32, computed independently with Python's zlib.crc32, is:
        assert_eq!(checksum(&book), 816_417_035);
    }

    #[test]
    fn timestamps_are_read_to_the_microsecond() {
        // 2026-12-07T06:00:00Z is 1796623200 s after the epoch
        assert_eq!(
            ts_ns(Some("2026-12-07T06:00:00.123456Z")),
            1_796_623_200_123_456_000
        );
        assert_eq!(ts_ns(Some("not a time")), 0);
        assert_eq!(ts_ns(None), 0);
    }

    #[test]
    fn numbers_keep_their_text_through_parsing() {
        let raw = r#"{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000}],"asks":[],"checksum":1}"#;
        let b: KrakenBook = serde_json::from_str(raw).unwrap();
        assert_eq!(b.bids[0].texts(), ["45283.5", "0.10000000"]);
    }
}
