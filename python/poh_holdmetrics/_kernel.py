"""score_by_holder: one row per holder (or per (holder, token) pair) of a batch, computed by
the library's batch kernel (poh_score_by_holder) straight from columns, without an
Aggregator; the rows come back as columns (HolderScores), viewed as a pyarrow Table, a
pandas or polars DataFrame, or an Arrow C stream, without a Python object per row.

Input: whatever calculate_score takes as columns (a dict of sequences or numpy arrays, a
pandas DataFrame, a pyarrow Table or RecordBatch), a list of HoldEvents, or any object with
the Arrow PyCapsule interface (``__arrow_c_stream__`` / ``__arrow_c_array__``: polars,
DuckDB relations, nanoarrow, ...), read through pyarrow without a copy where the layout
allows (a single chunk; ``string_view`` ids, polars' layout, are converted once).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

from . import _native, _pure
from ._columns import Columns, check_lengths, convert, is_columnar, raw_columns
from ._errors import HoldMetricsError, InvalidEventError
from ._events import HoldEvent, HoldStat, TimeLike, WindowLike, event_at, stats_of
from ._score import _native_or_none, c_columns, events_columns
from ._time import resolve_now, resolve_window
from ._wei import ints_of

COLUMNS = ("holder_id", "token_id", "score", "total_seconds", "events", "open_holds", "tokens")


class HolderScores:
    """The rows of score_by_holder, in ranking order (score descending, then holder_id, then
    token_id ascending), held as columns: ``holder_id``, ``token_id`` (by token only),
    ``score`` (a float, or in exact mode an exact integer), ``total_seconds``, ``events``,
    ``open_holds``, ``tokens`` (the holder's distinct tokens; 1 by token), and for an
    Aggregator's rows (``snapshot_columns``, ``top_n_columns``) ``updated_at``.

    ``to_arrow()`` is a pyarrow Table over the same buffers (no copy), ``to_pandas()`` and
    ``to_polars()`` DataFrames, ``__arrow_c_stream__`` the Arrow PyCapsule stream (so
    ``polars.DataFrame(r)``, ``duckdb.sql("... from r")`` and ``pyarrow.table(r)`` take it
    directly). ``len(r)``, ``r[i]`` and iteration give HoldStat rows (for a by-token
    result, the pair's row as ``top_n(..., token=)`` shows it; ``token_ids`` has their
    tokens); building them costs a Python object per row, so keep that for small results.
    In exact mode the Arrow ``score`` column is ``decimal128(38, 0)`` (or ``decimal256(76,
    0)`` when a score needs it), and pandas gets Python ints.
    """

    __slots__ = ("_n", "_ids", "_offsets", "_tok_ids", "_tok_offsets", "_score", "_exact", "_cols", "now",
                 "by_token", "exact", "_table")

    def __init__(self, n: int, ids: Any, offsets: Any, score: Any, exact: bytes | None,
                 cols: dict[str, Any], now: int, tok: tuple[Any, Any] | None) -> None:
        self._n = n
        self._ids, self._offsets = ids, offsets  # UTF-8 bytes, int64[n + 1]
        self._tok_ids, self._tok_offsets = tok if tok is not None else (None, None)
        self._score = score  # float64[n] (exact mode: each exact score's nearest float)
        self._exact = exact  # exact mode: 48 bytes big-endian per row
        self._cols = cols  # total_seconds, events, open_holds, tokens (updated_at): int64[n]
        self.now = now
        self.by_token = tok is not None
        self.exact = exact is not None
        self._table: Any = None

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        kind = "by token" if self.by_token else "by holder"
        return f"<HolderScores {self._n} rows {kind} at now={self.now}{' exact' if self.exact else ''}>"

    # --- rows ------------------------------------------------------------------------------

    def _strings(self, data: Any, offsets: Any) -> list[str]:
        o = _tolist(offsets)
        raw = bytes(data)
        if raw.isascii():  # the common case: one decode, then slices of the str
            text = raw.decode("ascii")
            return [text[o[i]:o[i + 1]] for i in range(self._n)]
        return [raw[o[i]:o[i + 1]].decode("utf-8") for i in range(self._n)]

    def scores(self) -> list[float | int]:
        """Every row's score: floats, or the exact ints in exact mode."""
        if self._exact is not None:
            return ints_of(self._exact, self._n, 48)
        return _tolist(self._score)

    @property
    def holder_ids(self) -> list[str]:
        return self._strings(self._ids, self._offsets)

    @property
    def token_ids(self) -> list[str] | None:
        """Each row's token (by token), else None."""
        if not self.by_token:
            return None
        return self._strings(self._tok_ids, self._tok_offsets)

    def rows(self) -> list[HoldStat]:
        """Every row as a HoldStat (updated_at is now)."""
        c = self._cols
        return stats_of(self.holder_ids, self.scores(), _tolist(c["total_seconds"]), _tolist(c["events"]),
                        _tolist(c["open_holds"]), _tolist(c["tokens"]),
                        _tolist(c["updated_at"]) if "updated_at" in c else [self.now] * self._n)

    def __iter__(self) -> Iterator[HoldStat]:
        return iter(self.rows())

    def __getitem__(self, i: int) -> HoldStat:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"row index must be an int, not {type(i).__name__}")
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"row {i} of {self._n}")
        o = self._offsets
        hid = bytes(memoryview(self._ids)[o[i]:o[i + 1]]).decode("utf-8")
        score = (int.from_bytes(bytes(memoryview(self._exact)[48 * i:48 * i + 48]), "big")
                 if self._exact is not None else self._score[i])
        c = self._cols
        return HoldStat(hid, score, int(c["total_seconds"][i]), int(c["events"][i]), int(c["open_holds"][i]),
                        int(c["tokens"][i]), int(c["updated_at"][i]) if "updated_at" in c else self.now)

    # --- Arrow and DataFrames --------------------------------------------------------------

    def to_arrow(self) -> Any:
        """The rows as a pyarrow Table (over this result's buffers: no copy, except the
        exact scores' conversion to decimals)."""
        if self._table is not None:
            return self._table
        import pyarrow as pa
        n = self._n
        names, arrays = ["holder_id"], [_large_strings(pa, n, self._offsets, self._ids)]
        if self.by_token:
            names.append("token_id")
            arrays.append(_large_strings(pa, n, self._tok_offsets, self._tok_ids))
        names.append("score")
        if self._exact is not None:
            arrays.append(_decimals(pa, n, self._exact))
        else:
            arrays.append(pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(self._score)]))
        for k in self._cols:
            names.append(k)
            arrays.append(pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(self._cols[k])]))
        self._table = pa.Table.from_arrays(arrays, names=names)
        return self._table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream of to_arrow()."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_pandas(self) -> Any:
        """A pandas DataFrame (exact scores as Python ints, in an object column)."""
        df = self.to_arrow().to_pandas()
        if self._exact is not None:
            import pandas as pd
            df["score"] = pd.Series(self.scores(), index=df.index, dtype=object)
        return df

    def to_polars(self) -> Any:
        """A polars DataFrame (zero copy from Arrow; polars has no 256-bit decimal, so exact
        scores that need one arrive as decimal strings)."""
        import polars as pl
        t = self.to_arrow()
        if self._exact is not None and t.schema.field("score").type.bit_width == 256:
            import pyarrow as pa
            t = t.set_column(t.schema.get_field_index("score"), "score",
                             pa.array([str(s) for s in self.scores()], type=pa.large_string()))
        return pl.from_arrow(t)

    def _repr_html_(self) -> str:
        from html import escape
        shown = min(self._n, 10)
        cols = [c for c in COLUMNS if c != "token_id" or self.by_token]
        cols += [c for c in ("updated_at",) if c in self._cols]
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = []
        toks = self.token_ids
        for i in range(shown):
            r = self[i]
            vals = {"holder_id": r.holder_id, "token_id": toks[i] if toks else "", "score": r.score,
                    "total_seconds": r.total_seconds, "events": r.events, "open_holds": r.open_holds,
                    "tokens": r.tokens, "updated_at": r.updated_at}
            body.append("<tr>" + "".join(f"<td>{escape(str(vals[c]))}</td>" for c in cols) + "</tr>")
        more = f"<p>{self._n:,} rows{' (first 10 shown)' if self._n > shown else ''}, at now={self.now}</p>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _tolist(buf: Any) -> list:
    return buf.tolist() if hasattr(buf, "tolist") else memoryview(buf).tolist()


