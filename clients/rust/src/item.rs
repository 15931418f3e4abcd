//! What the client hands the application: events and explicit notices.

use tickwire_proto::pb;

/// One event of a channel, handed over in seq order.
#[derive(Debug, Clone, PartialEq)]
pub struct Event(pub pb::Event);

impl Event {
    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.0.channel
    }

    /// The channel's seq of this event.
    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    /// The payload (trade, ticker, book_snapshot, ...).
    pub fn payload(&self) -> Option<&pb::event::Payload> {
        self.0.payload.as_ref()
    }

    /// Server publish time, Unix ns.
    pub fn publish_time_ns(&self) -> i64 {
        self.0.publish_time_ns
    }

    /// Source (venue) time, Unix ns.
    pub fn source_time_ns(&self) -> i64 {
        self.0.source_time_ns
    }
}

/// An `error` answer of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The request it answers (0 if none).
    pub request_id: u64,
    /// What went wrong.
    pub code: pb::ErrorCode,
    /// The server's words.
    pub message: String,
    /// The channel or pattern concerned, or empty.
    pub channel: String,
}

/// An event or a notice. Every departure from "the next event of this
/// channel" is announced by a notice before the events that follow it.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The next event of a channel.
    Event(Event),
    /// Events `expected_seq..got_seq` of `channel` never arrived and nothing
    /// announced it; the client resyncs the channel by itself.
    Gap {
        channel: String,
        expected_seq: u64,
        got_seq: u64,
    },
    /// The server skipped `first_seq..=last_seq` because the client fell
    /// behind; a snapshot (stateful channels) and newer events follow.
    Lagged {
        channel: String,
        first_seq: u64,
        last_seq: u64,
    },
    /// A conflated subscription's announced skip (`subscribe_conflated`):
    /// `first_seq..=last_seq` were folded into the channel's next event,
    /// seq `last_seq + 1`, which carries the state after it (a book update
    /// folding them or a snapshot, the latest ticker). Not a loss: the
    /// state is kept.
    Conflated {
        channel: String,
        first_seq: u64,
        last_seq: u64,
    },
    /// The channel's state starts again from the snapshot at `seq` (new
    /// epoch, history window passed, checksum mismatch, gap, late join).
    Resnapshot {
        channel: String,
        seq: u64,
        epoch: String,
        reason: &'static str,
    },
    /// The connection came back after `attempt` tries and every channel was
    /// resubscribed with `resume`; `epoch_changed` means the server lost its
    /// history (a restart): Resnapshots follow.
    Reconnected {
        attempt: u32,
        epoch: String,
        epoch_changed: bool,
    },
    /// An `error` answer (a refused name, a rate limit).
    Error(ServerError),
}
