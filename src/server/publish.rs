//! `POST /publish` and `POST /publish/batch`: application events pushed
//! over HTTP into the hub, beside the market sources.
//!
//! Bodies: one `Event` in proto3 JSON (`{"channel": "...", "custom":
//! {"json": "..."}}`, or any other payload), or a protobuf `Event` with
//! `Content-Type: application/x-protobuf`. A batch is a JSON array (or
//! `{"events": [...]}`), or length-delimited protobuf `Event`s. The hub
//! assigns seqs; `seq` and `publish_time_ns` in the body are ignored, and
//! a missing `source_time_ns` is the time of arrival.
//!
//! A batch is checked whole before anything is published: one bad event
//! gets the batch a 400 naming it, and nothing of it is published. The
//! check is linear in the batch, and parsing, checking and publishing run
//! on a blocking thread (`spawn_blocking`), never on the I/O workers that
//! serve the WebSocket clients. The body must arrive within
//! `--handshake-timeout` (408 otherwise), so a client trickling bytes
//! cannot hold a request open.
//!
//! Payloads must fit the channel's stream: a `trade.` channel takes only
//! `trade` (with a quantity above 0), `ticker.` only `ticker`, `book.` only
//! book snapshots and updates, `candle*.` only `candle`, and so on; other
//! streams (custom) take any payload. Unknown JSON fields are ignored.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use prost::Message as _;

use super::ServerContext;
use crate::feed::PublishError;
use crate::protocol::pb::Event;
use crate::protocol::pb::event::Payload;
use crate::protocol::{ChannelKind, now_ns, validate_channel};

/// Largest body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 1 << 20;

type Body = Full<Bytes>;

fn reply(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    reply(status, serde_json::json!({ "error": message.into() }))
}

/// Compares without an early exit, so timing does not reveal the key.
fn same_key(given: &[u8], key: &[u8]) -> bool {
    given.len() == key.len() && given.iter().zip(key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn presented_key(req: &Request<Incoming>) -> Option<&[u8]> {
    let headers = req.headers();
    if let Some(v) = headers.get(hyper::header::AUTHORIZATION) {
        return v.as_bytes().strip_prefix(b"Bearer ");
    }
    headers.get("x-api-key").map(|v| v.as_bytes())
}

/// Handles `POST /publish` (`batch` false) and `POST /publish/batch`.
pub(crate) async fn handle(
    req: Request<Incoming>,
    ctx: &Arc<ServerContext>,
    batch: bool,
) -> Response<Body> {
    let Some(key) = &ctx.config.publish_key else {
        return error(
            StatusCode::NOT_FOUND,
            "the publish API is off (start the server with --publish-key)",
        );
    };
    match presented_key(&req) {
        Some(given) if same_key(given, key.as_bytes()) => {}
        Some(_) => return error(StatusCode::UNAUTHORIZED, "wrong publish key"),
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing publish key: send `Authorization: Bearer KEY` or `X-Api-Key: KEY`",
            );
        }
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let protobuf = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-protobuf") || v.starts_with("application/protobuf")
        });
    let deadline = ctx.config.handshake_timeout;
    let collected = tokio::time::timeout(
        deadline,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await;
    let Ok(collected) = collected else {
        return error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} (--handshake-timeout)",
                humantime::format_duration(deadline)
            ),
        );
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return too_large();
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
    };
    // a cluster edge assigns no seq: the ingest does, and answers
    if let Some(node) = ctx.cluster.get()
        && node.edge().is_some()
    {
        return forward(node.link(), body, protobuf, batch).await;
    }
    run_publish(ctx, body, protobuf, batch).await
}

/// Parses, checks and publishes on a blocking thread.
async fn run_publish(
    ctx: &Arc<ServerContext>,
    body: Bytes,
    protobuf: bool,
    batch: bool,
) -> Response<Body> {
    let ctx = ctx.clone();
    match tokio::task::spawn_blocking(move || parse_check_publish(&ctx, &body, protobuf, batch))
        .await
    {
        Ok(resp) => resp,
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("publishing failed: {e}"),
        ),
    }
}

