//! HTTP routes on the feed's port: the WebSocket upgrade at `/ws`, the
//! dashboard at `/`, and the JSON endpoints `/health`, `/stats`, `/channels`
//! (each also answers `HEAD`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use super::limits::Refusal;
use super::{ServerContext, connection};
use crate::protocol::Format;

type Body = Full<Bytes>;

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

/// The answer to `HEAD`: the `GET` answer's status and headers, with its
/// length but without its body.
fn without_body(resp: Response<Body>) -> Response<Body> {
    use hyper::body::Body as _;
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Full::new(Bytes::new()))
}

/// 405, saying which methods the route takes.
fn method_not_allowed(path: &str) -> Response<Body> {
    let allow = if path.starts_with("/publish") {
        "POST"
    } else {
        "GET, HEAD"
    };
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        serde_json::json!({"error": "method not allowed", "allow": allow}),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Routes one HTTP request. `HEAD` of a `GET` route answers as `GET` would,
/// without the body.
pub(crate) async fn route(
    mut req: Request<Incoming>,
    ctx: Arc<ServerContext>,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let head = req.method() == Method::HEAD;
    if head {
        *req.method_mut() = Method::GET;
    }
    let resp = route_method(req, ctx, peer, head).await;
    Ok(if head { without_body(resp) } else { resp })
}

async fn route_method(
    req: Request<Incoming>,
    ctx: Arc<ServerContext>,
    peer: std::net::SocketAddr,
    head: bool,
) -> Response<Body> {
    let path = req.uri().path();
    if req.method() == Method::POST && (path == "/publish" || path == "/publish/batch") {
        let batch = path == "/publish/batch";
        return super::publish::handle(req, &ctx, batch).await;
    }
    if req.method() == Method::GET
        && let Some(asset) = super::assets::find(path)
    {
        return respond(StatusCode::OK, asset.content_type, asset.body);
    }
    match (req.method(), path) {
        // a HEAD never upgrades
        (&Method::GET, "/ws") if head => upgrade_required(),
        (&Method::GET, "/ws") => upgrade(req, ctx, peer),
        (&Method::GET, "/health") => health(&ctx),
        (&Method::GET, "/stats") => stats(&ctx),
        (&Method::GET, "/channels") => channels(&ctx),
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            crate::metrics::render_prometheus(crate::metrics::exposition::Exposition {
                metrics: ctx.metrics.clone(),
                sources: ctx.sources.iter().map(|s| s.to_json()).collect(),
                source_states: crate::sources::SourceState::NAMES,
                analytics_dropped: ctx.analytics.as_ref().map_or(0, |a| a.tap.dropped()),
                limits: limits_for_metrics(&ctx),
                cluster: ctx.cluster.get().map(|node| node.stats_json()),
            }),
        ),
        (
            _,
            "/ws" | "/" | "/health" | "/stats" | "/channels" | "/metrics" | "/publish"
            | "/publish/batch",
        ) => method_not_allowed(path),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found", "path": path}),
        ),
    }
}

fn upgrade_required() -> Response<Body> {
    json(
        StatusCode::UPGRADE_REQUIRED,
        serde_json::json!({"error": "this endpoint speaks WebSocket only"}),
    )
}

fn health(ctx: &ServerContext) -> Response<Body> {
    let draining = ctx.draining.load(Ordering::Acquire);
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::json!({
        "status": if draining { "draining" } else { "ok" },
        "epoch": &**ctx.hub.epoch(),
        "uptime_secs": ctx.metrics.uptime_secs(),
        "connections": ctx.metrics.connections.load(Ordering::Relaxed),
        "sources": sources_json(ctx),
    });
    // the NATS link: a node without it still serves what it has, so the
    // status stays 200 and the link is shown beside it
    if let Some(node) = ctx.cluster.get() {
        body["cluster"] = node.health().into();
    }
    json(status, body)
}

fn sources_json(ctx: &ServerContext) -> serde_json::Value {
    ctx.sources.iter().map(|s| s.to_json()).collect()
}

