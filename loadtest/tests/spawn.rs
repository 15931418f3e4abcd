//! `--spawn` measures the server it started or nothing: a taken address or
//! a server that exits before listening stops the run with exit code 2 and
//! a message, and no client connects to whatever holds the port.

use std::net::TcpListener;
use std::process::Command;

fn load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tickwire-load"))
        .args(args)
        .output()
        .expect("run tickwire-load")
}

#[test]
fn refuses_to_run_when_the_spawned_server_cannot_bind() {
    // another "server" holds the port, as `cargo run` on 8080 did
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    squatter.set_nonblocking(true).expect("nonblocking");
    let addr = squatter.local_addr().expect("addr").to_string();
    let out = load(&[
        "--scenario",
        "light",
        "--spawn",
        "tickwire",
        "--addr",
        &addr,
        "--duration",
        "1s",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("refusing to run") && stderr.contains(&addr),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no report: {:?}", out.stdout);
    // nobody measured the squatter
    match squatter.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a client connected to the squatter: {other:?}"),
    }
}

#[test]
fn stops_when_the_spawned_server_exits_before_listening() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();
    // a "server" that prints why it failed and exits
    let out = load(&[
        "--spawn",
        "naive-rust",
        "--server-bin",
        "/bin/sh",
        "--addr",
        &addr,
        "--duration",
        "1s",
        "--scenario",
        "light",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("exited before listening") && stderr.contains(&addr),
        "{stderr}"
    );
}
