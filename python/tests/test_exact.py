"""Exact mode: integer weights (0 <= w < 2^256) and exact int scores, in calculate_score,
twab and the Aggregator, on both backends; the shared vectors (testdata/exact_vectors.json);
every columnar weight type; float mode unchanged by int weights."""

from __future__ import annotations

import json
import math
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poh_holdmetrics as phm
from conftest import REPO, needs_native
from poh_holdmetrics import HoldEvent, _pure, calculate_score, twab

VECTORS = json.loads((REPO / "testdata" / "exact_vectors.json").read_text(encoding="utf-8"))["vectors"]
MAX = 2**256 - 1
NOT_INTEGER = "exact mode needs an integer weight (up to 2^53 as a number, any up to 2^256-1 as an exact weight)"


def vector_forms(v: dict) -> dict:
    """The vector's events as a list of mappings and as columns (dict of lists, pyarrow)."""
    evs = [dict(e) for e in v["events"]]
    cols = {k: [e.get(k) for e in evs] for k in ("token_id", "holder_id", "start", "end")}
    cols["weight"] = [e.get("weight", 1) for e in evs]
    forms = {"mappings": evs, "columns": cols}
    try:
        import pyarrow as pa
        if all(isinstance(w, str) for w in cols["weight"]):
            forms["arrow"] = pa.table({**cols, "weight": pa.array(cols["weight"], pa.string())})
    except ImportError:
        pass
    return forms


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors(v, backend):
    window = tuple(v["window"]) if "window" in v else None
    for form, data in vector_forms(v).items():
        if "error" in v:
            with pytest.raises(phm.InvalidEventError) as e:
                calculate_score(data, now=v["now"], window=window, exact=True)
            err = v["error"]
            assert (e.value.index, e.value.field, e.value.reason) == (err["index"], err["field"], err["reason"]), form
            continue
        got = calculate_score(data, now=v["now"], window=window, exact=True)
        assert type(got) is int and got == int(v["score"]), form
        if "twab" in v:
            assert twab(data, window, now=v["now"], exact=True) == int(v["twab"]), form
        if "twab_error" in v:
            with pytest.raises(phm.InvalidEventError) as e:
                twab(data, window, now=v["now"], exact=True)
            assert (e.value.field, e.value.reason) == ("window", "empty_window")


@pytest.mark.parametrize("v", [v for v in VECTORS if "error" not in v], ids=lambda v: v["name"])
def test_vectors_as_holdevents(v, backend):
    evs = [HoldEvent(e["token_id"], e["holder_id"], e["start"], e.get("end"), e.get("weight", 1)) for e in v["events"]]
    window = tuple(v["window"]) if "window" in v else None
    assert calculate_score(evs, now=v["now"], window=window, exact=True) == int(v["score"])
    # float mode takes the same events, each int weight as float(w)
    floats = [HoldEvent(e.token_id, e.holder_id, e.start, e.end, float(e.weight)) for e in evs]
    assert bits(calculate_score(evs, now=v["now"], window=window)) == bits(
        calculate_score(floats, now=v["now"], window=window))


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


# --- HoldEvent weights ---------------------------------------------------------------------

def test_holdevent_keeps_int_and_decimal_string_weights():
    e = HoldEvent("T", "a", 0, 10, weight=10**24)
    assert e.weight == 10**24 and type(e.weight) is int
    s = HoldEvent("T", "a", 0, 10, weight="1000000000000000000")
    assert s.weight == 10**18 and type(s.weight) is int
    assert HoldEvent("T", "a", 0, weight="007").weight == 7  # leading zeros, as core.ParseWei
    assert HoldEvent("T", "a", 0, weight=MAX).weight == MAX
    f = HoldEvent("T", "a", 0, 10, weight=2.5)
    assert type(f.weight) is float
    assert pickle.loads(pickle.dumps(e)) == e and pickle.loads(pickle.dumps(e)).weight == 10**24
    assert "weight=1000000000000000000000000" in repr(e)
    np = pytest.importorskip("numpy")
    assert type(HoldEvent("T", "a", 0, weight=np.uint64(2**63)).weight) is int


