"""Columnar input: a dict of sequences, numpy arrays (masked too), a pandas DataFrame or a
pyarrow Table / RecordBatch, normalised to the C API's Arrow-style layout.

Columns: ``start`` (required), ``end`` (null = open: None, pandas NA/NaT, a masked value, an
Arrow null), ``weight`` (default 1.0), ``token_id`` and ``holder_id`` (required to record,
validated when present). Any other column name is an error naming it (reason
``unknown_key``): a misspelt ``wieght`` must not silently mean weight 1.0. Fast paths hand
existing int64/float64 buffers over without copying; anything they cannot represent exactly
(non-finite float times, odd types, lone surrogates, ...) goes through the row-by-row path,
which raises the precise error.

Exact mode (``exact=True``): an integer weight column (Python ints, decimal strings, numpy
or Arrow integers, Arrow ``fixed_size_binary(32)`` / ``decimal`` of scale 0, ...) becomes
the C API's ``weight_u256`` (32 bytes big-endian per row; see _wei), a float column stays
``weight`` (the core takes it only when every value is an integer up to 2^53). In float
mode such integer columns count as ``float(w)``.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Mapping
from itertools import accumulate
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _pure
from ._errors import InvalidEventError
from ._events import EVENT_KEYS, to_id_bytes, to_seconds, to_weight, unknown_key
from ._wei import BadValue, ints_of, to_int, u256_column

NAMES = ("start", "end", "weight", "token_id", "holder_id")
_NAMES = frozenset(NAMES)
_INT64_SAFE = float(2**62)


class _Slow(Exception):
    """A fast path gave up: use the row-by-row path."""


class Columns:
    """A normalised batch: buffers the C API reads in place, plus what keeps them alive."""

    __slots__ = ("n", "start", "end", "has_end", "weight", "wei", "tok", "hol")

    def __init__(self, n: int) -> None:
        self.n = n
        self.start: Any = None
        self.end: Any = None  # int64 buffer or None (every hold open)
        self.has_end: Any = None  # uint8 buffer or None (every row with an end has it)
        self.weight: Any = None  # float64 buffer or None (1.0)
        self.wei: Any = None  # exact mode: 32 bytes big-endian per row (weight is then None)
        self.tok: tuple[Any, Any] | None = None  # (UTF-8 data, int64 offsets[n+1])
        self.hol: tuple[Any, Any] | None = None

    def rows(self) -> tuple[list, list, list, list | None, list | None]:
        """The batch as Python lists, for the fallback scorer."""
        starts = _tolist(self.start)
        if self.end is None:
            ends: list = [None] * self.n
        else:
            ends = _tolist(self.end)
            if self.has_end is not None:
                ends = [e if h else None for e, h in zip(ends, _tolist(self.has_end))]
        if self.wei is not None:
            weights: list = ints_of(self.wei, self.n)
        else:
            weights = [1.0] * self.n if self.weight is None else _tolist(self.weight)
        return starts, ends, weights, _ids_list(self.tok), _ids_list(self.hol)

    def slice(self, lo: int, hi: int) -> Columns:
        """Rows [lo, hi): views, no copies (id offsets are rebased, a copy of hi-lo+1 ints)."""
        c = Columns(hi - lo)
        mv = memoryview
        c.start = mv(self.start)[lo:hi]
        c.end = None if self.end is None else mv(self.end)[lo:hi]
        c.has_end = None if self.has_end is None else mv(self.has_end)[lo:hi]
        c.weight = None if self.weight is None else mv(self.weight)[lo:hi]
        c.wei = None if self.wei is None else mv(self.wei).cast("B")[32 * lo:32 * hi]
        c.tok = _slice_ids(self.tok, lo, hi)
        c.hol = _slice_ids(self.hol, lo, hi)
        return c


def _tolist(buf: Any) -> list:
    if hasattr(buf, "tolist"):
        return buf.tolist()
    return memoryview(buf).tolist()


def _ids_list(ids: tuple[Any, Any] | None) -> list | None:
    if ids is None:
        return None
    data, offs = bytes(ids[0]), _tolist(ids[1])
    return [data[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]


def _slice_ids(ids: tuple[Any, Any] | None, lo: int, hi: int) -> tuple[Any, Any] | None:
    if ids is None:
        return None
    offs = memoryview(ids[1]).cast("B").cast("q")
    base, top = offs[lo], offs[hi]
    np = _np()
    if np is not None:  # vectorised rebase: this runs once per chunk of a large batch
        sub: Any = np.frombuffer(offs, dtype=np.int64)[lo:hi + 1] - base
    else:
        sub = array("q", offs[lo:hi + 1])
        if base:
            sub = array("q", (o - base for o in sub))
    return memoryview(ids[0])[base:top], sub


def is_columnar(data: Any) -> bool:
    """True for the columnar kinds (as opposed to a sequence of events)."""
    if isinstance(data, Mapping):
        return True
    mod = type(data).__module__
    return (mod.startswith("pandas") and hasattr(data, "columns")) or (
        mod.startswith("pyarrow") and hasattr(data, "column_names"))


def _bad_columns(message: str, field: str) -> InvalidEventError:
    return InvalidEventError(message, field=field, index=-1, reason="out_of_range")


def normalize(data: Any, need_ids: bool, exact: bool = False) -> Columns:
    """data as Columns (exact: integer weights as wei); raises InvalidEventError for a bad
    batch."""
    raw = raw_columns(data, need_ids)
    return convert(raw, check_lengths(raw), exact)


def raw_columns(data: Any, need_ids: bool) -> dict[str, Any]:
    """The named columns of data, as they are (None when absent); a column that is not
    one of NAMES is an error naming it."""
    mod = type(data).__module__
    if mod.startswith("pyarrow"):
        get, names = _arrow_getter(data), data.column_names
    elif mod.startswith("pandas"):
        get, names = _pandas_getter(data), data.columns
    else:
        get = _mapping_getter(data)
        names = data.keys()
    if not _NAMES.issuperset(names):
        raise unknown_key(next(k for k in names if k not in _NAMES), -1, EVENT_KEYS, "column")
    raw = {name: get(name) for name in NAMES}
    if raw["start"] is None:
        raise InvalidEventError("start column is required", field="start", index=-1, reason="empty")
    for name in ("token_id", "holder_id"):
        if need_ids and raw[name] is None:
            raise InvalidEventError(f"{name} column is required to record", field=name, index=-1,
                                    reason="empty")
    return raw


def check_lengths(raw: dict[str, Any]) -> int:
    """The row count; every present column must have it."""
    n = len(raw["start"])
    for name in NAMES[1:]:
        if raw[name] is not None and len(raw[name]) != n:
            raise _bad_columns(f"{name} column has {len(raw[name])} rows, start has {n}", name)
    return n


def slice_raw(raw: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """Rows [lo, hi) of every raw column (views where the column type has them)."""
    out = {}
    for name, col in raw.items():
        if col is None:
            out[name] = None
        elif type(col).__module__.startswith("pandas"):
            out[name] = col.iloc[lo:hi]
        elif type(col).__module__.startswith("pyarrow"):
            out[name] = col.slice(lo, hi - lo)
        else:
            out[name] = col[lo:hi]
    return out


def convert(raw: dict[str, Any], n: int, exact: bool = False) -> Columns:
    """Raw columns of n rows as Columns (errors index rows from 0)."""
    try:
        return _fast(raw, n, exact)
    except _Slow:
        return _rowwise(raw, n, exact)


# --- column access ------------------------------------------------------------------------

def _mapping_getter(data: Any):
    if not isinstance(data, Mapping):
        raise InvalidEventError(f"unsupported columnar input {type(data).__name__}", field="events", index=-1,
                                reason="invalid_type")

    def get(name: str) -> Any:
        return data.get(name)
    return get


def _pandas_getter(df: Any):
    cols = set(df.columns)

    def get(name: str) -> Any:
        return df[name] if name in cols else None
    return get


def _arrow_getter(table: Any):
    names = set(table.column_names)

    def get(name: str) -> Any:
        if name not in names:
            return None
        col = table.column(name)
        if not hasattr(col, "combine_chunks"):
            return col
        # combine_chunks copies even a single chunk (10M rows' ids: about 0.5 GB)
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return get


# --- fast paths ---------------------------------------------------------------------------

def _fast(raw: dict[str, Any], n: int, exact: bool = False) -> Columns:
    c = Columns(n)
    c.start, smask = _times(raw["start"], "start")
    if smask is not None:
        raise _Slow  # a null start: let the row path report it
    if raw["end"] is not None:
        c.end, c.has_end = _times(raw["end"], "end")
    if raw["weight"] is not None:
        if exact:
            try:
                c.wei, c.weight, _ = u256_column(raw["weight"], n)
            except BadValue:
                raise _Slow from None  # the row path reports the lowest-index problem
        else:
            c.weight = _floats(raw["weight"])
    if raw["token_id"] is not None:
        c.tok = _ids(raw["token_id"])
    if raw["holder_id"] is not None:
        c.hol = _ids(raw["holder_id"])
    return c


def _np() -> Any:
    return sys.modules.get("numpy")


def _times(col: Any, field: str) -> tuple[Any, Any]:
    """(int64 buffer, uint8 valid-mask or None)."""
    np = _np()
    mod = type(col).__module__
    if mod.startswith("pyarrow"):
        return _arrow_times(col)
    if mod.startswith("pandas"):
        return _pandas_times(col)
    if np is not None and isinstance(col, np.ndarray):
        return _numpy_times(np, col)
    if isinstance(col, array) and col.typecode == "q":
        return col, None
    if isinstance(col, memoryview) and col.format in ("q", "<q", "=q", "l") and col.itemsize == 8:
        return col, None
    try:
        return array("q", col), None  # ints only; None, floats, datetimes take the row path
    except (TypeError, OverflowError):
        raise _Slow from None


def _numpy_times(np: Any, a: Any) -> tuple[Any, Any]:
    mask = None
    if isinstance(a, np.ma.MaskedArray):
        m = np.ma.getmaskarray(a)
        if m.any():
            mask = np.ascontiguousarray(~m, dtype=np.uint8)
        a = a.filled(0) if a.dtype.kind != "M" else a.filled(np.datetime64(0, "s"))
    if a.ndim != 1:
        raise _Slow
    kind = a.dtype.kind
    if kind == "i" or (kind == "u" and (a.size == 0 or a.max() <= 2**62)):
        return np.ascontiguousarray(a, dtype=np.int64), mask
    if kind == "f":
        if a.size and not (np.isfinite(a).all() and np.abs(a).max() < _INT64_SAFE):
            raise _Slow
        return np.floor(a).astype(np.int64), mask
    if kind == "M":
        nat = np.isnat(a)
        if nat.any():
            mask = np.ascontiguousarray(~nat if mask is None else (mask.astype(bool) & ~nat), dtype=np.uint8)
        us = a.astype("datetime64[us]").view(np.int64)
        return np.where(nat, 0, np.floor_divide(us, 1_000_000)), mask
    raise _Slow


def _pandas_times(s: Any) -> tuple[Any, Any]:
    np = _np()
    na = s.isna().to_numpy()
    mask = np.ascontiguousarray(~na, dtype=np.uint8) if na.any() else None
    if s.dtype.kind == "M" or str(s.dtype).startswith("datetime64"):
        a = s.to_numpy(dtype="datetime64[us]", na_value=np.datetime64(0, "us"))
        return np.floor_divide(a.view(np.int64), 1_000_000), mask
    try:
        a = s.to_numpy(na_value=0) if mask is not None else s.to_numpy()
    except (TypeError, ValueError):
        raise _Slow from None
    t, _ = _numpy_times(np, np.asarray(a))
    return t, mask


def _arrow_times(arr: Any) -> tuple[Any, Any]:
    np = _np()
    import pyarrow as pa
    import pyarrow.compute as pc
    if pa.types.is_null(arr.type):  # a column of nulls only (every hold open)
        return np.zeros(len(arr), dtype=np.int64), np.zeros(len(arr), dtype=np.uint8)
    mask = None
    if arr.null_count:
        mask = np.ascontiguousarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
        arr = arr.fill_null(0) if not pa.types.is_timestamp(arr.type) else pc.fill_null(
            arr, pa.scalar(0, type=arr.type))
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        a = arr.to_numpy(zero_copy_only=False)
        return _numpy_times(np, a)[0], mask
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return _numpy_times(np, arr.to_numpy(zero_copy_only=False))[0], mask
    raise _Slow


def _floats(col: Any) -> Any:
    np = _np()
    mod = type(col).__module__
    if mod.startswith("pyarrow"):
        import pyarrow as pa
        t = col.type
        if not col.null_count and (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_decimal(t)
                                   or pa.types.is_fixed_size_binary(t)):
            # exact amounts (e.g. transfers_to_holds' weight column): float(w) each
            try:
                wei, _, _ = u256_column(col, len(col))
            except BadValue as e:
                raise e.error("weight") from None
            return array("d", map(float, ints_of(wei, len(col))))
        col = col.to_numpy(zero_copy_only=False)  # nulls become NaN: rejected as not finite
    elif mod.startswith("pandas"):
        try:
            col = col.to_numpy(dtype="float64", na_value=math.nan)
        except (TypeError, ValueError):
            raise _Slow from None
    if np is not None and isinstance(col, np.ndarray):
        if isinstance(col, np.ma.MaskedArray):
            col = col.filled(np.nan)
        if col.ndim != 1 or col.dtype.kind not in "iuf":
            raise _Slow
        return np.ascontiguousarray(col, dtype=np.float64)
    if isinstance(col, array) and col.typecode == "d":
        return col
    try:
        if any(isinstance(v, bool) for v in col):
            raise _Slow
        return array("d", col)
    except (TypeError, OverflowError):
        raise _Slow from None


def _ids(col: Any) -> tuple[Any, Any]:
    mod = type(col).__module__
    if mod.startswith("pandas") and "pyarrow" in sys.modules:
        import pyarrow as pa
        try:
            col = pa.array(col, from_pandas=True)
            mod = "pyarrow"
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise _Slow from None
    if mod.startswith("pyarrow"):
        return _arrow_ids(col)
    if hasattr(col, "tolist"):  # numpy or pandas
        col = col.tolist()
    try:
        enc = [s.encode() for s in col]
    except (AttributeError, UnicodeEncodeError):
        raise _Slow from None
    return b"".join(enc), array("q", accumulate(map(len, enc), initial=0))


def _arrow_ids(arr: Any) -> tuple[Any, Any]:
    import pyarrow as pa
    np = _np()
    if isinstance(arr, pa.ChunkedArray):  # e.g. a pandas column backed by several Arrow chunks
        if arr.num_chunks == 1:
            arr = arr.chunk(0)
        else:  # one buffer; 64-bit offsets, so that no size of the joined ids overflows
            big = {pa.string(): pa.large_string(), pa.binary(): pa.large_binary()}.get(arr.type, arr.type)
            arr = pa.concat_arrays([c.cast(big) for c in arr.chunks]) if arr.num_chunks else pa.array([], big)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)):
        raise _Slow
    if arr.null_count:
        arr = arr.fill_null("" if pa.types.is_string(t) or pa.types.is_large_string(t) else b"")
    _, offbuf, data = arr.buffers()
    width = np.int32 if pa.types.is_string(t) or pa.types.is_binary(t) else np.int64
    offs = np.frombuffer(offbuf, dtype=width, count=len(arr) + 1, offset=arr.offset * np.dtype(width).itemsize)
    offs = offs.astype(np.int64, copy=False)
    base = int(offs[0])
    if data is None:
        return b"", np.zeros(len(arr) + 1, dtype=np.int64)
    if base:
        return memoryview(data)[base:int(offs[-1])], offs - base
    return data, offs


# --- the row-by-row path ------------------------------------------------------------------

def _pylist(col: Any) -> list:
    """Any column as a Python list with None for nulls."""
    np = _np()
    mod = type(col).__module__
    if mod.startswith("pyarrow"):
        return col.to_pylist()
    if mod.startswith("pandas"):
        if col.dtype.kind == "M":
            return [None if v is None else v.to_pydatetime() for v in
                    col.astype(object).where(col.notna(), None).tolist()]
        return col.astype(object).where(col.notna(), None).tolist()
    if np is not None and isinstance(col, np.ndarray):
        if col.dtype.kind == "M":
            return col.astype("datetime64[us]").astype(object).tolist()
        return col.tolist()  # masked values become None
    return list(col)


def _rowwise(raw: dict[str, Any], n: int, exact: bool = False) -> Columns:
    """Convert and validate row by row, fields in contract order, so the first problem is
    reported exactly as the library would (lowest index first). Exact: every weight as an
    exact int (core weightExact / ParseWei rules)."""
    starts = _pylist(raw["start"])
    ends = _pylist(raw["end"]) if raw["end"] is not None else None
    weights = _pylist(raw["weight"]) if raw["weight"] is not None else None
    toks = _pylist(raw["token_id"]) if raw["token_id"] is not None else None
    hols = _pylist(raw["holder_id"]) if raw["holder_id"] is not None else None
    s_out, e_out, h_out, w_out = array("q"), array("q"), array("B"), array("d")
    tok_b: list[bytes] = []
    hol_b: list[bytes] = []
    wei: list[bytes] = []
    for i in range(n):
        if toks is not None:
            b = b"" if toks[i] is None else to_id_bytes(toks[i], "token_id", i)
            _pure.check_id(i, "token_id", b)
            tok_b.append(b)
        if hols is not None:
            b = b"" if hols[i] is None else to_id_bytes(hols[i], "holder_id", i)
            _pure.check_id(i, "holder_id", b)
            hol_b.append(b)
        if starts[i] is None:
            raise InvalidEventError(f"event {i}: start None: must not be null", field="start", index=i,
                                    reason="empty", value="None")
        s = to_seconds(starts[i], "start", i)
        _pure.check_time(i, "start", s)
        e = None if ends is None or ends[i] is None else to_seconds(ends[i], "end", i)
        _pure.check_span(i, s, e)
        if exact:
            try:
                m = 1 if weights is None else to_int(weights[i])[0]
            except BadValue as x:
                x.index = i
                raise x.error("weight") from None
            wei.append(m.to_bytes(32, "big"))
            w = 0.0
        else:
            w = 1.0 if weights is None else (math.nan if weights[i] is None else to_weight(weights[i], i))
            if w.__class__ is float:
                _pure.check_weight(i, w)
        s_out.append(s)
        e_out.append(-1 if e is None else e)
        h_out.append(0 if e is None else 1)
        w_out.append(w)
    c = Columns(n)
    c.start = s_out
    if exact:
        c.wei = b"".join(wei)
    else:
        c.weight = w_out
    if ends is not None:
        c.end, c.has_end = e_out, h_out
    if toks is not None:
        c.tok = (b"".join(tok_b), array("q", accumulate(map(len, tok_b), initial=0)))
    if hols is not None:
        c.hol = (b"".join(hol_b), array("q", accumulate(map(len, hol_b), initial=0)))
    return c
