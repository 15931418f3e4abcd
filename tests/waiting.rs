//! The one way tests wait (`tests/support/wait.rs`): `eventually` returns
//! the probe's value once it is ready, and a wait that never ends fails at
//! its hang guard naming what it waited for and what it last saw.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::{
    eventually, eventually_sync, eventually_sync_within, eventually_within, guarded_within,
};

#[tokio::test]
async fn eventually_returns_the_value_of_the_first_ready_answer() {
    let polls = AtomicU32::new(0);
    let polls = &polls;
    let got = eventually("the third poll", || async move {
        let n = polls.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= 3 { Ok(n * 10) } else { Err(n) }
    })
    .await;
    assert_eq!(got, 30);
    assert_eq!(
        polls.load(Ordering::Relaxed),
        3,
        "no poll after the ready one"
    );
}

#[tokio::test]
#[should_panic(expected = "waiting for the impossible; last seen: \"still 7\"")]
async fn a_wait_that_never_ends_fails_naming_what_it_waited_for_and_the_last_answer() {
    eventually_within(Duration::from_millis(100), "the impossible", || async {
        Err::<(), _>("still 7")
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "waiting for a frame that never comes")]
async fn a_guarded_read_that_never_ends_fails_naming_what_it_waited_for() {
    guarded_within(
        Duration::from_millis(100),
        "a frame that never comes",
        std::future::pending::<()>(),
    )
    .await;
}

#[test]
fn the_blocking_wait_takes_bools_and_options() {
    let mut n = 0;
    eventually_sync("a flag", || {
        n += 1;
        n == 2
    });
    let v = eventually_sync("a value", || (n == 2).then_some("two"));
    assert_eq!(v, "two");
}

#[test]
#[should_panic(expected = "waiting for a process to exit; last seen: None")]
fn a_blocking_wait_that_never_ends_fails_too() {
    eventually_sync_within(Duration::from_millis(100), "a process to exit", || {
        None::<u32>
    });
}
