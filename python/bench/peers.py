"""Peer benchmark (issue 14, make bench-python): the same generated holds through our batch
kernel (score_by_holder), our live aggregator (record_many + top_n), pandas, polars and
DuckDB; every peer's result checked equal to ours (top-100 ids and scores to 1e-9
relative); CPU and wall time, medians of PEERS_REPS runs, with one and two threads.

Each (engine, threads) pair runs in its own process (``peers.py --worker``), because the
thread counts of the Go runtime (GOMAXPROCS) and of polars (POLARS_MAX_THREADS) are fixed
when a process starts; every worker memory-maps the same Arrow file, and converts it to its
engine's own form (a pandas or polars DataFrame, a DuckDB table) before any clock starts.
CPU time is the worker's process time (every thread, Go's GC included): on a shared,
loaded machine it is the steadier figure; wall time also counts the waits for a core.

Work (PEERS_ROWS rows over PEERS_HOLDERS holders, default 10M / 1M; 10% open holds, every
closed hold ending by now):
  top100   per-holder score at now, the top 100 (score desc, holder_id asc)
  twab     per-holder windowed score / elapsed window (TWAB), the top 100
  all      every holder's score as a pyarrow Table (ours: the kernel's full ranking)
  record   ours: record_many of the batch into an Aggregator; pandas: groupby().sum()
  snapshot ours: the aggregator's 1M-holder snapshot as a pyarrow Table (snapshot_columns)
  rewards  allocate_rewards_columns (a pyarrow table in, columns out) and allocate_rewards (a dict
           in, RewardRows out), exact, over PEERS_HOLDERS integer scores
  cli      `poh-holdmetrics score FILE --by-holder --top 100` on a Parquet file of
           PEERS_PARQUET_ROWS rows (default half of PEERS_ROWS) against DuckDB's
           read_parquet + GROUP BY, each a fresh Python process

Targets (same-run ratios): kernel top100 and twab at or below DuckDB's time at the same
thread count and 10x faster than record_many + top_n; snapshot <= 100 ms; record_many at
least as fast as pandas groupby().sum(); rewards <= 1 s; cli at or below DuckDB.
polars and DuckDB are optional: without them their columns say why they were skipped.
A result that differs from ours fails the run (exit 1); a missed target does not.
PEERS_JSON=FILE also writes every measurement there; ``peers.py --report FILE`` prints
that run's table again.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOW = 1_700_000_000
WINDOW = (1_620_000_000, 1_680_000_000)
ELAPSED = min(WINDOW[1], NOW) - WINDOW[0]
TOP = 100
REL = 1e-9
ROWS = int(os.environ.get("PEERS_ROWS", 10_000_000))
HOLDERS = int(os.environ.get("PEERS_HOLDERS", 1_000_000))
PARQUET_ROWS = int(os.environ.get("PEERS_PARQUET_ROWS", ROWS // 2))
REPS = int(os.environ.get("PEERS_REPS", 3))
THREADS = [int(t) for t in os.environ.get("PEERS_THREADS", "1,2").split(",")]
HERE = Path(__file__).resolve().parent
ENGINES = ("kernel", "aggregator", "pandas", "polars", "duckdb")
OPTIONAL = {"polars": "polars", "duckdb": "duckdb", "pandas": "pandas"}


# --- data -----------------------------------------------------------------------------------

def generate(rows: int, holders: int):
    """The holds as a pyarrow Table: ids like addresses (0x + 40 hex digits, lowercase), four
    tokens, starts over ~3 years before now, 10% open, the rest closed by now, weights in
    [0, 100)."""
    import numpy as np
    import pyarrow as pa
    rng = np.random.default_rng(14)
    codes = pa.array(rng.integers(0, holders, rows))
    ids = pa.array([f"0x{i:040x}" for i in range(holders)]).take(codes)
    tokens = pa.array([f"TOKEN{i}" for i in range(4)]).take(pa.array(rng.integers(0, 4, rows)))
    start = rng.integers(NOW - 100_000_000, NOW - 1_000_000, rows)
    end = np.minimum(start + rng.integers(0, 20_000_000, rows), NOW)
    open_ = rng.random(rows) < 0.1
    weight = rng.random(rows) * 100
    return pa.table({"token_id": tokens, "holder_id": ids, "start": start,
                     "end": pa.array(end, mask=open_), "weight": weight})


def load(data_dir: Path, name: str = "holds.arrow"):
    import pyarrow as pa
    return pa.ipc.open_file(pa.memory_map(str(data_dir / name))).read_all()


# --- measuring ------------------------------------------------------------------------------

def measure(f, reps: int) -> dict:
    """Median CPU and wall seconds of reps runs of f, and the last run's result."""
    cpu, wall = [], []
    out = None
    for _ in range(reps):
        c, w = time.process_time(), time.perf_counter()
        out = f()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall), "result": out}


