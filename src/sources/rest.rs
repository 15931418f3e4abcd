//! Polite REST for every venue: one client per venue that reuses its
//! connections (HTTP/1.1 keep-alive, gzip), spends from the venue's request
//! budget before each call, stops every call while the venue said to back
//! off (429 / 418 with `Retry-After`), and tells callers which failures are
//! worth retrying ([`RestError::retry`]).
//!
//! Venue rules it follows (see README, "Sources"):
//! - Binance (Spot API docs, "LIMITS", as of 2025-11-12): weight limit 6000
//!   per minute per IP, reported in `X-MBX-USED-WEIGHT-1M`; a 429 carries
//!   `Retry-After` (seconds); ignoring it leads to 418, an IP ban of 2 min
//!   to 3 days, also with `Retry-After`. Other 4xx are the caller's fault
//!   (e.g. 400 code -1121 "Invalid symbol") and must not be retried.
//! - OKX (API v5 docs, "Rate limit", as of 2026-05): public market data
//!   endpoints allow 40 requests per 2 s per IP; over it, HTTP 429 / code
//!   50011.
//! - Bybit (V5 docs, "Rate Limit", as of 2026-05): 600 HTTP requests per
//!   5 s per IP.
//! - Coinbase (Advanced Trade docs, "Rate Limits", as of 2026-05): public
//!   endpoints 10 requests per second per IP; over it, HTTP 429.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::time::Instant;

use super::net::{self, NetError};

/// Largest REST body accepted (a 5000-level depth snapshot is ~300 KiB).
const MAX_BODY: usize = 16 << 20;
/// Idle connections kept per venue.
const MAX_IDLE: usize = 4;
/// Ban assumed after a 418 without `Retry-After` (Binance: 2 min to 3 days).
const DEFAULT_BAN: Duration = Duration::from_secs(120);
/// Wait assumed after a 429 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A venue's request budget: `limit` units per `window`, optionally kept in
/// step with a response header that reports the units used.
#[derive(Debug, Clone, Copy)]
pub struct BudgetRule {
    pub limit: u32,
    pub window: Duration,
    /// Lower-case header carrying the venue's count of used units.
    pub used_header: Option<&'static str>,
}

impl BudgetRule {
    /// Binance Spot: 6000 weight per minute per IP, `X-MBX-USED-WEIGHT-1M`.
    pub const BINANCE: Self = Self {
        limit: 6000,
        window: Duration::from_secs(60),
        used_header: Some("x-mbx-used-weight-1m"),
    };
    /// OKX public market data: 40 requests per 2 s per IP.
    pub const OKX: Self = Self {
        limit: 40,
        window: Duration::from_secs(2),
        used_header: None,
    };
    /// Bybit v5 HTTP: 600 requests per 5 s per IP.
    pub const BYBIT: Self = Self {
        limit: 600,
        window: Duration::from_secs(5),
        used_header: None,
    };
    /// Coinbase Advanced Trade public endpoints: 10 requests per second per IP.
    pub const COINBASE: Self = Self {
        limit: 10,
        window: Duration::from_secs(1),
        used_header: None,
    };
    /// Kraken public REST: about one call per second per IP (Kraken API
    /// Center, "Spot REST rate limits", as read 2026-12-07).
    pub const KRAKEN: Self = Self {
        limit: 1,
        window: Duration::from_secs(1),
        used_header: None,
    };
    /// Twelve Data: `credits` API credits per minute (the Basic plan has
    /// 8; one credit per symbol of `/price`).
    pub const fn twelvedata(credits: u32) -> Self {
        Self {
            limit: credits,
            window: Duration::from_secs(60),
            used_header: None,
        }
    }
}

#[derive(Debug)]
struct Budget {
    rule: BudgetRule,
    window_start: Instant,
    used: u32,
    /// No request before this (a 429 / 418 said so).
    blocked_until: Option<Instant>,
}

