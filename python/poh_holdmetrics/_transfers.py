"""Chain data -> holds: ERC-20 transfers (cryo's ``erc20_transfers``, ethereum-etl's
``token_transfers``) or balance tables, turned into hold intervals by the library
(poh_transfers): per (token, holder) the balance changes at each row, in (block, log index)
order, and each balance lasts from its change to the next as one hold whose weight is the
balance, exactly (uint256). The last balance of a pair is an open hold.

This module maps the inputs' columns onto the C API's (``poh_transfer_columns``): it finds
the columns by their usual names, joins block timestamps, turns binary addresses into hex
ids and amounts into 32-byte big-endian values (_wei), all columnar (pyarrow + numpy), and
reads the holds back as a pyarrow Table. pyarrow is required here, and only here.
"""

from __future__ import annotations

from collections.abc import Mapping
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _native, _pure
from ._errors import InvalidEventError
from ._time import TimeLike, to_seconds
from ._wei import BadValue, ints_of, u256_column

KINDS = ("transfer", "balance", "delta")

#: cryo writes a u256 column once per --u256-types entry, named with a suffix; the exact
#: ones first.
_CRYO_U256 = tuple("value_" + t for t in ("binary", "u256binary", "string", "d128", "u64", "u32", "f64", "f32"))
#: The names each column is found under (first match wins): this package's and the test
#: vectors' names, cryo's (erc20_transfers, blocks) and ethereum-etl's (token_transfers, blocks).
ALIASES: dict[str, tuple[str, ...]] = {
    "token_id": ("token_id", "erc20", "token_address", "token", "contract_address"),
    "from_address": ("from_address", "from"),
    "to_address": ("to_address", "to"),
    "holder_id": ("holder_id", "holder", "owner", "address", "account"),
    "value": ("value", "amount") + _CRYO_U256,
    "balance": ("balance", "value", "amount") + _CRYO_U256,
    "delta": ("delta", "value", "amount"),
    "block": ("block_number", "block", "blockNumber"),
    "log_index": ("log_index", "logIndex"),
    "time": ("time", "timestamp", "block_timestamp"),
    "removed": ("removed",),
}
BLOCK_ALIASES: dict[str, tuple[str, ...]] = {
    "block": ("block_number", "number", "block"),
    "time": ("timestamp", "time", "block_timestamp"),
}
_VALUE = {"transfer": "value", "balance": "balance", "delta": "delta"}
_HEX = b"0123456789abcdef"


def _pyarrow() -> Any:
    try:
        import numpy  # noqa: F401
        import pyarrow
    except ImportError:
        raise ImportError("poh_holdmetrics: transfers_to_holds and record_transfers need pyarrow and numpy "
                          "(pip install pyarrow)") from None
    return pyarrow


def frame(data: Any, what: str) -> dict[str, Any]:
    """The columns of a table-like input, by name: pyarrow arrays where pyarrow can hold
    them, else Python lists (e.g. ints above 2^64 in a dict of lists). Takes a pyarrow Table
    or RecordBatch, anything with ``__arrow_c_stream__`` (polars, duckdb, ...), a pandas
    DataFrame or a mapping of columns."""
    pa = _pyarrow()
    mod = type(data).__module__
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return {name: _combined(data.column(name)) for name in data.column_names}
    if mod.startswith("pandas") and hasattr(data, "columns"):
        return {str(name): _arrow_or_list(pa, data[name], True) for name in data.columns}
    if isinstance(data, Mapping):
        return {str(name): _arrow_or_list(pa, col, False) for name, col in data.items()}
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        table = pa.table(data)
        return {name: _combined(table.column(name)) for name in table.column_names}
    raise TypeError(f"{what}: expected a table (pyarrow, polars, duckdb, pandas or a dict of columns), "
                    f"not {type(data).__name__}")


def _combined(col: Any) -> Any:
    return col.combine_chunks() if hasattr(col, "combine_chunks") else col


