//! Trading signals from indicator values, with hysteresis.
//!
//! Four components, each scaled to -1..1, make a weighted score:
//!
//! | component | value | weight |
//! |---|---|---|
//! | trend | `tanh((close - EMA20) / ATR14)` | 0.30 |
//! | momentum | `(RSI14 - 50) / 50` | 0.25 |
//! | MACD | `tanh(2 * histogram / ATR14)` | 0.25 |
//! | bands | `(close - middle) / (upper - middle)`, clamped | 0.20 |
//!
//! Components not warmed up yet are left out and the weights of the others
//! renormalised. The action follows the score: STRONG_BUY at 0.6 and above,
//! BUY at 0.25, SELL at -0.25, STRONG_SELL at -0.6, HOLD between. To avoid
//! flapping on noise, moving to another action needs the score to pass that
//! action's threshold by [`HYSTERESIS`] (0.1) in the direction of the move,
//! on two consecutive closes (the second confirms the first); otherwise the
//! previous action stays. Strength is how strongly the score backs the
//! action in force: `score` for BUY/STRONG_BUY, `-score` for SELL/STRONG_SELL
//! (floored at 0, e.g. while a reversal awaits confirmation), `|score|` for
//! HOLD.

use super::indicators::Values;

use crate::protocol::pb::SignalAction;

/// Margin beyond a threshold needed to change action.
pub const HYSTERESIS: f64 = 0.1;

/// Boundaries between the five actions, from STRONG_SELL|SELL up.
const BOUNDS: [f64; 4] = [-0.6, -0.25, 0.25, 0.6];

/// What the signal rules read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inputs {
    pub close: f64,
    pub ema20: Option<f64>,
    pub atr14: Option<f64>,
    pub rsi14: Option<f64>,
    pub macd_hist: Option<f64>,
    /// (middle, upper) of Bollinger(20, 2).
    pub bands: Option<(f64, f64)>,
}

/// One signal decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: SignalAction,
    pub strength: f64,
    pub score: f64,
    pub reason: String,
}

fn rank(a: SignalAction) -> usize {
    match a {
        SignalAction::StrongSell => 0,
        SignalAction::Sell => 1,
        SignalAction::Hold | SignalAction::Unspecified => 2,
        SignalAction::Buy => 3,
        SignalAction::StrongBuy => 4,
    }
}

const ACTIONS: [SignalAction; 5] = [
    SignalAction::StrongSell,
    SignalAction::Sell,
    SignalAction::Hold,
    SignalAction::Buy,
    SignalAction::StrongBuy,
];

/// The action for `score` given the previous one (hysteresis).
pub fn next_action(prev: SignalAction, score: f64) -> SignalAction {
    let r = rank(prev);
    // highest rank above r whose lower bound is passed by the margin
    for up in (r + 1..5).rev() {
        if score >= BOUNDS[up - 1] + HYSTERESIS {
            return ACTIONS[up];
        }
    }
    // lowest rank below r whose upper bound is passed by the margin
    for down in 0..r {
        if score <= BOUNDS[down] - HYSTERESIS {
            return ACTIONS[down];
        }
    }
    // stay unless the score has left the current band entirely
    let lower_ok = r == 0 || score >= BOUNDS[r - 1] - HYSTERESIS;
    let upper_ok = r == 4 || score <= BOUNDS[r] + HYSTERESIS;
    if lower_ok && upper_ok {
        return prev;
    }
    ACTIONS[BOUNDS.iter().filter(|b| score >= **b).count()]
}

/// The signal state of one instrument.
#[derive(Debug, Clone)]
pub struct SignalRule {
    action: SignalAction,
    /// A change seen on the last close, waiting for confirmation.
    pending: Option<SignalAction>,
}

impl Default for SignalRule {
    fn default() -> Self {
        Self {
            action: SignalAction::Hold,
            pending: None,
        }
    }
}

