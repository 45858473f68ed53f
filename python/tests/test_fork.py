"""fork safety: after fork, calculate_score falls back with one warning, native objects
raise ForkedProcessError naming spawn/forkserver, and nothing hangs."""

from __future__ import annotations

import multiprocessing as mp
import sys
import warnings

import pytest

import poh_holdmetrics as phm
from conftest import needs_native

pytestmark = needs_native
TIMEOUT = 60


def _child_after_fork(agg: phm.Aggregator, q) -> None:
    out = {}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out["score1"] = phm.calculate_score([phm.HoldEvent("T", "a", 0, 10)], now=100)
        out["score2"] = phm.calculate_score({"start": [0], "end": [4]}, now=100)
        out["warnings"] = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    out["backend"] = phm.backend
    try:
        agg.snapshot()
        out["agg"] = "no error"
    except phm.ForkedProcessError as e:
        out["agg"] = str(e)
    try:
        phm.Aggregator()
        out["new"] = "no error"
    except phm.ForkedProcessError as e:
        out["new"] = str(e)
    q.put(out)
    # Exiting runs the aggregator's finalizer: it must not call into Go here.


@pytest.mark.skipif(sys.platform == "win32", reason="Unix only: Windows has no fork")
def test_fork_child_falls_back_and_never_hangs():
    agg = phm.Aggregator()
    agg.record_sync(phm.HoldEvent("T", "a", 0, 1))
    assert phm.backend == "native"
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (the Go runtime's)
        p = ctx.Process(target=_child_after_fork, args=(agg, q))
        p.start()
    out = q.get(timeout=TIMEOUT)
    p.join(TIMEOUT)
    if p.is_alive():
        p.kill()
        pytest.fail("forked child hung")
    assert p.exitcode == 0
    assert out["score1"] == 10.0 and out["score2"] == 4.0
    assert len(out["warnings"]) == 1 and "fork" in out["warnings"][0]
    assert out["backend"] == "python"
    for msg in (out["agg"], out["new"]):
        assert "spawn" in msg and "forkserver" in msg
    # The parent is unaffected.
    assert agg.snapshot(now=10)[0].score == 1.0
    agg.close()


def _child_native(q) -> None:
    with phm.Aggregator() as a:
        a.record_sync(phm.HoldEvent("T", "a", 0, 3))
        q.put((phm.backend, a.snapshot(now=10)[0].score))


@pytest.mark.parametrize("method", ["spawn", pytest.param("forkserver", marks=pytest.mark.skipif(
    sys.platform == "win32", reason="Unix only: Windows has no forkserver start method"))])
def test_spawn_and_forkserver_work_fully(method):
    phm.calculate_score([], now=1)  # the parent has the library loaded
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_child_native, args=(q,))
    p.start()
    got = q.get(timeout=TIMEOUT)
    p.join(TIMEOUT)
    assert got == ("native", 3.0)
    assert p.exitcode == 0
