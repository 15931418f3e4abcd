//! Candles from trades: one builder per (instrument, interval).
//!
//! Boundaries are multiples of the interval since the Unix epoch, in the
//! trades' own time (`source_time_ns`), so a replay builds the same candles
//! as the live run did. A trade past the current candle's end closes it;
//! [`CandleBuilder::tick`] closes it when no trade comes, using the stream's
//! clock (the last trade's time plus the wall time since). Intervals with no
//! trade at all become flat candles at the previous close with volume 0, so
//! indicators see a regular series (at most [`MAX_FILL`] of them after a
//! long silence; older ones are skipped).

use crate::protocol::pb::Candle;

/// Most empty intervals filled with flat candles after a silence.
pub const MAX_FILL: usize = 1000;

/// Parses `1s`, `5m`, `1h`, `1d` into nanoseconds.
fn parse_interval(label: &str) -> Option<i64> {
    let (num, unit) = label.split_at(label.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let unit_ns: i64 = match unit {
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit_ns)
}

/// A candle interval: its label as channel names carry it (`1m` in
/// `candle1m.<venue>.<instrument>`) and its length. Parsed once, when the
/// configuration is read; a bad label is an error there, never a fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleInterval {
    label: String,
    ns: i64,
}

impl CandleInterval {
    /// Reads `1s`, `5m`, `1h`, `1d` (a positive count and a unit).
    pub fn parse(label: &str) -> Result<Self, String> {
        parse_interval(label)
            .map(|ns| Self {
                label: label.to_string(),
                ns,
            })
            .ok_or_else(|| format!("`{label}` is not an interval: use e.g. 1s, 1m, 5m, 1h, 1d"))
    }

    /// The label (`1m`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The length in nanoseconds.
    pub fn ns(&self) -> i64 {
        self.ns
    }
}

impl std::fmt::Display for CandleInterval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// Builds the candles of one instrument at one interval.
#[derive(Debug, Clone)]
pub struct CandleBuilder {
    label: String,
    interval_ns: i64,
    current: Option<Candle>,
    /// Source time of the last trade, and the wall time it was seen.
    last_trade: Option<(i64, i64)>,
}

impl CandleBuilder {
    /// A builder for `label` (e.g. `1m`), which must parse.
    pub fn new(label: &str, interval_ns: i64) -> Self {
        Self {
            label: label.to_string(),
            interval_ns: interval_ns.max(1),
            current: None,
            last_trade: None,
        }
    }

    fn start_of(&self, t: i64) -> i64 {
        t.div_euclid(self.interval_ns) * self.interval_ns
    }

    fn open(&self, start: i64, price: f64) -> Candle {
        Candle {
            interval: self.label.clone(),
            open_time_ns: start,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0.0,
            closed: false,
            trades: 0,
        }
    }

    /// Closes the current candle and any empty intervals up to (not
    /// including) the one starting at `until`; pushes them to `out`.
    fn close_until(&mut self, until: i64, out: &mut Vec<Candle>) {
        let Some(mut c) = self.current.take() else {
            return;
        };
        c.closed = true;
        let last_close = c.close;
        let mut next = c.open_time_ns + self.interval_ns;
        out.push(c);
        let gaps = ((until - next) / self.interval_ns).max(0) as usize;
        if gaps > MAX_FILL {
            next = until - MAX_FILL as i64 * self.interval_ns;
        }
        while next < until {
            let mut flat = self.open(next, last_close);
            flat.closed = true;
            out.push(flat);
            next += self.interval_ns;
        }
    }

    /// Adds a trade at source time `t_ns` (seen at wall time `wall_ns`).
    /// Closed candles (the previous one and flat fills) go to `closed`.
    pub fn trade(
        &mut self,
        t_ns: i64,
        wall_ns: i64,
        price: f64,
        qty: f64,
        closed: &mut Vec<Candle>,
    ) {
        if !(price.is_finite() && qty.is_finite()) || price <= 0.0 || qty < 0.0 {
            return;
        }
        let start = self.start_of(t_ns);
        match &self.current {
            Some(c) if start < c.open_time_ns => return, // late trade of a closed candle
            Some(c) if start > c.open_time_ns => self.close_until(start, closed),
            _ => {}
        }
        let c = match &mut self.current {
            Some(c) => c,
            None => self.current.insert(self.open(start, price)),
        };
        c.high = c.high.max(price);
        c.low = c.low.min(price);
        c.close = price;
        c.volume += qty;
        c.trades += 1;
        self.last_trade = Some((t_ns, wall_ns));
    }

