"""poh_holdmetrics.dask on a real dask.distributed.LocalCluster (2 worker processes, spawned):
every result equals the single-process one on the same rows (bit for bit for floats, exactly
in exact mode), rewards included; errors name the lowest bad row as the single-process call
does; a worker forked after the library was loaded gets ForkedProcessError, not a hang. The
engine-neutral pieces (merge, rollup, transfers_step, pickling) run in every suite; the
Dask ones need dask[distributed] (installed in .venv-dist by make test-dist)."""

from __future__ import annotations

import math
import pickle
import random
import re
import subprocess
import sys
import time

import pytest

import poh_holdmetrics as phm
from conftest import REPO, needs_native

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (the transfers and partition tools need it)")
np = pytest.importorskip("numpy", reason="numpy is not installed")
pd = pytest.importorskip("pandas", reason="pandas is not installed")
from poh_holdmetrics import _partition  # noqa: E402  (needs pyarrow)

try:
    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster
    HAVE_DASK = True
except ImportError:
    HAVE_DASK = False
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="dask[distributed] is not installed here: the Dask tests run "
                                                      "in .venv-dist (make test-dist)")

NOW = 1_700_100_000
ZERO = "0x" + "0" * 40


# --- generated data ----------------------------------------------------------------------

def hold_events(n: int, seed: int = 1, holders: int = 60, exact: bool = False) -> pd.DataFrame:
    """Hold events over a few tokens: addresses in mixed case (one holder whatever the case),
    plain ids, open holds, future ends, zero weights, floats that do not add up exactly."""
    rng = np.random.default_rng(seed)
    addrs = ["0x%040x" % int(x) for x in rng.integers(1, 2**62, holders // 2)]
    ids = addrs + [a.upper().replace("0X", "0x") for a in addrs[:5]] + [f"h{i}" for i in range(holders // 2)]
    start = rng.integers(NOW - 400_000, NOW - 1000, n)
    end = (start + rng.integers(0, 300_000, n)).astype("float64")
    end[rng.random(n) < 0.2] = np.nan  # open holds
    df = pd.DataFrame({"token_id": rng.choice(["T", "U", "0x" + "ab" * 20], n), "holder_id": rng.choice(ids, n),
                       "start": start, "end": end})
    if exact:
        df["weight"] = [str(int(w) * 10**18 + int(r)) for w, r in zip(rng.integers(0, 10**6, n),
                                                                        rng.integers(0, 10**18, n))]
    else:
        w = rng.random(n) * 10.0 ** rng.integers(-3, 25, n)
        w[rng.random(n) < 0.05] = 0.0
        df["weight"] = w
    return df


def transfers(n: int, seed: int = 1, holders: int = 30, tokens: int = 3) -> dict[str, list]:
    """ERC-20 Transfer rows that never overdraw: mints, burns, self and zero transfers,
    addresses in mixed case, several rows a block, blocks sometimes at the same second."""
    rnd = random.Random(seed)
    addrs = ["0x%040x" % rnd.getrandbits(160) for _ in range(holders)]
    toks = ["0x%040x" % rnd.getrandbits(160) for _ in range(tokens)]
    bal: dict[tuple[str, str], int] = {}
    rows: dict[str, list] = {k: [] for k in ("token_id", "from_address", "to_address", "value", "block_number",
                                             "log_index", "time")}
    block, t = 100, 1_700_000_000
    for i in range(n):
        if rnd.random() < 0.3:
            block += 1
            t += rnd.choice([0, 12, 12, 24])
        tok = rnd.choice(toks)
        h = rnd.choice(addrs)
        owners = [a for a in addrs if bal.get((tok, a), 0) > 0]
        if rnd.random() < 0.25 or not owners:
            frm, to, v = ZERO, h, rnd.randrange(1, 10**24)
        else:
            frm = rnd.choice(owners)
            v = rnd.choice([bal[(tok, frm)], rnd.randrange(0, bal[(tok, frm)] + 1), 0])
            to = rnd.choice([ZERO, frm, h, h])
        if frm != to:
            if frm != ZERO:
                bal[(tok, frm)] -= v
            if to != ZERO:
                bal[(tok, to)] = bal.get((tok, to), 0) + v

        def case(a: str) -> str:
            return a.upper().replace("0X", "0x") if rnd.random() < 0.2 else a
        for k, x in (("token_id", case(tok)), ("from_address", case(frm)), ("to_address", case(to)),
                     ("value", str(v)), ("block_number", block), ("log_index", i), ("time", t)):
            rows[k].append(x)
    return rows


def bits(r: phm.HolderScores) -> list:
    """A result's every value, floats as their bit patterns."""
    t = r.to_arrow()
    out = {c: t.column(c).to_pylist() for c in t.column_names}
    if not r.exact:
        out["score"] = np.asarray(t.column("score")).view(np.uint64).tolist()
    return [out, r.now, r.by_token, r.exact]


def same(a: phm.HolderScores, b: phm.HolderScores) -> None:
    assert len(a) == len(b)
    assert bits(a) == bits(b)


def large(t: pa.Table) -> pa.Table:
    return pa.table({c: t.column(c).cast(pa.large_string()) if c.endswith("_id") else t.column(c)
                     for c in t.column_names})


def sorted_holds(t: pa.Table) -> pa.Table:
    import pyarrow.compute as pc
    t = large(t)
    return t.take(pc.sort_indices(t, sort_keys=[("token_id", "ascending"), ("holder_id", "ascending"),
                                                ("start", "ascending")]))


# --- the cluster -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    if not HAVE_DASK:
        pytest.skip("dask[distributed] is not installed here: the Dask tests run in .venv-dist (make test-dist)")
    if phm.backend != "native":
        pytest.skip("POH_HOLDMETRICS_PURE=1: the Dask tests compare the native kernel across processes")
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        with cluster, Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def events():
    return hold_events(6000)


@pytest.fixture(scope="module")
def pdk():
    if not HAVE_DASK:
        pytest.skip("dask[distributed] is not installed here: the Dask tests run in .venv-dist (make test-dist)")
    import poh_holdmetrics.dask as m
    return m


# --- scores equal one process ------------------------------------------------------------

QUERIES = [
    {},
    {"by_token": True},
    {"top": 7},
    {"by_token": True, "top": 11},
    {"window": (NOW - 200_000, NOW - 50_000)},
    {"window": (NOW - 200_000, NOW + 50_000), "twab": True},
    {"window": (NOW - 300_000, NOW - 100_000), "by_token": True, "top": 5},
]


@needs_dask
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: ",".join(q) or "plain")
def test_float_scores_bit_for_bit(client, pdk, events, query):
    ddf = dd.from_pandas(events, npartitions=5)
    want = phm.score_by_holder(events, NOW, **query)
    got = pdk.score_by_holder(ddf, NOW, **query)
    same(want, got)
    # more partitions by holder than input partitions, a narrow reduction tree
    same(want, pdk.score_by_holder(ddf, NOW, npartitions=9, split_every=2, **query))


@needs_dask
def test_holders_are_compared_as_the_library_does(client, pdk):
    a = "0x" + "ab" * 20
    df = pd.DataFrame({"holder_id": [a, a.upper().replace("0X", "0x"), "0XAB", "0xab"], "start": [0, 1, 2, 3],
                       "end": [10, 10, 10, 10]})
    got = pdk.score_by_holder(dd.from_pandas(df, npartitions=4), now=20)
    same(phm.score_by_holder(df, now=20), got)
    assert dict(zip(got.holder_ids, got.scores())) == {a: 19.0, "0XAB": 8.0, "0xab": 7.0}


@needs_dask
@pytest.mark.parametrize("query", [{}, {"by_token": True, "top": 9}, {"window": (NOW - 200_000, NOW), "twab": True}],
                         ids=["plain", "by_token_top", "twab"])
def test_exact_scores_exactly(client, pdk, query):
    events = hold_events(4000, seed=2, exact=True)
    ddf = dd.from_pandas(events, npartitions=4)
    want = phm.score_by_holder(events, NOW, exact=True, **query)
    got = pdk.score_by_holder(ddf, NOW, exact=True, **query)
    assert got.exact and max(got.scores()) > 2**64
    assert got.scores() == want.scores() and got.holder_ids == want.holder_ids
    same(want, got)


@needs_dask
def test_parquet_partitions_arrow_dtypes(client, pdk, events, tmp_path):
    events.assign(day=events.start // 86_400).to_parquet(tmp_path / "holds", partition_cols=["day"])
    ddf = dd.read_parquet(tmp_path / "holds", columns=["token_id", "holder_id", "start", "end", "weight"],
                          dtype_backend="pyarrow")
    rows = ddf.compute()  # the same rows, in the same order, as one frame
    same(phm.score_by_holder(pa.Table.from_pandas(rows, preserve_index=False), NOW),
         pdk.score_by_holder(ddf, NOW))


@needs_dask
def test_score_partitions_is_the_ranking_by_holder(client, pdk, events):
    ddf = dd.from_pandas(events, npartitions=3)
    parts = pdk.score_partitions(ddf, NOW, npartitions=4)
    assert parts.npartitions == 4
    frames = [p for p in parts.to_delayed()]
    got = pd.concat(dask.compute(*frames))
    want = phm.score_by_holder(events, NOW).to_pandas()
    assert sorted(got.holder_id) == sorted(want.holder_id)  # every holder once
    merged = got.sort_values(["score", "holder_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, want, check_dtype=False, check_exact=True)


# --- rewards ------------------------------------------------------------------------------

@needs_dask
@pytest.mark.parametrize("exact", [False, True])
def test_rewards_equal_one_process(client, pdk, exact):
    events = hold_events(3000, seed=4, exact=exact)
    ddf = dd.from_pandas(events, npartitions=4)
    pool = 10**24 + 7
    one = phm.score_by_holder(events, NOW, exact=exact)
    want = phm.allocate_rewards(zip(one.holder_ids, one.scores()), pool, cap=pool // 20)
    got = pdk.allocate_rewards(ddf, pool, NOW, exact=exact, cap=pool // 20)
    assert [tuple(r) for r in got] == [tuple(r) for r in want]
    assert sum(r.amount for r in got) == pool
    assert [tuple(r) for r in pdk.allocate_rewards(one, pool, cap=pool // 20)] == [tuple(r) for r in want]
    w = (NOW - 100_000, NOW)
    one = phm.score_by_holder(events, NOW, w, exact=exact)
    assert ([tuple(r) for r in pdk.allocate_rewards(ddf, pool, NOW, w, exact=exact)]
            == [tuple(r) for r in phm.allocate_rewards(zip(one.holder_ids, one.scores()), pool)])


# --- errors ------------------------------------------------------------------------------

@needs_dask
def test_bad_rows_name_the_lowest_row_as_one_process(client, pdk, events):
    bad = events.copy()
    for i in (4500, 1234, 5999):
        bad.loc[i, "end"] = bad.loc[i, "start"] - 1
    with pytest.raises(phm.InvalidEventError) as one:
        phm.score_by_holder(bad, NOW)
    with pytest.raises(phm.InvalidEventError) as got:
        pdk.score_by_holder(dd.from_pandas(bad, npartitions=5), NOW)
    assert (str(got.value), got.value.index, got.value.field, got.value.reason) == (
        str(one.value), one.value.index, one.value.field, one.value.reason)
    assert got.value.index == 1234 and str(got.value).startswith("event 1234: end ")
    with pytest.raises(phm.InvalidEventError, match="input partition .* row "):
        pdk.score_partitions(dd.from_pandas(bad, npartitions=5), NOW).compute()


@needs_dask
def test_bad_arguments(client, pdk, events):
    ddf = dd.from_pandas(events, npartitions=2)
    with pytest.raises(phm.InvalidEventError, match='unknown column "wieght"'):
        pdk.score_by_holder(dd.from_pandas(events.rename(columns={"weight": "wieght"}), npartitions=2), NOW)
    with pytest.raises(phm.InvalidEventError, match="holder_id column is required"):
        pdk.score_by_holder(ddf.drop(columns=["holder_id"]), NOW)
    with pytest.raises(phm.InvalidEventError, match="top 0"):
        pdk.score_by_holder(ddf, NOW, top=0)
    with pytest.raises(phm.InvalidEventError, match="window"):
        pdk.score_by_holder(ddf, NOW, twab=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        pdk.score_by_holder(ddf, NOW, toppp=3)
    with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
        pdk.score_by_holder(events, NOW)
    with pytest.raises(ValueError, match="npartitions 0"):
        pdk.score_by_holder(ddf, NOW, npartitions=0)
    with pytest.raises(ValueError, match="split_every 1"):
        pdk.score_by_holder(ddf, NOW, split_every=1)


# --- transfers ---------------------------------------------------------------------------

@needs_dask
def test_transfers_to_holds_equal_one_process(client, pdk):
    rows = transfers(4000)
    ddf = dd.from_pandas(pd.DataFrame(rows), npartitions=4)
    want = phm.transfers_to_holds(rows)
    holds = pdk.transfers_to_holds(ddf, npartitions=3)
    got = pa.Table.from_pandas(holds.compute(), preserve_index=False)
    assert sorted_holds(got).equals(sorted_holds(want).cast(sorted_holds(got).schema))  # weight: binary(32) as binary
    for exact in (True, False):
        one = phm.score_by_holder(want, NOW, exact=exact)
        same(one, pdk.score_by_holder(holds, NOW, exact=exact, shuffle=False))
        same(one, pdk.score_by_holder(holds, NOW, exact=exact))
    # opening balances, a holder with no transfer among them
    opening = {"token_id": [rows["token_id"][0], rows["token_id"][0]], "holder_id": ["0x" + "f" * 40, ZERO[:-1] + "1"],
               "balance": [10**30, 5]}
    want = phm.transfers_to_holds(rows, opening=opening, opening_time=1_600_000_000)
    got = pdk.transfers_to_holds(ddf, opening=opening, opening_time=1_600_000_000).compute()
    got = pa.Table.from_pandas(got, preserve_index=False)
    assert got.num_rows == want.num_rows
    assert sorted_holds(got).equals(sorted_holds(want).cast(sorted_holds(got).schema))  # weight: binary(32) as binary


@needs_dask
def test_transfers_errors_name_the_row(client, pdk):
    rows = transfers(500)
    i = next(k for k in range(500) if rows["from_address"][k] != ZERO
             and rows["from_address"][k].lower() != rows["to_address"][k].lower())
    rows["value"][i] = str(10**40)
    with pytest.raises(phm.InvalidEventError) as one:
        phm.transfers_to_holds(rows)
    with pytest.raises(phm.InvalidEventError) as got:
        pdk.transfers_to_holds(dd.from_pandas(pd.DataFrame(rows), npartitions=1)).compute()
    assert got.value.field == one.value.field == "value" and got.value.reason == "negative"
    assert str(got.value) == str(one.value).replace(f"row {i}: ", f"input partition 0, row {i}: ")
    with pytest.raises(ValueError, match="zero_holder"):
        pdk.transfers_to_holds(dd.from_pandas(pd.DataFrame(rows), npartitions=1), zero_holder=True)
    with pytest.raises(phm.InvalidEventError, match="no to_address column"):
        pdk.transfers_to_holds(dd.from_pandas(pd.DataFrame(rows).drop(columns=["to_address"]), npartitions=1))


# --- fork --------------------------------------------------------------------------------

FORKED_CLUSTER = """
import dask, pandas as pd, dask.dataframe as dd
import poh_holdmetrics as phm, poh_holdmetrics.dask as pdk
from dask.distributed import LocalCluster, Client
phm.calculate_score({"start": [0]}, now=1)  # this process has the library loaded
assert phm.backend == "native"
dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
if __name__ == "__main__":
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as c, Client(c):
        ddf = dd.from_pandas(pd.DataFrame({"holder_id": ["a", "b"], "start": [0, 1]}), npartitions=2)
        try:
            pdk.score_by_holder(ddf, now=10)
            print("no error")
        except phm.ForkedProcessError as e:
            print("ForkedProcessError:", e)
"""


@needs_dask
@needs_native
@pytest.mark.skipif(sys.platform == "win32", reason="Unix only: Windows has no fork")
def test_a_forked_worker_fails_clearly_and_never_hangs(tmp_path):
    script = tmp_path / "forked_cluster.py"
    script.write_text(FORKED_CLUSTER, encoding="utf-8")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.strip().splitlines()[-1]
    assert out.startswith("ForkedProcessError:"), r.stdout + r.stderr[-3000:]
    assert "spawn" in out and "multiprocessing-method" in out


# --- merge, rollup, pickling (engine-neutral) --------------------------------------------

def split_by_holder(df: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    keys = _partition.canonical_ids(df["holder_id"]).to_pylist()
    parts = pd.util.hash_pandas_object(pd.Series(keys), index=False).to_numpy() % k
    return [df[parts == i] for i in range(k)]


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("by_token", [False, True])
def test_merge_of_disjoint_holders_is_the_one_pass_result(exact, by_token):
    df = hold_events(3000, seed=5, exact=exact)
    want = phm.score_by_holder(df, NOW, by_token=by_token, exact=exact)
    parts = [phm.score_by_holder(p, NOW, by_token=by_token, exact=exact) for p in split_by_holder(df, 4)]
    same(want, _partition.merge(*parts))
    same(want, _partition.merge(parts[::-1]))  # any order, one iterable
    same(want, _partition.merge(_partition.merge(parts[0], parts[2]), _partition.merge(parts[3], parts[1])))
    top = phm.score_by_holder(df, NOW, by_token=by_token, exact=exact, top=5)
    same(top, _partition.merge(*[phm.score_by_holder(p, NOW, by_token=by_token, exact=exact, top=5)
                                 for p in split_by_holder(df, 4)], top=5))


def test_merge_of_overlapping_exact_pairs_is_exact_associative_commutative():
    df = hold_events(3000, seed=6, exact=True)
    chunks = [df.iloc[i:i + 700] for i in range(0, 3000, 700)]  # by time of arrival: holders overlap
    want = phm.score_by_holder(df, NOW, by_token=True, exact=True)
    parts = [phm.score_by_holder(c, NOW, by_token=True, exact=True) for c in chunks]
    same(want, _partition.merge(*parts))
    same(want, _partition.merge(_partition.merge(parts[4], parts[0]),
                                _partition.merge(parts[3], _partition.merge(parts[1], parts[2]))))
    # pairs rolled up are the by-holder query, exactly
    same(phm.score_by_holder(df, NOW, exact=True), _partition.rollup(_partition.merge(*parts)))


def test_merge_of_overlapping_floats_is_within_a_few_ulp():
    df = hold_events(3000, seed=7)
    chunks = [df.iloc[i:i + 1000] for i in range(0, 3000, 1000)]
    want = phm.score_by_holder(df, NOW, by_token=True)
    got = _partition.merge(*[phm.score_by_holder(c, NOW, by_token=True) for c in chunks])
    w = dict(zip(zip(want.holder_ids, want.token_ids), want.scores()))
    g = dict(zip(zip(got.holder_ids, got.token_ids), got.scores()))
    assert w.keys() == g.keys()
    assert all(abs(g[k] - w[k]) <= 4 * math.ulp(w[k]) for k in w)
    # the counts are integers: exact
    assert sorted(zip(got.holder_ids, got.token_ids, got.to_arrow().column("events").to_pylist())) == sorted(
        zip(want.holder_ids, want.token_ids, want.to_arrow().column("events").to_pylist()))


def test_merge_refuses_what_it_cannot_merge():
    df = hold_events(500, seed=8)
    a, b = phm.score_by_holder(df.iloc[:300], NOW), phm.score_by_holder(df.iloc[300:], NOW)
    with pytest.raises(ValueError, match="more than one by-holder part"):
        _partition.merge(a, b)
    with pytest.raises(ValueError, match="part 1 has now="):
        _partition.merge(a, phm.score_by_holder(df.iloc[300:], NOW + 1))
    with pytest.raises(ValueError, match="part 1 has exact=True"):
        _partition.merge(a, phm.score_by_holder(hold_events(50, seed=8, exact=True), NOW, exact=True))
    with pytest.raises(TypeError, match="part 1 is a list"):
        _partition.merge(a, [])
    with pytest.raises(ValueError, match="no parts"):
        _partition.merge([])
    with pytest.raises(ValueError, match="top 0"):
        _partition.merge(a, top=0)
    with pytest.raises(ValueError, match="by_token=True"):
        _partition.rollup(a)


@needs_native
@pytest.mark.skipif(not hasattr(phm.Aggregator, "snapshot_columns"),
                    reason="Aggregator.snapshot_columns (an aggregator's rows as HolderScores) is not in this build")
def test_a_live_aggregator_merges_with_a_backfill():
    df = hold_events(2000, seed=12, exact=True)
    keys = pd.Series(_partition.canonical_ids(df["holder_id"]).to_pylist(), index=df.index)
    seen_live = keys.isin(sorted(set(keys))[::3])  # the daemon saw these holders, the backfill the others
    live, back = df[seen_live], df[~seen_live]
    # an aggregator records at the wall clock: query both after it (and after every end)
    now = int(time.time()) + 86_400
    with phm.Aggregator(exact=True) as agg:
        agg.record_many_sync(live)
        state = agg.snapshot_columns(now)
    got = _partition.merge(state, phm.score_by_holder(back, now, exact=True))
    want = phm.score_by_holder(df, now, exact=True)
    assert got.scores() == want.scores() and got.holder_ids == want.holder_ids
    # the aggregator's rows keep their updated_at; the backfill's rows are as of now
    updated = dict(zip(got.holder_ids, got.to_arrow().column("updated_at").to_pylist()))
    assert {h: updated[h] for h in state.holder_ids} == dict(zip(state.holder_ids,
                                                                 state.to_arrow().column("updated_at").to_pylist()))
    assert all(updated[h] == now for h in set(got.holder_ids) - set(state.holder_ids))
    with pytest.raises(ValueError, match="more than one by-holder part"):  # overlapping holders: token sets
        _partition.merge(state, phm.score_by_holder(df, now, exact=True))


@pytest.mark.parametrize("query", [{}, {"exact": True}, {"by_token": True}, {"by_token": True, "exact": True}])
def test_results_and_events_pickle(query):
    df = hold_events(300, seed=9, exact=query.get("exact", False))
    r = phm.score_by_holder(df, NOW, **query)
    for proto in (2, pickle.HIGHEST_PROTOCOL):
        same(r, pickle.loads(pickle.dumps(r, proto)))
    r.to_arrow()  # with its cached table too
    same(r, pickle.loads(pickle.dumps(r)))
    same(r, pickle.loads(pickle.dumps(_partition.merge(r))))
    evs = [phm.HoldEvent("T", "0xAB" + "0" * 38, 1, None, 2.5), phm.HoldEvent("T", "b", 1, 9, 10**30),
           phm.HoldEvent("U", "c", 0)]
    back = pickle.loads(pickle.dumps(evs))
    assert back == evs and [e.weight for e in back] == [e.weight for e in evs]
    assert phm.calculate_score(back, now=20) == phm.calculate_score(evs, now=20)
    assert phm.calculate_score(back[1:], now=20, exact=True) == 8 * 10**30 + 20
    err = phm.InvalidEventError("event 3: start -1: bad", field="start", index=3, reason="out_of_range", value="-1")
    e2 = pickle.loads(pickle.dumps(err))
    assert (str(e2), e2.field, e2.index, e2.reason, e2.value) == (str(err), "start", 3, "out_of_range", "-1")


# --- transfers, one time partition after another ----------------------------------------

def steps_of(rows: dict[str, list], cuts: list[int], **opening) -> tuple[list, _partition.TransferState]:
    state, closed, lo = None, [], 0
    for hi in cuts + [len(rows["time"])]:
        part = {k: v[lo:hi] for k, v in rows.items()}
        c, state = _partition.transfers_step(part, state, **(opening if lo == 0 else {}))
        state = pickle.loads(pickle.dumps(state))  # what a worker would ship
        closed.append(c)
        lo = hi
    return closed, state


@needs_native
@pytest.mark.parametrize("cuts", [[2000], [10, 1500, 3990], [0, 0, 4000], [700, 1400, 2100, 2800, 3500]])
def test_splitting_time_gives_the_same_holds(cuts):
    rows = transfers(4000, seed=3)
    want = large(phm.transfers_to_holds(rows))
    closed, state = steps_of(rows, cuts)
    got = state.holds(closed)
    assert got.equals(want)  # same rows, same order
    for exact in (False, True):
        same(phm.score_by_holder(want, NOW, exact=exact), phm.score_by_holder(got, NOW, exact=exact))
    # each step's holds closed in it; the open ones are the state's
    assert all(c.column("end").null_count == 0 for c in closed)
    assert state.open_holds().num_rows == want.column("end").null_count


@needs_native
def test_splitting_time_inside_a_block_and_with_opening_balances():
    rows = transfers(3000, seed=11)
    tok = rows["token_id"][0].lower()
    opening = {"token_id": [tok, tok], "holder_id": ["0x" + "f" * 40, "0x" + "e" * 40], "balance": [10**30, 0]}
    want = large(phm.transfers_to_holds(rows, opening=opening, opening_time=1_600_000_000))
    # cut where a block continues, and where the next rows are at the same second
    same_second = [i for i in range(1, 3000) if rows["time"][i] == rows["time"][i - 1]][:3]
    closed, state = steps_of(rows, sorted(same_second), opening=opening, opening_time=1_600_000_000)
    assert state.holds(closed).equals(want)


@needs_native
def test_splitting_time_for_balance_rows():
    rnd = random.Random(5)
    hs = ["0xAA" + "%038x" % i for i in range(8)] + ["alice", "bob"]
    rows = {"token_id": [], "holder_id": [], "balance": [], "time": []}
    t = 1000
    for i in range(600):
        t += rnd.choice([0, 0, 5])
        for k, v in (("token_id", rnd.choice(["X", "Y"])), ("holder_id", rnd.choice(hs)),
                     ("balance", str(rnd.choice([0, rnd.randrange(10**30)]))), ("time", t)):
            rows[k].append(v)
    want = large(phm.transfers_to_holds(rows, kind="balance"))
    state, closed, lo = None, [], 0
    for hi in (150, 151, 400, 600):
        c, state = _partition.transfers_step({k: v[lo:hi] for k, v in rows.items()}, state, kind="balance")
        closed.append(c)
        lo = hi
    assert state.holds(closed).equals(want)


@needs_native
def test_steps_out_of_order_are_errors():
    rows = {"token_id": ["X"] * 4, "holder_id": ["a", "b", "a", "c"], "balance": ["5", "7", "0", "1"],
            "time": [100, 110, 120, 130], "block_number": [10, 11, 12, 13]}
    _, state = _partition.transfers_step({k: v[:2] for k, v in rows.items()}, kind="balance")
    back = dict(rows, block_number=[10, 11, 9, 13])
    with pytest.raises(phm.InvalidEventError, match=r"row 0: block_number 9 log_index 0 comes before"):
        _partition.transfers_step({k: v[2:] for k, v in back.items()}, state, kind="balance")
    early = dict(rows, time=[100, 110, 105, 130])
    with pytest.raises(phm.InvalidEventError, match=r"row 0: time: 105 is before the opening balances' time 110"):
        _partition.transfers_step({k: v[2:] for k, v in early.items()}, state, kind="balance")
    with pytest.raises(ValueError, match="opening balances are for the first step"):
        _partition.transfers_step(rows, state, kind="balance", opening={"token_id": [], "holder_id": [],
                                                                       "balance": []})
    with pytest.raises(ValueError, match="zero_holder=True"):
        _partition.transfers_step(rows, state, kind="balance", zero_holder=True)
    with pytest.raises(TypeError, match="TransferState"):
        _partition.transfers_step(rows, {"pairs": 1})


# --- the README's Dask job ---------------------------------------------------------------

def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Past one machine: Dask and Spark", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


ONE_PROCESS_AIRDROP = """
import csv, pyarrow.dataset as ds, poh_holdmetrics as phm
rows = ds.dataset("transfers", format="parquet", partitioning="hive").to_table().drop_columns(["month"])
s = phm.score_by_holder(phm.transfers_to_holds(rows), 1_712_000_000, exact=True)
print("top holders:")
for h, x in list(zip(s.holder_ids, s.scores()))[:5]:
    print(f"  {h} {x}")
want = [(r.holder_id, r.amount) for r in phm.allocate_rewards(zip(s.holder_ids, s.scores()), 10**24)]
got = [(r["holder_id"], int(r["amount"])) for r in csv.DictReader(open("airdrop.csv", encoding="utf-8"))]
print(want == got, len(want))
"""


@needs_dask
@needs_native
def test_readme_dask_job_runs_as_written(tmp_path):
    make_data, job = readme_blocks()[:2]
    assert "LocalCluster" in job and "allocate_rewards" in job
    subprocess.run([sys.executable, "-c", make_data], check=True, cwd=tmp_path, timeout=300)
    r = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    one = subprocess.run([sys.executable, "-c", ONE_PROCESS_AIRDROP], capture_output=True, text=True, cwd=tmp_path,
                         check=True).stdout.splitlines()
    assert lines[:6] == one[:6] and len([x for x in lines if x.startswith("  0x")]) == 5  # the same top holders
    assert one[6].startswith("True ")  # the same airdrop.csv
    holders = int(one[6].split()[1])
    assert lines[6:] == [f"airdrop: {holders} holders, {10**24} units"]
