//! Every indicator against TA-Lib's output on the reference bars in
//! `tests/data/indicators/` (the reference data this module checks).

use super::*;

const BARS_CSV: &str = include_str!("../../../tests/data/indicators/bars.csv");
const REFERENCE_CSV: &str = include_str!("../../../tests/data/indicators/reference.csv");

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