impl Budget {
    /// How long to wait before spending `weight`, spending it when 0.
    fn take(&mut self, weight: u32) -> Duration {
        let now = Instant::now();
        if let Some(until) = self.blocked_until {
            if until > now {
                return until - now;
            }
            self.blocked_until = None;
        }
        if now >= self.window_start + self.rule.window {
            self.window_start = now;
            self.used = 0;
        }
        if self.used + weight > self.rule.limit && self.used > 0 {
            return self.window_start + self.rule.window - now;
        }
        self.used += weight;
        Duration::ZERO
    }
}

/// Why a REST call failed, by what the caller should do about it.
#[derive(Debug, Error)]
pub enum RestError {
    /// 429: the venue asked to wait.
    #[error("rate limited by {venue} (HTTP 429), retry after {retry_after:?}")]
    RateLimited {
        venue: &'static str,
        retry_after: Duration,
    },
    /// 418: the IP is banned for a while.
    #[error("IP banned by {venue} (HTTP 418) for {retry_after:?}")]
    Banned {
        venue: &'static str,
        retry_after: Duration,
    },
    /// Another 4xx: the request is wrong and will stay wrong.
    #[error("{venue} refused the request (HTTP {status}, code {code}): {msg}")]
    Refused {
        venue: &'static str,
        status: u16,
        code: String,
        msg: String,
    },
    /// 5xx or any other status.
    #[error("{venue} answered HTTP {status}")]
    Server { venue: &'static str, status: u16 },
    /// The reply could not be read.
    #[error("{venue}: cannot read the reply: {detail}")]
    Decode { venue: &'static str, detail: String },
    #[error(transparent)]
    Net(#[from] NetError),
}

impl RestError {
    /// The least wait before trying again, or `None` when retrying cannot
    /// help (a 4xx other than 429 / 418).
    pub fn retry(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Banned { retry_after, .. } => {
                Some(*retry_after)
            }
            Self::Refused { .. } => None,
            Self::Server { .. } | Self::Decode { .. } | Self::Net(_) => Some(Duration::ZERO),
        }
    }
}

/// One venue's REST client; shared by its connector's tasks.
#[derive(Debug)]
pub struct RestClient {
    venue: &'static str,
    base: String,
    timeout: Duration,
    budget: Mutex<Budget>,
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
    /// `Authorization` sent with every request (Twelve Data's
    /// `apikey KEY`), kept out of URLs so that no log line carries it.
    auth: Option<hyper::header::HeaderValue>,
}

impl RestClient {
    /// A client for `base` (`https://api.binance.com`).
    pub fn new(venue: &'static str, base: &str, timeout: Duration, rule: BudgetRule) -> Self {
        Self {
            venue,
            base: base.trim_end_matches('/').to_string(),
            timeout,
            budget: Mutex::new(Budget {
                rule,
                window_start: Instant::now(),
                used: 0,
                blocked_until: None,
            }),
            idle: Mutex::new(Vec::new()),
            auth: None,
        }
    }

    /// Sends `Authorization: value` with every request (marked sensitive).
    pub fn with_auth(mut self, value: &str) -> Self {
        self.auth = hyper::header::HeaderValue::from_str(value)
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        self
    }

    /// The venue's REST base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Waits until the budget allows a call of `weight`, and spends it.
    async fn spend(&self, weight: u32) {
        loop {
            let wait = self
                .budget
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(weight);
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn block_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
    }

    async fn sender(&self) -> Result<SendRequest<Empty<Bytes>>, NetError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(s) if s.is_ready() => return Ok(s),
                Some(_) => continue, // closed by the server meanwhile
                None => break,
            }
        }
        let uri = net::parse_url(&self.base)?;
        let io = net::open(&uri, self.timeout).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| NetError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// GETs `path_and_query` (`/api/v3/depth?symbol=X`) costing `weight`
    /// of the budget; the body on 200.
    pub async fn get(&self, path_and_query: &str, weight: u32) -> Result<Bytes, RestError> {
        self.spend(weight).await;
        let work = self.get_once(path_and_query);
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(NetError::Timeout("REST request").into()),
        }
    }

