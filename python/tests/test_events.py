"""HoldEvent and HoldStat: validation of every bad-input class, time conversion, immutability."""

from __future__ import annotations

import math
import pickle
from datetime import datetime, timedelta, timezone

import pytest

import poh_holdmetrics as phm
from poh_holdmetrics import HoldEvent


def test_defaults_and_fields():
    e = HoldEvent("T", "alice", 10)
    assert (e.token_id, e.holder_id, e.start, e.end, e.weight) == ("T", "alice", 10, None, 1.0)
    assert e == HoldEvent("T", "alice", 10.9) and hash(e) == hash(HoldEvent("T", "alice", 10))
    assert pickle.loads(pickle.dumps(e)) == e
    assert "alice" in repr(e)


def test_immutable():
    e = HoldEvent("T", "a", 0, 5)
    with pytest.raises(AttributeError):
        e.start = 3  # type: ignore[misc]


def test_times_floats_and_datetimes():
    assert HoldEvent("T", "a", 1.9, 2.999).start == 1
    assert HoldEvent("T", "a", 1.9, 2.999).end == 2
    naive = datetime(2024, 1, 2, 3, 4, 5, 999999)
    aware = naive.replace(tzinfo=timezone(timedelta(hours=2)))
    assert HoldEvent("T", "a", naive).start == int(naive.replace(tzinfo=timezone.utc).timestamp())
    assert HoldEvent("T", "a", aware).start == int(naive.replace(tzinfo=timezone.utc).timestamp()) - 7200
    assert HoldEvent("T", "a", datetime(1970, 1, 1)).start == 0


@pytest.mark.parametrize("kwargs, field, reason", [
    ({"token_id": ""}, "token_id", "empty"),
    ({"holder_id": ""}, "holder_id", "empty"),
    ({"token_id": "x" * 257}, "token_id", "too_long"),
    ({"holder_id": "é" * 129}, "holder_id", "too_long"),
    ({"holder_id": b"\xff"}, "holder_id", "invalid_utf8"),
    ({"token_id": "\udc80"}, "token_id", "invalid_utf8"),
    ({"start": -1}, "start", "out_of_range"),
    ({"start": 253402300800}, "start", "out_of_range"),
    ({"start": 10**30}, "start", "out_of_range"),
    ({"start": math.nan}, "start", "out_of_range"),
    ({"start": datetime(1969, 12, 31, 23, 59, 59)}, "start", "out_of_range"),
    ({"end": 253402300800}, "end", "out_of_range"),
    ({"start": 10, "end": 5}, "end", "end_before_start"),
    ({"weight": math.nan}, "weight", "not_finite"),
    ({"weight": math.inf}, "weight", "not_finite"),
    ({"weight": -math.inf}, "weight", "not_finite"),
    ({"weight": -0.5}, "weight", "negative"),
    ({"weight": 1e201}, "weight", "out_of_range"),
    ({"weight": 10**400}, "weight", "out_of_range"),
    ({"start": "10"}, "start", "invalid_type"),
    ({"start": True}, "start", "invalid_type"),
    ({"end": "soon"}, "end", "invalid_type"),
    ({"weight": "1.5"}, "weight", "not_integer"),  # a str weight is an exact decimal amount
    ({"weight": "-1"}, "weight", "negative"),
    ({"weight": ""}, "weight", "empty"),
    ({"weight": -1}, "weight", "negative"),
    ({"weight": 2**256}, "weight", "out_of_range"),
    ({"weight": [1]}, "weight", "invalid_type"),
    ({"token_id": 5}, "token_id", "invalid_type"),
])
def test_bad_input_classes(kwargs, field, reason):
    args = {"token_id": "T", "holder_id": "a", "start": 0, "end": None, "weight": 1.0} | kwargs
    with pytest.raises(phm.InvalidEventError) as ei:
        HoldEvent(**args)
    e = ei.value
    assert (e.field, e.reason, e.index) == (field, reason, -1)
    assert isinstance(e, phm.HoldMetricsError) and isinstance(e, ValueError)
    assert str(e).startswith(field + " ")  # names the field, then the value
    assert pickle.loads(pickle.dumps(e)).field == field


def test_limits_inclusive():
    HoldEvent("x" * 256, "é" * 128, 0, 253402300799, 1e200)
    HoldEvent("T", "a", 5, 5, 0.0)


def test_holdstat_value_semantics():
    s = phm.HoldStat("a", 1.0, 2, 3, 0, 1, 10)
    assert s == phm.HoldStat("a", 1.0, 2, 3, 0, 1, 10) and s.holder_id == "a"
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(AttributeError):
        s.score = 2.0  # type: ignore[misc]
