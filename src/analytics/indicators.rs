//! Incremental technical indicators over closed candles.
//!
//! Every indicator here is fed one value (or one candle) at a time and does
//! O(1) work per update: running sums, exponential/Wilder averages and, for
//! the windowed ones, a fixed-size ring buffer allocated once in `new`. No
//! update walks history or grows a collection, so a feed can keep one
//! [`IndicatorSet`] per instrument and pay a constant cost per closed candle
//! (measured in `benches/indicators.rs`).
//!
//! Conventions (chosen to match TA-Lib, against whose output the tests in
//! this file check every warmed-up bar; see `tests/data/indicators/`):
//!
//! - Each `update` returns `None` until the indicator has seen enough values
//!   to be defined ("warmed up"), then `Some(value)`; `value()` returns the
//!   same thing without feeding anything.
//! - EMA: `alpha = 2 / (period + 1)`, seeded with the SMA of the first
//!   `period` values.
//! - RSI and ATR: Wilder's smoothing (`alpha = 1 / period`), seeded with the
//!   plain mean of the first `period` changes / true ranges. The first bar
//!   only provides the previous close, so both need `period + 1` bars.
//! - Bollinger bands and the volume z-score use the population standard
//!   deviation (divide by `period`), as TA-Lib and StockCharts do.
//! - A period of 0 is treated as 1, so construction never panics.
//! - Bad input is ignored, never absorbed: a NaN or infinite price (or a
//!   NaN, infinite or negative volume) leaves the indicator's state exactly as
//!   it was, and `update` returns the unchanged current value. One bad tick
//!   therefore cannot poison an average forever.
//! - Flat prices: RSI is 50 when there were neither gains nor losses over the
//!   averaging (TA-Lib returns 0 there and the `ta` library 100; 50, "no
//!   momentum either way", is the neutral choice for signals). Bands collapse
//!   onto the middle, ATR is 0 and the volume z-score is 0.

use std::collections::BTreeMap;

/// Clamp a user-supplied period to at least 1 so no constructor can panic
/// and no update can divide by zero.
fn period_of(period: usize) -> usize {
    period.max(1)
}

/// A Neumaier-compensated running sum: the rounding error of each addition
/// is carried in `comp`, so a sum that has values added and removed for
/// years stays accurate to about one rounding of its current magnitude
/// instead of drifting like a plain `+=` accumulator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn get(&self) -> f64 {
        self.sum + self.comp
    }
}

/// A fixed-size sliding window with O(1) running mean and variance.
///
/// The mean comes from a compensated running sum (no drift however long it
/// runs); the sum of squared deviations `m2` uses Welford's update while
/// filling and its sliding form once full (`m2 += (new - old) * (new -
/// mean' + old - mean)`), whose rounding errors are on the scale of the
/// deviations rather than of the price, unlike a raw sum of squares, and the
/// variance is clamped at 0. Whenever the last `n` values are all identical
/// the state is snapped to the exact answer (mean = value, variance = 0), so
/// a flat window reports exactly zero deviation and any rounding residue
/// from a volatile period is discarded.
#[derive(Debug, Clone, PartialEq)]
struct RollingStats {
    buf: Box<[f64]>,
    /// Next slot to write (the oldest value once the window is full).
    pos: usize,
    len: usize,
    sum: Sum,
    mean: f64,
    m2: f64,
    /// How many of the most recent values equal `last`.
    run: usize,
    last: f64,
}

impl RollingStats {
    fn new(period: usize) -> Self {
        let n = period_of(period);
        Self {
            buf: vec![0.0; n].into_boxed_slice(),
            pos: 0,
            len: 0,
            sum: Sum::default(),
            mean: 0.0,
            m2: 0.0,
            run: 0,
            last: 0.0,
        }
    }

    /// Push a finite value; returns true once the window holds `n` values.
    fn push(&mut self, x: f64) -> bool {
        let n = self.buf.len();
        let old_mean = self.mean;
        if self.len < n {
            self.len += 1;
            self.sum.add(x);
            self.mean = self.sum.get() / self.len as f64;
            let delta = if self.len == 1 { 0.0 } else { x - old_mean };
            self.m2 += delta * (x - self.mean);
        } else {
            let old = self.buf[self.pos];
            self.sum.add(x);
            self.sum.add(-old);
            self.mean = self.sum.get() / n as f64;
            self.m2 += (x - old) * (x - self.mean + old - old_mean);
        }
        self.buf[self.pos] = x;
        self.pos += 1;
        if self.pos == n {
            self.pos = 0;
        }
        if x == self.last {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 1;
            self.last = x;
        }
        if self.run >= n {
            let nf = n as f64;
            let sum = x * nf;
            self.sum = Sum {
                sum,
                comp: x.mul_add(nf, -sum),
            };
            self.mean = x;
            self.m2 = 0.0;
        }
        self.len == n
    }

