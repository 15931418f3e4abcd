"""The client conformance scenarios against the real server: snapshot then
updates, a pattern covering a channel created later, a network drop and
resume (recovered, no gap, no duplicate), a server kill -9 and restart (new
epoch: resnapshot, never a false recovery), a slow reader (lagged then
snapshot), gzip frames, and a book checksum verified on every update.

Every wait is for an event, bounded by a hang guard (``asyncio.wait_for``);
nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import tickwire
from tickwire import Conflated, Event, Gap, Lagged, Reconnected, Resnapshot
from conftest import Proxy

GUARD = 60  # seconds: a hang guard, never a performance bound


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, GUARD))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SeqCheck:
    """Per channel: every event is the previous one + 1, except right after
    a notice that announced why (lagged, resnapshot)."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.allowed: set[str] = set()

    def see(self, item) -> None:
        if isinstance(item, (Lagged, Resnapshot)):
            self.allowed.add(item.channel)
        elif isinstance(item, Conflated):
            self.last[item.channel] = item.last_seq  # the next is exactly last_seq + 1
        elif isinstance(item, Event):
            prev = self.last.get(item.channel)
            if prev is not None and item.channel not in self.allowed:
                assert item.seq == prev + 1, f"{item.channel}: {prev} then {item.seq}"
            self.allowed.discard(item.channel)
            self.last[item.channel] = item.seq


@pytest.mark.parametrize("fmt", ["proto", "json"])
def test_snapshot_then_updates_with_every_book_checksum_verified(server_factory, fmt):
    server = server_factory("--sim-rate", "2000")

    async def body():
        async with tickwire.Client(server.url, format=fmt) as client:
            states = await client.subscribe("book.sim.BTC-USDT")
            assert [s.channel for s in states] == ["book.sim.BTC-USDT"]
            first = await client.__anext__()
            assert isinstance(first, Event) and first.kind == "book_snapshot"
            assert first.seq == states[0].seq, "the snapshot carries the subscribe answer's seq"
            check = SeqCheck()
            check.see(first)
            updates = 0
            async for item in client:
                assert not isinstance(item, (Gap, Lagged, Resnapshot)), item
                check.see(item)
                if isinstance(item, Event) and item.kind == "book_update":
                    updates += 1
                    if updates == 150:
                        break
            book = client.book("book.sim.BTC-USDT")
            # the reader may be ahead of the application by what the queue holds
            assert book.valid and book.checksums_verified >= 151 and book.seq >= item.seq
            assert book.spread is not None and book.spread > 0

    run(body())


def test_gzip_frames_are_decoded(server_factory):
    server = server_factory("--gzip-threshold", "64")

    async def body():
        async with tickwire.Client(server.url, format="json") as client:
            await client.subscribe("book.sim.*")
            events = await client.events(50)
            assert client.stats["gzip_frames"] > 0, "book messages over 64 bytes arrive gzipped"
            assert all(client.book(e.channel).valid for e in events)

    run(body())


def test_a_pattern_covers_a_channel_created_later_from_seq_1(server_factory):
    key = "conformance-publish-key"
    server = server_factory("--publish-key", key)

    async def body():
        async with tickwire.Client(server.url) as client:
            states = await client.subscribe("alerts.app.*")
            assert states == [], "the pattern matches nothing yet"
            answer = await asyncio.to_thread(
                server.publish, key, {"channel": "alerts.app.BTC-USDT", "custom": {"json": "{\"level\":1}"}})
            assert answer["seq"] == 1
            item = await client.__anext__()
            assert isinstance(item, Event)
            assert (item.channel, item.seq, item.kind) == ("alerts.app.BTC-USDT", 1, "custom")
            assert item.payload.json == "{\"level\":1}"

    run(body())


def test_a_network_drop_resumes_every_channel_with_no_gap_and_no_duplicate(server_factory):
    server = server_factory("--sim-rate", "1000")

    async def body():
        proxy = Proxy(server.addr)
        via = await proxy.start()
        client = tickwire.Client(f"ws://{via}/ws", reconnect_min=0.05, reconnect_max=0.2)
        await client.connect()
        await client.subscribe("trade.sim.*", "book.sim.ETH-USDT")
        check = SeqCheck()
        seen_before = 0
        async for item in client:
            check.see(item)
            seen_before += isinstance(item, Event)
            if seen_before == 200:
                break
        proxy.cut()
        reconnected = None
        after = 0
        async for item in client:
            assert not isinstance(item, (Gap, Lagged, Resnapshot)), item
            check.see(item)
            if isinstance(item, Reconnected):
                reconnected = item
            elif isinstance(item, Event) and reconnected is not None:
                after += 1
                if after == 200:
                    break
        assert reconnected is not None and not reconnected.epoch_changed
        assert proxy.connections == 2
        assert client.book("book.sim.ETH-USDT").valid
        await client.close()
        await proxy.close()

    run(body())


