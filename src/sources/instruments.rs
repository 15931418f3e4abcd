//! Instruments from the venue, not guessed: at start each configured
//! symbol is looked up in the venue's metadata (Binance
//! `GET /api/v3/exchangeInfo?symbol=X`, OKX
//! `GET /api/v5/public/instruments?instType=SPOT&instId=X`). Unknown or
//! non-trading symbols are reported once and skipped; the others take
//! their price and size decimals from the tick and lot sizes. When the
//! metadata cannot be had (REST down, rate limited), every configured
//! symbol streams anyway with decimals read from the data, and `/health`
//! says so: REST being down never stops a stream.

use serde::Deserialize;

use super::rest::RestError;
use super::{ExchangeConfig, Instrument, SourceStatus};

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
    status: String,
    #[serde(default)]
    filters: Vec<serde_json::Value>,
}

fn binance_lookup(body: &[u8]) -> Result<Lookup, String> {
    let info: BinanceInfo = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(sym) = info.symbols.first() else {
        return Ok(Lookup::Refused("not listed".into()));
    };
    if sym.status != "TRADING" {
        return Ok(Lookup::Refused(format!("status {}", sym.status)));
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
        (Some(p), Some(s)) => Ok(Lookup::Trading(p, s)),
        _ => Err("no PRICE_FILTER / LOT_SIZE".into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxInstrument {
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

fn okx_lookup(body: &[u8]) -> Result<Lookup, String> {
    let reply: OkxReply = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if reply.code != "0" {
        return Ok(Lookup::Refused(format!("{} {}", reply.code, reply.msg)));
    }
    let Some(inst) = reply.data.first() else {
        return Ok(Lookup::Refused("not listed".into()));
    };
    if inst.state != "live" {
        return Ok(Lookup::Refused(format!("state {}", inst.state)));
    }
    Ok(Lookup::Trading(
        decimals_of(&inst.tick_sz),
        decimals_of(&inst.lot_sz),
    ))
}

/// Reads a metadata reply.
type Parser = fn(&[u8]) -> Result<Lookup, String>;

/// Checks `cfg`'s instruments against the venue and keeps those it trades.
pub async fn validate(venue: &str, cfg: &mut ExchangeConfig, status: &SourceStatus) {
    let mut kept: Vec<Instrument> = Vec::new();
    let mut unreachable: Option<String> = None;
    let total = cfg.instruments.len();
    for inst in std::mem::take(&mut cfg.instruments) {
        if unreachable.is_some() {
            kept.push(inst);
            continue;
        }
        let (path, weight, parse): (String, u32, Parser) = if venue == "binance" {
            (
                format!("/api/v3/exchangeInfo?symbol={}", inst.joined()),
                20,
                binance_lookup,
            )
        } else {
            (
                format!(
                    "/api/v5/public/instruments?instType=SPOT&instId={}",
                    inst.dashed()
                ),
                1,
                okx_lookup,
            )
        };
        let lookup = match cfg.rest.get(&path, weight).await {
            Ok(body) => parse(&body),
            // a 400 names this symbol (Binance 400 -1121 "Invalid symbol",
            // OKX 400 51001); another 4xx (404) says the endpoint is wrong
            Err(RestError::Refused {
                status: 400,
                code,
                msg,
                ..
            }) => Ok(Lookup::Refused(format!("{code} {msg}"))),
            Err(e) => Err(e.to_string()),
        };
        match lookup {
            Ok(Lookup::Trading(p, s)) => {
                cfg.decimals.insert(inst.dashed(), (p, s));
                kept.push(inst);
            }
            Ok(Lookup::Refused(why)) => {
                let why = format!("{venue} does not trade {}: {why}; skipped", inst.dashed());
                tracing::error!("{why}");
                status.instrument_failed(&inst.dashed(), &why);
            }
            Err(e) => {
                unreachable = Some(e);
                kept.push(inst);
            }
        }
    }
    cfg.instruments = kept;
    let note = match unreachable {
        Some(e) => {
            tracing::warn!(source = venue, error = %e, "instrument metadata unavailable; streaming the configured symbols");
            format!(
                "metadata unavailable ({e}): streaming the configured symbols, decimals from the data"
            )
        }
        None => format!(
            "{} of {total} instruments validated against the venue's metadata",
            cfg.instruments.len()
        ),
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
            {"filterType":"LOT_SIZE","stepSize":"0.00001000"}]}]}"#;
        assert_eq!(binance_lookup(body), Ok(Lookup::Trading(2, 5)));
        let body = br#"{"symbols":[{"symbol":"X","status":"BREAK","filters":[]}]}"#;
        assert!(matches!(binance_lookup(body), Ok(Lookup::Refused(_))));
        let body = br#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT","state":"live","tickSz":"0.1","lotSz":"0.00000001"}]}"#;
        assert_eq!(okx_lookup(body), Ok(Lookup::Trading(1, 8)));
        let body = br#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#;
        assert!(matches!(okx_lookup(body), Ok(Lookup::Refused(_))));
    }
}
