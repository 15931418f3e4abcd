//! How `tickwire sub` shows items: readable columns, or JSON lines (an
//! event is its canonical proto3 JSON; a notice is `{"notice": ...}`).

use std::io::{self, Write};

use tickwire_client::Item;
use tickwire_client::pb::{self, event::Payload};

/// `HH:MM:SS.mmm` (UTC) of a Unix-ns time.
fn clock(ns: i64) -> String {
    let ms = ns.div_euclid(1_000_000);
    let s = ms.div_euclid(1000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s.rem_euclid(86_400) / 3600,
        s.rem_euclid(3600) / 60,
        s.rem_euclid(60),
        ms.rem_euclid(1000)
    )
}

fn side(side: i32) -> &'static str {
    match pb::Side::try_from(side) {
        Ok(pb::Side::Buy) => "BUY",
        Ok(pb::Side::Sell) => "SELL",
        _ => "-",
    }
}

fn best(levels: &[pb::Level]) -> String {
    levels
        .first()
        .map_or_else(|| "-".into(), |l| format!("{} x {}", l.price, l.quantity))
}

/// The payload in one line.
pub fn summary(payload: Option<&Payload>) -> (&'static str, String) {
    match payload {
        Some(Payload::Trade(t)) => (
            "trade",
            format!(
                "{:<4} {} @ {}  id {}",
                side(t.side),
                t.quantity,
                t.price,
                t.trade_id
            ),
        ),
        Some(Payload::Ticker(t)) => (
            "ticker",
            format!(
                "last {}  bid {} x {}  ask {} x {}  24h {:+.2}%",
                t.last, t.bid, t.bid_size, t.ask, t.ask_size, t.change_pct_24h
            ),
        ),
        Some(Payload::BookSnapshot(b)) => (
            "book",
            format!(
                "snapshot {}/{} levels  bid {}  ask {}  crc {}",
                b.bids.len(),
                b.asks.len(),
                best(&b.bids),
                best(&b.asks),
                b.checksum
            ),
        ),
        Some(Payload::BookUpdate(b)) => (
            "book",
            format!(
                "update {} bids {} asks  crc {}",
                b.bids.len(),
                b.asks.len(),
                b.checksum
            ),
        ),
        Some(Payload::Candle(c)) => (
            "candle",
            format!(
                "{} O {} H {} L {} C {} V {}{}",
                c.interval,
                c.open,
                c.high,
                c.low,
                c.close,
                c.volume,
                if c.closed { " closed" } else { "" }
            ),
        ),
        Some(Payload::Signal(s)) => (
            "signal",
            format!(
                "{} {:.2}  {}",
                s.action()
                    .as_str_name()
                    .trim_start_matches("SIGNAL_ACTION_"),
                s.strength,
                s.reason
            ),
        ),
        Some(Payload::Sentiment(s)) => (
            "sentiment",
            format!(
                "fear/greed {:.1} {}  confidence {:.2}",
                s.fear_greed,
                s.mood().as_str_name().trim_start_matches("MOOD_"),
                s.confidence
            ),
        ),
        Some(Payload::Custom(c)) => (
            "custom",
            match &c.body {
                Some(pb::custom::Body::Json(j)) => j.clone(),
                Some(pb::custom::Body::Data(d)) => format!("{} bytes", d.len()),
                None => String::new(),
            },
        ),
        Some(Payload::ScanStarted(s)) => (
            "scan",
            format!("started {} pass, {} symbols", s.pass, s.total),
        ),
        Some(Payload::SymbolAnalyzed(s)) => (
            "scan",
            format!("{} {} score {:.3}", s.pass, s.instrument, s.score),
        ),
        Some(Payload::ScanProgress(s)) => (
            "scan",
            format!("{} {}/{}", s.pass, s.processed, s.processed + s.remaining),
        ),
        Some(Payload::ScanResult(s)) => (
            "scan",
            format!("{} result: {} entries", s.pass, s.entries.len()),
        ),
        Some(Payload::ScanDone(_)) => ("scan", "done".into()),
        Some(Payload::ScanError(s)) => ("scan", format!("error: {}", s.message)),
        None => ("?", String::new()),
    }
}

