//! The set of indicators one instrument keeps per candle interval, and the
//! candle and values they exchange.

use std::collections::BTreeMap;

use super::{Atr, Bands, Bollinger, Ema, Macd, MacdValue, Rsi, Sma, VolumeZ, Vwap};

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
