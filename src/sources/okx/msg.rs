//! OKX WebSocket and REST messages (OKX API v5 docs, "WebSocket",
//! "Tickers channel", "Trades channel", "GET / Ticker").

use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::super::{SourceError, num};
use crate::protocol::pb::Ticker;

pub(super) fn ts_ns(ts: &str) -> i64 {
    ts.parse::<i64>().unwrap_or(0).saturating_mul(1_000_000)
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    what: &'static str,
) -> Result<T, SourceError> {
    serde_json::from_value(v).map_err(|e| SourceError::Decode {
        what,
        detail: e.to_string(),
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct Arg {
    pub(super) channel: String,
    #[serde(rename = "instId", default)]
    pub(super) inst_id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    pub(super) event: Option<String>,
    pub(super) code: Option<String>,
    pub(super) msg: Option<String>,
    pub(super) id: Option<String>,
    pub(super) arg: Option<Arg>,
    pub(super) action: Option<String>,
    pub(super) data: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OkxTicker {
    pub(super) last: String,
    pub(super) bid_px: String,
    pub(super) bid_sz: String,
    pub(super) ask_px: String,
    pub(super) ask_sz: String,
    pub(super) open24h: String,
    pub(super) high24h: String,
    pub(super) low24h: String,
    pub(super) vol24h: String,
    pub(super) vol_ccy24h: String,
    pub(super) ts: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OkxTrade {
    pub(super) trade_id: String,
    pub(super) px: String,
    pub(super) sz: String,
    pub(super) side: String,
    pub(super) ts: String,
    #[serde(default)]
    pub(super) count: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RestReply<T> {
    pub(super) code: String,
    #[serde(default)]
    pub(super) msg: String,
    #[serde(default = "Vec::new")]
    pub(super) data: Vec<T>,
}

pub(super) fn ticker_payload(t: &OkxTicker) -> Result<Ticker, SourceError> {
    let last = num(&t.last, "ticker")?;
    let open = num(&t.open24h, "ticker")?;
    Ok(Ticker {
        last,
        bid: num(&t.bid_px, "ticker")?,
        bid_size: num(&t.bid_sz, "ticker")?,
        ask: num(&t.ask_px, "ticker")?,
        ask_size: num(&t.ask_sz, "ticker")?,
        open_24h: open,
        high_24h: num(&t.high24h, "ticker")?,
        low_24h: num(&t.low24h, "ticker")?,
        change_pct_24h: if open > 0.0 {
            (last - open) / open * 100.0
        } else {
            0.0
        },
        volume_24h: num(&t.vol24h, "ticker")?,
        quote_volume_24h: num(&t.vol_ccy24h, "ticker")?,
    })
}

pub(super) fn op(op: &str, id: Option<&str>, args: &[(&str, &str)]) -> Message {
    let args: Vec<serde_json::Value> = args
        .iter()
        .map(|(channel, inst)| serde_json::json!({"channel": channel, "instId": inst}))
        .collect();
    let mut v = serde_json::json!({"op": op, "args": args});
    if let Some(id) = id {
        v["id"] = id.into();
    }
    Message::text(v.to_string())
}

/// Reads `/api/v5/market/ticker?instId=X`.
pub(super) fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let reply: RestReply<OkxTicker> =
        serde_json::from_slice(body).map_err(|e| SourceError::Decode {
            what: "REST ticker",
            detail: e.to_string(),
        })?;
    if reply.code != "0" {
        return Err(SourceError::Refused(format!(
            "{} {}",
            reply.code, reply.msg
        )));
    }
    reply
        .data
        .iter()
        .map(|t| Ok((ts_ns(&t.ts), ticker_payload(t)?)))
        .collect()
}

/// Reads `data` as every message the OKX source decodes (the envelope, then
/// tickers, trades or book snapshots and updates into a book with its
/// checksum check, and a REST ticker), as the source does but without a
/// hub: the entry of the `okx_msg` fuzz target (see `crate::fuzz`). Errors
/// are expected; a panic is a bug.
pub(crate) fn decode_untrusted(data: &[u8]) {
    use super::super::local_book::LocalBook;
    use super::sync::{self, BookSync, OkxBook};
    let _ = parse_rest_ticker(data);
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    let (Some(arg), Some(data)) = (env.arg, env.data) else {
        return;
    };
    match arg.channel.as_str() {
        "tickers" => {
            for t in decode::<Vec<OkxTicker>>(data, "ticker").unwrap_or_default() {
                let _ = (ts_ns(&t.ts), ticker_payload(&t));
            }
        }
        "trades" => {
            for t in decode::<Vec<OkxTrade>>(data, "trade").unwrap_or_default() {
                let _ = (num(&t.px, "trade"), num(&t.sz, "trade"), ts_ns(&t.ts));
                let _ = t.count.and_then(|c| c.parse::<u32>().ok());
            }
        }
        "books" => {
            let mut state = BookSync::awaiting(false);
            for b in decode::<Vec<OkxBook>>(data, "book").unwrap_or_default() {
                let step = match LocalBook::from_levels(&b.bids, &b.asks) {
                    Ok(book) if !state.is_live() => sync::check(&book, b.checksum)
                        .and_then(|()| state.start(book, b.seq_id.unwrap_or(0), false)),
                    _ => state.update(&b).map(drop),
                };
                if step.is_err() {
                    break;
                }
            }
        }
        _ => {}
    }
}
