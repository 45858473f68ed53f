"""allocate_rewards_columns: the same split as allocate_rewards, columns in and out.

Every test holds with the library and without it (the suite also runs with
POH_HOLDMETRICS_PURE=1): the amounts never depend on which ran.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poh_holdmetrics as phm
from poh_holdmetrics import InfeasibleCapError, allocate_rewards, allocate_rewards_columns, write_rewards_csv

holder_ids = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=6)
float_maps = st.dictionaries(holder_ids, st.floats(min_value=0, max_value=1e12), min_size=1, max_size=40).filter(
    lambda d: any(v > 0 for v in d.values()))
int_maps = st.dictionaries(holder_ids, st.integers(min_value=0, max_value=2**100), min_size=1, max_size=40).filter(
    lambda d: any(v > 0 for v in d.values()))
pools = st.integers(min_value=0, max_value=10**30)


def as_tuples(rows):
    return [(r.holder_id, r.score, r.amount) for r in rows]


def same(cols, rows):
    """A RewardColumns equals allocate_rewards' rows, through every way of reading it."""
    want = as_tuples(rows)
    assert len(cols) == len(rows)
    assert as_tuples(cols.rows()) == want
    assert as_tuples(cols) == want
    assert cols.amounts() == [r.amount for r in rows] and cols.holder_ids == [r.holder_id for r in rows]
    assert cols.scores() == [r.score for r in rows]
    if rows:
        assert as_tuples([cols[0], cols[-1]]) == [want[0], want[-1]]
    assert sum(cols.amounts()) == cols.pool


@given(float_maps, pools, st.one_of(st.none(), st.integers(min_value=0, max_value=10**30)),
       st.sampled_from([0, 0.5, 1e6]))
@settings(max_examples=200, deadline=None)
def test_floats_from_a_mapping_equal_allocate_rewards(scores, pool, cap, min_score):
    try:
        rows = allocate_rewards(scores, pool, cap=cap, min_score=min_score)
    except (InfeasibleCapError, ValueError) as e:
        with pytest.raises(type(e)) as got:
            allocate_rewards_columns(scores, pool, cap=cap, min_score=min_score)
        if isinstance(e, InfeasibleCapError):
            assert (got.value.pool, got.value.cap, got.value.holders) == (e.pool, e.cap, e.holders)
        return
    same(allocate_rewards_columns(scores, pool, cap=cap, min_score=min_score), rows)


@given(int_maps, pools)
@settings(max_examples=150, deadline=None)
def test_exact_ints_from_a_mapping_equal_allocate_rewards(scores, pool):
    same(allocate_rewards_columns(scores, pool), allocate_rewards(scores, pool))


