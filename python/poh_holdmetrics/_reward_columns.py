"""allocate_rewards_columns: the exact split of _rewards, columns in and columns out.

allocate_rewards builds a Python dict of the scores and one RewardRow per holder: fine for
thousands of holders, most of the time for a million. This entry point hands the score
columns to the library as they are (a HolderScores' buffers, an Arrow table's) and keeps
the amounts in Arrow's own decimal layout, so a million holders cost no Python object
each; RewardColumns turns them into a pyarrow Table, pandas, polars, or RewardRows on
demand. The split is the same function (poh_allocate), so the amounts are the same as
allocate_rewards' for the same scores, always.
"""

from __future__ import annotations

import math
import re
from array import array
from itertools import accumulate
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

from ._errors import HoldMetricsError, InternalError
from ._rewards import (_MAX_NATIVE, InfeasibleCapError, RewardRow, _allocate, _check_int, _scores,
                       read_awards)
from ._wei import ints_of

__all__ = ["RewardColumns", "allocate_rewards_columns"]

# The layouts of a score column and of the amounts (poh_share_columns.flags /
# poh_award_columns.flags): bytes per row and byte order.
_FLOAT, _BE48, _INT64, _DEC128 = "float64", "48 bytes big-endian", "int64", "decimal128"
_AMOUNT_BE48, _AMOUNT_DEC128, _AMOUNT_DEC256 = 48, 16, 32


class _Shares:
    """Score columns as the C API reads them: n rows of UTF-8 ids (data, int64 offsets)
    and a score buffer in one layout; ``arrow`` keeps the pyarrow arrays they came from."""

    __slots__ = ("n", "ids", "offsets", "kind", "scores", "arrow")

    def __init__(self, n: int, ids: Any, offsets: Any, kind: str, scores: Any, arrow: Any = None) -> None:
        self.n, self.ids, self.offsets, self.kind, self.scores, self.arrow = n, ids, offsets, kind, scores, arrow

    def score_at(self, i: int) -> float | int:
        mv = memoryview(self.scores).cast("B")
        if self.kind == _FLOAT:
            return mv.cast("d")[i]
        if self.kind == _INT64:
            return mv.cast("q")[i]
        if self.kind == _DEC128:
            return int.from_bytes(mv[16 * i:16 * i + 16], "little", signed=True)
        return int.from_bytes(mv[48 * i:48 * i + 48], "big")

    def id_at(self, i: int) -> str:
        o = memoryview(self.offsets).cast("B").cast("q")
        return bytes(memoryview(self.ids)[o[i]:o[i + 1]]).decode("utf-8")


