"""_time: Python values and text into Unix seconds, windows into validated pairs; the one
module every caller (HoldEvent, calculate_score, the Aggregator, the CLI) goes through."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from poh_holdmetrics import InvalidEventError, _events, _score, _time
from poh_holdmetrics._time import (parse_time, parse_time_field, parse_window, resolve_now, resolve_window,
                                   to_seconds)

T2024 = 1704067200  # 2024-01-01T00:00:00Z


def test_one_implementation_behind_every_import():
    # Other modules import these names from _events and _score; they must be _time's.
    assert _events.to_seconds is to_seconds
    assert (_events.TimeLike, _events.WindowLike) == (_time.TimeLike, _time.WindowLike)
    assert _score.resolve_now is resolve_now and _score.resolve_window is resolve_window


# --- Python values ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, want", [
    (5, 5), (-5, -5), (1.9, 1), (-1.5, -2), (datetime(2024, 1, 1), T2024),
    (datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), T2024),
    (datetime(2024, 1, 1, 0, 0, 0, 999999), T2024), (datetime(1969, 12, 31, 23, 59, 59, 500000), -1),
])
def test_to_seconds(value, want):
    assert to_seconds(value, "start") == want


def test_to_seconds_numpy_scalars():
    np = pytest.importorskip("numpy")
    assert to_seconds(np.int64(7), "start") == 7
    assert to_seconds(np.float32(7.5), "start") == 7
    assert to_seconds(np.datetime64("2024-01-01T00:00:00.9"), "start") == T2024
    with pytest.raises(InvalidEventError, match="must be a time, not NaT") as e:
        to_seconds(np.datetime64("NaT"), "end", 3)
    assert (e.value.field, e.value.index, e.value.reason) == ("end", 3, "invalid_type")


@pytest.mark.parametrize("value, text, reason", [
    (True, "event 2: start True: must be Unix seconds or a datetime, not bool", "invalid_type"),
    ("5", "event 2: start '5': must be Unix seconds or a datetime, not str", "invalid_type"),
    (date(2024, 1, 1), "event 2: start datetime.date(2024, 1, 1): must be Unix seconds or a datetime "
                       "(a date has no time of day), not date", "invalid_type"),
    (float("inf"), "event 2: start inf: is outside [0, 253402300799]", "out_of_range"),
])
def test_to_seconds_rejects(value, text, reason):
    with pytest.raises(InvalidEventError) as e:
        to_seconds(value, "start", 2)
    assert str(e.value) == text
    assert (e.value.field, e.value.index, e.value.reason) == ("start", 2, reason)


def test_resolve_now():
    import time
    before = int(time.time())
    assert before <= resolve_now(None) <= int(time.time())
    assert resolve_now(datetime(2024, 1, 1)) == T2024
    with pytest.raises(InvalidEventError, match=r"^at -1: is outside \[0, 253402300799\]$") as e:
        resolve_now(-1, "at")
    assert e.value.field == "at" and e.value.reason == "out_of_range"


def test_resolve_window():
    assert resolve_window(None) is None
    assert resolve_window((1.5, datetime(2024, 1, 1))) == (1, T2024)
    assert resolve_window([3, 3]) == (3, 3)
    with pytest.raises(InvalidEventError, match=r"^window 5: must be a \(t0, t1\) pair of times$") as e:
        resolve_window(5)
    assert e.value.reason == "invalid_type"
    with pytest.raises(InvalidEventError, match=r"^window \[9, 3\): end 3 is before start 9$"):
        resolve_window((9, 3))
    with pytest.raises(InvalidEventError, match="start -1 and end 3 must lie in"):
        resolve_window((-1, 3))


# --- text -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("5", 5), (" 12 ", 12), ("-1", -1), ("1_000", 1000), ("1.9", 1), ("-1.5", -2), ("1e3", 1000),
    ("2024-01-01", T2024), ("2024-01-01T00:00:00Z", T2024), ("2024-01-01T02:00:00+02:00", T2024),
    ("2024-01-01 00:00:00.999", T2024),
])
def test_parse_time(text, want):
    assert parse_time(text) == want


@pytest.mark.parametrize("text", ["soon", "", " ", "inf", "nan", "-inf", "1e400", "2024-13-01", "0x10"])
def test_parse_time_rejects(text):
    with pytest.raises(ValueError) as e:
        parse_time(text)
    assert str(e.value) == f"{text!r} is not Unix seconds or an ISO 8601 time"


@pytest.mark.parametrize("value, want", [
    (None, None), ("", None), ("  ", None), (7, 7), (7.9, 7), (" 7 ", 7), ("2024-01-01T00:00:00Z", T2024),
])
def test_parse_time_field(value, want):
    assert parse_time_field(value) == want


@pytest.mark.parametrize("value", [True, False, float("inf"), float("nan"), [], {}, "x"])
def test_parse_time_field_rejects(value):
    with pytest.raises(ValueError):
        parse_time_field(value)


@pytest.mark.parametrize("text, want", [
    ("1,2", (1, 2)), (" 1 , 2 ", (1, 2)), ("5,5", (5, 5)), ("1.5,2.5", (1, 2)),
    ("2024-01-01,2024-01-02T00:00:00Z", (T2024, T2024 + 86400)),
])
def test_parse_window(text, want):
    assert parse_window(text) == want


@pytest.mark.parametrize("text, message", [
    ("1", "window '1': expected T0,T1 (Unix seconds or ISO 8601)"),
    ("1,2,3", "window '1,2,3': expected T0,T1 (Unix seconds or ISO 8601)"),
    ("1, x", "window '1, x': 'x' is not Unix seconds or an ISO 8601 time"),
    (",", "window ',': '' is not Unix seconds or an ISO 8601 time"),
    ("200,100", "window '200,100': end 100 is before start 200"),
])
def test_parse_window_rejects(text, message):
    with pytest.raises(ValueError) as e:
        parse_window(text)
    assert str(e.value) == message


def test_text_and_values_agree():
    # The same instant as text (CLI, input rows) and as a datetime (the API).
    for text in ("2024-06-30T12:34:56.5+05:30", "1999-12-31", "2024-01-01T00:00:00.999999"):
        d = datetime.fromisoformat(text)
        assert parse_time(text) == to_seconds(d, "start")
