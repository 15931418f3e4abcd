//! Twelve Data's WebSocket as the mock speaks it (Twelve Data docs,
//! "WebSocket" / "Real-time price", as read 2026-12-07):
//!
//! - the key is a query parameter of the URL (`?apikey=KEY`);
//! - `{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD"}}` is
//!   answered by one `subscribe-status` event whose `success` lists the
//!   symbols that stream and `fails` those that do not (unknown, or not in
//!   the plan);
//! - prices arrive as `{"event":"price","symbol","currency","exchange",
//!   "mic_code","type","timestamp","price","day_volume"}` (timestamp in
//!   seconds);
//! - the client sends `{"action":"heartbeat"}` every 10 s and gets
//!   `{"event":"heartbeat","status":"ok"}`;
//! - REST `GET /price?symbol=X` answers `{"price":"200.99001"}` (one API
//!   credit per symbol), an error as `{"code":401,"message":..,"status":"error"}`.

/// The `subscribe-status` answer.
pub fn subscribe_status(success: &[&str], fails: &[&str]) -> String {
    let ok: Vec<serde_json::Value> = success
        .iter()
        .map(|s| serde_json::json!({"symbol": s, "exchange": "NASDAQ", "mic_code": "XNGS", "country": "United States", "type": "Common Stock"}))
        .collect();
    let bad: Vec<serde_json::Value> = fails
        .iter()
        .map(|s| serde_json::json!({"symbol": s}))
        .collect();
    serde_json::json!({"event": "subscribe-status", "status": if fails.is_empty() { "ok" } else { "error" },
        "success": ok, "fails": bad})
    .to_string()
}

/// A `price` event.
pub fn price(symbol: &str, price: f64, timestamp: i64) -> String {
    serde_json::json!({"event": "price", "symbol": symbol, "currency": "USD", "exchange": "NASDAQ",
        "mic_code": "XNGS", "type": "Common Stock", "timestamp": timestamp, "price": price,
        "day_volume": 27631112})
    .to_string()
}

/// The heartbeat answer.
pub fn heartbeat_ok() -> String {
    r#"{"event":"heartbeat","status":"ok"}"#.into()
}
