"""score_by_holder (the batch group-by kernel) and its HolderScores result.

The contract: the rows are, bit for bit, what an Aggregator (with the kernel's window as its
campaign window, exact alike) gives after ``record_many_sync`` of the batch written at
``now`` and ``snapshot(now)`` (``top_n(.., token=)`` per token for ``by_token``), on the
shared vectors and on generated batches; the fallback gives the same HolderScores as the
library; an independent exact reference (Fractions; ints in exact mode) agrees with both;
polars DataFrames and DuckDB relations go in directly; the result round-trips through
pyarrow, pandas, polars and DuckDB; bad input is an InvalidEventError naming what, which
value and where.
"""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import poh_holdmetrics as phm
from conftest import PURE, REPO, load_vectors, needs_native, vector_columns
from poh_holdmetrics import _aggregator, _kernel, _pure, score_by_holder


def _vectors(name: str) -> list[dict]:
    return json.loads((REPO / "testdata" / name).read_text(encoding="utf-8"))["vectors"]


try:  # a test dependency, but not loadable everywhere (under Wine: docs/windows.md)
    import pyarrow  # noqa: F401
    HAVE_PYARROW = True
except ImportError:
    HAVE_PYARROW = False

FLOAT_VECTORS = [v for v in load_vectors() if "error" not in v]
ERROR_VECTORS = [v for v in load_vectors() if "error" in v]
WINDOW_VECTORS = [v for v in _vectors("window_vectors.json") if "error" not in v]
EXACT_VECTORS = [v for v in _vectors("exact_vectors.json") if "error" not in v]


def exact_columns(v: dict) -> dict:
    """An exact vector's events as columns (weights as ints; absent = 1)."""
    evs = v["events"]
    cols = {k: [e.get(k) for e in evs] for k in ("token_id", "holder_id", "start", "end")}
    cols["weight"] = [int(e.get("weight", 1)) for e in evs]
    return cols


def bits(score: float | int) -> object:
    """A score compared bit for bit (-0.0 is not 0.0); exact ints as themselves."""
    return score if score.__class__ is int else struct.pack("<d", score)


def key(stats) -> list[tuple]:
    """HoldStats as comparable tuples (updated_at aside: the kernel stamps now)."""
    return [(s.holder_id, bits(s.score), s.total_seconds, s.events, s.open_holds, s.tokens) for s in stats]


def kernel_key(r: phm.HolderScores) -> list[tuple]:
    toks = r.token_ids or [None] * len(r)
    return [(t, *row) for t, row in zip(toks, key(r.rows()))]


def canonical(ident: str | bytes) -> str:
    raw = ident if isinstance(ident, bytes) else ident.encode("utf-8")
    return _pure.canonical_id(raw).decode("utf-8")


def elapsed(window: tuple[int, int], now: int) -> int:
    return min(window[1], now) - window[0]


def aggregator_key(monkeypatch, cols: dict, now: int, window=None, exact=False, by_token=False, twab=False,
                   top=None) -> list[tuple]:
    """The aggregator's rows for the batch, as kernel_key gives the kernel's. The batch is
    written at ``now`` (record_many_sync writes at the wall clock, POH_NOW: the kernel's
    contract is a write at now, where a hold ending after now is still live)."""
    monkeypatch.setattr(_aggregator, "_NOW", now)
    with phm.Aggregator(window=window, exact=exact) as a:
        a.record_many_sync(cols)
        if by_token:
            rows = []
            for tok in dict.fromkeys(canonical(t) for t in cols["token_id"]):
                rows += [(tok, s) for s in a.top_n(len(cols["token_id"]), now=now, token=tok)]
        else:
            rows = [(None, s) for s in a.snapshot(now)]
    monkeypatch.undo()
    if twab:
        d = elapsed(window, now)
        rows = [(t, phm.HoldStat(s.holder_id, s.score // d if exact else s.score / d, s.total_seconds, s.events,
                                 s.open_holds, s.tokens, s.updated_at)) for t, s in rows]
    rows.sort(key=lambda r: (-r[1].score, r[1].holder_id, r[0] or ""))
    out = [(t, *k) for (t, _), k in zip(rows, key([s for _, s in rows]))]
    return out if top is None else out[:top]