def _arrow_or_list(pa: Any, col: Any, pandas: bool) -> Any:
    if type(col).__module__.startswith("pyarrow"):
        return _combined(col)
    try:
        return pa.array(col, from_pandas=pandas)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError):
        return col.tolist() if hasattr(col, "tolist") else list(col)


def _find(cols: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in cols:
            return cols[name]
    return None


def _where(i: int) -> str:
    return f"row {i}: " if i >= 0 else ""


def _bad(i: int, field: str, value: str, reason: str, detail: str) -> InvalidEventError:
    return InvalidEventError(f"{_where(i)}{field} {value}: {detail}", field=field, index=i, reason=reason,
                             value=value)


def _require(cols: dict[str, Any], role: str, what: str, aliases: dict[str, tuple[str, ...]] = ALIASES) -> Any:
    col = _find(cols, aliases[role])
    if col is None:
        names = " or ".join(repr(a) for a in aliases[role])
        raise InvalidEventError(f"{what}: no {role} column (looked for {names}); columns are "
                                f"{', '.join(cols) or 'none'}", field=role, index=-1, reason="empty")
    return col


def _length(col: Any) -> int:
    return len(col)


def _first_null(pa: Any, col: Any) -> int:
    """The index of the first null of col, or -1."""
    if type(col).__module__.startswith("pyarrow"):
        if not col.null_count:
            return -1
        import pyarrow.compute as pc
        return int(pc.index(col.is_null(), True).as_py())
    for i, v in enumerate(col):
        if v is None:
            return i
    return -1


def _int64(pa: Any, col: Any, field: str, times: bool = False) -> Any:
    """col as an int64 numpy array; nulls and non-integers are errors naming the row.
    times: timestamps become Unix seconds, floats are floored, ISO 8601 text is parsed."""
    import numpy as np
    i = _first_null(pa, col)
    if i >= 0:
        raise _bad(i, field, "None", "empty", "must not be null")
    if type(col).__module__.startswith("pyarrow"):
        t = col.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            us = col.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
            return np.floor_divide(us, 1_000_000)
        if pa.types.is_integer(t):
            a = col.to_numpy(zero_copy_only=False)
            if a.dtype.kind == "u" and a.size and int(a.max()) >= 2**63:
                j = int(np.argmax(a >= 2**63))
                raise _bad(j, field, str(int(a[j])), "out_of_range", "does not fit an int64")
            return a.astype(np.int64, copy=False)
        if pa.types.is_floating(t) and times:
            a = col.to_numpy(zero_copy_only=False)
            if np.isfinite(a).all() and (np.abs(a) < 2.0**62).all():
                return np.floor(a).astype(np.int64)
        col = col.to_pylist()
    elif hasattr(col, "tolist"):
        col = col.tolist()
    out = np.empty(len(col), dtype=np.int64)
    for j, v in enumerate(col):
        try:
            if times and isinstance(v, str):
                from ._time import parse_time
                t = parse_time(v)
            elif times:
                t = to_seconds(v, field, j)
            elif isinstance(v, int) and not isinstance(v, bool):
                t = v
            else:
                raise _bad(j, field, repr(v), "invalid_type", "must be an integer")
        except ValueError as e:
            if isinstance(e, InvalidEventError):
                raise
            raise _bad(j, field, repr(v), "invalid_type", str(e)) from None
        if not -2**63 <= t < 2**63:
            raise _bad(j, field, str(t), "out_of_range", "does not fit an int64")
        out[j] = t
    return out


def _ids(pa: Any, col: Any, field: str) -> tuple[Any, Any]:
    """An id column as (UTF-8 data, int64 offsets): strings as they are (zero copy), 20-byte
    binary addresses (cryo's default; also 32-byte log topics holding one) as "0x" + 40
    lowercase hex digits."""
    import numpy as np
    from ._columns import _arrow_ids
    if not len(col):
        return b"", np.zeros(1, dtype=np.int64)
    i = _first_null(pa, col)
    if i >= 0:
        raise _bad(i, field, "None", "empty", "must not be null")
    if not type(col).__module__.startswith("pyarrow"):
        try:
            col = pa.array(col, type=pa.large_binary() if col and isinstance(col[0], bytes) else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            for j, v in enumerate(col):
                if not isinstance(v, (str, bytes)):
                    raise _bad(j, field, repr(v), "invalid_type", "must be a str or bytes") from None
            raise
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    raw, k = None, 0
    if pa.types.is_fixed_size_binary(t) and t.byte_width in (20, 32):
        k = t.byte_width
        data = col.buffers()[1]
        raw = memoryview(data)[col.offset * k:(col.offset + len(col)) * k] if data is not None else b""
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        _, offbuf, data = col.buffers()
        width = np.int32 if pa.types.is_binary(t) else np.int64
        offs = np.frombuffer(offbuf, dtype=width, count=len(col) + 1, offset=col.offset * np.dtype(width).itemsize)
        lengths = np.diff(offs)
        for k in (20, 32):
            if data is not None and bool((lengths == k).all()):
                raw = memoryview(data)[int(offs[0]):int(offs[-1])]
                break
    if raw is not None:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(len(col), k)
        if k == 32:  # a topic: an address left-padded with 12 zero bytes, or not an address at all
            raw = None if b[:, :12].any() else raw
            b = b[:, 12:]
    if raw is not None:  # addresses as bytes: hex them, vectorised
        n = len(col)
        hexd = np.frombuffer(_HEX, dtype=np.uint8)
        out = np.empty((n, 42), dtype=np.uint8)
        out[:, 0], out[:, 1] = ord("0"), ord("x")
        out[:, 2::2] = hexd[b >> 4]
        out[:, 3::2] = hexd[b & 15]
        return out.reshape(-1), np.arange(0, 42 * (n + 1), 42, dtype=np.int64)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)):
        raise _bad(0, field, repr(col[0].as_py()) if len(col) else "?", "invalid_type",
                   f"must be a string or 20-byte binary address, not {t}")
    return _arrow_ids(col)


