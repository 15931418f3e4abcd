"""What a :class:`tickwire.Client` hands the application: events and notices.

Every departure from "the next event of this channel" is an explicit notice;
the client never hands over a silent gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pb import pb
from .records import to_record


@dataclass(frozen=True)
class Event:
    """One event of a channel, in seq order."""

    channel: str
    seq: int
    kind: str
    """The payload's name: ``trade``, ``ticker``, ``book_snapshot``, ..."""
    source_time_ns: int
    publish_time_ns: int
    pb: pb.Event
    """The decoded protobuf message (the payload is ``getattr(pb, kind)``)."""

    @property
    def payload(self):  # -> protobuf message of the payload
        return getattr(self.pb, self.kind)

    def to_record(self) -> dict:
        """A flat dict (one row for pandas); see :func:`tickwire.records.to_record`."""
        return to_record(self)


@dataclass(frozen=True)
class Gap:
    """Events of ``channel`` from ``expected_seq`` to ``got_seq - 1`` never
    arrived and nothing announced it. The client resubscribes the channel for
    a fresh snapshot; the application should drop its state for it."""

    channel: str
    expected_seq: int
    got_seq: int


@dataclass(frozen=True)
class Lagged:
    """The server skipped ``first_seq..=last_seq`` of ``channel`` because the
    client fell behind; a snapshot (stateful channels) and newer events follow."""

    channel: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Conflated:
    """A conflated subscription's announced skip (``subscribe(...,
    conflate_ms=...)``): ``first_seq..=last_seq`` of ``channel`` were folded
    into its next event, seq ``last_seq + 1``, which carries the state after
    it (a book update folding them or a snapshot, the latest ticker). Not a
    loss: the state is kept."""

    channel: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Resnapshot:
    """The client's position in ``channel`` could not be continued (new epoch,
    history window passed, checksum mismatch, channel joined late): the state
    starts again from the snapshot at ``seq``."""

    channel: str
    seq: int
    epoch: str
    reason: str


@dataclass(frozen=True)
class Reconnected:
    """The connection was re-established after ``attempt`` tries; every
    channel was resubscribed from its last seq. ``epoch_changed`` means the
    server lost its history (it restarted): expect a Resnapshot per channel."""

    attempt: int
    epoch: str
    epoch_changed: bool


@dataclass(frozen=True)
class ServerError:
    """An ``error`` answer (bad name, forbidden channel, rate limit, ...)."""

    request_id: int
    code: str
    message: str
    channel: str


Item = Event | Gap | Lagged | Conflated | Resnapshot | Reconnected | ServerError