def reference(cols: dict, now: int, window=None, exact=False, by_token=False, twab=False) -> dict:
    """An independent reference: per holder (or (holder, token)) the exact score (a Fraction;
    an int in exact mode), seconds, events, open holds and distinct tokens."""
    t0, t1 = window if window is not None else (0, 253402300799)
    cap = min(now, t1)
    rows: dict = {}
    toks = cols.get("token_id") or ["T"] * len(cols["start"])
    for tok, hol, s, e, w in zip(toks, cols["holder_id"], cols["start"], cols["end"], cols["weight"]):
        h, t = canonical(hol), canonical(tok)
        secs = max(0, min(cap if e is None else e, cap) - max(s, t0))
        r = rows.setdefault((h, t) if by_token else h, [0, 0, 0, 0, set()])
        r[0] += secs * (int(w) if exact else Fraction(w))
        r[1] += secs
        r[2] += 1
        r[3] += e is None
        r[4].add(t)
    if twab:
        d = elapsed(window, now)
        for r in rows.values():
            r[0] = r[0] // d if exact else r[0] / d
    return {k: (r[0], r[1], r[2], r[3], len(r[4])) for k, r in rows.items()}


def check_against_reference(r: phm.HolderScores, want: dict, exact: bool) -> None:
    """r has want's rows and values (floats within Neumaier's accuracy, ints exactly), in
    ranking order."""
    toks = r.token_ids
    got = {}
    for i, s in enumerate(r.rows()):
        got[(s.holder_id, toks[i]) if toks is not None else s.holder_id] = s
    assert set(got) == set(want)
    for k, (score, secs, events, open_holds, tokens) in want.items():
        s = got[k]
        assert (s.total_seconds, s.events, s.open_holds, s.tokens) == (secs, events, open_holds, tokens), k
        if exact:
            assert s.score.__class__ is int and s.score == score, k
        else:
            assert s.score == pytest.approx(float(score), rel=1e-12, abs=1e-300), k
    ranked = [(-s.score, s.holder_id, toks[i] if toks else "") for i, s in enumerate(r.rows())]
    assert ranked == sorted(ranked)


@pytest.fixture
def fallback(monkeypatch):
    """score_by_holder on the pure-Python fallback (the library stays loaded for others)."""
    monkeypatch.setattr(_kernel, "_native_or_none", lambda: None)


def both(cols, *args, monkeypatch, **kw) -> tuple[phm.HolderScores, phm.HolderScores]:
    """(library, fallback) results of one call."""
    native = score_by_holder(cols, *args, **kw)
    with monkeypatch.context() as m:
        m.setattr(_kernel, "_native_or_none", lambda: None)
        pure = score_by_holder(cols, *args, **kw)
    return native, pure


def same_result(a: phm.HolderScores, b: phm.HolderScores) -> None:
    """Two results equal column for column, scores bit for bit."""
    assert (len(a), a.by_token, a.exact, a.now) == (len(b), b.by_token, b.exact, b.now)
    assert kernel_key(a) == kernel_key(b)
    if not a.exact and HAVE_PYARROW:  # (without it, kernel_key compared every column)
        assert a.to_arrow().equals(b.to_arrow())


# --- the shared vectors -------------------------------------------------------------------

@needs_native
@pytest.mark.parametrize("v", FLOAT_VECTORS, ids=lambda v: v["name"])
def test_vectors_equal_the_aggregator(v, monkeypatch):
    cols = vector_columns(v)
    want = aggregator_key(monkeypatch, cols, v["now"])
    for threads in (1, 2):
        assert kernel_key(score_by_holder(cols, now=v["now"], threads=threads)) == want
    assert kernel_key(score_by_holder(cols, now=v["now"], top=1)) == want[:1]
    by_tok = aggregator_key(monkeypatch, cols, v["now"], by_token=True)
    assert kernel_key(score_by_holder(cols, now=v["now"], by_token=True)) == by_tok
    native, pure = both(cols, now=v["now"], monkeypatch=monkeypatch)
    same_result(native, pure)
    same_result(*both(cols, now=v["now"], by_token=True, monkeypatch=monkeypatch))


@pytest.mark.parametrize("v", FLOAT_VECTORS, ids=lambda v: v["name"])
def test_vectors_against_the_reference(v):
    cols = vector_columns(v)
    r = score_by_holder(cols, now=v["now"])
    check_against_reference(r, reference(cols, v["now"]), exact=False)
    total = math.fsum(s.score for s in r)
    assert total == pytest.approx(v["score"], rel=1e-15, abs=0)
    if len(r) == 1:  # one holder: its row is the batch's score, bit for bit
        assert bits(r[0].score) == bits(float(v["score"]))


