"""poh_holdmetrics on Dask: per-holder scores, rankings and reward splits of a
``dask.dataframe`` of hold events (or of chain transfers), equal to the single-process
``poh_holdmetrics.score_by_holder`` on the same rows: exactly in exact mode, bit for bit for
float scores. The optional extra ``dask`` (``pip install 'poh-holdmetrics[dask]'``).

How it stays equal to one process: every row gets its input position (partition, row);
rows are partitioned by holder (the id as the library compares it: an address in
lowercase), so each holder's rows meet in one partition, where they are put back in input
order and scored by the same kernel (the same Neumaier sums in the same order). The
per-partition rankings have disjoint holders, so merging them only re-ranks (``merge``):
no score is added to another. ``now`` is resolved once, on the client.

The engine-neutral pieces (``merge``, ``rollup``, ``canonical_ids``, ``transfers_step``,
``TransferState``; pyarrow inside, no Dask) live in ``_partition`` and are exported here.

Workers must not be forked from a process that has loaded the native library (the Go
runtime does not survive fork): Dask's worker processes are spawned (``LocalCluster``,
``dask-worker``, the ``processes`` scheduler: ``multiprocessing-method`` / ``context``
default to ``spawn``); with ``fork`` configured a task raises ForkedProcessError instead
of running slowly on the fallback or hanging.
"""

from __future__ import annotations

import re
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

try:
    import dask
    import dask.dataframe as dd
except ImportError:  # pragma: no cover - the extra is not installed
    raise ImportError("poh_holdmetrics.dask needs Dask: pip install 'poh-holdmetrics[dask]' "
                      "(dask[dataframe], or dask[distributed] for a cluster)") from None

from . import _native, _transfers
from ._errors import ForkedProcessError, InvalidEventError
from ._kernel import HolderScores
from ._kernel import score_by_holder as _score_one
from ._partition import TransferState, canonical_ids, merge, rollup, transfers_step
from ._time import TimeLike, resolve_now, resolve_window

__all__ = ["HolderScores", "TransferState", "allocate_rewards", "canonical_ids", "merge", "rollup",
           "score_by_holder", "score_partitions", "transfers_step", "transfers_to_holds"]

_ROW, _PART, _SIDE = "_poh_row", "_poh_part", "_poh_side"
_ROW_BITS = 40  # a row's input position: partition << 40 | row (2^23 partitions of 2^40 rows)
_EVENT = re.compile(r"^event \d+: ")


def _forked_check() -> None:
    """In a worker forked after the library was loaded: the clear error, not the slow
    fallback (a cluster would silently run the pure-Python scorer)."""
    if _native.forked():
        raise ForkedProcessError(_native.FORK_MESSAGE + " Dask: keep distributed.worker.multiprocessing-method "
                                 "(and the 'multiprocessing.context' of the processes scheduler) at 'spawn'.")


def _check_frame(ddf: Any, what: str) -> None:
    if not (hasattr(ddf, "map_partitions") and hasattr(ddf, "npartitions") and hasattr(ddf, "_meta")):
        raise TypeError(f"{what}: expected a dask.dataframe.DataFrame, not {type(ddf).__name__} "
                        "(use poh_holdmetrics.score_by_holder for in-memory data)")


def _npartitions(n: Any, ddf: Any) -> int:
    if n is None:
        return max(1, ddf.npartitions)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"npartitions {n!r}: must be a positive int (or None: as many as the input)")
    return n


# --- partitioning by holder ------------------------------------------------------------

def _part_of(pd: Any, keys: Any, n: int) -> Any:
    """Each canonical id's partition: a fixed hash (pandas' SipHash with its default key,
    the same in every process) modulo n."""
    import numpy as np
    h = pd.util.hash_pandas_object(pd.Series(keys.to_pandas(types_mapper=pd.ArrowDtype)), index=False)
    return (h.to_numpy() % np.uint64(n)).astype(np.int64)


def _keyed(pdf: Any, holder: str, n: int, partition_info: Any = None) -> Any:
    """pdf with each row's input position (_poh_row) and its holder's partition (_poh_part)."""
    import numpy as np
    import pandas as pd
    p = partition_info["number"] if partition_info else 0
    out = pdf.copy(deep=False)
    out[_ROW] = (np.int64(p) << _ROW_BITS) + np.arange(len(pdf), dtype=np.int64)
    try:
        out[_PART] = _part_of(pd, canonical_ids(pdf[holder], holder), n)
    except InvalidEventError as e:
        raise _located(e, p, e.index) from None
    return out