def _flags(pa: Any, col: Any) -> Any:
    """A boolean column (removed) as uint8, nulls as 0."""
    import numpy as np
    if type(col).__module__.startswith("pyarrow"):
        col = col.fill_null(False).to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(np.asarray([bool(v) for v in col] if isinstance(col, list) else col, dtype=bool),
                                dtype=np.uint8)


def _amounts(col: Any, n: int, field: str, signed: bool) -> tuple[Any, Any]:
    try:
        wei, _, neg = u256_column(col, n, signed=signed, weight_floats=False)
    except BadValue as e:
        raise e.error(field, "row") from None
    return wei, neg


class _Batch:
    """One poh_transfer_columns and the buffers it points into."""

    def __init__(self, ffi: Any, n: int) -> None:
        self.ffi = ffi
        self.c = _native.options(ffi, "poh_transfer_columns")
        self.c.n = n
        self.keep: list = [self.c]

    def buf(self, field: str, ctype: str, data: Any) -> None:
        p = self.ffi.from_buffer(ctype, data)
        self.keep.append(p)
        setattr(self.c, field, p)

    def ids(self, prefix: str, ids: tuple[Any, Any]) -> None:
        data, offs = ids
        if len(data):
            self.buf(prefix + "_data", "char[]", data)
        setattr(self.c, prefix + "_data_len", len(data))
        self.buf(prefix + "_offsets", "int64_t[]", offs)


