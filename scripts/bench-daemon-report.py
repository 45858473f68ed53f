"""Summarise build/bench-daemon.jsonl (scripts/bench-daemon.sh) as a Markdown
table: medians over repeats, durable/in-memory ratios from the same run."""

import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = defaultdict(list)
for r in rows:
    if r["mode"] != "restart":
        groups[(r["mode"], r.get("args", ""), r["store"])].append(r)


def med(rs, key):
    vals = [r[key] for r in rs if key in r]
    return statistics.median(vals) if vals else float("nan")


print("| load | store | events/s (median) | p50 ms | p99 ms | durable / memory | daemon CPU µs/event |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for (mode, args, store), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "memory")):
    eps = med(rs, "events_per_sec")
    ratio = ""
    if store != "memory" and (mode, args, "memory") in groups:
        ratio = f"{eps / med(groups[(mode, args, 'memory')], 'events_per_sec'):.0%}"
    cpu = statistics.median(r["server_cpu_s"] / r["events"] * 1e6 for r in rs if r.get("events"))
    print(f"| {mode} {args} | {store} | {eps:,.0f} | {med(rs, 'p50_ms'):.2f} | {med(rs, 'p99_ms'):.2f} | {ratio} | {cpu:.2f} |")
print()
print("| restart | stored events | replayed | recovery ms | start to listening ms | data dir MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    if r["mode"] == "restart":
        print(f"| {r['phase']} | {r['stored_events']:,} | {r['events_replayed']:,} | {r['recover_ms']:,} | "
              f"{r['to_listening_ms']:,} | {r['data_bytes'] / 2**20:,.0f} |")