fn stats(ctx: &ServerContext) -> Response<Body> {
    let mut body = ctx.metrics.to_json();
    let per_channel: serde_json::Map<String, serde_json::Value> = ctx
        .hub
        .registry()
        .all()
        .iter()
        .map(|c| (c.name.to_string(), c.subscriber_count().into()))
        .collect();
    body["subscriptions_per_channel"] = per_channel.into();
    body["channels"] = ctx.hub.registry().live().into();
    body["channels_retired"] = ctx.channels_retired.load(Ordering::Relaxed).into();
    body["sources"] = sources_json(ctx);
    body["analytics_dropped"] = ctx.analytics.as_ref().map_or(0, |a| a.tap.dropped()).into();
    body["pattern_watchers"] = ctx.hub.registry().watcher_count().into();
    body["slow_consumer_limits"] = slow_consumer_json(ctx);
    body["tasks"] = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
        .into();
    body["epoch"] = ctx.hub.epoch().to_string().into();
    body["limits"] = limits_json(ctx);
    if let Some(node) = ctx.cluster.get() {
        body["cluster"] = node.stats_json();
    }
    json(StatusCode::OK, body)
}

/// The slow-consumer policy and its bounds, for `/stats`.
fn slow_consumer_json(ctx: &ServerContext) -> serde_json::Value {
    let cfg = &ctx.config;
    serde_json::json!({
        "policy": format!("{:?}", cfg.slow_consumer).to_lowercase(),
        "max_lag_age_ms": cfg.max_lag_age.as_millis() as u64,
        "max_lag_messages": cfg.max_lag_messages,
        "max_lag_bytes": cfg.max_lag_bytes,
        "socket_send_buffer": cfg.socket_send_buffer,
        "socket_unsent_limit": cfg.socket_unsent_limit,
        "write_timeout_ms": cfg.write_timeout.as_millis() as u64,
    })
}

/// Every numeric limit of `/stats` (`limits` and `slow_consumer_limits`),
/// for the `tickwire_limit` gauges of `/metrics`. `scans_waiting` is a
/// level, not a limit, and is left out.
fn limits_for_metrics(ctx: &ServerContext) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    crate::metrics::exposition::numeric_leaves("", &limits_json(ctx), &mut out);
    crate::metrics::exposition::numeric_leaves("", &slow_consumer_json(ctx), &mut out);
    // max_lag_* appear in both objects: one series each
    let mut seen = std::collections::HashSet::new();
    out.retain(|(name, _)| name != "scans_waiting" && seen.insert(name.clone()));
    out
}

/// The limits in force (README "Limits"), and the scan queue now.
fn limits_json(ctx: &ServerContext) -> serde_json::Value {
    use super::limits::{ANSWER_BYTES_PER_UNIT, CHANNELS_PER_UNIT, NAMES_PER_UNIT};
    let cfg = &ctx.config;
    serde_json::json!({
        "max_connections": cfg.max_connections,
        "max_connections_per_ip": cfg.max_connections_per_ip,
        "max_subscriptions": cfg.max_subscriptions,
        "max_names_per_request": cfg.max_names_per_request,
        "max_requests_per_second": cfg.max_requests_per_second,
        "request_cost": {
            "names_per_unit": NAMES_PER_UNIT,
            "channels_examined_per_unit": CHANNELS_PER_UNIT,
            "answer_bytes_per_unit": ANSWER_BYTES_PER_UNIT,
        },
        "max_inbound_frame_bytes": crate::protocol::MAX_INBOUND_FRAME_BYTES,
        "max_lag_messages": cfg.max_lag_messages,
        "max_lag_bytes": cfg.max_lag_bytes,
        "max_queued_answer_bytes": super::session::MAX_QUEUED_ANSWER_FLOOR.max(cfg.max_lag_bytes),
        "max_concurrent_scans": cfg.max_concurrent_scans,
        "max_queued_scans": super::session::MAX_QUEUED_SCANS,
        "min_scan_slot_ms": crate::analytics::scanner::MIN_SCAN_SLOT.as_millis() as u64,
        "scans_waiting": ctx.scans_waiting.load(Ordering::Relaxed),
        "publish_max_body_bytes": super::publish::MAX_BODY_BYTES,
        "request_deadline_ms": cfg.handshake_timeout.as_millis() as u64,
    })
}

