"""poh_holdmetrics.storage.MongoStorage (the seed's interface) against a real MongoDB wire
protocol server: the FerretDB v1.24.2 binary (SQLite backend) that scripts/build-dbserver.sh
builds, started here on a free loopback port. pymongo is an optional extra: without it these
tests check the error that says so, and `make test-storage` runs the rest in a venv with it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import poh_holdmetrics as phm
from poh_holdmetrics.storage import HoldStat, MongoStorage

REPO = Path(__file__).resolve().parents[2]
FERRETDB = Path(os.environ.get("FERRETDB", REPO / "build" / "dbservers" / "ferretdb-v1.24.2" / "ferretdb"))

try:
    import pymongo  # noqa: F401

    HAVE_PYMONGO = True
except ImportError:
    HAVE_PYMONGO = False

needs_pymongo = pytest.mark.skipif(not HAVE_PYMONGO, reason="pymongo (the 'mongodb' extra) is not installed in this "
                                   "venv; make test-storage runs these tests in one that has it")


@pytest.mark.skipif(HAVE_PYMONGO, reason="pymongo is installed: the missing-dependency error cannot happen")
async def test_missing_pymongo_says_what_to_install():
    with pytest.raises(ImportError, match=r"pip install 'poh-holdmetrics\[mongodb\]'"):
        MongoStorage()


def test_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="inside a running event loop"):
        MongoStorage()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ferretdb(tmp_path_factory: pytest.TempPathFactory):
    """A FerretDB server on loopback; its mongodb:// URL (no database)."""
    if not HAVE_PYMONGO:
        pytest.skip("pymongo is not installed")
    if not FERRETDB.exists():
        pytest.skip(f"no FerretDB binary at {FERRETDB}: build it with scripts/build-dbserver.sh ferretdb "
                    "(make test-storage does)")
    d = tmp_path_factory.mktemp("ferretdb")
    for _ in range(3):  # a free port may be taken before the server binds it
        port = _free_port()
        proc = subprocess.Popen([str(FERRETDB), "--handler=sqlite", f"--sqlite-url=file:{d}/",
                                 f"--state-dir={d}", f"--listen-addr=127.0.0.1:{port}",
                                 f"--debug-addr=127.0.0.1:{_free_port()}", "--telemetry=disable",
                                 "--log-level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("FerretDB did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
    yield f"mongodb://127.0.0.1:{port}"
    proc.kill()
    proc.wait(10)


@pytest.fixture
async def storage(ferretdb, monkeypatch, request):
    monkeypatch.setenv("MONGODB_URL", ferretdb)
    monkeypatch.setenv("MONGODB_DB", "t_" + request.node.name.replace("[", "_").replace("]", "")[:40])
    s = MongoStorage()
    await s.purge()
    yield s
    await s.close()


T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@needs_pymongo
async def test_stats_are_closed_seconds_times_weight_per_holder(storage):
    await storage.save_event(phm.HoldEvent("T", "alice", T0, T0 + timedelta(seconds=100), 2.0))
    await storage.save_event({"token_id": "U", "holder_id": "alice", "start": T0, "end": T0 + timedelta(seconds=10),
                              "weight": None})  # None: 1.0, as the seed
    await storage.save_event({"token_id": "T", "holder_id": "bob", "start": 1_700_000_000, "end": 1_700_000_050,
                              "weight": 0.5})
    await storage.save_event(phm.HoldEvent("T", "carol", T0))  # open: no score yet
    stats = await storage.get_stats()
    assert stats == [HoldStat("alice", 210.0), HoldStat("bob", 25.0)]


@needs_pymongo
async def test_documents_written_without_the_precomputed_product_still_count(storage):
    """A document as the seed stored it (no seconds / weighted_seconds) is scored in Python:
    FerretDB v1 cannot $subtract or $multiply in an aggregation."""
    await storage._events.insert_one({"token_id": "T", "holder_id": "dave", "start": T0,
                                      "end": T0 + timedelta(seconds=40), "weight": 3.0})
    await storage.save_event(phm.HoldEvent("T", "dave", T0, T0 + timedelta(seconds=1), 1.0))
    assert await storage.get_stats() == [HoldStat("dave", 121.0)]


@needs_pymongo
async def test_invalid_events_are_refused_and_not_saved(storage):
    with pytest.raises(phm.InvalidEventError, match="weight"):
        await storage.save_event({"token_id": "T", "holder_id": "h", "start": T0, "end": None, "weight": -1.0})
    with pytest.raises(phm.InvalidEventError, match="end"):
        await storage.save_event({"token_id": "T", "holder_id": "h", "start": 100, "end": 50, "weight": 1.0})
    assert await storage._events.count_documents({}) == 0


@needs_pymongo
async def test_purge_and_env_names(ferretdb, monkeypatch):
    monkeypatch.delenv("MONGODB_URL", raising=False)
    monkeypatch.setenv("MONGODB_URI", ferretdb)  # the other name the seed read
    monkeypatch.delenv("MONGODB_DB", raising=False)
    s = MongoStorage()
    try:
        assert (s.url, s.db_name) == (ferretdb, "holdmetrics")
        await s.purge()
        await s.save_event(phm.HoldEvent("T", "erin", 0, 30, 1.0))
        assert await s.get_stats() == [HoldStat("erin", 30.0)]
        await s.purge()
        assert await s.get_stats() == []
    finally:
        await s.close()


@needs_pymongo
async def test_concurrent_saves(storage):
    await asyncio.gather(*(storage.save_event(phm.HoldEvent("T", f"h{i % 7}", 0, 10 + i, 1.0)) for i in range(70)))
    stats = await storage.get_stats()
    assert len(stats) == 7
    assert sum(s.weighted_score for s in stats) == sum(10 + i for i in range(70))
