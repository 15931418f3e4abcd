//! Reading a subscriber across a connection change while the venue's side
//! of the test runs beside it (a subscriber that stopped reading for
//! seconds would be lagged by the server, which is not what these tests
//! are about).

use tickwire::protocol::pb::{event::Payload, server_message};

use crate::support::{Client, ContractChecker};

/// Reads trades and book updates until `scenario` (the venue's side,
/// returning the last trade id it streamed) has finished, every trade id
/// from 1 to that one arrived once and in order, and `min_updates` book
/// updates came; returns the updates' bids. `checker` sees every message
/// (no seq gap); anything but a trade or a book update fails the test.
pub async fn trades_and_updates_across(
    c: &mut Client,
    checker: &mut ContractChecker,
    mut scenario: tokio::task::JoinHandle<u64>,
    min_updates: usize,
) -> Vec<Vec<(f64, f64)>> {
    let (mut want, mut updates, mut last) = (1u64, Vec::new(), None);
    while last.is_none_or(|l| want <= l) || updates.len() < min_updates {
        let kind = tokio::select! {
            k = c.next_msg() => k,
            l = &mut scenario, if last.is_none() => {
                last = Some(l.unwrap());
                continue;
            }
        };
        checker.observe(&kind);
        if let server_message::Kind::Event(e) = &kind {
            match &e.payload {
                Some(Payload::Trade(t)) => {
                    assert_eq!(t.trade_id, want.to_string(), "no duplicate, no missing id");
                    want += 1;
                }
                Some(Payload::BookUpdate(u)) => updates.push(super::source::levels(&u.bids)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    updates
}
