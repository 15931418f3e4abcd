//! Running a venue: the shared exchange loop (sessions with backoff and
//! the REST ticker fallback beside them), sharding a venue's instruments
//! over connections, and the setup every connector shares (its markets and
//! its ticker polls).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{
    ExchangeConfig, MarketChannels, Pair, Reconnect, SourceError, SourceState, SourceStatus, Task,
    instruments,
};
use crate::feed::Hub;
use crate::feed::channel::Channel;
use crate::protocol::ChannelError;
use crate::protocol::pb::{Ticker, event::Payload};

/// Reads a REST ticker reply: (exchange time in ns, ticker) per entry.
pub type TickerParser = fn(&[u8]) -> Result<Vec<(i64, Ticker)>, SourceError>;

/// While the stream is down (`reconnecting`), polls each `(path, channel)`
/// (but those of instruments the venue refused) every `interval` through the venue's [`super::rest::RestClient`] (so within its
/// budget and its `Retry-After`) and publishes the tickers `parse` reads
/// from the reply, so ticker subscribers keep getting prices.
pub async fn rest_fallback(
    hub: Arc<Hub>,
    cfg: ExchangeConfig,
    polls: Vec<(String, Arc<Channel>)>,
    parse: TickerParser,
    status: Arc<SourceStatus>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(cfg.rest_fallback_interval);
    every.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if status.state() != SourceState::Reconnecting {
            continue;
        }
        let failed = status.failed_instruments();
        for (url, channel) in &polls {
            // an instrument the venue refused costs no call (nor credit)
            if channel
                .name
                .rsplit('.')
                .next()
                .is_some_and(|i| failed.contains_key(i))
            {
                continue;
            }
            let tickers = match cfg.rest.get(url, 2).await {
                Ok(body) => parse(&body),
                Err(e) => Err(SourceError::Rest(e)),
            };
            match tickers {
                Ok(list) => {
                    for (time_ns, ticker) in list {
                        status.rest_polled();
                        hub.publish_or_log(channel, time_ns, Payload::Ticker(ticker));
                    }
                }
                Err(e) => {
                    tracing::debug!(source = %status.name, url = %url, error = %e, "REST fallback failed")
                }
            }
        }
    }
}

/// A connection's markets and their index by the venue's symbol.
pub(crate) type Markets<M> = (Vec<M>, std::collections::HashMap<String, usize>);

/// Resolves the channels of every instrument of `cfg` and builds its market
/// with `make(instrument, channels, decimals)`; also indexes the markets by
/// `key(instrument)` (the venue's symbol).
pub(crate) fn markets<M>(
    hub: &Hub,
    venue: &str,
    cfg: &ExchangeConfig,
    key: impl Fn(&Pair) -> String,
    mut make: impl FnMut(&Pair, MarketChannels, Option<(u32, u32)>) -> M,
) -> Result<Markets<M>, ChannelError> {
    let mut markets = Vec::with_capacity(cfg.instruments.len());
    let mut index = std::collections::HashMap::new();
    for inst in &cfg.instruments {
        index.insert(key(inst), markets.len());
        let channels = MarketChannels::resolve(hub, venue, inst)?;
        markets.push(make(
            inst,
            channels,
            cfg.decimals.get(&inst.dashed()).copied(),
        ));
    }
    Ok((markets, index))
}

/// The REST fallback's polls of a venue's `markets`: `path(instrument)` and
/// the instrument's ticker channel, per instrument.
pub(crate) fn ticker_polls<'a>(
    markets: impl Iterator<Item = (&'a Pair, &'a MarketChannels)>,
    path: impl Fn(&Pair) -> String,
) -> Vec<(String, Arc<Channel>)> {
    markets
        .map(|(inst, channels)| (path(inst), channels.ticker.clone()))
        .collect()
}

/// One exchange connection's future (boxed so the shared loop stays `Send`).
pub type SessionFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send + 'a>>;