def _large_strings(pa: Any, n: int, offsets: Any, data: Any) -> Any:
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _decimals(pa: Any, n: int, exact: bytes) -> Any:
    """48-byte big-endian scores as Arrow decimals of scale 0: decimal128(38) when every
    one fits (what pandas, polars and DuckDB all read), else decimal256(76)."""
    values = ints_of(exact, n, 48)
    top = max(values, default=0)
    if top < 10**38:
        return pa.array(values, type=pa.decimal128(38, 0))
    if top < 10**76:
        return pa.array(values, type=pa.decimal256(76, 0))
    raise HoldMetricsError(f"exact score {top} has more than 76 digits: no Arrow decimal holds it "
                           "(read it from rows() or scores())")


# --- input ------------------------------------------------------------------------------

def _arrow_input(data: Any) -> Any:
    """An object with the Arrow PyCapsule interface (not pyarrow's own) as a pyarrow
    Table; None for anything else."""
    mod = type(data).__module__
    if mod.startswith("pyarrow") or mod.startswith("pandas") or not (
            hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")):
        return None
    import pyarrow as pa
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data).read_all()
    return pa.table(pa.record_batch(data))


def _arrow_ready(table: Any, exact: bool) -> Any:
    """string_view id columns (polars exports them) as large_string, which the fast path
    reads in place; in float mode a decimal weight with a fraction (what DuckDB makes of a
    literal such as 1.5) as float64, since a decimal column is otherwise read as exact
    integer amounts; other tables as they are."""
    import pyarrow as pa
    for i, f in enumerate(table.schema):
        if f.name in ("holder_id", "token_id") and (pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type)):
            table = table.set_column(i, f.name, table.column(i).cast(pa.large_string()))
        elif f.name == "weight" and not exact and pa.types.is_decimal(f.type) and f.type.scale > 0:
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    return table