def _keyed_meta(meta: Any) -> Any:
    import numpy as np
    return meta.assign(**{_ROW: np.zeros(0, dtype=np.int64), _PART: np.zeros(0, dtype=np.int64)})


def _by_holder(ddf: Any, holder: str, n: int, router: Any = None, meta: Any = None) -> Any:
    """ddf's rows (router's, when given) partitioned by holder: partition i holds exactly
    the rows whose holder hashes to i (explicit divisions, so two frames partitioned this
    way line up), each row with its input position."""
    if router is None:
        keyed = ddf.map_partitions(_keyed, holder, n, meta=_keyed_meta(ddf._meta))
    else:
        keyed = ddf.map_partitions(router, n, meta=meta)
    return keyed.set_index(_PART, divisions=list(range(n + 1)))


def _located(e: InvalidEventError, part: int, row: int) -> InvalidEventError:
    msg = re.sub(r"^(event|row) \d+: ", "", str(e))
    where = f"input partition {part}, row {row}: " if row >= 0 else f"input partition {part}: "
    return InvalidEventError(where + msg, field=e.field, index=row, reason=e.reason, value=e.value)


def _kernel_input(pdf: Any) -> Any:
    """A partition as the kernel takes it: the pyarrow Table of the frame, one chunk per
    column (zero copy for Arrow-backed columns; NaN and NA are nulls, as the pandas path
    reads them too). A frame pyarrow cannot hold (an object column of ints past 64 bits)
    goes as the pandas frame."""
    import pyarrow as pa
    try:
        return pa.Table.from_pandas(pdf, preserve_index=False).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pdf


class _Failed:
    """A partition's lowest bad row: its input position and the kernel's error."""

    __slots__ = ("key", "error")

    def __init__(self, key: int, error: InvalidEventError) -> None:
        self.key, self.error = key, error


def _score_part(pdf: Any, opts: dict[str, Any], ordered: bool) -> HolderScores | _Failed:
    _forked_check()
    if ordered:
        pdf = pdf.reset_index(drop=True).sort_values(_ROW, kind="stable")
        rows = pdf[_ROW].to_numpy()
        pdf = pdf.drop(columns=[_ROW])
    try:
        return _score_one(_kernel_input(pdf), **opts)
    except InvalidEventError as e:
        if e.index < 0 or not ordered:
            raise
        return _Failed(int(rows[e.index]), e)


def _combine(items: list[Any], top: int | None) -> HolderScores | _Failed:
    failed = [x for x in items if isinstance(x, _Failed)]
    if failed:
        return min(failed, key=lambda f: f.key)
    return merge(*items, top=top)


def _prepare(ddf: Any, now: TimeLike | None, window: Any, by_token: bool, top: int | None, exact: bool, twab: bool,
             threads: int | None) -> dict[str, Any]:
    """The kernel's options, checked as the single-process call checks them (on the
    frame's empty meta: unknown columns, a missing holder_id, a bad window or top, ...)."""
    _check_frame(ddf, "score_by_holder")
    opts = {"now": resolve_now(now), "window": resolve_window(window), "by_token": by_token, "top": top,
            "exact": exact, "twab": twab, "threads": threads}
    _score_one(_kernel_input(ddf._meta), **opts)
    return opts


def _frames(ddf: Any, shuffle: bool, npartitions: int | None) -> tuple[Any, bool]:
    if not shuffle:
        return ddf, False
    return _by_holder(ddf, "holder_id", _npartitions(npartitions, ddf)), True


