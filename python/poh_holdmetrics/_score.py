"""calculate_score: the native library when it is usable, else the pure-Python fallback."""

from __future__ import annotations

import warnings
from array import array
from collections.abc import Iterable, Iterator
from itertools import accumulate, islice
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
    present). Raises InvalidEventError naming the first bad event's index and field; a
    mapping key or column that is not one of those is an error naming it (reason
    ``unknown_key``). An iterable is consumed in chunks of CHUNK_EVENTS events, so a
    generator of any length is scored in bounded memory, with the bits of a list.

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
    nl = _native_or_none()
    t0, t1 = w if w is not None else (_pure.MIN_TIME, _pure.MAX_TIME)
    if exact:
        total: int = 0
        for lo, evs in _event_chunks(events, exact):
            try:
                if nl is None:
                    total += _pure.score_events_exact(evs, t, t0, t1)
                elif any(e.weight.__class__ is int for e in evs):  # packed rows carry float weights only
                    total += score_columns_native(nl[0], nl[1], events_columns(evs, exact=True, ids=False), t, w,
                                                  False, True)
                else:
                    c, keep = _packed_rows(nl[0], evs)
                    total += _score_native(nl[0], nl[1], c, t, w, False, True)
                    del keep
            except InvalidEventError as e:
                raise shift(e, lo) from None
        return total // _pure.elapsed(t0, t1, t) if want_twab else total
    # Float mode: every chunk continues the Neumaier pair of the chunks before it, so the
    # result has the bits of scoring the whole batch at once.
    acc = [0.0, 0.0]
    score = 0.0
    for lo, evs in _event_chunks(events, exact):
        try:
            if nl is None:
                score = _pure.score_events(evs, t, t0, t1, acc)
            else:
                c, keep = _packed_rows(nl[0], evs)
                score = _score_native(nl[0], nl[1], c, t, w, False, False, acc)
                del keep
        except InvalidEventError as e:
            raise shift(e, lo) from None
    return score / _pure.elapsed(t0, t1, t) if want_twab else score


#: Events per chunk of an iterable of events: calculate_score holds one chunk (its events
#: and their packed rows, a few MB) at a time, whatever the batch's size.
CHUNK_EVENTS = 16384


def _event_chunks(events: Iterable[Any], exact: bool) -> Iterator[tuple[int, list[HoldEvent]]]:
    """(offset, HoldEvents) for consecutive chunks of events (mappings and tuples
    converted, errors naming their batch index), at least one (maybe empty) chunk. In
    exact mode a conversion error is raised only after the exact weights before it are
    checked, so that the lowest-index bad event is the one reported."""
    if isinstance(events, list):
        pieces: Iterator[list] = (events[lo:lo + CHUNK_EVENTS] for lo in range(0, max(len(events), 1), CHUNK_EVENTS))
    else:
        it = iter(events)
        pieces = iter(lambda: list(islice(it, CHUNK_EVENTS)), [])
    lo = 0
    first = True
    for piece in pieces:
        first = False
        for e in piece:
            if e.__class__ is not HoldEvent:
                piece = _convert(piece, lo, exact)
                break
        yield lo, piece
        lo += len(piece)
    if first:
        yield 0, []


def _convert(piece: list, lo: int, exact: bool) -> list[HoldEvent]:
    out: list[HoldEvent] = []
    for j, e in enumerate(piece):
        try:
            out.append(event_at(e, lo + j))
        except InvalidEventError:
            if exact:
                for i, ev in enumerate(out):
                    _pure.exact_weight(lo + i, ev.weight)
            raise
    return out


def shift(e: Exception, offset: int) -> Exception:
    """e with its batch index moved by offset (an error found in a chunk of a batch)."""
    if not isinstance(e, InvalidEventError) or e.index < 0 or not offset:
        return e
    return InvalidEventError(str(e).replace(f"event {e.index}:", f"event {e.index + offset}:", 1),
                             field=e.field, index=e.index + offset, reason=e.reason, value=e.value)


def _packed_rows(ffi: Any, evs: list[HoldEvent]) -> tuple[Any, Any]:
    """A poh_columns over HoldEvents' packed rows (one joined buffer), and the buffer,
    which must stay alive while the columns are used."""
    c = _native.options(ffi, "poh_columns")
    c.n = len(evs)
    buf = None
    if evs:
        c.rows = buf = ffi.from_buffer("poh_event[]", b"".join(map(_packed, evs)))
    return c, buf


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
                  exact: bool = False, acc: list[float] | None = None) -> float | int:
    """poh_score of a ready poh_columns: the score (or the TWAB) at now; exact: the exact int.
    acc (float mode): the running Neumaier pair [sum, comp] of the rows before these, which
    the rows continue (POH_SCORE_CONTINUE) and which is updated (the score is then that of
    every row so far)."""
    o = _native.options(ffi, "poh_score_options")
    o.now = now
    if w is not None:
        o.flags = lib.POH_SCORE_WINDOW | (lib.POH_SCORE_TWAB if want_twab else 0)
        o.window.t0, o.window.t1 = w
    if exact:
        o.flags |= lib.POH_SCORE_EXACT
    if acc is not None:
        o.flags |= lib.POH_SCORE_CONTINUE
        o.sum, o.comp = acc
    out = _native.options(ffi, "poh_score_result")
    _native.call(lib.poh_score, c, o, out)
    if exact:
        return int.from_bytes(ffi.buffer(out.exact), "big")
    if acc is not None:
        acc[0], acc[1] = out.sum, out.comp
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
