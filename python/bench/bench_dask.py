"""poh_holdmetrics.dask against one process and against the plain Dask job a user would write,
in the same run, on the same Parquet files: per-holder scores of N rows / H holders
(default 20M / 1M), top 100, on a LocalCluster of 1 then 2 worker processes (one thread
each). Prints the medians, rows/s per worker and the 1 -> 2 worker scaling; checks that the
Dask ranking is the one-process ranking, bit for bit.

    POH_BENCH_DASK_ROWS=20000000 POH_BENCH_DASK_HOLDERS=1000000 POH_BENCH_DASK_REPEAT=3 python bench_dask.py

make test runs it once at a tiny size (so it does not rot); never a timed test.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import poh_holdmetrics as phm

ROWS = int(os.environ.get("POH_BENCH_DASK_ROWS", 20_000_000))
HOLDERS = int(os.environ.get("POH_BENCH_DASK_HOLDERS", 1_000_000))
REPEAT = int(os.environ.get("POH_BENCH_DASK_REPEAT", 3))
FILES = int(os.environ.get("POH_BENCH_DASK_FILES", 16))
NOW = 1_700_000_000
TOP = 100


def make(path: str) -> pa.Table:
    """ROWS hold events of HOLDERS holders, written as FILES Parquet files."""
    rng = np.random.default_rng(15)
    ids = pc.binary_join_element_wise("h", pc.cast(pa.array(rng.integers(0, HOLDERS, ROWS)), pa.string()), "")
    start = rng.integers(NOW - 10_000_000, NOW - 1, ROWS)
    end = start + rng.integers(0, 5_000_000, ROWS)
    table = pa.table({"holder_id": ids, "start": start,
                      "end": pa.array(end, mask=rng.random(ROWS) < 0.1),  # a tenth still held
                      "weight": rng.random(ROWS) * 1000})
    step = -(-ROWS // FILES)
    for i in range(FILES):
        pq.write_table(table.slice(i * step, step), os.path.join(path, f"part-{i:03d}.parquet"))
    return table


def timed(fn, repeat: int = REPEAT) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    import poh_holdmetrics.dask as pdk
    print(f"bench_dask: {ROWS:,} rows, {HOLDERS:,} holders, {FILES} Parquet files, median of {REPEAT}, "
          f"python {sys.version.split()[0]}, dask {dask.__version__}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        table = make(d)
        print(f"  data: {time.perf_counter() - t0:.1f} s to generate and write")
        results = {}
        for threads in (1, None):
            sec, one = timed(lambda: phm.score_by_holder(table, NOW, top=TOP, threads=threads))
            results[f"one process, kernel threads={threads or 'all'}"] = (sec, 1)
        table = None  # the workers read the files
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=40) as cluster, Client(cluster):
                ddf = dd.read_parquet(d, dtype_backend="pyarrow")
                sec, got = timed(lambda: pdk.score_by_holder(ddf, NOW, top=TOP))
                if got.to_arrow() != one.to_arrow() or list(np.asarray(got.to_arrow()["score"]).view(np.uint64)) != \
                        list(np.asarray(one.to_arrow()["score"]).view(np.uint64)):
                    raise SystemExit("bench_dask: the Dask ranking is not the one-process ranking")
                results[f"poh_holdmetrics.dask, {workers} worker(s)"] = (sec, workers)

                def plain() -> object:  # what a user writes: the term column, groupby-sum, top n
                    end = ddf["end"].fillna(NOW).clip(upper=NOW)
                    term = ((end - ddf["start"]).clip(lower=0) * ddf["weight"]).rename("term")
                    return ddf.assign(term=term).groupby("holder_id")["term"].sum().nlargest(TOP).compute()
                sec, _ = timed(plain)
                results[f"dask groupby-sum of the term, {workers} worker(s)"] = (sec, workers)
    print(f"  {'':52} {'median s':>9} {'rows/s per worker':>18}")
    for name, (sec, workers) in results.items():
        print(f"  {name:52} {sec:9.2f} {ROWS / sec / workers:18,.0f}")
    for what in ("poh_holdmetrics.dask", "dask groupby-sum of the term"):
        s1, s2 = results[f"{what}, 1 worker(s)"][0], results[f"{what}, 2 worker(s)"][0]
        print(f"  scaling 1 -> 2 workers, {what}: {s1 / s2:.2f}x")
    print(f"  dask ranking == one-process ranking (top {TOP}, bit for bit): yes")


if __name__ == "__main__":
    main()
