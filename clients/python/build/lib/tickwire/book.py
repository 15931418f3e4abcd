"""A local L2 order book that proves itself equal to the server's.

Apply a channel's ``book_snapshot`` and then its ``book_update`` events; after
each one :meth:`OrderBook.apply` verifies the event's checksum (docs/protocol.md
section 8, Kraken's method: CRC32 of the top 10 asks then the top 10 bids,
price then quantity as fixed-point text with the snapshot's decimals, decimal
point and leading zeros dropped).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Iterable

from .pb import pb

CHECKSUM_DEPTH = 10


def _digits(value: float, scale: int) -> str:
    """Fixed-point digits without point or leading zeros (as the server renders them)."""
    n = abs(value) * scale
    # Rust's f64::round: half away from zero (Python's round() is half-even).
    n = int(n + 0.5)
    return "" if n == 0 else str(n)


def checksum(
    asks: Iterable[tuple[float, float]],
    bids: Iterable[tuple[float, float]],
    price_decimals: int,
    size_decimals: int,
) -> int:
    """The checksum of the given top levels (asks ascending, bids descending)."""
    ps, ss = 10**price_decimals, 10**size_decimals
    text = "".join(_digits(p, ps) + _digits(q, ss) for p, q in list(asks) + list(bids))
    return zlib.crc32(text.encode("ascii")) & 0xFFFFFFFF


class ChecksumMismatch(Exception):
    """The local book does not equal the server's after an event."""

    def __init__(self, channel: str, seq: int, expected: int, computed: int) -> None:
        super().__init__(
            f"{channel} seq {seq}: checksum {computed} computed, {expected} expected"
        )
        self.channel, self.seq, self.expected, self.computed = channel, seq, expected, computed


@dataclass
class OrderBook:
    """An L2 book keyed by price; ``depth`` levels a side are kept.

    ``valid`` is False until a snapshot arrives and after a mismatch (the
    client then resubscribes the channel for a fresh snapshot by itself).
    """

    channel: str = ""
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    price_decimals: int = 0
    size_decimals: int = 0
    depth: int = 0
    seq: int = 0
    valid: bool = False
    checksums_verified: int = 0

    def apply(self, event: pb.Event) -> None:
        """Applies one event of the book channel and verifies its checksum.

        Raises :class:`ChecksumMismatch` (and marks the book invalid) when the
        result differs from the server's book; ignores updates while invalid.
        """
        kind = event.WhichOneof("payload")
        if kind == "book_snapshot":
            s = event.book_snapshot
            self.bids = {lv.price: lv.quantity for lv in s.bids}
            self.asks = {lv.price: lv.quantity for lv in s.asks}
            self.price_decimals, self.size_decimals = s.price_decimals, s.size_decimals
            self.depth = max(len(s.bids), len(s.asks))
            self.valid = True
            expected = s.checksum
        elif kind == "book_update":
            if not self.valid:
                return
            u = event.book_update
            for side, levels in ((self.bids, u.bids), (self.asks, u.asks)):
                for lv in levels:
                    if lv.quantity == 0:
                        side.pop(lv.price, None)
                    else:
                        side[lv.price] = lv.quantity
            self._truncate()
            expected = u.checksum
        else:
            return
        self.seq = event.seq
        computed = self.checksum()
        if computed != expected:
            self.valid = False
            raise ChecksumMismatch(event.channel, event.seq, expected, computed)
        self.checksums_verified += 1

    def _truncate(self) -> None:
        if self.depth <= 0:
            return
        for side, best_first in ((self.bids, True), (self.asks, False)):
            if len(side) > self.depth:
                keep = sorted(side, reverse=best_first)[: self.depth]
                for price in set(side) - set(keep):
                    del side[price]

    def top_bids(self, n: int = CHECKSUM_DEPTH) -> list[tuple[float, float]]:
        """Best ``n`` bids, highest price first."""
        return [(p, self.bids[p]) for p in sorted(self.bids, reverse=True)[:n]]

    def top_asks(self, n: int = CHECKSUM_DEPTH) -> list[tuple[float, float]]:
        """Best ``n`` asks, lowest price first."""
        return [(p, self.asks[p]) for p in sorted(self.asks)[:n]]

    def checksum(self) -> int:
        """The checksum of the book as it is now."""
        return checksum(self.top_asks(), self.top_bids(), self.price_decimals, self.size_decimals)

    @property
    def spread(self) -> float | None:
        """Best ask minus best bid, or None while a side is empty."""
        if not self.bids or not self.asks:
            return None
        return min(self.asks) - max(self.bids)
