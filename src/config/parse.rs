//! The value parsers of the serve flags: each turns one flag's text into
//! its typed value or says, in one line, what the flag takes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ReplaySpeed, SimRate, SourceSpec};

pub(super) fn parse_sim_tick(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(1) {
        return Err(format!("sim tick must be between 1ms and 1s, got {s}"));
    }
    Ok(d)
}

/// Reads `--sim-rate`: events per second or `max`.
pub fn parse_sim_rate(s: &str) -> Result<SimRate, String> {
    if s == "max" {
        return Ok(SimRate::Max);
    }
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(SimRate::PerSecond(r)),
        _ => Err(format!(
            "`{s}` is not a rate: give events per second or `max`"
        )),
    }
}

/// Reads one `--source`.
pub fn parse_source(s: &str) -> Result<SourceSpec, String> {
    match s {
        "sim" => Ok(SourceSpec::Sim),
        "binance" => Ok(SourceSpec::Binance),
        "okx" => Ok(SourceSpec::Okx),
        "bybit" => Ok(SourceSpec::Bybit),
        "coinbase" => Ok(SourceSpec::Coinbase),
        "kraken" => Ok(SourceSpec::Kraken),
        "twelvedata" => Ok(SourceSpec::TwelveData),
        "none" => Ok(SourceSpec::None),
        _ => match s.strip_prefix("replay:") {
            Some(path) if !path.is_empty() => Ok(SourceSpec::Replay(PathBuf::from(path))),
            _ => Err(format!(
                "`{s}` is not a source: use sim, binance, okx, bybit, coinbase, kraken, twelvedata, replay:FILE or none"
            )),
        },
    }
}

pub(super) fn parse_replay_speed(s: &str) -> Result<ReplaySpeed, String> {
    if s == "max" {
        return Ok(ReplaySpeed::Max);
    }
    match s.trim_end_matches('x').parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(ReplaySpeed::Times(r)),
        _ => Err(format!(
            "`{s}` is not a replay speed: give a factor (1, 10) or `max`"
        )),
    }
}

pub(super) fn parse_on_off() -> impl clap::builder::TypedValueParser<Value = bool> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["on", "off"]).map(|s| s == "on")
}

pub(super) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| {
            format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:8080, localhost:8080, [::]:8080): {e}")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

pub(super) fn parse_instrument(s: &str) -> Result<String, String> {
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric());
    match s.split_once('-') {
        Some((base, quote)) if ok(base) && ok(quote) => Ok(s.to_string()),
        _ => Err(format!(
            "`{s}` is not an instrument: use BASE-QUOTE, e.g. BTC-USDT"
        )),
    }
}

pub(super) fn parse_consolidate(s: &str) -> Result<(String, String), String> {
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric());
    match s.split_once('=') {
        Some((from, to)) if ok(from) && ok(to) => {
            Ok((from.to_ascii_uppercase(), to.to_ascii_uppercase()))
        }
        _ => Err(format!(
            "`{s}` is not a quote mapping: use FROM=TO, e.g. USDT=USD"
        )),
    }
}

pub(super) fn parse_book_depth(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("a book needs at least 1 level per side".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number of levels")),
    }
}

pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (e.g. 15s, 500ms)"))
}
