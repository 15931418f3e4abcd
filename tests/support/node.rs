//! Running the JavaScript tests (the JS client's, the dashboard's in headless
//! Chromium) from Rust integration tests, so `cargo test --workspace` runs
//! them against a real server started by [`super::Server`].
//!
//! The npm packages of `clients/js` are installed with `npm ci` when they
//! are missing or older than the lock file. Anything else missing (`node`
//! 20+, `/usr/bin/chromium`) fails the test with the command that installs
//! it: a test that did not run is never reported `ok`.

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

/// Whether this run is CI's (`CI=true`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The npm packages the JS tests load (`browser`: the dashboard's too).
fn packages(browser: bool) -> Vec<&'static str> {
    let mut packages = vec!["ws", "protobufjs"];
    if browser {
        packages.push("playwright-core");
    }
    packages
}

/// Whether `clients/js/node_modules` lacks a package the tests load, or is
/// older than `package-lock.json` (a lock changed by a pull).
fn packages_stale(browser: bool) -> bool {
    let modules = Path::new(JS_DIR).join("node_modules");
    let missing = packages(browser)
        .iter()
        .any(|p| !modules.join(p).join("package.json").exists());
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let older = match (
        mtime(&modules.join(".package-lock.json")),
        mtime(&Path::new(JS_DIR).join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    };
    missing || older
}

/// Runs `npm ci` in `clients/js` once per test process (the tests of one
/// binary run in parallel threads and share the result).
fn npm_ci() -> Result<(), String> {
    static DONE: std::sync::Mutex<Option<Result<(), String>>> = std::sync::Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(result) = done.as_ref() {
        return result.clone();
    }
    println!("installing the JS test dependencies: npm ci (in clients/js)");
    let result = match Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(JS_DIR)
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Err(format!("`npm` not found ({e}): install Node 20+ with npm")),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`npm ci` in clients/js failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    };
    *done = Some(result.clone());
    result
}

/// What keeps the JS tests from running (`browser`: the dashboard's too),
/// after installing the npm packages if they are missing: a message naming
/// the command that fixes it.
pub fn missing(browser: bool) -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Err(e) => {
            return Some(format!(
                "`node` not found ({e}): install Node 20+ (`apt-get install nodejs npm`)"
            ));
        }
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
    if packages_stale(browser) {
        if let Err(e) = npm_ci() {
            return Some(format!("{e}; run `npm ci` in clients/js"));
        }
        if let Some(p) = packages(browser).into_iter().find(|p| {
            !Path::new(JS_DIR)
                .join("node_modules")
                .join(p)
                .join("package.json")
                .exists()
        }) {
            return Some(format!(
                "npm package `{p}` still missing after `npm ci` in clients/js"
            ));
        }
    }
    if browser && !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} missing: `apt-get install chromium`"));
    }
    None
}

/// Makes sure the test can run: installs the npm packages if needed, and
/// panics with the command that fixes anything else that is missing. A
/// test that cannot run fails; it is never reported `ok` without running.
pub fn prerequisites(test: &str, browser: bool) {
    if let Some(why) = missing(browser) {
        panic!("{test} cannot run: {why}");
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
