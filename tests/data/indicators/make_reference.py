#!/usr/bin/env python3
"""Regenerate the indicator reference data used by src/analytics/indicators.rs.

    python3 -m venv /tmp/tavenv
    /tmp/tavenv/bin/pip install TA-Lib==0.8.2 ta==0.11.0 pandas==3.1.1 numpy==2.4.6
    /tmp/tavenv/bin/python tests/data/indicators/make_reference.py

Writes bars.csv (a deterministic pseudo-random OHLCV series; no RNG library
involved, so it is reproducible anywhere) and reference.csv (the outputs of
TA-Lib and of the `ta` library on those bars; empty cell = not warmed up).
Floats are written with repr(), i.e. shortest round-trip, so Rust parses the
exact same f64 values.
"""

import math
import os

import numpy as np
import pandas as pd
import talib
import ta

HERE = os.path.dirname(os.path.abspath(__file__))
N = 300


def lcg(seed):
    """64-bit LCG (Knuth MMIX constants); yields floats in [0, 1)."""
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield (state >> 11) / float(1 << 53)


def make_bars():
    rnd = lcg(20240917)
    rows = []
    close = 100.0
    for i in range(N):
        # Regimes: a calm drift, a strong up-trend, a sell-off, then chop.
        drift = 0.0
        if 80 <= i < 130:
            drift = 0.6
        elif 130 <= i < 170:
            drift = -0.9
        vol = 1.5 if i < 200 else 0.6
        open_ = close
        close = max(1.0, open_ + drift + (next(rnd) - 0.5) * 2.0 * vol)
        high = max(open_, close) + next(rnd) * vol
        low = min(open_, close) - next(rnd) * vol
        volume = 500.0 + next(rnd) * 1500.0
        if i in (40, 41):  # a spike in volume
            volume *= 6.0
        if i < 3 or i in (150, 151, 152):  # no trades: zero volume
            volume = 0.0
        rows.append(
            (
                i,
                round(open_, 2),
                round(high, 2),
                round(low, 2),
                round(close, 2),
                round(volume, 4),
            )
        )
    df = pd.DataFrame(rows, columns=["i", "open", "high", "low", "close", "volume"])
    # Re-derive open from the rounded previous close so bars chain exactly.
    df["open"] = df["close"].shift(1).fillna(df["open"].iloc[0])
    df["high"] = np.maximum(df["high"], np.maximum(df["open"], df["close"]))
    df["low"] = np.minimum(df["low"], np.minimum(df["open"], df["close"]))
    return df


def volume_z(v, period):
    """(v - SMA) / population STDDEV over the last `period` volumes incl. the current; 0 when flat."""
    mean = talib.SMA(v, period)
    sd = talib.STDDEV(v, period, 1.0)
    z = np.where(sd > 0, (v - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    z[np.isnan(mean)] = np.nan
    # Independent cross-check with pandas (ddof=0 = population).
    s = pd.Series(v)
    pm = s.rolling(period).mean()
    ps = s.rolling(period).std(ddof=0)
    pz = np.where(ps > 1e-9, (s - pm) / ps.where(ps > 1e-9, 1.0), 0.0)
    ok = ~np.isnan(z)
    assert np.allclose(z[ok], pz[ok], rtol=1e-9, atol=1e-9), "volume z cross-check"
    return z


def indicator_columns(df, sma, ema, rsi, macd, bb, atr, vz):
    h, l, c, v = (df[k].to_numpy(dtype=float) for k in ("high", "low", "close", "volume"))
    out = {}
    out[f"sma{sma}"] = talib.SMA(c, sma)
    out[f"ema{ema}"] = talib.EMA(c, ema)
    out[f"rsi{rsi}"] = talib.RSI(c, rsi)
    m, s, hist = talib.MACD(c, macd[0], macd[1], macd[2])
    tag = "_".join(str(p) for p in macd)
    out[f"macd{tag}"] = m
    out[f"macd_signal{tag}"] = s
    out[f"macd_hist{tag}"] = hist
    up, mid, lo = talib.BBANDS(c, bb[0], bb[1], bb[1], 0)  # matype 0 = SMA, population stddev
    btag = f"{bb[0]}_{bb[1]}"
    out[f"bb_upper{btag}"] = up
    out[f"bb_middle{btag}"] = mid
    out[f"bb_lower{btag}"] = lo
    out[f"atr{atr}"] = talib.ATR(h, l, c, atr)
    out[f"volume_z{vz}"] = volume_z(v, vz)
    return out


def cross_check_ta(df, cols):
    """Sanity check TA-Lib against the independent `ta` library.

    `ta` seeds its EMA/Wilder averages with the first value instead of an SMA,
    so for those only agreement after the seed has decayed (bar 200+) is
    expected; SMA and Bollinger (ddof=0 in `ta` too) must agree everywhere.
    """
    c = df["close"]
    late = slice(200, None)
    ok = ~np.isnan(cols["sma20"])

    def rel(a, b):
        return float(np.max(np.abs(a - b) / np.abs(b)))

    checks = {
        "rsi14 (bar 200+)": (ta.momentum.RSIIndicator(c, 14).rsi().to_numpy()[late], cols["rsi14"][late], 1e-4),
        "ema20 (bar 200+)": (ta.trend.EMAIndicator(c, 20).ema_indicator().to_numpy()[late], cols["ema20"][late], 1e-9),
        "sma20": (ta.trend.SMAIndicator(c, 20).sma_indicator().to_numpy()[ok], cols["sma20"][ok], 1e-12),
        "bb_upper20": (
            ta.volatility.BollingerBands(c, 20, 2).bollinger_hband().to_numpy()[ok],
            cols["bb_upper20_2.0"][ok],
            1e-9,
        ),
    }
    for name, (a, b, tol) in checks.items():
        r = rel(a, b)
        print(f"ta vs TA-Lib {name}: max rel diff {r:.3g}")
        assert r < tol, name


def main():
    df = make_bars()
    df.to_csv(os.path.join(HERE, "bars.csv"), index=False, float_format=None)
    # Read back so the reference is computed on exactly what Rust will parse.
    df = pd.read_csv(os.path.join(HERE, "bars.csv"))

    cols = {}
    cols.update(indicator_columns(df, 20, 20, 14, (12, 26, 9), (20, 2.0), 14, 20))
    cols.update(indicator_columns(df, 5, 10, 5, (5, 13, 4), (10, 1.5), 5, 7))
    # VWAP: cumulative since the first bar. TA-Lib has none; use `ta`'s rolling
    # VWAP with a window spanning the whole series (min_periods=0 => cumulative).
    # 0/0 (no volume yet) is NaN => empty cell.
    cols["vwap"] = ta.volume.VolumeWeightedAveragePrice(
        df["high"], df["low"], df["close"], df["volume"], window=len(df), fillna=True
    ).vwap.to_numpy()
    cross_check_ta(df, cols)

    names = list(cols)
    with open(os.path.join(HERE, "reference.csv"), "w") as f:
        f.write(",".join(["i"] + names) + "\n")
        for i in range(len(df)):
            cells = [str(i)]
            for n in names:
                x = float(cols[n][i])
                cells.append("" if math.isnan(x) else repr(x))
            f.write(",".join(cells) + "\n")
    print(f"wrote {len(df)} bars, {len(names)} reference columns")


if __name__ == "__main__":
    main()
