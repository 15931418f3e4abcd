//! An Autobahn-style case list of tickwire's own, over real sockets: close
//! codes, fragmentation and control frames, each case a row of a table
//! (what the client sends, what the server must answer); the opening
//! handshake's table is in `tests/handshake.rs`.
//! Plus the floods these rules bound: WebSocket pings and empty
//! continuation frames, with a healthy client's longest silence measured
//! while they run.

mod support;

use std::time::{Duration, Instant};

use prost::Message as _;
use support::hostile::{baseline_rss, memory_server, rss_back_to};
use support::{Client, Fmt, Server, WAIT, raw_connect, raw_frame};
use tickwire::protocol::pb::{self, ServerMessage, client_message, server_message::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One server frame: opcode and payload (server frames are never masked).
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    op: u8,
    payload: Vec<u8>,
}

impl Frame {
    /// The code of a close frame (None for an empty close payload).
    fn close_code(&self) -> Option<u16> {
        assert_eq!(self.op, 0x8, "not a close frame: {self:?}");
        self.payload
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Reads one frame, or `None` at EOF or reset.
async fn read_frame(s: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.ok()?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        op: head[0] & 0x0f,
        payload,
    })
}

/// Every frame the server sends after the welcome, up to and including its
/// close frame (or until the socket ends).
async fn frames_until_close(s: &mut TcpStream) -> Vec<Frame> {
    let mut out = Vec::new();
    support::guarded("the server to close or end the socket", async {
        loop {
            match read_frame(s).await {
                None => return,
                Some(f) if f.op == 0x8 => {
                    out.push(f);
                    return;
                }
                Some(f) => out.push(f),
            }
        }
    })
    .await;
    out
}

/// A raw connection (proto mode) whose welcome has been read.
async fn connected(server: &Server) -> TcpStream {
    let mut s = raw_connect(server, "").await;
    let welcome = read_frame(&mut s).await.expect("welcome");
    let msg = ServerMessage::decode(&welcome.payload[..]).expect("welcome decodes");
    assert!(matches!(msg.kind, Some(Kind::Welcome(_))));
    s
}

/// A proto `ping` request, encoded.
fn ping_request(request_id: u64) -> Vec<u8> {
    pb::ClientMessage {
        kind: Some(client_message::Kind::Ping(pb::Ping { request_id })),
    }
    .encode_to_vec()
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// What the server must do with a case's bytes.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Close with exactly this code (echoed or chosen).
    Close(u16),
    /// Answer the data (a `pong` for the ping request inside) and stay open.
    Answer,
    /// Send a WebSocket pong with the ping's payload, then answer the data.
    PongThenAnswer(usize),
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, frames: &[Vec<u8>], expect: Expect) -> Case {
    Case {
        name,
        bytes: frames.concat(),
        expect,
    }
}

