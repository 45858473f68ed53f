"""calculate_score: columnar inputs of every kind, and property-based parity of the backends."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poh_holdmetrics as phm
from conftest import PURE, needs_native
from poh_holdmetrics import HoldEvent, _score

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

NOW = 100
# The README example: 20 + 50 + 10 + 0 = 80.
START = [0, 50, 90, 120]
END = [10, None, 150, None]
WEIGHT = [2.0, 1.0, 1.0, 3.0]
TOK = ["T"] * 4
HOL = ["alice", "bob", "bob", "carol"]


def test_event_list(backend):
    evs = [HoldEvent(t, h, s, e, w) for t, h, s, e, w in zip(TOK, HOL, START, END, WEIGHT)]
    assert phm.calculate_score(evs, now=NOW) == 80.0
    assert phm.calculate_score(iter(evs), now=NOW) == 80.0
    assert phm.calculate_score([], now=NOW) == 0.0
    assert phm.calculate_score([{"token_id": "T", "holder_id": "a", "start": 0}], now=NOW) == 100.0


def test_dict_of_lists(backend):
    assert phm.calculate_score({"start": START, "end": END, "weight": WEIGHT}, now=NOW) == 80.0
    assert phm.calculate_score({"start": START, "end": END, "weight": WEIGHT, "token_id": TOK,
                                "holder_id": HOL}, now=NOW) == 80.0
    assert phm.calculate_score({"start": [0.5, 50.9], "end": [10.2, None]}, now=NOW) == 60.0
    dt = [datetime.fromtimestamp(s, timezone.utc) for s in START]
    assert phm.calculate_score({"start": dt, "end": END, "weight": WEIGHT}, now=NOW) == 80.0


def test_numpy_and_masked(backend):
    start = np.array(START, dtype=np.int64)
    end = np.ma.masked_array([10, 0, 150, 0], mask=[False, True, False, True])
    w = np.array(WEIGHT)
    assert phm.calculate_score({"start": start, "end": end, "weight": w}, now=NOW) == 80.0
    # Other dtypes: int32, float times (floored), datetime64 with NaT as open.
    assert phm.calculate_score({"start": start.astype(np.int32), "end": end, "weight": w.astype(np.float32)},
                               now=NOW) == 80.0
    dt = np.array(START, dtype="datetime64[s]").astype("datetime64[ns]")
    dend = np.array(["1970-01-01T00:00:10", "NaT", "1970-01-01T00:02:30", "NaT"], dtype="datetime64[ns]")
    assert phm.calculate_score({"start": dt, "end": dend, "weight": w}, now=NOW) == 80.0
    assert phm.calculate_score({"start": start + 0.75, "end": end, "weight": w}, now=NOW) == 80.0


def test_pandas_with_na_and_nat(backend):
    df = pd.DataFrame({"start": START, "end": pd.array(END, dtype="Int64"), "weight": WEIGHT,
                       "token_id": TOK, "holder_id": HOL})
    assert phm.calculate_score(df, now=NOW) == 80.0
    df2 = pd.DataFrame({"start": pd.to_datetime(START, unit="s"),
                        "end": pd.to_datetime([10, None, 150, None], unit="s"), "weight": WEIGHT})
    assert phm.calculate_score(df2, now=NOW) == 80.0
    df3 = pd.DataFrame({"start": START, "end": [10.0, np.nan, 150.0, np.nan], "weight": WEIGHT})
    assert phm.calculate_score(df3, now=NOW) == 80.0


def test_pyarrow_with_nulls(backend):
    t = pa.table({"start": pa.array(START, pa.int64()), "end": pa.array(END, pa.int64()),
                  "weight": pa.array(WEIGHT), "token_id": TOK, "holder_id": pa.array(HOL, pa.large_string())})
    assert phm.calculate_score(t, now=NOW) == 80.0
    assert phm.calculate_score(t.slice(1), now=NOW) == 60.0  # sliced: offsets rebased
    chunked = pa.concat_tables([t.slice(0, 2), t.slice(2)])
    assert phm.calculate_score(chunked, now=NOW) == 80.0
    ts = pa.table({"start": pa.array(START, pa.timestamp("s")), "end": pa.array([None if e is None else e * 1000 for e in END], pa.timestamp("ms")),
                   "weight": WEIGHT})
    assert phm.calculate_score(ts, now=NOW) == 80.0
    assert phm.calculate_score(t.to_batches()[0], now=NOW) == 80.0


def test_columnar_errors(backend):
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.calculate_score({"end": [1]}, now=NOW)
    assert ei.value.field == "start"
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.calculate_score({"start": [1, 2], "weight": [1.0]}, now=NOW)
    assert ei.value.field == "weight" and ei.value.index == -1
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.calculate_score({"start": np.array([0.0, np.inf]), "end": [1, None]}, now=NOW)
    assert (ei.value.index, ei.value.field) == (1, "start")
    with pytest.raises(phm.InvalidEventError) as ei:  # null weight = NaN: rejected, not 1.0
        phm.calculate_score(pa.table({"start": [0, 1], "weight": pa.array([1.0, None])}), now=NOW)
    assert (ei.value.index, ei.value.field, ei.value.reason) == (1, "weight", "not_finite")
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.calculate_score({"start": [0, 1], "holder_id": ["a", None]}, now=NOW)
    assert (ei.value.index, ei.value.field, ei.value.reason) == (1, "holder_id", "empty")
    with pytest.raises(phm.InvalidEventError) as ei:
        phm.calculate_score([HoldEvent("T", "a", 0), 42], now=NOW)
    assert (ei.value.index, ei.value.reason) == (1, "invalid_type")


@needs_native
def test_numpy_buffers_are_not_copied(monkeypatch):
    """The native path hands numpy's own buffers to the library (ffi.from_buffer)."""
    start = np.arange(1000, dtype=np.int64)
    w = np.ones(1000)
    seen = []
    real = _score.c_columns

    def spy(ffi, cols):
        seen.append((cols.start, cols.weight))
        return real(ffi, cols)

    monkeypatch.setattr(_score, "c_columns", spy)
    phm.calculate_score({"start": start, "weight": w}, now=2000)
    assert seen[0][0] is start and seen[0][1] is w


