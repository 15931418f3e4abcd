//! Per-candle cost of the incremental indicators: what the analytics path
//! pays for each closed candle of each instrument.
//!
//! Guards: `IndicatorSet::update` (all eight indicators) stays O(1) and in
//! the tens of nanoseconds, independent of how many candles came before;
//! each indicator's own update is a handful of nanoseconds.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tickwire::analytics::indicators::{
    Atr, Bar, Bollinger, Ema, IndicatorSet, Macd, Rsi, Sma, VolumeZ, Vwap,
};

/// 4096 deterministic pseudo-random candles around 65k (xorshift), cycled
/// through so every iteration feeds a fresh-looking candle.
const BARS: usize = 4096;

fn bars() -> Vec<Bar> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut close = 65_000.0;
    (0..BARS)
        .map(|_| {
            let open = close;
            close = open + (next() - 0.5) * 40.0;
            Bar {
                open,
                high: open.max(close) + next() * 15.0,
                low: open.min(close) - next() * 15.0,
                close,
                volume: 0.5 + next() * 20.0,
            }
        })
        .collect()
}

/// Benchmark `update` fed one candle per iteration, after warming up over
/// the whole series so the steady state (not the warm-up path) is measured.
fn per_candle<S>(c: &mut Criterion, name: &str, mut state: S, update: impl Fn(&mut S, &Bar)) {
    let bars = bars();
    for bar in &bars {
        update(&mut state, bar);
    }
    let mut i = 0usize;
    c.bench_function(name, |b| {
        b.iter(|| {
            let bar = &bars[i % BARS];
            i = i.wrapping_add(1);
            update(black_box(&mut state), black_box(bar));
        })
    });
    black_box(&state);
}

fn bench_indicators(c: &mut Criterion) {
    per_candle(c, "indicators/set_update", IndicatorSet::new(), |s, b| {
        s.update(b)
    });
    per_candle(
        c,
        "indicators/set_update_and_values",
        IndicatorSet::new(),
        |s, b| {
            s.update(b);
            black_box(s.values());
        },
    );
    per_candle(c, "indicators/sma20", Sma::new(20), |s, b| {
        black_box(s.update(b.close));
    });
    per_candle(c, "indicators/ema20", Ema::new(20), |s, b| {
        black_box(s.update(b.close));
    });
    per_candle(c, "indicators/rsi14", Rsi::new(14), |s, b| {
        black_box(s.update(b.close));
    });
    per_candle(c, "indicators/macd12_26_9", Macd::new(12, 26, 9), |s, b| {
        black_box(s.update(b.close));
    });
    per_candle(
        c,
        "indicators/bollinger20_2",
        Bollinger::new(20, 2.0),
        |s, b| {
            black_box(s.update(b.close));
        },
    );
    per_candle(c, "indicators/atr14", Atr::new(14), |s, b| {
        black_box(s.update(b.high, b.low, b.close));
    });
    per_candle(c, "indicators/vwap", Vwap::new(), |s, b| {
        black_box(s.update(b.high, b.low, b.close, b.volume));
    });
    per_candle(c, "indicators/volume_z20", VolumeZ::new(20), |s, b| {
        black_box(s.update(b.volume));
    });
    c.bench_function("indicators/values_to_map", |b| {
        let mut set = IndicatorSet::new();
        for bar in &bars() {
            set.update(bar);
        }
        let values = set.values();
        b.iter(|| black_box(&values).to_map())
    });
}

criterion_group!(benches, bench_indicators);
criterion_main!(benches);