impl SignalRule {
    /// Decides on the latest closed candle's indicators.
    pub fn decide(&mut self, x: &Inputs) -> Decision {
        let mut parts: Vec<(&str, f64, f64, String)> = Vec::new(); // name, value, weight, text
        if let (Some(ema), Some(atr)) = (x.ema20, x.atr14)
            && atr > 0.0
        {
            let v = ((x.close - ema) / atr).tanh();
            let side = if x.close >= ema { "above" } else { "below" };
            parts.push(("trend", v, 0.30, format!("price {side} EMA20")));
        }
        if let Some(rsi) = x.rsi14 {
            let v = ((rsi - 50.0) / 50.0).clamp(-1.0, 1.0);
            parts.push(("momentum", v, 0.25, format!("RSI14 {rsi:.0}")));
        }
        if let (Some(h), Some(atr)) = (x.macd_hist, x.atr14)
            && atr > 0.0
        {
            let v = (2.0 * h / atr).tanh();
            let dir = if h >= 0.0 { "positive" } else { "negative" };
            parts.push(("macd", v, 0.25, format!("MACD histogram {dir}")));
        }
        if let Some((mid, upper)) = x.bands
            && upper > mid
        {
            let v = ((x.close - mid) / (upper - mid)).clamp(-1.0, 1.0);
            let at = if v > 0.8 {
                "at the upper Bollinger band"
            } else if v < -0.8 {
                "at the lower Bollinger band"
            } else if v >= 0.0 {
                "in the upper half of the Bollinger bands"
            } else {
                "in the lower half of the Bollinger bands"
            };
            parts.push(("bands", v, 0.20, format!("price {at}")));
        }
        let weight: f64 = parts.iter().map(|p| p.2).sum();
        if weight == 0.0 {
            return Decision {
                action: self.action,
                strength: 0.0,
                score: 0.0,
                reason: "warming up: not enough closed candles for any indicator".into(),
            };
        }
        let score = (parts.iter().map(|p| p.1 * p.2).sum::<f64>() / weight).clamp(-1.0, 1.0);
        let target = next_action(self.action, score);
        if target == self.action {
            self.pending = None;
        } else if self.pending == Some(target) {
            self.action = target;
            self.pending = None;
        } else {
            self.pending = Some(target);
        }
        // the reason names the components that pushed the score hardest
        parts.sort_by(|a, b| (b.1 * b.2).abs().total_cmp(&(a.1 * a.2).abs()));
        let drivers: Vec<&str> = parts.iter().take(2).map(|p| p.3.as_str()).collect();
        let reason = format!("score {score:+.2}: {}", drivers.join(", "));
        // strength: how strongly the score backs the action in force (0 while
        // a reversal waits for confirmation); for HOLD, |score|
        let strength = match self.action {
            SignalAction::Buy | SignalAction::StrongBuy => score.max(0.0),
            SignalAction::Sell | SignalAction::StrongSell => (-score).max(0.0),
            _ => score.abs(),
        };
        Decision {
            action: self.action,
            strength,
            score,
            reason,
        }
    }

    /// The current action.
    pub fn action(&self) -> SignalAction {
        self.action
    }
}

