//! The JavaScript client (`clients/js/tickwire.js`) in Node against the real
//! server: each test starts `tickwire` with the flags its scenario needs and
//! runs one `clients/js/test/*.test.mjs` script (node's test runner, real
//! sockets, `ws` as the WebSocket implementation).
//!
//! Installs the npm packages (`npm ci` in clients/js) when they are missing;
//! fails with the command to run when `node` 20+ is missing.

mod support;

use std::time::Duration;

use support::{Server, node};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn env_for(server: &Server) -> Vec<(&'static str, String)> {
    vec![("TICKWIRE_ADDR", server.addr.to_string())]
}

#[test]
fn js_client_json_mode_gzip_gaps_heartbeat_and_proto_mode() {
    node::prerequisites(
        "js_client_json_mode_gzip_gaps_heartbeat_and_proto_mode",
        false,
    );
    // A low threshold: book snapshots (and most updates) arrive gzipped.
    let server = Server::start(&["--gzip-threshold", "64"]);
    let status = node::run_plain(
        "clients/js/test/feed.test.mjs",
        &env_for(&server),
        SCRIPT_TIMEOUT,
    );
    assert!(status.success(), "feed.test.mjs failed: {status}");
}

#[test]
fn js_client_pattern_covers_a_later_channel_and_verifies_every_book_checksum() {
    node::prerequisites(
        "js_client_pattern_covers_a_later_channel_and_verifies_every_book_checksum",
        false,
    );
    let key = "js-client-conformance-publish-key";
    let server = Server::start(&["--publish-key", key]);
    let mut env = env_for(&server);
    env.push(("TICKWIRE_PUBLISH_KEY", key.to_string()));
    let status = node::run_plain("clients/js/test/conformance.test.mjs", &env, SCRIPT_TIMEOUT);
    assert!(status.success(), "conformance.test.mjs failed: {status}");
}

#[test]
fn js_client_reconnects_and_resumes_without_gap_after_server_side_closes() {
    node::prerequisites(
        "js_client_reconnects_and_resumes_without_gap_after_server_side_closes",
        false,
    );
    // Tokens expire while connected: the server closes with 4001.
    let secret = "js-client-test-secret-of-32-bytes";
    let server = Server::start(&["--jwt-secret", secret]);
    let mut env = env_for(&server);
    env.push(("TICKWIRE_JWT_SECRET", secret.to_string()));
    let status = node::run_plain("clients/js/test/reconnect.test.mjs", &env, SCRIPT_TIMEOUT);
    assert!(status.success(), "reconnect.test.mjs failed: {status}");
}

#[test]
fn js_client_reports_lagged_and_resyncs_when_it_falls_behind() {
    node::prerequisites(
        "js_client_reports_lagged_and_resyncs_when_it_falls_behind",
        false,
    );
    let server = Server::start(&[
        "--sim-rate",
        "5000",
        "--max-lag-messages",
        "200",
        "--socket-send-buffer",
        "4096",
    ]);
    let status = node::run_plain(
        "clients/js/test/lagged.test.mjs",
        &env_for(&server),
        SCRIPT_TIMEOUT,
    );
    assert!(status.success(), "lagged.test.mjs failed: {status}");
}

#[test]
fn js_client_conflates_with_announced_skips_and_verified_books() {
    node::prerequisites(
        "js_client_conflates_with_announced_skips_and_verified_books",
        false,
    );
    let server = Server::start(&["--sim-instruments", "BTC-USDT", "--analytics", "off"]);
    let status = node::run_plain(
        "clients/js/test/conflation.test.mjs",
        &env_for(&server),
        SCRIPT_TIMEOUT,
    );
    assert!(status.success(), "conflation.test.mjs failed: {status}");
}

#[test]
fn js_client_reconnects_after_a_restart_on_the_same_port_and_after_a_frozen_server() {
    node::prerequisites(
        "js_client_reconnects_after_a_restart_on_the_same_port_and_after_a_frozen_server",
        false,
    );
    let first = Server::start(&[]);
    let addr = first.addr;
    let env = env_for(&first);
    let mut server = Some(first);
    let status = node::run(
        "clients/js/test/restart.test.mjs",
        &env,
        SCRIPT_TIMEOUT,
        |command| match command {
            "stop" => node::stop(&mut server),
            // kill -9: dropping the server kills it with SIGKILL
            "kill" => match server.take() {
                Some(s) => {
                    drop(s);
                    "killed".into()
                }
                None => "error: not running".into(),
            },
            "start" => {
                server = Some(Server::start_on(addr, &[]));
                "started".into()
            }
            // SIGSTOP/SIGCONT: a server that stops answering, then comes back
            "freeze" | "thaw" => match &server {
                Some(s) if command == "freeze" => {
                    s.signal("STOP");
                    "frozen".into()
                }
                Some(s) => {
                    s.signal("CONT");
                    "thawed".into()
                }
                None => "error: not running".into(),
            },
            other => format!("error: unknown command {other}"),
        },
    );
    assert!(status.success(), "restart.test.mjs failed: {status}");
    assert!(server.is_some(), "the server was restarted");
}
