#!/usr/bin/env python3
"""CLI throughput: `poh-holdmetrics score` on a large generated CSV against pandas reading
and grouping the same file, in the same run (medians of --repeat runs, each a fresh process,
so import and start-up costs are counted on both sides). Also reports each side's peak RSS.

    python scripts/bench_cli.py [--rows 5000000] [--holders 100000] [--repeat 3] [--keep FILE]

Needs poh_holdmetrics (native backend), numpy, pandas and pyarrow importable by this Python.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

NOW = 1_700_000_000

# Each side runs in a child that prints "<peak RSS KiB>" on its last stderr line.
CLI = """
import resource, sys
from poh_holdmetrics._cli import main
rc = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""

PANDAS = """
import resource, sys
import numpy as np, pandas as pd
path, engine, now, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
df = pd.read_csv(path, engine=engine, dtype={"token_id": "string", "holder_id": "string", "start": "int64", "end": "float64", "weight": "float64"})
end = df["end"].fillna(now).clip(upper=now)
df["score"] = (end - df["start"]).clip(lower=0) * df["weight"].fillna(1.0)
if top:
    best = df.groupby("holder_id")["score"].sum().nlargest(top)
    print(best.index[0], best.iloc[0])
else:
    print(df["score"].sum())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def generate(path: str, rows: int, holders: int, seed: int = 1) -> None:
    import numpy as np
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("token_id,holder_id,start,end,weight\n")
        step = 1_000_000
        for lo in range(0, rows, step):
            n = min(step, rows - lo)
            start = rng.integers(NOW - 100_000_000, NOW, n)
            end = start + rng.integers(0, 10_000_000, n)
            open_ = rng.random(n) < 0.25
            weight = np.round(rng.random(n) * 1000, 2)
            hol = rng.integers(0, holders, n)
            f.writelines(f"T{h % 8},0x{h:08x},{s},{'' if o else e},{w!r}\n"
                         for h, s, e, o, w in zip(hol.tolist(), start.tolist(), end.tolist(), open_.tolist(),
                                                  weight.tolist()))


def timed(cmd: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return dt, int(r.stderr.strip().splitlines()[-1]), r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--holders", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="FILE", help="generate into (or reuse) FILE instead of a temporary file")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()

    tmp = None
    path = args.keep
    if path is None:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "holds.csv")
    if not os.path.exists(path):
        t0 = time.perf_counter()
        generate(path, args.rows, args.holders)
        print(f"generated {args.rows:,} rows ({os.path.getsize(path) / 2**20:.0f} MiB, {args.holders:,} holders) "
              f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    py = sys.executable
    cli = [py, "-c", CLI, "score", path, "--now", str(NOW), "--no-progress"]
    cases = {
        "cli total (pyarrow CSV engine)": cli + ["--format", "json"],
        "cli total (csv-module engine)": cli + ["--format", "json", "--engine", "python"],
        "cli --by-holder --top 100": cli + ["--by-holder", "--top", "100", "--format", "json"],
        "pandas read_csv (C) + groupby + nlargest(100)": [py, "-c", PANDAS, path, "c", str(NOW), "100"],
        "pandas read_csv (pyarrow) + groupby + nlargest(100)": [py, "-c", PANDAS, path, "pyarrow", str(NOW), "100"],
        "pandas read_csv (C) + sum": [py, "-c", PANDAS, path, "c", str(NOW), "0"],
    }
    results: dict[str, dict[str, float]] = {name: {"s": [], "rss": []} for name in cases}  # type: ignore[misc]
    outputs: dict[str, str] = {}
    for _ in range(args.repeat):  # interleaved, so drift hits every case alike
        for name, cmd in cases.items():
            dt, rss, out = timed(cmd)
            results[name]["s"].append(dt)
            results[name]["rss"].append(rss)
            outputs[name] = out
    # the two rankings agree on the best holder
    best_cli = json.loads(outputs["cli --by-holder --top 100"])["holders"][0]
    best_pd = outputs["pandas read_csv (C) + groupby + nlargest(100)"].split()
    assert best_cli["holder_id"] == best_pd[0], (best_cli, best_pd)
    assert abs(best_cli["score"] - float(best_pd[1])) <= 1e-9 * abs(best_cli["score"])

    rows = args.rows if args.keep is None else sum(1 for _ in open(path)) - 1
    base = statistics.median(results["pandas read_csv (C) + groupby + nlargest(100)"]["s"])
    print(f"\n{rows:,} rows, {os.path.getsize(path) / 2**20:.0f} MiB CSV, median of {args.repeat} fresh processes, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print(f"| {'case':<52} | {'median s':>8} | {'rows/s':>11} | {'vs pandas C groupby':>19} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 54}|{'-' * 10}:|{'-' * 12}:|{'-' * 20}:|{'-' * 13}:|")
    summary = {}
    for name, r in results.items():
        med = statistics.median(r["s"])
        rss = statistics.median(r["rss"]) / 1024
        summary[name] = {"median_s": med, "rows_per_s": rows / med, "ratio_vs_pandas": base / med, "rss_mib": rss}
        print(f"| {name:<52} | {med:8.2f} | {rows / med:11,.0f} | {base / med:18.2f}x | {rss:12.0f} |")
    if args.json:
        print(json.dumps(summary))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
