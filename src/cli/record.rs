//! The flags of `tickwire record` (the recording itself is
//! [`crate::recording`]; `app` runs it).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::{self, SimRate, SourceSpec};

/// Settings of `tickwire record`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// File to write (`.twr`).
    #[arg(long)]
    pub out: PathBuf,

    /// Channel patterns to record (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', default_value = "*.*.*")]
    pub channels: Vec<String>,

    /// WebSocket URL of the tickwire to record from.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub connect: String,

    /// Instead of connecting, run these sources in-process and record them
    /// (same values as `serve --source`; e.g. `--source sim`).
    #[arg(long = "source", value_delimiter = ',', value_parser = config::parse_source)]
    pub sources: Vec<SourceSpec>,

    /// Simulator rate when recording `--source sim` (events/s or `max`).
    #[arg(long, default_value = "1000", value_parser = config::parse_sim_rate)]
    pub sim_rate: SimRate,

    /// Gzip the file body.
    #[arg(long)]
    pub gzip: bool,

    /// Stop after this long (e.g. `30s`).
    #[arg(long, value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    pub duration: Option<Duration>,

    /// Stop after this many events.
    #[arg(long)]
    pub max_events: Option<u64>,

    /// Print the events written so far on stderr this often (`0s` = never).
    #[arg(long, default_value = "5s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    pub progress: Duration,
}

impl RecordArgs {
    /// What the recorder itself needs (where the events come from is the
    /// caller's business).
    pub fn settings(&self) -> crate::recording::Settings {
        crate::recording::Settings {
            out: self.out.clone(),
            channels: self.channels.clone(),
            gzip: self.gzip,
            duration: self.duration,
            max_events: self.max_events,
            progress: self.progress,
        }
    }
}