def score_by_holder(ddf: Any, now: TimeLike | None = None, window: Any = None, *, by_token: bool = False,
                    top: int | None = None, exact: bool = False, twab: bool = False, threads: int | None = 1,
                    npartitions: int | None = None, shuffle: bool = True, split_every: int = 8) -> HolderScores:
    """Every holder's row (or every (holder, token) pair's, ``by_token``) of a dask
    DataFrame of hold events, computed on the cluster, as one ranked HolderScores: exactly
    ``poh_holdmetrics.score_by_holder(ddf.compute(), now, window, ...)``, bit for bit.

    The columns and ``now``, ``window``, ``by_token``, ``top``, ``exact``, ``twab`` are
    those of the single-process call (``now`` defaults to the client's clock, read once).
    ``top=n`` keeps n rows per partition and per merge, never the whole ranking.
    ``threads`` is the kernel's per task (default 1: Dask runs the tasks in parallel).
    ``npartitions`` the partitions by holder (default: as many as the input);
    ``shuffle=False`` scores the partitions as they are, for input already partitioned by
    holder with each holder's rows in order (``transfers_to_holds``' output).
    ``split_every``: partition results merged per step of the reduction tree.

    A bad row raises InvalidEventError as the single-process call does: the lowest bad row,
    its ``index`` the row's position in the whole frame (counting it costs one more pass,
    only then)."""
    opts = _prepare(ddf, now, window, by_token, top, exact, twab, threads)
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every {split_every!r}: must be an int >= 2")
    frame, ordered = _frames(ddf, shuffle, npartitions)
    level = [dask.delayed(_score_part)(p, opts, ordered) for p in frame.to_delayed()]
    while True:
        level = [dask.delayed(_combine)(level[i:i + split_every], top) for i in range(0, len(level), split_every)]
        if len(level) == 1:
            break
    result, = dask.compute(level[0])
    if isinstance(result, _Failed):
        raise _global_error(ddf, result)
    return result


def _global_error(ddf: Any, failed: _Failed) -> InvalidEventError:
    """The error renamed to the row's position in the whole frame."""
    part, row = failed.key >> _ROW_BITS, failed.key & ((1 << _ROW_BITS) - 1)
    lengths = ddf.map_partitions(len).compute().tolist() if part else []
    index = sum(lengths[:part]) + row
    e = failed.error
    return InvalidEventError(_EVENT.sub(f"event {index}: ", str(e), count=1), field=e.field, index=index,
                             reason=e.reason, value=e.value)


def _scores_frame(pdf: Any, opts: dict[str, Any], ordered: bool) -> Any:
    r = _score_part(pdf, opts, ordered)
    if isinstance(r, _Failed):
        part, row = r.key >> _ROW_BITS, r.key & ((1 << _ROW_BITS) - 1)
        raise _located(r.error, part, row)
    return r.to_pandas()


def score_partitions(ddf: Any, now: TimeLike | None = None, window: Any = None, *, by_token: bool = False,
                     exact: bool = False, twab: bool = False, threads: int | None = 1,
                     npartitions: int | None = None, shuffle: bool = True) -> Any:
    """The rows of score_by_holder as a lazy dask DataFrame, for results too large to
    gather (write them with ``to_parquet``): partitioned by holder (each holder in one
    partition, holders disjoint), each partition in ranking order; the same values as
    ``HolderScores.to_pandas()`` (exact scores as Python ints). A bad row raises
    InvalidEventError naming its input partition and row there."""
    opts = _prepare(ddf, now, window, by_token, None, exact, twab, threads)
    frame, ordered = _frames(ddf, shuffle, npartitions)
    meta = _score_one(_kernel_input(ddf._meta), **opts).to_pandas()
    return frame.map_partitions(_scores_frame, opts, ordered, meta=meta, align_dataframes=False)


def allocate_rewards(source: Any, pool: int, now: TimeLike | None = None, window: Any = None, *,
                     exact: bool = False, twab: bool = False, min_score: float = 0, cap: int | None = None,
                     decimals: int = 0, threads: int | None = 1, npartitions: int | None = None,
                     shuffle: bool = True) -> list:
    """Split ``pool`` among holders in proportion to their scores, exactly
    (``poh_holdmetrics.allocate_rewards``: largest remainder, sums to the pool).
    ``source`` is a dask DataFrame of hold events (scored here with ``now``, ``window``,
    ``exact``, ``twab``) or a HolderScores (by holder, its full ranking). The scores are
    computed on the cluster; the split, which needs every holder's score at once, runs
    here on one row per holder. Equal to the single-process split of the same rows."""
    from ._reward_columns import allocate_rewards_columns
    if isinstance(source, HolderScores):
        if source.by_token:
            raise ValueError("allocate_rewards: a by_token HolderScores has one row per pair; pass by-holder scores")
        if (now, window, twab) != (None, None, False):
            raise ValueError("allocate_rewards: now, window and twab apply to events; these scores are computed")
        scores = source
    else:
        scores = score_by_holder(source, now, window, exact=exact, twab=twab, threads=threads,
                                 npartitions=npartitions, shuffle=shuffle)
    # The columnar split reads the HolderScores' buffers as they are (no dict of a million
    # holders); the rows are allocate_rewards' own.
    return allocate_rewards_columns(scores, pool, min_score=min_score, cap=cap, decimals=decimals).rows()


