"""The package itself: generated classes match proto/, the book checksum
follows docs/protocol.md section 8, and ``pip install ./clients/python`` works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import tickwire
from tickwire import OrderBook, pb

HERE = Path(__file__).resolve().parents[1]


def test_generated_protobuf_classes_are_not_stale(tmp_path):
    subprocess.run([str(HERE / "regen.sh"), str(tmp_path)], check=True)
    for name in ("tickwire_pb2.py", "tickwire_pb2.pyi"):
        fresh = (tmp_path / name).read_text()
        committed = (HERE / "src" / "tickwire" / "pb" / name).read_text()
        assert fresh == committed, f"{name} is stale: run clients/python/regen.sh"


def test_checksum_of_the_protocol_documents_example():
    assert tickwire.checksum([(100.5, 1.25)], [(100.25, 0.5)], 2, 3) == 524058856


def book_event(seq, kind, bids, asks, checksum, pd=2, sd=3):
    ev = pb.Event(channel="book.t.X-Y", seq=seq)
    msg = getattr(ev, kind)
    msg.bids.extend(pb.Level(price=p, quantity=q) for p, q in bids)
    msg.asks.extend(pb.Level(price=p, quantity=q) for p, q in asks)
    msg.checksum = checksum
    if kind == "book_snapshot":
        msg.price_decimals, msg.size_decimals = pd, sd
    return ev


def test_order_book_applies_updates_and_refuses_a_wrong_checksum():
    book = OrderBook()
    bids, asks = [(100.25, 0.5), (100.0, 2.0)], [(100.5, 1.25), (101.0, 3.0)]
    book.apply(book_event(1, "book_snapshot", bids, asks, tickwire.checksum(asks, bids, 2, 3)))
    assert book.valid and book.depth == 2
    # remove the best bid, add a better ask (the worst ask falls out of depth 2)
    after_bids, after_asks = [(100.0, 2.0)], [(100.4, 1.0), (100.5, 1.25)]
    good = tickwire.checksum(after_asks, after_bids, 2, 3)
    book.apply(book_event(2, "book_update", [(100.25, 0.0)], [(100.4, 1.0)], good))
    assert book.top_bids() == after_bids and book.top_asks() == after_asks
    with pytest.raises(tickwire.ChecksumMismatch):
        book.apply(book_event(3, "book_update", [(99.0, 1.0)], [], good))
    assert not book.valid


def test_pip_install_of_the_package_path_works(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    python = env_dir / "bin" / "python"
    # install from a copy: building in place would leave build/ and
    # *.egg-info in the source tree
    source = tmp_path / "source"
    shutil.copytree(HERE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed copy, not src/
    out = subprocess.run(
        [str(python), "-c", "import tickwire, sys; print(tickwire.__file__); from tickwire import OrderBook, Client"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert str(env_dir) in out.stdout, out.stdout
