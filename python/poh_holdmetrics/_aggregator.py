"""Aggregator: a handle on a native (Go) aggregator, with async and sync methods."""

from __future__ import annotations

import os
import weakref
from array import array
from collections.abc import Iterable, Iterator
from datetime import timedelta
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any, Literal, overload

    from ._kernel import HolderScores
else:
    def overload(f):  # typing.overload's run-time effect: none (the last definition stands)
        return f

from . import _native, _pure
from ._columns import Columns, check_lengths, convert, is_columnar, normalize, raw_columns, slice_raw
from ._errors import ClosedError, ForkedProcessError, InvalidEventError, NoHistoryError, StoreError
from ._events import HoldEvent, HoldStat, TimeLike, WindowLike, event_at, stats_of
from ._score import c_columns, events_columns, resolve_now, resolve_window, score_columns_native
from ._score import shift as _shift
from ._wei import ints_of

_NOW = _native.POH_NOW

#: Rows per library call in record_many: ~1-2 ms of work, after which the async twin
#: yields to the event loop.
CHUNK_ROWS = 16384


def _seconds(value: float | timedelta | None, what: str) -> float:
    if value is None:
        return 0.0
    s = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not s >= 0:
        raise ValueError(f"{what} {value!r} must be >= 0")
    return s


def _free(lib: Any, handle: int, pid: int) -> None:
    """Finalizer: release the handle, unless this is a forked child (a call would hang)."""
    if _native.forked() or os.getpid() != pid:
        return
    lib.poh_free(handle, _native.new_error(_native._ffi))