def _block_times(pa: Any, blocks: Any, block: Any) -> Any:
    """The timestamp of each row's block, from the blocks table; a block it lacks is an
    error naming the row."""
    import numpy as np
    import pyarrow.compute as pc
    bcols = frame(blocks, "blocks")
    bb = _int64(pa, _require(bcols, "block", "blocks", BLOCK_ALIASES), "block_number")
    bt = _int64(pa, _require(bcols, "time", "blocks", BLOCK_ALIASES), "timestamp", times=True)
    idx = pc.index_in(pa.array(block), value_set=pa.array(bb))
    if idx.null_count:
        i = int(pc.index(idx.is_null(), True).as_py())
        raise _bad(i, "block_number", str(int(block[i])), "not_found", "is not in blocks (no timestamp for it)")
    return bt[np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)]


def transfer_batch(ffi: Any, transfers: Any, blocks: Any, kind: str, until: int | None = None) -> _Batch:
    """The rows as a poh_transfer_columns. until: rows after that time are skipped (flagged
    removed), so the holds are the balances as of then."""
    pa = _pyarrow()
    import numpy as np
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: want 'transfer', 'balance' or 'delta'")
    cols = frame(transfers, "transfers")
    token = _require(cols, "token_id", "transfers")
    n = _length(token)
    for name, col in cols.items():
        if _length(col) != n:
            raise InvalidEventError(f"transfers: column {name!r} has {_length(col)} rows, not {n}", field=name,
                                    index=-1, reason="out_of_range")
    b = _Batch(ffi, n)
    block_col = _find(cols, ALIASES["block"])
    block = _int64(pa, block_col, "block_number") if block_col is not None else None
    if blocks is not None:
        if block is None:
            raise InvalidEventError("transfers: blocks given, but no block_number column to join them on",
                                    field="block_number", index=-1, reason="empty")
        time = _block_times(pa, blocks, block)
    else:
        tcol = _find(cols, ALIASES["time"])
        if tcol is None:
            raise InvalidEventError("transfers: no time column (time, timestamp or block_timestamp); give the "
                                    "blocks (block_number, timestamp) to take each row's block time",
                                    field="time", index=-1, reason="empty")
        time = _int64(pa, tcol, "time", times=True)
    b.buf("time", "int64_t[]", time)
    if block is not None:
        b.buf("block", "int64_t[]", block)
    log_col = _find(cols, ALIASES["log_index"])
    if log_col is not None:
        b.buf("log_index", "int64_t[]", _int64(pa, log_col, "log_index"))
    removed_col = _find(cols, ALIASES["removed"])
    removed = _flags(pa, removed_col) if removed_col is not None else None
    if until is not None:
        late = (time > until).astype(np.uint8)
        removed = late if removed is None else (removed | late)
    if removed is not None:
        b.buf("removed", "uint8_t[]", removed)
    b.ids("token", _ids(pa, token, "token_id"))
    if kind == "transfer":
        b.ids("from", _ids(pa, _require(cols, "from_address", "transfers"), "from_address"))
        b.ids("to", _ids(pa, _require(cols, "to_address", "transfers"), "to_address"))
    else:
        b.ids("holder", _ids(pa, _require(cols, "holder_id", "transfers"), "holder_id"))
    field = _VALUE[kind]
    wei, neg = _amounts(_require(cols, field, "transfers"), n, field, kind == "delta")
    if n:
        b.buf("value", "uint8_t[]", wei)
    if neg is not None:
        b.buf("negative", "uint8_t[]", neg)
    return b


def opening_batch(ffi: Any, opening: Any) -> _Batch:
    """Opening balances (token_id, holder_id, balance) as a poh_transfer_columns."""
    pa = _pyarrow()
    cols = frame(opening, "opening")
    token = _require(cols, "token_id", "opening")
    n = _length(token)
    b = _Batch(ffi, n)
    b.ids("token", _ids(pa, token, "token_id"))
    b.ids("holder", _ids(pa, _require(cols, "holder_id", "opening"), "holder_id"))
    wei, _ = _amounts(_require(cols, "balance", "opening"), n, "balance", False)
    if n:
        b.buf("value", "uint8_t[]", wei)
    return b


