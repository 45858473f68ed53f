"""calculate_score: the native library when it is usable, else the pure-Python fallback."""

from __future__ import annotations

import warnings
from array import array
from collections.abc import Iterable
from itertools import accumulate
from operator import attrgetter
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _native, _pure
from ._columns import Columns, is_columnar, normalize
from ._errors import ForkedProcessError, InvalidEventError, NativeLibraryError
from ._events import HoldEvent, event_at
# resolve_now and resolve_window are also imported from here by _aggregator (and the tests).
from ._time import TimeLike, WindowLike, resolve_now, resolve_window

_packed = attrgetter("_packed")
_fork_warned = False


def _native_or_none() -> tuple[Any, Any] | None:
    """(ffi, lib), or None when the fallback must be used (warning once after fork)."""
    global _fork_warned
    try:
        return _native.load()
    except ForkedProcessError:
        if not _fork_warned:
            _fork_warned = True
            warnings.warn("poh_holdmetrics: forked after the native library was loaded; calculate_score "
                          "uses the pure-Python fallback in this process (use the 'spawn' or 'forkserver' "
                          "start method to keep the native backend)", RuntimeWarning, stacklevel=3)
        return None
    except NativeLibraryError:
        return None


def calculate_score(events: Iterable[HoldEvent] | Any, now: TimeLike | None = None,
                    window: WindowLike | None = None, *, exact: bool = False) -> float | int:
    """The hold score of a batch at ``now`` (default: the wall clock):
    ``sum(max(0, min(end or now, now) - start) * weight)``, in input order, with Neumaier
    compensated summation. ``events`` is an iterable of HoldEvents (mappings and
    ``(token_id, holder_id, start[, end[, weight]])`` tuples are converted) or columnar
    data: a dict of sequences or numpy arrays, a pandas DataFrame or a pyarrow Table with
    columns ``start``, ``end``, ``weight`` (and ``token_id`` / ``holder_id``, validated when
    present). Raises InvalidEventError naming the first bad event's index and field.

    ``window=(t0, t1)`` (times as for events) clips every hold to ``[t0, t1)``:
    ``sum(max(0, min(end or now, now, t1) - max(start, t0)) * weight)``. ``t0 <= t1`` is
    required (else InvalidEventError, field ``"window"``, naming both values).

    ``exact=True``: weights are integer amounts (``0 <= w < 2^256``: ints, decimal strings,
    integer or ``fixed_size_binary(32)`` columns; a float weight only when it is an integer
    up to 2^53, else reason ``"not_integer"``) and the result is the exact int, never
    rounded.
    """
    t = resolve_now(now)
    return _score(events, t, resolve_window(window), False, exact)


def twab(events: Iterable[HoldEvent] | Any, window: WindowLike, now: TimeLike | None = None, *,
         exact: bool = False) -> float | int:
    """The time-weighted average balance over ``window=(t0, t1)`` at ``now`` (default: the
    wall clock): ``calculate_score(events, now, window) / (min(t1, now) - t0)``, the average
    weight held during the part of the window that has elapsed. ``events`` as for
    calculate_score. A window with no elapsed time (``t0 == t1``, or ``t0 >= now``) raises
    InvalidEventError (field ``"window"``, reason ``"empty_window"``): never a NaN.
    ``exact=True``: the exact score's floor division by the elapsed seconds, an int.
    """
    t = resolve_now(now)
    w = resolve_window(window)
    if w is None:
        raise InvalidEventError("window None: a TWAB needs a (t0, t1) window", field="window",
                                reason="invalid_type", value="None")
    _pure.elapsed(w[0], w[1], t)  # the empty-window error comes before any event's
    return _score(events, t, w, True, exact)


