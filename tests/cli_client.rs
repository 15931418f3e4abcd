//! The client commands of the binary against a real server, as the README
//! shows them: `tickwire sub` (JSON lines when piped, columns with
//! `--format table`), `tickwire book` (a verified ladder) and
//! `tickwire channels`.

mod support;

use std::process::{Command, Output};

use support::Server;

fn tickwire(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(args)
        .output()
        .expect("run tickwire");
    assert!(
        out.status.success(),
        "tickwire {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn sub_prints_json_lines_when_piped_and_stops_after_count() {
    let server = Server::start(&[]);
    let url = server.ws_url("");
    let out = tickwire(&["sub", "trade.sim.*", "--count", "5", "--url", &url]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines {
        assert!(line["channel"].as_str().unwrap().starts_with("trade.sim."));
        assert!(line["trade"]["price"].as_f64().unwrap() > 0.0);
        assert!(line["seq"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    }
}

#[test]
fn sub_prints_readable_columns_with_format_table() {
    let server = Server::start(&[]);
    let url = server.ws_url("");
    let out = tickwire(&[
        "sub",
        "ticker.sim.BTC-USDT",
        "--count",
        "2",
        "--format",
        "table",
        "--url",
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("TIME"), "{text}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("ticker.sim.BTC-USDT") && r.contains("last ")),
        "{text}"
    );
}

#[test]
fn book_shows_a_verified_ladder() {
    let server = Server::start(&[]);
    let url = server.ws_url("");
    let out = tickwire(&[
        "book",
        "book.sim.BTC-USDT",
        "--count",
        "3",
        "--levels",
        "5",
        "--url",
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("checksum OK").count(), 3, "{text}");
    assert_eq!(text.matches("BID SIZE").count(), 3, "{text}");
    // five rows of levels under each header, bids and asks both present
    let ladder: Vec<&str> = text.lines().skip(2).take(5).collect();
    assert!(
        ladder
            .iter()
            .all(|row| row.contains(" | ") && row.split_whitespace().count() == 5),
        "{text}"
    );
}

#[test]
fn channels_lists_kind_and_seq() {
    let server = Server::start(&[]);
    let url = server.ws_url("");
    let out = tickwire(&["channels", "book.sim.*", "--json", "--url", &url]);
    let list: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        list.iter()
            .any(|c| c["channel"] == "book.sim.BTC-USDT" && c["kind"] == "book"),
        "{list:?}"
    );
    assert!(
        list.iter()
            .all(|c| c["channel"].as_str().unwrap().starts_with("book.sim."))
    );
}

#[test]
fn a_server_that_is_not_there_is_a_clear_error() {
    let addr = support::free_addr();
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .args(["channels", "--url", &format!("ws://{addr}/ws")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
}
