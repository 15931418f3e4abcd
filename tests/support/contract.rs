//! The delivery contract (docs/protocol.md) checked from what a client saw.

use tickwire::protocol::pb::server_message;

/// Checks the delivery contract per channel: consecutive seqs, except a
/// snapshot at the subscribed seq and, after `lagged`, a jump that the
/// lagged message announced exactly (then an optional snapshot at its last),
/// or, after `conflated`, a jump to its `last_seq + 1`.
#[derive(Default)]
pub struct ContractChecker {
    next: std::collections::HashMap<String, u64>,
    snapshot_ok_at: std::collections::HashMap<String, u64>,
    pub events: u64,
    pub lagged: u64,
    pub conflated: u64,
}

impl ContractChecker {
    pub fn subscribed(&mut self, s: &tickwire::protocol::pb::Subscribed) {
        for c in &s.channels {
            self.next.insert(c.channel.clone(), c.seq + 1);
            self.snapshot_ok_at.insert(c.channel.clone(), c.seq);
        }
    }

    pub fn observe(&mut self, kind: &server_message::Kind) {
        match kind {
            server_message::Kind::Event(e) => {
                self.events += 1;
                if self.snapshot_ok_at.remove(&e.channel) == Some(e.seq) {
                    return;
                }
                let want = self.next.get(&e.channel).copied().unwrap_or(e.seq);
                assert_eq!(
                    e.seq, want,
                    "{}: gap or duplicate not announced by lagged",
                    e.channel
                );
                self.next.insert(e.channel.clone(), e.seq + 1);
            }
            server_message::Kind::Lagged(l) => {
                self.lagged += 1;
                let want = self.next.get(&l.channel).copied().unwrap_or(l.first_seq);
                assert_eq!(
                    l.first_seq, want,
                    "lagged must start at the first undelivered seq"
                );
                assert!(l.last_seq >= l.first_seq, "{l:?}");
                self.next.insert(l.channel.clone(), l.last_seq + 1);
                self.snapshot_ok_at.insert(l.channel.clone(), l.last_seq);
            }
            server_message::Kind::Conflated(c) => {
                self.conflated += 1;
                let want = self.next.get(&c.channel).copied().unwrap_or(c.first_seq);
                assert_eq!(
                    c.first_seq, want,
                    "conflated must start at the first undelivered seq"
                );
                assert!(c.last_seq >= c.first_seq, "{c:?}");
                self.next.insert(c.channel.clone(), c.last_seq + 1);
            }
            _ => {}
        }
    }
}
