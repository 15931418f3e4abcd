//! Market analytics computed inside tickwire from the live event stream of
//! any source: candles, indicators, signals, sentiment and the scanner.

pub mod indicators;