    fn full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Population variance of the window, never negative.
    fn variance(&self) -> f64 {
        (self.m2 / self.buf.len() as f64).max(0.0)
    }
}

/// Simple moving average of the last `period` values.
///
/// The baseline trend filter and the middle Bollinger band. O(1) per update
/// via a ring buffer and a running mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Sma {
    window: RollingStats,
}

impl Sma {
    /// An SMA over `period` values (0 is treated as 1).
    pub fn new(period: usize) -> Self {
        Self {
            window: RollingStats::new(period),
        }
    }

    /// Feed one value; `None` until `period` finite values have been seen.
    /// Non-finite values are ignored (the current value is returned).
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if x.is_finite() {
            self.window.push(x);
        }
        self.value()
    }

    /// The current average, `None` until warmed up.
    pub fn value(&self) -> Option<f64> {
        self.window.full().then_some(self.window.mean)
    }
}

/// Exponential moving average, `alpha = 2 / (period + 1)`, seeded with the
/// SMA of the first `period` values (the TA-Lib convention).
///
/// Reacts faster than the SMA to recent prices; also the building block of
/// MACD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ema {
    period: usize,
    alpha: f64,
    seen: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA over `period` values (0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period_of(period);
        Self {
            period,
            alpha: 2.0 / (period as f64 + 1.0),
            seen: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    /// Feed one value; `None` until `period` finite values have been seen.
    /// Non-finite values are ignored (the current value is returned).
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return self.value;
        }
        match self.value {
            Some(prev) => self.value = Some((x - prev) * self.alpha + prev),
            None => {
                self.seed_sum += x;
                self.seen += 1;
                if self.seen == self.period {
                    self.value = Some(self.seed_sum / self.period as f64);
                }
            }
        }
        self.value
    }

    /// The current average, `None` until warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Relative Strength Index with Wilder's smoothing, in `0..=100`.
///
/// Momentum oscillator: the share of recent movement that was upward. Needs
/// `period + 1` closes (the first only sets the reference close). 50 when
/// prices were perfectly flat over the averaging (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rsi {
    period: usize,
    prev_close: Option<f64>,
    seen: usize,
    avg_gain: f64,
    avg_loss: f64,
    value: Option<f64>,
}

impl Rsi {
    /// An RSI over `period` changes (0 is treated as 1).
    pub fn new(period: usize) -> Self {
        Self {
            period: period_of(period),
            prev_close: None,
            seen: 0,
            avg_gain: 0.0,
            avg_loss: 0.0,
            value: None,
        }
    }

    /// Feed one close; `None` until warmed up. Non-finite closes are
    /// ignored (the current value is returned).
    pub fn update(&mut self, close: f64) -> Option<f64> {
        if !close.is_finite() {
            return self.value;
        }
        let Some(prev) = self.prev_close else {
            self.prev_close = Some(close);
            return self.value;
        };
        let diff = close - prev;
        if !diff.is_finite() {
            return self.value;
        }
        self.prev_close = Some(close);
        let (gain, loss) = if diff > 0.0 {
            (diff, 0.0)
        } else {
            (0.0, -diff)
        };
        let n = self.period as f64;
        if self.seen < self.period {
            // Seeding: plain sums, averaged once `period` changes are in.
            self.avg_gain += gain;
            self.avg_loss += loss;
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.avg_gain /= n;
            self.avg_loss /= n;
        } else {
            self.avg_gain = (self.avg_gain * (n - 1.0) + gain) / n;
            self.avg_loss = (self.avg_loss * (n - 1.0) + loss) / n;
        }
        let total = self.avg_gain + self.avg_loss;
        let rsi = if total > 0.0 && total.is_finite() {
            (100.0 * (self.avg_gain / total)).clamp(0.0, 100.0)
        } else {
            50.0
        };
        self.value = Some(rsi);
        self.value
    }

    /// The current RSI, `None` until warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// One MACD reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MacdValue {
    /// Fast EMA minus slow EMA of the close.
    pub macd: f64,
    /// EMA of `macd` over the signal period.
    pub signal: f64,
    /// `macd - signal`: the crossover/divergence strength.
    pub histogram: f64,
}

/// Moving Average Convergence/Divergence: trend and momentum from the gap
/// between a fast and a slow EMA, plus an EMA of that gap as signal line.
///
/// Like TA-Lib, the fast EMA starts `slow - fast` closes late so that both
/// EMAs are seeded over windows ending on the same bar; the first value
/// appears after `slow + signal - 1` closes (34 for 12/26/9).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
    /// Closes still to skip before the fast EMA starts.
    skip: usize,
    value: Option<MacdValue>,
}

