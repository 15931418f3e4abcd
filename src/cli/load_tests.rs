//! Tests of flag, environment and file handling.
use super::Cli;
use crate::config::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults_and_subcommand_forms_agree() {
    let a = Cli::load(args(&["tickwire"])).unwrap().into_config();
    let b = Cli::load(args(&["tickwire", "serve"]))
        .unwrap()
        .into_config();
    assert_eq!(a.listen, b.listen);
    assert_eq!(a.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(a.gzip_threshold, 1024);
    assert_eq!(a.heartbeat_interval, Duration::from_secs(15));
    assert_eq!(a.sim_rate, SimRate::PerSecond(1000.0));
    let c = Cli::load(args(&[
        "tickwire",
        "serve",
        "--sim-rate",
        "max",
        "--heartbeat-interval",
        "500ms",
    ]))
    .unwrap()
    .into_config();
    assert_eq!(c.sim_rate, SimRate::Max);
    assert_eq!(c.heartbeat_interval, Duration::from_millis(500));
    assert_eq!(a.sim_tick, Duration::from_millis(10));
    let d = Cli::load(args(&["tickwire", "--sim-tick", "1ms"])).unwrap();
    assert_eq!(d.into_config().sim_tick, Duration::from_millis(1));
}

#[test]
fn bad_values_are_refused_with_a_reason() {
    let err = Cli::load(args(&["tickwire", "--sim-rate", "fast"])).unwrap_err();
    assert!(err.to_string().contains("not a rate"), "{err}");
    assert!(Cli::load(args(&["tickwire", "--listen", "nowhere"])).is_err());
    let err = Cli::load(args(&["tickwire", "--sim-tick", "100us"])).unwrap_err();
    assert!(err.to_string().contains("between 1ms and 1s"), "{err}");
}

#[test]
fn toml_file_fills_what_flags_do_not_set() {
    let dir = std::env::temp_dir().join(format!("tickwire-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.toml");
    std::fs::write(
        &path,
        "gzip_threshold = 2048\nbook-depth = 20\nsim-instruments = [\"AAA-USDT\", \"BBB-USDT\"]\n",
    )
    .unwrap();
    let p = path.to_string_lossy().to_string();
    let c = Cli::load(args(&[
        "tickwire",
        "serve",
        "--config",
        &p,
        "--book-depth",
        "30",
    ]))
    .unwrap()
    .into_config();
    assert_eq!(c.gzip_threshold, 2048, "from the file");
    assert_eq!(c.book_depth, 30, "the flag wins over the file");
    assert_eq!(c.sim_instruments, vec!["AAA-USDT", "BBB-USDT"]);
    std::fs::write(&path, "gzip_threshold = [").unwrap();
    assert!(matches!(
        Cli::load(args(&["tickwire", "--config", &p])),
        Err(ConfigError::Toml { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// A config file in a fresh temporary directory, removed on drop.
struct TempToml {
    dir: PathBuf,
    path: String,
}

impl TempToml {
    fn new(name: &str, text: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tickwire-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        Self {
            path: path.to_string_lossy().into_owned(),
            dir,
        }
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[test]
fn a_toml_boolean_sets_a_switch() {
    let on = TempToml::new("bool-on", "loop = true\nsource = \"replay:x.twr\"\n");
    let c = Cli::load(args(&["tickwire", "serve", "--config", &on.path]))
        .unwrap()
        .into_config();
    assert!(c.replay_loop);
    assert_eq!(c.sources, vec![SourceSpec::Replay("x.twr".into())]);
    let off = TempToml::new("bool-off", "loop = false\n");
    let c = Cli::load(args(&["tickwire", "--config", &off.path]))
        .unwrap()
        .into_config();
    assert!(!c.replay_loop);
    // the flag wins over the file either way
    let c = Cli::load(args(&["tickwire", "--config", &off.path, "--loop"]))
        .unwrap()
        .into_config();
    assert!(c.replay_loop);
    let c = Cli::load(args(&["tickwire", "--config", &on.path, "--loop=false"]))
        .unwrap()
        .into_config();
    assert!(!c.replay_loop);
    let c = Cli::load(args(&["tickwire", "--loop=true", "--sim-rate", "5"]))
        .unwrap()
        .into_config();
    assert!(c.replay_loop);
    let bad = TempToml::new("bool-bad", "loop = 1\n");
    let err = Cli::load(args(&["tickwire", "--config", &bad.path])).unwrap_err();
    assert!(
        err.to_string().contains("`1` is not one of true, false"),
        "{err}"
    );
}

#[test]
fn errors_from_the_file_name_the_file_and_the_key() {
    let f = TempToml::new("named", "sim-rate = 100\nbook_depth = 0\n");
    let err = Cli::load(args(&["tickwire", "--config", &f.path])).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, ConfigError::Value { key, .. } if key == "book_depth"),
        "{err:?}"
    );
    assert!(text.contains(&f.path), "{text}");
    assert!(text.contains("`book_depth`"), "{text}");
    assert!(text.contains("at least 1 level"), "{text}");
    assert!(text.len() < 300, "short, no usage text: {text}");
    let f = TempToml::new("unknown", "sim-rat = 100\n");
    let err = Cli::load(args(&["tickwire", "--config", &f.path])).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "sim-rat"),
        "{err:?}"
    );
    assert!(err.to_string().contains(&f.path), "{err}");
    let f = TempToml::new("table", "[sim]\nrate = 1\n");
    let err = Cli::load(args(&["tickwire", "--config", &f.path])).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    let f = TempToml::new("nested", "listen = { host = \"x\" }\n");
    let err = Cli::load(args(&["tickwire", "--config", &f.path])).unwrap_err();
    assert!(
        err.to_string().contains("`listen`") && err.to_string().contains(&f.path),
        "{err}"
    );
    let err = Cli::load(args(&["tickwire", "--config", "/nonexistent/x.toml"])).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.toml"), "{err}");
}

#[test]
fn listen_accepts_host_names() {
    let c = Cli::load(args(&["tickwire", "--listen", "localhost:8080"]))
        .unwrap()
        .into_config();
    assert!(c.listen.ip().is_loopback(), "{}", c.listen);
    assert_eq!(c.listen.port(), 8080);
    let c = Cli::load(args(&["tickwire", "--listen", "[::1]:0"]))
        .unwrap()
        .into_config();
    assert_eq!(c.listen.to_string(), "[::1]:0");
    let err = Cli::load(args(&["tickwire", "--listen", "localhost"])).unwrap_err();
    assert!(err.to_string().contains("HOST:PORT"), "{err}");
}

#[test]
fn nonsense_values_are_refused_with_a_reason() {
    let refused = |list: &[&str], reason: &str| {
        let err = Cli::load(args(list)).unwrap_err();
        assert!(err.to_string().contains(reason), "{list:?}: {err}");
    };
    refused(
        &["tickwire", "--sim-instruments", "BTC-USDT,BTCUSDT"],
        "`BTCUSDT` is not an instrument: use BASE-QUOTE",
    );
    refused(&["tickwire", "--sim-instruments", "foo"], "BASE-QUOTE");
    refused(&["tickwire", "--sim-instruments", "BTC-"], "BASE-QUOTE");
    refused(&["tickwire", "--book-depth", "0"], "at least 1 level");
    refused(
        &[
            "tickwire",
            "--signal-interval",
            "5m",
            "--candle-intervals",
            "1m,1h",
        ],
        "--signal-interval is `5m`, which is not among --candle-intervals `1m,1h`",
    );
    refused(
        &["tickwire", "serve", "--signal-interval", "15m"],
        "--candle-intervals (default) `1m,5m,1h`",
    );
    refused(
        &["tickwire", "--reconnect-min", "1m", "--reconnect-max", "1s"],
        "is above",
    );
    // with analytics off the signal interval is not used
    let c = Cli::load(args(&[
        "tickwire",
        "--analytics",
        "off",
        "--signal-interval",
        "15m",
    ]));
    assert!(c.is_ok(), "{:?}", c.err());
    let ok = Cli::load(args(&[
        "tickwire",
        "--sim-instruments",
        "BTC-USDT,eth-usdc",
    ]));
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn cross_checks_name_the_file_a_value_came_from() {
    let f = TempToml::new(
        "cross",
        "candle_intervals = \"5m,1h\"\ntls_key = \"k.pem\"\n",
    );
    let err = Cli::load(args(&[
        "tickwire",
        "--config",
        &f.path,
        "--signal-interval",
        "5m",
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`tls_key` (config file") && err.contains(&f.path),
        "{err}"
    );
    let err = check_file(Path::new(&f.path)).unwrap_err().to_string();
    assert!(
        err.contains("--signal-interval (default) is `1m`")
            && err.contains("`candle_intervals` (config file"),
        "{err}"
    );
}

#[test]
fn the_example_holds_every_flag_and_checks_clean() {
    let text = example();
    let table: toml::Table = text.parse().expect("the example is TOML");
    for arg in serve_command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version" | "config") {
            continue;
        }
        let set = table.contains_key(long);
        let commented = text.contains(&format!("\n# {long} = "));
        assert!(set || commented, "`{long}` missing from the example");
        assert!(
            text.contains(&format!("# flag --{long}")),
            "`{long}` has no comment"
        );
    }
    assert_eq!(table["loop"], toml::Value::Boolean(false));
    assert_eq!(table["gzip-threshold"], toml::Value::Integer(1024));
    let f = TempToml::new("example", &text);
    let keys = check_file(Path::new(&f.path)).unwrap();
    assert_eq!(keys.len(), table.len());
}

#[test]
fn every_flag_has_its_environment_variable() {
    for arg in serve_command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let want = format!("TICKWIRE_{}", long.replace('-', "_").to_uppercase());
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(env.as_deref(), Some(want.as_str()), "--{long}");
    }
}