@pytest.mark.parametrize("weight, reason, message", [
    (-1, "negative", "weight -1: must be >= 0"),
    (2**256, "out_of_range", f"weight {2**256}: is not below 2^256"),
    ("-5", "negative", 'weight "-5": must be >= 0'),
    ("1.5", "not_integer", 'weight "1.5": must be a decimal integer (exact mode)'),
    ("+5", "not_integer", 'weight "+5": must be a decimal integer (exact mode)'),
    (" 5", "not_integer", 'weight " 5": must be a decimal integer (exact mode)'),
    ("1_000", "not_integer", 'weight "1_000": must be a decimal integer (exact mode)'),
    ("", "empty", 'weight "": must be a decimal integer'),
    (str(2**256), "out_of_range", f'weight "{str(2**256)[:64]}"...: is not below 2^256'),  # quoted as core.quoteID
    (True, "invalid_type", None),
])
def test_bad_exact_weights(weight, reason, message):
    with pytest.raises(phm.InvalidEventError) as e:
        HoldEvent("T", "a", 0, 10, weight=weight)
    assert (e.value.field, e.value.reason, e.value.index) == ("weight", reason, -1)
    if message:
        assert str(e.value) == message
    with pytest.raises(phm.InvalidEventError) as e:  # in a batch: the event's index
        calculate_score([("T", "a", 0, 1), ("T", "a", 0, 1, weight)], now=5, exact=True)
    assert (e.value.index, e.value.reason) == (1, reason)
    if message:
        assert str(e.value) == f"event 1: {message}"


@pytest.mark.parametrize("weight, reason", [(1.5, "not_integer"), (2.0**53 + 2, "not_integer"), (-1.0, "negative"),
                                            (math.nan, "not_finite"), (1e201, "out_of_range")])
def test_float_weights_in_exact_mode(weight, reason, backend):
    """A float weight counts in exact mode only as an integer up to 2^53 (core weightExact):
    the core's reason and text on both backends, in every input form."""
    evs = [{"token_id": "T", "holder_id": "a", "start": 0, "end": 10, "weight": 3.0},
           {"token_id": "T", "holder_id": "a", "start": 0, "end": 10, "weight": weight}]
    forms = [evs, {k: [e[k] for e in evs] for k in evs[0]}]
    if math.isfinite(weight) and 0 <= weight <= 1e200:  # a valid float-mode HoldEvent
        forms.append([HoldEvent("T", "a", 0, 10, 3.0), HoldEvent("T", "a", 0, 10, weight)])
    for data in forms:
        with pytest.raises(phm.InvalidEventError) as e:
            calculate_score(data, now=10, exact=True)
        assert (e.value.index, e.value.field, e.value.reason) == (1, "weight", reason)
        if reason == "not_integer":
            assert str(e.value) == f"event 1: weight {_pure.go_float(weight)}: {NOT_INTEGER}"
    assert calculate_score([HoldEvent("T", "a", 0, 10, 2.0**53)], now=10, exact=True) == 10 * 2**53


def test_int_weights_in_float_mode_are_float_w(backend):
    w = 2**53 + 1  # not a float: float mode counts float(w), the same bits as a float weight
    evs = [HoldEvent("T", "a", 0, 7, w), HoldEvent("T", "b", 3, None, 10**70)]
    same = [HoldEvent("T", "a", 0, 7, float(w)), HoldEvent("T", "b", 3, None, float(10**70))]
    assert bits(calculate_score(evs, now=100)) == bits(calculate_score(same, now=100))
    cols = {"start": [0, 3], "end": [7, None], "weight": [w, str(10**70)]}
    assert bits(calculate_score(cols, now=100)) == bits(calculate_score(same, now=100))


# --- columnar weight types -----------------------------------------------------------------