def _columns_of(data: Any, exact: bool, by_token: bool) -> Columns:
    """data as Columns with a holder_id column (token_id too when by_token)."""
    arrow = _arrow_input(data)
    if arrow is not None:
        data = arrow
    if type(data).__module__.startswith("pyarrow") and hasattr(data, "schema"):
        data = _arrow_ready(data, exact)
    if isinstance(data, Mapping):
        for name, col in data.items():
            if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
                raise InvalidEventError(f"{name} column {col!r}: must be a sequence of values (one per row), "
                                        f"not {type(col).__name__}", field=str(name), index=-1,
                                        reason="invalid_type", value=repr(col))
    if not is_columnar(data):
        if not hasattr(data, "__iter__"):
            raise InvalidEventError(
                f"table {data!r}: must be columnar data (a dict of columns, a pandas/polars DataFrame, a pyarrow "
                f"Table, an Arrow PyCapsule object) or an iterable of HoldEvents, not {type(data).__name__}",
                field="table", index=-1, reason="invalid_type", value=repr(data))
        evs = data if isinstance(data, list) else list(data)
        evs = [e if e.__class__ is HoldEvent else event_at(e, i) for i, e in enumerate(evs)]
        return events_columns(evs, exact=exact and any(e.weight.__class__ is int for e in evs))
    raw = raw_columns(data, need_ids=False)
    for name in ("holder_id", "token_id") if by_token else ("holder_id",):
        if raw[name] is None:
            raise InvalidEventError(f"{name} column is required to group by {name.split('_')[0]}", field=name,
                                    index=-1, reason="empty")
    return convert(raw, check_lengths(raw), exact)


# --- the call ---------------------------------------------------------------------------

def score_by_holder(table: Any, now: TimeLike | None = None, window: WindowLike | None = None, *,
                    by_token: bool = False, top: int | None = None, exact: bool = False, twab: bool = False,
                    threads: int | None = None) -> HolderScores:
    """Every holder's score (or with ``by_token=True`` every (holder, token) pair's) of a
    batch at ``now`` (default: the wall clock), in ranking order, as columns: exactly the
    rows ``Aggregator(window=window, exact=exact)`` would give after recording the batch at
    ``now`` and ``snapshot(now)`` (bit for bit: the same Neumaier sums in input order), but
    in one library call with no live state, a few times faster.

    ``table`` is columnar data as for calculate_score (``holder_id`` required; without
    ``token_id`` every row is of one token), a list of HoldEvents, or any Arrow PyCapsule
    object (a polars DataFrame, a DuckDB relation, ...). ``window=(t0, t1)`` clips every
    hold; ``twab=True`` divides each row's score by the window's elapsed time (exact mode:
    floor); ``exact=True`` takes integer weights and returns exact int scores. ``top=n``
    keeps the first n rows (a bounded heap, no full sort). ``threads`` bounds the threads
    the library uses (default: every core). Raises InvalidEventError for the lowest-index
    bad row (nothing is computed) or a bad argument.
    """
    t = resolve_now(now)
    w = resolve_window(window)
    if twab:
        if w is None:
            raise InvalidEventError("window None: a TWAB needs a (t0, t1) window", field="window",
                                    reason="invalid_type", value="None")
        _pure.elapsed(w[0], w[1], t)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise InvalidEventError(f"top {top!r}: must be a positive int (or None for every row)", field="top",
                                reason="out_of_range", value=repr(top))
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads {threads!r}: must be a positive int (or None for every core)")
    cols = _columns_of(table, exact, by_token)
    nl = _native_or_none()
    if nl is None:
        return _pure_scores(cols, t, w, by_token, top, exact, twab)
    return _native_scores(nl[0], nl[1], cols, t, w, by_token, top or 0, exact, twab, threads or 0)


