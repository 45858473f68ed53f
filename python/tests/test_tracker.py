"""HoldTracker: start/stop on the aggregator's open-hold state, errors for a double start
and a stop without a start, complete events."""

from __future__ import annotations

import pytest

from conftest import needs_native
from poh_holdmetrics import HoldEvent, InvalidEventError, NoOpenHoldError
from poh_holdmetrics._tracker import HoldAlreadyOpenError, HoldTracker

pytestmark = needs_native


async def test_open_hold_counts_up_to_now_then_stop_fixes_it(agg):
    t = HoldTracker(agg)
    ev = await t.record_start("POH", "alice", weight=2.0, at=1000)
    assert ev == HoldEvent("POH", "alice", 1000, None, 2.0)
    assert t.is_open("POH", "alice")
    # the hold lives in the aggregator: a snapshot counts it up to `now`
    [row] = agg.snapshot(now=1100)
    assert (row.holder_id, row.score, row.open_holds) == ("alice", 200.0, 1)
    assert agg.snapshot(now=1500)[0].score == 1000.0
    assert await t.record_stop("POH", "alice", at=1300) == 1
    assert not t.is_open("POH", "alice")
    [row] = agg.snapshot(now=5000)
    assert (row.score, row.total_seconds, row.open_holds, row.events) == (600.0, 300, 0, 1)


async def test_second_start_of_an_open_pair_is_an_error(agg):
    t = HoldTracker(agg)
    await t.record_start("POH", "alice", at=10)
    with pytest.raises(HoldAlreadyOpenError, match="'POH', 'alice'.*already has an open hold") as ei:
        await t.record_start("POH", "alice", at=20)
    assert (ei.value.token_id, ei.value.holder_id) == ("POH", "alice")
    assert agg.snapshot(now=30)[0].open_holds == 1  # nothing recorded by the failed start
    # other pairs are independent
    await t.record_start("POH", "bob", at=20)
    await t.record_start("LP", "alice", at=20)
    assert {(r.holder_id, r.open_holds) for r in agg.snapshot(now=30)} == {("alice", 2), ("bob", 1)}
    # after a stop, the pair can start again
    await t.record_stop("POH", "alice", at=25)
    await t.record_start("POH", "alice", at=26)


async def test_a_hold_opened_by_another_writer_counts_as_open(agg):
    t = HoldTracker(agg)
    await agg.record(HoldEvent("POH", "carol", 5))
    with pytest.raises(HoldAlreadyOpenError):
        await t.record_start("POH", "carol", at=6)
    assert await t.record_stop("POH", "carol", at=9) == 1


async def test_stop_without_start_is_an_error(agg):
    t = HoldTracker(agg)
    with pytest.raises(NoOpenHoldError, match=r"record_stop\('POH', 'dave'\): no open hold"):
        await t.record_stop("POH", "dave", at=10)
    await t.record_start("POH", "dave", at=10)
    await t.record_stop("POH", "dave", at=20)
    with pytest.raises(NoOpenHoldError):  # already stopped
        await t.record_stop("POH", "dave", at=30)
    assert len(agg) == 1


async def test_bad_values_are_rejected_before_anything_is_recorded(agg):
    t = HoldTracker(agg)
    with pytest.raises(InvalidEventError) as ei:
        await t.record_start("", "alice", at=10)
    assert ei.value.field == "token_id"
    with pytest.raises(InvalidEventError) as ei:
        await t.record_start("POH", "alice", weight=-1.0, at=10)
    assert ei.value.field == "weight"
    assert len(agg) == 0
    await t.record_start("POH", "alice", at=100)
    with pytest.raises(InvalidEventError):  # a stop before the start
        await t.record_stop("POH", "alice", at=50)
    assert t.is_open("POH", "alice")


async def test_wall_clock_default_and_datetimes(agg):
    from datetime import datetime, timezone
    t = HoldTracker(agg)
    ev = await t.record_start("POH", "erin")
    import time
    assert abs(ev.start - time.time()) < 60
    await t.record_stop("POH", "erin")  # now >= start
    ev = await t.record_start("POH", "frank", at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert ev.start == 1735689600


async def test_record_complete_events(agg):
    t = HoldTracker(agg)
    await t.record(HoldEvent("POH", "gina", 0, 50, 3.0))
    await t.record(HoldEvent("POH", "gina", 100, 110))
    [row] = agg.snapshot(now=1000)
    assert (row.score, row.events, row.open_holds) == (160.0, 2, 0)
    assert not t.is_open("POH", "gina")
    assert t.aggregator is agg


async def test_start_check_is_one_pair_lookup_not_a_scan(agg, monkeypatch):
    """The "already open?" check of record_start is one O(1) pair lookup: it never reads a
    ranking, a snapshot or the holder count, however many holders the aggregator has."""
    await agg.record_many([HoldEvent("POH", f"h{i}", 0, 10) for i in range(2000)])
    calls: dict[str, int] = {"pair": 0}
    cls = type(agg)

    def forbidden(name):
        def f(*a, **k):
            raise AssertionError(f"record_start called {name}")
        return f

    for name in ("top_n", "snapshot", "__len__"):
        monkeypatch.setattr(cls, name, forbidden(name))
    real_pair = cls.pair

    def counting_pair(self, *a, **k):
        calls["pair"] += 1
        return real_pair(self, *a, **k)

    monkeypatch.setattr(cls, "pair", counting_pair)
    t = HoldTracker(agg)
    await t.record_start("POH", "h7", at=20)       # a known holder, pair closed
    await t.record_start("POH", "newbie", at=20)   # an unknown holder
    with pytest.raises(HoldAlreadyOpenError):
        await t.record_start("POH", "h7", at=30)
    assert calls["pair"] == 3