def weight_columns():
    """(name, weight column, expected ints) for every supported type."""
    np = pytest.importorskip("numpy")
    pa = pytest.importorskip("pyarrow")
    from decimal import Decimal
    big = [2**255, 1, 10**24 + 7]
    out = [
        ("python ints", big, big),
        ("decimal strings", [str(w) for w in big], big),
        ("numpy uint64", np.array([2**64 - 1, 0, 5], dtype=np.uint64), [2**64 - 1, 0, 5]),
        ("numpy int64", np.array([2**63 - 1, 0, 5], dtype=np.int64), [2**63 - 1, 0, 5]),
        ("arrow fixed_size_binary(32)", pa.array([w.to_bytes(32, "big") for w in big], pa.binary(32)), big),
        ("arrow binary of 32 bytes", pa.array([w.to_bytes(32, "big") for w in big], pa.binary()), big),
        ("arrow large_binary, short", pa.array([b"\x01\x00", b"", b"\x07"], pa.large_binary()), None),
        ("arrow decimal128", pa.array([Decimal(10**37), Decimal(0), Decimal(3)], pa.decimal128(38, 0)),
         [10**37, 0, 3]),
        ("arrow decimal256", pa.array([Decimal(10**75), Decimal(1), Decimal(3)], pa.decimal256(76, 0)),
         [10**75, 1, 3]),
        ("arrow decimal, scale 2, integral", pa.array([Decimal("5.00"), Decimal(1), Decimal(3)], pa.decimal128(10, 2)),
         [5, 1, 3]),
        ("arrow uint64", pa.array([2**64 - 1, 0, 5], pa.uint64()), [2**64 - 1, 0, 5]),
        ("arrow strings, short", pa.array(["12", "0", "5"]), [12, 0, 5]),
        ("arrow strings, long", pa.array([str(w) for w in big]), big),
        ("arrow float64", pa.array([4.0, 0.0, 2.0**53]), [4, 0, 2**53]),
        ("numpy float64", np.array([4.0, 0.0, 2.0**53]), [4, 0, 2**53]),
    ]
    return out


@pytest.mark.parametrize("case", range(15))
def test_weight_column_types(case, backend):
    name, col, want = weight_columns()[case]
    data = {"start": [0, 0, 0], "end": [10, 10, 10], "weight": col}
    if want is None:  # b"" is not an amount: an error naming the row
        with pytest.raises(phm.InvalidEventError) as e:
            calculate_score(data, now=10, exact=True)
        assert (e.value.index, e.value.field, e.value.reason) == (1, "weight", "empty")
        return
    assert calculate_score(data, now=10, exact=True) == 10 * sum(want), name
    pa = pytest.importorskip("pyarrow")
    if type(col).__module__.startswith("pyarrow"):
        table = pa.table({"start": [0, 0, 0], "end": [10, 10, None], "weight": col})
        assert calculate_score(table, now=20, exact=True) == 10 * sum(want[:2]) + 20 * want[2], name
        assert phm.weights_as_ints(col) == want if type(col).__module__.startswith("pyarrow") else True


@pytest.mark.parametrize("col, index, reason", [
    ([1, -1, 2], 1, "negative"),
    (["1", "x", "2"], 1, "not_integer"),
    ([1, None, 2], 1, "empty"),
    ([1, 2**256, 2], 1, "out_of_range"),
    ([1, 2, 1.5], 2, "not_integer"),
])
def test_bad_weight_columns(col, index, reason, backend):
    data = {"start": [0, 0, 0], "end": [10, 10, 10], "weight": col}
    with pytest.raises(phm.InvalidEventError) as e:
        calculate_score(data, now=10, exact=True)
    assert (e.value.index, e.value.field, e.value.reason) == (index, "weight", reason)
    np = pytest.importorskip("numpy")
    if all(isinstance(w, int) and w < 2**63 for w in col):
        with pytest.raises(phm.InvalidEventError) as e:
            calculate_score({**data, "weight": np.array(col)}, now=10, exact=True)
        assert (e.value.index, e.value.reason) == (index, reason)


def test_lowest_bad_row_first_across_fields(backend):
    """A bad weight at row 2 and a bad end at row 1: row 1 is reported, as the core does."""
    data = {"start": [0, 10, 0], "end": [5, 5, 5], "weight": ["1", "2", "x"]}
    with pytest.raises(phm.InvalidEventError) as e:
        calculate_score(data, now=10, exact=True)
    assert (e.value.index, e.value.field) == (1, "end")


@needs_native
def test_fixed_size_binary_weights_pass_without_a_copy():
    pa = pytest.importorskip("pyarrow")
    np = pytest.importorskip("numpy")
    from poh_holdmetrics._wei import u256_column
    col = pa.array([w.to_bytes(32, "big") for w in (1, 2, 3, 4)], pa.binary(32)).slice(1, 2)
    wei, floats, neg = u256_column(col, 2)
    assert floats is None and neg is None
    assert np.frombuffer(wei, np.uint8).ctypes.data == col.buffers()[1].address + 32  # the Arrow buffer itself


# --- exact and float agree -----------------------------------------------------------------

events_st = st.lists(st.tuples(st.integers(0, 10**6), st.one_of(st.none(), st.integers(0, 10**6)),
                               st.integers(0, 2**200)), max_size=30)


