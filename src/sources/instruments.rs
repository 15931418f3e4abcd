//! Instruments from the venue, not guessed: at start the configured
//! symbols are looked up in the venue's metadata (Binance
//! `GET /api/v3/exchangeInfo?symbols=[..]` in one call of weight 20, and
//! symbol by symbol only when one of them is invalid (400 -1121 refuses the
//! whole list); OKX `GET /api/v5/public/instruments?instType=SPOT`, one
//! call; Bybit `GET /v5/market/instruments-info?category=spot`, one call;
//! Coinbase `GET /api/v3/brokerage/market/products?product_type=SPOT`, one
//! call; Kraken `GET /0/public/AssetPairs`, one call). Unknown or
//! non-trading symbols are reported once and skipped; the others take
//! their price and size decimals from the tick and lot sizes. When the
//! metadata cannot be had (REST down, rate limited), every configured
//! symbol streams anyway with decimals read from the data, and `/health`
//! says so: REST being down never stops a stream.

use std::collections::HashMap;

use serde::Deserialize;

use super::rest::RestError;
use super::{ExchangeConfig, Pair, SourceStatus};

/// What the venue says about one symbol.
#[derive(Debug, PartialEq)]
enum Lookup {
    /// Trading, with (price, size) decimals.
    Trading(u32, u32),
    /// Listed but not trading, or unknown: skip it.
    Refused(String),
}

/// Fractional digits of a tick or lot size (`"0.01000000"` -> 2).
pub fn decimals_of(step: &str) -> u32 {
    match step.split_once('.') {
        Some((_, frac)) => frac.trim_end_matches('0').len() as u32,
        None => 0,
    }
}

#[derive(Debug, Deserialize)]
struct BinanceInfo {
    symbols: Vec<BinanceSymbol>,
}

#[derive(Debug, Deserialize)]
struct BinanceSymbol {
    symbol: String,
    status: String,
    #[serde(default)]
    filters: Vec<serde_json::Value>,
}

/// What each symbol is, by symbol, by exchangeInfo.
type Table = HashMap<String, Lookup>;

fn binance_lookup(sym: &BinanceSymbol) -> Lookup {
    if sym.status != "TRADING" {
        return Lookup::Refused(format!("status {}", sym.status));
    }
    let filter = |kind: &str, field: &str| {
        sym.filters
            .iter()
            .find(|f| f["filterType"] == kind)
            .and_then(|f| f[field].as_str())
            .map(decimals_of)
    };
    match (
        filter("PRICE_FILTER", "tickSize"),
        filter("LOT_SIZE", "stepSize"),
    ) {
        (Some(p), Some(s)) => Lookup::Trading(p, s),
        _ => Lookup::Refused("no PRICE_FILTER / LOT_SIZE".into()),
    }
}