impl Macd {
    /// A MACD with the given EMA periods (0 is treated as 1; if `fast` is
    /// longer than `slow` the two are swapped, as TA-Lib does).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = (period_of(fast), period_of(slow));
        let (fast, slow) = if fast > slow {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Self {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
            skip: slow - fast,
            value: None,
        }
    }

    /// Feed one close; `None` until warmed up. Non-finite closes are
    /// ignored (the current value is returned).
    pub fn update(&mut self, close: f64) -> Option<MacdValue> {
        if !close.is_finite() {
            return self.value;
        }
        if self.skip > 0 {
            self.skip -= 1;
        } else {
            self.fast.update(close);
        }
        let slow = self.slow.update(close);
        if let (Some(fast), Some(slow)) = (self.fast.value(), slow) {
            let macd = fast - slow;
            if let Some(signal) = self.signal.update(macd) {
                self.value = Some(MacdValue {
                    macd,
                    signal,
                    histogram: macd - signal,
                });
            }
        }
        self.value
    }

    /// The current reading, `None` until warmed up.
    pub fn value(&self) -> Option<MacdValue> {
        self.value
    }
}

/// One set of Bollinger bands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bands {
    /// SMA of the close.
    pub middle: f64,
    /// `middle + k * stddev`.
    pub upper: f64,
    /// `middle - k * stddev`.
    pub lower: f64,
}

/// Bollinger bands: SMA ± `k` population standard deviations.
///
/// A volatility envelope; price near the bands is stretched relative to its
/// recent range. O(1) per update via a ring buffer with running mean and
/// variance (see the module docs for the numerical approach).
#[derive(Debug, Clone, PartialEq)]
pub struct Bollinger {
    window: RollingStats,
    k: f64,
}

impl Bollinger {
    /// Bands over `period` closes (0 is treated as 1) at `k` deviations.
    /// A negative `k` is used as `|k|`; a non-finite one falls back to the
    /// conventional 2.0 so the bands stay finite.
    pub fn new(period: usize, k: f64) -> Self {
        Self {
            window: RollingStats::new(period),
            k: if k.is_finite() { k.abs() } else { 2.0 },
        }
    }

    /// Feed one close; `None` until `period` finite closes have been seen.
    /// Non-finite closes are ignored (the current value is returned).
    pub fn update(&mut self, close: f64) -> Option<Bands> {
        if close.is_finite() {
            self.window.push(close);
        }
        self.value()
    }

    /// The current bands, `None` until warmed up.
    pub fn value(&self) -> Option<Bands> {
        if !self.window.full() {
            return None;
        }
        let middle = self.window.mean;
        let width = self.k * self.window.variance().sqrt();
        Some(Bands {
            middle,
            upper: middle + width,
            lower: middle - width,
        })
    }
}

/// Average True Range with Wilder's smoothing.
///
/// Volatility in price units, counting gaps from the previous close. Needs
/// `period + 1` bars: the first only provides the previous close (TA-Lib's
/// convention; it does not count the first bar's high-low).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Atr {
    period: usize,
    prev_close: Option<f64>,
    seen: usize,
    sum: f64,
    value: Option<f64>,
}

impl Atr {
    /// An ATR over `period` true ranges (0 is treated as 1).
    pub fn new(period: usize) -> Self {
        Self {
            period: period_of(period),
            prev_close: None,
            seen: 0,
            sum: 0.0,
            value: None,
        }
    }

    /// Feed one bar; `None` until warmed up. A bar with any non-finite
    /// field is ignored (the current value is returned).
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        if !(high.is_finite() && low.is_finite() && close.is_finite()) {
            return self.value;
        }
        let Some(prev) = self.prev_close.replace(close) else {
            return self.value;
        };
        let tr = (high - low)
            .max((high - prev).abs())
            .max((low - prev).abs());
        let n = self.period as f64;
        match self.value {
            Some(atr) => self.value = Some((atr * (n - 1.0) + tr) / n),
            None => {
                self.sum += tr;
                self.seen += 1;
                if self.seen == self.period {
                    self.value = Some(self.sum / n);
                }
            }
        }
        self.value
    }

    /// The current ATR, `None` until warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Volume-weighted average price of the typical price `(h + l + c) / 3`,
/// cumulative since creation or the last [`Vwap::reset`].
///
/// The average price actually paid over the session; reset it at a session
/// boundary to anchor it there.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Vwap {
    price_volume: f64,
    volume: f64,
}

