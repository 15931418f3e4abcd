//! The scanner: ranks a venue's instruments by opportunity, in two passes,
//! publishing its progress as events on `scan.<venue>.all`.
//!
//! Quick pass, per instrument: `0.6 * signal score + 0.4 * tanh(change % / 2)`
//! (the latest signal's score and the price change since the server first
//! saw the instrument). Deep pass adds four indicator views, each -1..1:
//! RSI extremes `(50 - RSI) / 50` beyond 30/70 (mean reversion), MACD
//! histogram against ATR, the Bollinger position, and volume z-score as a
//! confidence multiplier. Scores are signed (positive: long opportunity);
//! `scan_result` ranks by `|score|` and its `reason` says which way and why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::board::{Board, InstrumentView};
use crate::feed::{Channel, Hub};
use crate::protocol::now_ns;
use crate::protocol::pb::{
    ScanDone, ScanEntry, ScanError, ScanProgress, ScanResult, ScanStarted, SymbolAnalyzed,
    event::Payload,
};

static NEXT_SCAN: AtomicU64 = AtomicU64::new(1);

/// Least time a scan holds its slot (`--max-concurrent-scans`): at most
/// `slots / MIN_SCAN_SLOT` scans start per second, which bounds the scan
/// events published per second however many clients ask.
pub const MIN_SCAN_SLOT: Duration = Duration::from_millis(250);

/// Waits (in arrival order) for one of the server's scan slots, then runs
/// the scan; `waiting` counts the queued scans, `running` is this
/// connection's "scan queued or running" flag, cleared at the end.
pub async fn queue_and_run(
    hub: Arc<Hub>,
    board: Arc<Board>,
    channel: Arc<Channel>,
    req: ScanRequest,
    running: Arc<AtomicBool>,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
) {
    let permit = slots.acquire_owned().await;
    waiting.fetch_sub(1, Ordering::AcqRel);
    let Ok(permit) = permit else {
        running.store(false, Ordering::Release); // the semaphore was closed
        return;
    };
    let started = tokio::time::Instant::now();
    run(hub, board, channel, req, running, permit, started).await
}

/// One requested scan.
pub struct ScanRequest {
    pub request_id: u64,
    pub venue: String,
    pub top_n: u32,
}

fn quick_score(v: &InstrumentView) -> (f64, String) {
    let s = (0.6 * v.signal_score + 0.4 * (v.change_pct / 2.0).tanh()).clamp(-1.0, 1.0);
    let reason = format!(
        "signal score {:+.2}, change {:+.2}%",
        v.signal_score, v.change_pct
    );
    (s, reason)
}

fn deep_score(v: &InstrumentView) -> (f64, String) {
    let (quick, _) = quick_score(v);
    let ind = &v.values;
    let mut parts: Vec<(f64, String)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if let Some(rsi) = ind.rsi14 {
        if (30.0..=70.0).contains(&rsi) {
            notes.push(format!("RSI14 {rsi:.0} neutral"));
        } else {
            let label = if rsi < 30.0 { "oversold" } else { "overbought" };
            parts.push(((50.0 - rsi) / 50.0, format!("RSI14 {rsi:.0} {label}")));
        }
    }
    if let (Some(h), Some(atr)) = (ind.macd.map(|m| m.histogram), ind.atr14)
        && atr > 0.0
    {
        parts.push(((2.0 * h / atr).tanh(), format!("MACD histogram {h:+.4}")));
    }
    if let (c, Some(m), Some(u)) = (
        ind.close,
        ind.bollinger.map(|b| b.middle),
        ind.bollinger.map(|b| b.upper),
    ) && u > m
    {
        let pos = ((c - m) / (u - m)).clamp(-1.0, 1.0);
        parts.push((pos, format!("Bollinger position {pos:+.2}")));
    }
    let mut score = quick;
    if !parts.is_empty() {
        let mean = parts.iter().map(|p| p.0).sum::<f64>() / parts.len() as f64;
        score = 0.5 * quick + 0.5 * mean;
    }
    if let Some(z) = ind.volume_z {
        score *= 1.0 + 0.25 * z.clamp(-2.0, 2.0).tanh();
        parts.push((0.0, format!("volume z {z:+.1}")));
    }
    let reason = if parts.is_empty() {
        format!("quick view only: {} bars so far", v.bars)
    } else {
        parts
            .into_iter()
            .map(|p| p.1)
            .collect::<Vec<_>>()
            .join(", ")
    };
    (score.clamp(-1.0, 1.0), reason)
}