def top_rows(ids, scores) -> list[list]:
    """(holder_id, score) pairs as JSON-ready lists, ranked (score desc, holder_id asc)."""
    rows = sorted(zip(ids, scores), key=lambda r: (-r[1], r[0]))
    return [[h, float(s)] for h, s in rows[:TOP]]


# --- engines (each runs in its worker process) ----------------------------------------------

def run_kernel(table, threads: int, reps: int) -> dict:
    import poh_holdmetrics as phm

    def top100():
        r = phm.score_by_holder(table, now=NOW, top=TOP, threads=threads)
        return top_rows(r.holder_ids, r.scores())

    def twab():
        r = phm.score_by_holder(table, now=NOW, window=WINDOW, twab=True, top=TOP, threads=threads)
        return top_rows(r.holder_ids, r.scores())

    def every():
        t = phm.score_by_holder(table, now=NOW, threads=threads).to_arrow()
        return [t.num_rows, top_rows(t.column("holder_id").slice(0, TOP).to_pylist(),
                                     t.column("score").slice(0, TOP).to_pylist())]

    return {"top100": measure(top100, reps), "twab": measure(twab, reps), "all": measure(every, reps)}


def run_aggregator(table, threads: int, reps: int) -> dict:
    import asyncio

    import poh_holdmetrics as phm

    async def record(agg) -> None:
        await agg.record_many(table)

    def top100():
        with phm.Aggregator() as agg:
            asyncio.run(record(agg))
            top = agg.top_n(TOP, now=NOW)
        return top_rows([s.holder_id for s in top], [s.score for s in top])

    def twab():
        with phm.Aggregator(history=True) as agg:
            asyncio.run(record(agg))
            top = agg.top_n(TOP, now=NOW, window=WINDOW)
        return top_rows([s.holder_id for s in top], [s.score / ELAPSED for s in top])

    out = {"top100": measure(top100, reps), "twab": measure(twab, reps)}
    # record_many alone, and the snapshot of the holders it made as a pyarrow Table
    rec, snap, unordered = [], [], []
    for _ in range(reps):
        with phm.Aggregator() as agg:
            rec.append(measure(lambda: asyncio.run(record(agg)), 1))
            snap.append(measure(lambda: agg.snapshot_columns(NOW).to_arrow(), 1))
            unordered.append(measure(lambda: agg.snapshot_columns(NOW, ordered=False).to_arrow(), 1))
            holders = len(agg)
    out["record"] = {k: statistics.median(m[k] for m in rec) for k in ("cpu", "wall")}
    out["unordered"] = {k: statistics.median(m[k] for m in unordered) for k in ("cpu", "wall")}
    t = snap[-1]["result"]
    out["snapshot"] = {**{k: statistics.median(m[k] for m in snap) for k in ("cpu", "wall")},
                       "result": [t.num_rows, top_rows(t.column("holder_id").slice(0, TOP).to_pylist(),
                                                       t.column("score").slice(0, TOP).to_pylist())],
                       "holders": holders}
    return out


