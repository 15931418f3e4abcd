//! The market sentiment index of one venue, computed every
//! `--sentiment-interval` from the instruments' prices and volumes over
//! that window.
//!
//! Components, each in -1..1:
//! - breadth: `(advancing - declining) / instruments` (price up or down over
//!   the window);
//! - momentum: `tanh(mean return / recent mean |return|)`, the window's
//!   average return against its recent typical size;
//! - volatility: `tanh(σ / recent σ - 1)`, the spread of returns against
//!   its recent average (high volatility is fear, so it counts negatively);
//! - volume: `tanh(volume / recent volume - 1)`, signed by breadth (heavy
//!   volume amplifies the direction of the market).
//!
//! `fear_greed = 50 + 50 * (0.4 breadth + 0.3 momentum - 0.2 volatility +
//! 0.1 volume)`, clamped to 0..100. Mood: bearish below 40, bullish above
//! 60, neutral between. Confidence: the share of instruments with data,
//! times how much the components agree (`0.5 + 0.5 * |Σ c| / Σ |c|`).
//! "Recent" averages are EWMAs over about 10 windows.

use crate::protocol::pb::{Mood, Sentiment};

const EWMA: f64 = 0.2;

/// Price and volume of one instrument over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct PriceWindow {
    /// Last price before the window (0 = unknown).
    pub start: f64,
    /// Last price in the window.
    pub end: f64,
    pub volume: f64,
}

/// Running state of one venue's index.
#[derive(Debug, Clone, Default)]
pub struct SentimentIndex {
    abs_return: Option<f64>,
    sigma: Option<f64>,
    volume: Option<f64>,
}

fn ewma(slot: &mut Option<f64>, x: f64) -> f64 {
    let prev = slot.unwrap_or(x);
    *slot = Some(prev + EWMA * (x - prev));
    prev
}

fn ratio(x: f64, base: f64) -> f64 {
    if base > 0.0 { x / base } else { 1.0 }
}

impl SentimentIndex {
    /// The index for one window over `instruments` (all of the venue's,
    /// including those without data).
    pub fn update(&mut self, windows: &[PriceWindow], instruments: usize) -> Sentiment {
        let returns: Vec<f64> = windows
            .iter()
            .filter(|w| w.start > 0.0 && w.end > 0.0)
            .map(|w| w.end / w.start - 1.0)
            .collect();
        let advancing = returns.iter().filter(|r| **r > 0.0).count() as u32;
        let declining = returns.iter().filter(|r| **r < 0.0).count() as u32;
        let n = returns.len().max(1) as f64;
        let breadth = (f64::from(advancing) - f64::from(declining)) / instruments.max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let mean_abs = returns.iter().map(|r| r.abs()).sum::<f64>() / n;
        let sigma = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let volume: f64 = windows.iter().map(|w| w.volume).sum();

        let typical_abs = ewma(&mut self.abs_return, mean_abs);
        let typical_sigma = ewma(&mut self.sigma, sigma);
        let typical_volume = ewma(&mut self.volume, volume);
        let momentum = if typical_abs > 0.0 {
            (mean / typical_abs).tanh()
        } else {
            0.0
        };
        let volatility = (ratio(sigma, typical_sigma) - 1.0).tanh();
        let vol = (ratio(volume, typical_volume) - 1.0).tanh() * breadth.signum();
        let parts = [0.4 * breadth, 0.3 * momentum, -0.2 * volatility, 0.1 * vol];
        let total: f64 = parts.iter().sum();
        let fear_greed = (50.0 + 50.0 * total).clamp(0.0, 100.0);
        let mood = if fear_greed < 40.0 {
            Mood::Bearish
        } else if fear_greed > 60.0 {
            Mood::Bullish
        } else {
            Mood::Neutral
        };
        let magnitude: f64 = parts.iter().map(|p| p.abs()).sum();
        let agreement = if magnitude > 0.0 {
            total.abs() / magnitude
        } else {
            0.0
        };
        let coverage = returns.len() as f64 / instruments.max(1) as f64;
        Sentiment {
            fear_greed,
            mood: mood as i32,
            confidence: (coverage * (0.5 + 0.5 * agreement)).clamp(0.0, 1.0),
            advancing,
            declining,
            unchanged: (instruments as u32).saturating_sub(advancing + declining),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(ret: &[f64]) -> Vec<PriceWindow> {
        ret.iter()
            .map(|r| PriceWindow {
                start: 100.0,
                end: 100.0 * (1.0 + r),
                volume: 10.0,
            })
            .collect()
    }

    #[test]
    fn a_broad_rally_is_greed_and_a_broad_fall_is_fear() {
        let mut idx = SentimentIndex::default();
        for _ in 0..5 {
            idx.update(&windows(&[0.001, -0.001, 0.0005, -0.0005]), 4);
        }
        let up = idx.clone().update(&windows(&[0.01, 0.02, 0.015, 0.01]), 4);
        assert!(up.fear_greed > 60.0, "{up:?}");
        assert_eq!(up.mood, Mood::Bullish as i32);
        assert_eq!((up.advancing, up.declining), (4, 0));
        let down = idx
            .clone()
            .update(&windows(&[-0.01, -0.02, -0.015, -0.01]), 4);
        assert!(down.fear_greed < 40.0, "{down:?}");
        assert_eq!(down.mood, Mood::Bearish as i32);
        let mixed = idx.update(&windows(&[0.001, -0.001, 0.0005, -0.0005]), 4);
        assert_eq!(mixed.mood, Mood::Neutral as i32, "{mixed:?}");
        for s in [&up, &down, &mixed] {
            assert!((0.0..=1.0).contains(&s.confidence));
        }
    }

    #[test]
    fn instruments_without_data_lower_confidence_only() {
        let mut idx = SentimentIndex::default();
        let full = idx.clone().update(&windows(&[0.01, 0.01]), 2);
        let mut w = windows(&[0.01, 0.01]);
        w.push(PriceWindow::default());
        w.push(PriceWindow::default());
        let half = idx.update(&w, 4);
        assert!(half.confidence < full.confidence);
        assert!((0.0..=100.0).contains(&half.fear_greed));
    }
}
