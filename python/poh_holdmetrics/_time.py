"""Times and windows: every conversion of a value into whole Unix seconds, and of a pair into
a validated (t0, t1) window, in one place.

Two kinds of input, one result (whole Unix seconds, floored):

* Python values, for the API (HoldEvent, calculate_score, the Aggregator): ``to_seconds``,
  ``resolve_now``, ``resolve_window``. ints as they are, floats floored, datetimes (naive =
  UTC) floored to the second, numpy scalars; a wrong type is an InvalidEventError.
* Text, for the command line (``--now``, ``--window``) and the time fields of input rows:
  ``parse_time``, ``parse_time_field``, ``parse_window``. An integer, a float (floored) or
  ISO 8601 / RFC 3339 (naive = UTC); anything else is a ValueError saying why.

The range and order rules themselves (0 <= t <= MAX_TIME, t0 <= t1) are the Go core's and
live with the fallback in _pure; the columnar (numpy / pandas / pyarrow) conversions live in
_columns. This module imports nothing heavy: the package imports it.
"""

from __future__ import annotations

import math
import numbers
import time
from datetime import date, datetime, timedelta, timezone
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _pure
from ._errors import InvalidEventError

#: A time accepted wherever the API takes one: Unix seconds (int, or float floored) or a
#: datetime (naive = UTC, floored to the second).
TimeLike = int | float | datetime
#: A window [t0, t1): a pair of times, ``t0 <= t1``.
WindowLike = tuple[TimeLike, TimeLike]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def type_error(index: int, field: str, value: object, expected: str) -> InvalidEventError:
    """The InvalidEventError (reason ``invalid_type``) for a value of the wrong Python type.
    A Python-only check (the Go core has no types to confuse); _events uses it too."""
    return _pure.invalid(index, field, repr(value), "invalid_type",
                         f"must be {expected}, not {type(value).__name__}")


# --- Python values (the API) ----------------------------------------------------------------

def to_seconds(value: Any, field: str, index: int = -1) -> int:
    """A time value as whole Unix seconds (not range-checked): ints as they are, floats
    floored, datetimes (naive = UTC) floored to the second. Anything else is rejected."""
    if isinstance(value, bool):
        raise type_error(index, field, value, "Unix seconds or a datetime")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _pure.invalid(index, field, _pure.go_float(value), "out_of_range",
                                f"is outside [{_pure.MIN_TIME}, {_pure.MAX_TIME}]")
        return math.floor(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return (value - _EPOCH_NAIVE) // _SECOND
        return (value - _EPOCH) // _SECOND
    if isinstance(value, numbers.Integral):  # numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # numpy floats
        return to_seconds(float(value), field, index)
    if type(value).__name__ == "datetime64":  # numpy.datetime64, without importing numpy
        if str(value) == "NaT":
            raise type_error(index, field, value, "a time, not NaT")
        us = int(value.astype("datetime64[us]").astype("int64"))
        return us // 1_000_000
    if isinstance(value, date):
        raise type_error(index, field, value, "Unix seconds or a datetime (a date has no time of day)")
    raise type_error(index, field, value, "Unix seconds or a datetime")


def resolve_now(now: TimeLike | None, field: str = "now") -> int:
    """now as validated Unix seconds (None = the wall clock)."""
    t = int(time.time()) if now is None else to_seconds(now, field)
    _pure.check_time(-1, field, t)
    return t


def resolve_window(window: Any) -> tuple[int, int] | None:
    """window as validated (t0, t1) Unix seconds, or None for no window. It must be a pair
    (tuple or list) of times; 0 <= t0 <= t1 <= MAX_TIME (InvalidEventError, field "window",
    naming both ends)."""
    if window is None:
        return None
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise InvalidEventError(f"window {window!r}: must be a (t0, t1) pair of times", field="window",
                                reason="invalid_type", value=repr(window))
    t0, t1 = to_seconds(window[0], "window"), to_seconds(window[1], "window")
    _pure.check_window(t0, t1)
    return t0, t1


# --- text (the command line and input rows) -------------------------------------------------

def parse_time(text: str) -> int:
    """Whole Unix seconds from text (surrounding blanks ignored): an integer, a float
    (floored) or ISO 8601 (naive = UTC). Not range-checked; ValueError "'x' is not Unix
    seconds or an ISO 8601 time" for anything else."""
    v = text.strip()
    try:
        return int(v)
    except ValueError:
        pass
    try:
        f = float(v)
    except ValueError:
        f = None
    if f is not None:
        if not math.isfinite(f):
            raise ValueError(f"{text!r} is not Unix seconds or an ISO 8601 time")
        return math.floor(f)
    try:
        d = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{text!r} is not Unix seconds or an ISO 8601 time") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    # Float seconds, as the command line has always computed them: after about 2242 a
    # fraction within a microsecond of the next second rounds up to it, where to_seconds
    # (exact) floors a datetime. Kept so text times score exactly as before.
    return math.floor(d.timestamp())


def parse_time_field(value: Any) -> int | None:
    """A time field of an input row (CSV text, or a JSON value): None for null or empty
    text, ints as they are, floats floored, text as parse_time; ValueError for anything
    else (booleans, non-finite floats, other types; the caller words the message)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(value)
        return math.floor(value)
    if isinstance(value, str):
        return None if value.strip() == "" else parse_time(value)
    raise ValueError(value)


def parse_window(text: str) -> tuple[int, int]:
    """``T0,T1`` (each as parse_time) -> (t0, t1), t0 <= t1. Not range-checked (that is
    resolve_window's job); ValueError "window 'text': ..." saying what is wrong."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"window {text!r}: expected T0,T1 (Unix seconds or ISO 8601)")
    try:
        t0, t1 = (parse_time(p.strip()) for p in parts)
    except ValueError as e:
        raise ValueError(f"window {text!r}: {e}") from None
    if t1 < t0:
        raise ValueError(f"window {text!r}: end {t1} is before start {t0}")
    return t0, t1