/// Runs one scan to `scan_done` (or `scan_error`), publishing on `channel`.
/// `running` is cleared when it ends; `permit` is released then, but not
/// before [`MIN_SCAN_SLOT`] after `started`.
async fn run(
    hub: Arc<Hub>,
    board: Arc<Board>,
    channel: Arc<Channel>,
    req: ScanRequest,
    running: Arc<AtomicBool>,
    permit: OwnedSemaphorePermit,
    started: tokio::time::Instant,
) {
    let scan_id = format!("scan-{}", NEXT_SCAN.fetch_add(1, Ordering::Relaxed));
    let instruments = board.venue(&req.venue);
    if instruments.is_empty() {
        hub.publish_or_log(&channel, now_ns(), Payload::ScanError(ScanError {
                request_id: req.request_id,
                scan_id,
                message: format!(
                    "no analysed instruments on venue `{}` yet (signals start after the first closed candle)",
                    req.venue
                ),
            }),
        );
    } else {
        let top_n = if req.top_n == 0 { 10 } else { req.top_n } as usize;
        for (pass, score) in [
            ("quick", quick_score as fn(&InstrumentView) -> (f64, String)),
            ("deep", deep_score),
        ] {
            let total = instruments.len() as u32;
            hub.publish_or_log(
                &channel,
                now_ns(),
                Payload::ScanStarted(ScanStarted {
                    request_id: req.request_id,
                    scan_id: scan_id.clone(),
                    pass: pass.into(),
                    total,
                }),
            );
            let mut ranked = Vec::with_capacity(instruments.len());
            for (i, (name, view)) in instruments.iter().enumerate() {
                let (s, reason) = score(view);
                hub.publish_or_log(
                    &channel,
                    now_ns(),
                    Payload::SymbolAnalyzed(SymbolAnalyzed {
                        scan_id: scan_id.clone(),
                        pass: pass.into(),
                        instrument: name.clone(),
                        score: s,
                    }),
                );
                let processed = i as u32 + 1;
                hub.publish_or_log(
                    &channel,
                    now_ns(),
                    Payload::ScanProgress(ScanProgress {
                        scan_id: scan_id.clone(),
                        pass: pass.into(),
                        processed,
                        remaining: total - processed,
                    }),
                );
                let side = if s >= 0.0 { "long" } else { "short" };
                ranked.push(ScanEntry {
                    instrument: name.clone(),
                    score: s,
                    reason: format!("{side}: {reason}"),
                });
                // The deep pass is paced (a few ms per instrument) so that
                // progress is visible and one scan never hogs a worker.
                if pass == "deep" {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            ranked.sort_by(|a, b| b.score.abs().total_cmp(&a.score.abs()));
            ranked.truncate(top_n);
            hub.publish_or_log(
                &channel,
                now_ns(),
                Payload::ScanResult(ScanResult {
                    scan_id: scan_id.clone(),
                    pass: pass.into(),
                    entries: ranked,
                }),
            );
        }
        hub.publish_or_log(
            &channel,
            now_ns(),
            Payload::ScanDone(ScanDone {
                request_id: req.request_id,
                scan_id,
            }),
        );
    }
    // the connection may ask again (it queues); the slot stays taken for
    // the minimum time
    running.store(false, Ordering::Release);
    tokio::time::sleep_until(started + MIN_SCAN_SLOT).await;
    drop(permit);
}
