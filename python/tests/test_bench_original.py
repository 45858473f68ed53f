"""The benchmarks of issue 18's shapes (python/bench/bench.py: await record and record_sync one
event per call, the cold ingest with a snapshot) run once here at a tiny size (BENCH_TINY=1),
so that they keep working (make bench-python runs them at full size; core/bench_original_test.go
is the Go side). They check results, never timings."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO, needs_native


@needs_native
@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="the bench scripts need numpy "
                    "(a test dependency; the Windows stage's CPython under Wine has none: docs/windows.md)")
def test_original_shapes_run_at_a_tiny_size():
    env = {**os.environ, "BENCH_TINY": "1"}
    r = subprocess.run([sys.executable, str(REPO / "python" / "bench" / "bench.py"), "record_one", "record_sync_one",
                        "cold_ingest"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    out = r.stdout
    assert "await agg.record(ev), one event per call" in out
    assert "record_sync(ev), one event per call, 200 events / 50 holders" in out
    assert "the original's quoted 484-542 ns CPU" in out
    for case in ("record_many_sync + snapshot()", "per-event record_sync + snapshot()",
                 "record_many_sync + snapshot(ordered=False)", "per-event record_sync + snapshot(ordered=False)"):
        assert f"cold: 200 new holders x 200 tokens, {case}" in out, out
    assert "the original's quoted 1,635 ns CPU" in out
