"""Fixtures: the real tickwire server (the binary named by $TICKWIRE_BIN, or
target/debug/tickwire) on a free loopback port, and a TCP proxy whose
connections a test can cut (a network drop without touching the server)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def tickwire_bin() -> str:
    path = os.environ.get("TICKWIRE_BIN") or str(ROOT / "target" / "debug" / "tickwire")
    if not Path(path).exists():
        pytest.fail(f"no tickwire binary at {path}: run `cargo build` (or set TICKWIRE_BIN)")
    return path


class Server:
    """One tickwire process; ``addr`` is where it listens."""

    def __init__(self, *args: str, listen: str = "127.0.0.1:0") -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            [tickwire_bin(), "serve", "--listen", listen, *self.args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        ready = threading.Event()
        self.addr = ""

        def drain() -> None:  # keep reading, or a full pipe would block the server
            for line in self.proc.stderr:
                self.log.append(line)
                if not self.addr and "listening on " in line:
                    self.addr = line.split("listening on ")[1].split()[0].strip()
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or not self.addr:
            self.kill()
            raise RuntimeError("tickwire did not start:\n" + "".join(self.log))

    @property
    def url(self) -> str:
        return f"ws://{self.addr}/ws"

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://{self.addr}{path}", timeout=10) as r:
            return json.load(r)

    def publish(self, key: str, event: dict) -> dict:
        req = urllib.request.Request(
            f"http://{self.addr}/publish", data=json.dumps(event).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


@pytest.fixture
def server_factory():
    started: list[Server] = []

    def start(*args: str, listen: str = "127.0.0.1:0") -> Server:
        s = Server(*args, listen=listen)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


class Proxy:
    """Forwards loopback TCP to ``target``; :meth:`cut` drops every
    connection (the client sees a network failure, the server a reset)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.tasks: set[asyncio.Task] = set()
        self.writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def _accept(self, reader, writer) -> None:
        self.connections += 1
        up_r, up_w = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_w]

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        for t in (pipe(reader, up_w), pipe(up_r, writer)):
            task = asyncio.create_task(t)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()
        for t in list(self.tasks):
            t.cancel()
