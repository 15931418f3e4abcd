//! `POST /publish` and `POST /publish/batch`: every status code, and
//! published events reaching WebSocket subscribers in both formats.

mod support;

use prost::Message as _;
use support::{Client, Fmt, Server};
use tickwire::protocol::pb::{Custom, Event, custom, event::Payload, server_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "s3cret-publish-key";

/// A raw HTTP/1.1 POST: (status, body as JSON or Null).
async fn post(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    // a server may answer (413) before reading all of a large body
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {KEY}"))
}

async fn publish_json(server: &Server, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (k, v) = bearer();
    post(server, path, &[(k, &v)], body.as_bytes()).await
}

async fn channel_seq(server: &Server, name: &str) -> Option<u64> {
    let (_, list) = server.get_json("/channels").await;
    list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == name)
        .map(|c| c["seq"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_answers_each_status_code_and_a_bad_batch_publishes_nothing() {
    // without --publish-key the endpoint does not exist
    let off = Server::start(&["--sim-rate", "0"]);
    let body = br#"{"channel":"news.app.all","custom":{"json":"{}"}}"#;
    assert_eq!(post(&off, "/publish", &[], body).await.0, 404);

    let server = Server::start(&["--sim-rate", "0", "--publish-key", KEY]);
    let (status, reply) = post(&server, "/publish", &[], body).await;
    assert_eq!(status, 401, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("Authorization"));
    let wrong = post(
        &server,
        "/publish",
        &[("Authorization", "Bearer nope")],
        body,
    )
    .await;
    assert_eq!(wrong.0, 401);
    let short = post(&server, "/publish", &[("X-Api-Key", "s3cret")], body).await;
    assert_eq!(short.0, 401, "a prefix of the key is not the key");

    // 200 with the seq, by either header; the channel is created on first publish
    let (status, reply) = post(&server, "/publish", &[("X-Api-Key", KEY)], body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        serde_json::json!({"channel": "news.app.all", "seq": 1})
    );
    let (status, reply) =
        publish_json(&server, "/publish", std::str::from_utf8(body).unwrap()).await;
    assert_eq!((status, reply["seq"].as_u64()), (200, Some(2)));

    // 400s, each with a reason, none of them publishing anything
    let cases = [
        ("{not json", "not JSON"),
        (
            r#"{"channel":"news..all","custom":{"json":"1"}}"#,
            "invalid channel",
        ),
        (r#"{"channel":"news.app.all"}"#, "no payload"),
        (
            r#"{"channel":"news.app.all","custom":{"json":1}}"#,
            "proto3 JSON",
        ),
        (
            r#"{"channel":"ticker.app.X","bookSnapshot":{"bids":[{"price":1,"quantity":1}]}}"#,
            "cannot carry",
        ),
        (
            r#"{"channel":"book.app.X","bookUpdate":{"bids":[{"price":1,"quantity":1}]}}"#,
            "book_snapshot before book_update",
        ),
    ];
    for (body, reason) in cases {
        let (status, reply) = publish_json(&server, "/publish", body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        let err = reply["error"].as_str().unwrap_or_default();
        assert!(
            err.contains(reason),
            "{body}: expected `{reason}` in {reply}"
        );
    }
    assert_eq!(channel_seq(&server, "news.app.all").await, Some(2));
    assert_eq!(channel_seq(&server, "book.app.X").await, None);

    // 413 over 1 MiB
    let big = format!(
        r#"{{"channel":"news.app.all","custom":{{"json":"{}"}}}}"#,
        "x".repeat((1 << 20) + 10)
    );
    assert_eq!(publish_json(&server, "/publish", &big).await.0, 413);

    // a batch: all published in order, or (one bad event) none and its index
    let batch = r#"[{"channel":"news.app.all","custom":{"json":"a"}},
                    {"channel":"book.app.X","bookSnapshot":{"bids":[{"price":1,"quantity":2}],"asks":[{"price":2,"quantity":1}]}},
                    {"channel":"book.app.X","bookUpdate":{"bids":[{"price":1,"quantity":3}]}}]"#;
    let (status, reply) = publish_json(&server, "/publish/batch", batch).await;
    assert_eq!(status, 200, "{reply}");
    let seqs: Vec<(String, u64)> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap().to_string(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        [
            ("news.app.all".to_string(), 3),
            ("book.app.X".to_string(), 1),
            ("book.app.X".to_string(), 2)
        ]
    );
    let bad_batch = r#"{"events":[{"channel":"news.app.all","custom":{"json":"b"}},
                                  {"channel":"no dots","custom":{"json":"c"}}]}"#;
    let (status, reply) = publish_json(&server, "/publish/batch", bad_batch).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["index"], 1);
    assert_eq!(
        channel_seq(&server, "news.app.all").await,
        Some(3),
        "the good event of a bad batch was not published"
    );

    // protobuf bodies, single and length-delimited batch
    let event = Event {
        channel: "news.app.all".into(),
        payload: Some(Payload::Custom(Custom {
            body: Some(custom::Body::Data(vec![1, 2, 3])),
        })),
        ..Default::default()
    };
    let (k, v) = bearer();
    let pb = [(k, v.as_str()), ("Content-Type", "application/x-protobuf")];
    let (status, reply) = post(&server, "/publish", &pb, &event.encode_to_vec()).await;
    assert_eq!((status, reply["seq"].as_u64()), (200, Some(4)), "{reply}");
    let mut two = Vec::new();
    event.encode_length_delimited(&mut two).unwrap();
    event.encode_length_delimited(&mut two).unwrap();
    let (status, reply) = post(&server, "/publish/batch", &pb, &two).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][1]["seq"], 6);
    let (status, _) = post(&server, "/publish", &pb, b"\xff\xff\xff").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_event_reaches_proto_and_json_subscribers() {
    let server = Server::start(&["--sim-rate", "0", "--publish-key", KEY]);
    let mut proto = Client::connect(&server, Fmt::Proto).await;
    let mut json = Client::connect(&server, Fmt::Json).await;
    for c in [&mut proto, &mut json] {
        c.welcome().await;
        // the channel does not exist yet: the pattern covers it when it appears
        c.subscribe(&["alerts.app.*"]).await;
    }
    let (status, reply) = publish_json(
        &server,
        "/publish",
        r#"{"channel":"alerts.app.BTC-USDT","sourceTimeNs":"1700000000000000000","custom":{"json":"{\"level\":\"high\"}"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    for c in [&mut proto, &mut json] {
        let e = c
            .until(|k| match k {
                server_message::Kind::Event(e) if e.channel == "alerts.app.BTC-USDT" => {
                    Some(e.clone())
                }
                _ => None,
            })
            .await;
        assert_eq!(e.seq, 1);
        assert_eq!(e.source_time_ns, 1_700_000_000_000_000_000);
        assert!(e.publish_time_ns > 0);
        let Some(Payload::Custom(Custom {
            body: Some(custom::Body::Json(text)),
        })) = &e.payload
        else {
            panic!("{e:?}");
        };
        assert_eq!(text, r#"{"level":"high"}"#);
    }
}