/// What the shared exchange loop ([`run_exchange`]) needs of a connector.
pub trait Exchange: Send {
    /// The hub it publishes into.
    fn hub(&self) -> &Arc<Hub>;
    /// Its settings.
    fn config(&self) -> &ExchangeConfig;
    /// The REST ticker polls of the fallback, `(URL, ticker channel)` per
    /// instrument, and how to read a reply.
    fn ticker_polls(&self) -> (Vec<(String, Arc<Channel>)>, TickerParser);
    /// One connection: runs until the stream fails or goes stale.
    fn session<'a>(&'a mut self, status: &'a SourceStatus) -> SessionFuture<'a>;
}

/// Runs an exchange until shutdown: sessions one after another with
/// [`Reconnect`]'s backoff between them, and the REST ticker fallback
/// beside them while the stream is down.
pub async fn run_exchange<E: Exchange>(
    mut exchange: E,
    status: Arc<SourceStatus>,
    shutdown: CancellationToken,
) {
    let (polls, parse) = exchange.ticker_polls();
    let fallback = rest_fallback(
        exchange.hub().clone(),
        exchange.config().clone(),
        polls,
        parse,
        status.clone(),
        shutdown.clone(),
    );
    let stream = async {
        let mut reconnect = Reconnect::new(exchange.config());
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = exchange.session(&status) => r,
            };
            let Err(error) = result else { break };
            if !reconnect
                .after_failure(&status, started, error, &shutdown)
                .await
            {
                break;
            }
        }
        status.ended(SourceState::Stopped);
    };
    tokio::join!(stream, fallback);
}

/// Time between the starts of a venue's connections.
const SHARD_STAGGER: Duration = Duration::from_millis(400);

/// Validates `cfg`'s instruments against the venue, then runs one
/// connection per `per_connection` instruments (the venue's limit), each
/// with its own sessions, all reporting to `status`.
pub async fn run_sharded<E, F>(
    venue: &'static str,
    mut cfg: ExchangeConfig,
    per_connection: usize,
    status: Arc<SourceStatus>,
    shutdown: CancellationToken,
    make: F,
) where
    E: Exchange,
    F: Fn(ExchangeConfig) -> Result<E, ChannelError>,
{
    tokio::select! {
        _ = shutdown.cancelled() => return,
        () = instruments::validate(venue, &mut cfg, &status) => {}
    }
    let mut shards = Vec::new();
    for (i, chunk) in cfg.instruments.chunks(per_connection.max(1)).enumerate() {
        match make(cfg.shard(chunk)) {
            Ok(e) => {
                let (status, shutdown) = (status.clone(), shutdown.clone());
                shards.push(async move {
                    // new connections are spread out: OKX takes 3 per
                    // second per IP, Binance 300 per 5 minutes
                    let start = SHARD_STAGGER.saturating_mul(i as u32);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(start) => {}
                    }
                    run_exchange(e, status, shutdown).await
                });
            }
            Err(e) => tracing::error!(source = venue, error = %e, "cannot start a connection"),
        }
    }
    if shards.is_empty() {
        status.set_error("no instrument to stream");
        shutdown.cancelled().await;
        status.ended(SourceState::Stopped);
        return;
    }
    futures_util::future::join_all(shards).await;
}

/// A venue's task: attaches its status feed, resolves the channels of its
/// instruments (they exist from the start, before the venue answers), then
/// [`run_sharded`] with each connection built by `make` (the venue's
/// constructor).
pub(crate) fn sharded<E: Exchange + 'static>(
    venue: &'static str,
    make: fn(Arc<Hub>, ExchangeConfig) -> Result<E, ChannelError>,
    hub: &Arc<Hub>,
    cfg: ExchangeConfig,
    per_connection: usize,
    status: Arc<SourceStatus>,
    shutdown: CancellationToken,
) -> Result<Task, ChannelError> {
    status.attach(hub, venue)?;
    for inst in &cfg.instruments {
        MarketChannels::resolve(hub, venue, inst)?;
    }
    let hub = hub.clone();
    Ok(Box::pin(run_sharded(
        venue,
        cfg,
        per_connection,
        status,
        shutdown,
        move |cfg| make(hub.clone(), cfg),
    )))
}