/// The frame-level cases (Autobahn sections 1-7 in spirit, on tickwire's
/// terms: a message is a request, answered with a `pong`).
fn frame_cases() -> Vec<Case> {
    let req = ping_request(7);
    let (a, b) = req.split_at(2);
    let close = |code: u16| raw_frame(true, 0x8, &close_payload(code, b""), true);
    let mut cases = vec![
        // ---- close codes (7.x) ----
        case(
            "close, no payload",
            &[raw_frame(true, 0x8, b"", true)],
            Expect::Close(1000),
        ),
        case(
            "close, 1-byte payload",
            &[raw_frame(true, 0x8, b"\x03", true)],
            Expect::Close(1002),
        ),
        case(
            "close 1000 with a UTF-8 reason",
            &[raw_frame(
                true,
                0x8,
                &close_payload(1000, "κόσμε".as_bytes()),
                true,
            )],
            Expect::Close(1000),
        ),
        case(
            "close 1000, 123-byte reason (largest control payload)",
            &[raw_frame(
                true,
                0x8,
                &close_payload(1000, &[b'r'; 123]),
                true,
            )],
            Expect::Close(1000),
        ),
        case(
            "close reason not UTF-8",
            &[raw_frame(
                true,
                0x8,
                &close_payload(1000, &[0xce, 0xba, 0xe1, 0xbd]),
                true,
            )],
            Expect::Close(1007),
        ),
        // ---- fragmentation (5.x) ----
        case(
            "message in two fragments",
            &[
                raw_frame(false, 0x2, a, true),
                raw_frame(true, 0x0, b, true),
            ],
            Expect::Answer,
        ),
        case(
            "ping between fragments",
            &[
                raw_frame(false, 0x2, a, true),
                raw_frame(true, 0x9, b"between", true),
                raw_frame(true, 0x0, b, true),
            ],
            Expect::PongThenAnswer(7),
        ),
        case(
            "message in 64 fragments (empty ones between)",
            &[
                vec![raw_frame(false, 0x2, a, true)],
                vec![raw_frame(false, 0x0, b"", true); 62],
                vec![raw_frame(true, 0x0, b, true)],
            ]
            .concat(),
            Expect::Answer,
        ),
        case(
            "message in 65 fragments",
            &[
                vec![raw_frame(false, 0x2, a, true)],
                vec![raw_frame(false, 0x0, b"", true); 63],
                vec![raw_frame(true, 0x0, b, true)],
            ]
            .concat(),
            Expect::Close(1009),
        ),
        case(
            "continuation with nothing to continue",
            &[raw_frame(true, 0x0, b"x", true)],
            Expect::Close(1002),
        ),
        case(
            "new message inside a fragmented one",
            &[
                raw_frame(false, 0x2, a, true),
                raw_frame(true, 0x2, &req, true),
            ],
            Expect::Close(1002),
        ),
        case(
            "fragments over 64 KiB together",
            &[
                raw_frame(false, 0x2, &[0u8; 40_000], true),
                raw_frame(true, 0x0, &[0u8; 40_000], true),
            ],
            Expect::Close(1009),
        ),
        // ---- control frames (2.x, 3.x, 4.x) ----
        case(
            "ping with 125 bytes, then a request",
            &[
                raw_frame(true, 0x9, &[b'p'; 125], true),
                raw_frame(true, 0x2, &req, true),
            ],
            Expect::PongThenAnswer(125),
        ),
        case(
            "ping with 126 bytes",
            &[raw_frame(true, 0x9, &[b'p'; 126], true)],
            Expect::Close(1002),
        ),
        case(
            "fragmented ping",
            &[raw_frame(false, 0x9, b"x", true)],
            Expect::Close(1002),
        ),
        case(
            "unsolicited pong, then a request",
            &[
                raw_frame(true, 0xA, b"hi", true),
                raw_frame(true, 0x2, &req, true),
            ],
            Expect::Answer,
        ),
        case(
            "reserved bit 1",
            &[vec![0xC2, 0x80, 0, 0, 0, 0]],
            Expect::Close(1002),
        ),
        case(
            "unmasked frame",
            &[raw_frame(true, 0x2, &req, false)],
            Expect::Close(1002),
        ),
    ];
    for op in [0x3u8, 0x7, 0xB, 0xF] {
        cases.push(Case {
            name: "reserved opcode",
            bytes: raw_frame(true, op, b"", true),
            expect: Expect::Close(1002),
        });
    }
    // every code a peer may send is echoed ...
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        cases.push(Case {
            name: "valid close code echoed",
            bytes: close(code),
            expect: Expect::Close(code),
        });
    }
    // ... and every code that must not be on the wire is a protocol error
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        cases.push(Case {
            name: "invalid close code",
            bytes: close(code),
            expect: Expect::Close(1002),
        });
    }
    cases
}

