//! Binance trades: deduplicated by id across overlapping connections, and
//! id gaps filled from `GET /api/v3/historicalTrades?fromId=` (Spot API
//! docs, "Old trade lookup", weight 25, as of 2025-11-12) before the
//! stream's later trades, so subscribers get every id once, in order.

use serde::Deserialize;
use tokio::sync::mpsc;

use super::super::rest::RestError;
use super::super::{SourceError, SourceStatus, num};
use super::msg::{TradeMsg, ms_to_ns};
use super::{Binance, Market, RestReply, VENUE};
use crate::feed::Hub;
use crate::protocol::pb::{Side as TradeSide, Trade, event::Payload};

/// One trade of `GET /api/v3/historicalTrades`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HistTrade {
    pub(super) id: u64,
    pub(super) price: String,
    pub(super) qty: String,
    pub(super) time: i64,
    pub(super) is_buyer_maker: bool,
}

/// Trades kept while a gap is fetched; beyond this the gap is given up.
pub(super) const MAX_PENDING_TRADES: usize = 10_000;
/// Most trades one backfill asks for (the endpoint's maximum).
pub(super) const BACKFILL_LIMIT: u64 = 1000;
/// Weight of `historicalTrades` (Spot API docs, "Old trade lookup").
pub(super) const BACKFILL_WEIGHT: u32 = 25;

impl Binance {
    /// Asks `historicalTrades` for the trades `from..from+limit` (ids).
    pub(super) fn fetch_trades(
        &self,
        idx: usize,
        tx: &mpsc::Sender<RestReply>,
        from: u64,
        limit: u64,
    ) {
        let path = format!(
            "/api/v3/historicalTrades?symbol={}&fromId={from}&limit={limit}",
            self.markets[idx].inst.joined()
        );
        let rest = self.cfg.rest.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let result = rest.get(&path, BACKFILL_WEIGHT).await.and_then(|body| {
                serde_json::from_slice::<Vec<HistTrade>>(&body).map_err(|e| RestError::Decode {
                    venue: VENUE,
                    detail: e.to_string(),
                })
            });
            let _ = tx.send(RestReply::Trades(idx, result)).await;
        });
    }

    /// The REST trades of a gap, then the trades that came meanwhile, in
    /// id order; what REST could not give is reported as missing.
    pub(super) fn on_backfill(
        &mut self,
        idx: usize,
        result: Result<Vec<HistTrade>, RestError>,
        status: &SourceStatus,
    ) -> Result<(), SourceError> {
        let m = &mut self.markets[idx];
        let pending = m.backfill.take().unwrap_or_default();
        let upto = pending.first().map_or(u64::MAX, |t| t.t);
        match result {
            Ok(mut trades) => {
                trades.sort_by_key(|t| t.id);
                for h in trades {
                    if m.last_trade.is_some_and(|l| h.id <= l) || h.id >= upto {
                        continue;
                    }
                    let trade = Trade {
                        price: num(&h.price, "backfilled trade")?,
                        quantity: num(&h.qty, "backfilled trade")?,
                        side: if h.is_buyer_maker {
                            TradeSide::Sell
                        } else {
                            TradeSide::Buy
                        } as i32,
                        trade_id: h.id.to_string(),
                        count: 0,
                    };
                    m.last_trade = Some(h.id);
                    status.backfilled(1);
                    self.hub.publish_or_log(
                        &m.channels.trade,
                        ms_to_ns(h.time),
                        Payload::Trade(trade),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(source = "binance", error = %e, "trade backfill failed");
                status.set_error(&e.to_string());
            }
        }
        for t in pending {
            publish_trade(&self.hub, &mut self.markets[idx], &t, status)?;
        }
        Ok(())
    }
}

/// Publishes a stream trade (ids after the last published one only),
/// reporting any ids still missing before it.
pub(super) fn publish_trade(
    hub: &Hub,
    m: &mut Market,
    t: &TradeMsg,
    status: &SourceStatus,
) -> Result<(), SourceError> {
    if m.last_trade.is_some_and(|last| t.t <= last) {
        return Ok(());
    }
    if let Some(last) = m.last_trade
        && t.t > last + 1
    {
        let why = format!(
            "binance {}: trade ids {}..={} missing (not recovered over REST)",
            m.inst.joined(),
            last + 1,
            t.t - 1
        );
        tracing::warn!("{why}");
        status.set_error(&why);
    }
    let trade = Trade {
        price: num(&t.p, "trade")?,
        quantity: num(&t.q, "trade")?,
        side: if t.m { TradeSide::Sell } else { TradeSide::Buy } as i32,
        trade_id: t.t.to_string(),
        count: 0,
    };
    m.last_trade = Some(t.t);
    hub.publish_or_log(&m.channels.trade, ms_to_ns(t.time), Payload::Trade(trade));
    Ok(())
}
