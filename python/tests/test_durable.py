"""Aggregator(path=...): durable on the daemon's store through the C API. Reopen rebuilds the
same state; one opener per data dir across processes (StoreLockedError naming the path);
kill -9 mid-ingest with fsync="always" loses no acknowledged batch."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys

import pytest

import poh_holdmetrics as phm
from conftest import needs_native
from poh_holdmetrics import HoldEvent
from poh_holdmetrics._tracker import HoldTracker

pytestmark = needs_native

TIMEOUT = 60  # seconds; a hang fails the test instead of the run


@pytest.mark.parametrize("fsync", ["always", "interval", "none"])
async def test_record_close_reopen_gives_the_same_snapshot(tmp_path, fsync):
    d = tmp_path / "data"
    with phm.Aggregator(ttl=1000, path=d, fsync=fsync, history=True) as a:
        assert a.path == str(d)
        await a.record(HoldEvent("POH", "alice", 10, 50, 2.0))
        await a.record_many({"token_id": ["POH", "LP", "POH"], "holder_id": ["bob", "alice", "carol"],
                             "start": [5, 7, 20], "end": [9, None, 30], "weight": [1.0, 0.5, 3.0]})
        t = HoldTracker(a)
        await t.record_start("POH", "dave", at=40)
        await t.record_start("POH", "erin", at=41)
        await t.record_stop("POH", "erin", at=45)
        before = a.snapshot(now=1000)
        windowed = a.snapshot(now=1000, window=(0, 30))
        pair = a.pair("LP", "alice", now=1000)
    assert a.closed
    assert len(before) == 5
    with phm.Aggregator(ttl=1000, path=d, fsync=fsync, history=True) as b:
        assert b.snapshot(now=1000) == before
        assert b.snapshot(now=1000, window=(0, 30)) == windowed
        assert b.pair("LP", "alice", now=1000) == pair
        assert HoldTracker(b).is_open("POH", "dave")  # open holds survive the restart
        await b.record(HoldEvent("POH", "frank", 1, 2))
        after = b.snapshot(now=1000)
    with phm.Aggregator(ttl=1000, path=d, history=True) as c:
        assert c.snapshot(now=1000) == after


def test_second_opener_in_this_process_is_locked_until_close(tmp_path):
    a = phm.Aggregator(path=tmp_path)
    with pytest.raises(phm.StoreLockedError, match="locked") as ei:
        phm.Aggregator(path=tmp_path)
    assert ei.value.path == str(tmp_path)
    assert str(tmp_path) in str(ei.value)
    assert isinstance(ei.value, phm.StoreError) and isinstance(ei.value, phm.HoldMetricsError)
    a.close()
    a.close()  # idempotent
    phm.Aggregator(path=tmp_path).close()


def _open_in_child(path: str, conn) -> None:
    try:
        phm.Aggregator(path=path).close()
        conn.send(("opened", "", ""))
    except phm.HoldMetricsError as e:
        conn.send((type(e).__name__, str(e), getattr(e, "path", "")))


def test_another_process_gets_a_clear_locked_error(tmp_path):
    ctx = mp.get_context("spawn")
    with phm.Aggregator(path=tmp_path) as a:
        a.record_sync(HoldEvent("T", "h", 1, 2))
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_open_in_child, args=(str(tmp_path), child))
        p.start()
        try:
            assert parent.poll(TIMEOUT), "child did not answer"
            name, msg, path = parent.recv()
        finally:
            p.join(TIMEOUT)
            if p.is_alive():
                p.kill()
        assert p.exitcode == 0
        assert name == "StoreLockedError", msg
        assert path == str(tmp_path) and str(tmp_path) in msg and "locked" in msg
    # closed here: now the other process may open it
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_open_in_child, args=(str(tmp_path), child))
    p.start()
    assert parent.poll(TIMEOUT)
    assert parent.recv()[0] == "opened"
    p.join(TIMEOUT)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fsync 'sometimes'"):
        phm.Aggregator(path=tmp_path, fsync="sometimes")
    with pytest.raises(ValueError, match="path"):
        phm.Aggregator(path="")
    f = tmp_path / "file"
    f.write_text("", encoding="utf-8")
    with pytest.raises(phm.StoreError) as ei:
        phm.Aggregator(path=f)
    assert ei.value.path == str(f) and str(f) in str(ei.value)
    # settings must match the stored state
    d = tmp_path / "w"
    with phm.Aggregator(path=d, window=(0, 100)) as a:
        a.record_sync(HoldEvent("T", "h", 1, 2))
    with pytest.raises(phm.StoreError, match="window"):
        phm.Aggregator(path=d, window=(0, 50))


BATCH = 50


def _ingest_until_killed(path: str, conn) -> None:
    """Records batch after batch; sends each batch number once record_many returned."""
    a = phm.Aggregator(path=path, fsync="always")
    i = 0
    while True:
        a.record_many_sync([HoldEvent("POH", f"b{i}", j, j + 10) for j in range(BATCH)])
        conn.send(i)
        i += 1


@pytest.mark.skipif(sys.platform == "win32", reason="Unix only: kill -9 (signal.SIGKILL)")
def test_kill_9_mid_ingest_loses_no_acknowledged_batch(tmp_path):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_ingest_until_killed, args=(str(tmp_path), child))
    p.start()
    child.close()
    acked: list[int] = []
    try:
        while len(acked) < 30:
            assert parent.poll(TIMEOUT), f"child stopped acknowledging after {len(acked)} batches"
            acked.append(parent.recv())
        os.kill(p.pid, signal.SIGKILL)  # mid-ingest: it is recording the next batch
        p.join(TIMEOUT)
        while parent.poll(0):  # acknowledgements sent before it died
            try:
                acked.append(parent.recv())
            except EOFError:
                break
    finally:
        if p.is_alive():
            p.kill()
    assert p.exitcode == -signal.SIGKILL
    assert acked == list(range(len(acked)))
    with phm.Aggregator(path=tmp_path, fsync="always") as a:
        for i in acked:
            row = a.pair("POH", f"b{i}", now=1000)
            assert row is not None, f"acknowledged batch {i} lost"
            assert row.events == BATCH
        # batches are atomic: at most the one in flight got in beyond the acknowledged ones
        rows = a.snapshot(now=1000)
        assert all(r.events == BATCH for r in rows)
        assert len(acked) <= len(rows) <= len(acked) + 1
