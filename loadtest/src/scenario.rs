//! Named scenarios from `scenarios.toml`: a scenario supplies defaults for
//! any run option; flags given on the command line win.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// One scenario's settings (all optional; absent means the CLI default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: Option<String>,
    pub clients: Option<usize>,
    pub subscribe: Option<Vec<String>>,
    pub per_client_instrument: Option<bool>,
    pub json_ratio: Option<f64>,
    /// The subscribe's `conflate_ms` (absent = 0, every event).
    pub conflate_ms: Option<u32>,
    pub duration: Option<String>,
    pub ramp_per_sec: Option<f64>,
    /// Extra flags for a spawned tickwire (`--sim-rate` etc.).
    pub server_args: Option<Vec<String>>,
    /// Rate and size for spawned peers.
    pub peer_rate: Option<f64>,
    pub peer_size: Option<usize>,
    /// Deliveries/s the scenario offers (for "% of offered").
    pub offered_per_s: Option<f64>,
    /// Extra clients that connect during the window (connect storm).
    pub storm_clients: Option<usize>,
    pub storm_within: Option<String>,
    /// Clients that never subscribe.
    pub idle: Option<bool>,
    /// Fraction of clients that decode every message.
    pub decode_ratio: Option<f64>,
    /// The spawned tickwire is a cluster edge (`--source none`) behind
    /// nats-server and an ingest running `server_args` (see `cluster.rs`).
    pub cluster: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct File {
    scenario: BTreeMap<String, Scenario>,
}

/// Loads one scenario by name.
pub fn load(path: &Path, name: &str) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: File = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    file.scenario.get(name).cloned().ok_or_else(|| {
        let names: Vec<_> = file.scenario.keys().cloned().collect();
        format!(
            "no scenario `{name}` in {}; known: {}",
            path.display(),
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_scenarios_parse() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios.toml");
        for name in [
            "light",
            "target-10k",
            "broadcast-1k",
            "broadcast-1k-2k",
            "broadcast-10k",
            "broadcast-10k-conflated",
            "idle-10k",
            "ingest",
            "ingest-idle-10k",
            "ingest-10k",
            "json-mix",
            "connect-storm",
            "target-10k-analytics",
            "cluster-light",
            "cluster-broadcast-1k",
            "cluster-ingest",
        ] {
            super::load(&path, name).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(super::load(&path, "nope").is_err());
    }
}