# --- property-based parity ----------------------------------------------------------------

times = st.integers(0, 253402300799)
small_times = st.integers(0, 10**6)
weights = st.one_of(st.floats(0, 1e200, allow_nan=False), st.floats(0, 10), st.just(0.0), st.just(1e16))


@st.composite
def events(draw, t=small_times):
    start = draw(t)
    end = draw(st.one_of(st.none(), st.integers(start, start + 10**6)))
    return HoldEvent(draw(st.sampled_from(["T", "U"])), draw(st.text(min_size=1, max_size=4)), start, end,
                     draw(weights))


def fallback(evs, now, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(_score, "_native_or_none", lambda: None)
        return phm.calculate_score(evs, now=now)


@needs_native
@settings(max_examples=150, deadline=None)
@given(st.lists(events(), max_size=40), small_times)
def test_parity_random_events(evs, now):
    import pytest as _pt
    mp = _pt.MonkeyPatch()
    try:
        native = phm.calculate_score(evs, now=now)
        pure = fallback(evs, now, mp)
    finally:
        mp.undo()
    assert math.copysign(1, native) == math.copysign(1, pure) and native == pure
    terms = [max(0, min(e.end if e.end is not None else now, now) - e.start) * e.weight for e in evs]
    exact = math.fsum(terms)
    assert abs(native - exact) <= 4 * math.ulp(exact) + 0.0, (native, exact)


@st.composite
def maybe_bad_rows(draw):
    n = draw(st.integers(1, 6))
    ids = st.one_of(st.text(max_size=3), st.binary(max_size=3), st.just("x" * 257))
    t = st.integers(-5, 253402300805)
    w = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(-1.0), st.just(2e200))
    return {"token_id": draw(st.lists(ids, min_size=n, max_size=n)),
            "holder_id": draw(st.lists(ids, min_size=n, max_size=n)),
            "start": draw(st.lists(t, min_size=n, max_size=n)),
            "end": draw(st.lists(st.one_of(st.none(), t), min_size=n, max_size=n)),
            "weight": draw(st.lists(w, min_size=n, max_size=n))}


@needs_native
@settings(max_examples=150, deadline=None)
@given(maybe_bad_rows(), st.integers(-2, 10**7))
def test_parity_random_invalid(cols, now):
    import pytest as _pt

    def outcome(f):
        try:
            return ("ok", f())
        except phm.InvalidEventError as e:
            return ("err", e.index, e.field, e.reason, str(e))

    mp = _pt.MonkeyPatch()
    try:
        native = outcome(lambda: phm.calculate_score(cols, now=now))
        pure = outcome(lambda: fallback(cols, now, mp))
    finally:
        mp.undo()
    if native[0] == "ok" and pure[0] == "ok":
        assert native[1] == pure[1] or (math.isnan(native[1]) and math.isnan(pure[1]))
    else:
        assert native == pure


def test_pure_env_switch_documented():
    assert phm.backend in ("native", "python")
    if PURE:
        assert phm.backend == "python"
