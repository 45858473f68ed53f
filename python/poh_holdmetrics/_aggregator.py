"""Aggregator: a handle on a native (Go) aggregator, with async and sync methods."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from datetime import timedelta
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _native
from ._columns import Columns, check_lengths, convert, is_columnar, normalize, raw_columns, slice_raw
from ._errors import ClosedError, ForkedProcessError, InvalidEventError
from ._events import HoldEvent, HoldStat, TimeLike, event_at
from ._score import c_columns, resolve_now

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


def _shift(e: Exception, offset: int) -> Exception:
    """e with its batch index moved by offset (an error found in a chunk of a batch)."""
    if not isinstance(e, InvalidEventError) or e.index < 0 or not offset:
        return e
    return InvalidEventError(str(e).replace(f"event {e.index}:", f"event {e.index + offset}:", 1),
                             field=e.field, index=e.index + offset, reason=e.reason, value=e.value)


def _events_to_columns(events: list[HoldEvent]) -> Columns:
    from array import array
    from itertools import accumulate
    n = len(events)
    c = Columns(n)
    c.start = array("q", [e.start for e in events])
    ends = [e.end for e in events]
    c.end = array("q", [-1 if e is None else e for e in ends])
    c.has_end = array("B", [e is not None for e in ends])
    c.weight = array("d", [e.weight for e in events])
    toks = [e._tok for e in events]
    hols = [e._hol for e in events]
    c.tok = (b"".join(toks), array("q", accumulate(map(len, toks), initial=0)))
    c.hol = (b"".join(hols), array("q", accumulate(map(len, hols), initial=0)))
    return c


class Aggregator:
    """Accumulates hold scores per holder and per (holder, token), in the native library.

    ``ttl`` (seconds or a timedelta; None = keep every holder) lets ``gc()`` drop holders
    idle for longer than it that hold nothing open. Thread-safe: the library call releases
    the GIL, so threads record in parallel. Close it with ``close()``, ``with`` or
    ``async with``; a forgotten aggregator is freed by its finalizer. Methods of a closed
    aggregator raise ClosedError; in a child forked after the library was loaded they raise
    ForkedProcessError (use the "spawn" or "forkserver" start method).

    ``now`` / ``at`` arguments default to the library's wall clock.
    """

    def __init__(self, ttl: float | timedelta | None = None, *, shards: int = 0) -> None:
        self._ffi, self._lib = _native.load()
        ttl_s = _seconds(ttl, "ttl")
        err = _native.new_error(self._ffi)
        out = self._ffi.new("poh_handle *")
        rc = self._lib.poh_aggregator_new(max(1, round(ttl_s)) if ttl_s else 0, int(shards), out, err)
        if rc:
            raise _native.error_from(self._ffi, self._lib, rc, err)
        self._h: int = out[0]
        self._rec = self._lib.poh_aggregator_record
        self._null = self._ffi.NULL
        self._closed = False
        self._finalizer = weakref.finalize(self, _free, self._lib, self._h, os.getpid())

    # --- lifecycle -------------------------------------------------------------------------

    def _handle(self) -> int:
        """The live handle; the one place that checks closed and forked."""
        if self._closed:
            raise ClosedError("aggregator is closed")
        if _native.forked():
            raise ForkedProcessError(_native.FORK_MESSAGE)
        return self._h

    def close(self) -> None:
        """Free the native aggregator (stopping its background GC). Idempotent."""
        self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Aggregator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Aggregator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Aggregator {'closed' if self._closed else 'handle=' + str(self._h)}>"

    def _check(self, rc: int, err: Any) -> None:
        if rc:
            raise _native.error_from(self._ffi, self._lib, rc, err)

    # --- recording -------------------------------------------------------------------------

    # The one-event path is the hot one: the HoldEvent is already valid, so the call passes
    # no poh_error (NULL); only if it fails is it repeated with one, for the details (a
    # failed record changes nothing but the rejected-events counter).

    def record_sync(self, event: HoldEvent) -> None:
        """Record one event (all its fields were validated by HoldEvent)."""
        if self._closed or _native._forked:
            self._handle()
        ev = event if event.__class__ is HoldEvent else event_at(event, -1)
        end = ev.end
        tok, hol = ev._tok, ev._hol
        if self._rec(self._h, tok, len(tok), hol, len(hol), ev.start, 0 if end is None else end, end is not None,
                     ev.weight, _NOW, self._null):
            self._record_failed(ev)

    async def record(self, event: HoldEvent) -> None:
        """Record one event: one short library call, on the loop's thread (no thread hop)."""
        if self._closed or _native._forked:
            self._handle()
        ev = event if event.__class__ is HoldEvent else event_at(event, -1)
        end = ev.end
        tok, hol = ev._tok, ev._hol
        if self._rec(self._h, tok, len(tok), hol, len(hol), ev.start, 0 if end is None else end, end is not None,
                     ev.weight, _NOW, self._null):
            self._record_failed(ev)

    def _record_failed(self, ev: HoldEvent) -> None:
        err = self._ffi.new("poh_error *")
        end = ev.end
        rc = self._rec(self._handle(), ev._tok, len(ev._tok), ev._hol, len(ev._hol), ev.start,
                       0 if end is None else end, end is not None, ev.weight, _NOW, err)
        if rc:
            raise _native.error_from(self._ffi, self._lib, rc, err)

    def _prepare(self, events: Iterable[HoldEvent] | Any) -> Columns:
        if is_columnar(events):
            return normalize(events, need_ids=True)
        evs = events if isinstance(events, list) else list(events)
        return _events_to_columns([e if e.__class__ is HoldEvent else event_at(e, i) for i, e in enumerate(evs)])

    def _validate(self, cols: Columns) -> None:
        """Check a multi-chunk batch whole before recording any chunk (all-or-nothing)."""
        c, keep = c_columns(self._ffi, cols)
        out = self._ffi.new("double *")
        err = self._ffi.new("poh_error *")
        self._check(self._lib.poh_score_columns(c, 0, out, err), err)
        del keep

    def _record_chunk(self, cols: Columns, offset: int) -> int:
        c, keep = c_columns(self._ffi, cols)
        err = self._ffi.new("poh_error *")
        accepted = self._ffi.new("int64_t *")
        rc = self._lib.poh_aggregator_record_columns(self._handle(), c, _NOW, 0, accepted, err)
        del keep
        if rc:
            raise _shift(_native.error_from(self._ffi, self._lib, rc, err), offset)
        return int(accepted[0])

    def record_many_sync(self, events: Iterable[HoldEvent] | Any) -> int:
        """Record a batch all-or-nothing: HoldEvents or columnar data (see calculate_score;
        ``token_id`` and ``holder_id`` columns are required). Returns the count recorded."""
        self._handle()
        cols = self._prepare(events)
        if cols.n <= CHUNK_ROWS:
            return self._record_chunk(cols, 0)
        self._validate(cols)
        return sum(self._record_chunk(cols.slice(lo, min(lo + CHUNK_ROWS, cols.n)), lo)
                   for lo in range(0, cols.n, CHUNK_ROWS))

    async def record_many(self, events: Iterable[HoldEvent] | Any) -> int:
        """record_many_sync for event loops: the batch goes in chunks of CHUNK_ROWS rows,
        yielding to the loop between chunks, so a large batch never blocks it for long."""
        import asyncio  # here, not at import: it costs tens of ms, and a running loop has loaded it

        self._handle()
        if is_columnar(events):
            raw = raw_columns(events, need_ids=True)
            n = check_lengths(raw)

            def chunk(lo: int, hi: int) -> Columns:
                return convert(slice_raw(raw, lo, hi), hi - lo)
        else:
            evs = events if isinstance(events, list) else list(events)
            n = len(evs)

            def chunk(lo: int, hi: int) -> Columns:
                return self._prepare(evs[lo:hi])
        if n <= CHUNK_ROWS:
            return self._record_chunk(chunk(0, n), 0)
        # Convert and validate every chunk before recording any (all-or-nothing), yielding
        # to the loop after each step: converting Python objects is the slow part.
        chunks = []
        for lo in range(0, n, CHUNK_ROWS):
            try:
                c = chunk(lo, min(lo + CHUNK_ROWS, n))
                self._validate(c)
            except InvalidEventError as e:
                raise _shift(e, lo) from None
            chunks.append((lo, c))
            await asyncio.sleep(0)
        total = 0
        for lo, c in chunks:
            total += self._record_chunk(c, lo)
            await asyncio.sleep(0)
        return total

    def close_hold(self, token_id: str, holder_id: str, at: TimeLike | None = None) -> int:
        """End every open hold of (token_id, holder_id) at ``at``; returns how many.
        Raises NoOpenHoldError when there is none."""
        h = self._handle()
        t = _NOW if at is None else resolve_now(at, "at")
        tok = token_id.encode("utf-8", "surrogatepass") if isinstance(token_id, str) else bytes(token_id)
        hol = holder_id.encode("utf-8", "surrogatepass") if isinstance(holder_id, str) else bytes(holder_id)
        err = self._ffi.new("poh_error *")
        n = self._ffi.new("int64_t *")
        self._check(self._lib.poh_aggregator_close_hold(h, tok, len(tok), hol, len(hol), t, _NOW,
                                                        n, err), err)
        return int(n[0])

    # --- reading ---------------------------------------------------------------------------

    def _now(self, now: TimeLike | None) -> int:
        return _NOW if now is None else resolve_now(now)

    def _stats(self, rc: int, err: Any, result: Any) -> list[HoldStat]:
        self._check(rc, err)
        r = result[0]
        ffi, lib = self._ffi, self._lib
        try:
            rows, nbytes = ffi.new("int64_t *"), ffi.new("int64_t *")
            self._check(lib.poh_result_size(r, rows, nbytes, err), err)
            n, nb = int(rows[0]), int(nbytes[0])
            stats = ffi.new("poh_stat[]", max(n, 1))
            ids = ffi.new("char[]", max(nb, 1))
            self._check(lib.poh_result_stats(r, stats, n, ids, nb, err), err)
        finally:
            lib.poh_free(r, ffi.NULL)
        raw = ffi.buffer(ids, nb)[:]
        out = []
        for i in range(n):
            s = stats[i]
            o = s.id_offset
            out.append(HoldStat(raw[o:o + s.id_len].decode("utf-8"), s.score, s.total_seconds, s.events,
                                s.open_holds, s.tokens, s.updated_at))
        return out

    def snapshot(self, now: TimeLike | None = None) -> list[HoldStat]:
        """One row per holder at ``now``: score descending, then holder_id ascending."""
        h = self._handle()
        err = self._ffi.new("poh_error *")
        res = self._ffi.new("poh_handle *")
        return self._stats(self._lib.poh_aggregator_snapshot(h, self._now(now), res, err), err, res)

    def top_n(self, n: int, now: TimeLike | None = None, token: str | None = None) -> list[HoldStat]:
        """The first ``n`` rows of the snapshot order (a bounded heap, no full sort). With
        ``token``, rows are the (holder, token) pairs of that token."""
        h = self._handle()
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidEventError(f"n {n!r}: must be an int", field="n", reason="invalid_type", value=repr(n))
        tok = b"" if token is None else token.encode("utf-8", "surrogatepass")
        if token is not None and not tok:
            raise InvalidEventError('token_id "": must not be empty', field="token_id", reason="empty",
                                    value='""')
        err = self._ffi.new("poh_error *")
        res = self._ffi.new("poh_handle *")
        n_c = min(n, 2**62) if n >= 0 else n
        return self._stats(self._lib.poh_aggregator_top_n(h, max(n_c, -1), self._now(now), tok or self._ffi.NULL,
                                                          len(tok), res, err), err, res)

    def gc(self, now: TimeLike | None = None) -> int:
        """Drop holders idle for longer than the TTL with no open hold; returns how many."""
        h = self._handle()
        err = self._ffi.new("poh_error *")
        n = self._ffi.new("int64_t *")
        self._check(self._lib.poh_aggregator_gc(h, self._now(now), n, err), err)
        return int(n[0])

    def start_gc(self, interval: float | timedelta) -> None:
        """Run gc() on the wall clock every ``interval`` (seconds or timedelta) in the
        library, until close(). Needs a ttl."""
        h = self._handle()
        ms = max(1, round(_seconds(interval, "interval") * 1000))
        err = self._ffi.new("poh_error *")
        self._check(self._lib.poh_aggregator_start_gc(h, ms, err), err)

    def stop_gc(self) -> None:
        """Stop the background GC, if running."""
        h = self._handle()
        err = self._ffi.new("poh_error *")
        self._check(self._lib.poh_aggregator_stop_gc(h, err), err)

    def __len__(self) -> int:
        h = self._handle()
        err = self._ffi.new("poh_error *")
        n = self._ffi.new("int64_t *")
        self._check(self._lib.poh_aggregator_len(h, n, err), err)
        return int(n[0])

    def metrics_text(self) -> str:
        """The aggregator's Prometheus metrics in the text exposition format."""
        h = self._handle()
        ffi, lib = self._ffi, self._lib
        err = ffi.new("poh_error *")
        res = ffi.new("poh_handle *")
        self._check(lib.poh_aggregator_metrics_text(h, res, err), err)
        r = res[0]
        try:
            nbytes = ffi.new("int64_t *")
            self._check(lib.poh_result_size(r, ffi.NULL, nbytes, err), err)
            buf = ffi.new("char[]", int(nbytes[0]) + 1)
            self._check(lib.poh_result_text(r, buf, len(buf), err), err)
        finally:
            lib.poh_free(r, ffi.NULL)
        return ffi.buffer(buf, int(nbytes[0]))[:].decode("utf-8")


