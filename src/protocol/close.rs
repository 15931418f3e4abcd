//! WebSocket close codes of PROTOCOL.md section 5, in one place.

/// Normal close.
pub const NORMAL: u16 = 1000;
/// Server shutting down: reconnect elsewhere.
pub const GOING_AWAY: u16 = 1001;
/// Policy: origin not allowed.
pub const POLICY: u16 = 1008;
/// Inbound frame too big.
pub const TOO_BIG: u16 = 1009;
/// Internal error.
pub const INTERNAL: u16 = 1011;
/// Heartbeat timeout: nothing received from the client for two heartbeat
/// intervals. Not a deliberate close: the client should reconnect (and
/// resume).
pub const HEARTBEAT_TIMEOUT: u16 = 4000;
/// Missing, invalid or expired token.
pub const UNAUTHORIZED: u16 = 4001;
/// Token does not allow this channel.
pub const FORBIDDEN: u16 = 4003;
/// Slow consumer.
pub const SLOW_CONSUMER: u16 = 4008;
/// Too many requests.
pub const TOO_MANY_REQUESTS: u16 = 4029;
