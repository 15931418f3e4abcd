"""An asyncio client of the tickwire feed that never hands over a silent gap.

The client keeps, per channel, the last seq it handed to the application and
the epoch it belongs to. It reconnects by itself (exponential backoff with
full jitter) and resubscribes every name and pattern with ``resume`` set to
those positions, so the server replays what was missed; anything it cannot
replay, and anything that did not arrive in order, becomes an explicit notice
(:class:`Gap`, :class:`Lagged`, :class:`Resnapshot`, :class:`Reconnected`)
before the events that follow it. Book channels get an :class:`OrderBook`
whose checksum is verified on every event; a mismatch resyncs the channel.

See docs/protocol.md for the wire contract this implements.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import random
from collections import deque
import socket
from dataclasses import dataclass
from typing import AsyncIterator, Iterable
from urllib.parse import urlsplit

import websockets
from google.protobuf import json_format

from .book import ChecksumMismatch, OrderBook
from .items import Conflated, Event, Gap, Item, Lagged, Reconnected, Resnapshot, ServerError
from .pb import pb

#: Close codes after which reconnecting cannot help (bad token, policy).
FATAL_CLOSE_CODES = frozenset({1008, 4001, 4003})
#: Payload kinds that are a channel's whole state (a snapshot).
STATE_KINDS = frozenset({"book_snapshot", "ticker", "candle", "signal", "sentiment"})


def _covers(pattern: str, channel: str) -> bool:
    """Whether a subscribe name or ``*`` pattern covers ``channel``."""
    want, got = pattern.split("."), channel.split(".")
    return len(want) == len(got) and all(w in ("*", g) for w, g in zip(want, got))


class TickwireError(Exception):
    """The connection ended for good (a fatal close code, or ``close()``)."""


class SubscribeError(TickwireError):
    """A subscribe in which no name was accepted; ``errors`` says why."""

    def __init__(self, errors: list[ServerError]) -> None:
        super().__init__("; ".join(f"{e.channel}: {e.message}" for e in errors) or "refused")
        self.errors = errors


@dataclass
class _Position:
    last_seq: int = 0
    epoch: str = ""
    # A snapshot may arrive carrying this seq (the subscribe answer's or a
    # lagged range's last seq) instead of last_seq + 1.
    snapshot_seq: int | None = None
    resyncing: bool = False
    resync_reason: str = ""


class Client:
    """A connection to a tickwire server, kept open until :meth:`close`.

    >>> async def main():
    ...     async with Client("ws://127.0.0.1:8080/ws") as client:
    ...         await client.subscribe("trade.sim.*")
    ...         async for item in client:
    ...             print(item)
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        format: str = "proto",
        reconnect_min: float = 0.1,
        reconnect_max: float = 10.0,
        queue_size: int = 1024,
        manage_books: bool = True,
        receive_buffer: int | None = None,
    ) -> None:
        """``format``: ``proto`` (default) or ``json``. ``queue_size``: items
        buffered for the application; when it is full the client stops
        reading, so a slow application is seen by the server as a slow reader
        (and told with ``lagged``) instead of growing memory here.
        ``receive_buffer``: SO_RCVBUF of the socket (smaller: lag is noticed
        sooner). ``manage_books``: keep a verified :class:`OrderBook` per book
        channel."""
        if format not in ("proto", "json"):
            raise ValueError("format must be 'proto' or 'json'")
        self.url, self.token, self.format = url, token, format
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.manage_books = manage_books
        self.receive_buffer = receive_buffer
        self.epoch = ""
        self.books: dict[str, OrderBook] = {}
        self.stats = {"frames": 0, "gzip_frames": 0, "events": 0, "gaps": 0,
                      "duplicates_dropped": 0, "reconnects": 0, "checksums_verified": 0,
                      "conflated": 0}
        self._items: deque[Item | BaseException] = deque()
        self._queue_size = max(1, queue_size)
        self._item_added = asyncio.Event()
        self._item_taken = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._errors: dict[int, list[ServerError]] = {}
        # name or pattern -> (snapshot, conflate_ms)
        self._subscriptions: dict[str, tuple[bool, int]] = {}
        self._positions: dict[str, _Position] = {}
        self._ws = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self._first_welcome: asyncio.Future | None = None

    # -- lifecycle ---------------------------------------------------------

    async def connect(self) -> pb.Welcome:
        """Opens the connection and returns the server's ``welcome``."""
        loop = asyncio.get_running_loop()
        self._first_welcome = loop.create_future()
        self._task = asyncio.create_task(self._run())
        return await self._first_welcome

    async def close(self) -> None:
        """Closes the connection; iteration then ends."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- requests ----------------------------------------------------------

    async def subscribe(self, *names: str, snapshot: bool = True,
                        conflate_ms: int = 0) -> list[pb.ChannelState]:
        """Subscribes to channel names or ``*`` patterns; returns the channels
        covered now. Names the server refuses come as :class:`ServerError`
        items; if it refuses them all, raises :class:`SubscribeError`.

        ``conflate_ms`` (10..60000; 0 = every event) asks for at most one
        message per channel per that many milliseconds, carrying the latest
        state (docs/protocol.md section 5): the skips arrive as
        :class:`Conflated` notices, never as a gap; trades are batched,
        never dropped. The latest subscribe naming a channel sets its rate."""
        for name in names:
            self._subscriptions[name] = (snapshot, conflate_ms)
        answer = await self._request_with_barrier(
            lambda rid: pb.ClientMessage(subscribe=pb.Subscribe(
                request_id=rid, channels=list(names), snapshot=snapshot,
                conflate_ms=conflate_ms)))
        if answer is None:
            for name in names:
                self._subscriptions.pop(name, None)
            raise SubscribeError(self._last_errors)
        return list(answer.channels)

    async def unsubscribe(self, *names: str) -> list[str]:
        """Unsubscribes names or patterns; returns the channels removed."""
        for name in names:
            self._subscriptions.pop(name, None)
        answer = await self._request_with_barrier(
            lambda rid: pb.ClientMessage(unsubscribe=pb.Unsubscribe(
                request_id=rid, channels=list(names))))
        removed = list(answer.channels) if answer is not None else []
        for name in removed:
            self._positions.pop(name, None)
            self.books.pop(name, None)
        return removed

    async def list_channels(self, pattern: str = "") -> list[pb.ChannelInfo]:
        """Every channel (or those matching ``pattern``) with kind and seq."""
        rid = next(self._ids)
        fut = self._expect(rid)
        await self._send(pb.ClientMessage(list_channels=pb.ListChannels(request_id=rid, pattern=pattern)))
        return list((await fut).channels)

    async def ping(self) -> int:
        """Round trip through the server's request queue; returns its time (ns)."""
        rid = next(self._ids)
        fut = self._expect(rid)
        await self._send(pb.ClientMessage(ping=pb.Ping(request_id=rid)))
        return (await fut).server_time_ns

    def book(self, channel: str) -> OrderBook:
        """The verified local book of a ``book.*`` channel (kept by the client)."""
        return self.books.setdefault(channel, OrderBook(channel=channel))

    # -- iteration ---------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Item]:
        return self

    async def __anext__(self) -> Item:
        while not self._items:
            self._item_added.clear()
            await self._item_added.wait()
        item = self._items[0]  # an end stays queued: every later call ends too
        if isinstance(item, StopAsyncIteration):
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        self._items.popleft()
        self._item_taken.set()
        return item

    async def events(self, count: int, *, timeout: float | None = None) -> list[Event]:
        """The next ``count`` events (notices are skipped), for scripts and pandas."""
        out: list[Event] = []

        async def take() -> None:
            async for item in self:
                if isinstance(item, Event):
                    out.append(item)
                    if len(out) >= count:
                        return

        await asyncio.wait_for(take(), timeout)
        return out

    # -- internals ---------------------------------------------------------

    def _expect(self, rid: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        return fut

    async def _request_with_barrier(self, build) -> object | None:
        """Sends a request and a ping right after it: the server answers in
        order, so when the pong arrives without an answer, none is coming
        (every name was refused). Returns the answer or None."""
        await self._connected.wait()
        rid, barrier = next(self._ids), next(self._ids)
        answer, pong = self._expect(rid), self._expect(barrier)
        self._errors[rid] = []
        await self._send(build(rid))
        await self._send(pb.ClientMessage(ping=pb.Ping(request_id=barrier)))
        await pong
        self._last_errors = self._errors.pop(rid, [])
        if answer.done():
            return answer.result()
        self._pending.pop(rid, None)
        return None

    async def _send(self, message: pb.ClientMessage) -> None:
        await self._connected.wait()
        if self.format == "proto":
            await self._ws.send(message.SerializeToString())
        else:
            await self._ws.send(json_format.MessageToJson(message, indent=None))

    def _decode(self, frame: bytes | str) -> pb.ServerMessage:
        self.stats["frames"] += 1
        if isinstance(frame, bytes) and frame[:2] == b"\x1f\x8b":
            self.stats["gzip_frames"] += 1
            frame = gzip.decompress(frame)
            if self.format == "json":
                frame = frame.decode("utf-8")
        if isinstance(frame, str):
            return json_format.Parse(frame, pb.ServerMessage(), ignore_unknown_fields=True)
        return pb.ServerMessage.FromString(frame)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
                async with websockets.connect(
                    self.url,
                    sock=await self._socket(),
                    subprotocols=[f"tickwire.v1.{self.format}"],
                    additional_headers=headers,
                    max_size=None,
                    open_timeout=10,
                ) as ws:
                    self._ws = ws
                    await self._session(ws, attempt)
                    attempt = 0
            except asyncio.CancelledError:
                raise
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code in FATAL_CLOSE_CODES:
                    await self._end(TickwireError(f"server closed with {code}: {closed.rcvd.reason}"))
                    return
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
                if self._first_welcome is not None and not self._first_welcome.done() and attempt >= 3:
                    self._first_welcome.set_exception(TickwireError(f"cannot connect: {e}"))
            finally:
                self._connected.clear()
                self._ws = None
                for fut in self._pending.values():
                    if not fut.done():
                        fut.cancel()
                self._pending.clear()
            if self._closing:
                break
            attempt += 1
            ceiling = min(self.reconnect_max, self.reconnect_min * 2 ** min(attempt, 30))
            await asyncio.sleep(random.uniform(0, ceiling))  # full jitter
        await self._end(StopAsyncIteration())

    async def _socket(self) -> socket.socket | None:
        """A connected socket with the configured receive buffer, or None
        (websockets then connects by itself)."""
        if self.receive_buffer is None:
            return None
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        info = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = info[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, addr)
        except OSError:
            sock.close()
            raise
        return sock

    async def _put(self, item: Item) -> None:
        """Queues an item for the application. When the queue is full the
        reader waits (so the socket backs up and the server sees a slow
        reader), except while a request awaits its answer: then it keeps
        reading, or the answer could never arrive."""
        while len(self._items) >= self._queue_size and not self._pending:
            self._item_taken.clear()
            await self._item_taken.wait()
        self._items.append(item)
        self._item_added.set()

    async def _end(self, why: BaseException) -> None:
        self._items.append(why)
        self._item_added.set()

    async def _session(self, ws, attempt: int) -> None:
        welcome = self._decode(await ws.recv())
        if welcome.WhichOneof("kind") != "welcome":
            raise TickwireError("the server's first message was not welcome")
        old_epoch, self.epoch = self.epoch, welcome.welcome.epoch
        self._connected.set()
        if self._first_welcome is not None and not self._first_welcome.done():
            self._first_welcome.set_result(welcome.welcome)
        elif old_epoch:
            self.stats["reconnects"] += 1
            await self._put(Reconnected(attempt, self.epoch, old_epoch != self.epoch))
            await self._resubscribe()
        async for frame in ws:
            await self._on_message(self._decode(frame))

    async def _resubscribe(self) -> None:
        """Subscribes every name and pattern again, resuming each known
        channel from its last seq (the server replays or says it cannot)."""
        resume = {name: pb.ResumePosition(seq=p.last_seq, epoch=p.epoch)
                  for name, p in self._positions.items() if p.epoch}
        for snapshot, rate in dict.fromkeys(self._subscriptions.values()):
            names = [n for n, s in self._subscriptions.items() if s == (snapshot, rate)]
            rid = next(self._ids)
            sub = pb.Subscribe(request_id=rid, channels=names, snapshot=snapshot,
                               conflate_ms=rate)
            for name, pos in resume.items():
                sub.resume[name].CopyFrom(pos)
            await self._send(pb.ClientMessage(subscribe=sub))

    async def _resync(self, channel: str, reason: str) -> None:
        """Drops the channel's position and asks for a fresh snapshot."""
        pos = self._positions.setdefault(channel, _Position())
        pos.resyncing, pos.resync_reason = True, reason
        await self._send(pb.ClientMessage(unsubscribe=pb.Unsubscribe(request_id=next(self._ids), channels=[channel])))
        # the channel keeps the rate of the first subscription covering it
        rate = next((r for n, (_, r) in self._subscriptions.items() if _covers(n, channel)), 0)
        await self._send(pb.ClientMessage(subscribe=pb.Subscribe(
            request_id=next(self._ids), channels=[channel], snapshot=True, conflate_ms=rate)))
        if channel not in self._subscriptions and not any("*" in s for s in self._subscriptions):
            self._subscriptions[channel] = (True, rate)

    async def _on_message(self, msg: pb.ServerMessage) -> None:
        kind = msg.WhichOneof("kind")
        if kind == "event":
            await self._on_event(msg.event)
        elif kind == "subscribed":
            await self._on_subscribed(msg.subscribed)
        elif kind == "lagged":
            lag = msg.lagged
            pos = self._positions.setdefault(lag.channel, _Position(epoch=self.epoch))
            pos.last_seq, pos.snapshot_seq = lag.last_seq, lag.last_seq
            if lag.channel in self.books:
                self.books[lag.channel].valid = False
            await self._put(Lagged(lag.channel, lag.first_seq, lag.last_seq))
        elif kind == "conflated":
            # an announced conflation skip: the next event (last_seq + 1)
            # carries the state; nothing is dropped or resynced
            c = msg.conflated
            pos = self._positions.get(c.channel)
            if pos is not None and not pos.resyncing:
                pos.last_seq, pos.snapshot_seq = max(pos.last_seq, c.last_seq), None
            self.stats["conflated"] += 1
            await self._put(Conflated(c.channel, c.first_seq, c.last_seq))
        elif kind == "error":
            e = msg.error
            err = ServerError(e.request_id, pb.ErrorCode.Name(e.code), e.message, e.channel)
            if e.request_id in self._errors:
                self._errors[e.request_id].append(err)
            await self._put(err)
        elif kind in ("unsubscribed", "channel_list", "pong"):
            answer = getattr(msg, kind)
            fut = self._pending.pop(answer.request_id, None)
            if fut is not None and not fut.done():
                fut.set_result(answer)

    async def _on_subscribed(self, sub: pb.Subscribed) -> None:
        for state in sub.channels:
            pos = self._positions.get(state.channel)
            unchanged = (pos is not None and not pos.resyncing and pos.epoch == state.epoch
                         and pos.last_seq == state.seq)
            if unchanged:
                continue  # subscribed again to a channel held: nothing missed
            if pos is not None and pos.resyncing:
                await self._put(Resnapshot(state.channel, state.seq, state.epoch, pos.resync_reason))
            elif pos is not None and pos.epoch and not state.recovered:
                reason = "new epoch" if pos.epoch != state.epoch else "history window passed"
                await self._put(Resnapshot(state.channel, state.seq, state.epoch, reason))
            fresh = _Position(last_seq=state.seq, epoch=state.epoch)
            if not state.recovered:
                fresh.snapshot_seq = state.seq  # a snapshot may carry this seq
                if state.channel in self.books:
                    self.books[state.channel].valid = False
            self._positions[state.channel] = fresh
        fut = self._pending.pop(sub.request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(sub)

    async def _on_event(self, ev: pb.Event) -> None:
        kind = ev.WhichOneof("payload") or ""
        pos = self._positions.get(ev.channel)
        if pos is not None and pos.epoch != self.epoch and not pos.resyncing:
            # Known from the previous epoch and adopted again by a pattern
            # after a restart: its history is gone, it starts afresh.
            await self._put(Resnapshot(ev.channel, ev.seq, self.epoch, "new epoch"))
            if ev.channel in self.books:
                self.books[ev.channel].valid = False
            pos = self._positions[ev.channel] = _Position(epoch=self.epoch)
            pos.last_seq = ev.seq - 1
        elif pos is None:
            # A channel a pattern adopted: it starts at seq 1, or (history
            # already past seq 1) at its snapshot.
            pos = self._positions[ev.channel] = _Position(epoch=self.epoch)
            if ev.seq != 1:
                if kind in STATE_KINDS:
                    await self._put(Resnapshot(ev.channel, ev.seq, self.epoch, "channel joined after its history start"))
                else:
                    self.stats["gaps"] += 1
                    await self._put(Gap(ev.channel, 1, ev.seq))
        elif pos.resyncing:
            return  # in flight before the resubscribe: the snapshot follows
        elif pos.snapshot_seq is not None and ev.seq == pos.snapshot_seq:
            pass
        elif ev.seq <= pos.last_seq:
            self.stats["duplicates_dropped"] += 1
            return
        elif ev.seq != pos.last_seq + 1:
            self.stats["gaps"] += 1
            await self._put(Gap(ev.channel, pos.last_seq + 1, ev.seq))
            await self._resync(ev.channel, "gap")
            return
        pos.last_seq, pos.snapshot_seq = ev.seq, None
        if self.manage_books and kind in ("book_snapshot", "book_update"):
            book = self.book(ev.channel)
            try:
                book.apply(ev)
                self.stats["checksums_verified"] += 1
            except ChecksumMismatch as mismatch:
                await self._put(Resnapshot(ev.channel, ev.seq, self.epoch, str(mismatch)))
                await self._resync(ev.channel, "checksum mismatch")
                return
        self.stats["events"] += 1
        await self._put(Event(ev.channel, ev.seq, kind, ev.source_time_ns, ev.publish_time_ns, ev))


async def connect(url: str, *subscriptions: Iterable[str], **options) -> Client:
    """Opens a :class:`Client` and subscribes to ``subscriptions``."""
    client = Client(url, **options)
    await client.connect()
    if subscriptions:
        await client.subscribe(*subscriptions)
    return client