def _score(events: Any, t: int, w: tuple[int, int] | None, want_twab: bool, exact: bool = False) -> float | int:
    """The windowed score (or TWAB) of events at t, natively when possible. now and the
    window are already validated."""
    if is_columnar(events):
        cols = normalize(events, need_ids=False, exact=exact)
        nl = _native_or_none()
        if nl is None:
            starts, ends, weights, toks, hols = cols.rows()
            t0, t1 = w if w is not None else (_pure.MIN_TIME, _pure.MAX_TIME)
            if exact:
                s = _pure.score_rows_exact(starts, ends, weights, t, toks, hols, t0, t1)
                return s // _pure.elapsed(t0, t1, t) if want_twab else s
            if w is None:
                return _pure.score_rows(starts, ends, weights, t, toks, hols)
            s = _pure.score_rows(starts, ends, weights, t, toks, hols, t0, t1)
            return s / _pure.elapsed(t0, t1, t) if want_twab else s
        return score_columns_native(nl[0], nl[1], cols, t, w, want_twab, exact)
    evs = events if isinstance(events, list) else list(events)
    for i, ev in enumerate(evs):
        if ev.__class__ is not HoldEvent:
            evs = [event_at(e, j) for j, e in enumerate(evs)]
            break
    nl = _native_or_none()
    if nl is None:
        if exact:
            t0, t1 = w if w is not None else (_pure.MIN_TIME, _pure.MAX_TIME)
            s = _pure.score_events_exact(evs, t, t0, t1)
            return s // _pure.elapsed(t0, t1, t) if want_twab else s
        if w is None:
            return _pure.score_events(evs, t)
        s = _pure.score_events(evs, t, w[0], w[1])
        return s / _pure.elapsed(w[0], w[1], t) if want_twab else s
    ffi, lib = nl
    if exact:
        weights = [e.weight for e in evs]
        if any(x.__class__ is int for x in weights):  # the packed rows carry float weights only
            return score_columns_native(ffi, lib, events_columns(evs, exact=True, ids=False), t, w, want_twab, True)
    buf = ffi.from_buffer("poh_event[]", b"".join(map(_packed, evs)))
    c = _native.options(ffi, "poh_columns")
    c.n = len(evs)
    c.rows = buf
    return _score_native(ffi, lib, c, t, w, want_twab, exact)


def events_columns(events: list[HoldEvent], exact: bool = False, ids: bool = True) -> Columns:
    """HoldEvents as Columns (ids too, unless ids is False); exact: weights as wei, each
    checked by the exact rule (_pure.exact_weight), in event order."""
    n = len(events)
    c = Columns(n)
    c.start = array("q", [e.start for e in events])
    ends = [e.end for e in events]
    c.end = array("q", [-1 if e is None else e for e in ends])
    c.has_end = array("B", [e is not None for e in ends])
    if exact:
        ew = _pure.exact_weight
        c.wei = b"".join([ew(i, e.weight).to_bytes(32, "big") for i, e in enumerate(events)])
    else:
        c.weight = array("d", [e.weight for e in events])
    if ids:
        toks = [e._tok for e in events]
        hols = [e._hol for e in events]
        c.tok = (b"".join(toks), array("q", accumulate(map(len, toks), initial=0)))
        c.hol = (b"".join(hols), array("q", accumulate(map(len, hols), initial=0)))
    return c


def _score_native(ffi: Any, lib: Any, c: Any, now: int, w: tuple[int, int] | None, want_twab: bool,
                  exact: bool = False) -> float | int:
    """poh_score of a ready poh_columns: the score (or the TWAB) at now; exact: the exact int."""
    o = _native.options(ffi, "poh_score_options")
    o.now = now
    if w is not None:
        o.flags = lib.POH_SCORE_WINDOW | (lib.POH_SCORE_TWAB if want_twab else 0)
        o.window.t0, o.window.t1 = w
    if exact:
        o.flags |= lib.POH_SCORE_EXACT
    out = _native.options(ffi, "poh_score_result")
    _native.call(lib.poh_score, c, o, out)
    if exact:
        return int.from_bytes(ffi.buffer(out.exact), "big")
    return out.score


def c_columns(ffi: Any, cols: Columns) -> tuple[Any, list]:
    """A poh_columns pointing into cols' buffers, and the cdata that must stay alive."""
    c = _native.options(ffi, "poh_columns")
    keep: list = [c]

    def buf(ctype: str, b: Any) -> Any:
        p = ffi.from_buffer(ctype, b)
        keep.append(p)
        return p

    c.n = cols.n
    if cols.n:
        c.start = buf("int64_t[]", cols.start)
        if cols.end is not None:
            c.end = buf("int64_t[]", cols.end)
        if cols.has_end is not None:
            c.has_end = buf("uint8_t[]", cols.has_end)
        if cols.weight is not None:
            c.weight = buf("double[]", cols.weight)
        if cols.wei is not None:
            c.weight_u256 = buf("uint8_t[]", cols.wei)
    for ids, data_f, len_f, off_f in ((cols.tok, "token_data", "token_data_len", "token_offsets"),
                                      (cols.hol, "holder_data", "holder_data_len", "holder_offsets")):
        if ids is None:
            continue
        data, offs = ids
        if len(data):
            setattr(c, data_f, buf("char[]", data))
        setattr(c, len_f, len(data))
        setattr(c, off_f, buf("int64_t[]", offs))
    return c, keep


def score_columns_native(ffi: Any, lib: Any, cols: Columns, now: int, window: tuple[int, int] | None = None,
                         want_twab: bool = False, exact: bool = False) -> float | int:
    c, keep = c_columns(ffi, cols)
    try:
        return _score_native(ffi, lib, c, now, window, want_twab, exact)
    finally:
        del keep