def run_pandas(table, threads: int, reps: int) -> dict:
    import numpy as np
    df = table.to_pandas()
    t0, t1 = WINDOW

    def scores(window: bool):
        end = np.minimum(df["end"].fillna(NOW).to_numpy(dtype=np.int64), NOW)
        start = df["start"].to_numpy()
        if window:
            end, start = np.minimum(end, t1), np.maximum(start, t0)
        return df[["holder_id"]].assign(score=(end - start).clip(0) * df["weight"].to_numpy())

    def top100():
        s = scores(False).groupby("holder_id")["score"].sum().nlargest(TOP)
        return top_rows(s.index.tolist(), s.tolist())

    def twab():
        s = (scores(True).groupby("holder_id")["score"].sum() / ELAPSED).nlargest(TOP)
        return top_rows(s.index.tolist(), s.tolist())

    def every():
        import pyarrow as pa
        t = pa.Table.from_pandas(scores(False).groupby("holder_id", as_index=False)["score"].sum())
        return [t.num_rows, None]

    def groupby_sum():
        df.groupby("holder_id")["weight"].sum()

    return {"top100": measure(top100, reps), "twab": measure(twab, reps), "all": measure(every, reps),
            "record": measure(groupby_sum, reps)}


def run_polars(table, threads: int, reps: int) -> dict:
    import polars as pl
    df = pl.from_arrow(table)
    t0, t1 = WINDOW
    end = pl.min_horizontal(pl.col("end").fill_null(NOW), pl.lit(NOW))
    score = ((end - pl.col("start")).clip(lower_bound=0) * pl.col("weight")).alias("score")
    wscore = ((pl.min_horizontal(end, pl.lit(t1)) - pl.max_horizontal(pl.col("start"), pl.lit(t0)))
              .clip(lower_bound=0) * pl.col("weight")).alias("score")

    def top(expr, div: float):
        r = (df.lazy().group_by("holder_id").agg(expr.sum() / div).top_k(TOP, by="score").collect())
        return top_rows(r["holder_id"].to_list(), r["score"].to_list())

    def every():
        t = df.lazy().group_by("holder_id").agg(score.sum()).collect().to_arrow()
        return [t.num_rows, None]

    return {"top100": measure(lambda: top(score, 1), reps), "twab": measure(lambda: top(wscore, ELAPSED), reps),
            "all": measure(every, reps)}


def duckdb_sql(source: str, window: bool, limit: bool = True) -> str:
    end = f'least(coalesce("end", {NOW}), {NOW})'
    start = "start"
    if window:
        end, start = f"least({end}, {WINDOW[1]})", f"greatest(start, {WINDOW[0]})"
    div = f" / {ELAPSED}" if window else ""
    sql = f"select holder_id, sum(greatest({end} - {start}, 0) * weight){div} as score from {source} group by holder_id"
    return sql + (f" order by score desc, holder_id limit {TOP}" if limit else "")


def run_duckdb(table, threads: int, reps: int) -> dict:
    import duckdb
    con = duckdb.connect()
    con.execute(f"set threads = {threads}")
    con.execute("set enable_progress_bar = false")
    con.register("src", table)
    con.execute("create table holds as select * from src")  # DuckDB's own storage, loaded untimed
    con.unregister("src")

    def top(window: bool):
        rows = con.execute(duckdb_sql("holds", window)).fetchall()
        return top_rows([r[0] for r in rows], [r[1] for r in rows])

    def every():
        t = con.sql(duckdb_sql("holds", False, limit=False)).to_arrow_table() if hasattr(
            duckdb.DuckDBPyRelation, "to_arrow_table") else con.sql(duckdb_sql("holds", False, limit=False)).arrow()
        return [t.num_rows, None]

    return {"top100": measure(lambda: top(False), reps), "twab": measure(lambda: top(True), reps),
            "all": measure(every, reps)}


RUNNERS = {"kernel": run_kernel, "aggregator": run_aggregator, "pandas": run_pandas, "polars": run_polars,
           "duckdb": run_duckdb}


def worker(engine: str, threads: int, data_dir: Path) -> None:
    """One engine at one thread count: its measurements as one JSON line on stdout."""
    table = load(data_dir)
    # Once on a small slice first, so that no measured run pays for one-time costs (loading
    # the library, importing pyarrow.compute, a query engine's first plan).
    RUNNERS[engine](table.slice(0, min(table.num_rows, 1000)), threads, 1)
    print(json.dumps(RUNNERS[engine](table, threads, REPS)), flush=True)


# --- the other work: rewards, the CLI ---------------------------------------------------------