@given(events_st, st.integers(0, 2 * 10**6), st.one_of(st.none(), st.tuples(st.integers(0, 10**6),
                                                                            st.integers(0, 10**6))))
@settings(max_examples=300, deadline=None)
def test_exact_and_float_agree_to_float_precision(rows, now, window):
    evs = [HoldEvent("T", f"h{i % 3}", s, None if e is None else s + e, w) for i, (s, e, w) in enumerate(rows)]
    win = None if window is None else (min(window), max(window))
    exact = calculate_score(evs, now=now, window=win, exact=True)
    assert exact == _pure.score_events_exact(evs, now, *(win or (0, _pure.MAX_TIME)))  # the fallback's integers
    flt = calculate_score(evs, now=now, window=win)
    # every term is one rounding away from exact, and compensated sums of non-negative terms
    # add at most a couple of ulps more
    assert math.isclose(flt, exact, rel_tol=4 * 2**-52, abs_tol=0)
    if win is not None and min(win[1], now) > win[0]:
        t_exact = twab(evs, win, now=now, exact=True)
        t_float = twab(evs, win, now=now)
        assert t_exact == exact // (min(win[1], now) - win[0])
        assert t_exact - 1e-9 <= t_float * (1 + 8 * 2**-52) and t_float <= (t_exact + 1) * (1 + 8 * 2**-52)


# --- the exact Aggregator ------------------------------------------------------------------

@needs_native
def test_exact_aggregator_scores_are_ints():
    evs = [HoldEvent("T", "alice", 0, 10, 10**24 + 1), HoldEvent("T", "bob", 5, None, "3"),
           HoldEvent("U", "alice", 0, 4, 2.0), HoldEvent("T", "carol", 0, 10, MAX)]
    with phm.Aggregator(exact=True) as agg:
        assert agg.exact
        for e in evs:
            agg.record_sync(e)
        rows = agg.snapshot(now=100)
        assert [(r.holder_id, r.score) for r in rows] == [("carol", 10 * MAX), ("alice", 10 * (10**24 + 1) + 8),
                                                           ("bob", 285)]
        assert all(type(r.score) is int for r in rows)
        for r in rows:
            mine = [e for e in evs if e.holder_id == r.holder_id]
            assert r.score == calculate_score(mine, now=100, exact=True)
        assert agg.top_n(1, now=100)[0].score == 10 * MAX
        assert agg.top_n(5, now=100, token="U") == [phm.HoldStat("alice", 8, 4, 1, 0, 1, rows[1].updated_at)]
        p = agg.pair("T", "alice", now=100)
        assert p.score == 10 * (10**24 + 1) and type(p.score) is int
        with pytest.raises(phm.InvalidEventError) as e:  # a float weight must be an integer
            agg.record_sync(HoldEvent("T", "dave", 0, 1, 1.5))
        assert e.value.reason == "not_integer"
        assert agg.pair("T", "dave", now=100) is None


@needs_native
async def test_exact_aggregator_batches():
    pa = pytest.importorskip("pyarrow")
    evs = [HoldEvent("T", f"h{i % 7}", i, i + 50, (i + 1) * 10**30 + i) for i in range(200)]
    table = pa.table({"token_id": ["T"] * 200, "holder_id": [e.holder_id for e in evs],
                      "start": [e.start for e in evs], "end": [e.end for e in evs],
                      "weight": pa.array([e.weight.to_bytes(32, "big") for e in evs], pa.binary(32))})
    want = {f"h{k}": calculate_score([e for e in evs if e.holder_id == f"h{k}"], now=1000, exact=True)
            for k in range(7)}
    for batch in (evs, table, {c: table.column(c).to_pylist() for c in table.column_names}):
        with phm.Aggregator(exact=True) as agg:
            assert agg.record_many_sync(batch) == 200
            assert {r.holder_id: r.score for r in agg.snapshot(now=1000)} == want
        with phm.Aggregator(exact=True) as agg:
            assert await agg.record_many(batch) == 200
            assert {r.holder_id: r.score for r in agg.snapshot(now=1000)} == want
    with phm.Aggregator(exact=True) as agg:  # all-or-nothing: a bad weight records nothing
        with pytest.raises(phm.InvalidEventError) as e:
            agg.record_many_sync(evs[:5] + [HoldEvent("T", "x", 0, 1, 0.5)])
        assert (e.value.index, e.value.reason) == (5, "not_integer")
        assert len(agg) == 0
        res = agg.record_many_sync(evs[:5] + [HoldEvent("T", "x", 0, 1, 0.5), {"token_id": "T", "holder_id": "y",
                                                                                "start": 0, "weight": "-1"}],
                                   partial=True)
        assert res.accepted == 5 and [(x.index, x.reason) for x in res.errors] == [(5, "not_integer"), (6, "negative")]


