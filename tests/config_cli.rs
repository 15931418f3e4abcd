//! The configuration as an operator meets it, through the real binary:
//! `config example | config check -`, a TOML boolean that really switches
//! replay looping on, errors that name the file, `--listen localhost:0`,
//! and flag > environment > file precedence seen on a running server.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use support::{Server, WAIT, eventually_sync};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    // the environment must not leak into what these tests check
    for (k, _) in std::env::vars() {
        if k.starts_with("TICKWIRE_") {
            c.env_remove(k);
        }
    }
    c
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tickwire-cfgcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_example_piped_into_config_check_round_trips() {
    let example = bin().args(["config", "example"]).output().unwrap();
    assert!(example.status.success());
    let text = String::from_utf8(example.stdout).unwrap();
    assert!(text.contains("\nloop = false\n"), "{text}");
    let mut check = bin()
        .args(["config", "check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.starts_with("-: ok ("), "{said}");
    // a server's TICKWIRE_CONFIG (set in the Docker image) is not what
    // `config` reads
    let out = bin()
        .args(["config", "example"])
        .env("TICKWIRE_CONFIG", "/nonexistent/tickwire.toml")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // and a broken one fails, naming the key
    let bad = text.replace("book-depth = 50", "book-depth = 0");
    let path = temp_file("bad-example.toml", &bad);
    let out = bin().args(["config", "check"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&path.display().to_string()) && err.contains("`book-depth`"),
        "{err}"
    );
}

#[test]
fn a_file_error_is_one_line_naming_the_file_and_key() {
    let path = temp_file(
        "named.toml",
        "loop = true\nsim-instruments = [\"BTCUSDT\"]\n",
    );
    let out = bin().arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("key `sim-instruments`"), "{err}");
    assert!(err.contains("BASE-QUOTE"), "{err}");
    assert!(!err.contains("Usage"), "{err}");
}

#[test]
fn nonsense_values_are_refused_from_flags_and_the_environment() {
    for (args, env, reason) in [
        (
            &["--sim-instruments", "BTCUSDT,foo"][..],
            None,
            "BASE-QUOTE",
        ),
        (&["--book-depth", "0"][..], None, "at least 1 level"),
        (
            &[][..],
            Some(("TICKWIRE_BOOK_DEPTH", "0")),
            "at least 1 level",
        ),
        (
            &["--signal-interval", "5s"][..],
            None,
            "not among --candle-intervals",
        ),
        (
            &[][..],
            Some(("TICKWIRE_CANDLE_INTERVALS", "5m")),
            "not among --candle-intervals (from TICKWIRE_CANDLE_INTERVALS)",
        ),
    ] {
        let mut c = bin();
        c.arg("serve").args(args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(reason), "{args:?} {env:?}: {err}");
    }
}

#[test]
fn a_toml_true_loops_the_replay() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.twr");
    let path = temp_file(
        "loop.toml",
        &format!(
            "source = \"replay:{sample}\"\nloop = true\nreplay-speed = \"max\"\nanalytics = \"off\"\n"
        ),
    );
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    eventually_sync("two replay passes", || {
        let log = server.log();
        let passes = log
            .iter()
            .filter(|l| l.contains("replay pass finished"))
            .count();
        if passes >= 2 { Ok(()) } else { Err(log) }
    });
}

#[test]
fn listen_takes_a_host_name() {
    let mut child = bin()
        .args(["serve", "--listen", "localhost:0", "--sim-rate", "0"])
        .env("TICKWIRE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no listening line: {seen:?}")
        });
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        seen.push(line);
    };
    let _ = child.kill();
    let _ = child.wait();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
}

/// POST /publish with `key`: the HTTP status.
async fn publish_status(server: &Server, key: &str) -> u16 {
    let body = r#"{"channel":"custom.cfg.X-Y","custom":{"json":"1"}}"#;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Api-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn flag_beats_environment_beats_file() {
    let path = temp_file(
        "keys.toml",
        "publish-key = \"from-the-file-0123456\"\nsim-rate = 0\n",
    );
    let file = path.to_str().unwrap();
    let only_file = Server::start(&["--config", file]);
    assert_eq!(
        publish_status(&only_file, "from-the-file-0123456").await,
        200
    );
    let env = Server::start_with_env(
        &["--config", file],
        &[("TICKWIRE_PUBLISH_KEY", "from-the-env-01234567")],
    );
    assert_eq!(publish_status(&env, "from-the-env-01234567").await, 200);
    assert_eq!(publish_status(&env, "from-the-file-0123456").await, 401);
    let flag = Server::start_with_env(
        &["--config", file, "--publish-key", "from-the-flag-0123456"],
        &[("TICKWIRE_PUBLISH_KEY", "from-the-env-01234567")],
    );
    assert_eq!(publish_status(&flag, "from-the-flag-0123456").await, 200);
    assert_eq!(publish_status(&flag, "from-the-env-01234567").await, 401);
}

#[test]
fn every_serve_flag_has_a_row_in_the_readme_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `--")).collect();
    for arg in tickwire::config::serve_command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let name = format!("`--{long}`");
        assert!(
            rows.iter()
                .any(|r| r.split(" | ").next().is_some_and(|c| c.contains(&name))),
            "README's configuration table has no row for {name}"
        );
    }
}