@needs_native
@pytest.mark.parametrize("v", WINDOW_VECTORS, ids=lambda v: v["name"])
def test_window_vectors_equal_the_aggregator(v, monkeypatch):
    cols = vector_columns(v)
    w, now = tuple(v["window"]), v["now"]
    want = aggregator_key(monkeypatch, cols, now, window=w)
    assert kernel_key(score_by_holder(cols, now=now, window=w)) == want
    same_result(*both(cols, now, w, monkeypatch=monkeypatch))
    if "twab" in v:
        want = aggregator_key(monkeypatch, cols, now, window=w, twab=True)
        assert kernel_key(score_by_holder(cols, now, w, twab=True)) == want
        same_result(*both(cols, now, w, twab=True, monkeypatch=monkeypatch))
        assert kernel_key(score_by_holder(cols, now, w, twab=True, by_token=True)) == aggregator_key(
            monkeypatch, cols, now, window=w, twab=True, by_token=True)


@pytest.mark.parametrize("v", WINDOW_VECTORS, ids=lambda v: v["name"])
def test_window_vectors_against_the_reference(v):
    cols = vector_columns(v)
    w, now = tuple(v["window"]), v["now"]
    r = score_by_holder(cols, now, w)
    check_against_reference(r, reference(cols, now, w), exact=False)
    assert math.fsum(s.score for s in r) == pytest.approx(v["score"], rel=1e-15, abs=0)
    if "twab" in v:
        t = score_by_holder(cols, now, w, twab=True)
        check_against_reference(t, reference(cols, now, w, twab=True), exact=False)
        assert math.fsum(s.score for s in t) == pytest.approx(v["twab"], rel=1e-14, abs=0)
    if "twab_error" in v:
        with pytest.raises(phm.InvalidEventError) as e:
            score_by_holder(cols, now, w, twab=True)
        assert (e.value.field, e.value.reason) == ("window", "empty_window")


@pytest.mark.parametrize("v", EXACT_VECTORS, ids=lambda v: v["name"])
def test_exact_vectors(v, monkeypatch):
    cols = exact_columns(v)
    w, now = (tuple(v["window"]) if "window" in v else None), v["now"]
    r = score_by_holder(cols, now, w, exact=True)
    assert r.exact and all(s.score.__class__ is int for s in r)
    assert sum(s.score for s in r) == int(v["score"])
    check_against_reference(r, reference(cols, now, w, exact=True), exact=True)
    if "twab" in v:
        t = score_by_holder(cols, now, w, exact=True, twab=True)
        check_against_reference(t, reference(cols, now, w, exact=True, twab=True), exact=True)
    if PURE:
        return
    assert kernel_key(r) == aggregator_key(monkeypatch, cols, now, window=w, exact=True)
    assert kernel_key(score_by_holder(cols, now, w, exact=True, by_token=True)) == aggregator_key(
        monkeypatch, cols, now, window=w, exact=True, by_token=True)
    same_result(*both(cols, now, w, exact=True, monkeypatch=monkeypatch))


@pytest.mark.parametrize("v", ERROR_VECTORS, ids=lambda v: v["name"])
def test_error_vectors(v, backend, monkeypatch):
    if backend == "python":
        monkeypatch.setattr(_kernel, "_native_or_none", lambda: None)
    err = v["error"]
    with pytest.raises(phm.InvalidEventError) as e:
        score_by_holder(vector_columns(v), now=v["now"])
    assert (e.value.index, e.value.field, e.value.reason) == (err["index"], err["field"], err["reason"])
    if err["index"] >= 0:
        assert str(e.value).startswith(f"event {err['index']}: {err['field']}")


# --- generated batches --------------------------------------------------------------------

ADDRESS = "0x" + "aB" * 20
HOLDERS = ["a", "b", "c", "ü", ADDRESS, ADDRESS.lower(), ADDRESS.upper().replace("0X", "0x")]
TOKENS = ["T", "U", "0x" + "Cd" * 20, "0x" + "cd" * 20]
NOW = 50_000


