//! Twelve Data real-time prices (stocks, forex, crypto):
//! `wss://ws.twelvedata.com/v1/quotes/price?apikey=KEY` (Twelve Data docs,
//! "WebSocket", as read 2026-12-07):
//!
//! - `{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD"}}` is
//!   answered by `{"event":"subscribe-status","success":[..],"fails":[..]}`;
//!   a symbol in `fails` is reported (in `/health` and on
//!   `status.twelvedata.all`) and not asked again, the others stream;
//! - `{"event":"price","symbol","exchange","type","timestamp","price",
//!   "day_volume"}` becomes a `ticker` on `ticker.twelvedata.<SYMBOL>`
//!   (`EUR/USD` -> `EUR-USD`, `AAPL` stays `AAPL`, `BRK.B` -> `BRK_B`):
//!   `last` is the price (and `bid`/`ask` when the event has them),
//!   `volume_24h` the day volume;
//! - the client sends `{"action":"heartbeat"}` every 10 s; a connection
//!   with no message at all (heartbeat answers included) for
//!   `--stale-after` is replaced (prices alone may pause for hours while a
//!   market is closed);
//! - while the stream is down, `GET /price?symbol=X` (one credit per
//!   symbol) every `--rest-fallback-interval`, within
//!   `--twelvedata-credits-per-minute`.
//!
//! The API key goes in the WebSocket URL (the venue's only way) and in an
//! `Authorization: apikey KEY` header for REST; no log line or error
//! carries it (errors are scrubbed, see [`scrub`]).
//!
//! There are no trades and no books: analytics (candles, signals,
//! sentiment, scans) are built from trades, so this venue has none.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::{Exchange, ExchangeConfig, SessionFuture, SourceError, SourceStatus, TickerParser};
use super::{net, num};
use crate::feed::{Channel, Hub};
use crate::protocol::pb::{Ticker, event::Payload};

const VENUE: &str = "twelvedata";
/// The client's heartbeat period the docs ask for.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// tickwire's token for a Twelve Data symbol: `EUR/USD` -> `EUR-USD`.
pub fn channel_token(symbol: &str) -> String {
    symbol
        .trim()
        .to_ascii_uppercase()
        .chars()
        .map(|c| match c {
            '/' => '-',
            '.' | ':' => '_',
            c => c,
        })
        .collect()
}

#[derive(Debug)]
struct Symbol {
    /// As Twelve Data spells it (`EUR/USD`).
    venue: String,
    ticker: Arc<Channel>,
    failed: bool,
}

/// The API key; its `Debug` shows `***`, so no debug print carries it.
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The Twelve Data source.
#[derive(Debug)]
pub struct TwelveData {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    key: ApiKey,
    symbols: Vec<Symbol>,
    by_symbol: HashMap<String, usize>,
}

#[derive(Debug, Deserialize)]
struct Event {
    event: Option<String>,
    symbol: Option<String>,
    timestamp: Option<f64>,
    price: Option<f64>,
    bid: Option<f64>,
    ask: Option<f64>,
    day_volume: Option<f64>,
    #[serde(default)]
    fails: Option<Vec<serde_json::Value>>,
    status: Option<String>,
    message: Option<String>,
}

impl TwelveData {
    /// Resolves `ticker.twelvedata.<SYMBOL>` of each symbol.
    pub fn new(
        hub: Arc<Hub>,
        cfg: ExchangeConfig,
        key: String,
        symbols: &[String],
    ) -> Result<Self, crate::protocol::ChannelError> {
        let mut list = Vec::new();
        let mut by_symbol = HashMap::new();
        for s in symbols {
            let venue = s.trim().to_ascii_uppercase();
            let ticker = hub.channel(&format!("ticker.{VENUE}.{}", channel_token(&venue)))?;
            by_symbol.insert(venue.clone(), list.len());
            list.push(Symbol {
                venue,
                ticker,
                failed: false,
            });
        }
        Ok(Self {
            hub,
            cfg,
            key: ApiKey(key),
            symbols: list,
            by_symbol,
        })
    }

