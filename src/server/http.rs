//! HTTP routes on the feed's port: the WebSocket upgrade at `/ws`, the
//! dashboard at `/`, and the JSON endpoints `/health`, `/stats`, `/channels`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
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

/// Routes one HTTP request.
pub(crate) async fn route(
    req: Request<Incoming>,
    ctx: Arc<ServerContext>,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if req.method() == Method::POST && (path == "/publish" || path == "/publish/batch") {
        let batch = path == "/publish/batch";
        return Ok(super::publish::handle(req, &ctx, batch).await);
    }
    if req.method() == Method::GET
        && let Some(asset) = super::assets::find(path)
    {
        return Ok(respond(StatusCode::OK, asset.content_type, asset.body));
    }
    Ok(match (req.method(), path) {
        (&Method::GET, "/ws") => upgrade(req, ctx, peer),
        (&Method::GET, "/health") => health(&ctx),
        (&Method::GET, "/stats") => stats(&ctx),
        (&Method::GET, "/channels") => channels(&ctx),
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            crate::metrics::render_prometheus(crate::metrics::exposition::Exposition {
                metrics: ctx.metrics.clone(),
                sources: ctx.sources.clone(),
                analytics_dropped: ctx.analytics.as_ref().map_or(0, |a| a.tap.dropped()),
            }),
        ),
        (
            _,
            "/ws" | "/" | "/health" | "/stats" | "/channels" | "/metrics" | "/publish"
            | "/publish/batch",
        ) => json(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "method not allowed"}),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found", "path": path}),
        ),
    })
}

fn health(ctx: &ServerContext) -> Response<Body> {
    let draining = ctx.draining.load(Ordering::Acquire);
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json(
        status,
        serde_json::json!({
            "status": if draining { "draining" } else { "ok" },
            "epoch": &**ctx.hub.epoch(),
            "uptime_secs": ctx.metrics.uptime_secs(),
            "connections": ctx.metrics.connections.load(Ordering::Relaxed),
            "sources": sources_json(ctx),
        }),
    )
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
    body["channels"] = ctx.hub.registry().count().into();
    body["sources"] = sources_json(ctx);
    body["analytics_dropped"] = ctx.analytics.as_ref().map_or(0, |a| a.tap.dropped()).into();
    body["pattern_watchers"] = ctx.hub.registry().watcher_count().into();
    body["tasks"] = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
        .into();
    body["epoch"] = ctx.hub.epoch().to_string().into();
    json(StatusCode::OK, body)
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

/// A token from `Authorization: Bearer` or the `token` query parameter.
fn bearer_token(req: &Request<Incoming>) -> Option<String> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    header.or_else(|| {
        req.uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(percent_decode)
    })
}

/// Decodes `%XX` escapes (JWTs are URL-safe, but clients may escape anyway).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    let query = req.uri().query().unwrap_or_default();
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("format=") {
            return Format::from_query(value)
                .map(|f| (f, None))
                .ok_or_else(|| format!("unknown format `{value}`: use proto or json"));
        }
    }
    Ok((Format::Proto, None))
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
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return json(
            StatusCode::UPGRADE_REQUIRED,
            serde_json::json!({"error": "this endpoint speaks WebSocket only"}),
        );
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