@st.composite
def batches(draw, exact: bool = False):
    n = draw(st.integers(0, 40))
    weight = (st.one_of(st.integers(0, 10), st.integers(0, 2**256 - 1)) if exact else
              st.one_of(st.sampled_from([0.0, 1.0, 0.1, 1 / 3, 2.5e-8, 1e15]), st.floats(0, 1e9)))
    cols: dict = {"token_id": [], "holder_id": [], "start": [], "end": [], "weight": []}
    for _ in range(n):
        s = draw(st.integers(0, 2 * NOW))
        cols["token_id"].append(draw(st.sampled_from(TOKENS)))
        cols["holder_id"].append(draw(st.sampled_from(HOLDERS)))
        cols["start"].append(s)
        cols["end"].append(draw(st.one_of(st.none(), st.integers(s, s + NOW))))
        cols["weight"].append(draw(weight))
    return cols


@st.composite
def options(draw):
    now = draw(st.sampled_from([NOW, 0, 2 * NOW, 3 * NOW]))
    window = draw(st.one_of(st.none(), st.tuples(st.integers(0, 2 * NOW), st.integers(0, NOW)).map(
        lambda t: (t[0], t[0] + t[1]))))
    twab = window is not None and elapsed(window, now) > 0 and draw(st.booleans())
    return {"now": now, "window": window, "twab": twab, "by_token": draw(st.booleans()),
            "top": draw(st.one_of(st.none(), st.integers(1, 4)))}


GENERATED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@needs_native
@GENERATED
@given(cols=batches(), o=options(), threads=st.sampled_from([1, 2]))
def test_generated_equal_the_aggregator(cols, o, threads, monkeypatch):
    got = score_by_holder(cols, **o, threads=threads)
    assert kernel_key(got) == aggregator_key(monkeypatch, cols, **o)
    same_result(got, both(cols, **o, monkeypatch=monkeypatch)[1])


@needs_native
@GENERATED
@given(cols=batches(exact=True), o=options())
def test_generated_exact_equal_the_aggregator(cols, o, monkeypatch):
    got = score_by_holder(cols, **o, exact=True)
    assert kernel_key(got) == aggregator_key(monkeypatch, cols, **o, exact=True)
    same_result(got, both(cols, **o, exact=True, monkeypatch=monkeypatch)[1])


@GENERATED
@given(cols=batches(), o=options())
def test_generated_against_the_reference(cols, o):
    top = o.pop("top")
    r = score_by_holder(cols, **o)
    check_against_reference(r, reference(cols, **o), exact=False)
    assert kernel_key(score_by_holder(cols, **o, top=top)) == kernel_key(r)[:top]


@GENERATED
@given(cols=batches(exact=True), o=options())
def test_generated_exact_against_the_reference(cols, o):
    o.pop("top")
    check_against_reference(score_by_holder(cols, **o, exact=True), reference(cols, **o, exact=True), exact=True)


@needs_native
@pytest.mark.parametrize("by_token", [False, True])
def test_large_batch_uses_partitions_and_both_threads(by_token, monkeypatch):
    """200,000 rows over 30,000 holders: many workers and partitions in the library, the
    same bits as the aggregator for any thread count."""
    np = pytest.importorskip("numpy", reason="numpy (a test dependency) builds the large batch")
    rng = np.random.default_rng(7)
    n = 200_000
    start = rng.integers(0, 2 * NOW, n)
    end = np.ma.MaskedArray(start + rng.integers(0, NOW, n), mask=rng.random(n) < 0.1)
    cols = {"token_id": np.array([f"T{i}" for i in rng.integers(0, 3, n)], dtype=object),
            "holder_id": np.array([f"0x{i:040x}" for i in rng.integers(0, 30_000, n)], dtype=object),
            "start": start, "end": end, "weight": rng.random(n) * 100}
    want = aggregator_key(monkeypatch, cols, NOW, window=(1000, 90_000), by_token=by_token)
    for threads in (1, 2, None):
        got = score_by_holder(cols, NOW, (1000, 90_000), by_token=by_token, threads=threads)
        assert kernel_key(got) == want
    assert kernel_key(score_by_holder(cols, NOW, (1000, 90_000), by_token=by_token, top=100)) == want[:100]


# --- input kinds --------------------------------------------------------------------------

SAMPLE = {"token_id": ["T", "T", "U", "T", "U"], "holder_id": ["a", "b", "a", ADDRESS, ADDRESS.lower()],
          "start": [10, 20, 30, 40, 45], "end": [100, None, 60, 200, None], "weight": [1.0, 2.5, 0.5, 3.0, 1.0]}


