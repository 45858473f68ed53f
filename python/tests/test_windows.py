"""Campaign windows and TWAB (issue 6): the shared window vectors on both backends, the
window algebra, the live aggregator against the batch calculation, native == fallback."""

from __future__ import annotations

import json
import math
import struct
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poh_holdmetrics as phm
from conftest import PURE, REPO, needs_native, vector_columns
from poh_holdmetrics import HoldEvent, _pure, _score

WINDOW_VECTORS = json.loads((REPO / "testdata" / "window_vectors.json").read_text(encoding="utf-8"))["vectors"]


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _check_error(ei, want: dict) -> None:
    assert (ei.value.index, ei.value.field, ei.value.reason) == (want["index"], want["field"], want["reason"])
    assert want["field"] in str(ei.value)


@pytest.mark.parametrize("form", ["columns", "events"])
@pytest.mark.parametrize("v", WINDOW_VECTORS, ids=[v["name"] for v in WINDOW_VECTORS])
def test_window_vector(v, form, backend):
    cols = vector_columns(v)
    if form == "columns":
        data = cols
    else:
        data = list(zip(cols["token_id"], cols["holder_id"], cols["start"], cols["end"], cols["weight"]))
    window = tuple(v["window"])
    if "error" in v:
        for f in (lambda: phm.calculate_score(data, now=v["now"], window=window),
                  lambda: phm.twab(data, window, now=v["now"])):
            with pytest.raises(phm.InvalidEventError) as ei:
                f()
            _check_error(ei, v["error"])
        return
    assert bits(phm.calculate_score(data, now=v["now"], window=window)) == bits(v["score"])
    if "twab_error" in v:
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.twab(data, window, now=v["now"])
        _check_error(ei, v["twab_error"])
    else:
        assert bits(phm.twab(data, window, now=v["now"])) == bits(v["twab"])


def test_window_error_texts_match_go(backend):
    evs = [HoldEvent("T", "a", 0, 500)]
    cases = [
        ((200, 100), "window [200, 100): end 100 is before start 200"),
        ((-1, 100), "window [-1, 100): start -1 and end 100 must lie in [0, 253402300799]"),
        ((0, 2**70), f"window [0, {2**70}): start 0 and end {2**70} must lie in [0, 253402300799]"),
    ]
    for w, msg in cases:
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.calculate_score(evs, now=1000, window=w)
        assert str(ei.value) == msg
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.twab(evs, (100, 100), now=1000)
    assert str(ei.value) == "window [100, 100): has no elapsed time at now 1000 (start 100, end 100)"


def test_window_forms(backend):
    evs = [HoldEvent("T", "a", 0, 500, 2.0)]
    utc = timezone.utc
    dt = (datetime.fromtimestamp(100, utc), datetime.fromtimestamp(200, utc))
    assert phm.calculate_score(evs, now=1000, window=dt) == 200.0
    assert phm.calculate_score(evs, now=1000, window=[100.9, 200.2]) == 200.0  # floats floored
    assert phm.calculate_score(evs, now=1000, window=None) == 1000.0
    assert phm.twab(evs, dt, now=1000) == 2.0
    for bad in ((1,), (1, 2, 3), "0,10", 5, (None, 10), (True, 10)):
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.calculate_score(evs, now=1000, window=bad)
        assert ei.value.field == "window" and ei.value.reason == "invalid_type"
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.twab(evs, None, now=1000)  # type: ignore[arg-type]
    assert ei.value.field == "window"


@pytest.mark.parametrize("window", [(5, 5), (0, 0), (10, 20)])
def test_twab_with_no_elapsed_time_is_an_error_not_nan(window, backend):
    """(10, 20) at now = 10: the window has not started yet."""
    for data in ([HoldEvent("T", "a", 0, 500)], {"start": [0], "end": [500]}, []):
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.twab(data, window, now=10)
        assert (ei.value.field, ei.value.reason, ei.value.index) == ("window", "empty_window", -1)


# --- properties ---------------------------------------------------------------------------

TIME = st.integers(0, 10_000)
DYADIC = st.integers(0, 64).map(lambda k: k / 8)  # exact products and sums at these sizes


@st.composite
def events(draw, weights=DYADIC, max_size=30):
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        s = draw(TIME)
        e = draw(st.one_of(st.none(), st.integers(s, 10_000)))
        out.append(HoldEvent(draw(st.sampled_from("TU")), draw(st.sampled_from(["a", "b", "c", "d"])), s, e,
                             draw(weights)))
    return out


def _cols(evs: list[HoldEvent]) -> dict:
    return {"start": [e.start for e in evs], "end": [e.end for e in evs], "weight": [e.weight for e in evs]}


@settings(max_examples=150, deadline=None)
@given(evs=events(), now=TIME, cuts=st.lists(TIME, min_size=3, max_size=3))
def test_window_is_additive(evs, now, cuts):
    """score over [a, c) == score over [a, b) + score over [b, c), exactly (dyadic weights)."""
    a, b, c = sorted(cuts)
    for data in (evs, _cols(evs)):
        whole = phm.calculate_score(data, now=now, window=(a, c))
        assert whole == phm.calculate_score(data, now=now, window=(a, b)) + \
            phm.calculate_score(data, now=now, window=(b, c))
    # and windows [0, t) ∪ [t, MAX] cover the unwindowed score
    assert phm.calculate_score(evs, now=now, window=(0, b)) + \
        phm.calculate_score(evs, now=now, window=(b, _pure.MAX_TIME)) == phm.calculate_score(evs, now=now)