def run(transfers: Any, blocks: Any, kind: str, opening: Any, opening_time: TimeLike, zero_holder: bool,
        record_into: int = 0, until: int | None = None) -> Any:
    """poh_transfers: the holds as a pyarrow Table, or, with record_into (an exact
    aggregator's handle), the number of holds recorded into it."""
    out = _transfer_result(transfers, blocks, kind, opening, opening_time, zero_holder, record_into, until)
    if record_into:
        return int(out.rows)
    ffi, lib = _native.load()
    return _holds_table(ffi, lib, out)


def holds_handle(transfers: Any, blocks: Any, kind: str, opening: Any, opening_time: TimeLike,
                 zero_holder: bool, until: int | None = None) -> int:
    """poh_transfers' holds result handle (the caller frees it with poh_free)."""
    return int(_transfer_result(transfers, blocks, kind, opening, opening_time, zero_holder, 0, until).result)


def _transfer_result(transfers: Any, blocks: Any, kind: str, opening: Any, opening_time: TimeLike,
                     zero_holder: bool, record_into: int, until: int | None) -> Any:
    _pyarrow()  # first: without it nothing here works, native library or not
    ffi, lib = _native.load()
    rows = transfer_batch(ffi, transfers, blocks, kind, until)
    op = opening_batch(ffi, opening) if opening is not None else None
    o = _native.options(ffi, "poh_transfer_options")
    t0 = to_seconds(opening_time, "opening_time")
    _pure.check_time(-1, "opening_time", t0)
    o.opening_time = t0
    o.flags = {"transfer": 0, "balance": lib.POH_TRANSFERS_BALANCE, "delta": lib.POH_TRANSFERS_DELTA}[kind]
    if zero_holder:
        o.flags |= lib.POH_TRANSFERS_ZERO_HOLDER
    o.record_into = record_into
    o.now = _native.POH_NOW
    out = _native.options(ffi, "poh_transfer_result")
    _native.call(lib.poh_transfers, rows.c, op.c if op is not None else ffi.NULL, o, out)
    del rows, op
    return out


def _holds_table(ffi: Any, lib: Any, out: Any) -> Any:
    """The holds result of out (which this frees) as a pyarrow Table."""
    import numpy as np
    import pyarrow as pa
    n, tb, hb = int(out.rows), int(out.token_bytes), int(out.holder_bytes)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    has_end = np.zeros(n, dtype=np.uint8)
    weight = np.zeros(32 * n, dtype=np.uint8)
    token, token_off = np.zeros(max(tb, 1), dtype=np.uint8), np.zeros(n + 1, dtype=np.int64)
    holder, holder_off = np.zeros(max(hb, 1), dtype=np.uint8), np.zeros(n + 1, dtype=np.int64)
    r = out.result
    try:
        hc = _native.options(ffi, "poh_hold_columns")
        hc.rows_cap, hc.token_cap, hc.holder_cap = n, tb, hb
        keep = []
        for field, ctype, arr in (("start", "int64_t[]", start), ("end", "int64_t[]", end),
                                  ("has_end", "uint8_t[]", has_end), ("weight", "uint8_t[]", weight),
                                  ("token", "char[]", token), ("token_offsets", "int64_t[]", token_off),
                                  ("holder", "char[]", holder), ("holder_offsets", "int64_t[]", holder_off)):
            keep.append(ffi.from_buffer(ctype, arr, require_writable=True))
            setattr(hc, field, keep[-1])
        _native.call(lib.poh_result_holds, r, hc)
        del keep
    finally:
        lib.poh_free(r, ffi.NULL)

    def ids(data: Any, offs: Any) -> Any:
        a = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offs), pa.py_buffer(data)])
        return a.cast(pa.string()) if int(offs[-1]) < 2**31 else a

    valid = pa.py_buffer(np.packbits(has_end.astype(bool), bitorder="little"))
    return pa.table({
        "token_id": ids(token, token_off),
        "holder_id": ids(holder, holder_off),
        "start": pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(start)]),
        "end": pa.Array.from_buffers(pa.int64(), n, [valid, pa.py_buffer(end)]),
        "weight": pa.Array.from_buffers(pa.binary(32), n, [None, pa.py_buffer(weight)]),
    })