    /// Closes the current candle if the stream's clock passed its end.
    pub fn tick(&mut self, wall_ns: i64, closed: &mut Vec<Candle>) {
        let (Some(c), Some((t, seen))) = (&self.current, self.last_trade) else {
            return;
        };
        let stream_now = t + (wall_ns - seen).max(0);
        let end = c.open_time_ns + self.interval_ns;
        if stream_now >= end {
            // only the current candle closes here; empty intervals after it
            // are filled when the next trade shows where the stream is
            self.close_until(end, closed);
        }
    }

    /// The open candle, if any.
    pub fn current(&self) -> Option<&Candle> {
        self.current.as_ref()
    }

    /// The interval's label (`1m`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("1s"), Some(S));
        let i = CandleInterval::parse("5m").unwrap();
        assert_eq!(
            (i.label(), i.ns(), i.to_string()),
            ("5m", 300 * S, "5m".into())
        );
        assert_eq!(parse_interval("5m"), Some(300 * S));
        assert_eq!(parse_interval("1h"), Some(3600 * S));
        for bad in ["", "m", "0m", "5x", "-1m", "1.5m"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
            let err = CandleInterval::parse(bad).unwrap_err();
            assert!(err.contains("is not an interval"), "{err}");
        }
    }

    #[test]
    fn trades_build_candles_that_close_at_the_boundary() {
        let mut b = CandleBuilder::new("1m", 60 * S);
        let mut closed = Vec::new();
        let minute = 1_700_000_040 * S; // a multiple of 60 s
        let t0 = minute + 40 * S;
        b.trade(t0, 0, 100.0, 1.0, &mut closed);
        b.trade(t0 + 5 * S, 0, 103.0, 2.0, &mut closed);
        b.trade(t0 + 10 * S, 0, 99.0, 1.5, &mut closed);
        b.trade(t0 + 19 * S, 0, 101.0, 0.5, &mut closed);
        assert!(closed.is_empty());
        let c = b.current().unwrap();
        assert_eq!(c.open_time_ns, minute);
        assert_eq!(
            (c.open, c.high, c.low, c.close),
            (100.0, 103.0, 99.0, 101.0)
        );
        assert_eq!((c.volume, c.trades, c.closed), (5.0, 4, false));
        // the next minute's first trade closes it
        b.trade(t0 + 21 * S, 0, 102.0, 1.0, &mut closed);
        assert_eq!(closed.len(), 1);
        assert!(closed[0].closed);
        assert_eq!(closed[0].close, 101.0);
        assert_eq!(b.current().unwrap().open, 102.0);
        assert_eq!(
            b.current().unwrap().open_time_ns,
            closed[0].open_time_ns + 60 * S
        );
    }

    #[test]
    fn gaps_in_trading_become_flat_candles_and_late_trades_are_ignored() {
        let mut b = CandleBuilder::new("1s", S);
        let mut closed = Vec::new();
        b.trade(10 * S, 0, 50.0, 1.0, &mut closed);
        b.trade(14 * S + 1, 0, 55.0, 1.0, &mut closed); // 11, 12, 13 had no trade
        let opens: Vec<i64> = closed.iter().map(|c| c.open_time_ns / S).collect();
        assert_eq!(opens, [10, 11, 12, 13]);
        for flat in &closed[1..] {
            assert_eq!(
                (flat.open, flat.close, flat.volume, flat.trades),
                (50.0, 50.0, 0.0, 0)
            );
            assert!(flat.closed);
        }
        // a trade stamped in a closed interval changes nothing
        b.trade(12 * S, 0, 1.0, 9.0, &mut closed);
        assert_eq!(closed.len(), 4);
        assert_eq!(b.current().unwrap().low, 55.0);
        // a long silence fills at most MAX_FILL intervals
        closed.clear();
        b.trade((20 + MAX_FILL as i64 * 3) * S, 0, 60.0, 1.0, &mut closed);
        assert_eq!(closed.len(), 1 + MAX_FILL);
    }

    #[test]
    fn tick_closes_a_candle_when_no_trade_comes() {
        let mut b = CandleBuilder::new("1s", S);
        let mut closed = Vec::new();
        b.trade(5 * S + S / 2, 1000 * S, 10.0, 1.0, &mut closed);
        b.tick(1000 * S + S / 4, &mut closed);
        assert!(
            closed.is_empty(),
            "the stream clock is still inside the candle"
        );
        b.tick(1000 * S + S / 2, &mut closed);
        assert_eq!(closed.len(), 1);
        assert!(b.current().is_none());
        b.tick(1010 * S, &mut closed);
        assert_eq!(closed.len(), 1, "nothing open, nothing to close");
    }
}