def sample_forms() -> dict:
    """SAMPLE as every input kind that is installed."""
    from poh_holdmetrics import HoldEvent
    forms: dict = {"dict": SAMPLE,
                   "events": [HoldEvent(*row) for row in zip(*(SAMPLE[k] for k in SAMPLE))],
                   "mappings": [dict(zip(SAMPLE, row)) for row in zip(*SAMPLE.values())]}
    try:
        import numpy as np
        forms["numpy"] = {**SAMPLE, "start": np.array(SAMPLE["start"]), "weight": np.array(SAMPLE["weight"]),
                          "end": np.ma.MaskedArray([e or 0 for e in SAMPLE["end"]],
                                                   mask=[e is None for e in SAMPLE["end"]])}
    except ImportError:
        pass
    try:
        import pandas as pd
        forms["pandas"] = pd.DataFrame({**SAMPLE, "end": pd.array(SAMPLE["end"], dtype="Int64")})
    except ImportError:
        pass
    try:
        import pyarrow as pa
        forms["pyarrow table"] = pa.table(SAMPLE)
        forms["pyarrow record batch"] = pa.record_batch(pa.table(SAMPLE).to_batches()[0])
        forms["pyarrow chunked"] = pa.concat_tables([pa.table(SAMPLE).slice(0, 2), pa.table(SAMPLE).slice(2)])
    except ImportError:
        pass
    try:
        import polars as pl
        forms["polars"] = pl.DataFrame(SAMPLE)
    except ImportError:
        pass
    try:
        import duckdb
        forms["duckdb"] = duckdb.sql(
            'select * from (values ' + ", ".join(
                f"('{t}', '{h}', {s}, {'NULL' if e is None else e}, {w})" for t, h, s, e, w in zip(*SAMPLE.values()))
            + ') t(token_id, holder_id, start, "end", weight)')
    except ImportError:
        pass
    return forms


@pytest.mark.parametrize("form", list(sample_forms()))
def test_every_input_kind_gives_the_same_rows(form):
    data = sample_forms()[form]
    want = score_by_holder(SAMPLE, now=150)
    assert [s.holder_id for s in want] == [ADDRESS.lower(), "b", "a"]
    for kw in ({}, {"by_token": True}, {"window": (20, 120), "twab": True}, {"top": 2}):
        same_result(score_by_holder(data, now=150, **kw), score_by_holder(SAMPLE, now=150, **kw))


def test_polars_and_duckdb_are_read_directly():
    """Not through pandas: polars' string_view ids and DuckDB's Arrow stream are read as Arrow."""
    pl = pytest.importorskip("polars", reason="polars is a test dependency (PY_TEST_DEPS)")
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a test dependency (PY_TEST_DEPS)")
    df = pl.DataFrame(SAMPLE)
    assert _kernel._arrow_input(df) is not None
    lazy = df.lazy().filter(pl.col("start") > 15)
    want = score_by_holder({k: v[1:] for k, v in SAMPLE.items()}, now=150)
    same_result(score_by_holder(lazy.collect(), now=150), want)
    rel = duckdb.sql("select * from df where start > 15")  # a relation over the polars frame
    assert _kernel._arrow_input(rel) is not None
    same_result(score_by_holder(rel, now=150), want)
    # DuckDB types a literal 2.5 as DECIMAL(2,1): in float mode it is that float, not an exact amount
    dec = duckdb.sql("select 'a' as holder_id, 0 as start, 2.5 as weight")
    assert pa_type(dec, "weight").startswith("decimal")
    assert [s.score for s in score_by_holder(dec, now=10)] == [25.0]


def pa_type(data, column: str) -> str:
    import pyarrow as pa
    return str(pa.table(data).schema.field(column).type)


# --- the result: Arrow, pandas, polars, DuckDB --------------------------------------------

def test_arrow_table_and_stream():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    r = score_by_holder(SAMPLE, now=150)
    t = r.to_arrow()
    assert t.column_names == ["holder_id", "score", "total_seconds", "events", "open_holds", "tokens"]
    assert t.schema.field("score").type == pa.float64() and t.schema.field("holder_id").type == pa.large_string()
    assert t.to_pylist() == [{"holder_id": s.holder_id, "score": s.score, "total_seconds": s.total_seconds,
                              "events": s.events, "open_holds": s.open_holds, "tokens": s.tokens} for s in r]
    assert pa.table(r).equals(t)  # __arrow_c_stream__
    assert pa.RecordBatchReader.from_stream(r).read_all().equals(t)
    bt = score_by_holder(SAMPLE, now=150, by_token=True).to_arrow()
    assert bt.column_names[:2] == ["holder_id", "token_id"]
    assert set(bt.column("token_id").to_pylist()) == {"T", "U"}
    empty = score_by_holder({"holder_id": [], "start": []}, now=150)
    assert len(empty) == 0 and empty.to_arrow().num_rows == 0 and list(empty) == []