class RewardColumns:
    """An allocation as columns, in its order (amount descending, then holder_id
    ascending): ``holder_id``, ``score`` (as given: floats, or exact ints) and ``amount``
    (the token's smallest unit, exact). The amounts sum to ``pool``.

    ``to_arrow()`` is a pyarrow Table (``amount`` is ``decimal128(38, 0)`` when the pool has
    at most 38 digits, ``decimal256(76, 0)`` up to 76, else decimal text), ``to_pandas()``
    and ``to_polars()`` DataFrames (pandas gets the amounts as Python ints),
    ``__arrow_c_stream__`` the Arrow PyCapsule stream. ``len(r)``, ``r[i]`` and iteration
    give RewardRows (a Python object per row: keep that for small results);
    ``write_rewards_csv(r, ...)`` and ``write_rewards_json(r, ...)`` take it as they take a
    list of rows.
    """

    __slots__ = ("_src", "_share", "_amount", "_width", "pool", "decimals", "_table")

    def __init__(self, src: _Shares, share: Any, amount: Any, width: int, pool: int, decimals: int) -> None:
        self._src = src  # the input columns; row i of the result is the input's row share[i]
        self._share = share  # int64[m]
        self._amount = amount  # m amounts, width bytes each (48 big-endian, or 16/32 little-endian)
        self._width = width
        self.pool, self.decimals = pool, decimals
        self._table: Any = None

    def __len__(self) -> int:
        return len(self._share)

    def __repr__(self) -> str:
        return f"<RewardColumns {len(self)} holders, pool {self.pool}>"

    @property
    def exact(self) -> bool:
        """True when the scores are exact ints."""
        return self._src.kind != _FLOAT

    # --- rows ------------------------------------------------------------------------------

    def amounts(self) -> list[int]:
        """Every row's amount, as Python ints."""
        m, w = len(self), self._width
        if w == _AMOUNT_BE48:
            return ints_of(self._amount, m, 48)
        mv = memoryview(self._amount).cast("B")
        if w == _AMOUNT_DEC128:
            try:
                import numpy as np
            except ImportError:
                pass
            else:  # amounts < 10^38: two 64-bit words each; most fit the low one
                words = np.frombuffer(mv, dtype="<u8", count=2 * m).reshape(m, 2)
                if not words[:, 1].any():
                    return words[:, 0].tolist()
        frm = int.from_bytes
        return [frm(mv[i:i + w], "little") for i in range(0, m * w, w)]

    @property
    def holder_ids(self) -> list[str]:
        """Every row's holder_id."""
        src = self._src
        o = memoryview(src.offsets).cast("B").cast("q").tolist()
        raw = bytes(src.ids)
        text = raw.decode("ascii") if raw.isascii() else None
        if text is not None:
            return [text[o[i]:o[i + 1]] for i in self._share]
        return [raw[o[i]:o[i + 1]].decode("utf-8") for i in self._share]

    def scores(self) -> list[float | int]:
        """Every row's score as given (floats, or exact ints)."""
        src = self._src
        if src.kind == _FLOAT:
            s = memoryview(src.scores).cast("B").cast("d")
            return [s[i] for i in self._share]
        if src.kind == _INT64:
            q = memoryview(src.scores).cast("B").cast("q")
            return [q[i] for i in self._share]
        if src.kind == _BE48:
            every = ints_of(src.scores, src.n, 48)  # one bulk read (numpy when there)
            return [every[i] for i in self._share]
        return [src.score_at(i) for i in self._share]

    def rows(self) -> list[RewardRow]:
        """Every row as a RewardRow."""
        pool = self.pool
        return [RewardRow(h, s, a, pool) for h, s, a in zip(self.holder_ids, self.scores(), self.amounts())]

    def __iter__(self) -> Iterator[RewardRow]:
        return iter(self.rows())

    def __getitem__(self, i: int) -> RewardRow:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"row index must be an int, not {type(i).__name__}")
        m = len(self)
        if i < 0:
            i += m
        if not 0 <= i < m:
            raise IndexError(f"row {i} of {m}")
        w = self._width
        raw = bytes(memoryview(self._amount).cast("B")[w * i:w * i + w])
        amount = int.from_bytes(raw, "big" if w == _AMOUNT_BE48 else "little")
        k = self._share[i]
        return RewardRow(self._src.id_at(k), self._src.score_at(k), amount, self.pool)

    # --- Arrow and DataFrames --------------------------------------------------------------

    def to_arrow(self) -> Any:
        """The rows as a pyarrow Table: ids and scores gathered from the input's columns
        (pyarrow's take), amounts over this result's buffer (no copy up to 76 digits)."""
        if self._table is not None:
            return self._table
        import pyarrow as pa
        src, m = self._src, len(self)
        idx = pa.Array.from_buffers(pa.int64(), m, [None, pa.py_buffer(self._share)])
        ids, score = src.arrow if src.arrow is not None else (None, None)
        if ids is None:
            ids = pa.Array.from_buffers(pa.large_string(), src.n,
                                        [None, pa.py_buffer(src.offsets), pa.py_buffer(src.ids)])
        if score is None:
            if src.kind == _FLOAT:
                score = pa.Array.from_buffers(pa.float64(), src.n, [None, pa.py_buffer(src.scores)])
            elif src.kind == _INT64:
                score = pa.Array.from_buffers(pa.int64(), src.n, [None, pa.py_buffer(src.scores)])
            else:
                from ._kernel import _decimals
                score = _decimals(pa, src.n, src.scores)
        if self._width == _AMOUNT_DEC128:
            amount = pa.Array.from_buffers(pa.decimal128(38, 0), m, [None, pa.py_buffer(self._amount)])
        elif self._width == _AMOUNT_DEC256:
            amount = pa.Array.from_buffers(pa.decimal256(76, 0), m, [None, pa.py_buffer(self._amount)])
        else:  # more than 76 digits: no Arrow decimal holds the amounts
            amount = pa.array([str(a) for a in self.amounts()], type=pa.large_string())
        self._table = pa.Table.from_arrays([ids.take(idx), score.take(idx), amount],
                                           names=["holder_id", "score", "amount"])
        return self._table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream of to_arrow()."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_pandas(self) -> Any:
        """A pandas DataFrame; amounts (and exact scores) as Python ints in object columns."""
        import pandas as pd
        df = self.to_arrow().to_pandas()
        df["amount"] = pd.Series(self.amounts(), index=df.index, dtype=object)
        if self.exact:
            df["score"] = pd.Series(self.scores(), index=df.index, dtype=object)
        return df

    def to_polars(self) -> Any:
        """A polars DataFrame (polars has no 256-bit decimal: such columns arrive as
        decimal strings)."""
        import polars as pl
        import pyarrow as pa
        t = self.to_arrow()
        for name in ("score", "amount"):
            typ = t.schema.field(name).type
            if pa.types.is_decimal(typ) and typ.bit_width == 256:
                t = t.set_column(t.schema.get_field_index(name), name, t.column(name).cast(pa.large_string()))
        return pl.from_arrow(t)

    def _repr_html_(self) -> str:
        from html import escape
        shown = min(len(self), 10)
        body = "".join(f"<tr><td>{escape(r.holder_id)}</td><td>{escape(str(r.score))}</td>"
                       f"<td>{r.amount}</td></tr>" for r in (self[i] for i in range(shown)))
        more = f"<p>{len(self):,} holders{' (first 10 shown)' if len(self) > shown else ''}, pool {self.pool}</p>"
        return ("<table><thead><tr><th>holder_id</th><th>score</th><th>amount</th></tr></thead>"
                f"<tbody>{body}</tbody></table>{more}")