def bench_rewards(holders: int) -> dict:
    import numpy as np

    import poh_holdmetrics as phm
    rng = np.random.default_rng(15)
    scores = dict(zip((f"0x{i:040x}" for i in range(holders)),
                      (rng.integers(1, 2**62, holders, dtype=np.int64).astype(object) * 10**6).tolist()))
    pool = 10**27
    rows = phm.allocate_rewards(scores, pool)
    assert len(rows) == holders and sum(r.amount for r in rows) == pool
    # The columnar entry point, from a pyarrow table of the same scores (decimal128, as DuckDB
    # and polars hand integer sums over): checked equal to the rows, amount for amount.
    import pyarrow as pa
    table = pa.table({"holder_id": pa.array(list(scores), pa.large_string()),
                      "score": pa.array(list(scores.values()), pa.decimal128(38, 0))})
    cols = phm.allocate_rewards_columns(table, pool)
    if cols.amounts() != [r.amount for r in rows] or cols.holder_ids != [r.holder_id for r in rows]:
        raise AssertionError("allocate_rewards_columns differs from allocate_rewards")
    arr = np.array(list(scores.values()), dtype=np.float64)
    out = {"ours": measure(lambda: phm.allocate_rewards(scores, pool), REPS),
           "columns": measure(lambda: phm.allocate_rewards_columns(table, pool), REPS),
           "columns_arrow": measure(lambda: phm.allocate_rewards_columns(table, pool).to_arrow(), REPS),
           "numpy": measure(lambda: np.floor(pool * (arr / arr.sum())), REPS)}
    for m in out.values():
        m["result"] = None  # checked above; not reported
    return out


