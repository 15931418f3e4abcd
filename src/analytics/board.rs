//! The latest analytics state per instrument, shared between the engine
//! (writer, at each signal-interval close) and the scanner (reader).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::indicators::Values;

/// What the scanner reads: the latest indicator values per instrument.
#[derive(Debug, Clone, Default)]
pub struct InstrumentView {
    pub values: Values,
    pub bars: u64,
    /// Change of the last price against the first price seen, in percent.
    pub change_pct: f64,
    pub signal_score: f64,
}

/// Shared latest state, venue -> instrument -> view.
#[derive(Debug, Default)]
pub struct Board {
    venues: Mutex<BTreeMap<String, BTreeMap<String, InstrumentView>>>,
}

impl Board {
    /// The instruments of `venue` with their latest views.
    pub fn venue(&self, venue: &str) -> BTreeMap<String, InstrumentView> {
        self.venues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(venue)
            .cloned()
            .unwrap_or_default()
    }

    /// Records the latest view of one instrument.
    pub fn set(&self, venue: &str, instrument: &str, view: InstrumentView) {
        self.venues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(venue.to_string())
            .or_default()
            .insert(instrument.to_string(), view);
    }
}