fn channels(ctx: &ServerContext) -> Response<Body> {
    let list: Vec<_> = ctx
        .hub
        .registry()
        .all()
        .iter()
        .map(|c| {
            serde_json::json!({
                "channel": &*c.name,
                "kind": c.kind.as_str(),
                "seq": c.seq(),
                "subscribers": c.subscriber_count(),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "epoch": &**ctx.hub.epoch(), "channels": list }),
    )
}

/// The first value of query parameter `name`, decoded
/// (`application/x-www-form-urlencoded`: `%XX` escapes and `+`).
fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A token from `Authorization: Bearer` or the `token` query parameter.
fn bearer_token(req: &Request<Incoming>) -> Option<String> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    header.or_else(|| query_param(req, "token"))
}

/// The format a handshake asks for: the first supported subprotocol offered
/// (which is then echoed), else `?format=`, else proto.
fn negotiate(req: &Request<Incoming>) -> Result<(Format, Option<&'static str>), String> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(Format::from_subprotocol);
    if let Some(format) = offered {
        return Ok((format, Some(format.subprotocol())));
    }
    match query_param(req, "format") {
        Some(value) => Format::from_query(&value)
            .map(|f| (f, None))
            .ok_or_else(|| format!("unknown format `{value}`: use proto or json")),
        None => Ok((Format::Proto, None)),
    }
}

fn upgrade(
    mut req: Request<Incoming>,
    ctx: Arc<ServerContext>,
    peer: std::net::SocketAddr,
) -> Response<Body> {
    if ctx.draining.load(Ordering::Acquire) {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "server is shutting down"}),
        );
    }
    if let Err(e) = super::handshake::check(&req) {
        let mut resp = json(e.status(), serde_json::json!({ "error": e.to_string() }));
        if e.status() == StatusCode::UPGRADE_REQUIRED {
            resp.headers_mut()
                .insert("sec-websocket-version", super::handshake::SUPPORTED_VERSION);
        }
        return resp;
    }
    let (format, subprotocol) = match negotiate(&req) {
        Ok(v) => v,
        Err(e) => return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": e })),
    };
    let cfg = &ctx.config;
    if let Some(origin) = req.headers().get(hyper::header::ORIGIN)
        && !cfg.allowed_origins.is_empty()
        && !cfg
            .allowed_origins
            .iter()
            .any(|o| origin.as_bytes() == o.as_bytes())
    {
        return json(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "origin not allowed", "origin": String::from_utf8_lossy(origin.as_bytes())}),
        );
    }
    let ticket = match ctx.admission.admit(
        peer.ip(),
        cfg.max_connections,
        cfg.max_connections_per_ip,
    ) {
        Ok(ticket) => ticket,
        Err(Refusal::ServerFull) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "connection limit reached", "max_connections": cfg.max_connections}),
            );
        }
        Err(Refusal::AddressFull) => {
            return json(
                StatusCode::TOO_MANY_REQUESTS,
                serde_json::json!({"error": "too many connections from this address", "max_connections_per_ip": cfg.max_connections_per_ip}),
            );
        }
    };
    let (response, fut) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(v) => v,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": e.to_string() }),
            );
        }
    };
    let token = bearer_token(&req);
    let conn_id = ctx.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let task_ctx = ctx.clone();
    ctx.tracker.spawn(async move {
        // the connection's place is held until this task ends
        let _ticket = ticket;
        let ws = match fut.await {
            Ok(ws) => ws,
            Err(e) => {
                debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let upgraded = ws.into_inner().into_inner();
        // Take the TCP stream back out of hyper so reads and writes get
        // separate owned halves (no lock shared between them).
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let (read, write) = parts.io.into_inner().into_split();
                // Copy what hyper read past the request head (normally
                // nothing) and drop hyper's buffer now: `parts` would
                // otherwise live, with its 8 KiB read buffer, as long as the
                // connection.
                let early = Bytes::copy_from_slice(&parts.read_buf);
                drop(parts.read_buf);
                let read = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(early), read);
                connection::serve(read, write, format, task_ctx, conn_id, token).await;
            }
            Err(upgraded) => {
                let (read, write) = tokio::io::split(TokioIo::new(upgraded));
                connection::serve(read, write, format, task_ctx, conn_id, token).await;
            }
        }
    });
    let mut response = response.map(|_| Full::new(Bytes::new()));
    if let Some(p) = subprotocol {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(p));
    }
    response
}
