"""The benchmarks of python/bench run once here at a tiny size, so that none of them rots
(make bench-python runs them at full size). They assert results, never timings."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, needs_native


@needs_native
@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="the bench scripts need numpy "
                    "(a test dependency; the Windows stage's CPython under Wine has none: docs/windows.md)")
def test_peers_runs_and_agrees_at_a_tiny_size(tmp_path):
    """peers.py end to end on 3,000 rows: every engine installed here runs, and each one's
    result is ours (the script exits 1 otherwise); an engine not installed is skipped with
    its reason."""
    env = {**os.environ, "PEERS_ROWS": "3000", "PEERS_HOLDERS": "300", "PEERS_REPS": "1",
           "PEERS_JSON": str(tmp_path / "peers.json")}
    r = subprocess.run([sys.executable, str(REPO / "python" / "bench" / "peers.py")], env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "every peer's result is ours" in r.stdout
    assert "| per-holder score + top-100 | 2 |" in r.stdout and "| windowed score + TWAB, top-100 | 1 |" in r.stdout
    assert "targets met" in r.stdout and "Load average" in r.stdout
    saved = json.loads((tmp_path / "peers.json").read_text(encoding="utf-8"))
    assert saved["results"]["kernel 1"]["top100"]["cpu"] >= 0 and saved["rewards"]["ours"]["wall"] >= 0 \
        and saved["rewards"]["columns"]["cpu"] >= 0
    again = subprocess.run([sys.executable, str(REPO / "python" / "bench" / "peers.py"), "--report",
                            str(tmp_path / "peers.json")], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    table = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert [line for line in again.stdout.splitlines() if line.startswith("| ")] == table
    for mod in ("pandas", "polars", "duckdb"):
        installed = importlib.util.find_spec(mod) is not None
        assert (f"# {mod} skipped: {mod} not installed" in r.stdout) != installed, r.stdout
