//! OKX public streams: `tickers`, `trades` and `books` via the `subscribe`
//! op, with the book's `seqId`/`prevSeqId` continuity and OKX's CRC32
//! checksum verified on every update. On a break or a mismatch the book is
//! resubscribed (unsubscribe + subscribe gives a fresh snapshot), and
//! subscribers get that snapshot as a `book_snapshot` event in the same
//! channel sequence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::local_book::{LocalBook, Side, TopView};
use super::net::Ws;
use super::{
    Exchange, ExchangeConfig, Instrument, MarketChannels, SessionFuture, SourceError, SourceStatus,
    TickerParser, net, num, publish, run_exchange,
};
use crate::feed::Channel;
use crate::feed::Hub;
use crate::protocol::pb::{Side as TradeSide, Ticker, Trade, event::Payload};

const VENUE: &str = "okx";
/// OKX closes connections silent for 30 s; a text `ping` keeps it open.
const KEEPALIVE: Duration = Duration::from_secs(20);

fn ts_ns(ts: &str) -> i64 {
    ts.parse::<i64>().unwrap_or(0).saturating_mul(1_000_000)
}

fn decode<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    what: &'static str,
) -> Result<T, SourceError> {
    serde_json::from_value(v).map_err(|e| SourceError::Decode {
        what,
        detail: e.to_string(),
    })
}