# --- input -------------------------------------------------------------------------------

def _from_holder_scores(hs: Any) -> _Shares:
    if hs.by_token:
        raise ValueError("allocate_rewards_columns: a by_token HolderScores has one row per (holder, token) "
                         "pair; pass by-holder scores")
    if hs._exact is not None:
        return _Shares(len(hs), hs._ids, hs._offsets, _BE48, hs._exact)
    return _Shares(len(hs), hs._ids, hs._offsets, _FLOAT, hs._score)


def _arrow_table(data: Any) -> Any:
    """data as a pyarrow Table when it is a table (pyarrow, pandas, polars, anything with
    the Arrow PyCapsule interface), else None."""
    mod = type(data).__module__
    if not (mod.startswith(("pyarrow", "pandas", "polars")) or hasattr(data, "__arrow_c_stream__")
            or hasattr(data, "__arrow_c_array__")):
        return None
    import pyarrow as pa
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data).read_all()
    if hasattr(data, "__arrow_c_array__"):
        return pa.table(pa.record_batch(data))
    if hasattr(data, "to_arrow"):
        return data.to_arrow()
    return None


def _first_null(arr: Any) -> int:
    import pyarrow.compute as pc
    return int(pc.index(arr.is_null(), True).as_py())


def _from_arrow(t: Any) -> _Shares:
    import pyarrow as pa
    names = t.column_names
    for name in ("holder_id", "score"):
        if name not in names:
            raise ValueError(f"scores table: no {name} column (columns: {', '.join(names) or 'none'}); "
                             "allocate_rewards_columns needs holder_id and score")
    ids = t.column("holder_id").combine_chunks()
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)
            or pa.types.is_string_view(ids.type)):
        raise ValueError(f"scores table: holder_id column is {ids.type}, must be strings")
    if ids.null_count:
        raise ValueError(f"scores[{_first_null(ids)}]: holder_id is null")
    if not pa.types.is_large_string(ids.type) or ids.offset:
        ids = pa.concat_arrays([ids.cast(pa.large_string())])  # 64-bit offsets from 0, one buffer
    _, offbuf, data = ids.buffers()
    n = len(ids)
    score = t.column("score").combine_chunks()
    typ = score.type
    if score.null_count:
        i = _first_null(score)
        raise ValueError(f"scores[{i}] ({ids[i].as_py()!r}): score is null")
    if pa.types.is_floating(typ):
        score = score.cast(pa.float64())
        kind = _FLOAT
    elif pa.types.is_integer(typ):
        if pa.types.is_uint64(typ):  # values from 2^63 on do not fit int64: as decimals
            score, kind = score.cast(pa.decimal128(20, 0)), _DEC128
        else:
            score, kind = score.cast(pa.int64()), _INT64
    elif pa.types.is_decimal(typ):
        if typ.scale != 0:
            raise ValueError(f"scores table: score column is {typ}; exact scores must be integers (scale 0): "
                             "cast it to float64 for a float split")
        if typ.bit_width == 256:
            if typ.precision > 38:  # as 48-byte big-endian ints (a Python int per row)
                vals = score.to_pylist()
                neg = next((i for i, v in enumerate(vals) if v < 0), None)
                if neg is not None:
                    raise ValueError(f"scores[{neg}] ({ids[neg].as_py()!r}): score {vals[neg]} must be >= 0")
                if max(vals, default=0) > _MAX_NATIVE:
                    raise _TooWide
                buf = b"".join([int(v).to_bytes(48, "big") for v in vals])
                return _Shares(n, data if data is not None else b"", offbuf, _BE48, buf, (ids, score))
            score = score.cast(pa.decimal128(38, 0))
        kind = _DEC128
    else:
        raise ValueError(f"scores table: score column is {typ}, must be numbers (floats, or integers "
                         "for an exact split)")
    if score.offset:
        score = pa.concat_arrays([score])
    return _Shares(n, data if data is not None else b"", offbuf, kind, score.buffers()[1], (ids, score))