/// Decodes a data frame as a proto server message.
fn server_message(f: &Frame) -> Kind {
    assert_eq!(f.op, 0x2, "expected a binary frame: {f:?}");
    ServerMessage::decode(&f.payload[..])
        .expect("server message decodes")
        .kind
        .expect("kind set")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_table_close_fragmentation_control() {
    let server = Server::start(&["--analytics", "off"]);
    let cases = frame_cases();
    let mut failures = Vec::new();
    for c in &cases {
        let mut s = connected(&server).await;
        s.write_all(&c.bytes).await.unwrap();
        let verdict = match c.expect {
            Expect::Close(code) => {
                let frames = frames_until_close(&mut s).await;
                match frames.last() {
                    Some(f) if f.op == 0x8 => {
                        let got = f.close_code().unwrap_or(1000);
                        (got == code)
                            .then_some(())
                            .ok_or(format!("closed with {got}, want {code}"))
                    }
                    other => Err(format!("no close frame (last: {other:?})")),
                }
            }
            Expect::Answer | Expect::PongThenAnswer(_) => {
                let mut frames = Vec::new();
                while frames.len()
                    < if matches!(c.expect, Expect::Answer) {
                        1
                    } else {
                        2
                    }
                {
                    match tokio::time::timeout(WAIT, read_frame(&mut s)).await {
                        Ok(Some(f)) => frames.push(f),
                        _ => break,
                    }
                }
                let pong_ok = match c.expect {
                    Expect::PongThenAnswer(n) => frames
                        .first()
                        .is_some_and(|f| f.op == 0xA && f.payload.len() == n),
                    _ => true,
                };
                let answered = frames.last().is_some_and(|f| {
                    f.op == 0x2 && matches!(server_message(f), Kind::Pong(p) if p.request_id == 7)
                });
                (pong_ok && answered)
                    .then_some(())
                    .ok_or(format!("got {frames:?}"))
            }
        };
        match verdict {
            Ok(()) => println!("ok    {}", c.name),
            Err(e) => {
                println!("FAIL  {}: {e}", c.name);
                failures.push(format!("{}: {e}", c.name));
            }
        }
    }
    println!("{} cases, {} failed", cases.len(), failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_decided_while_reading_follows_the_replies_of_that_read() {
    let server = Server::start(&["--max-requests-per-second", "5", "--analytics", "off"]);
    let mut s = connected(&server).await;
    // one write: far more requests than the limit tolerates, so the close
    // is decided in the middle of the bytes of one read
    let bytes: Vec<u8> = (1..=40u64)
        .flat_map(|id| raw_frame(true, 0x2, &ping_request(id), true))
        .collect();
    s.write_all(&bytes).await.unwrap();
    let frames = frames_until_close(&mut s).await;
    let (close, replies) = frames.split_last().expect("frames");
    assert_eq!(close.close_code(), Some(4029), "{close:?}");
    let ids: Vec<u64> = replies
        .iter()
        .map(|f| match server_message(f) {
            Kind::Pong(p) => p.request_id,
            Kind::Error(e) => {
                assert_eq!(e.code, pb::ErrorCode::RateLimited as i32);
                e.request_id
            }
            other => panic!("{other:?}"),
        })
        .collect();
    println!("replies before 4029: {ids:?}");
    // every request before the one that closed was answered, in order
    assert!(ids.len() > 5, "the refusals came before the close: {ids:?}");
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
}

/// A healthy subscriber's longest silence while `attack` runs (printed by
/// the callers; their assertion is only a hang guard).
async fn longest_silence_during<F: Future<Output = ()>>(server: &Server, attack: F) -> Duration {
    let mut healthy = Client::connect(server, Fmt::Proto).await;
    healthy.welcome().await;
    healthy.subscribe(&["trade.sim.*"]).await;
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    tokio::pin!(attack);
    loop {
        tokio::select! {
            _ = &mut attack => break,
            _ = healthy.next() => {
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
        }
    }
    longest.max(last.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_is_rate_limited_and_closed() {
    let server = memory_server(&["--sim-rate", "500", "--analytics", "off"]);
    let baseline = baseline_rss(&server).await;
    let attack = async {
        let mut closes = Vec::new();
        let mut pongs_total = 0;
        // two attackers, three rounds each: 5000 pings in one write
        for _ in 0..3 {
            for _ in 0..2 {
                let mut s = connected(&server).await;
                let flood = raw_frame(true, 0x9, b"", true).repeat(5000);
                let _ = s.write_all(&flood).await;
                let frames = frames_until_close(&mut s).await;
                pongs_total += frames.iter().filter(|f| f.op == 0xA).count();
                closes.push(
                    frames
                        .last()
                        .and_then(|f| (f.op == 0x8).then(|| f.close_code()))
                        .flatten(),
                );
            }
        }
        println!("ping flood: {pongs_total} pongs for 30000 pings; closes {closes:?}");
        assert!(closes.iter().all(|c| *c == Some(4029)), "{closes:?}");
        assert!(
            pongs_total < 6 * 200,
            "pings are limited like requests: {pongs_total}"
        );
    };
    let silence = longest_silence_during(&server, attack).await;
    println!("healthy client's longest silence during the ping flood: {silence:?}");
    assert!(silence < Duration::from_secs(10), "hang guard");
    rss_back_to(&server, baseline, "ping flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_continuation_flood_is_cut_off() {
    let server = memory_server(&["--sim-rate", "500", "--analytics", "off"]);
    let baseline = baseline_rss(&server).await;
    let attack = async {
        let mut s = connected(&server).await;
        s.write_all(&raw_frame(false, 0x2, b"", true))
            .await
            .unwrap();
        let chunk = raw_frame(false, 0x0, b"", true).repeat(10_000);
        // keep sending until the server closes: it must, after 64 fragments
        let (mut rd, mut wr) = s.into_split();
        let sender = tokio::spawn(async move {
            let mut sent = 0u64;
            while sent < 10_000_000 && wr.write_all(&chunk).await.is_ok() {
                sent += 10_000;
            }
        });
        let code = support::guarded("a close while 10 M empty continuations are sent", async {
            loop {
                let mut head = [0u8; 2];
                if rd.read_exact(&mut head).await.is_err() {
                    return None;
                }
                let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
                if rd.read_exact(&mut payload).await.is_err() {
                    return None;
                }
                if head[0] & 0x0f == 0x8 {
                    return Some(u16::from_be_bytes([payload[0], payload[1]]));
                }
            }
        })
        .await;
        sender.abort();
        println!("empty continuations: closed with {code:?}");
        assert_eq!(code, Some(1009));
    };
    let silence = longest_silence_during(&server, attack).await;
    println!("healthy client's longest silence during the continuation flood: {silence:?}");
    assert!(silence < Duration::from_secs(10), "hang guard");
    rss_back_to(&server, baseline, "empty continuation flood").await;
}