@needs_native
def test_exact_aggregator_windows():
    evs = [HoldEvent("T", "a", 0, 10, "3"), HoldEvent("T", "a", 5, None, 5), HoldEvent("T", "b", 20, 95, 10**18)]
    with phm.Aggregator(exact=True, window=(10, 60)) as agg:
        agg.record_many_sync(evs)
        assert {r.holder_id: r.score for r in agg.snapshot(now=100)} == {"a": 250, "b": 40 * 10**18}
    with phm.Aggregator(exact=True, history=True) as agg:
        agg.record_many_sync(evs)
        got = {r.holder_id: r.score for r in agg.snapshot(now=100, window=(10, 60))}
        assert got == {"a": 250, "b": 40 * 10**18}
        assert sum(got.values()) == calculate_score(evs, now=100, window=(10, 60), exact=True)


@needs_native
def test_snapshot_reads_columns_for_many_rows():
    """poh_result_stats is columnar: thousands of rows, ids of every width, both modes."""
    ids = [f"holder-{i}" if i % 3 else f"hölder-{i}-✓" for i in range(3000)]
    for exact in (False, True):
        with phm.Aggregator(exact=exact) as agg:
            assert agg.snapshot(now=10) == []
            agg.record_many_sync({"token_id": ["T"] * 3000, "holder_id": ids, "start": [0] * 3000,
                                  "end": list(range(1, 3001)), "weight": [2] * 3000})
            rows = agg.snapshot(now=5000)
            assert [r.holder_id for r in rows] == ids[::-1]
            assert [r.score for r in rows] == [2 * (i + 1) for i in range(3000)][::-1]
            assert all(type(r.score) is (int if exact else float) for r in rows)
            assert [r.total_seconds for r in rows[:2]] == [3000, 2999] and rows[0].events == 1


@needs_native
async def test_exact_batches_larger_than_a_chunk():
    """Batches above CHUNK_ROWS go in slices (the 32-byte weights sliced alike), checked whole
    before any is recorded."""
    pa = pytest.importorskip("pyarrow")
    from poh_holdmetrics._aggregator import CHUNK_ROWS
    n = 2 * CHUNK_ROWS + 17
    weights = [(i % 97) * 10**30 + i for i in range(n)]
    table = pa.table({"token_id": ["T"] * n, "holder_id": [f"h{i % 13}" for i in range(n)], "start": [0] * n,
                      "end": [10] * n, "weight": pa.array([w.to_bytes(32, "big") for w in weights], pa.binary(32))})
    want = {f"h{k}": 10 * sum(weights[k::13]) for k in range(13)}
    with phm.Aggregator(exact=True) as agg:
        assert agg.record_many_sync(table) == n
        assert {r.holder_id: r.score for r in agg.snapshot(now=10)} == want
    with phm.Aggregator(exact=True) as agg:
        assert await agg.record_many(table) == n
        assert {r.holder_id: r.score for r in agg.snapshot(now=10)} == want
    bad = table.set_column(3, "end", pa.array([10] * (n - 1) + [-5]))
    with phm.Aggregator(exact=True) as agg:
        with pytest.raises(phm.InvalidEventError) as e:
            agg.record_many_sync(bad)
        assert (e.value.index, e.value.field) == (n - 1, "end")
        assert len(agg) == 0
        res = agg.record_many_sync(bad, partial=True)
        assert res.accepted == n - 1 and [x.index for x in res.errors] == [n - 1]


@needs_native
def test_durable_exact_aggregator_keeps_its_integers(tmp_path):
    d = tmp_path / "data"
    with phm.Aggregator(path=d, exact=True) as agg:
        agg.record_sync(HoldEvent("T", "a", 0, 10, 10**30 + 1))
        agg.record_sync(HoldEvent("T", "b", 0, None, MAX))
        before = agg.snapshot(now=20)
    with phm.Aggregator(path=d, exact=True) as agg:
        assert agg.snapshot(now=20) == before and before[0].score == 20 * MAX
    with pytest.raises(phm.StoreError, match="exact mode"):  # the mode is part of the stored state
        phm.Aggregator(path=d)
