//! Replays every fuzz target's seed corpus (`fuzz/seeds/<target>/`) through
//! the same checks the fuzzer runs (`tickwire::fuzz`), on the stable
//! toolchain under `cargo test`: a decoder change that breaks an invariant
//! on a known input fails here before any fuzzing. Also holds the list of
//! targets to `fuzz/Cargo.toml`, so a target cannot be added without seeds
//! and a replay.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 12] = [
    ("client_proto", tickwire::fuzz::client_proto),
    ("client_json", tickwire::fuzz::client_json),
    ("channel_pattern", tickwire::fuzz::channel_pattern),
    ("inbound_frame", tickwire::fuzz::inbound_frame),
    ("binance_msg", tickwire::fuzz::binance_msg),
    ("okx_msg", tickwire::fuzz::okx_msg),
    ("bybit_msg", tickwire::fuzz::bybit_msg),
    ("coinbase_msg", tickwire::fuzz::coinbase_msg),
    ("kraken_msg", tickwire::fuzz::kraken_msg),
    ("twr_reader", tickwire::fuzz::twr_reader),
    ("publish_body", tickwire::fuzz::publish_body),
    ("ws_fragments", tickwire::fuzz::ws_fragments),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn every_fuzz_target_has_seeds_and_a_replay() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "tickwire-fuzz")
        .collect();
    let mut replayed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort_unstable();
    replayed.sort_unstable();
    assert_eq!(
        declared_sorted, replayed,
        "fuzz/Cargo.toml targets vs replays"
    );
    let script = std::fs::read_to_string(fuzz_dir().join("run.sh")).unwrap();
    for name in declared {
        assert!(script.contains(name), "fuzz/run.sh does not run {name}");
    }
}

#[test]
fn seed_corpora_pass_the_fuzz_checks() {
    for (name, target) in TARGETS {
        let dir = fuzz_dir().join("seeds").join(name);
        let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            target(&data);
            // every prefix too: a cut input is the commonest malformed one
            for cut in (0..data.len()).step_by(data.len().div_ceil(64).max(1)) {
                target(&data[..cut]);
            }
        }
    }
}