impl Vwap {
    /// An empty VWAP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one bar; `None` while no volume has traded. Bars with a
    /// non-finite field or a negative volume are ignored; zero-volume bars
    /// leave the value unchanged.
    pub fn update(&mut self, high: f64, low: f64, close: f64, volume: f64) -> Option<f64> {
        let typical = (high + low + close) / 3.0;
        if typical.is_finite() && volume.is_finite() && volume >= 0.0 {
            let pv = typical * volume;
            if pv.is_finite() {
                self.price_volume += pv;
                self.volume += volume;
            }
        }
        self.value()
    }

    /// The current VWAP, `None` until some volume has traded.
    pub fn value(&self) -> Option<f64> {
        let vwap = self.price_volume / self.volume;
        (self.volume > 0.0 && vwap.is_finite()).then_some(vwap)
    }

    /// Start a new accumulation (e.g. at a session boundary).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Volume z-score: how unusual the current volume is, as
/// `(v - mean) / stddev` over the last `period` volumes including the
/// current one (population standard deviation).
///
/// 0.0 when the window's volumes are all equal (no deviation to measure).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeZ {
    window: RollingStats,
    value: Option<f64>,
}

impl VolumeZ {
    /// A z-score over `period` volumes (0 is treated as 1).
    pub fn new(period: usize) -> Self {
        Self {
            window: RollingStats::new(period),
            value: None,
        }
    }

    /// Feed one volume; `None` until `period` valid volumes have been seen.
    /// NaN, infinite and negative volumes are ignored (the current value is
    /// returned).
    pub fn update(&mut self, volume: f64) -> Option<f64> {
        if !(volume.is_finite() && volume >= 0.0) {
            return self.value;
        }
        if self.window.push(volume) {
            let sd = self.window.variance().sqrt();
            let mean = self.window.mean;
            // Below ~1e-12 of the mean the deviation is rounding noise.
            let z = if sd > mean.abs() * 1e-12 && sd > 0.0 {
                (volume - mean) / sd
            } else {
                0.0
            };
            self.value = Some(if z.is_finite() { z } else { 0.0 });
        }
        self.value
    }

    /// The current z-score, `None` until warmed up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// A candle as the indicators see it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bar {
    /// First trade price of the candle.
    pub open: f64,
    /// Highest trade price.
    pub high: f64,
    /// Lowest trade price.
    pub low: f64,
    /// Last trade price.
    pub close: f64,
    /// Traded quantity.
    pub volume: f64,
}

/// The full set with default parameters: SMA(20), EMA(20), RSI(14),
/// MACD(12,26,9), Bollinger(20,2), ATR(14), VWAP, VolumeZ(20).
///
/// One per instrument and candle interval; feed it each closed candle and
/// read [`IndicatorSet::values`]. Each indicator ignores the fields it finds
/// invalid (see the module docs), so one bad field does not stop the others.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSet {
    sma20: Sma,
    ema20: Ema,
    rsi14: Rsi,
    macd: Macd,
    bollinger: Bollinger,
    atr14: Atr,
    vwap: Vwap,
    volume_z: VolumeZ,
    close: f64,
    bars: u64,
}

impl IndicatorSet {
    /// A fresh set with the default parameters, nothing warmed up.
    pub fn new() -> Self {
        Self {
            sma20: Sma::new(20),
            ema20: Ema::new(20),
            rsi14: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bollinger: Bollinger::new(20, 2.0),
            atr14: Atr::new(14),
            vwap: Vwap::new(),
            volume_z: VolumeZ::new(20),
            close: 0.0,
            bars: 0,
        }
    }

    /// Feed one closed candle to every indicator. O(1).
    pub fn update(&mut self, bar: &Bar) {
        self.bars += 1;
        if bar.close.is_finite() {
            self.close = bar.close;
        }
        self.sma20.update(bar.close);
        self.ema20.update(bar.close);
        self.rsi14.update(bar.close);
        self.macd.update(bar.close);
        self.bollinger.update(bar.close);
        self.atr14.update(bar.high, bar.low, bar.close);
        self.vwap.update(bar.high, bar.low, bar.close, bar.volume);
        self.volume_z.update(bar.volume);
    }

    /// The current readings (the warmed-up ones are `Some`).
    pub fn values(&self) -> Values {
        Values {
            sma20: self.sma20.value(),
            ema20: self.ema20.value(),
            rsi14: self.rsi14.value(),
            macd: self.macd.value(),
            bollinger: self.bollinger.value(),
            atr14: self.atr14.value(),
            vwap: self.vwap.value(),
            volume_z: self.volume_z.value(),
            close: self.close,
        }
    }

    /// How many candles have been passed to [`IndicatorSet::update`]
    /// (including any whose fields some indicators ignored).
    pub fn bars(&self) -> u64 {
        self.bars
    }
}