/// A notice in words.
pub fn notice(item: &Item) -> String {
    match item {
        Item::Gap {
            channel,
            expected_seq,
            got_seq,
        } => format!("{channel}: gap, expected seq {expected_seq}, got {got_seq} (resyncing)"),
        Item::Lagged {
            channel,
            first_seq,
            last_seq,
        } => format!("{channel}: lagged, seqs {first_seq}..={last_seq} skipped by the server"),
        Item::Conflated {
            channel,
            first_seq,
            last_seq,
        } => format!("{channel}: conflated, seqs {first_seq}..={last_seq} folded into the next"),
        Item::Resnapshot {
            channel,
            seq,
            reason,
            ..
        } => format!("{channel}: state starts again at seq {seq} ({reason})"),
        Item::Reconnected {
            attempt,
            epoch_changed,
            ..
        } => format!(
            "reconnected after {attempt} tries{}",
            if *epoch_changed {
                ", the server restarted (new epoch)"
            } else {
                ", resumed"
            }
        ),
        Item::Error(e) => format!("{}: {}", e.code.as_str_name(), e.message),
        Item::Event(ev) => format!("{} {}", ev.channel(), ev.seq()),
    }
}

pub fn table_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<12} {:<28} {:>9} {:<9} DATA",
        "TIME", "CHANNEL", "SEQ", "KIND"
    )
}

pub fn table_row(out: &mut impl Write, item: &Item) -> io::Result<()> {
    match item {
        Item::Event(ev) => {
            let (kind, text) = summary(ev.payload());
            writeln!(
                out,
                "{:<12} {:<28} {:>9} {:<9} {}",
                clock(ev.publish_time_ns()),
                ev.channel(),
                ev.seq(),
                kind,
                text
            )
        }
        notice => writeln!(out, "{:<12} {}", "!", self::notice(notice)),
    }
}

pub fn json_line(out: &mut impl Write, item: &Item) -> io::Result<()> {
    let value = match item {
        Item::Event(ev) => serde_json::to_value(&ev.0).map_err(io::Error::other)?,
        Item::Gap {
            channel,
            expected_seq,
            got_seq,
        } => {
            serde_json::json!({"notice": "gap", "channel": channel, "expectedSeq": expected_seq, "gotSeq": got_seq})
        }
        Item::Lagged {
            channel,
            first_seq,
            last_seq,
        } => {
            serde_json::json!({"notice": "lagged", "channel": channel, "firstSeq": first_seq, "lastSeq": last_seq})
        }
        Item::Conflated {
            channel,
            first_seq,
            last_seq,
        } => {
            serde_json::json!({"notice": "conflated", "channel": channel, "firstSeq": first_seq, "lastSeq": last_seq})
        }
        Item::Resnapshot {
            channel,
            seq,
            epoch,
            reason,
        } => {
            serde_json::json!({"notice": "resnapshot", "channel": channel, "seq": seq, "epoch": epoch, "reason": reason})
        }
        Item::Reconnected {
            attempt,
            epoch,
            epoch_changed,
        } => {
            serde_json::json!({"notice": "reconnected", "attempt": attempt, "epoch": epoch, "epochChanged": epoch_changed})
        }
        Item::Error(e) => {
            serde_json::json!({"notice": "error", "code": e.code.as_str_name(), "message": e.message, "channel": e.channel})
        }
    };
    writeln!(out, "{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        // 2026-12-07 05:22:51.123 UTC
        assert_eq!(clock(1_796_620_971_123_000_000), "05:22:51.123");
    }

    #[test]
    fn a_trade_reads_as_side_quantity_price() {
        let t = Payload::Trade(pb::Trade {
            price: 64000.5,
            quantity: 0.25,
            side: pb::Side::Sell as i32,
            trade_id: "7".into(),
            count: 0,
        });
        assert_eq!(
            summary(Some(&t)),
            ("trade", "SELL 0.25 @ 64000.5  id 7".into())
        );
    }
}
