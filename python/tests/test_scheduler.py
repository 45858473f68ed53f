"""Scheduler: both loops keep running (>= 3 cycles each), sync and async callbacks, a
failing callback is logged and the loop goes on, start/stop is prompt and leaves no task."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from conftest import needs_native
from poh_holdmetrics import HoldEvent
from poh_holdmetrics._config import load_settings
from poh_holdmetrics._scheduler import Scheduler

pytestmark = needs_native

INTERVAL = 0.01
TIMEOUT = 10  # a bound, never reached when the loops work


class Counter:
    """Counts calls and lets a test await "n calls" without sleeping."""

    def __init__(self) -> None:
        self.n = 0
        self.args: list = []
        self._cond = asyncio.Condition()

    async def hit(self, arg) -> None:
        async with self._cond:
            self.n += 1
            self.args.append(arg)
            self._cond.notify_all()

    async def reached(self, n: int) -> None:
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: self.n >= n), TIMEOUT)


def scheduler_tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("poh-scheduler")}


async def test_both_loops_keep_running_async_callbacks():
    from poh_holdmetrics import Aggregator
    with Aggregator(ttl=1) as agg:
        await agg.record(HoldEvent("POH", "alice", 0, 10))
        collects, gcs = Counter(), Counter()
        async with Scheduler(agg, collect_interval=INTERVAL, gc_interval=INTERVAL, on_collect=collects.hit,
                             on_gc=gcs.hit) as s:
            assert len(scheduler_tasks()) == 2
            await collects.reached(3)
            await gcs.reached(3)
        assert s.collect_cycles >= 3 and s.gc_cycles >= 3
        assert collects.args[0][0].holder_id == "alice"
        assert all(isinstance(n, int) for n in gcs.args)  # holders dropped per cycle
        assert not s.running and not scheduler_tasks()


async def test_sync_callback_and_last_snapshot(agg):
    await agg.record(HoldEvent("POH", "bob", 0, 5))
    seen: list[int] = []
    done = asyncio.Event()

    def on_collect(rows):  # a plain function
        seen.append(len(rows))
        if len(seen) >= 3:
            done.set()

    async with Scheduler(agg, collect_interval=INTERVAL, gc_interval=None, on_collect=on_collect) as s:
        await asyncio.wait_for(done.wait(), TIMEOUT)
        assert len(scheduler_tasks()) == 1  # gc loop disabled
    assert seen[:3] == [1, 1, 1]
    assert s.last_snapshot is not None and s.last_snapshot[0].holder_id == "bob"


async def test_failing_callbacks_are_logged_and_the_loop_goes_on(agg, caplog):
    calls = Counter()

    async def boom(rows):
        await calls.hit(rows)
        raise RuntimeError("callback failed on purpose")

    def boom_gc(n):
        raise ValueError("gc callback failed on purpose")

    caplog.set_level(logging.ERROR, logger="poh_holdmetrics.scheduler")
    async with Scheduler(agg, collect_interval=INTERVAL, gc_interval=INTERVAL, on_collect=boom, on_gc=boom_gc) as s:
        await calls.reached(4)
    assert s.errors >= 4
    msgs = [r.getMessage() for r in caplog.records]
    assert any("collect cycle failed" in m for m in msgs)
    assert any(r.exc_info and "callback failed on purpose" in str(r.exc_info[1]) for r in caplog.records)


class FlakyAggregator:
    """Every other snapshot() and gc() raises: the library call itself failing."""

    def __init__(self, agg) -> None:
        self.agg = agg
        self.snapshots = self.gcs = 0

    def snapshot(self):
        self.snapshots += 1
        if self.snapshots % 2:
            raise OSError("snapshot failed on purpose")
        return self.agg.snapshot()

    def gc(self):
        self.gcs += 1
        if self.gcs % 2:
            raise OSError("gc failed on purpose")
        return 0


async def test_a_failing_aggregator_call_does_not_end_the_loop(agg):
    collects, gcs = Counter(), Counter()
    flaky = FlakyAggregator(agg)
    async with Scheduler(flaky, collect_interval=INTERVAL, gc_interval=INTERVAL, on_collect=collects.hit,
                         on_gc=gcs.hit) as s:
        await collects.reached(3)  # successes between the failures
        await gcs.reached(3)
    assert s.errors >= 6


async def test_stop_is_prompt_with_long_intervals(agg):
    s = Scheduler(agg, collect_interval=3600, gc_interval=3600)
    await s.start()
    assert s.running and len(scheduler_tasks()) == 2
    t0 = time.monotonic()
    await s.stop()
    assert time.monotonic() - t0 < 1.0
    assert not scheduler_tasks()
    await s.stop()  # idempotent
    await s.start()  # restartable
    with pytest.raises(RuntimeError, match="already started"):
        await s.start()
    await s.stop()
    assert not scheduler_tasks()


async def test_body_exception_propagates_and_stops_the_loops(agg):
    with pytest.raises(KeyError):  # as it is, not inside an ExceptionGroup
        async with Scheduler(agg, collect_interval=INTERVAL, gc_interval=INTERVAL):
            raise KeyError("from the body")
    assert not scheduler_tasks()


async def test_run_until_cancelled(agg):
    collects = Counter()
    s = Scheduler(agg, collect_interval=INTERVAL, gc_interval=None, on_collect=collects.hit)
    task = asyncio.create_task(s.run())
    await collects.reached(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not s.running and not scheduler_tasks()


def test_intervals_are_validated_and_come_from_settings(agg):
    with pytest.raises(ValueError, match="collect_interval"):
        Scheduler(agg, collect_interval=0)
    with pytest.raises(ValueError, match="gc_interval"):
        Scheduler(agg, gc_interval=-1)
    s = Scheduler.from_settings(agg, load_settings(env={}, collect_interval="250ms", gc_interval="2m"))
    assert (s.collect_interval, s.gc_interval) == (0.25, 120.0)


def test_service_quickstart_runs_as_written(tmp_path):
    """examples/service_quickstart.py (tracker + scheduler + exporter), which the README
    shows verbatim, runs and prints what its comments say."""
    import re
    import subprocess
    import sys

    from conftest import REPO
    example = REPO / "examples" / "service_quickstart.py"
    code = example.read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8") if (REPO / "README.md").exists() else ""
    if "HoldTracker(agg)" in readme:  # once pasted into the README, it must stay identical
        assert code in re.findall(r"```python\n(.*?)```", readme, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         check=True).stdout.splitlines()
    assert re.fullmatch(r"129600000\.0 http://127\.0\.0\.1:\d+/metrics", out[-1])
    assert out[:-1] and set(out[:-1]) == {"[('0xa11ce', 1)]"}  # snapshots taken while the hold was open