def test_round_trip_through_pandas_polars_and_duckdb():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    pd = pytest.importorskip("pandas", reason="pandas is a test dependency (PY_TEST_DEPS)")
    pl = pytest.importorskip("polars", reason="polars is a test dependency (PY_TEST_DEPS)")
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a test dependency (PY_TEST_DEPS)")
    for kw in ({}, {"by_token": True}):
        r = score_by_holder(SAMPLE, now=150, **kw)
        t = r.to_arrow()
        df = r.to_pandas()
        assert isinstance(df, pd.DataFrame) and list(df.columns) == t.column_names
        assert pa.Table.from_pandas(df, schema=t.schema, preserve_index=False).equals(t)
        p = r.to_polars()
        assert isinstance(p, pl.DataFrame) and p.columns == t.column_names
        assert p.to_arrow().cast(t.schema).equals(t)
        assert pl.DataFrame(r).equals(p)  # through the PyCapsule stream
        assert pa.table(duckdb.sql("select * from r")).cast(t.schema).equals(t)  # DuckDB reads the stream too
        # a ranking read back by each keeps its order and its bits
        assert [bits(x) for x in df["score"]] == [bits(x) for x in p["score"].to_list()] == [bits(s.score) for s in r]


def test_exact_results_as_decimals_and_ints():
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    pl = pytest.importorskip("polars", reason="polars is a test dependency (PY_TEST_DEPS)")
    pytest.importorskip("pandas", reason="pandas is a test dependency (PY_TEST_DEPS)")
    big = 10**30
    cols = {"holder_id": ["a", "b"], "start": [0, 0], "end": [10, 10], "weight": [big, 3]}
    r = score_by_holder(cols, now=10, exact=True)
    assert [s.score for s in r] == [10 * big, 30]
    t = r.to_arrow()
    assert t.schema.field("score").type == pa.decimal128(38, 0)
    assert [int(x) for x in t.column("score").to_pylist()] == [10 * big, 30]
    assert list(r.to_pandas()["score"]) == [10 * big, 30]
    assert [int(x) for x in r.to_polars()["score"].to_list()] == [10 * big, 30]
    huge = score_by_holder({**cols, "weight": [2**200, 1]}, now=10, exact=True)
    assert huge.to_arrow().schema.field("score").type == pa.decimal256(76, 0)
    assert huge.to_polars()["score"].to_list() == [str(10 * 2**200), "10"]  # polars has no decimal256


def test_rows_indexing_and_html():
    r = score_by_holder({"holder_id": ["<b>", "a&b"], "start": [0, 5], "weight": [2.0, 1.0]}, now=10)
    assert len(r) == 2 and r[0] == r.rows()[0] and r[-1] == r.rows()[1]
    assert r[0].holder_id == "<b>" and r[0].updated_at == 10
    with pytest.raises(IndexError):
        r[2]
    with pytest.raises(TypeError):
        r["a"]  # type: ignore[index]
    html = r._repr_html_()
    assert "<th>holder_id</th>" in html and "&lt;b&gt;" in html and "a&amp;b" in html and "<b>" not in html
    assert "2 rows" in html
    assert "2 rows by holder at now=10" in repr(r)


# --- bad input ----------------------------------------------------------------------------