def transfers_to_holds(transfers: Any, *, blocks: Any = None, kind: str = "transfer", opening: Any = None,
                       opening_time: TimeLike = 0, zero_holder: bool = False) -> Any:
    """Hold intervals from chain data, as a pyarrow Table with columns ``token_id``,
    ``holder_id`` (strings; addresses in lowercase hex), ``start``, ``end`` (int64 Unix
    seconds; null = still held) and ``weight`` (the balance held, ``fixed_size_binary(32)``
    big-endian: cryo's u256 layout, any uint256 exactly; ``weights_as_ints(table)`` gives
    Python ints). The table goes straight into ``calculate_score(table, exact=True)`` and
    ``Aggregator(exact=True).record_many_sync(table)`` (zero copy); in float mode each weight
    counts as ``float(w)``. Rows come grouped by (token, holder), in order of each pair's
    first change; a pair's holds in time order.

    Per (token, holder) the balance changes at each row, in (block, log_index) order (input
    order for equal keys, or without those columns); each balance lasts from its change to
    the next. Zero balances hold nothing; self-transfers and zero transfers change nothing.
    An id that is an address (``0x`` + 40 hex digits) is one holder whatever its case.

    ``transfers`` is a pyarrow Table, anything with ``__arrow_c_stream__`` (polars, duckdb),
    a pandas DataFrame or a dict of columns. ``kind``:

    * ``"transfer"`` (ERC-20 Transfer logs): token (``token_id``, cryo's ``erc20`` or
      ethereum-etl's ``token_address``), ``from_address``, ``to_address``, ``value``; the
      zero address mints and burns and is no holder (unless ``zero_holder=True``);
    * ``"balance"``: ``token_id``, ``holder_id``, ``balance`` (the new balance);
    * ``"delta"``: ``token_id``, ``holder_id``, ``delta`` (signed: ints or decimal strings).

    Every kind needs the time: a ``time`` (or ``timestamp``) column, or ``blocks``, a table
    of ``block_number`` (or ethereum-etl's ``number``) and ``timestamp`` joined on the rows'
    ``block_number``. ``block_number`` and ``log_index`` order the rows; rows with a true
    ``removed`` (reorged logs) are skipped. Amounts are ints, decimal strings, integer
    columns, ``binary(32)`` / ``fixed_size_binary(32)`` big-endian (cryo ``--u256-types
    binary``), decimals of scale 0, or integral floats (cryo's f64, already rounded);
    addresses are strings or 20-byte binary. ``opening`` (``token_id``, ``holder_id``,
    ``balance``) gives balances held from ``opening_time`` on; every row must then be at or
    after it.

    A bad row raises InvalidEventError naming it (``.index``, the message starts with
    "row N:") and its field (``time``, ``token_id``, ``from_address``, ``to_address``,
    ``holder_id``, ``value``, ``balance``, ``delta``, ``block_number``), e.g. reason
    ``"negative"`` when a balance would go below zero. Needs the native library and pyarrow.
    """
    return run(transfers, blocks, kind, opening, opening_time, zero_holder)


def weights_as_ints(holds: Any) -> list[int]:
    """The ``weight`` column of ``transfers_to_holds``' table (or any column of exact
    amounts: ``fixed_size_binary(32)``, integers, decimal strings) as Python ints."""
    pa = _pyarrow()
    col = holds.column("weight") if isinstance(holds, (pa.Table, pa.RecordBatch)) else holds
    col = _combined(col)
    try:
        wei, floats, _ = u256_column(col, len(col), weight_floats=False)
    except BadValue as e:
        raise e.error("weight", "row") from None
    return ints_of(wei, len(col))