@needs_native
@settings(max_examples=150, deadline=None)
@given(evs=events(weights=st.floats(0, 1e12, allow_nan=False)), now=TIME, cuts=st.lists(TIME, min_size=2, max_size=2))
def test_native_equals_fallback(evs, now, cuts):
    t0, t1 = sorted(cuts)
    native = phm.calculate_score(evs, now=now, window=(t0, t1))
    assert bits(native) == bits(_pure.score_events(evs, now, t0, t1))
    assert bits(phm.calculate_score(_cols(evs), now=now, window=(t0, t1))) == bits(native)
    c = _cols(evs)
    assert bits(native) == bits(_pure.score_rows(c["start"], c["end"], c["weight"], now, None, None, t0, t1))
    if min(t1, now) > t0:
        tw = phm.twab(evs, (t0, t1), now=now)
        assert bits(tw) == bits(native / (min(t1, now) - t0))
        assert bits(phm.twab(_cols(evs), (t0, t1), now=now)) == bits(tw)


@needs_native
@settings(max_examples=60, deadline=None)
@given(evs=events(max_size=40), now=TIME, cuts=st.lists(TIME, min_size=2, max_size=2))
def test_live_window_query_equals_batch(evs, now, cuts):
    """Aggregator(history=True): every holder's windowed row == calculate_score over that
    holder's events, and top_n(window=) is the first rows of that order."""
    t0, t1 = sorted(cuts)
    with phm.Aggregator(history=True) as agg:
        if evs:
            agg.record_many_sync(evs)
        rows = agg.snapshot(now=now, window=(t0, t1))
        want = {h: phm.calculate_score([e for e in evs if e.holder_id == h], now=now, window=(t0, t1))
                for h in {e.holder_id for e in evs}}
        assert {r.holder_id: r.score for r in rows} == want
        assert [r.score for r in rows] == sorted(want.values(), reverse=True)
        assert agg.top_n(2, now=now, window=(t0, t1)) == rows[:2]
        for r in agg.top_n(10, now=now, token="T", window=(t0, t1)):
            assert r.score == phm.calculate_score([e for e in evs if e.holder_id == r.holder_id and
                                                   e.token_id == "T"], now=now, window=(t0, t1))


@needs_native
@settings(max_examples=60, deadline=None)
@given(evs=events(max_size=40), cuts=st.lists(TIME, min_size=2, max_size=2))
def test_campaign_window_equals_batch(evs, cuts):
    """Aggregator(window=w) scores each holder as calculate_score(its events, now, w) once
    every recorded hold has ended by now (closed holds are credited when recorded)."""
    t0, t1 = sorted(cuts)
    now = 10_000
    with phm.Aggregator(window=(t0, t1)) as agg:
        assert agg.window == (t0, t1) and not agg.history
        if evs:
            agg.record_many_sync(evs)
        got = {r.holder_id: r.score for r in agg.snapshot(now=now)}
        want = {h: phm.calculate_score([e for e in evs if e.holder_id == h], now=now, window=(t0, t1))
                for h in {e.holder_id for e in evs}}
        assert got == want


@needs_native
def test_window_queries_need_history():
    with phm.Aggregator() as agg:
        agg.record_sync(HoldEvent("T", "a", 0, 10))
        for q in (lambda: agg.snapshot(window=(0, 5)), lambda: agg.top_n(3, window=(0, 5))):
            with pytest.raises(phm.NoHistoryError, match="history=True"):
                q()
        with pytest.raises(phm.InvalidEventError):  # the window is checked first, as in core
            agg.snapshot(window=(5, 0))
        assert agg.snapshot(now=100)[0].score == 10.0
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.Aggregator(window=(10, 0))
    assert ei.value.field == "window"


@needs_native
def test_window_query_after_close_hold():
    with phm.Aggregator(history=True) as agg:
        agg.record_sync(HoldEvent("T", "a", 100))
        agg.close_hold("T", "a", at=300)
        (row,) = agg.snapshot(now=1000, window=(150, 250))
        assert (row.score, row.total_seconds, row.open_holds) == (100.0, 100, 0)


@needs_native
def test_allocate_rewards_from_a_windowed_aggregator():
    with phm.Aggregator(history=True) as agg:
        agg.record_many_sync([HoldEvent("T", "a", 0, 100), HoldEvent("T", "b", 50, 150, 3.0),
                              HoldEvent("T", "c", 200, 300)])
        rows = phm.allocate_rewards(agg, 10**27, window=(0, 100))
        # a: 100, b: 50 x 3 = 150, c: outside the window
        assert [(r.holder_id, r.amount) for r in rows] == [("b", 6 * 10**26), ("a", 4 * 10**26)]
        assert sum(r.amount for r in rows) == 10**27
    with phm.Aggregator() as plain, pytest.raises(phm.NoHistoryError):
        phm.allocate_rewards(plain, 100, window=(0, 100))


def test_fallback_matches_core_formula_on_edges():
    """held() edge cases, on the fallback directly: start == t1, end == t0, t0 > now."""
    evs = [HoldEvent("T", "a", 200, 300), HoldEvent("T", "a", 0, 100), HoldEvent("T", "a", 50)]
    assert _pure.score_events(evs, 1000, 100, 200) == 100.0
    assert _pure.score_events(evs, 40, 100, 200) == 0.0
    assert math.isfinite(_pure.score_events([], 10, 5, 5))
    assert _score.resolve_window(None) is None