BAD = [
    ({"token_id": ["T"] * 4, "holder_id": ["a", "b", "c", "d"], "start": [1, 2, 3, 4], "weight": [1, 1, 1, -2.0]},
     {}, (3, "weight", "negative"), "event 3: weight -2"),
    ({"holder_id": ["a", ""], "start": [1, 2]}, {}, (1, "holder_id", "empty"), 'event 1: holder_id ""'),
    ({"holder_id": ["a", "b"], "start": [5, 9], "end": [6, 3]}, {}, (1, "end", "end_before_start"), "event 1: end 3"),
    ({"token_id": ["T"], "start": [1]}, {}, (-1, "holder_id", "empty"), "holder_id column is required"),
    ({"holder_id": ["a"], "start": [1]}, {"by_token": True}, (-1, "token_id", "empty"), "token_id column is required"),
    ({"holder_id": ["a", "b"], "start": [1]}, {}, (-1, "holder_id", "out_of_range"), "holder_id column has 2 rows"),
    ({"holder_id": ["a"], "start": [1], "bogus": [1]}, {}, (-1, "bogus", "unknown_key"), 'unknown column "bogus"'),
    ({"holder_id": ["a"], "start": [1]}, {"twab": True}, (-1, "window", "invalid_type"), "TWAB needs a (t0, t1)"),
    ({"holder_id": ["a"], "start": [1]}, {"window": (20, 30), "twab": True}, (-1, "window", "empty_window"),
     "window [20, 30): has no elapsed time"),
    ({"holder_id": ["a"], "start": [1]}, {"window": (5, 3)}, (-1, "window", "end_before_start"), "window [5, 3)"),
    ({"holder_id": ["a"], "start": [1]}, {"top": 0}, (-1, "top", "out_of_range"), "top 0"),
    ({"holder_id": ["a"], "start": [1]}, {"top": True}, (-1, "top", "out_of_range"), "top True"),
    ({"holder_id": ["a"], "start": [1]}, {"now": -1}, (-1, "now", "out_of_range"), "now -1"),
    ({"holder_id": ["a"], "start": [1], "weight": [1.5]}, {"exact": True}, (0, "weight", "not_integer"),
     "event 0: weight 1.5"),
    ({"holder_id": ["a"], "start": ["x"]}, {}, (0, "start", "invalid_type"), "event 0: start 'x'"),
    (42, {}, (-1, "table", "invalid_type"), "table 42: must be columnar data"),
    ({"holder_id": "a", "start": 1}, {}, (-1, "holder_id", "invalid_type"), "holder_id column 'a': must be"),
]


@pytest.mark.parametrize("data, kw, where, message", BAD, ids=[b[3] for b in BAD])
def test_bad_input_is_a_clear_error(data, kw, where, message, backend, monkeypatch):
    if backend == "python":
        monkeypatch.setattr(_kernel, "_native_or_none", lambda: None)
    kw = {"now": 10, **kw}
    with pytest.raises(phm.InvalidEventError) as e:
        score_by_holder(data, **kw)
    assert (e.value.index, e.value.field, e.value.reason) == where
    assert message in str(e.value)


def test_bad_rows_of_dataframes_name_the_row():
    pl = pytest.importorskip("polars", reason="polars is a test dependency (PY_TEST_DEPS)")
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    bad = {**SAMPLE, "weight": [1.0, 2.0, float("nan"), 1.0, 1.0]}
    for data in (pl.DataFrame(bad), pa.table(bad)):
        with pytest.raises(phm.InvalidEventError) as e:
            score_by_holder(data, now=150)
        assert (e.value.index, e.value.field, e.value.reason) == (2, "weight", "not_finite")
        assert str(e.value).startswith("event 2: weight nan")


def test_bad_threads():
    with pytest.raises(ValueError, match="threads 0: must be a positive int"):
        score_by_holder(SAMPLE, now=150, threads=0)


def test_fallback_fixture_is_the_fallback(fallback):
    """The fallback path really runs where the tests say so (its rows are still right)."""
    assert _kernel._native_or_none() is None
    r = score_by_holder(SAMPLE, now=150)
    check_against_reference(r, reference(SAMPLE, 150), exact=False)


# --- an Aggregator's rows as columns ------------------------------------------------------

@needs_native
@pytest.mark.parametrize("exact", [False, True])
def test_aggregator_snapshot_and_top_n_as_columns(exact):
    cols = {**SAMPLE, "weight": [1, 2, 3, 4, 5]} if exact else SAMPLE
    with phm.Aggregator(exact=exact) as a:
        a.record_many_sync(cols)
        snap = a.snapshot_columns(150)
        assert isinstance(snap, phm.HolderScores) and snap.now == 150 and snap.exact == exact
        assert snap.rows() == a.snapshot(150) and list(snap) == a.snapshot(150)  # updated_at included
        assert snap[0] == a.snapshot(150)[0]
        unordered = a.snapshot_columns(150, ordered=False)
        assert sorted(unordered.rows(), key=lambda s: s.holder_id) == sorted(a.snapshot(150), key=lambda s: s.holder_id)
        assert a.top_n_columns(2, 150).rows() == a.top_n(2, now=150)
        assert a.top_n_columns(5, 150, token="U").rows() == a.top_n(5, now=150, token="U")
        for bad in (0, -1, True, 1.5):
            with pytest.raises(phm.InvalidEventError) as e:
                a.top_n_columns(bad, 150)  # type: ignore[arg-type]
            assert e.value.field == "n"
        with pytest.raises(phm.InvalidEventError):
            a.top_n_columns(1, 150, token="")
        pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
        t = snap.to_arrow()
        assert t.column_names[-1] == "updated_at" and t.schema.field("updated_at").type == pa.int64()
        assert t.column("updated_at").to_pylist() == [s.updated_at for s in a.snapshot(150)]
        assert "<th>updated_at</th>" in snap._repr_html_()
    with pytest.raises(phm.ClosedError):
        a.snapshot_columns(150)


