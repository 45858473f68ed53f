"""Shared fixtures. The suite runs against the installed package (make test installs the
wheel into a fresh venv); with POH_HOLDMETRICS_PURE=1 it is the fallback-only suite."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import poh_holdmetrics as phm
from poh_holdmetrics import _native, _score

REPO = Path(__file__).resolve().parents[2]
PURE = os.environ.get("POH_HOLDMETRICS_PURE", "") not in ("", "0")

needs_native = pytest.mark.skipif(PURE, reason="POH_HOLDMETRICS_PURE=1: the fallback-only suite has no native library")


def load_vectors() -> list[dict]:
    return json.loads((REPO / "testdata" / "vectors.json").read_text(encoding="utf-8"))["vectors"]


def vector_weight(w):
    if w is None:
        return 1.0
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(w, w) if isinstance(w, str) else float(w)


def vector_columns(v: dict) -> dict:
    """A vector's events as a dict of columns (ids as bytes where the vector gives hex)."""
    cols: dict[str, list] = {k: [] for k in ("token_id", "holder_id", "start", "end", "weight")}
    for e in v["events"]:
        for f in ("token_id", "holder_id"):
            cols[f].append(bytes.fromhex(e[f + "_hex"]) if f + "_hex" in e else e[f])
        cols["start"].append(e["start"])
        cols["end"].append(e.get("end"))
        cols["weight"].append(vector_weight(e.get("weight")))
    return cols


@pytest.fixture(params=["native", "python"])
def backend(request, monkeypatch):
    """Runs a test once per backend: "python" forces calculate_score onto the fallback."""
    if request.param == "native":
        if PURE:
            pytest.skip("POH_HOLDMETRICS_PURE=1: native backend disabled")
        assert _native.available(), "the installed wheel must carry a loadable native library"
    else:
        monkeypatch.setattr(_score, "_native_or_none", lambda: None)
    return request.param


@pytest.fixture
def agg():
    if PURE:
        pytest.skip("POH_HOLDMETRICS_PURE=1: Aggregator needs the native library")
    a = phm.Aggregator()
    yield a
    a.close()
