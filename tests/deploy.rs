//! The files under `deploy/` cannot be run here (no systemd, no docker),
//! so this checks that what they say agrees with the real flags: every
//! `TICKWIRE_*` variable and every flag after `serve` exists, the shipped
//! config file passes `config check`, the exposed port is the one it
//! listens on, and the stop timeouts leave room for the drain.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

struct Flags {
    longs: HashSet<String>,
    envs: HashSet<String>,
}

fn flags() -> Flags {
    let cmd = tickwire::config::serve_command();
    let args = cmd.get_arguments();
    let mut f = Flags {
        longs: HashSet::new(),
        envs: HashSet::new(),
    };
    for a in args {
        if let Some(l) = a.get_long() {
            f.longs.insert(l.to_string());
        }
        if let Some(e) = a.get_env() {
            f.envs.insert(e.to_string_lossy().into_owned());
        }
    }
    f
}

/// Every `TICKWIRE_X` token and every `--flag` after a `serve` word in
/// `text` (quotes and JSON array punctuation stripped).
fn check_consistent(name: &str, text: &str) -> (usize, usize) {
    let f = flags();
    let (mut envs, mut longs) = (0, 0);
    for line in text.lines() {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || "[]\",=".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        for w in &words {
            if let Some(at) = w.find("TICKWIRE_") {
                let var: String = w[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if var == "TICKWIRE_" {
                    continue; // `TICKWIRE_<FLAG>` in prose
                }
                assert!(
                    f.envs.contains(&var),
                    "{name}: `{var}` is no tickwire variable"
                );
                envs += 1;
            }
        }
        if let Some(at) = words.iter().position(|w| *w == "serve") {
            for w in &words[at + 1..] {
                if let Some(flag) = w.strip_prefix("--") {
                    assert!(
                        f.longs.contains(flag),
                        "{name}: `--{flag}` is no serve flag"
                    );
                    longs += 1;
                }
            }
        }
    }
    (envs, longs)
}

fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

fn shipped_config() -> toml::Table {
    read("deploy/tickwire.toml")
        .parse()
        .expect("deploy/tickwire.toml is TOML")
}

#[test]
fn the_shipped_config_file_checks_clean() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tickwire.toml");
    let keys = tickwire::config::check_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!keys.is_empty());
}

#[test]
fn the_systemd_unit_uses_real_flags_and_waits_for_the_drain() {
    let unit = read("deploy/tickwire.service");
    let (envs, longs) = check_consistent("tickwire.service", &unit);
    assert!(
        envs >= 2 && longs >= 1,
        "checked {envs} variables, {longs} flags"
    );
    let exec = unit_value(&unit, "ExecStart");
    assert!(exec.starts_with("/usr/local/bin/tickwire serve "), "{exec}");
    assert!(
        exec.contains("--config /etc/tickwire/tickwire.toml"),
        "{exec}"
    );
    let stop = humantime::parse_duration(&format!("{}s", unit_value(&unit, "TimeoutStopSec")))
        .expect("TimeoutStopSec in seconds");
    let drain = shipped_config()
        .get("shutdown-timeout")
        .and_then(|v| v.as_str())
        .map(|s| humantime::parse_duration(s).expect("shutdown-timeout"))
        .unwrap_or(Duration::from_secs(5));
    assert!(
        stop > drain,
        "TimeoutStopSec {stop:?} must exceed the drain {drain:?}"
    );
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
}

#[test]
fn the_dockerfile_uses_real_flags_and_exposes_the_listen_port() {
    let docker = read("deploy/Dockerfile");
    let (envs, longs) = check_consistent("Dockerfile", &docker);
    assert!(
        envs >= 2 && longs >= 1,
        "checked {envs} variables, {longs} flags"
    );
    for line in docker
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let src = line.split_whitespace().nth(1).unwrap_or_default();
        if src != "." {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(src).exists(),
                "COPY of a missing file: {line}"
            );
        }
    }
    assert!(docker.contains("COPY deploy/tickwire.toml /etc/tickwire/tickwire.toml"));
    assert!(docker.contains("TICKWIRE_CONFIG=/etc/tickwire/tickwire.toml"));
    let listen = shipped_config()["listen"]
        .as_str()
        .expect("listen")
        .to_string();
    let port = listen.rsplit(':').next().unwrap();
    let exposed = docker
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    assert_eq!(exposed.trim(), port, "EXPOSE vs listen = {listen}");
    assert!(
        listen.starts_with("0.0.0.0:") || listen.starts_with("[::]:"),
        "a container must listen on every interface, not {listen}"
    );
    assert!(docker.contains("STOPSIGNAL SIGTERM"));
}

#[test]
fn a_wrong_flag_or_variable_would_be_caught() {
    let caught = std::panic::catch_unwind(|| {
        check_consistent("x", "ExecStart=tickwire serve --no-such-flag")
    });
    assert!(caught.is_err(), "an unknown flag passes");
    let caught = std::panic::catch_unwind(|| check_consistent("x", "ENV TICKWIRE_NO_SUCH=1"));
    assert!(caught.is_err(), "an unknown variable passes");
}
