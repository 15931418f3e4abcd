//! Each layer's settings, taken from the one [`Config`] of a run. The
//! layers never see the `Config`: the flags and their parsing stay in
//! `config`, and what a layer needs is written down here once.

use crate::config::{Config, ConfigError};
use crate::sources::sim::SimConfig;
use crate::sources::{Endpoint, ExchangeTiming};

/// The server's settings.
pub fn server(c: &Config) -> crate::server::Settings {
    crate::server::Settings {
        listen: c.listen,
        handshake_timeout: c.handshake_timeout,
        heartbeat_interval: c.heartbeat_interval,
        shutdown_timeout: c.shutdown_timeout,
        gzip_threshold: c.gzip_threshold,
        max_subscriptions: c.max_subscriptions,
        max_names_per_request: c.max_names_per_request,
        max_requests_per_second: c.max_requests_per_second,
        max_connections: c.max_connections,
        max_connections_per_ip: c.max_connections_per_ip,
        allowed_origins: c.allowed_origins.clone(),
        max_concurrent_scans: c.max_concurrent_scans,
        max_lag_messages: c.max_lag_messages,
        max_lag_bytes: c.max_lag_bytes,
        max_lag_age: c.max_lag_age,
        slow_consumer: c.slow_consumer,
        write_timeout: c.write_timeout,
        socket_send_buffer: c.socket_send_buffer,
        socket_unsent_limit: c.socket_unsent_limit,
        publish_key: c.publish_key.clone(),
        jwt_secret: c.jwt_secret.clone(),
        jwt_public_key: c.jwt_public_key.clone(),
        tls_cert: c.tls_cert.clone(),
        tls_key: c.tls_key.clone(),
    }
}

/// The analytics engine's settings.
pub fn analytics(c: &Config) -> crate::analytics::Settings {
    crate::analytics::Settings {
        candle_intervals: c.candle_intervals.clone(),
        signal_interval: c.signal_interval.clone(),
        sentiment_interval: c.sentiment_interval,
        max_concurrent_scans: c.max_concurrent_scans,
    }
}

/// Cluster mode's settings; `None` on a single node (no `--nats-url`).
pub fn cluster(c: &Config) -> Option<crate::cluster::Settings> {
    Some(crate::cluster::Settings {
        nats_url: c.nats_url.clone()?,
        nats_creds: c.nats_creds.clone(),
        nats_tls_ca: c.nats_tls_ca.clone(),
        nats_replicas: c.nats_replicas,
        edge: c.is_edge(),
        history_messages: c.history_messages,
        history_seconds: c.history_seconds,
    })
}

/// The sources' settings.
pub fn sources(c: &Config) -> crate::sources::Settings {
    let endpoint = |ws: &String, rest: &String, symbols: &Option<Vec<String>>| Endpoint {
        ws_url: ws.clone(),
        rest_url: rest.clone(),
        symbols: symbols.clone(),
    };
    crate::sources::Settings {
        specs: c.sources.clone(),
        run_on: c.sources_on,
        symbols: c.symbols.clone(),
        binance: endpoint(&c.binance_ws_url, &c.binance_rest_url, &c.binance_symbols),
        okx: endpoint(&c.okx_ws_url, &c.okx_rest_url, &c.okx_symbols),
        bybit: endpoint(&c.bybit_ws_url, &c.bybit_rest_url, &c.bybit_symbols),
        coinbase: endpoint(
            &c.coinbase_ws_url,
            &c.coinbase_rest_url,
            &c.coinbase_symbols,
        ),
        kraken: endpoint(&c.kraken_ws_url, &c.kraken_rest_url, &c.kraken_symbols),
        twelvedata: endpoint(
            &c.twelvedata_ws_url,
            &c.twelvedata_rest_url,
            &c.twelvedata_symbols,
        ),
        twelvedata_api_key: c.twelvedata_api_key.clone(),
        twelvedata_credits_per_minute: c.twelvedata_credits_per_minute,
        timing: ExchangeTiming {
            stale_after: c.stale_after,
            rest_fallback_interval: c.rest_fallback_interval,
            rotate_after: c.rotate_after,
            snapshot_timeout: c.snapshot_timeout,
            reconnect_min: c.reconnect_min,
            reconnect_max: c.reconnect_max,
        },
        book_depth: c.book_depth,
        consolidate: c.consolidate.clone(),
        consolidated_book: match c.consolidated_book.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        sim: SimConfig {
            rate: c.sim_rate,
            tick: c.sim_tick,
            instruments: c.sim_instruments.clone(),
            seed: c.sim_seed,
            depth: c.book_depth,
            payload_bytes: c.sim_payload_bytes,
            candles: !c.analytics_on(),
        },
        replay_speed: c.replay_speed,
        replay_loop: c.replay_loop,
        analytics: c.analytics_on(),
    }
}

/// The configuration of `record --source`: the serve defaults (and the
/// `TICKWIRE_*` environment) with the recorder's sources and simulator rate.
pub fn record_config(args: &crate::cli::RecordArgs) -> Result<Config, ConfigError> {
    let mut config = crate::config::environment_only()?;
    config.sources = args.sources.clone();
    config.sim_rate = args.sim_rate;
    Ok(config)
}