@given(int_maps, pools)
@settings(max_examples=100, deadline=None)
def test_arrow_tables_of_every_integer_layout(scores, pool):
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    rows = allocate_rewards(scores, pool)
    ids, vals = list(scores), list(scores.values())
    small = max(vals) < 2**63
    tables = [pa.table({"holder_id": ids, "score": pa.array(vals, pa.decimal128(38, 0))}),
              pa.table({"holder_id": pa.array(ids, pa.large_string()), "score": pa.array(vals, pa.decimal256(76, 0))}),
              pa.table({"holder_id": pa.array(ids).dictionary_encode(), "score": pa.array(vals, pa.decimal256(40, 0))})]
    if small:
        tables += [pa.table({"holder_id": ids, "score": pa.array(vals, pa.int64())}),
                   pa.table({"holder_id": ids, "score": pa.array(vals, pa.uint64())})]
    for t in tables:
        same(allocate_rewards_columns(t, pool), rows)
    # chunked and sliced columns (offsets not at 0) read the same
    t = pa.concat_tables([tables[0].slice(0, len(ids) // 2), tables[0].slice(len(ids) // 2)])
    same(allocate_rewards_columns(t, pool), rows)


def test_float_table_and_a_sliced_batch():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    scores = {f"h{i}": float(i % 7) + 0.25 for i in range(50)}
    t = pa.table({"holder_id": list(scores), "score": list(scores.values()), "other": list(range(50))})
    rows = allocate_rewards(scores, 10**20)
    same(allocate_rewards_columns(t, 10**20), rows)
    batch = t.to_batches()[0].slice(10, 30)
    same(allocate_rewards_columns(batch, 10**20), allocate_rewards(dict(list(scores.items())[10:40]), 10**20))
    f32 = pa.table({"holder_id": list(scores), "score": pa.array(list(scores.values()), pa.float32())})
    same(allocate_rewards_columns(f32, 10**20), rows)


def test_holder_scores_float_and_exact():
    events = {"holder_id": ["a", "b", "c", "a", "d"], "token_id": ["t"] * 5, "start": [0, 10, 20, 30, 0],
              "end": [100, 50, 90, 60, 5], "weight": [3, 5, 7, 11, 0]}
    for exact in (False, True):
        hs = phm.score_by_holder(events, now=1000, exact=exact)
        scores = dict(zip(hs.holder_ids, hs.scores()))
        for pool, cap in ((10**18 + 7, None), (999, 400), (10**50, None)):
            same(allocate_rewards_columns(hs, pool, cap=cap), allocate_rewards(scores, pool, cap=cap))
    with pytest.raises(ValueError, match="by_token"):
        allocate_rewards_columns(phm.score_by_holder(events, now=1000, by_token=True), 10)


def test_dataframes_pandas_polars_duckdb():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    pd = pytest.importorskip("pandas", reason="pandas is a test dependency (PY_TEST_DEPS)")
    pl = pytest.importorskip("polars", reason="polars is a test dependency (PY_TEST_DEPS)")
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a test dependency (PY_TEST_DEPS)")
    scores = {f"0x{i:040x}": (i * 7919) % 1000 + 1 for i in range(300)}
    rows = allocate_rewards(scores, 10**24 + 1)
    df = pd.DataFrame({"holder_id": list(scores), "score": list(scores.values())})
    same(allocate_rewards_columns(df, 10**24 + 1), rows)
    same(allocate_rewards_columns(pl.DataFrame(df), 10**24 + 1), rows)
    rel = duckdb.sql("select holder_id, sum(score) as score from df group by holder_id")  # HUGEINT → decimal128
    same(allocate_rewards_columns(rel, 10**24 + 1), rows)
    assert pa.types.is_decimal(pa.table(rel).schema.field("score").type)


def test_results_as_arrow_pandas_polars_and_csv():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    pd = pytest.importorskip("pandas", reason="pandas is a test dependency (PY_TEST_DEPS)")
    pl = pytest.importorskip("polars", reason="polars is a test dependency (PY_TEST_DEPS)")
    scores = {"alice": 20, "bob": 60, "carol": 0, "dave": 20}
    for pool, amount_type in ((10**24, pa.decimal128(38, 0)), (10**50, pa.decimal256(76, 0)),
                              (10**80, pa.large_string())):
        r = allocate_rewards_columns(scores, pool)
        rows = allocate_rewards(scores, pool)
        t = r.to_arrow()
        assert t.schema.field("amount").type == amount_type
        assert t.column_names == ["holder_id", "score", "amount"]
        assert t.column("holder_id").to_pylist() == ["bob", "alice", "dave"]
        assert [int(str(a)) for a in t.column("amount").to_pylist()] == [x.amount for x in rows]
        assert pa.table(r).equals(t)  # __arrow_c_stream__
        df = r.to_pandas()
        assert df["amount"].tolist() == [x.amount for x in rows] and df["score"].tolist() == [60, 20, 20]
        p = r.to_polars()
        assert isinstance(p, pl.DataFrame) and p["holder_id"].to_list() == ["bob", "alice", "dave"]
        assert [int(str(a)) for a in p["amount"].to_list()] == [x.amount for x in rows]
        assert "<table>" in r._repr_html_() and "bob" in r._repr_html_()
        a, b = io.StringIO(), io.StringIO()
        write_rewards_csv(r, a, decimals=18)
        write_rewards_csv(rows, b, decimals=18)
        assert a.getvalue() == b.getvalue()
    floats = allocate_rewards_columns({"a": 1.5, "b": 0.5}, 10)
    assert floats.to_arrow().schema.field("score").type == pa.float64() and not floats.exact
    assert pd.api.types.is_float_dtype(floats.to_pandas()["score"])


def test_bad_scores_name_the_row():
    cases = [({"a": 1, "b": -1}, r"scores\[1\] \(['\"]b['\"]\): score -1 must be"),
             ({"a": 1.0, "b": float("nan")}, r"scores\[1\] \(['\"]b['\"]\): score (nan|NaN) must be"),
             ([("a", 1), ("a", 2)], r"scores\[1\]: holder_id ['\"]a['\"] appears twice"),
             ([("a", 1), ("", 2)], r"scores\[1\]: holder_id '' must be a non-empty str")]
    for scores, match in cases:
        with pytest.raises(ValueError, match=match):
            allocate_rewards_columns(scores, 100)
    with pytest.raises(ValueError, match="no holder is eligible"):
        allocate_rewards_columns({"a": 0}, 100)
    assert len(allocate_rewards_columns({"a": 0}, 0)) == 0
    with pytest.raises(InfeasibleCapError) as e:
        allocate_rewards_columns({"a": 1, "b": 2, "c": 0}, 100, cap=49)
    assert (e.value.pool, e.value.cap, e.value.holders) == (100, 49, 2)
    for bad in ({"pool": -1}, {"pool": 1.5}, {"cap": -2}, {"decimals": -1}, {"min_score": float("inf")}):
        kw = {"pool": 10, **bad}
        with pytest.raises((TypeError, ValueError)):
            allocate_rewards_columns({"a": 1}, **kw)


def test_bad_tables_name_the_column_or_row():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    ids = ["a", "b", "c"]
    cases = [
        (pa.table({"holder": ids, "score": [1, 2, 3]}), "no holder_id column"),
        (pa.table({"holder_id": ids}), "no score column"),
        (pa.table({"holder_id": ["a", None, "c"], "score": [1, 2, 3]}), r"scores\[1\]: holder_id is null"),
        (pa.table({"holder_id": ids, "score": [1, None, 3]}), r"scores\[1\] \('b'\): score is null"),
        (pa.table({"holder_id": [1, 2, 3], "score": [1, 2, 3]}), "holder_id column is int64, must be strings"),
        (pa.table({"holder_id": ids, "score": ["1", "2", "3"]}), "score column is string, must be numbers"),
        (pa.table({"holder_id": ids, "score": pa.array([1, 2, 3], pa.decimal128(10, 2))}), "scale 0"),
        (pa.table({"holder_id": ids, "score": pa.array([1, -2, 3], pa.int64())}), r"scores\[1\] \(['\"]b['\"]\): score -2 must"),
        (pa.table({"holder_id": ids, "score": pa.array([1, -2, 3], pa.decimal128(38, 0))}),
         r"scores\[1\] \(['\"]b['\"]\): score -2 must"),
        (pa.table({"holder_id": ["a", "b", "a"], "score": [1, 2, 3]}), r"scores\[2\]: holder_id ['\"]a['\"] appears twice"),
    ]
    for t, match in cases:
        with pytest.raises(ValueError, match=match):
            allocate_rewards_columns(t, 100)


def test_beyond_384_bits_falls_back_to_the_python_split():
    scores = {"a": 2**400 + 1, "b": 2**399, "c": 3}
    for pool in (10**20, 2**390 + 5):
        r = allocate_rewards_columns(scores, pool)
        same(r, allocate_rewards(scores, pool))
