//! Running the JavaScript tests (the JS client's, the dashboard's in headless
//! Chromium) from Rust integration tests, so `cargo test --workspace` runs
//! them against a real server started by [`super::Server`].
//!
//! A missing prerequisite (`node` 20+, the npm packages of `clients/js`,
//! `/usr/bin/chromium`) skips the test with a printed reason, except under
//! `CI=true`, where it fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The repository root (where the scripts' relative paths start).
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The npm package holding the JS client and the tests' dev dependencies.
pub const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js");

/// The browser the dashboard tests drive (Debian's `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A line a script prints to ask the Rust side for something (e.g. to stop
/// or restart the server); the answer is written to its stdin as one line.
pub const CONTROL_PREFIX: &str = "TICKWIRE-CONTROL ";

/// Whether this run is CI's (`CI=true`), where skipping is failing.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// What is missing to run the JS tests (`browser`: the dashboard's too).
pub fn missing(browser: bool) -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Err(e) => return Some(format!("`node` not found ({e})")),
        Ok(out) => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let major: u32 = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if !out.status.success() || major < 20 {
                return Some(format!("node 20+ needed, found `{version}`"));
            }
        }
    }
    let mut packages = vec!["ws", "protobufjs"];
    if browser {
        packages.push("playwright-core");
    }
    for p in packages {
        let dir = Path::new(JS_DIR).join("node_modules").join(p);
        if !dir.join("package.json").exists() {
            return Some(format!(
                "npm package `{p}` missing: run `npm ci` in clients/js"
            ));
        }
    }
    if browser && !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} missing: `apt-get install chromium`"));
    }
    None
}

/// True when the test can run; prints why it is skipped otherwise, and
/// panics instead under `CI=true`.
pub fn prerequisites(test: &str, browser: bool) -> bool {
    match missing(browser) {
        None => true,
        Some(why) if ci() => panic!("{test}: {why} (CI=true: not skipping)"),
        Some(why) => {
            println!("SKIPPED {test}: {why}");
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// Where tests leave files worth looking at (screenshots): `target/artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(ROOT).join("target").join("artifacts");
    std::fs::create_dir_all(&dir).expect("create target/artifacts");
    dir
}

/// Runs `node <script>` from the repository root with `env`, echoing its
/// output (shown by `cargo test` on failure or with `--nocapture`). Each
/// `TICKWIRE-CONTROL <command>` line it prints is passed to `control`, whose
/// answer goes back on its stdin. The script is killed (by its PID) after
/// `timeout`.
pub fn run(
    script: &str,
    env: &[(&str, String)],
    timeout: Duration,
    mut control: impl FnMut(&str) -> String,
) -> ExitStatus {
    let mut child = Command::new("node")
        .arg("--test-reporter=spec")
        .arg(script)
        .current_dir(ROOT)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NODE_NO_WARNINGS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin piped");
    let stdout = child.stdout.take().expect("stdout piped");
    let stderr = child.stderr.take().expect("stderr piped");
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            println!("[{pid} stderr] {line}");
        }
    });
    // the watchdog ends the script if it hangs
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            println!("node script timed out after {timeout:?}: killing PID {pid}");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(command) = line.trim().strip_prefix(CONTROL_PREFIX.trim_end()) {
            let command = command.trim();
            let answer = control(command);
            println!("[control] {command} -> {answer}");
            if writeln!(stdin, "{answer}")
                .and_then(|_| stdin.flush())
                .is_err()
            {
                println!("[control] the script's stdin is closed");
            }
        }
    }
    let status = child.wait().expect("wait for node");
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let _ = err_thread.join();
    println!("node {script}: {status}");
    status
}

/// Runs a script that needs no control from the Rust side.
pub fn run_plain(script: &str, env: &[(&str, String)], timeout: Duration) -> ExitStatus {
    run(script, env, timeout, |command| {
        println!("unexpected control command `{command}`");
        "unsupported".to_string()
    })
}

/// Answers a script's `stop` command: SIGTERM to the server, which must
/// exit cleanly; the reply tells the script what happened.
pub fn stop(server: &mut Option<super::Server>) -> String {
    match server.take() {
        Some(mut s) => {
            s.signal("TERM");
            let exit = s.wait_exit(super::WAIT);
            if exit.success() {
                "stopped".into()
            } else {
                format!("error: server exited with {exit}")
            }
        }
        None => "error: not running".into(),
    }
}