# --- transfers ---------------------------------------------------------------------------

def _zero_of(pa: Any, typ: Any) -> Any:
    return bytes(20) if (pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
                         or pa.types.is_fixed_size_binary(typ)) else _ZERO


_ZERO = "0x" + "0" * 40


def _arrow_of(pdf: Any) -> Any:
    """A pandas partition as a pyarrow Table (object columns of big ints as decimal text)."""
    import pyarrow as pa
    try:
        return pa.Table.from_pandas(pdf, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        cols = {}
        for name in pdf.columns:
            s = pdf[name]
            try:
                cols[str(name)] = pa.array(s, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                cols[str(name)] = pa.array([None if v is None else str(v) for v in s.tolist()], pa.large_string())
        return pa.table(cols)


def _in_memory(data: Any, what: str) -> Any:
    """A small in-memory table (pandas, pyarrow, polars, a dict of columns) as pandas."""
    import pandas as pd
    if type(data).__module__.startswith("pandas"):
        return data
    if isinstance(data, dict):
        return pd.DataFrame({k: list(v) if not hasattr(v, "dtype") else v for k, v in data.items()})
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "to_pandas"):
        import pyarrow as pa
        return _pandas_of(pa.table(data))
    raise TypeError(f"{what}: expected a table (pandas, pyarrow, polars or a dict of columns), not "
                    f"{type(data).__name__}")


def _pandas_of(table: Any) -> Any:
    import pandas as pd
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _route(pdf: Any, names: dict[str, str], kind: str, n: int, partition_info: Any = None) -> Any:
    """One input partition's rows, keyed by holder: a transfer goes to its sender's
    partition with the zero address as receiver, and to its receiver's with the zero
    address as sender (the zero address mints and burns and is no holder, so each side
    sees exactly its own balance change); mints and burns go to one side; self transfers
    change nothing and go nowhere."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    p = partition_info["number"] if partition_info else 0
    t = _arrow_of(pdf)
    rows = (np.int64(p) << _ROW_BITS) + np.arange(t.num_rows, dtype=np.int64)
    t = t.append_column(_ROW, pa.array(rows))
    try:
        if kind != "transfer":
            key = canonical_ids(t.column(names["holder_id"]), "holder_id")
            out = t.append_column(_SIDE, pa.array(np.zeros(t.num_rows, dtype=np.int8)))
            out = out.append_column(_PART, pa.array(_part_of(pd, key, n)))
        else:
            fcol, tcol = names["from_address"], names["to_address"]
            frm = canonical_ids(t.column(fcol), "from_address")
            to = canonical_ids(t.column(tcol), "to_address")
            moves = pc.invert(pc.equal(frm, to))
            sides = []
            for side, key, other in ((0, frm, tcol), (1, to, fcol)):
                keep = pc.and_(moves, pc.invert(pc.equal(key, _ZERO)))
                s = t.filter(keep)
                typ = t.schema.field(other).type
                i = s.schema.get_field_index(other)
                s = s.set_column(i, other, pa.array([_zero_of(pa, typ)] * s.num_rows, type=typ))
                s = s.append_column(_SIDE, pa.array(np.full(s.num_rows, side, dtype=np.int8)))
                sides.append(s.append_column(_PART, pa.array(_part_of(pd, key.filter(keep), n))))
            out = pa.concat_tables(sides)
    except InvalidEventError as e:
        raise _located(e, p, e.index) from None
    return _pandas_of(out)


def _holds_part(pdf: Any, opening: Any, kind: str, blocks: Any, opening_time: Any) -> Any:
    """One holder partition's transfers -> its holds (in the one-pass order of its pairs)."""
    import pyarrow as pa
    _forked_check()
    pdf = pdf.reset_index(drop=True).sort_values([_ROW, _SIDE], kind="stable")
    rows = pdf[_ROW].to_numpy()
    t = _arrow_of(pdf.drop(columns=[_ROW, _SIDE]))
    op = None
    if opening is not None:
        opening = opening.reset_index(drop=True).sort_values(_ROW, kind="stable")
        if len(opening):
            op = _arrow_of(opening.drop(columns=[_ROW]))
    try:
        holds = _transfers.run(t, blocks, kind, op, opening_time, False)
    except InvalidEventError as e:
        if e.index < 0:
            raise
        key = int(rows[e.index])
        raise _located(e, key >> _ROW_BITS, key & ((1 << _ROW_BITS) - 1)) from None
    schema = _holds_schema(pa)
    return _pandas_of(holds.cast(schema))


def _holds_schema(pa: Any) -> Any:
    return pa.schema([("token_id", pa.large_string()), ("holder_id", pa.large_string()), ("start", pa.int64()),
                      ("end", pa.int64()), ("weight", pa.binary())])  # 32 bytes each: see transfers_to_holds


def _names(columns: Any, kind: str, what: str) -> dict[str, str]:
    """The input's column for each role, found by the usual names (as transfers_to_holds)."""
    cols = {str(c): True for c in columns}
    out = {}
    for role in ["token_id"] + (["from_address", "to_address"] if kind == "transfer" else ["holder_id"]):
        _transfers._require(cols, role, what)  # the error naming the names it looked for
        out[role] = next(a for a in _transfers.ALIASES[role] if a in cols)
    return out


def transfers_to_holds(ddf: Any, *, blocks: Any = None, kind: str = "transfer", opening: Any = None,
                       opening_time: TimeLike = 0, zero_holder: bool = False, npartitions: int | None = None) -> Any:
    """Hold intervals from a dask DataFrame of chain data, as a lazy dask DataFrame with the
    columns of ``poh_holdmetrics.transfers_to_holds`` (token_id, holder_id, start, end,
    weight; Arrow-backed dtypes, the weight as ``binary`` of 32 bytes big-endian each, since
    Dask's shuffles do not carry ``fixed_size_binary``): the same holds, each
    holder's in one partition in one-pass order, so ``score_by_holder(holds,
    shuffle=False)`` equals the single-process scores of the single-process holds, bit for
    bit. Rows are partitioned by (token, holder) through their holder, so every balance is
    computed in one place from all its changes, in (block, log_index) order.

    ``kind``, the columns and ``opening`` / ``opening_time`` are as for the single-process
    call; ``opening`` and ``blocks`` are in-memory tables (pandas, pyarrow, a dict of
    columns) or, for opening, a dask DataFrame. ``zero_holder=True`` is not supported with
    ``kind="transfer"`` here (each side's partition sees the other side as the zero
    address). A bad row raises InvalidEventError naming its input partition and row.
    For time partitions processed one after the other (carrying balances), see
    ``transfers_step``."""
    _check_frame(ddf, "transfers_to_holds")
    if kind not in _transfers.KINDS:
        raise ValueError(f"kind {kind!r}: want 'transfer', 'balance' or 'delta'")
    if zero_holder and kind == "transfer":
        raise ValueError("transfers_to_holds on Dask: zero_holder=True is not supported for kind='transfer' (each "
                         "side's partition sees the other side as the zero address); use the single-process call")
    if blocks is not None and hasattr(blocks, "npartitions"):
        raise TypeError("transfers_to_holds: blocks must be an in-memory table (pandas, pyarrow, a dict of "
                        "columns); join a dask frame of blocks onto the transfers as a 'timestamp' column instead")
    n = _npartitions(npartitions, ddf)
    names = _names(ddf.columns, kind, "transfers")
    import pyarrow as pa
    meta_t = _arrow_of(ddf._meta)
    meta_t = meta_t.append_column(_ROW, pa.array([], pa.int64())).append_column(_SIDE, pa.array([], pa.int8()))
    meta = _pandas_of(meta_t.append_column(_PART, pa.array([], pa.int64())))

    def router(pdf: Any, n: int, partition_info: Any = None) -> Any:
        return _route(pdf, names, kind, n, partition_info)

    rows = _by_holder(ddf, "", n, router, meta)
    op = None
    if opening is not None:
        if not hasattr(opening, "npartitions"):
            opening = dd.from_pandas(_in_memory(opening, "opening"), npartitions=1)
        op = _by_holder(opening, _names(opening.columns, "balance", "opening")["holder_id"], n)
    hmeta = _pandas_of(_holds_schema(pa).empty_table())
    t0 = opening_time
    if op is None:
        return rows.map_partitions(_holds_part, None, kind, blocks, t0, meta=hmeta, align_dataframes=False,
                                   enforce_metadata=False).clear_divisions()
    return dd.map_partitions(_holds_part, rows, op, kind, blocks, t0, meta=hmeta,
                             enforce_metadata=False).clear_divisions()