    fn url(&self) -> String {
        let sep = if self.cfg.ws_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}apikey={}", self.cfg.ws_url, self.key.0)
    }

    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        let mut ws = net::ws_connect(&self.url(), self.cfg.io_timeout).await?;
        let list: Vec<&str> = self
            .symbols
            .iter()
            .filter(|s| !s.failed)
            .map(|s| s.venue.as_str())
            .collect();
        if list.is_empty() {
            return Err(SourceError::Refused("every symbol was refused".into()));
        }
        let sub = serde_json::json!({"action": "subscribe", "params": {"symbols": list.join(",")}});
        ws.send(Message::text(sub.to_string()))
            .await
            .map_err(net::NetError::from)?;
        status.connected();
        tracing::info!(source = VENUE, "stream connected");
        let stale = self.cfg.stale_after;
        let mut last_any = Instant::now();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                msg = ws.next() => {
                    last_any = Instant::now();
                    let text = match msg {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None => return Err(SourceError::Closed),
                        Some(Err(e)) => return Err(net::NetError::from(e).into()),
                        Some(Ok(_)) => continue,
                    };
                    if let Err(e) = self.on_text(text.as_str(), status) {
                        super::skipped(VENUE, status, &e);
                    }
                }
                _ = heartbeat.tick() => {
                    let hb = serde_json::json!({"action": "heartbeat"}).to_string();
                    ws.send(Message::text(hb)).await.map_err(net::NetError::from)?;
                }
                _ = tokio::time::sleep_until((last_any + stale).into()) => {
                    status.stale(None, &format!("twelvedata: no message for {stale:?}"));
                    return Err(SourceError::Stale(stale));
                }
            }
        }
    }

    fn on_text(&mut self, text: &str, status: &SourceStatus) -> Result<(), SourceError> {
        let ev: Event = serde_json::from_str(text).map_err(|e| SourceError::Decode {
            what: "Twelve Data message",
            detail: e.to_string(),
        })?;
        match ev.event.as_deref() {
            Some("price") => {
                let sym = ev
                    .symbol
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let (Some(&idx), Some(price)) = (self.by_symbol.get(&sym), ev.price) else {
                    return Ok(());
                };
                let time_ns = ev
                    .timestamp
                    .map_or_else(crate::protocol::now_ns, |t| (t * 1e9) as i64);
                let ticker = Ticker {
                    last: price,
                    bid: ev.bid.unwrap_or(0.0),
                    ask: ev.ask.unwrap_or(0.0),
                    volume_24h: ev.day_volume.unwrap_or(0.0),
                    ..Default::default()
                };
                status.messages(1);
                self.hub.publish_or_log(
                    &self.symbols[idx].ticker,
                    time_ns,
                    Payload::Ticker(ticker),
                );
            }
            Some("subscribe-status") => {
                for f in ev.fails.unwrap_or_default() {
                    let sym = f["symbol"]
                        .as_str()
                        .or(f.as_str())
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let Some(&idx) = self.by_symbol.get(&sym) else {
                        continue;
                    };
                    let s = &mut self.symbols[idx];
                    s.failed = true;
                    let why = format!(
                        "twelvedata refused {sym} (subscribe-status fails: unknown or not in the plan)"
                    );
                    tracing::error!(source = VENUE, "{why}; symbol skipped");
                    status.instrument_failed(&channel_token(&sym), &why);
                }
            }
            Some("heartbeat") => {}
            _ if ev.status.as_deref() == Some("error") => {
                let why = format!(
                    "twelvedata: {}",
                    scrub(ev.message.as_deref().unwrap_or("error"), &self.key.0)
                );
                tracing::warn!(source = VENUE, "{why}");
                status.set_error(&why);
            }
            _ => {}
        }
        Ok(())
    }
}

/// `text` without the API key.
pub fn scrub(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_string()
    } else {
        text.replace(key, "***")
    }
}

#[derive(Debug, Deserialize)]
struct RestPrice {
    price: Option<String>,
    status: Option<String>,
    message: Option<String>,
}

/// Reads `/price?symbol=X`: `{"price":"200.99001"}`.
fn parse_rest_price(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let reply: RestPrice = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: "REST price",
        detail: e.to_string(),
    })?;
    match (reply.price, reply.status.as_deref()) {
        (Some(p), _) => Ok(vec![(
            crate::protocol::now_ns(),
            Ticker {
                last: num(&p, "REST price")?,
                ..Default::default()
            },
        )]),
        _ => Err(SourceError::Refused(
            reply.message.unwrap_or_else(|| "no price".into()),
        )),
    }
}

impl Exchange for TwelveData {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let polls = self
            .symbols
            .iter()
            .map(|s| {
                let sym = s.venue.replace('/', "%2F");
                (format!("/price?symbol={sym}"), s.ticker.clone())
            })
            .collect();
        (polls, parse_rest_price)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(async move {
            let key = self.key.0.clone();
            self.stream_session(status).await.map_err(|e| {
                let text = e.to_string();
                if !key.is_empty() && text.contains(&key) {
                    SourceError::Refused(scrub(&text, &key))
                } else {
                    e
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_become_channel_tokens() {
        assert_eq!(channel_token("EUR/USD"), "EUR-USD");
        assert_eq!(channel_token("AAPL"), "AAPL");
        assert_eq!(channel_token("brk.b"), "BRK_B");
        assert_eq!(
            scrub("bad url ws://x?apikey=SECRET", "SECRET"),
            "bad url ws://x?apikey=***"
        );
        let t = parse_rest_price(br#"{"price":"200.99001"}"#).unwrap();
        assert_eq!(t[0].1.last, 200.99001);
        assert!(parse_rest_price(br#"{"code":401,"message":"bad key","status":"error"}"#).is_err());
    }
}