# --- the CLI's score --by-holder runs the kernel --------------------------------------------

def _cli(capsys, *args) -> tuple[int, str, str]:
    from poh_holdmetrics._cli import main
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@needs_native
@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_cli_by_holder_is_the_kernel_over_every_file(capsys, tmp_path, chunk_rows):
    """Files read in chunks, the rows of all of them in one kernel call: the ranking is
    score_by_holder's over the concatenated rows, bit for bit (JSON keeps a float's repr)."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("token_id,holder_id,start,end,weight\nT,x,10,100,1.5\nT,y,20,,0.1\nU,x,30,40,3\n", encoding="utf-8")
    b.write_text("token_id,holder_id,start,end,weight\nT,y,5,300,0.7\nT,z,0,50,1e-3\n", encoding="utf-8")
    code, out, err = _cli(capsys, "score", a, b, "--by-holder", "--now", 150, "--format", "json",
                          "--chunk-rows", chunk_rows)
    assert code == 0, err
    got = [(r["holder_id"], r["score"], r["events"], r["open_holds"]) for r in json.loads(out)["holders"]]
    rows = {"token_id": ["T", "T", "U", "T", "T"], "holder_id": ["x", "y", "x", "y", "z"],
            "start": [10, 20, 30, 5, 0], "end": [100, None, 40, 300, 50], "weight": [1.5, 0.1, 3.0, 0.7, 1e-3]}
    want = [(s.holder_id, s.score, s.events, s.open_holds) for s in score_by_holder(rows, now=150)]
    assert [(h, bits(s), e, o) for h, s, e, o in got] == [(h, bits(s), e, o) for h, s, e, o in want]


@needs_native
@pytest.mark.parametrize("chunk_rows", [1, 1000])
def test_cli_by_holder_names_the_bad_row_by_file_and_line(capsys, tmp_path, chunk_rows):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("token_id,holder_id,start,end,weight\nT,a,1,5,1\nT,b,2,9,2\n", encoding="utf-8")
    bad.write_text("token_id,holder_id,start,end,weight\nT,a,1,5,1\nT,b,2,9,-2\nT,c,9,3,1\n", encoding="utf-8")
    code, out, err = _cli(capsys, "score", good, bad, "--by-holder", "--now", 100, "--chunk-rows", chunk_rows)
    assert code == 1 and out == ""
    assert f"{bad}:3: weight: weight -2: must be >= 0" in err  # the first bad row, not line 4's
    code, out, err = _cli(capsys, "score", good, bad, "--by-holder", "--now", 100, "--token", "T",
                          "--chunk-rows", chunk_rows)
    assert code == 1 and f"{bad}:3: weight" in err
    code, out, err = _cli(capsys, "score", good, bad, "--by-holder", "--now", 100, "--skip-invalid",
                          "--format", "json")
    assert code == 0 and [r["holder_id"] for r in json.loads(out)["holders"]] == ["b", "a"]
    assert "skipped 2 invalid rows" in err and f"{bad}:4: end" in err


def test_a_pandas_column_of_several_arrow_chunks(backend):
    """A pandas string column backed by a chunked Arrow array (what pandas 3 and Dask hand
    over) reads as its joined values (it raised AttributeError on ChunkedArray.buffers)."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS)")
    pd = pytest.importorskip("pandas", reason="pandas is a test dependency (PY_TEST_DEPS)")
    ids = pa.chunked_array([["a", "b"], ["a", "c"]])
    df = pd.DataFrame({"holder_id": pd.Series(pd.arrays.ArrowStringArray(ids)), "token_id": ["T"] * 4,
                       "start": [0] * 4, "end": [10] * 4, "weight": [1.0, 2.0, 3.0, 4.0]})
    assert [(s.holder_id, s.score) for s in score_by_holder(df, now=100)] == [("a", 40.0), ("c", 40.0), ("b", 20.0)]
    assert phm.calculate_score(df, now=100) == 100.0