impl Default for IndicatorSet {
    /// Same as [`IndicatorSet::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// A snapshot of an [`IndicatorSet`]: `None` for indicators not yet warmed
/// up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Values {
    /// SMA(20) of the close.
    pub sma20: Option<f64>,
    /// EMA(20) of the close.
    pub ema20: Option<f64>,
    /// RSI(14), 0..=100.
    pub rsi14: Option<f64>,
    /// MACD(12,26,9).
    pub macd: Option<MacdValue>,
    /// Bollinger(20, 2).
    pub bollinger: Option<Bands>,
    /// ATR(14).
    pub atr14: Option<f64>,
    /// Cumulative VWAP.
    pub vwap: Option<f64>,
    /// Volume z-score over 20 bars.
    pub volume_z: Option<f64>,
    /// Last finite close seen (0.0 before any).
    pub close: f64,
}

impl Values {
    /// Named values for `Signal.indicators` (`map<string,double>`): keys
    /// "sma20", "ema20", "rsi14", "macd", "macd_signal", "macd_hist",
    /// "bb_upper", "bb_middle", "bb_lower", "atr14", "vwap", "volume_z",
    /// "close"; only the warmed-up ones ("close" is always present).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        let mut map = BTreeMap::new();
        let mut put = |key: &str, v: Option<f64>| {
            if let Some(v) = v {
                map.insert(key.to_owned(), v);
            }
        };
        put("sma20", self.sma20);
        put("ema20", self.ema20);
        put("rsi14", self.rsi14);
        put("macd", self.macd.map(|m| m.macd));
        put("macd_signal", self.macd.map(|m| m.signal));
        put("macd_hist", self.macd.map(|m| m.histogram));
        put("bb_upper", self.bollinger.map(|b| b.upper));
        put("bb_middle", self.bollinger.map(|b| b.middle));
        put("bb_lower", self.bollinger.map(|b| b.lower));
        put("atr14", self.atr14);
        put("vwap", self.vwap);
        put("volume_z", self.volume_z);
        put("close", Some(self.close));
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARS_CSV: &str = include_str!("../../tests/data/indicators/bars.csv");
    const REFERENCE_CSV: &str = include_str!("../../tests/data/indicators/reference.csv");

    fn bars() -> Vec<Bar> {
        let mut lines = BARS_CSV.lines();
        assert_eq!(
            lines.next(),
            Some("i,open,high,low,close,volume"),
            "bars.csv header"
        );
        lines
            .map(|line| {
                let f: Vec<f64> = line
                    .split(',')
                    .map(|c| c.parse().expect("bars.csv number"))
                    .collect();
                Bar {
                    open: f[1],
                    high: f[2],
                    low: f[3],
                    close: f[4],
                    volume: f[5],
                }
            })
            .collect()
    }

    /// Reference columns by name: one `Option<f64>` per bar (empty = not
    /// warmed up in the reference library).
    struct Reference {
        names: Vec<String>,
        rows: Vec<Vec<Option<f64>>>,
    }

    impl Reference {
        fn load() -> Self {
            let mut lines = REFERENCE_CSV.lines();
            let names = lines
                .next()
                .expect("header")
                .split(',')
                .map(str::to_owned)
                .collect();
            let rows = lines
                .map(|line| {
                    line.split(',')
                        .map(|c| (!c.is_empty()).then(|| c.parse().expect("reference number")))
                        .collect()
                })
                .collect();
            Self { names, rows }
        }