def test_a_server_restart_is_a_new_epoch_announced_by_resnapshot(server_factory):
    listen = f"127.0.0.1:{free_port()}"
    server = server_factory(listen=listen)

    async def body():
        nonlocal server
        client = tickwire.Client(server.url, reconnect_min=0.05, reconnect_max=0.5)
        await client.connect()
        await client.subscribe("book.sim.BTC-USDT", "ticker.sim.*")
        old_epoch = client.epoch
        await client.events(20)
        server.kill()  # kill -9: history is gone with the process
        server = await asyncio.to_thread(server_factory, listen=listen)
        resnapshots: dict[str, Resnapshot] = {}
        reconnected = None
        async for item in client:
            if isinstance(item, Reconnected):
                reconnected = item
            elif isinstance(item, Resnapshot):
                resnapshots[item.channel] = item
            elif isinstance(item, Gap):
                pytest.fail(f"unexpected gap {item}")
            wanted = {"book.sim.BTC-USDT", "ticker.sim.BTC-USDT"}
            if reconnected and wanted <= set(resnapshots) and client.book("book.sim.BTC-USDT").valid:
                break
        assert reconnected.epoch_changed and client.epoch != old_epoch
        assert all(r.reason == "new epoch" for r in resnapshots.values())
        await client.close()

    run(body())


def test_a_slow_reader_is_told_lagged_then_gets_a_snapshot(server_factory):
    server = server_factory("--sim-rate", "4000", "--max-lag-messages", "64",
                            "--socket-send-buffer", "4096")

    async def body():
        client = tickwire.Client(server.url, queue_size=4, receive_buffer=4096)
        await client.connect()
        await client.subscribe("book.sim.*", "trade.sim.*")
        # Stop reading while the server publishes far more than the socket
        # buffers (4 KiB each side), websockets' queue and ours can hold.
        start = (await asyncio.to_thread(server.get_json, "/stats"))["events_published"]
        while (await asyncio.to_thread(server.get_json, "/stats"))["events_published"] < start + 5000:
            await asyncio.sleep(0.05)
        check = SeqCheck()
        lagged = None
        async for item in client:
            assert not isinstance(item, Gap), item
            check.see(item)
            if isinstance(item, Lagged) and item.channel.startswith("book."):
                lagged = item
            if lagged and isinstance(item, Event) and item.channel == lagged.channel:
                assert item.kind == "book_snapshot" and item.seq == lagged.last_seq
                assert client.book(item.channel).valid
                break
        await client.close()

    run(body())


def test_refused_names_raise_with_the_servers_reasons(server_factory):
    server = server_factory()

    async def body():
        async with tickwire.Client(server.url) as client:
            with pytest.raises(tickwire.SubscribeError) as refused:
                await client.subscribe("book.sim.NOPE-USDT", "bad..name")
            codes = sorted(e.code for e in refused.value.errors)
            assert codes == ["ERROR_CODE_INVALID_CHANNEL", "ERROR_CODE_UNKNOWN_CHANNEL"]
            # the connection stays usable
            assert await client.ping() > 0

    run(body())


def test_records_load_into_a_table_without_a_decoder(server_factory):
    server = server_factory()

    async def body():
        async with tickwire.Client(server.url) as client:
            await client.subscribe("trade.sim.BTC-USDT", "book.sim.BTC-USDT")
            return await client.events(30)

    events = run(body())
    rows = tickwire.records(events)
    trades = [r for r in rows if r["kind"] == "trade"]
    books = [r for r in rows if r["kind"].startswith("book")]
    assert trades and books
    assert {"channel", "seq", "publish_time_ns", "price", "quantity", "side", "trade_id"} <= set(trades[0])
    assert trades[0]["side"] in ("SIDE_BUY", "SIDE_SELL")
    assert isinstance(books[0]["bids"][0], tuple)
    try:
        import pandas
    except ImportError:
        return
    frame = pandas.DataFrame.from_records(trades)
    assert len(frame) == len(trades) and frame["price"].dtype.kind == "f"


def test_a_conflated_subscription_announces_its_skips_and_keeps_books_valid(server_factory):
    server = server_factory("--sim-instruments", "BTC-USDT", "--analytics", "off")
    book, ticker, trades = "book.sim.BTC-USDT", "ticker.sim.BTC-USDT", "trade.sim.BTC-USDT"

    async def body():
        async with tickwire.Client(server.url) as client:
            await client.subscribe(book, ticker, trades, conflate_ms=50)
            check, folds, trade_events = SeqCheck(), {}, 0
            async for item in client:
                check.see(item)
                if isinstance(item, Conflated):
                    folds[item.channel] = folds.get(item.channel, 0) + 1
                elif isinstance(item, Event):
                    trade_events += item.channel == trades
                else:
                    pytest.fail(f"only events and conflated notices: {item!r}")
                if folds.get(book, 0) >= 3 and folds.get(ticker, 0) >= 3 and trade_events >= 200:
                    break
            assert trades not in folds, "trades are never folded"
            assert client.stats["gaps"] == 0
            assert client.stats["conflated"] == sum(folds.values())
            assert client.stats["checksums_verified"] >= 4
            assert client.book(book).valid

    run(body())
