"""The binding's plumbing: every status code of the C API becomes its exception in one
place, and a partial batch reports all of its bad rows from one library call."""

from __future__ import annotations

import pytest

import poh_holdmetrics as phm
from poh_holdmetrics import _native

from conftest import needs_native

pytestmark = needs_native


def test_every_status_code_maps_to_its_exception():
    ffi, lib = _native.load()
    codes = {name: getattr(lib, name) for name in dir(lib) if name.startswith("POH_ERR_")}
    assert len(codes) >= 10
    assert set(codes) == set(_native.ERRORS), "a POH_ERR_* without an exception class, or a stale entry"
    assert len(set(codes.values())) == len(codes)
    for name, rc in codes.items():
        err = ffi.new("poh_error *")
        err.index = 3
        err.message = b"boom"
        e = _native.error_from(ffi, lib, rc, err)
        assert isinstance(e, _native.ERRORS[name]), name
        assert isinstance(e, phm.HoldMetricsError)
        assert "boom" in str(e)
    assert isinstance(_native.error_from(ffi, lib, 999, ffi.new("poh_error *")), phm.InternalError)


def test_call_raises_the_status_exception():
    ffi, lib = _native.load()
    buf = ffi.new("char[]", 2)  # too small for the version string
    with pytest.raises(phm.InternalError, match="version needs a buffer"):
        _native.call(lib.poh_version, buf, len(buf))


def test_partial_batch_errors_come_from_one_library_call(monkeypatch):
    """k bad rows: one poh_record call returns all k (index, field, reason, message)."""
    calls: list[str] = []
    real_call = _native.call

    def counting(fn, *args):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return real_call(fn, *args)

    bad = {3: ("weight", "negative"), 5: ("end", "end_before_start"), 8: ("start", "out_of_range")}
    batch = {"token_id": ["T"] * 10, "holder_id": [f"h{i}" for i in range(10)],
             "start": [0] * 10, "end": [10] * 10, "weight": [1.0] * 10}
    batch["weight"][3] = -1.0
    batch["start"][5] = 20  # after its end, 10
    batch["start"][8] = -1
    with phm.Aggregator() as agg:
        monkeypatch.setattr(_native, "call", counting)
        accepted, errors = agg.record_many_sync(batch, partial=True)
        monkeypatch.setattr(_native, "call", real_call)
        assert accepted == 7 and len(agg) == 7
        assert [(e.index, e.field, e.reason) for e in errors] == [(i, f, r) for i, (f, r) in bad.items()]
        assert all(str(e).startswith(f"event {e.index}: ") for e in errors)
    assert calls.count("poh_record") == 1, calls