/// Parses, checks and publishes a body (on a blocking thread: a 1 MiB
/// batch is tens of thousands of events).
fn parse_check_publish(
    ctx: &ServerContext,
    body: &Bytes,
    protobuf: bool,
    batch: bool,
) -> Response<Body> {
    let events = match parse(body, protobuf, batch) {
        Ok(events) => events,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Err((index, message)) = check(&events, ctx) {
        let mut body = serde_json::json!({ "error": message });
        if batch {
            body["index"] = index.into();
        }
        return reply(StatusCode::BAD_REQUEST, body);
    }
    let mut results = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        match publish(ctx, event) {
            Ok(v) => results.push(v),
            Err(message) => {
                // Checked above, so only a race (say, a book channel's first
                // update published by another client first) ends here; say
                // exactly what was published.
                return reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": message, "index": index, "published": results }),
                );
            }
        }
    }
    if batch {
        reply(StatusCode::OK, serde_json::json!({ "results": results }))
    } else {
        reply(StatusCode::OK, results.pop().unwrap_or_default())
    }
}

/// Reads a publish body: one event or a batch, protobuf (length-delimited
/// in a batch) or proto3 JSON (an array or `{"events": [...]}`). Outside
/// input: also the `publish_body` fuzz target's entry (see `crate::fuzz`).
pub(crate) fn parse(body: &Bytes, protobuf: bool, batch: bool) -> Result<Vec<Event>, String> {
    if protobuf {
        if !batch {
            return Event::decode(&body[..])
                .map(|e| vec![e])
                .map_err(|e| format!("body is not a protobuf Event: {e}"));
        }
        let mut buf = &body[..];
        let mut events = Vec::new();
        let bad = |index: usize, e: &dyn std::fmt::Display| {
            format!("event {index} is not a length-delimited protobuf Event: {e}")
        };
        while let Some(frame) = tickwire_proto::framing::next_frame(&mut buf, body.len())
            .map_err(|e| bad(events.len(), &e))?
        {
            events.push(Event::decode(frame).map_err(|e| bad(events.len(), &e))?);
        }
        return Ok(events);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let items = if !batch {
        vec![value]
    } else {
        match value {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Object(mut map) => match map.remove("events") {
                Some(serde_json::Value::Array(items)) => items,
                _ => return Err("a batch is a JSON array of events or {\"events\": [...]}".into()),
            },
            _ => return Err("a batch is a JSON array of events or {\"events\": [...]}".into()),
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<Event>(item).map_err(|e| {
                if batch {
                    format!("event {i} is not an Event in proto3 JSON: {e}")
                } else {
                    format!("body is not an Event in proto3 JSON: {e}")
                }
            })
        })
        .collect()
}

/// Whether a channel of `kind` may carry `payload`.
fn fits(kind: ChannelKind, payload: &Payload) -> bool {
    match kind {
        ChannelKind::Book => matches!(payload, Payload::BookSnapshot(_) | Payload::BookUpdate(_)),
        ChannelKind::Trade => matches!(payload, Payload::Trade(_)),
        ChannelKind::Ticker => matches!(payload, Payload::Ticker(_)),
        ChannelKind::Candle => matches!(payload, Payload::Candle(_)),
        ChannelKind::Signal => matches!(payload, Payload::Signal(_)),
        ChannelKind::Sentiment => matches!(payload, Payload::Sentiment(_)),
        ChannelKind::Scan => matches!(
            payload,
            Payload::ScanStarted(_)
                | Payload::ScanResult(_)
                | Payload::SymbolAnalyzed(_)
                | Payload::ScanProgress(_)
                | Payload::ScanDone(_)
                | Payload::ScanError(_)
        ),
        // the book stream's state needs book channels
        ChannelKind::Custom => {
            !matches!(payload, Payload::BookSnapshot(_) | Payload::BookUpdate(_))
        }
    }
}

/// Everything that can be checked before publishing: channel names,
/// payload presence, payload kind against the channel's stream, a trade's
/// quantity, and that a book update has a book. Linear in the batch.
fn check(events: &[Event], ctx: &ServerContext) -> Result<(), (usize, String)> {
    // book channels that get a snapshot earlier in this batch
    let mut snapshotted: HashSet<&str> = HashSet::new();
    for (i, event) in events.iter().enumerate() {
        validate_channel(&event.channel).map_err(|e| (i, format!("invalid channel: {e}")))?;
        let Some(payload) = &event.payload else {
            return Err((i, PublishError::NoPayload.to_string()));
        };
        let kind = ChannelKind::of(&event.channel);
        if !fits(kind, payload) {
            return Err((
                i,
                format!(
                    "channel {} is a {} channel and cannot carry a {} payload",
                    event.channel,
                    kind.as_str(),
                    crate::feed::payload_name(payload)
                ),
            ));
        }
        if let Payload::Trade(t) = payload
            && !(t.quantity.is_finite() && t.quantity > 0.0 && t.price.is_finite())
        {
            return Err((
                i,
                format!(
                    "a trade needs a finite `price` and a `quantity` above 0 (got price {}, \
                     quantity {}; is the field spelt `quantity`?)",
                    t.price, t.quantity
                ),
            ));
        }
        if matches!(payload, Payload::BookSnapshot(_)) {
            snapshotted.insert(&event.channel);
        }
        if matches!(payload, Payload::BookUpdate(_)) {
            let earlier_snapshot = snapshotted.contains(event.channel.as_str());
            let has_book = earlier_snapshot
                || ctx
                    .hub
                    .registry()
                    .get(&event.channel)
                    .is_some_and(|c| c.has_book());
            if !has_book {
                return Err((
                    i,
                    PublishError::UpdateBeforeSnapshot(event.channel.clone()).to_string(),
                ));
            }
        }
    }
    Ok(())
}

fn publish(ctx: &ServerContext, event: Event) -> Result<serde_json::Value, String> {
    let channel = ctx.hub.channel(&event.channel).map_err(|e| e.to_string())?;
    let payload = event
        .payload
        .ok_or_else(|| PublishError::NoPayload.to_string())?;
    let time = if event.source_time_ns > 0 {
        event.source_time_ns
    } else {
        now_ns()
    };
    let seq = ctx
        .hub
        .publish(&channel, time, payload)
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "channel": &*channel.name, "seq": seq }))
}

