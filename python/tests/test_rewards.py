"""allocate_rewards: exact largest-remainder splits of an integer pool."""

from __future__ import annotations

import csv
import io
import json
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poh_holdmetrics._rewards import (InfeasibleCapError, RewardRow, allocate_rewards, format_amount,
                                      write_rewards_csv, write_rewards_json)

holder_ids = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=6)
scores = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
score_maps = st.dictionaries(holder_ids, scores, min_size=1, max_size=40).filter(lambda d: any(v > 0 for v in d.values()))
pools = st.integers(min_value=0, max_value=10**30)


def exact_quota(pool: int, score: float, total: Fraction) -> Fraction:
    return pool * Fraction(score) / total


@given(score_maps, pools)
@settings(max_examples=300, deadline=None)
def test_sums_to_pool_and_proportional_within_one_unit(scores_by_holder, pool):
    rows = allocate_rewards(scores_by_holder, pool)
    assert sum(r.amount for r in rows) == pool
    total = sum(Fraction(s) for s in scores_by_holder.values() if s > 0)
    for r in rows:
        q = exact_quota(pool, r.score, total)
        assert abs(r.amount - q) < 1, (r, q)
        assert r.share == Fraction(r.amount, pool) if pool else r.share == 0
    assert {r.holder_id for r in rows} <= {h for h, s in scores_by_holder.items() if s > 0}