def child_run(argv: list[str], env: dict) -> tuple[float, float, str]:
    """(CPU, wall, stdout) of one child process; CPU from the children's rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {r.returncode}: {r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, r.stdout


def bench_cli(parquet: Path, threads: int, have_duckdb: bool) -> dict:
    """The CLI on the Parquet file against DuckDB's read_parquet + GROUP BY, both a fresh
    Python process (interpreter start and imports counted alike)."""
    env = {**os.environ, "GOMAXPROCS": str(threads)}
    cli = [sys.executable, "-m", "poh_holdmetrics", "score", str(parquet), "--by-holder", "--top", str(TOP),
           "--now", str(NOW), "--format", "json", "--no-progress"]
    duck = [sys.executable, "-c", "import duckdb, json, sys; con = duckdb.connect(); "
            f"con.execute('set threads = {threads}'); con.execute('set enable_progress_bar = false'); "
            "print(json.dumps(con.execute(sys.argv[1]).fetchall()))",
            duckdb_sql(f"read_parquet('{parquet}')", False)]
    out: dict = {}
    runs = [child_run(cli, env) for _ in range(REPS)]
    got = json.loads(runs[-1][2])["holders"]
    print(f"# cli with {threads} threads: {fmt(median_of(runs))} (CPU / wall s)", flush=True)
    out["ours"] = {"cpu": statistics.median(r[0] for r in runs), "wall": statistics.median(r[1] for r in runs),
                   "result": top_rows([r["holder_id"] for r in got], [r["score"] for r in got])}
    if have_duckdb:
        runs = [child_run(duck, env) for _ in range(REPS)]
        rows = json.loads(runs[-1][2].strip().splitlines()[-1])
        print(f"# duckdb read_parquet with {threads} threads: {fmt(median_of(runs))}", flush=True)
        out["duckdb"] = {"cpu": statistics.median(r[0] for r in runs), "wall": statistics.median(r[1] for r in runs),
                         "result": top_rows([r[0] for r in rows], [r[1] for r in rows])}
    return out


def median_of(runs: list[tuple[float, float, str]]) -> dict:
    return {"cpu": statistics.median(r[0] for r in runs), "wall": statistics.median(r[1] for r in runs)}


# --- checking and reporting ---------------------------------------------------------------

def same_top(ours: list[list], theirs: list[list], what: str) -> str | None:
    """None if theirs is ours: the same ids in the same order with scores within REL, except
    where two scores are within REL of each other (a near-tie may rank either way)."""
    if len(ours) != len(theirs):
        return f"{what}: {len(theirs)} rows, ours {len(ours)}"
    mine = dict((h, s) for h, s in ours)
    low = min((s for _, s in ours), default=0.0)
    for i, ((h, s), (h2, s2)) in enumerate(zip(ours, theirs)):
        if abs(s - s2) > REL * max(abs(s), abs(s2)):
            return f"{what}: rank {i + 1}: score {s2!r} ({h2}), ours {s!r} ({h})"
        if h != h2 and (h2 not in mine or abs(mine[h2] - s2) > REL * abs(s2)) and abs(s2 - low) > REL * abs(low):
            return f"{what}: rank {i + 1}: holder {h2}, ours {h}"
    return None


def fmt(m: dict | None) -> str:
    if m is None:
        return "—"
    return f"{m['cpu']:.2f} / {m['wall']:.2f}"


def ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    if a is None or b is None or not b[key]:
        return None
    return a[key] / b[key]


def rfmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def main() -> int:
    import numpy as np  # noqa: F401  (a bench dependency: fail early, not in a worker)
    import pyarrow.parquet as pq

    import poh_holdmetrics as phm
    assert phm.backend == "native", "the peer benchmark needs the native library"
    missing = {}
    for engine, mod in OPTIONAL.items():
        try:
            __import__(mod)
        except ImportError:
            missing[engine] = f"{mod} not installed (pip install {mod})"
    versions = {m: __import__(m).__version__ for m in ("numpy", "pyarrow", "pandas", "polars", "duckdb")
                if m not in missing and (m != "pandas" or "pandas" not in missing)}
    load_start = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip() if shutil.which("uptime") else ""
    print(f"# peers: {ROWS:,} rows / {HOLDERS:,} holders, {REPS} runs each (medians), threads {THREADS}, "
          f"poh_holdmetrics {phm.__version__}, Python {sys.version.split()[0]}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()) + f", {os.cpu_count()} CPUs", flush=True)
    print(f"# load at start: {uptime or load_start}", flush=True)
    for engine, why in missing.items():
        print(f"# {engine} skipped: {why}", flush=True)

    failures: list[str] = []
    results: dict[str, dict] = {}  # "engine threads" -> work -> measurement
    with tempfile.TemporaryDirectory(prefix="poh-peers-") as tmp:
        data_dir = Path(tmp)
        t = time.perf_counter()
        table = generate(ROWS, HOLDERS)
        import pyarrow as pa
        with pa.OSFile(str(data_dir / "holds.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
        parquet = data_dir / "holds.parquet"
        pq.write_table(table.slice(0, PARQUET_ROWS), parquet)
        del table
        print(f"# data generated in {time.perf_counter() - t:.1f} s", flush=True)
        for threads in THREADS:
            for engine in ENGINES:
                if engine in missing or (engine == "pandas" and threads != THREADS[0]):
                    continue  # pandas runs on one thread: its figures stand for every count
                env = {**os.environ, "GOMAXPROCS": str(threads), "POLARS_MAX_THREADS": str(threads)}
                t = time.perf_counter()
                r = subprocess.run([sys.executable, __file__, "--worker", engine, str(threads), str(data_dir)],
                                   env=env, capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{engine} ({threads} threads) failed: {r.stderr[-3000:]}")
                    print(f"# {engine} with {threads} threads FAILED", flush=True)
                    continue
                results[f"{engine} {threads}"] = res = json.loads(r.stdout.strip().splitlines()[-1])
                print(f"# {engine} with {threads} threads ({time.perf_counter() - t:.0f} s): "
                      + ", ".join(f"{w} {fmt(m)}" for w, m in res.items()), flush=True)
        rewards = bench_rewards(HOLDERS)
        print(f"# rewards: columns {fmt(rewards['columns'])}, rows {fmt(rewards['ours'])}", flush=True)
        cli: dict[str, dict] = {}
        for threads in THREADS:
            try:
                cli[str(threads)] = bench_cli(parquet, threads, "duckdb" not in missing)
            except (RuntimeError, ValueError, KeyError) as e:  # report it with the rest, not lose the run
                failures.append(f"cli ({threads} threads): {e}")
                cli[str(threads)] = {"ours": None}
    uptime_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip() if shutil.which(
        "uptime") else ""
    data = {"meta": {"rows": ROWS, "holders": HOLDERS, "parquet_rows": PARQUET_ROWS, "reps": REPS,
                     "threads": THREADS, "load_start": list(load_start), "load_end": list(os.getloadavg()),
                     "uptime_end": uptime_end, "failures": failures},
            "results": results, "rewards": rewards, "cli": cli}
    if os.environ.get("PEERS_JSON"):
        Path(os.environ["PEERS_JSON"]).write_text(json.dumps(data))
    return report(data)


def report(data: dict) -> int:
    """Checks every peer's result against ours and prints the table of one run (data: what
    main measured, or a PEERS_JSON file read back by ``peers.py --report FILE``). 1 if a
    result differs or a measurement failed."""
    meta, results, rewards, cli = data["meta"], data["results"], data["rewards"], data["cli"]
    threads_all, failures = meta["threads"], list(meta["failures"])

    def get(engine: str, threads: int, work: str) -> dict | None:
        r = results.get(f"{engine} {threads_all[0] if engine == 'pandas' else threads}")
        return None if r is None else r.get(work)

    # every peer's result against ours
    for threads in threads_all:
        for work in ("top100", "twab"):
            ours = get("kernel", threads, work)
            if ours is None:
                continue
            for engine in ENGINES[1:]:
                m = get(engine, threads, work)
                if m is not None and (bad := same_top(ours["result"], m["result"], f"{work} {engine} {threads}t")):
                    failures.append(bad)
        k_all = get("kernel", threads, "all")
        for engine, work in (("aggregator", "snapshot"), ("pandas", "all"), ("polars", "all"), ("duckdb", "all")):
            m = get(engine, threads, work)
            if k_all is not None and m is not None and m["result"][0] != k_all["result"][0]:
                failures.append(f"{work} {engine} {threads}t: {m['result'][0]} holders, ours {k_all['result'][0]}")
        snap = get("aggregator", threads, "snapshot")
        if k_all is not None and snap is not None and (
                bad := same_top(k_all["result"][1], snap["result"][1], f"snapshot {threads}t")):
            failures.append(bad)
        c = cli[str(threads)]
        if c["ours"] is not None and "duckdb" in c and (
                bad := same_top(c["ours"]["result"], c["duckdb"]["result"], f"cli {threads}t")):
            failures.append(bad)

    # the table
    verdicts: list[tuple[str, bool]] = []

    def verdict(name: str, ok: bool, what: str) -> str:
        verdicts.append((name, ok))
        return f"{what}: {'met' if ok else '**missed**'}"

    lines = ["| work | threads | kernel | aggregator | pandas | polars | DuckDB | kernel ÷ DuckDB (CPU, wall) "
             "| aggregator ÷ kernel (CPU, wall) | target (CPU) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    names = {"top100": f"per-holder score + top-{TOP}", "twab": f"windowed score + TWAB, top-{TOP}",
             "all": "every holder's score → pyarrow.Table"}
    for work in ("top100", "twab", "all"):
        for threads in threads_all:
            k = get("kernel", threads, work)
            a = get("aggregator", threads, work) if work != "all" else None
            d = get("duckdb", threads, work)
            cells = [fmt(k), fmt(a) if work != "all" else "", fmt(get("pandas", threads, work)),
                     fmt(get("polars", threads, work)), fmt(d)]
            kd = (ratio(k, d, "cpu"), ratio(k, d, "wall"))
            ak = (ratio(a, k, "cpu"), ratio(a, k, "wall"))
            target = ""
            if work != "all":
                target = "; ".join(x for x in (
                    verdict(f"{work} {threads}t ≤ DuckDB", kd[0] <= 1.0, "≤ DuckDB") if kd[0] is not None else "",
                    verdict(f"{work} {threads}t ≥ 10x aggregator", ak[0] >= 10, "≥ 10x aggregator")
                    if ak[0] is not None else "") if x)
            lines.append(f"| {names[work]} | {threads} | " + " | ".join(cells)
                         + f" | {rfmt(kd[0])}, {rfmt(kd[1])} | {rfmt(ak[0])}, {rfmt(ak[1])} | {target} |")
    for threads in threads_all:
        s = get("aggregator", threads, "snapshot")
        if s is not None:
            lines.append(f"| aggregator snapshot of {s['holders']:,} holders → pyarrow.Table (`snapshot_columns`) "
                         f"| {threads} | | {fmt(s)} | | | | | | "
                         + verdict(f"snapshot {threads}t", s["cpu"] <= 0.100, "≤ 0.100 s") + " |")
            lines.append(f"| same, unranked (`snapshot_columns(ordered=False)`) | {threads} | | "
                         f"{fmt(get('aggregator', threads, 'unordered'))} | | | | | | |")
    for threads in threads_all:
        r, p = get("aggregator", threads, "record"), get("pandas", threads, "record")
        if r is not None and p is not None:
            x = ratio(r, p, "cpu")
            lines.append(f"| `record_many`, {meta['rows']:,} rows / {meta['holders']:,} holders, vs pandas "
                         f"`groupby().sum()` | {threads} | | {fmt(r)} | {fmt(p)} | | | aggregator ÷ pandas: "
                         f"{rfmt(x)}, {rfmt(ratio(r, p, 'wall'))} | | "
                         + verdict(f"record {threads}t", x <= 1.0, "≤ pandas") + " |")
    if "columns" in rewards:
        lines.append(f"| `allocate_rewards_columns`, exact, {meta['holders']:,} integer scores from a pyarrow "
                     f"table (numpy: its inexact float split) | 1 | {fmt(rewards['columns'])} | | "
                     f"{fmt(rewards['numpy'])} (numpy) | | | | | "
                     + verdict("rewards", rewards["columns"]["cpu"] <= 1.0, "≤ 1 s") + " |")
        lines.append(f"| same, then `.to_arrow()` (the result as a pyarrow.Table) | 1 | {fmt(rewards['columns_arrow'])} "
                     "| | | | | | | |")
    lines.append(f"| `allocate_rewards`, exact, {meta['holders']:,} integer scores, a dict in and RewardRows out "
                 f"| 1 | {fmt(rewards['ours'])} | | | | | | | |")
    for threads in threads_all:
        o, d = cli[str(threads)]["ours"], cli[str(threads)].get("duckdb")
        if o is None:
            continue
        x = ratio(o, d, "cpu")
        target = verdict(f"cli {threads}t", x <= 1.0, "≤ DuckDB") if x is not None else ""
        lines.append(f"| `score FILE --by-holder --top {TOP}`, {meta['parquet_rows']:,}-row Parquet, vs DuckDB "
                     f"`read_parquet` + `GROUP BY` (fresh processes) | {threads} | {fmt(o)} | | | | {fmt(d)} | "
                     f"{rfmt(x)}, {rfmt(ratio(o, d, 'wall'))} | | {target} |")
    print()
    print(f"Cells are CPU / wall seconds, medians of {meta['reps']} runs; ratios are of the same run. pandas is "
          f"single-threaded (its figures, run with {threads_all[0]} thread(s) allowed, stand in every row); the CLI's "
          "thread count bounds the Go runtime (GOMAXPROCS) and DuckDB, not pyarrow's Parquet reader.")
    print()
    print("\n".join(lines))
    print()
    load = (" ".join(f"{x:.2f}" for x in meta["load_start"]), " ".join(f"{x:.2f}" for x in meta["load_end"]))
    print(f"Load average (1, 5, 15 min): {load[0]} at the start, {load[1]} at the end"
          + (f" ({meta['uptime_end']})" if meta["uptime_end"] else "") + ".")
    met = sum(1 for _, ok in verdicts if ok)
    print(f"{met} targets met, {len(verdicts) - met} missed: "
          + (", ".join(n for n, ok in verdicts if not ok) or "none"))
    if failures:
        print("\nRESULTS DIFFER FROM OURS (or a measurement failed):\n  " + "\n  ".join(failures))
        return 1
    print("every peer's result is ours (top-100 ids and scores to 1e-9 relative, holder counts)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--report":
        sys.exit(report(json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))))
    else:
        sys.exit(main())