        fn col(&self, name: &str) -> Vec<Option<f64>> {
            let i = self
                .names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("reference.csv has no column {name}"));
            self.rows.iter().map(|r| r[i]).collect()
        }
    }

    /// Relative tolerance 1e-9, with an absolute floor of 1e-9 for values
    /// near zero (MACD, z-scores).
    fn close_to(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-9 * want.abs().max(1.0)
    }

    /// Every bar: same warm-up (None/Some) as the reference and, once warmed
    /// up, the same value. Returns how many values were compared.
    fn check(name: &str, got: &[Option<f64>], want: &[Option<f64>]) -> usize {
        assert_eq!(got.len(), want.len(), "{name}: length");
        let mut compared = 0;
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            match (g, w) {
                (Some(g), Some(w)) => {
                    assert!(close_to(*g, *w), "{name} bar {i}: got {g}, reference {w}");
                    compared += 1;
                }
                (None, None) => {}
                _ => panic!("{name} bar {i}: warm-up differs: got {g:?}, reference {w:?}"),
            }
        }
        assert!(compared > 200, "{name}: only {compared} values compared");
        compared
    }

    #[test]
    fn default_set_matches_reference_at_every_bar() {
        let bars = bars();
        let reference = Reference::load();
        assert_eq!(bars.len(), reference.rows.len());
        let mut set = IndicatorSet::new();
        let values: Vec<Values> = bars
            .iter()
            .map(|b| {
                set.update(b);
                set.values()
            })
            .collect();
        assert_eq!(set.bars(), bars.len() as u64);
        let col = |f: &dyn Fn(&Values) -> Option<f64>| values.iter().map(f).collect::<Vec<_>>();
        check("sma20", &col(&|v| v.sma20), &reference.col("sma20"));
        check("ema20", &col(&|v| v.ema20), &reference.col("ema20"));
        check("rsi14", &col(&|v| v.rsi14), &reference.col("rsi14"));
        check(
            "macd",
            &col(&|v| v.macd.map(|m| m.macd)),
            &reference.col("macd12_26_9"),
        );
        check(
            "macd_signal",
            &col(&|v| v.macd.map(|m| m.signal)),
            &reference.col("macd_signal12_26_9"),
        );
        check(
            "macd_hist",
            &col(&|v| v.macd.map(|m| m.histogram)),
            &reference.col("macd_hist12_26_9"),
        );
        check(
            "bb_upper",
            &col(&|v| v.bollinger.map(|b| b.upper)),
            &reference.col("bb_upper20_2.0"),
        );
        check(
            "bb_middle",
            &col(&|v| v.bollinger.map(|b| b.middle)),
            &reference.col("bb_middle20_2.0"),
        );
        check(
            "bb_lower",
            &col(&|v| v.bollinger.map(|b| b.lower)),
            &reference.col("bb_lower20_2.0"),
        );
        check("atr14", &col(&|v| v.atr14), &reference.col("atr14"));
        check("vwap", &col(&|v| v.vwap), &reference.col("vwap"));
        check(
            "volume_z",
            &col(&|v| v.volume_z),
            &reference.col("volume_z20"),
        );
        for (v, b) in values.iter().zip(&bars) {
            assert_eq!(v.close, b.close);
        }
    }

    #[test]
    fn other_periods_match_reference_at_every_bar() {
        let bars = bars();
        let reference = Reference::load();
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let run = |f: &mut dyn FnMut(&Bar) -> Option<f64>| bars.iter().map(f).collect::<Vec<_>>();

        let mut sma = Sma::new(5);
        check(
            "sma5",
            &run(&mut |b| sma.update(b.close)),
            &reference.col("sma5"),
        );
        let mut ema = Ema::new(10);
        check(
            "ema10",
            &run(&mut |b| ema.update(b.close)),
            &reference.col("ema10"),
        );
        let mut rsi = Rsi::new(5);
        check(
            "rsi5",
            &run(&mut |b| rsi.update(b.close)),
            &reference.col("rsi5"),
        );
        let mut atr = Atr::new(5);
        check(
            "atr5",
            &run(&mut |b| atr.update(b.high, b.low, b.close)),
            &reference.col("atr5"),
        );
        let mut vz = VolumeZ::new(7);
        check(
            "volume_z7",
            &run(&mut |b| vz.update(b.volume)),
            &reference.col("volume_z7"),
        );

        let mut macd = Macd::new(5, 13, 4);
        let m: Vec<Option<MacdValue>> = closes.iter().map(|&c| macd.update(c)).collect();
        check(
            "macd5",
            &m.iter().map(|v| v.map(|v| v.macd)).collect::<Vec<_>>(),
            &reference.col("macd5_13_4"),
        );
        check(
            "macd_signal5",
            &m.iter().map(|v| v.map(|v| v.signal)).collect::<Vec<_>>(),
            &reference.col("macd_signal5_13_4"),
        );
        check(
            "macd_hist5",
            &m.iter().map(|v| v.map(|v| v.histogram)).collect::<Vec<_>>(),
            &reference.col("macd_hist5_13_4"),
        );
        // fast > slow is swapped, as in TA-Lib.
        let mut swapped = Macd::new(13, 5, 4);
        let s: Vec<Option<MacdValue>> = closes.iter().map(|&c| swapped.update(c)).collect();
        assert_eq!(s, m);

        let mut bb = Bollinger::new(10, 1.5);
        let b: Vec<Option<Bands>> = closes.iter().map(|&c| bb.update(c)).collect();
        check(
            "bb_upper10",
            &b.iter().map(|v| v.map(|v| v.upper)).collect::<Vec<_>>(),
            &reference.col("bb_upper10_1.5"),
        );
        check(
            "bb_middle10",
            &b.iter().map(|v| v.map(|v| v.middle)).collect::<Vec<_>>(),
            &reference.col("bb_middle10_1.5"),
        );
        check(
            "bb_lower10",
            &b.iter().map(|v| v.map(|v| v.lower)).collect::<Vec<_>>(),
            &reference.col("bb_lower10_1.5"),
        );
    }

    #[test]
    fn the_check_catches_a_wrong_value() {
        // Guard against a vacuous comparison: an off-by-one EMA seed (or any
        // small error) must be rejected by the same tolerance.
        let reference = Reference::load();
        let want = reference.col("ema20");
        let mut ema = Ema::new(20);
        let mut got: Vec<Option<f64>> = bars().iter().map(|b| ema.update(b.close)).collect();
        if let Some(v) = got.last_mut().and_then(Option::as_mut) {
            *v *= 1.0 + 1e-7;
        }
        let result = std::panic::catch_unwind(|| check("ema20", &got, &want));
        assert!(result.is_err());
    }

    fn flat_bar(price: f64, volume: f64) -> Bar {
        Bar {
            open: price,
            high: price,
            low: price,
            close: price,
            volume,
        }
    }

    #[test]
    fn flat_prices_give_defined_values() {
        let mut set = IndicatorSet::new();
        for _ in 0..100 {
            set.update(&flat_bar(65_000.25, 3.0));
        }
        let v = set.values();
        assert_eq!(v.sma20, Some(65_000.25));
        assert_eq!(v.ema20, Some(65_000.25));
        assert_eq!(v.rsi14, Some(50.0));
        assert_eq!(
            v.macd,
            Some(MacdValue {
                macd: 0.0,
                signal: 0.0,
                histogram: 0.0
            })
        );
        assert_eq!(
            v.bollinger,
            Some(Bands {
                middle: 65_000.25,
                upper: 65_000.25,
                lower: 65_000.25
            })
        );
        assert_eq!(v.atr14, Some(0.0));
        assert_eq!(v.vwap, Some(65_000.25));
        assert_eq!(v.volume_z, Some(0.0));
    }

    #[test]
    fn flat_window_after_volatility_is_exactly_flat() {
        let mut bb = Bollinger::new(20, 2.0);
        let mut vz = VolumeZ::new(20);
        let mut x = 1.0_f64;
        for i in 0..10_000 {
            x = (x * 1.618_033_988_7 + i as f64 * 0.37).rem_euclid(1000.0);
            bb.update(60_000.0 + x);
            vz.update(x * 17.0);
        }
        for _ in 0..20 {
            bb.update(61_234.5);
            vz.update(42.0);
        }
        let b = bb.value().expect("warm");
        assert_eq!((b.lower, b.middle, b.upper), (61_234.5, 61_234.5, 61_234.5));
        assert_eq!(vz.value(), Some(0.0));
        // And it picks up deviation again right after.
        assert!(vz.update(1000.0).expect("warm") > 4.0);
    }

    #[test]
    fn rsi_extremes() {
        let mut up = Rsi::new(14);
        let mut down = Rsi::new(14);
        for i in 0..30 {
            up.update(100.0 + i as f64);
            down.update(100.0 - i as f64);
        }
        assert_eq!(up.value(), Some(100.0));
        assert_eq!(down.value(), Some(0.0));
        // Needs period + 1 closes.
        let mut r = Rsi::new(3);
        assert_eq!(r.update(1.0), None);
        assert_eq!(r.update(2.0), None);
        assert_eq!(r.update(1.0), None);
        assert!(r.update(2.0).is_some());
    }

    #[test]
    fn zero_volume() {
        let mut vwap = Vwap::new();
        assert_eq!(vwap.update(11.0, 9.0, 10.0, 0.0), None);
        assert_eq!(vwap.update(11.0, 9.0, 10.0, 0.0), None);
        assert_eq!(vwap.update(21.0, 19.0, 20.0, 2.0), Some(20.0));
        assert_eq!(vwap.update(12.0, 9.0, 9.0, 0.0), Some(20.0));
        assert_eq!(vwap.update(12.0, 9.0, 9.0, 2.0), Some(15.0));
        vwap.reset();
        assert_eq!(vwap.value(), None);
        assert_eq!(vwap.update(3.0, 3.0, 3.0, 1.0), Some(3.0));

        let mut vz = VolumeZ::new(5);
        for _ in 0..4 {
            assert_eq!(vz.update(0.0), None);
        }
        assert_eq!(vz.update(0.0), Some(0.0));
        let z = vz.update(10.0).expect("warm");
        // window [0,0,0,0,10]: mean 2, population sd 4 -> z = 2.
        assert!((z - 2.0).abs() < 1e-12, "{z}");
    }

    #[test]
    fn invalid_input_is_ignored_without_poisoning_state() {
        let bars = bars();
        let mut clean = IndicatorSet::new();
        let mut dirty = IndicatorSet::new();
        let junk = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        for (i, b) in bars.iter().enumerate() {
            clean.update(b);
            let before = dirty.values();
            let j = junk[i % junk.len()];
            // A whole junk bar changes nothing.
            dirty.update(&Bar {
                open: j,
                high: j,
                low: j,
                close: j,
                volume: j,
            });
            assert_eq!(dirty.values(), before, "bar {i}");
            // Negative volume is ignored by the volume indicators.
            dirty.update(&Bar {
                volume: -1.0,
                ..flat_bar(f64::NAN, 0.0)
            });
            assert_eq!(dirty.values(), before, "bar {i}");
            dirty.update(b);
        }
        assert_eq!(dirty.values(), clean.values());
        assert_eq!(dirty.bars(), 3 * clean.bars());
        let v = clean.values();
        assert!(v.to_map().values().all(|x| x.is_finite()));

        // Each indicator alone returns its current value on bad input.
        let mut sma = Sma::new(2);
        sma.update(1.0);
        sma.update(3.0);
        assert_eq!(sma.update(f64::NAN), Some(2.0));
        let mut atr = Atr::new(1);
        atr.update(2.0, 1.0, 1.5);
        assert_eq!(atr.update(3.0, 1.0, 2.0), Some(2.0));
        assert_eq!(atr.update(3.0, f64::NAN, 2.0), Some(2.0));
    }

    #[test]
    fn zero_periods_and_odd_parameters_do_not_panic() {
        let mut sma = Sma::new(0);
        assert_eq!(sma.update(5.0), Some(5.0));
        let mut ema = Ema::new(0);
        assert_eq!(ema.update(5.0), Some(5.0));
        assert_eq!(ema.update(7.0), Some(7.0));
        let mut rsi = Rsi::new(0);
        rsi.update(1.0);
        assert_eq!(rsi.update(2.0), Some(100.0));
        let mut macd = Macd::new(0, 0, 0);
        assert_eq!(macd.update(1.0).map(|m| m.macd), Some(0.0));
        let mut bb = Bollinger::new(0, f64::NAN);
        assert_eq!(bb.update(3.0).map(|b| b.upper), Some(3.0));
        let mut atr = Atr::new(0);
        atr.update(1.0, 1.0, 1.0);
        assert_eq!(atr.update(2.0, 1.0, 1.5), Some(1.0));
        let mut vz = VolumeZ::new(0);
        assert_eq!(vz.update(3.0), Some(0.0));
    }

    #[test]
    fn long_run_at_exchange_price_scale_stays_accurate() {
        // Two million updates at ~65k with tiny moves (stddev ~1e-7 of the
        // price, a harsh case): the running mean and variance must still
        // agree with a direct two-pass computation. A plain running sum
        // drifted by 2e-4 relative here; what is left (~1e-7) is the mean
        // being rounded to the price's ulp at each step.
        let n = 20;
        let mut bb = Bollinger::new(n, 2.0);
        let mut sma = Sma::new(n);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut price = 65_000.0;
        let mut last = std::collections::VecDeque::new();
        for _ in 0..2_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            price += (u - 0.5) * 0.02;
            bb.update(price);
            sma.update(price);
            last.push_back(price);
            if last.len() > n {
                last.pop_front();
            }
        }
        let mean = last.iter().sum::<f64>() / n as f64;
        let var = last.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let b = bb.value().expect("warm");
        let sd = (b.upper - b.middle) / 2.0;
        assert!(
            (b.middle - mean).abs() <= 1e-9 * mean,
            "{} vs {mean}",
            b.middle
        );
        assert_eq!(sma.value(), Some(b.middle));
        assert!(
            (sd - var.sqrt()).abs() <= 1e-6 * var.sqrt(),
            "sd {sd} vs {}",
            var.sqrt()
        );
    }

    #[test]
    fn to_map_has_only_warmed_up_keys() {
        let mut set = IndicatorSet::new();
        assert_eq!(set.values().to_map().keys().collect::<Vec<_>>(), ["close"]);
        set.update(&Bar {
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.0,
            volume: 1.0,
        });
        let keys: Vec<String> = set.values().to_map().into_keys().collect();
        assert_eq!(keys, ["close", "vwap"]);
        for b in bars().iter().take(40) {
            set.update(b);
        }
        let map = set.values().to_map();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "atr14",
                "bb_lower",
                "bb_middle",
                "bb_upper",
                "close",
                "ema20",
                "macd",
                "macd_hist",
                "macd_signal",
                "rsi14",
                "sma20",
                "volume_z",
                "vwap"
            ]
        );
        let v = set.values();
        assert_eq!(map["macd_hist"], v.macd.expect("warm").histogram);
        assert_eq!(map["bb_lower"], v.bollinger.expect("warm").lower);
        assert_eq!(IndicatorSet::default(), IndicatorSet::new());
    }
}