def _native_scores(ffi: Any, lib: Any, cols: Columns, now: int, w: tuple[int, int] | None, by_token: bool, top: int,
                   exact: bool, twab: bool, threads: int) -> HolderScores:
    o = _native.options(ffi, "poh_group_options")
    o.now, o.n, o.threads = now, min(top, 2**62), threads
    if w is not None:
        o.flags |= lib.POH_GROUP_WINDOW
        o.window.t0, o.window.t1 = w
    if twab:
        o.flags |= lib.POH_GROUP_TWAB
    if exact:
        o.flags |= lib.POH_GROUP_EXACT
    if by_token:
        o.flags |= lib.POH_GROUP_BY_TOKEN
    out = _native.options(ffi, "poh_group_result")
    c, keep = c_columns(ffi, cols)
    try:
        _native.call(lib.poh_score_by_holder, c, o, out)
    finally:
        del keep
    return read_result(ffi, lib, out.result, int(out.rows), int(out.id_bytes), now, exact,
                       int(out.token_bytes) if by_token else None)


def read_result(ffi: Any, lib: Any, r: int, n: int, nb: int, now: int, exact: bool, tb: int | None = None,
                updated_at: bool = False) -> HolderScores:
    """The n rows (nb id bytes) of a stats result r (which this frees) as a HolderScores:
    one poh_result_stats call into buffers owned by the HolderScores. tb: the token id
    bytes of a by-token result; updated_at: keep that column (an Aggregator query's)."""
    by_token = tb is not None
    try:
        score = array("d", bytes(8 * n))
        names = ("total_seconds", "events", "open_holds", "tokens") + (("updated_at",) if updated_at else ())
        ints = {k: array("q", bytes(8 * n)) for k in names}
        offsets = array("q", bytes(8 * (n + 1)))
        ids = bytearray(nb)
        exact_buf = bytearray(48 * n) if exact else None
        tok = (bytearray(tb), array("q", bytes(8 * (n + 1)))) if tb is not None else None
        sc = _native.options(ffi, "poh_stat_columns")
        sc.rows_cap, sc.ids_cap = n, nb
        hold = [ffi.from_buffer("double[]", score, require_writable=True),
                ffi.from_buffer("int64_t[]", offsets, require_writable=True)]
        sc.score, sc.id_offsets = hold
        if nb:
            hold.append(ffi.from_buffer("char[]", ids, require_writable=True))
            sc.ids = hold[-1]
        for k, buf in ints.items():
            hold.append(ffi.from_buffer("int64_t[]", buf, require_writable=True))
            setattr(sc, k, hold[-1])
        if exact_buf is not None and n:
            hold.append(ffi.from_buffer("uint8_t[]", exact_buf, require_writable=True))
            sc.exact = hold[-1]
        if tok is not None:
            sc.token_ids_cap = len(tok[0])
            hold.append(ffi.from_buffer("int64_t[]", tok[1], require_writable=True))
            sc.token_offsets = hold[-1]
            if tok[0]:
                hold.append(ffi.from_buffer("char[]", tok[0], require_writable=True))
                sc.token_ids = hold[-1]
        if n:
            _native.call(lib.poh_result_stats, r, sc)
        del hold
    finally:
        lib.poh_free(r, ffi.NULL)
    return HolderScores(n, ids, offsets, score, None if exact_buf is None else bytes(exact_buf), ints, now,
                        None if tok is None else (tok[0], tok[1]))