def _from_pairs(source: Any) -> _Shares:
    """A mapping, (holder, score) pairs, HoldStat rows or an Aggregator, as columns (a
    Python loop: the columnar inputs above avoid it)."""
    pairs = _scores(source, None)
    for i, (holder, score) in enumerate(pairs):
        if not isinstance(holder, str) or not holder:
            raise ValueError(f"scores[{i}]: holder_id {holder!r} must be a non-empty str")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or score < 0:
            raise ValueError(f"scores[{i}] ({holder!r}): score {score!r} must be a finite number >= 0")
    try:
        enc = [h.encode("utf-8") for h, _ in pairs]
    except UnicodeEncodeError as e:
        raise _TooWide from e  # the pure split names the id
    offsets = array("q", accumulate(map(len, enc), initial=0))
    exact = bool(pairs) and all(s.__class__ is int for _, s in pairs)
    if exact:
        if max(s for _, s in pairs) > _MAX_NATIVE:
            raise _TooWide
        return _Shares(len(pairs), b"".join(enc), offsets, _BE48, b"".join([s.to_bytes(48, "big") for _, s in pairs]))
    return _Shares(len(pairs), b"".join(enc), offsets, _FLOAT, array("d", [float(s) for _, s in pairs]))


class _TooWide(Exception):
    """Values the library cannot take (beyond 384 bits, or ids not UTF-8): split in Python."""


# --- the call ----------------------------------------------------------------------------

_CAP_HOLDERS = re.compile(r"cap \d+ x (\d+) eligible holders")


def allocate_rewards_columns(scores: Any, pool: int, *, min_score: float = 0, cap: int | None = None,
                             decimals: int = 0) -> RewardColumns:
    """allocate_rewards (the same exact largest-remainder split, the same amounts) for
    large inputs: ``scores`` is a ``HolderScores`` (``score_by_holder``'s or an
    Aggregator's ``snapshot_columns()``, by holder), a table with ``holder_id`` and
    ``score`` columns (pyarrow, pandas, polars, a DuckDB relation: anything with the Arrow
    PyCapsule interface; other columns are not read; float scores, or integer / decimal
    scale-0 scores for an exact split), or anything allocate_rewards takes. Returns a
    RewardColumns (columns, no Python object per holder). Raises ValueError for a
    repeated or bad holder_id or a bad score (naming the row), InfeasibleCapError when
    ``cap × eligible < pool``."""
    pool = _check_int("pool", pool, 0)
    _check_int("decimals", decimals, 0)
    if cap is not None:
        cap = _check_int("cap", cap, 0)
    if isinstance(min_score, bool) or not (isinstance(min_score, (int, float)) and math.isfinite(min_score)):
        raise ValueError(f"min_score {min_score!r} must be a finite number")
    from . import _native
    from ._errors import NativeLibraryError
    from ._kernel import HolderScores
    try:
        if isinstance(scores, HolderScores):
            src = _from_holder_scores(scores)
        else:
            t = _arrow_table(scores)
            src = _from_arrow(t) if t is not None else _from_pairs(scores)
        if pool > _MAX_NATIVE or (cap is not None and cap > _MAX_NATIVE):
            raise _TooWide
        ffi, lib = _native.load()
    except (_TooWide, NativeLibraryError):
        return _pure_columns(scores, pool, min_score, cap, decimals)
    share, amount, width = _native_split(ffi, lib, src, pool, min_score, cap)
    return RewardColumns(src, share, amount, width, pool, decimals)


