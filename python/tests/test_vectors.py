"""The shared vectors (testdata/vectors.json) on both backends, as columns and as events."""

from __future__ import annotations

import math
import struct

import pytest

import poh_holdmetrics as phm
from conftest import load_vectors, vector_columns

VECTORS = load_vectors()


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_columns(v, backend):
    cols = vector_columns(v)
    if "error" in v:
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.calculate_score(cols, now=v["now"])
        want = v["error"]
        assert (ei.value.index, ei.value.field, ei.value.reason) == (want["index"], want["field"], want["reason"])
        assert str(ei.value)  # a message naming field and value
        assert want["field"] in str(ei.value)
    else:
        assert bits(phm.calculate_score(cols, now=v["now"])) == bits(v["score"])


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_events(v, backend):
    cols = vector_columns(v)
    rows = list(zip(cols["token_id"], cols["holder_id"], cols["start"], cols["end"], cols["weight"]))
    if "error" in v:
        want = v["error"]
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.calculate_score(rows, now=v["now"])  # tuples are converted with their index
        assert (ei.value.index, ei.value.field, ei.value.reason) == (want["index"], want["field"], want["reason"])
        if want["index"] >= 0:
            # The constructor rejects the same event, with no batch index.
            with pytest.raises(phm.InvalidEventError) as ei2:
                phm.HoldEvent(*rows[want["index"]])
            assert (ei2.value.index, ei2.value.field, ei2.value.reason) == (-1, want["field"], want["reason"])
        return
    evs = [phm.HoldEvent(*r) for r in rows]
    got = phm.calculate_score(evs, now=v["now"])
    assert bits(got) == bits(v["score"]), (got, v["score"])
    assert math.isfinite(got)


def test_error_text_matches_go(backend):
    """The same messages as core.ValidationError on both backends."""
    cases = [
        ({"start": [0, 10], "end": [1, 5]}, "event 1: end 5: is before start 10"),
        ({"start": [0], "weight": [-2.0]}, "event 0: weight -2: must be >= 0"),
        ({"start": [0], "weight": [1e201]}, "event 0: weight 1e+201: is larger than 1e200"),
        ({"start": [0], "weight": [math.nan]}, "event 0: weight nan: must be finite"),
        ({"start": [-1]}, "event 0: start -1: is outside [0, 253402300799]"),
        ({"start": [0], "token_id": [b"a\xffb"]}, 'event 0: token_id "a\\xffb": is not valid UTF-8'),
        ({"start": [0], "holder_id": ["x" * 300]},
         'event 0: holder_id "' + "x" * 64 + '"...: is 300 bytes, more than 256'),
    ]
    for cols, msg in cases:
        with pytest.raises(phm.InvalidEventError) as ei:
            phm.calculate_score(cols, now=100)
        assert str(ei.value) == msg
    with pytest.raises(phm.InvalidEventError, match=r"^now -1: is outside"):
        phm.calculate_score([], now=-1)