/// The NATS subject an edge sends `POST /publish` bodies to; the ingest
/// answers with the status and body a single node would have.
pub const FORWARD_SUBJECT: &str = "tw.publish";
/// How long an edge waits for the ingest's answer (503 after).
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends a publish (already authenticated here) to the ingest.
async fn forward(
    link: &crate::cluster::Link,
    body: Bytes,
    protobuf: bool,
    batch: bool,
) -> Response<Body> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("tw-protobuf", if protobuf { "1" } else { "0" });
    headers.insert("tw-batch", if batch { "1" } else { "0" });
    let request = link
        .client()
        .request_with_headers(FORWARD_SUBJECT, headers, body);
    let answer = match tokio::time::timeout(FORWARD_TIMEOUT, request).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no ingest took the publish: {e}"),
            );
        }
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no ingest answered the publish within 5 s",
            );
        }
    };
    let status = answer
        .headers
        .as_ref()
        .and_then(|h| h.get("tw-status"))
        .and_then(|v| v.as_str().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = Response::new(Full::new(answer.payload));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// On an ingest: answers the publishes edges forward, until shutdown.
pub(crate) async fn serve_forwarded(ctx: Arc<ServerContext>, link: crate::cluster::Link) {
    use futures_util::StreamExt;
    let client = link.client().clone();
    let mut requests = match client.subscribe(FORWARD_SUBJECT).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot take forwarded publishes");
            return;
        }
    };
    loop {
        let request = tokio::select! {
            r = requests.next() => r,
            _ = ctx.shutdown.cancelled() => None,
        };
        let Some(request) = request else { break };
        let Some(reply_to) = request.reply.clone() else {
            continue;
        };
        let flag = |name: &str| {
            request
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .is_some_and(|v| v.as_str() == "1")
        };
        let (protobuf, batch) = (flag("tw-protobuf"), flag("tw-batch"));
        let resp = run_publish(&ctx, request.payload.clone(), protobuf, batch).await;
        let status = resp.status().as_u16().to_string();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("tw-status", status.as_str());
        let _ = client.publish_with_headers(reply_to, headers, body).await;
    }
}