@given(score_maps, pools, st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_deterministic_across_input_orders(scores_by_holder, pool, rnd):
    items = list(scores_by_holder.items())
    first = allocate_rewards(items, pool)
    rnd.shuffle(items)
    assert allocate_rewards(items, pool) == first
    assert allocate_rewards(dict(items), pool) == first


@given(score_maps, pools, st.integers(min_value=0, max_value=10**30))
@settings(max_examples=300, deadline=None)
def test_cap_never_exceeded_when_feasible(scores_by_holder, pool, cap):
    eligible = sum(1 for s in scores_by_holder.values() if s > 0)
    if cap * eligible < pool:
        with pytest.raises(InfeasibleCapError) as e:
            allocate_rewards(scores_by_holder, pool, cap=cap)
        assert e.value.pool == pool and e.value.cap == cap and e.value.holders == eligible
        return
    rows = allocate_rewards(scores_by_holder, pool, cap=cap)
    assert sum(r.amount for r in rows) == pool
    assert all(r.amount <= cap for r in rows)


def test_cap_redistributes_excess_proportionally():
    rows = {r.holder_id: r.amount for r in allocate_rewards({"whale": 98.0, "a": 1.0, "b": 1.0}, 100, cap=40)}
    # whale is capped at 40; the other 60 split 1:1
    assert rows == {"whale": 40, "a": 30, "b": 30}
    # the cascade: capping the whale pushes b over the cap too
    rows = {r.holder_id: r.amount for r in allocate_rewards({"w": 90.0, "b": 9.0, "c": 1.0}, 100, cap=40)}
    assert rows == {"w": 40, "b": 40, "c": 20}


def test_ties_broken_by_holder_id():
    rows = allocate_rewards({"c": 1.0, "a": 1.0, "b": 1.0}, 2)
    assert [(r.holder_id, r.amount) for r in rows] == [("a", 1), ("b", 1), ("c", 0)]


def test_min_score_and_zero_scores_excluded():
    rows = allocate_rewards({"a": 10.0, "b": 5.0, "c": 0.0, "d": 4.99}, 1000, min_score=5)
    assert {r.holder_id: r.amount for r in rows} == {"a": 667, "b": 333}


def test_huge_pool_exact():
    pool = 10**27 + 7
    rows = allocate_rewards({"a": 0.1, "b": 0.2, "c": 0.3}, pool)
    assert sum(r.amount for r in rows) == pool
    # 0.1, 0.2 and 0.3 are exact binary rationals, not decimal tenths: shares follow them
    total = Fraction(0.1) + Fraction(0.2) + Fraction(0.3)
    for r in rows:
        assert abs(r.amount - pool * Fraction(r.score) / total) < 1


def test_rows_unpack_and_inputs():
    from poh_holdmetrics import HoldStat
    stats = [HoldStat("a", 3.0, 3, 1, 0, 1, 0), HoldStat("b", 1.0, 1, 1, 0, 1, 0)]
    (h, score, share, amount), _ = allocate_rewards(stats, 4)
    assert (h, score, share, amount) == ("a", 3.0, Fraction(3, 4), 3)


@pytest.mark.parametrize("bad, err", [
    (({"a": 1.0}, -1), ValueError), (({"a": 1.0}, 1.5), TypeError), (({"a": 1.0}, True), TypeError),
    (({"a": float("nan")}, 10), ValueError), (({"a": -1.0}, 10), ValueError), (({"": 1.0}, 10), ValueError),
    (({"a": 0.0}, 10), ValueError), (([("a", 1.0), ("a", 2.0)], 10), ValueError), (([("a",)], 10), ValueError),
])
def test_bad_input_is_a_clear_error(bad, err):
    with pytest.raises(err) as e:
        allocate_rewards(*bad)
    assert str(e.value)


def test_window_needs_an_aggregator():
    with pytest.raises(ValueError, match="window"):
        allocate_rewards({"a": 1.0}, 10, window=(0, 10))


def test_writers_round_trip_exact_amounts():
    pool = 10**30 + 1
    rows = allocate_rewards({"a": 2.0, "b": 1.0}, pool, cap=None)
    buf = io.StringIO()
    write_rewards_csv(rows, buf, decimals=18)
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert sum(int(r["amount"]) for r in back) == pool
    assert back[0]["amount_decimal"] == format_amount(int(back[0]["amount"]), 18)
    data = json.loads(write_rewards_json(rows, decimals=18))
    assert sum(int(r["amount"]) for r in data) == pool
    assert [Fraction(r["share"]) for r in data] == [r.share for r in rows]
    assert format_amount(1234500, 3) == "1234.500" and format_amount(5, 3) == "0.005"


def test_empty_pool_of_nothing():
    assert allocate_rewards({"a": 0.0}, 0) == []
    assert [r.amount for r in allocate_rewards({"a": 1.0}, 0)] == [0]


# --- exact scores, and the split in the native library --------------------------------------

int_score_maps = st.dictionaries(holder_ids, st.integers(min_value=0, max_value=2**300), min_size=1,
                                 max_size=40).filter(lambda d: any(v > 0 for v in d.values()))


@given(int_score_maps, st.integers(min_value=0, max_value=2**200))
@settings(max_examples=300, deadline=None)
def test_exact_scores_split_exactly(scores_by_holder, pool):
    rows = allocate_rewards(scores_by_holder, pool)
    assert sum(r.amount for r in rows) == pool
    total = sum(s for s in scores_by_holder.values())
    for r in rows:
        assert type(r.score) is int
        assert abs(r.amount - Fraction(pool * r.score, total)) < 1, r


def _native_split_or_skip():
    from poh_holdmetrics import _native
    if not _native.available():
        pytest.skip("the native split needs the native library (the fallback-only suite runs _split alone)")
    from poh_holdmetrics import _rewards
    return _rewards


@given(st.one_of(score_maps, int_score_maps), pools, st.one_of(st.none(), st.integers(0, 10**30)))
@settings(max_examples=400, deadline=None)
def test_native_split_equals_the_python_split(scores_by_holder, pool, cap):
    """poh_allocate (Go) and the pure-Python method (the fallback, and the oracle) give the
    same amounts in the same order, float or exact scores, with or without a cap."""
    r = _native_split_or_skip()
    exact = all(type(s) is int for s in scores_by_holder.values())
    eligible = {h: (s if exact else float(s)) for h, s in scores_by_holder.items() if s > 0}
    if cap is not None and cap * len(eligible) < pool:
        cap = None
    native = r._split_native(eligible, pool, cap, exact)
    assert native is not None
    assert native == r._split(eligible, pool, cap)


def test_native_split_limits_fall_back_to_python():
    r = _native_split_or_skip()
    assert r._split_native({"a": 1, "b": 2}, 2**384, None, True) is None  # the pool beyond 384 bits
    assert r._split_native({"a": 2**384, "b": 2}, 10, None, True) is None  # an exact score beyond it
    assert r._split_native({"a" * 300: 1.0, "b": 2.0}, 10, None, False) is None  # an id the library refuses
    for scores, pool in (({"a": 1, "b": 2}, 2**384 + 5), ({"a": 2**384, "b": 2}, 10**6), ({"a" * 300: 1.0}, 7)):
        rows = allocate_rewards(scores, pool)
        assert sum(x.amount for x in rows) == pool


def test_exact_min_score_cap_and_writers():
    rows = allocate_rewards({"a": 10**30, "b": 5 * 10**29, "c": 0, "d": 10}, 10**6, min_score=100, cap=600_000)
    assert [(x.holder_id, x.amount) for x in rows] == [("a", 600_000), ("b", 400_000)]
    data = json.loads(write_rewards_json(rows))
    assert data[0]["score"] == str(10**30)  # an exact score is printed as the integer it is
    buf = io.StringIO()
    write_rewards_csv(rows, buf)
    assert list(csv.DictReader(io.StringIO(buf.getvalue())))[1]["score"] == str(5 * 10**29)


def test_allocation_from_an_exact_aggregator():
    from conftest import PURE
    if PURE:
        pytest.skip("POH_HOLDMETRICS_PURE=1: Aggregator needs the native library")
    from poh_holdmetrics import Aggregator, HoldEvent
    with Aggregator(exact=True, history=True) as agg:
        agg.record_many_sync([HoldEvent("T", "a", 0, 100, 10**24 + 1), HoldEvent("T", "b", 0, 100, 2 * 10**24),
                              HoldEvent("T", "c", 50, 100, 1)])
        rows = allocate_rewards(agg, 10**18, window=(0, 100))
    scores = {"a": 100 * (10**24 + 1), "b": 200 * 10**24, "c": 50}
    assert {x.holder_id: x.score for x in rows} == scores
    assert sum(x.amount for x in rows) == 10**18
    from poh_holdmetrics._rewards import _split
    assert [(x.holder_id, x.amount) for x in rows] == _split(scores, 10**18, None)
