"""Flat records of events, for pandas and other table tools.

``pandas.DataFrame.from_records([e.to_record() for e in events])`` needs no
decoder: each record holds the envelope (channel, seq, times, kind) and the
payload's fields under their own names (enums by name, book levels as lists
of ``(price, quantity)``).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from google.protobuf.json_format import MessageToDict


class EventLike(Protocol):
    """What a record is made of (a :class:`tickwire.Event` has it)."""

    channel: str
    seq: int
    kind: str
    source_time_ns: int
    publish_time_ns: int

    @property
    def payload(self) -> Any: ...


def to_record(event: EventLike) -> dict:
    """The envelope and the payload's fields of one event, flat."""
    record: dict = {
        "channel": event.channel,
        "seq": event.seq,
        "kind": event.kind,
        "source_time_ns": event.source_time_ns,
        "publish_time_ns": event.publish_time_ns,
    }
    payload = event.payload
    if event.kind in ("book_snapshot", "book_update"):
        record["bids"] = [(lv.price, lv.quantity) for lv in payload.bids]
        record["asks"] = [(lv.price, lv.quantity) for lv in payload.asks]
        record["checksum"] = payload.checksum
        return record
    fields = MessageToDict(
        payload,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    for key, value in fields.items():
        record[key] = value
    return record


def records(events: Iterable[EventLike]) -> list[dict]:
    """``to_record`` of each event."""
    return [to_record(e) for e in events]