impl Inputs {
    /// The rule's inputs from an indicator set's readings.
    pub fn from_values(v: &Values) -> Self {
        Self {
            close: v.close,
            ema20: v.ema20,
            atr14: v.atr14,
            rsi14: v.rsi14,
            macd_hist: v.macd.map(|m| m.histogram),
            bands: v.bollinger.map(|b| (b.middle, b.upper)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_needs_the_margin_to_move_and_keeps_the_action_inside_it() {
        use SignalAction::*;
        assert_eq!(next_action(Hold, 0.30), Hold, "0.30 < 0.25 + 0.1");
        assert_eq!(next_action(Hold, 0.36), Buy);
        assert_eq!(next_action(Buy, 0.20), Buy, "0.20 > 0.25 - 0.1");
        assert_eq!(next_action(Buy, 0.14), Hold);
        assert_eq!(next_action(Hold, 0.75), StrongBuy);
        assert_eq!(next_action(StrongBuy, 0.55), StrongBuy);
        assert_eq!(next_action(StrongBuy, 0.45), Buy);
        assert_eq!(next_action(Hold, -0.9), StrongSell);
        assert_eq!(next_action(Sell, -0.2), Sell);
        assert_eq!(next_action(Sell, 0.0), Hold);
        assert_eq!(next_action(StrongSell, 0.9), StrongBuy);
    }

    #[test]
    fn missing_components_are_left_out_and_nothing_warm_means_hold() {
        let mut r = SignalRule::default();
        let d = r.decide(&Inputs {
            close: 10.0,
            ..Default::default()
        });
        assert_eq!((d.action, d.strength), (SignalAction::Hold, 0.0));
        assert!(d.reason.contains("warming up"));
        let d = r.decide(&Inputs {
            close: 10.0,
            rsi14: Some(95.0),
            ..Default::default()
        });
        assert!((d.score - 0.9).abs() < 1e-12);
        assert_eq!(
            d.action,
            SignalAction::Hold,
            "a change waits for confirmation"
        );
        let d = r.decide(&Inputs {
            close: 10.0,
            rsi14: Some(95.0),
            ..Default::default()
        });
        assert_eq!(d.action, SignalAction::StrongBuy);
        assert!(d.reason.contains("RSI14 95"), "{}", d.reason);
    }
}

#[cfg(test)]
mod path_tests {
    use super::super::indicators::{Bar, IndicatorSet};
    use super::*;

    /// Runs the rules over a close path (bars with a small range around it).
    fn actions(closes: &[f64]) -> Vec<SignalAction> {
        let mut set = IndicatorSet::new();
        let mut rule = SignalRule::default();
        let mut prev = closes[0];
        closes
            .iter()
            .map(|&c| {
                let (hi, lo) = (prev.max(c) * 1.001, prev.min(c) * 0.999);
                set.update(&Bar {
                    open: prev,
                    high: hi,
                    low: lo,
                    close: c,
                    volume: 10.0,
                });
                prev = c;
                let values = set.values();
                rule.decide(&Inputs::from_values(&values)).action
            })
            .collect()
    }

    fn changes(a: &[SignalAction]) -> usize {
        a.windows(2).filter(|w| w[0] != w[1]).count()
    }

    #[test]
    fn a_steady_rise_is_a_buy() {
        let closes: Vec<f64> = (0..120).map(|i| 100.0 * 1.004f64.powi(i)).collect();
        let a = actions(&closes);
        let last = *a.last().unwrap();
        assert!(
            matches!(last, SignalAction::Buy | SignalAction::StrongBuy),
            "{last:?}"
        );
        assert!(
            a[40..]
                .iter()
                .all(|x| matches!(x, SignalAction::Buy | SignalAction::StrongBuy))
        );
    }

    #[test]
    fn a_crash_is_a_sell() {
        let mut closes: Vec<f64> = (0..60).map(|i| 100.0 + (i as f64 * 0.7).sin()).collect();
        closes.extend((1..40).map(|i| 100.0 * 0.985f64.powi(i)));
        let a = actions(&closes);
        let last = *a.last().unwrap();
        assert!(
            matches!(last, SignalAction::Sell | SignalAction::StrongSell),
            "{last:?}"
        );
    }

    #[test]
    fn noise_is_a_hold_that_does_not_flap() {
        // deterministic noise around 100 (a small LCG), no trend
        let mut x: u64 = 42;
        let closes: Vec<f64> = (0..300)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                100.0 + ((x >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.4
            })
            .collect();
        let a = actions(&closes);
        let holds = a[40..].iter().filter(|x| **x == SignalAction::Hold).count();
        assert!(
            holds * 10 >= (a.len() - 40) * 6,
            "mostly HOLD: {holds} of {}",
            a.len() - 40
        );
        assert!(
            changes(&a[40..]) <= 12,
            "{} changes: {a:?}",
            changes(&a[40..])
        );
        // without hysteresis the same scores would change action more often
        let mut set = IndicatorSet::new();
        let mut raw = Vec::new();
        let mut prev = closes[0];
        for &c in &closes {
            set.update(&Bar {
                open: prev,
                high: prev.max(c) * 1.001,
                low: prev.min(c) * 0.999,
                close: c,
                volume: 10.0,
            });
            prev = c;
            let mut fresh = SignalRule::default();
            let d = fresh.decide(&Inputs::from_values(&set.values()));
            raw.push(ACTIONS[BOUNDS.iter().filter(|b| d.score >= **b).count()]);
        }
        println!(
            "noise: {} action changes with hysteresis, {} without",
            changes(&a[40..]),
            changes(&raw[40..])
        );
        assert!(changes(&raw[40..]) > 3 * changes(&a[40..]).max(1));
    }
}