def _id(value: str | bytes) -> bytes:
    """An id argument as the bytes the library validates (lone surrogates kept, so that the
    library reports them as invalid UTF-8)."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)


class RecordResult(tuple[int, list[InvalidEventError]]):
    """What ``record_many(..., partial=True)`` did: ``accepted`` events were recorded, and
    ``errors`` holds one InvalidEventError per rejected event (``.index`` is its position in
    the batch), in ascending index order. An immutable pair ``(accepted, errors)``, so
    ``accepted, errors = result`` unpacks with those types for a type checker too."""

    __slots__ = ()

    def __new__(cls, accepted: int, errors: list[InvalidEventError]) -> RecordResult:
        return tuple.__new__(cls, (accepted, errors))

    def __getnewargs__(self) -> tuple[int, list[InvalidEventError]]:  # pickling
        return (self[0], self[1])

    @property
    def accepted(self) -> int:
        return self[0]

    @property
    def errors(self) -> list[InvalidEventError]:
        return self[1]

    @property
    def rejected(self) -> int:
        return len(self[1])

    def __repr__(self) -> str:
        return f"RecordResult(accepted={self[0]}, rejected={len(self[1])})"


def _exact_columns(events: list[HoldEvent]) -> Columns:
    """events_columns for an exact aggregator: wei weights when some weight is an int (a
    bad float weight then raises here, with its batch index), else the float weights, which
    the library checks."""
    return events_columns(events, exact=any(e.weight.__class__ is int for e in events))


def _partial_events(evs: list, exact: bool = False) -> tuple[Columns, list[int] | None, list[InvalidEventError]]:
    """Events (HoldEvents, mappings, tuples) as Columns of the convertible ones, the batch
    index of each kept row (None: all kept), and the conversion errors."""
    out: list[HoldEvent] = []
    kept: list[int] = []
    errors: list[InvalidEventError] = []
    for i, e in enumerate(evs):
        try:
            ev = e if e.__class__ is HoldEvent else event_at(e, i)
            if exact:
                _pure.exact_weight(i, ev.weight)
            out.append(ev)
            kept.append(i)
        except InvalidEventError as x:
            errors.append(x)
    cols = events_columns(out, exact=exact and any(e.weight.__class__ is int for e in out))
    return cols, (kept if errors else None), errors


def _partial_raw(raw: dict[str, Any], n: int,
                 exact: bool = False) -> tuple[Columns, list[int] | None, list[InvalidEventError]]:
    """_partial_events for raw columns. The fast conversion does not check values (the library
    does); only when some row cannot be converted at all (a null start, a wrong type) is the
    batch converted row by row, so that every such row is reported."""
    try:
        return convert(raw, n, exact), None, []
    except InvalidEventError:
        pass
    out: list[HoldEvent] = []
    kept: list[int] = []
    errors: list[InvalidEventError] = []
    for i in range(n):
        try:
            starts, ends, weights, toks, hols = convert(slice_raw(raw, i, i + 1), 1, exact).rows()
            # validated here: the fast conversion of one row does not check values
            out.append(event_at((toks[0], hols[0], starts[0], ends[0], weights[0]), 0))
        except InvalidEventError as x:
            errors.append(_shift(x, i))
            continue
        kept.append(i)
    cols = events_columns(out, exact=exact and any(e.weight.__class__ is int for e in out))
    return cols, kept, errors


class Aggregator:
    """Accumulates hold scores per holder and per (holder, token), in the native library.

    ``ttl`` (seconds or a timedelta; None = keep every holder) lets ``gc()`` drop holders
    idle for longer than it that hold nothing open. Thread-safe: the library call releases
    the GIL, so threads record in parallel. Close it with ``close()``, ``with`` or
    ``async with``; a forgotten aggregator is freed by its finalizer. Methods of a closed
    aggregator raise ClosedError; in a child forked after the library was loaded they raise
    ForkedProcessError (use the "spawn" or "forkserver" start method).

    ``window=(t0, t1)`` is a campaign window fixed for the aggregator's life: every hold is
    clipped to ``[t0, t1)`` (closed holds when recorded, in O(1); open holds when read), so
    ``snapshot()`` and ``top_n()`` score only the seconds inside it. ``history=True`` also
    keeps every closed hold (about 34 bytes each) so that ``snapshot(window=...)`` and
    ``top_n(..., window=...)`` can answer for any window, exactly as
    ``calculate_score(the holder's events, now, window)``; without it they raise
    NoHistoryError.

    ``path=`` makes it durable: it is backed by the daemon's store in that data dir
    (created if missing; the state there is rebuilt on open), and every record, close_hold
    and gc returns only once it is in the log under the ``fsync`` policy: ``"interval"``
    (default: written to the OS, so it survives the process being killed; synced every few
    ms), ``"always"`` (synced to disk before returning: survives power loss), ``"none"``
    (written to the OS, synced when the OS likes). ``close()`` flushes, snapshots and
    releases the dir; one open Aggregator per data dir across all processes (another
    opener gets StoreLockedError). ``window`` and ``history`` must match what the dir was
    written with (StoreError otherwise).

    ``exact=True``: weights are integer amounts (ints below 2^256, decimal strings, integer
    columns; a float weight only when it is an integer up to 2^53) and every score is the
    exact int ``sum(seconds * weight)``, never rounded: ``HoldStat.score`` is an int. Needed
    for ``record_transfers`` (balances from chain data are integers in the token's
    smallest unit).

    ``now`` / ``at`` arguments default to the library's wall clock.
    """

    def __init__(self, ttl: float | timedelta | None = None, *, shards: int = 0, window: WindowLike | None = None,
                 history: bool = False, path: str | os.PathLike[str] | None = None,
                 fsync: str = "interval", exact: bool = False) -> None:
        self._ffi, self._lib = ffi, lib = _native.load()
        ttl_s = _seconds(ttl, "ttl")
        win = resolve_window(window)
        opts = _native.options(ffi, "poh_aggregator_options")
        opts.ttl_seconds = max(1, round(ttl_s)) if ttl_s else 0
        opts.shards = int(shards)
        if win is not None:
            opts.flags |= lib.POH_AGGREGATOR_WINDOW
            opts.window.t0, opts.window.t1 = win
        if history:
            opts.flags |= lib.POH_AGGREGATOR_HISTORY
        if exact:
            opts.flags |= lib.POH_AGGREGATOR_EXACT
        self._path: str | None = None
        keep = None
        if path is not None:
            policies = {"interval": lib.POH_FSYNC_INTERVAL, "always": lib.POH_FSYNC_ALWAYS,
                        "none": lib.POH_FSYNC_NONE}
            if fsync not in policies:
                raise ValueError(f"fsync {fsync!r}: want 'always', 'interval' or 'none'")
            self._path = os.fspath(path)
            if not isinstance(self._path, str) or not self._path:
                raise ValueError(f"path {path!r}: want a non-empty path to a data dir")
            raw = self._path.encode("utf-8", "surrogateescape")  # as the OS spells it
            keep = ffi.new("char[]", raw)
            opts.path, opts.path_len = keep, len(raw)
            opts.fsync = policies[fsync]
        elif fsync != "interval":
            raise ValueError(f"fsync {fsync!r} needs a path: an in-memory Aggregator has no store")
        out = ffi.new("poh_handle *")
        try:
            _native.call(lib.poh_aggregator_new, opts, out)
        except StoreError as e:
            e.path = self._path or ""
            raise
        del keep
        self._window = win
        self._history = bool(history)
        self._exact = bool(exact)
        self._h: int = out[0]
        self._rec = lib.poh_record_event
        self._rec1 = lib.poh_py_record_packed
        self._null = ffi.NULL
        self._closed = False
        # record_sync's one test for the uncommon cases: closed, or exact mode (whose int
        # weights above 2^53 do not fit the one-event call's double).
        self._gate = self._exact
        self._finalizer = weakref.finalize(self, _free, lib, self._h, os.getpid())

    # --- lifecycle -------------------------------------------------------------------------

    def _handle(self) -> int:
        """The live handle; the one place that checks closed and forked."""
        if self._closed:
            raise ClosedError("aggregator is closed")
        if _native.forked():
            raise ForkedProcessError(_native.FORK_MESSAGE)
        return self._h

    def close(self) -> None:
        """Free the native aggregator (stopping its background GC). Idempotent. A durable
        one (``path=``) also flushes and syncs its log, writes a snapshot and releases the
        data dir; if that fails it raises StoreError (what was recorded before had already
        reached the log)."""
        self._closed = True
        self._gate = True
        detached = self._finalizer.detach()
        if detached is None:
            return
        lib, handle, pid = detached[2]
        if _native.forked() or os.getpid() != pid:
            return
        err = _native.new_error(self._ffi)
        rc = lib.poh_free(handle, err)
        if rc and self._path is not None:
            e = _native.error_from(self._ffi, lib, rc, err)
            if isinstance(e, StoreError):
                e.path = self._path
            raise e

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def path(self) -> str | None:
        """The data dir of a durable aggregator, or None (in memory)."""
        return self._path

    @property
    def window(self) -> tuple[int, int] | None:
        """The campaign window (t0, t1) in Unix seconds, or None."""
        return self._window

    @property
    def history(self) -> bool:
        """Whether window queries are available (created with ``history=True``)."""
        return self._history

    @property
    def exact(self) -> bool:
        """Whether scores are exact ints (created with ``exact=True``)."""
        return self._exact

    def __enter__(self) -> Aggregator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Aggregator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "" if self._path is None else f" path={self._path!r}"
        return f"<Aggregator {'closed' if self._closed else 'handle=' + str(self._h)}{where}>"

    def _call(self, fn: Any, *args: Any) -> None:
        """fn(handle, *args, err) on the live handle; a status becomes its exception."""
        _native.call(fn, self._handle(), *args)

    # --- recording -------------------------------------------------------------------------

    # The one-event path is the hot one: the HoldEvent is already valid, so the call passes
    # no poh_error (NULL); only if it fails are the details found (by a check that counts
    # nothing: the failed call counted the event as rejected).
    #
    # poh_hold_events_total{result="rejected"} counts every event that failed validation,
    # wherever: the library counts what it refuses; an event refused here, before the
    # library (a mapping or tuple that does not convert), is counted through
    # poh_count_rejected, and so are the valid events of a strict batch refused for it
    # (as "dropped"). A batch refused as a whole before any row is read (an unknown or
    # missing column, columns of different lengths, not a batch at all) counts no events.

    def record_sync(self, event: HoldEvent) -> None:
        """Record one event (all its fields were validated by HoldEvent)."""
        if self._gate or _native._forked:
            self._handle()
            if self._exact:
                return self._record_exact(event)
        ev = event if event.__class__ is HoldEvent else self._convert_one(event)
        tok, hol = ev._tok, ev._hol
        # start, end and weight as the HoldEvent packed them, at the library's clock (see
        # _build_ffi: seven cheap arguments instead of eleven).
        if self._rec1(self._h, tok, len(tok), hol, len(hol), ev._packed, self._null):
            self._record_failed(ev)

    async def record(self, event: HoldEvent) -> None:
        """Record one event: one short library call, on the loop's thread (no thread hop)."""
        self.record_sync(event)

    def _record_exact(self, event: HoldEvent) -> None:
        """record_sync in exact mode: a weight that a double holds exactly takes the one-event
        call; a larger int goes as a one-row batch with its 32-byte weight."""
        ev = event if event.__class__ is HoldEvent else self._convert_one(event)
        w = ev.weight
        if w.__class__ is int and w > _pure.MAX_EXACT_FLOAT:
            self._record_chunk(events_columns([ev], exact=True), 0)
            return
        end = ev.end
        if self._rec(self._h, ev._tok, len(ev._tok), ev._hol, len(ev._hol), ev.start, 0 if end is None else end,
                     end is not None, w, _NOW, self._null):
            self._record_failed(ev)

    def _convert_one(self, event: Any) -> HoldEvent:
        """A mapping or tuple as a HoldEvent; one that does not convert is counted as rejected."""
        try:
            return event_at(event, -1)
        except InvalidEventError:
            self._count_rejected(None, 1)
            raise

    def _record_failed(self, ev: HoldEvent) -> None:
        # Why it failed: the validation-only check raises the event's error without counting
        # it again; any other failure (a store fault) is the repeated call's.
        self._validate(_exact_columns([ev]) if self._exact else events_columns([ev]), 0)
        end = ev.end
        self._call(self._rec, ev._tok, len(ev._tok), ev._hol, len(ev._hol), ev.start, 0 if end is None else end,
                   end is not None, ev.weight, _NOW)

    def _count_rejected(self, cols: Columns | None, failed: int) -> None:
        """poh_count_rejected: failed events refused before the library; with cols, the
        converted rows of a strict batch refused for them (invalid ones rejected, valid ones
        dropped)."""
        if cols is None or not cols.n:
            if failed:
                self._call(self._lib.poh_count_rejected, self._null, failed)
            return
        c, keep = c_columns(self._ffi, cols)
        try:
            self._call(self._lib.poh_count_rejected, c, failed)
        finally:
            del keep

    def _refusal_steps(self, events: Any, error: InvalidEventError, converted: Columns | None = None) -> Iterator[None]:
        """Count a strict batch refused before the library recorded or counted it: every row
        that fails validation as rejected, every valid one as dropped (as the library counts
        a strict batch it refuses). converted: the whole batch, already converted; else
        events are converted again, chunk by chunk, keeping what converts. Yields after each
        chunk (record_many lets the loop run there). Nothing for a batch-level error."""
        if error.index < 0:
            return
        if converted is not None:
            for lo in range(0, converted.n, CHUNK_ROWS):
                self._count_rejected(converted.slice(lo, min(lo + CHUNK_ROWS, converted.n)), 0)
                yield
            return
        n, chunk = self._chunker(events, partial=True)
        for lo in range(0, n, CHUNK_ROWS):
            cols, _, errors = chunk(lo, min(lo + CHUNK_ROWS, n))
            self._count_rejected(cols, len(errors))
            yield

    def _prepare(self, events: Iterable[HoldEvent] | Any) -> Columns:
        if is_columnar(events):
            return normalize(events, need_ids=True, exact=self._exact)
        evs = events if isinstance(events, list) else list(events)
        evs = [e if e.__class__ is HoldEvent else event_at(e, i) for i, e in enumerate(evs)]
        return _exact_columns(evs) if self._exact else events_columns(evs)

    def _record_columns(self, cols: Columns, flags: int) -> Any:
        """One poh_record call over cols with flags; its poh_record_result."""
        c, keep = c_columns(self._ffi, cols)
        o = _native.options(self._ffi, "poh_record_options")
        o.now, o.flags = _NOW, flags
        out = _native.options(self._ffi, "poh_record_result")
        try:
            self._call(self._lib.poh_record, c, o, out)
        finally:
            del keep
        return out

    def _validate(self, cols: Columns, offset: int) -> None:
        """Check one chunk of a multi-chunk strict batch before any chunk is recorded
        (all-or-nothing): the library validates it as a record would, recording nothing."""
        try:
            if self._exact:
                # POH_RECORD_CHECK validates in float mode (it refuses weight_u256); poh_score in
                # exact mode checks every row by the exact record's rules, in one pass.
                self._handle()
                score_columns_native(self._ffi, self._lib, cols, _NOW, exact=True)
            else:
                self._record_columns(cols, self._lib.POH_RECORD_CHECK)
        except InvalidEventError as e:
            raise _shift(e, offset) from None

    def _record_chunk(self, cols: Columns, offset: int) -> int:
        try:
            return int(self._record_columns(cols, 0).accepted)
        except InvalidEventError as e:
            raise _shift(e, offset) from None

    @overload
    def record_many_sync(self, events: Iterable[HoldEvent] | Any, *, partial: Literal[False] = False) -> int: ...

    @overload
    def record_many_sync(self, events: Iterable[HoldEvent] | Any, *, partial: Literal[True]) -> RecordResult: ...

    @overload
    def record_many_sync(self, events: Iterable[HoldEvent] | Any, *, partial: bool) -> int | RecordResult: ...

    def record_many_sync(self, events: Iterable[HoldEvent] | Any, *,
                         partial: bool = False) -> int | RecordResult:
        """Record a batch: HoldEvents or columnar data (see calculate_score; ``token_id`` and
        ``holder_id`` columns are required).

        All-or-nothing by default: a bad event raises InvalidEventError (naming its index)
        and nothing is recorded; returns the count recorded. With ``partial=True`` the valid
        events are recorded and the bad ones skipped: returns a RecordResult, ``accepted``
        plus one InvalidEventError per rejected event (nothing is raised for bad events;
        a batch that is not a batch at all, e.g. without an id column, still raises).
        """
        self._handle()
        if partial:
            n, chunk = self._chunker(events, partial=True)
            accepted = 0
            errors: list[InvalidEventError] = []
            for lo in range(0, n, CHUNK_ROWS):
                accepted += self._record_partial(chunk(lo, min(lo + CHUNK_ROWS, n)), lo, errors)
            return RecordResult(accepted, errors)
        if not isinstance(events, list) and not is_columnar(events):
            events = list(events)  # once: a refused batch is counted over all of it
        try:
            cols = self._prepare(events)
        except InvalidEventError as e:
            for _ in self._refusal_steps(events, e):
                pass
            raise
        if cols.n <= CHUNK_ROWS:
            return self._record_chunk(cols, 0)  # a refusal there is counted by the library
        for lo in range(0, cols.n, CHUNK_ROWS):
            try:
                self._validate(cols.slice(lo, min(lo + CHUNK_ROWS, cols.n)), lo)
            except InvalidEventError as e:
                for _ in self._refusal_steps(events, e, cols):
                    pass
                raise
        return sum(self._record_chunk(cols.slice(lo, min(lo + CHUNK_ROWS, cols.n)), lo)
                   for lo in range(0, cols.n, CHUNK_ROWS))

    def _chunker(self, events: Iterable[HoldEvent] | Any, partial: bool) -> tuple[int, Any]:
        """(rows, chunk(lo, hi)): the batch's size, and a function converting rows [lo, hi)
        (into Columns; with partial, into _partial_events' triple)."""
        exact = self._exact
        if is_columnar(events):
            raw = raw_columns(events, need_ids=True)
            n = check_lengths(raw)
            if partial:
                return n, lambda lo, hi: _partial_raw(slice_raw(raw, lo, hi), hi - lo, exact)
            return n, lambda lo, hi: convert(slice_raw(raw, lo, hi), hi - lo, exact)
        evs = events if isinstance(events, list) else list(events)
        if partial:
            return len(evs), lambda lo, hi: _partial_events(evs[lo:hi], exact)
        return len(evs), lambda lo, hi: self._prepare(evs[lo:hi])

    def _record_partial(self, converted: tuple[Columns, list[int] | None, list[InvalidEventError]], offset: int,
                        found: list[InvalidEventError]) -> int:
        """Record one converted chunk in partial mode: one library call, which reports every
        rejected row (index, field, reason, message) in a result. Adds the chunk's errors
        to found; returns how many rows were recorded."""
        cols, kept, errors = converted
        self._count_rejected(None, len(errors))  # refused here, before the library
        accepted = 0
        if cols.n:
            out = self._record_columns(cols, self._lib.POH_RECORD_PARTIAL)
            accepted = int(out.accepted)
            if out.errors:
                # The library's indices are within cols (the kept rows); errors' within the chunk.
                errors.extend(_shift(e, kept[e.index] - e.index if kept is not None else 0)
                              for e in self._row_errors(out.errors))
                errors.sort(key=lambda e: e.index)
        found.extend(_shift(e, offset) for e in errors)  # type: ignore[misc]
        return accepted

    def _row_errors(self, r: int) -> list[InvalidEventError]:
        """The rows of an errors result (which this frees)."""
        ffi, lib = self._ffi, self._lib
        try:
            rows, nbytes = ffi.new("int64_t *"), ffi.new("int64_t *")
            _native.call(lib.poh_result_size, r, rows, nbytes)
            n, nb = int(rows[0]), int(nbytes[0])
            errs = ffi.new("poh_row_error[]", max(n, 1))
            text = ffi.new("char[]", max(nb, 1))
            _native.call(lib.poh_result_errors, r, errs, n, text, nb)
        finally:
            lib.poh_free(r, ffi.NULL)
        raw = ffi.buffer(text, nb)[:]
        out = []
        for i in range(n):
            x = errs[i]
            o = x.message_offset
            out.append(InvalidEventError(raw[o:o + x.message_len].decode("utf-8", "replace"),
                                         field=ffi.string(x.field).decode(), index=int(x.index),
                                         reason=ffi.string(x.reason).decode()))
        return out

    @overload
    async def record_many(self, events: Iterable[HoldEvent] | Any, *, partial: Literal[False] = False) -> int: ...

    @overload
    async def record_many(self, events: Iterable[HoldEvent] | Any, *, partial: Literal[True]) -> RecordResult: ...

    @overload
    async def record_many(self, events: Iterable[HoldEvent] | Any, *, partial: bool) -> int | RecordResult: ...

    async def record_many(self, events: Iterable[HoldEvent] | Any, *,
                          partial: bool = False) -> int | RecordResult:
        """record_many_sync for event loops: the batch goes in chunks of CHUNK_ROWS rows,
        yielding to the loop between chunks, so a large batch never blocks it for long.
        ``partial`` as in record_many_sync."""
        import asyncio  # here, not at import: it costs tens of ms, and a running loop has loaded it

        self._handle()
        if not isinstance(events, list) and not is_columnar(events):
            events = list(events)  # once: a refused batch is counted over all of it
        n, chunk = self._chunker(events, partial)
        if partial:
            accepted = 0
            errors: list[InvalidEventError] = []
            for lo in range(0, n, CHUNK_ROWS):
                accepted += self._record_partial(chunk(lo, min(lo + CHUNK_ROWS, n)), lo, errors)
                await asyncio.sleep(0)
            return RecordResult(accepted, errors)
        # Convert and validate every chunk before recording any (all-or-nothing), yielding
        # to the loop after each step: converting Python objects is the slow part.
        chunks = []
        try:
            if n <= CHUNK_ROWS:
                c = chunk(0, n)
            else:
                for lo in range(0, n, CHUNK_ROWS):
                    try:
                        c = chunk(lo, min(lo + CHUNK_ROWS, n))
                    except InvalidEventError as e:
                        raise _shift(e, lo) from None
                    self._validate(c, lo)
                    chunks.append((lo, c))
                    await asyncio.sleep(0)
        except InvalidEventError as e:
            for _ in self._refusal_steps(events, e):
                await asyncio.sleep(0)
            raise
        if n <= CHUNK_ROWS:
            return self._record_chunk(c, 0)  # a refusal there is counted by the library
        total = 0
        for lo, c in chunks:
            total += self._record_chunk(c, lo)
            await asyncio.sleep(0)
        return total

    def record_transfers(self, transfers: Any, *, blocks: Any = None, kind: str = "transfer", opening: Any = None,
                         opening_time: TimeLike = 0, zero_holder: bool = False) -> int:
        """Record the holds of chain data (see ``transfers_to_holds``: the same arguments and
        errors) straight into this aggregator, in one library call and one all-or-nothing
        write, without building the holds table. Needs ``exact=True`` (balances are
        integers). Returns how many holds were recorded; a pair's last balance is an open
        hold, scored up to each query's ``now``."""
        self._handle()
        if not self._exact:
            raise ValueError("record_transfers needs an Aggregator(exact=True): holds from transfers have "
                             "integer weights (token balances in their smallest unit)")
        from ._transfers import run
        return run(transfers, blocks, kind, opening, opening_time, zero_holder, record_into=self._h)

    def close_hold(self, token_id: str, holder_id: str, at: TimeLike | None = None) -> int:
        """End every open hold of (token_id, holder_id) at ``at``; returns how many.
        Raises NoOpenHoldError when there is none."""
        t = _NOW if at is None else resolve_now(at, "at")
        tok, hol = _id(token_id), _id(holder_id)
        n = self._ffi.new("int64_t *")
        self._call(self._lib.poh_close_hold, tok, len(tok), hol, len(hol), t, _NOW, n)
        return int(n[0])

    # --- reading ---------------------------------------------------------------------------

    def _now(self, now: TimeLike | None) -> int:
        return _NOW if now is None else resolve_now(now)

    def _query(self, now: TimeLike | None, n: int = 0, token: bytes = b"", holder: bytes = b"",
               window: WindowLike | None = None, ordered: bool = True) -> Any:
        """One poh_query; its poh_query_result (whose result handle the caller frees).
        ordered=False: every row in no particular order (POH_QUERY_UNORDERED, no sort)."""
        ffi, lib = self._ffi, self._lib
        q = _native.options(ffi, "poh_query_options")
        q.now, q.n = self._now(now), n
        if not ordered:
            q.flags = lib.POH_QUERY_UNORDERED
        if window is not None:
            w = resolve_window(window)
            if not self._history:
                raise NoHistoryError(f"window [{w[0]}, {w[1]}): window queries need an Aggregator created with "
                                     "history=True (it keeps every closed hold for them)")
            q.flags |= lib.POH_QUERY_WINDOW
            q.window.t0, q.window.t1 = w
        keep = []
        if token:
            keep.append(ffi.new("char[]", token))
            q.token, q.token_len = keep[-1], len(token)
        if holder:
            keep.append(ffi.new("char[]", holder))
            q.holder, q.holder_len = keep[-1], len(holder)
        out = _native.options(ffi, "poh_query_result")
        self._call(lib.poh_query, q, out)
        return out

    def _rows(self, out: Any) -> list[HoldStat]:
        """Every row of a query result (which this frees), read column by column: one
        poh_result_stats call into buffers owned here, each column then one tolist()."""
        ffi, lib = self._ffi, self._lib
        r = out.result
        n, nb = int(out.rows), int(out.id_bytes)
        cols = {k: array("q", bytes(8 * n)) for k in ("total_seconds", "events", "open_holds", "tokens",
                                                       "updated_at")}
        score = array("d", bytes(8 * n))
        offsets = array("q", bytes(8 * (n + 1)))
        ids = bytearray(max(nb, 1))
        exact = bytearray(48 * n) if self._exact else None
        try:
            sc = _native.options(ffi, "poh_stat_columns")
            sc.rows_cap, sc.ids_cap = n, nb
            keep = [ffi.from_buffer("double[]", score, require_writable=True),
                    ffi.from_buffer("int64_t[]", offsets, require_writable=True),
                    ffi.from_buffer("char[]", ids, require_writable=True)]
            sc.score, sc.id_offsets, sc.ids = keep
            for k, buf in cols.items():
                keep.append(ffi.from_buffer("int64_t[]", buf, require_writable=True))
                setattr(sc, k, keep[-1])
            if exact is not None and n:
                keep.append(ffi.from_buffer("uint8_t[]", exact, require_writable=True))
                sc.exact = keep[-1]
            if n:
                _native.call(lib.poh_result_stats, r, sc)
            del keep
        finally:
            lib.poh_free(r, ffi.NULL)
        if n == 0:
            return []
        o = offsets.tolist()
        raw = bytes(ids[:nb])
        if raw.isascii():  # the common case: one decode, then slices of the str
            text = raw.decode("ascii")
            holders = [text[o[i]:o[i + 1]] for i in range(n)]
        else:
            holders = [raw[o[i]:o[i + 1]].decode("utf-8") for i in range(n)]
        scores = ints_of(exact, n, 48) if exact is not None else score.tolist()
        return stats_of(holders, scores, cols["total_seconds"].tolist(), cols["events"].tolist(),
                        cols["open_holds"].tolist(), cols["tokens"].tolist(), cols["updated_at"].tolist())

    def snapshot(self, now: TimeLike | None = None, *, window: WindowLike | None = None,
                 ordered: bool = True) -> list[HoldStat]:
        """One row per holder at ``now``: score descending, then holder_id ascending.

        With ``window=(t0, t1)`` (needs ``history=True``), each row's score is exactly
        ``calculate_score(the holder's recorded events, now, window)`` and total_seconds is
        clipped alike; the campaign window does not apply to it.

        ``ordered=False`` returns the same rows in no particular order, without the ranking's
        sort (for a caller that indexes, sums or sorts them itself)."""
        self._handle()
        return self._rows(self._query(now, window=window, ordered=ordered))

    def top_n(self, n: int, now: TimeLike | None = None, token: str | None = None, *,
              window: WindowLike | None = None) -> list[HoldStat]:
        """The first ``n`` rows of the snapshot order (a bounded heap, no full sort). With
        ``token``, rows are the (holder, token) pairs of that token. ``window`` as in
        snapshot (needs ``history=True``)."""
        self._handle()
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidEventError(f"n {n!r}: must be an int", field="n", reason="invalid_type", value=repr(n))
        tok = b"" if token is None else _id(token)
        if token is not None and not tok:
            raise InvalidEventError('token_id "": must not be empty', field="token_id", reason="empty",
                                    value='""')
        if n == 0:  # the library's n 0 means every row: check the arguments alike, return none
            self._rows(self._query(now, 1, tok, window=window))
            return []
        return self._rows(self._query(now, min(n, 2**62) if n > 0 else -1, tok, window=window))

    def snapshot_columns(self, now: TimeLike | None = None, *, window: WindowLike | None = None,
                         ordered: bool = True) -> HolderScores:
        """snapshot() as columns: a HolderScores (``to_arrow()``, ``to_pandas()``,
        ``to_polars()``, ``__arrow_c_stream__``) with an ``updated_at`` column, read from the
        library in one call without a Python object per row. For large snapshots."""
        self._handle()
        t = resolve_now(now)
        return self._columns(self._query(t, window=window, ordered=ordered), t)

    def top_n_columns(self, n: int, now: TimeLike | None = None, token: str | None = None, *,
                      window: WindowLike | None = None) -> HolderScores:
        """top_n() as columns (see snapshot_columns)."""
        self._handle()
        t = resolve_now(now)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidEventError(f"n {n!r}: must be a positive int", field="n", reason="out_of_range",
                                    value=repr(n))
        tok = b"" if token is None else _id(token)
        if token is not None and not tok:
            raise InvalidEventError('token_id "": must not be empty', field="token_id", reason="empty",
                                    value='""')
        return self._columns(self._query(t, min(n, 2**62), tok, window=window), t)

    def _columns(self, out: Any, now: int) -> HolderScores:
        from ._kernel import read_result
        return read_result(self._ffi, self._lib, out.result, int(out.rows), int(out.id_bytes), now, self._exact,
                           updated_at=True)

    def pair(self, token_id: str, holder_id: str, now: TimeLike | None = None) -> HoldStat | None:
        """The (holder_id, token_id) row at ``now``, exactly as ``top_n(..., token=token_id)``
        shows it, or None when the holder never recorded that token. One lookup in the
        library (O(1), no scan of the token's holders)."""
        self._handle()
        tok, hol = _id(token_id), _id(holder_id)
        if not tok or not hol:
            field = "token_id" if not tok else "holder_id"
            raise InvalidEventError(f'{field} "": must not be empty', field=field, reason="empty", value='""')
        out = self._query(now, 0, tok, hol)
        if not out.rows:
            return None
        st = out.first
        score = int.from_bytes(self._ffi.buffer(out.first_exact), "big") if self._exact else st.score
        return HoldStat(holder_id if isinstance(holder_id, str) else hol.decode("utf-8"), score,
                        st.total_seconds, st.events, st.open_holds, st.tokens, st.updated_at)

    def gc(self, now: TimeLike | None = None) -> int:
        """Drop holders idle for longer than the TTL that hold nothing live; returns how many."""
        n = self._ffi.new("int64_t *")
        self._call(self._lib.poh_gc, self._now(now), n)
        return int(n[0])

    def start_gc(self, interval: float | timedelta) -> None:
        """Run gc() on the wall clock every ``interval`` (seconds or timedelta) in the
        library, until close(). Needs a ttl."""
        ms = max(1, round(_seconds(interval, "interval") * 1000))
        self._call(self._lib.poh_gc_schedule, ms)

    def stop_gc(self) -> None:
        """Stop the background GC, if running."""
        self._call(self._lib.poh_gc_schedule, 0)

    def __len__(self) -> int:
        n = self._ffi.new("int64_t *")
        self._call(self._lib.poh_holders, n)
        return int(n[0])

    def metrics_text(self) -> str:
        """The aggregator's Prometheus metrics in the text exposition format."""
        ffi, lib = self._ffi, self._lib
        res = ffi.new("poh_handle *")
        self._call(lib.poh_metrics_text, res)
        r = res[0]
        try:
            nbytes = ffi.new("int64_t *")
            _native.call(lib.poh_result_size, r, ffi.NULL, nbytes)
            buf = ffi.new("char[]", int(nbytes[0]) + 1)
            _native.call(lib.poh_result_text, r, buf, len(buf))
        finally:
            lib.poh_free(r, ffi.NULL)
        return ffi.buffer(buf, int(nbytes[0]))[:].decode("utf-8")


