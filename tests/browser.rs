//! The dashboard at `/` in headless Chromium against the real server, with
//! JWT auth and the origin allowlist on: `web/test/dashboard.test.mjs`
//! (playwright-core driving Debian's `/usr/bin/chromium`) checks the grid,
//! depth (venue column, consolidated top `bbo.all.*`), tape, chart, signals, sentiment gauge, scanner, figures and log
//! (signals and sentiment every second here), asks this test to stop and restart
//! the server on the same port, and checks the page reconnects by itself.
//! Screenshots go to `target/artifacts/`.
//!
//! Installs the npm packages (`npm ci` in clients/js) when they are missing;
//! fails with the command to run when `node` 20+ or `/usr/bin/chromium` is
//! missing.

mod support;

use support::{Server, node};

#[test]
fn dashboard_in_headless_chromium_shows_the_feed_and_survives_a_restart() {
    node::prerequisites(
        "dashboard_in_headless_chromium_shows_the_feed_and_survives_a_restart",
        true,
    );
    // The port is chosen first: the allowed origin names it.
    let addr = support::free_addr();
    let origin = format!("http://{addr}");
    let secret = "dashboard-test-secret-of-32-bytes";
    // Signals and sentiment every second, so that the page shows them soon.
    let args = [
        "--jwt-secret",
        secret,
        "--allowed-origins",
        &origin,
        "--signal-interval",
        "1s",
        // the signal interval must be a built candle interval
        "--candle-intervals",
        "1s,1m,5m,1h",
        "--sentiment-interval",
        "1s",
        // bbo.all.* over the simulator: the book panel's consolidated line
        "--consolidated-book",
        "on",
    ];
    let mut server = Some(Server::start_on(addr, &args));
    let artifacts = node::artifacts_dir();
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let env = [
        ("TICKWIRE_ADDR", addr.to_string()),
        ("TICKWIRE_JWT_SECRET", secret.to_string()),
        ("TICKWIRE_ARTIFACTS", artifacts.display().to_string()),
        ("TICKWIRE_CHROMIUM", node::CHROMIUM.to_string()),
    ];
    let status = node::run(
        "web/test/dashboard.test.mjs",
        &env,
        std::time::Duration::from_secs(300),
        |command| match command {
            "stop" => node::stop(&mut server),
            "start" => {
                server = Some(Server::start_on(addr, &args));
                "started".into()
            }
            other => format!("error: unknown command {other}"),
        },
    );
    assert!(status.success(), "dashboard.test.mjs failed: {status}");
    assert!(screenshot.exists(), "{} was saved", screenshot.display());
    println!("screenshot: {}", screenshot.display());
}