    async fn get_once(&self, path_and_query: &str) -> Result<Bytes, RestError> {
        let mut sender = self.sender().await?;
        let uri = net::parse_url(&self.base)?;
        let host = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let mut req = hyper::Request::get(path_and_query);
        if let Some(auth) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, auth.clone());
        }
        let req = req
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tickwire")
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::ACCEPT_ENCODING, "gzip")
            .body(Empty::<Bytes>::new())
            .map_err(|e| NetError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| NetError::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| NetError::Http(e.to_string()))?
            .to_bytes();
        if sender.is_ready() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let used_header = self
            .budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rule
            .used_header;
        if let Some(name) = used_header
            && let Some(used) = header(name).and_then(|v| v.parse::<u32>().ok())
        {
            let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
            b.used = b.used.max(used);
        }
        let body = if header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(MAX_BODY as u64)
                .read_to_end(&mut out)
                .map_err(|e| NetError::Http(format!("gzip body: {e}")))?;
            Bytes::from(out)
        } else {
            body
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match status {
            200 => Ok(body),
            429 => {
                let retry_after = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                self.block_for(retry_after);
                Err(RestError::RateLimited {
                    venue: self.venue,
                    retry_after,
                })
            }
            418 => {
                let retry_after = retry_after.unwrap_or(DEFAULT_BAN);
                self.block_for(retry_after);
                Err(RestError::Banned {
                    venue: self.venue,
                    retry_after,
                })
            }
            400..=499 => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let code = match &v["code"] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                Err(RestError::Refused {
                    venue: self.venue,
                    status,
                    code,
                    msg: v["msg"].as_str().unwrap_or_default().to_string(),
                })
            }
            _ => Err(RestError::Server {
                venue: self.venue,
                status,
            }),
        }
    }
}

/// Per-market retry delays: exponential from `base` to `cap` with full
/// jitter, never shorter than what the venue asked for, and `None` for
/// failures not worth retrying.
#[derive(Debug, Clone)]
pub struct MarketBackoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl MarketBackoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// A call succeeded: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The wait before retrying after `err`, or `None` to give up.
    pub fn next(&mut self, err: &RestError) -> Option<Duration> {
        let floor = err.retry()?;
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = rand::random_range(0..=ceiling.as_millis() as u64);
        Some(floor.max(Duration::from_millis(jitter)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_waits_for_the_next_window_when_spent() {
        let mut b = Budget {
            rule: BudgetRule {
                limit: 3,
                window: Duration::from_secs(2),
                used_header: None,
            },
            window_start: Instant::now(),
            used: 0,
            blocked_until: None,
        };
        for _ in 0..3 {
            assert_eq!(b.take(1), Duration::ZERO);
        }
        let wait = b.take(1);
        assert!(wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2));
        // the window passed
        b.window_start = Instant::now() - Duration::from_secs(2);
        assert_eq!(b.take(1), Duration::ZERO);
        b.blocked_until = Some(Instant::now() + Duration::from_secs(5));
        assert!(
            b.take(1) > Duration::from_secs(4),
            "Retry-After blocks every call"
        );
    }

    #[test]
    fn backoff_honours_retry_after_and_gives_up_on_other_4xx() {
        let mut b = MarketBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let limited = RestError::RateLimited {
            venue: "x",
            retry_after: Duration::from_secs(3),
        };
        assert!(b.next(&limited).unwrap() >= Duration::from_secs(3));
        let refused = RestError::Refused {
            venue: "x",
            status: 400,
            code: "-1121".into(),
            msg: "Invalid symbol.".into(),
        };
        assert_eq!(b.next(&refused), None);
        for _ in 0..20 {
            let d = b
                .next(&RestError::Server {
                    venue: "x",
                    status: 503,
                })
                .unwrap();
            assert!(d <= Duration::from_secs(1), "capped: {d:?}");
        }
    }
}
