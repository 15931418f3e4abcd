//! Incremental technical indicators over closed candles.
//!
//! Every indicator here is fed one value (or one candle) at a time and does
//! O(1) work per update: running sums, exponential/Wilder averages and, for
//! the windowed ones, a fixed-size ring buffer allocated once in `new`. No
//! update walks history or grows a collection, so a feed can keep one
//! [`IndicatorSet`] per instrument and pay a constant cost per closed candle
//! (measured in `benches/indicators.rs`).
//!
//! Conventions (chosen to match TA-Lib, against whose output `tests.rs`
//! checks every warmed-up bar; see `tests/data/indicators/`):
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

mod set;
#[cfg(test)]
mod tests;

pub use set::{Bar, IndicatorSet, Values};
