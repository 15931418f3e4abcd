"""tickwire: an asyncio client of the tickwire market-data feed.

>>> import asyncio, tickwire
>>> async def main():
...     async with tickwire.Client("ws://127.0.0.1:8080/ws") as client:
...         await client.subscribe("book.sim.BTC-USDT")
...         async for item in client:
...             if isinstance(item, tickwire.Event) and item.kind.startswith("book"):
...                 book = client.book(item.channel)   # checksum verified
...                 print(book.top_bids(1), book.top_asks(1))

Items are :class:`Event` or a notice (:class:`Gap`, :class:`Lagged`,
:class:`Conflated`, :class:`Resnapshot`, :class:`Reconnected`,
:class:`ServerError`): the client
never hands over a silent gap.
"""

from .book import ChecksumMismatch, OrderBook, checksum
from .client import Client, SubscribeError, TickwireError, connect
from .items import Conflated, Event, Gap, Item, Lagged, Reconnected, Resnapshot, ServerError
from .pb import pb
from .records import records, to_record

__all__ = [
    "ChecksumMismatch", "Client", "Conflated", "Event", "Gap", "Item", "Lagged", "OrderBook",
    "Reconnected", "Resnapshot", "ServerError", "SubscribeError", "TickwireError",
    "checksum", "connect", "pb", "records", "to_record",
]
