//! Waiting for something to happen: the one way a test waits.
//!
//! A test never sleeps a fixed time and then looks: it polls a condition
//! until it holds ([`eventually`]) or, to prove that something did *not*
//! arrive, sends a ping and waits for its pong ([`super::Client::ping`]):
//! the server answers in order, so everything it sent before the pong has
//! arrived. The deadline of a wait is a hang guard, generous on purpose: it
//! never asserts a speed (speed is measured in `benches/`, never tested).

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// The hang guard of a wait, unless a test names a longer one.
pub const WAIT: Duration = Duration::from_secs(15);

/// First pause between two polls; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(10);
/// Longest pause between two polls.
const MAX_POLL: Duration = Duration::from_millis(100);

/// What a probe of [`eventually`] answers: done (with a value) or not yet.
pub trait Ready {
    /// What the wait returns once the condition holds.
    type Value;
    /// `Ok` when done; `Err` with what was seen (for the timeout message).
    fn ready(self) -> Result<Self::Value, String>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

/// `Err(state)`: not yet, and `state` is what the timeout message shows.
impl<T, E: Debug> Ready for Result<T, E> {
    type Value = T;
    fn ready(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `probe` until it answers `true` / `Some` / `Ok` and returns its
/// value; panics after [`WAIT`] naming `what` was awaited and the last
/// answer.
///
/// The probe is a closure returning a future (`|| async move { .. }`), not
/// an async closure: an async closure's future is not provably `Send`, and
/// waits run inside spawned tasks too.
pub async fn eventually<R: Ready, F: Future<Output = R>>(
    what: &str,
    probe: impl FnMut() -> F,
) -> R::Value {
    eventually_within(WAIT, what, probe).await
}

/// [`eventually`] with a hang guard of `within` (for waits that span a
/// reconnect backoff, a replay or a cluster lease).
pub async fn eventually_within<R: Ready, F: Future<Output = R>>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> R::Value {
    let deadline = Instant::now() + within;
    let mut pause = FIRST_POLL;
    loop {
        let last = match probe().await.ready() {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Awaits `future` (a read from a stream until something arrives) under
/// the hang guard [`WAIT`]; panics naming `what` was awaited.
pub async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    guarded_within(WAIT, what, future).await
}

/// [`guarded`] with a hang guard of `within`.
pub async fn guarded_within<T>(within: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(within, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {within:?} waiting for {what}"))
}

/// The blocking twin of [`eventually`], for tests without a runtime (a
/// child process to exit, a file to appear).
pub fn eventually_sync<R: Ready>(what: &str, probe: impl FnMut() -> R) -> R::Value {
    eventually_sync_within(WAIT, what, probe)
}

/// [`eventually_sync`] with a hang guard of `within`.
pub fn eventually_sync_within<R: Ready>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> R,
) -> R::Value {
    let deadline = Instant::now() + within;
    let mut pause = FIRST_POLL;
    loop {
        let last = match probe().ready() {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; last seen: {last}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
}
