//! What `tickwire record` tells its operator: a warning when the patterns
//! match no channel yet (and it keeps waiting for channels created later),
//! and progress lines while it writes.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;

use support::{Server, eventually_sync};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn out_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tickwire-reccli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Starts `tickwire record ARGS`; its stderr lines arrive on the receiver.
fn spawn_record(args: &[&str]) -> (std::process::Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire"))
        .arg("record")
        .args(args)
        .env("TICKWIRE_LOG", "info")
        .env_remove("RUST_LOG")
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
    (child, rx)
}

/// Lines until one contains `want` (panics at the hang guard).
fn wait_line(rx: &Receiver<String>, want: &str, seen: &mut Vec<String>) {
    eventually_sync(&format!("a line with `{want}`"), || {
        while let Ok(line) = rx.try_recv() {
            let hit = line.contains(want);
            seen.push(line);
            if hit {
                return Ok(());
            }
        }
        Err(format!("{seen:#?}"))
    })
}

/// A publish key long enough to be accepted (16 bytes at least).
const KEY: &str = "record-cli-publish-key";

async fn publish(server: &Server, key: &str, channel: &str) {
    let body = format!(r#"{{"channel":"{channel}","custom":{{"json":"1"}}}}"#);
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Api-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
}

#[tokio::test]
async fn no_matching_channel_is_said_and_a_later_channel_is_recorded() {
    let server = Server::start(&["--sim-rate", "0", "--publish-key", KEY]);
    let out = out_file("later.twr");
    let url = server.ws_url("");
    let (mut child, rx) = spawn_record(&[
        "--connect",
        &url,
        "--channels",
        "custom.later.*",
        "--max-events",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut seen = Vec::new();
    wait_line(&rx, "no channel matches custom.later.* yet", &mut seen);
    publish(&server, KEY, "custom.later.A-B").await;
    wait_line(&rx, "recorded 1 events on 1 channels", &mut seen);
    assert!(child.wait().unwrap().success(), "{seen:#?}");
    let mut reader = tickwire::sources::twr::Reader::open(&out).unwrap();
    let event = reader.next_event().unwrap().expect("one event");
    assert_eq!(event.channel, "custom.later.A-B");
    assert!(reader.next_event().unwrap().is_none());
}

#[test]
fn progress_lines_count_the_events_written() {
    let out = out_file("progress.twr");
    let (mut child, rx) = spawn_record(&[
        "--source",
        "sim",
        "--sim-rate",
        "2000",
        "--max-events",
        "800",
        "--progress",
        "50ms",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut seen = Vec::new();
    wait_line(&rx, "recorded 800 events", &mut seen);
    assert!(child.wait().unwrap().success());
    let counts: Vec<u64> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("record: "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(
        counts.iter().any(|n| *n > 0 && *n < 800),
        "no progress line while writing: {seen:#?}"
    );
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        !seen.iter().any(|l| l.contains("no channel matches")),
        "{seen:#?}"
    );
}