fn binance_table(body: &[u8]) -> Result<Table, String> {
    let info: BinanceInfo = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(info
        .symbols
        .iter()
        .map(|s| (s.symbol.clone(), binance_lookup(s)))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxInstrument {
    inst_id: String,
    state: String,
    tick_sz: String,
    lot_sz: String,
}

#[derive(Debug, Deserialize)]
struct OkxReply {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: Vec<OkxInstrument>,
}

fn okx_table(body: &[u8]) -> Result<Table, String> {
    let reply: OkxReply = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if reply.code != "0" {
        return Err(format!("{} {}", reply.code, reply.msg));
    }
    Ok(reply
        .data
        .iter()
        .map(|i| {
            let lookup = if i.state != "live" {
                Lookup::Refused(format!("state {}", i.state))
            } else {
                Lookup::Trading(decimals_of(&i.tick_sz), decimals_of(&i.lot_sz))
            };
            (i.inst_id.clone(), lookup)
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitInstrument {
    symbol: String,
    status: String,
    price_filter: BybitPriceFilter,
    lot_size_filter: BybitLotFilter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitPriceFilter {
    tick_size: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitLotFilter {
    base_precision: String,
}

#[derive(Debug, Deserialize)]
struct BybitReply {
    #[serde(rename = "retCode")]
    ret_code: i64,
    #[serde(rename = "retMsg", default)]
    ret_msg: String,
    result: Option<BybitList>,
}

#[derive(Debug, Deserialize)]
struct BybitList {
    #[serde(default)]
    list: Vec<BybitInstrument>,
}

/// Bybit V5 "Get Instruments Info" (spot): `status` `Trading`, decimals
/// from `priceFilter.tickSize` and `lotSizeFilter.basePrecision`.
fn bybit_table(body: &[u8]) -> Result<Table, String> {
    let reply: BybitReply = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if reply.ret_code != 0 {
        return Err(format!("{} {}", reply.ret_code, reply.ret_msg));
    }
    Ok(reply
        .result
        .map(|r| r.list)
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let lookup = if i.status != "Trading" {
                Lookup::Refused(format!("status {}", i.status))
            } else {
                Lookup::Trading(
                    decimals_of(&i.price_filter.tick_size),
                    decimals_of(&i.lot_size_filter.base_precision),
                )
            };
            (i.symbol.clone(), lookup)
        })
        .collect())
}

#[derive(Debug, Deserialize)]
struct CoinbaseProduct {
    product_id: String,
    status: String,
    #[serde(default)]
    trading_disabled: bool,
    price_increment: String,
    base_increment: String,
}

#[derive(Debug, Deserialize)]
struct CoinbaseProducts {
    products: Vec<CoinbaseProduct>,
}

/// Coinbase Advanced Trade "List Public Products": `status` `online` and
/// not `trading_disabled`, decimals from `price_increment` and
/// `base_increment`.
fn coinbase_table(body: &[u8]) -> Result<Table, String> {
    let reply: CoinbaseProducts = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(reply
        .products
        .iter()
        .map(|p| {
            let lookup = if p.status != "online" || p.trading_disabled {
                Lookup::Refused(format!(
                    "status {}{}",
                    p.status,
                    if p.trading_disabled {
                        ", trading disabled"
                    } else {
                        ""
                    }
                ))
            } else {
                Lookup::Trading(
                    decimals_of(&p.price_increment),
                    decimals_of(&p.base_increment),
                )
            };
            (p.product_id.clone(), lookup)
        })
        .collect())
}

#[derive(Debug, Deserialize)]
struct KrakenPair {
    wsname: Option<String>,
    pair_decimals: u32,
    lot_decimals: u32,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KrakenReply {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    result: HashMap<String, KrakenPair>,
}

/// Kraken `GET /0/public/AssetPairs` (REST "Get Tradable Asset Pairs", as
/// read 2026-12-07): keyed by the WebSocket v2 name as tickwire spells it
/// (`wsname` `XBT/USD` is `BTC-USD`: v2 says BTC and DOGE where v1 and
/// REST say XBT and XDG); decimals from `pair_decimals` / `lot_decimals`,
/// which are also the precision Kraken writes its book numbers with.
fn kraken_table(body: &[u8]) -> Result<Table, String> {
    let reply: KrakenReply = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !reply.error.is_empty() {
        return Err(reply.error.join("; "));
    }
    let v2 = |a: &str| match a {
        "XBT" => "BTC".to_string(),
        "XDG" => "DOGE".to_string(),
        a => a.to_string(),
    };
    Ok(reply
        .result
        .values()
        .filter_map(|p| {
            let (base, quote) = p.wsname.as_deref()?.split_once('/')?;
            let key = format!("{}-{}", v2(base), v2(quote));
            let lookup = match p.status.as_deref() {
                None | Some("online") => Lookup::Trading(p.pair_decimals, p.lot_decimals),
                Some(s) => Lookup::Refused(format!("status {s}")),
            };
            Some((key, lookup))
        })
        .collect())
}

/// Binance's table for `symbols`: one call for all, or one per symbol
/// when the list holds an invalid one.
async fn binance_lookups(cfg: &ExchangeConfig, symbols: &[String]) -> Result<Table, String> {
    if symbols.len() > 1 {
        let list = symbols
            .iter()
            .map(|s| format!("%22{s}%22"))
            .collect::<Vec<_>>()
            .join(",");
        match cfg
            .rest
            .get(&format!("/api/v3/exchangeInfo?symbols=%5B{list}%5D"), 20)
            .await
        {
            Ok(body) => return binance_table(&body),
            Err(RestError::Refused { status: 400, .. }) => {} // one is invalid: ask each
            Err(e) => return Err(e.to_string()),
        }
    }
    let mut table = Table::new();
    for sym in symbols {
        match cfg
            .rest
            .get(&format!("/api/v3/exchangeInfo?symbol={sym}"), 20)
            .await
        {
            Ok(body) => table.extend(binance_table(&body)?),
            // 400 -1121 "Invalid symbol." names this symbol
            Err(RestError::Refused {
                status: 400,
                code,
                msg,
                ..
            }) => {
                table.insert(sym.clone(), Lookup::Refused(format!("{code} {msg}")));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(table)
}

/// Checks `cfg`'s instruments against the venue and keeps those it trades.
pub async fn validate(venue: &str, cfg: &mut ExchangeConfig, status: &SourceStatus) {
    let total = cfg.instruments.len();
    // venues keyed by the joined symbol (BTCUSDT); the others by BASE-QUOTE
    let joined = matches!(venue, "binance" | "bybit");
    let rest = cfg.rest.clone();
    let one_call = |path: &'static str, read: fn(&[u8]) -> Result<Table, String>| async move {
        match rest.get(path, 1).await {
            Ok(body) => read(&body),
            Err(e) => Err(e.to_string()),
        }
    };
    let table = match venue {
        "binance" => {
            let symbols: Vec<String> = cfg.instruments.iter().map(Pair::joined).collect();
            binance_lookups(cfg, &symbols).await
        }
        "bybit" => one_call("/v5/market/instruments-info?category=spot", bybit_table).await,
        "kraken" => one_call("/0/public/AssetPairs", kraken_table).await,
        "coinbase" => {
            let path = "/api/v3/brokerage/market/products?product_type=SPOT";
            one_call(path, coinbase_table).await
        }
        _ => one_call("/api/v5/public/instruments?instType=SPOT", okx_table).await,
    };
    let note = match table {
        Ok(table) => {
            let mut kept = Vec::new();
            for inst in std::mem::take(&mut cfg.instruments) {
                let key = if joined { inst.joined() } else { inst.dashed() };
                match table.get(&key) {
                    Some(Lookup::Trading(p, s)) => {
                        cfg.decimals.insert(inst.dashed(), (*p, *s));
                        kept.push(inst);
                    }
                    other => {
                        let why = match other {
                            Some(Lookup::Refused(why)) => why.as_str(),
                            _ => "not listed",
                        };
                        let why =
                            format!("{venue} does not trade {}: {why}; skipped", inst.dashed());
                        tracing::error!("{why}");
                        status.instrument_failed(&inst.dashed(), &why);
                    }
                }
            }
            cfg.instruments = kept;
            format!(
                "{} of {total} instruments validated against the venue's metadata",
                cfg.instruments.len()
            )
        }
        Err(e) => {
            tracing::warn!(source = venue, error = %e, "instrument metadata unavailable; streaming the configured symbols");
            format!(
                "metadata unavailable ({e}): streaming the configured symbols, decimals from the data"
            )
        }
    };
    status.metadata(&note);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_come_from_tick_and_lot_sizes() {
        assert_eq!(decimals_of("0.01000000"), 2);
        assert_eq!(decimals_of("1.00000000"), 0);
        assert_eq!(decimals_of("0.00000001"), 8);
        assert_eq!(decimals_of("10"), 0);
        let body = br#"{"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":[
            {"filterType":"PRICE_FILTER","tickSize":"0.01000000"},
            {"filterType":"LOT_SIZE","stepSize":"0.00001000"}]},
            {"symbol":"XUSDT","status":"BREAK","filters":[]}]}"#;
        let t = binance_table(body).unwrap();
        assert_eq!(t["BTCUSDT"], Lookup::Trading(2, 5));
        assert!(matches!(t["XUSDT"], Lookup::Refused(_)));
        let body = br#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT","state":"live","tickSz":"0.1","lotSz":"0.00000001"},
            {"instId":"X-USDT","state":"suspend","tickSz":"0.1","lotSz":"1"}]}"#;
        let t = okx_table(body).unwrap();
        assert_eq!(t["BTC-USDT"], Lookup::Trading(1, 8));
        assert!(matches!(t["X-USDT"], Lookup::Refused(_)));
        assert!(okx_table(br#"{"code":"50011","msg":"Too Many Requests","data":[]}"#).is_err());
        let body = br#"{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[
            {"symbol":"BTCUSDT","status":"Trading","priceFilter":{"tickSize":"0.01"},
             "lotSizeFilter":{"basePrecision":"0.000001"}},
            {"symbol":"XUSDT","status":"Closed","priceFilter":{"tickSize":"1"},
             "lotSizeFilter":{"basePrecision":"1"}}]}}"#;
        let t = bybit_table(body).unwrap();
        assert_eq!(t["BTCUSDT"], Lookup::Trading(2, 6));
        assert!(matches!(t["XUSDT"], Lookup::Refused(_)));
        let body =
            br#"{"products":[{"product_id":"BTC-USD","status":"online","trading_disabled":false,
            "price_increment":"0.01","base_increment":"0.00000001"},
            {"product_id":"X-USD","status":"delisted","trading_disabled":true,
            "price_increment":"1","base_increment":"1"}],"num_products":2}"#;
        let t = coinbase_table(body).unwrap();
        assert_eq!(t["BTC-USD"], Lookup::Trading(2, 8));
        assert!(matches!(t["X-USD"], Lookup::Refused(_)));
        let body = br#"{"error":[],"result":{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD",
            "pair_decimals":1,"lot_decimals":8,"status":"online"},
            "ETHUSD":{"wsname":"ETH/USD","pair_decimals":2,"lot_decimals":8,"status":"cancel_only"}}}"#;
        let t = kraken_table(body).unwrap();
        assert_eq!(t["BTC-USD"], Lookup::Trading(1, 8));
        assert!(matches!(t["ETH-USD"], Lookup::Refused(_)));
    }
}