#[derive(Debug, Deserialize)]
struct Arg {
    channel: String,
    #[serde(rename = "instId", default)]
    inst_id: String,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    event: Option<String>,
    code: Option<String>,
    msg: Option<String>,
    arg: Option<Arg>,
    action: Option<String>,
    data: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxTicker {
    last: String,
    bid_px: String,
    bid_sz: String,
    ask_px: String,
    ask_sz: String,
    open24h: String,
    high24h: String,
    low24h: String,
    vol24h: String,
    vol_ccy24h: String,
    ts: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxTrade {
    trade_id: String,
    px: String,
    sz: String,
    side: String,
    ts: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxBook {
    #[serde(default)]
    asks: Vec<Vec<String>>,
    #[serde(default)]
    bids: Vec<Vec<String>>,
    ts: String,
    checksum: Option<i64>,
    seq_id: Option<i64>,
    prev_seq_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct RestReply {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: Vec<OkxTicker>,
}

fn ticker_payload(t: &OkxTicker) -> Result<Ticker, SourceError> {
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

#[derive(Debug)]
enum BookSync {
    /// Subscribed (or resubscribed); the next `snapshot` action starts the book.
    AwaitingSnapshot,
    Live {
        book: LocalBook,
        seq_id: i64,
    },
}

#[derive(Debug)]
struct Market {
    inst: Instrument,
    channels: MarketChannels,
    sync: BookSync,
    view: TopView,
}

/// The OKX source.
#[derive(Debug)]
pub struct Okx {
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    markets: Vec<Market>,
    by_inst: HashMap<String, usize>,
}

fn op(op: &str, args: &[(&str, &str)]) -> Message {
    let args: Vec<serde_json::Value> = args
        .iter()
        .map(|(channel, inst)| serde_json::json!({"channel": channel, "instId": inst}))
        .collect();
    Message::text(serde_json::json!({"op": op, "args": args}).to_string())
}

impl Okx {
    /// Resolves the channels of every configured instrument.
    pub fn new(hub: Arc<Hub>, cfg: ExchangeConfig) -> Result<Self, crate::protocol::ChannelError> {
        let mut markets = Vec::new();
        let mut by_inst = HashMap::new();
        for inst in &cfg.instruments {
            by_inst.insert(inst.dashed(), markets.len());
            markets.push(Market {
                channels: MarketChannels::resolve(&hub, VENUE, inst)?,
                inst: inst.clone(),
                sync: BookSync::AwaitingSnapshot,
                view: TopView::default(),
            });
        }
        Ok(Self {
            hub,
            cfg,
            markets,
            by_inst,
        })
    }

    /// Streams until shutdown, reconnecting with backoff; polls tickers
    /// over REST while the stream is down (see [`run_exchange`]).
    pub async fn run(self, status: Arc<SourceStatus>, shutdown: CancellationToken) {
        run_exchange(self, status, shutdown).await
    }

    async fn stream_session(&mut self, status: &SourceStatus) -> Result<(), SourceError> {
        let mut ws = net::ws_connect(&self.cfg.ws_url, self.cfg.io_timeout).await?;
        let insts: Vec<String> = self.markets.iter().map(|m| m.inst.dashed()).collect();
        let mut args = Vec::new();
        for inst in &insts {
            for ch in ["tickers", "trades", "books"] {
                args.push((ch, inst.as_str()));
            }
        }
        ws.send(op("subscribe", &args))
            .await
            .map_err(net::NetError::from)?;
        for m in &mut self.markets {
            m.sync = BookSync::AwaitingSnapshot;
        }
        status.connected();
        tracing::info!(source = "okx", "stream connected");
        let stale = self.cfg.stale_after;
        let mut last_data = Instant::now();
        let mut last_any = Instant::now();
        loop {
            let keepalive_at = last_any + KEEPALIVE.min(stale);
            tokio::select! {
                msg = ws.next() => {
                    last_any = Instant::now();
                    match msg {
                        None => return Err(SourceError::Closed),
                        Some(Err(e)) => return Err(net::NetError::from(e).into()),
                        Some(Ok(Message::Text(text))) if text.as_str() == "pong" => {}
                        Some(Ok(Message::Text(text))) => {
                            match self.on_text(text.as_str(), &mut ws, status).await {
                                Ok(true) => {
                                    last_data = Instant::now();
                                    status.messages(1);
                                }
                                Ok(false) => {}
                                Err(e @ SourceError::Refused(_)) => return Err(e),
                                Err(e) => {
                                    tracing::warn!(source = "okx", error = %e, "message skipped");
                                    status.set_error(&e.to_string());
                                }
                            }
                        }
                        Some(Ok(Message::Close(_))) => return Err(SourceError::Closed),
                        Some(Ok(_)) => {}
                    }
                }
                _ = tokio::time::sleep_until(keepalive_at.into()) => {
                    last_any = Instant::now();
                    ws.send(Message::text("ping")).await.map_err(net::NetError::from)?;
                }
                _ = tokio::time::sleep_until((last_data + stale).into()) => {
                    return Err(SourceError::Stale(stale));
                }
            }
        }
    }

    /// Handles one text message; true when it carried market data.
    async fn on_text(
        &mut self,
        text: &str,
        ws: &mut Ws,
        status: &SourceStatus,
    ) -> Result<bool, SourceError> {
        let env: Envelope = serde_json::from_str(text).map_err(|e| SourceError::Decode {
            what: "OKX message",
            detail: e.to_string(),
        })?;
        if let Some(event) = env.event.as_deref() {
            if event == "error" {
                return Err(SourceError::Refused(format!(
                    "{} {}",
                    env.code.unwrap_or_default(),
                    env.msg.unwrap_or_default()
                )));
            }
            return Ok(false); // subscribe / unsubscribe acknowledgements
        }
        let (Some(arg), Some(data)) = (env.arg, env.data) else {
            return Ok(false);
        };
        let Some(&idx) = self.by_inst.get(&arg.inst_id) else {
            return Ok(false);
        };
        match arg.channel.as_str() {
            "tickers" => {
                for t in decode::<Vec<OkxTicker>>(data, "ticker")? {
                    let ticker = ticker_payload(&t)?;
                    let ch = &self.markets[idx].channels.ticker;
                    publish(&self.hub, ch, ts_ns(&t.ts), Payload::Ticker(ticker));
                }
            }
            "trades" => {
                for t in decode::<Vec<OkxTrade>>(data, "trade")? {
                    let side = match t.side.as_str() {
                        "buy" => TradeSide::Buy,
                        "sell" => TradeSide::Sell,
                        _ => TradeSide::Unspecified,
                    };
                    let trade = Trade {
                        price: num(&t.px, "trade")?,
                        quantity: num(&t.sz, "trade")?,
                        side: side as i32,
                        trade_id: t.trade_id,
                    };
                    let ch = &self.markets[idx].channels.trade;
                    publish(&self.hub, ch, ts_ns(&t.ts), Payload::Trade(trade));
                }
            }
            "books" => {
                let snapshot = env.action.as_deref() == Some("snapshot");
                for b in decode::<Vec<OkxBook>>(data, "book")? {
                    if let Err(why) = self.on_book(idx, snapshot, &b) {
                        let inst = self.markets[idx].inst.dashed();
                        let why = format!("okx {inst}: {why}; resubscribing");
                        tracing::warn!("{why}");
                        status.resynced(&why);
                        self.markets[idx].sync = BookSync::AwaitingSnapshot;
                        let arg = [("books", inst.as_str())];
                        ws.send(op("unsubscribe", &arg))
                            .await
                            .map_err(net::NetError::from)?;
                        ws.send(op("subscribe", &arg))
                            .await
                            .map_err(net::NetError::from)?;
                        break;
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies one book message; `Err` says why the book must be rebuilt.
    fn on_book(&mut self, idx: usize, snapshot: bool, b: &OkxBook) -> Result<(), String> {
        let depth = self.cfg.book_depth;
        let market = &mut self.markets[idx];
        let time_ns = ts_ns(&b.ts);
        let seq_id = b.seq_id.unwrap_or(0);
        if snapshot {
            let book = LocalBook::from_levels(&b.bids, &b.asks).map_err(|e| e.to_string())?;
            check(&book, b.checksum)?;
            let snap = book.snapshot(depth);
            market.view = TopView::of(&snap);
            publish(
                &self.hub,
                &market.channels.book,
                time_ns,
                Payload::BookSnapshot(snap),
            );
            market.sync = BookSync::Live { book, seq_id };
            return Ok(());
        }
        let BookSync::Live { book, seq_id: last } = &mut market.sync else {
            return Ok(()); // updates before the fresh snapshot are dropped
        };
        if let Some(prev) = b.prev_seq_id
            && prev != *last
        {
            return Err(format!("prevSeqId {prev} does not follow seqId {last}"));
        }
        book.apply(Side::Bid, &b.bids)
            .and_then(|()| book.apply(Side::Ask, &b.asks))
            .map_err(|e| e.to_string())?;
        check(book, b.checksum)?;
        *last = seq_id;
        if let Some(update) = market.view.advance(book, depth) {
            publish(
                &self.hub,
                &market.channels.book,
                time_ns,
                Payload::BookUpdate(update),
            );
        }
        Ok(())
    }
}

impl Exchange for Okx {
    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser) {
        let polls = self
            .markets
            .iter()
            .map(|m| {
                let url = format!(
                    "{}/api/v5/market/ticker?instId={}",
                    self.cfg.rest_url,
                    m.inst.dashed()
                );
                (url, m.channels.ticker.clone())
            })
            .collect();
        (polls, parse_rest_ticker)
    }

    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a> {
        Box::pin(self.stream_session(status))
    }
}

fn check(book: &LocalBook, expected: Option<i64>) -> Result<(), String> {
    match expected {
        Some(want) if want != i64::from(book.okx_checksum()) => Err(format!(
            "checksum mismatch: exchange {want}, local {}",
            book.okx_checksum()
        )),
        _ => Ok(()),
    }
}

/// Reads `/api/v5/market/ticker?instId=X`.
fn parse_rest_ticker(body: &[u8]) -> Result<Vec<(i64, Ticker)>, SourceError> {
    let reply: RestReply = serde_json::from_slice(body).map_err(|e| SourceError::Decode {
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
