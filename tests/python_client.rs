//! The Python client (`clients/python`) under pytest against the real
//! server binary: the conformance scenarios (snapshot then updates, a
//! pattern covering a later channel, a network drop and resume, a kill -9
//! and restart, a slow reader, gzip, verified books) plus the package's own
//! checks (generated classes not stale, `pip install ./clients/python`).
//!
//! Its Python packages (`clients/python/requirements-test.txt`) are
//! installed with pip when missing; a missing `python3` fails the test with
//! the command to run: nothing here reports `ok` without having run.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn python_has_test_packages() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import websockets, google.protobuf, pytest, grpc_tools",
        ])
        .status()
        .unwrap_or_else(|e| panic!("`python3` (3.10+) is needed for the Python client tests: {e}"))
        .success()
}

#[test]
fn python_client_passes_its_conformance_suite_against_the_real_server() {
    if !python_has_test_packages() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(format!("{ROOT}/clients/python/requirements-test.txt"))
            .status()
            .expect("python3 -m pip");
        assert!(
            status.success(),
            "installing the Python test packages failed: run `python3 -m pip install -r clients/python/requirements-test.txt`"
        );
    }
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA"])
        .arg(format!("{ROOT}/clients/python/tests"))
        .env("TICKWIRE_BIN", env!("CARGO_BIN_EXE_tickwire"))
        .env("PYTHONPATH", format!("{ROOT}/clients/python/src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(ROOT)
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pytest failed (output above)");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed") && !summary.contains("skipped"),
        "every Python test must run: {summary}"
    );
}