def _pure_scores(cols: Columns, now: int, w: tuple[int, int] | None, by_token: bool, top: int | None, exact: bool,
                 twab: bool) -> HolderScores:
    """The fallback: _pure.group_rows over the columns, packed into the same buffers."""
    starts, ends, weights, toks, hols = cols.rows()
    t0, t1 = w if w is not None else (_pure.MIN_TIME, _pure.MAX_TIME)
    if hols is None:
        raise InvalidEventError("holder_id column is required to group by holder", field="holder_id", index=-1,
                                reason="empty")
    rows = _pure.group_rows(starts, ends, weights, now, toks, hols, t0, t1, exact=exact, by_token=by_token,
                            twab=twab)
    if top is not None:
        rows = rows[:top]
    n = len(rows)
    ids = b"".join(r[0] for r in rows)
    offsets = array("q", [0] * (n + 1))
    for i, r in enumerate(rows):
        offsets[i + 1] = offsets[i] + len(r[0])
    tok = None
    if by_token:
        toff = array("q", [0] * (n + 1))
        for i, r in enumerate(rows):
            toff[i + 1] = toff[i] + len(r[1])
        tok = (b"".join(r[1] for r in rows), toff)
    scores = [r[2] for r in rows]
    exact_buf = b"".join(s.to_bytes(48, "big") for s in scores) if exact else None
    score = array("d", [float(s) for s in scores])
    ints = {k: array("q", [r[j] for r in rows]) for j, k in enumerate(("total_seconds", "events", "open_holds",
                                                                       "tokens"), start=3)}
    return HolderScores(n, ids, offsets, score, exact_buf, ints, now, tok)


def concat_columns(parts: list[Columns]) -> Columns:
    """Columns of consecutive batches as one batch (the CLI's chunks of a file)."""
    if len(parts) == 1:
        return parts[0]
    n = sum(p.n for p in parts)
    out = Columns(n)
    out.start = _cat([p.start for p in parts], "q")
    if any(p.end is not None for p in parts):
        out.end = _cat([p.end if p.end is not None else array("q", bytes(8 * p.n)) for p in parts], "q")
        out.has_end = _cat([p.has_end if p.has_end is not None else
                            (array("B", bytes(p.n)) if p.end is None else array("B", b"\x01" * p.n)) for p in parts],
                           "B")
    if any(p.wei is not None for p in parts):
        out.wei = b"".join(bytes(p.wei) if p.wei is not None else _wei_of(p) for p in parts)
    elif any(p.weight is not None for p in parts):
        out.weight = _cat([p.weight if p.weight is not None else array("d", [1.0]) * p.n for p in parts], "d")
    for attr in ("tok", "hol"):
        ids = [getattr(p, attr) for p in parts]
        if all(x is not None for x in ids):
            setattr(out, attr, _cat_ids(ids))
    return out


def _cat_ids(ids: list[tuple[Any, Any]]) -> tuple[bytes, Any]:
    """(data, offsets) id columns end to end, offsets rebased."""
    import sys
    data = b"".join([d for d, _ in ids])  # bytes-like buffers, each copied once, into the join
    np = sys.modules.get("numpy")
    if np is not None:
        parts, base = [np.zeros(1, dtype=np.int64)], 0
        for _, o in ids:
            a = np.frombuffer(memoryview(o).cast("B"), dtype=np.int64)
            parts.append(a[1:] - a[0] + base)
            base += int(a[-1] - a[0])
        return data, np.concatenate(parts)
    offs = array("q", [0])
    base = 0
    for _, o in ids:
        ol = _tolist(o)
        offs.extend(base + v - ol[0] for v in ol[1:])
        base += ol[-1] - ol[0]
    return data, offs


def _wei_of(p: Columns) -> bytes:
    weights = [1.0] * p.n if p.weight is None else _tolist(p.weight)
    return b"".join(_pure.exact_weight(i, x).to_bytes(32, "big") for i, x in enumerate(weights))


def _cat(bufs: list[Any], code: str) -> Any:
    """Buffers of one type end to end (numpy when it is there: one copy, no Python ints)."""
    import sys
    np = sys.modules.get("numpy")
    if np is not None:
        dt = {"q": np.int64, "B": np.uint8, "d": np.float64}[code]
        return np.concatenate([np.frombuffer(memoryview(b).cast("B"), dtype=dt) for b in bufs])
    out = array(code)
    for b in bufs:
        out.frombytes(memoryview(b).cast("B").tobytes())
    return out