def _native_split(ffi: Any, lib: Any, src: _Shares, pool: int, min_score: float,
                  cap: int | None) -> tuple[Any, Any, int]:
    from . import _native
    sh = _native.options(ffi, "poh_share_columns")
    sh.n = src.n
    keep = [ffi.from_buffer("char[]", src.ids), ffi.from_buffer("int64_t[]", src.offsets),
            ffi.from_buffer("uint8_t[]", src.scores)]
    sh.ids, sh.ids_len, sh.id_offsets = keep[0], len(keep[0]), keep[1]
    if src.kind == _FLOAT:
        sh.score = ffi.cast("double *", keep[2])
    else:
        sh.exact = keep[2]
        sh.flags = {_BE48: 0, _INT64: lib.POH_SHARES_INT64, _DEC128: lib.POH_SHARES_DECIMAL128}[src.kind]
    o = _native.options(ffi, "poh_allocate_options")
    ffi.memmove(o.pool, pool.to_bytes(48, "big"), 48)
    o.min_score = min_score
    if cap is not None:
        o.flags = lib.POH_ALLOCATE_CAP
        ffi.memmove(o.cap, cap.to_bytes(48, "big"), 48)
    res = ffi.new("poh_handle *")
    try:
        _native.call(lib.poh_allocate, sh, o, res)
    except InternalError as e:  # the library's checks of the scores: a bad argument, not a bug
        msg = str(e)
        if msg.startswith("shares["):
            raise ValueError(msg.replace("shares[", "scores[")) from None
        raise
    except HoldMetricsError as e:
        if type(e) is not HoldMetricsError:
            raise
        m = _CAP_HOLDERS.search(str(e))
        if cap is not None and m:
            raise InfeasibleCapError(str(e), pool=pool, cap=cap, holders=int(m.group(1))) from None
        raise ValueError(str(e)) from None
    finally:
        del keep
    width = _AMOUNT_DEC128 if pool < 10**38 else _AMOUNT_DEC256 if pool < 10**76 else _AMOUNT_BE48
    flags = {_AMOUNT_DEC128: lib.POH_AWARDS_DECIMAL128, _AMOUNT_DEC256: lib.POH_AWARDS_DECIMAL256,
             _AMOUNT_BE48: 0}[width]
    share, amount = read_awards(ffi, lib, res[0], width, flags)
    return share, amount, width


def _pure_columns(scores: Any, pool: int, min_score: float, cap: int | None, decimals: int) -> RewardColumns:
    """The pure-Python split (no library, or values beyond it), as columns."""
    from ._kernel import HolderScores
    if isinstance(scores, HolderScores):
        pairs: Any = list(zip(scores.holder_ids, scores.scores()))
    else:
        t = _arrow_table(scores)
        pairs = (list(zip(t.column("holder_id").to_pylist(), t.column("score").to_pylist()))
                 if t is not None else scores)
        if t is not None:
            pairs = [(h, int(s) if s.__class__.__name__ == "Decimal" else s) for h, s in pairs]
    return _RowColumns(_allocate(pairs, pool, None, min_score, cap, decimals), pool, decimals)


class _RowColumns(RewardColumns):
    """The pure split's rows (allocate_rewards' own), shown as columns: what runs without
    the library, or for values beyond its 384 bits."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[RewardRow], pool: int, decimals: int) -> None:
        exact = bool(rows) and all(r.score.__class__ is int for r in rows)
        super().__init__(_Shares(0, b"", array("q", [0]), _BE48 if exact else _FLOAT, b""),
                         array("q", range(len(rows))), b"", _AMOUNT_BE48, pool, decimals)
        self._rows = rows

    def amounts(self) -> list[int]:
        return [r.amount for r in self._rows]

    def scores(self) -> list[float | int]:
        return [r.score for r in self._rows]

    @property
    def holder_ids(self) -> list[str]:
        return [r.holder_id for r in self._rows]

    def rows(self) -> list[RewardRow]:
        return list(self._rows)

    def __getitem__(self, i: int) -> RewardRow:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"row index must be an int, not {type(i).__name__}")
        return self._rows[i]

    def to_arrow(self) -> Any:
        if self._table is None:
            import pyarrow as pa
            scores = self.scores()
            self._table = pa.table({"holder_id": pa.array(self.holder_ids, pa.large_string()),
                                    "score": _int_array(pa, scores) if self.exact else pa.array(scores, pa.float64()),
                                    "amount": _int_array(pa, self.amounts())})
        return self._table


def _int_array(pa: Any, values: list[int]) -> Any:
    """Exact ints as decimal128(38, 0), decimal256(76, 0), or beyond that decimal text."""
    top = max(values, default=0)
    if top < 10**38:
        return pa.array(values, type=pa.decimal128(38, 0))
    if top < 10**76:
        return pa.array(values, type=pa.decimal256(76, 0))
    return pa.array([str(v) for v in values], type=pa.large_string())
