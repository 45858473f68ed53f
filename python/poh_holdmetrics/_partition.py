"""Partitioned work, for any engine (Dask, Spark, a loop over files): the pieces that make a
partitioned computation give the single-process answer.

* ``canonical_ids``: the holder (or token) id a row belongs to, as the library compares
  them (an address in lowercase), so an engine can partition rows by holder.
* ``merge`` / ``rollup``: HolderScores of parts combined into one ranking. Parts with
  disjoint keys (what partitioning by holder gives) merge exactly, floats included: each row
  passes through unchanged and only the ranking is redone. Overlapping keys add up (see
  ``merge`` for what is exact then).
* ``transfers_step`` / ``TransferState``: transfers -> holds one time partition after the
  other, carrying every pair's balance (and the time it last changed) from one step to the
  next, so that the steps' holds are exactly the holds of one pass over all of them.

pyarrow and numpy are required here.
"""

from __future__ import annotations

import math
from array import array
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _transfers
from ._errors import HoldMetricsError, InternalError, InvalidEventError
from ._kernel import HolderScores
from ._time import TimeLike, to_seconds

__all__ = ["TransferState", "canonical_ids", "merge", "rollup", "transfers_step"]

ZERO_ADDRESS = "0x" + "0" * 40
_ADDRESS = "^0x[0-9a-fA-F]{40}$"
_STEP_SHIFT = 42  # first-seen keys: step << 42 | position << 1 | side (2^21 steps, 2^41 rows a step)


def _modules() -> tuple[Any, Any, Any]:
    pa = _transfers._pyarrow()
    import numpy as np
    import pyarrow.compute as pc
    return pa, pc, np


def canonical_ids(col: Any, field: str = "holder_id") -> Any:
    """An id column as the library keys it, as a pyarrow ``large_string`` array: an address
    (``0x`` + 40 hex digits, either case) in lowercase, 20-byte binary addresses (cryo's) as
    ``0x`` + hex, any other id as it is. Takes a pyarrow array, a pandas Series or a list.
    Partition by this (or a hash of it), never by the raw column: ``0xAB..`` and ``0xab..``
    are one holder."""
    pa, pc, np = _modules()
    if type(col).__module__.startswith("pandas"):
        col = pa.array(col, from_pandas=True)
    elif not type(col).__module__.startswith("pyarrow"):
        col = pa.array(list(col))
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    data, offs = _transfers._ids(pa, col, field)
    ids = pa.Array.from_buffers(pa.large_string(), len(col), [None, pa.py_buffer(np.ascontiguousarray(offs)),
                                                              pa.py_buffer(data)])
    return pc.if_else(pc.match_substring_regex(ids, _ADDRESS), pc.utf8_lower(ids), ids)


# --- HolderScores as columns and back ----------------------------------------------------

_INTS = ("total_seconds", "events", "open_holds", "tokens")


def _table(hs: HolderScores, updated_at: bool = False) -> Any:
    """hs's columns as a pyarrow Table (over its buffers), the exact scores as their
    48-byte big-endian bytes (``exact``), which sort as the integers do. updated_at: with
    that column (an Aggregator's rows have it; for others it is their ``now``)."""
    pa, _, np = _modules()
    n = len(hs)
    cols = {"holder_id": pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(hs._offsets),
                                                                      pa.py_buffer(hs._ids)])}
    if hs.by_token:
        cols["token_id"] = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(hs._tok_offsets),
                                                                        pa.py_buffer(hs._tok_ids)])
    cols["score"] = pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(hs._score)])
    if hs.exact:
        cols["exact"] = pa.Array.from_buffers(pa.binary(48), n, [None, pa.py_buffer(hs._exact)])
    for k in _INTS:
        cols[k] = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(hs._cols[k])])
    if updated_at:
        u = hs._cols.get("updated_at")
        cols["updated_at"] = (pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(u)]) if u is not None
                              else pa.array(np.full(n, hs.now, dtype=np.int64)))
    return pa.table(cols)


def _buffer(arr: Any, code: str) -> array:
    a = array(code)
    a.frombytes(memoryview(arr).cast("B") if not hasattr(arr, "tobytes") else arr.tobytes())
    return a


def _strings(pa: Any, np: Any, col: Any) -> tuple[bytes, array]:
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    col = col.cast(pa.large_string())
    n = len(col)
    offs = np.frombuffer(col.buffers()[1], dtype=np.int64, count=n + 1, offset=8 * col.offset)
    base, top = int(offs[0]), int(offs[-1])
    data = col.buffers()[2]
    raw = b"" if data is None else data.to_pybytes()[base:top]
    return raw, _buffer(offs - base, "q")


def _scores(table: Any, now: int, by_token: bool, exact: bool) -> HolderScores:
    """A ranked table (as _table makes) as a HolderScores."""
    pa, _, np = _modules()
    table = table.combine_chunks()
    n = table.num_rows
    ids, offsets = _strings(pa, np, table.column("holder_id"))
    tok = _strings(pa, np, table.column("token_id")) if by_token else None
    score = _buffer(table.column("score").to_numpy(), "d")
    exact_buf = None
    if exact:
        e = table.column("exact").combine_chunks()
        exact_buf = e.buffers()[1].to_pybytes()[48 * e.offset:48 * (e.offset + n)] if n else b""
    cols = {k: _buffer(table.column(k).to_numpy(), "q") for k in _INTS + ("updated_at",)
            if k in table.column_names}
    return HolderScores(n, ids, offsets, score, exact_buf, cols, now, tok)


def _rank(table: Any, exact: bool, by_token: bool, top: int | None) -> Any:
    """table in ranking order (score descending, then holder_id, then token_id), the first
    top rows."""
    _, pc, _ = _modules()
    keys = [("exact" if exact else "score", "descending"), ("holder_id", "ascending")]
    if by_token:
        keys.append(("token_id", "ascending"))
    idx = pc.sort_indices(table, sort_keys=keys)
    if top is not None:
        idx = idx[:top]
    return table.take(idx)


def _sum_dups(table: Any, keys: list[str], exact: bool, count_tokens: bool) -> Any:
    """One row per key: scores added (exact: as integers; floats: math.fsum, the correctly
    rounded sum of the parts' scores), the counts added; tokens = the rows' count when
    count_tokens (a roll-up of pairs), else their largest value (1 for pairs)."""
    pa, pc, np = _modules()
    score = "exact" if exact else "score"
    aggs = [(k, "sum") for k in ("total_seconds", "events", "open_holds")]
    aggs.append(("tokens", "count" if count_tokens else "max"))
    if "updated_at" in table.column_names:
        aggs.append(("updated_at", "max"))
    aggs.append((score, "list"))
    g = table.group_by(keys, use_threads=False).aggregate(aggs)
    lists = g.column(score + "_list").combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    first = pc.list_element(lists, 0)
    many = np.flatnonzero(lengths > 1)
    if exact:
        e = np.frombuffer(first.buffers()[1], dtype=np.uint8, count=48 * len(first),
                          offset=48 * first.offset).reshape(-1, 48).copy()
        for i in many:
            total = sum(int.from_bytes(b, "big") for b in lists[int(i)].as_py())
            if total >= 2**384:
                raise HoldMetricsError(f"merged exact score of row {int(i)} is past 2^384 (the result's width)")
            e[i] = np.frombuffer(total.to_bytes(48, "big"), dtype=np.uint8)
        ex = pa.Array.from_buffers(pa.binary(48), len(g), [None, pa.py_buffer(e)])
        out = {k: g.column(k) for k in keys}
        out["score"] = pa.array(_floats_of(e), type=pa.float64())
        out["exact"] = ex
    else:
        s = first.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
        for i in many:
            s[i] = math.fsum(lists[int(i)].as_py())
        out = {k: g.column(k) for k in keys}
        out["score"] = pa.array(s, type=pa.float64())
    out["total_seconds"] = g.column("total_seconds_sum")
    out["events"] = g.column("events_sum")
    out["open_holds"] = g.column("open_holds_sum")
    out["tokens"] = pc.cast(g.column("tokens_count" if count_tokens else "tokens_max"), pa.int64())
    if "updated_at" in table.column_names:
        out["updated_at"] = g.column("updated_at_max")
    return pa.table(out)


def _floats_of(e: Any) -> list[float]:
    """Each 48-byte big-endian exact score's nearest float (what HolderScores keeps)."""
    raw = e.tobytes()
    return [float(int.from_bytes(raw[i:i + 48], "big")) for i in range(0, len(raw), 48)]


def _check_parts(parts: tuple[Any, ...], what: str) -> tuple[int, bool, bool]:
    if not parts:
        raise ValueError(f"{what}: no parts to merge")
    for i, p in enumerate(parts):
        if not isinstance(p, HolderScores):
            raise TypeError(f"{what}: part {i} is a {type(p).__name__}, not HolderScores")
    first = parts[0]
    for i, p in enumerate(parts[1:], start=1):
        for attr in ("now", "by_token", "exact"):
            if getattr(p, attr) != getattr(first, attr):
                raise ValueError(f"{what}: part {i} has {attr}={getattr(p, attr)!r}, part 0 has "
                                 f"{attr}={getattr(first, attr)!r}: parts must come from the same query")
    return first.now, first.by_token, first.exact


def _parts(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(parts) == 1 and not isinstance(parts[0], HolderScores) and hasattr(parts[0], "__iter__"):
        return tuple(parts[0])
    return parts


def merge(*parts: HolderScores, top: int | None = None) -> HolderScores:
    """The HolderScores of several parts (as arguments or one iterable) as one ranking:
    score descending, then holder_id, then token_id; the first ``top`` rows when given.

    Parts must answer the same query (same ``now``, ``by_token``, ``exact``; the same window
    and TWAB setting, which a result does not record). Rows with the same key (the holder,
    or the (holder, token) pair) add up: score, total_seconds, events, open_holds.

    What is exact:

    * disjoint keys (parts of a partition by holder): every row passes through unchanged,
      so the merge of the parts is exactly, bit for bit, the one-process result, floats
      included, and merging in any order or grouping gives the same;
    * exact mode: integer sums, so any merge (overlapping too) is exact, associative and
      commutative;
    * floats with overlapping keys: a key's score is ``math.fsum`` of its parts' scores, the
      correctly rounded sum, so a flat merge does not depend on the parts' order; but each
      part was already rounded, so the result can differ from one pass over all the events
      by a few ulp, and a nested merge ``merge(merge(a, b), c)`` can differ from
      ``merge(a, b, c)`` in the last ulp. Use exact mode where that matters.

    By-holder parts that share a holder cannot be merged (its distinct-token count cannot
    be added): merge ``by_token=True`` parts, then ``rollup`` them. Raises ValueError for
    that, for parts of different queries, and TypeError for a part that is not a
    HolderScores.
    """
    parts = _parts(parts)
    now, by_token, exact = _check_parts(parts, "merge")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"merge: top {top!r} must be a positive int (or None for every row)")
    pa, pc, np = _modules()
    updated = any("updated_at" in p._cols for p in parts)
    table = pa.concat_tables([_table(p, updated) for p in parts])
    keys = ["holder_id", "token_id"] if by_token else ["holder_id"]
    if table.num_rows and len(parts) > 1:
        counts = table.group_by(keys, use_threads=False).aggregate([("score", "count")])
        dup = pc.greater(counts.column("score_count"), 1)
        if pc.any(dup).as_py():
            if not by_token:
                holder = counts.filter(dup).column("holder_id")[0].as_py()
                raise ValueError(f"merge: holder {holder!r} is in more than one by-holder part, and its distinct "
                                 "tokens cannot be added up; merge by_token=True parts, then rollup() them")
            table = _sum_dups(table, keys, exact, count_tokens=False)
    return _scores(_rank(table, exact, by_token, top), now, by_token, exact)


def rollup(pairs: HolderScores, *, top: int | None = None) -> HolderScores:
    """A by-token HolderScores rolled up to one row per holder (its pairs added up; tokens =
    its pairs). Exact mode: the exact sums, equal to a by-holder query. Floats: each holder's
    score is ``math.fsum`` of its pairs' scores, which can differ by a few ulp from a
    by-holder query (that one adds the events in input order, tokens interleaved)."""
    if not isinstance(pairs, HolderScores) or not pairs.by_token:
        raise ValueError("rollup: needs a by_token=True HolderScores")
    table = _sum_dups(_table(pairs, "updated_at" in pairs._cols), ["holder_id"], pairs.exact, count_tokens=True)
    return _scores(_rank(table, pairs.exact, False, top), pairs.now, False, pairs.exact)


# --- transfers, one time partition after another -----------------------------------------

class TransferState:
    """What ``transfers_step`` carries from one time partition to the next: every (token,
    holder) pair seen so far (ids canonical) with its balance, the time it last changed
    (``since``) and where it was first seen (the one-pass order of pairs), plus the latest
    time and (block, log_index) applied. Picklable; ``pairs`` is a pyarrow Table."""

    __slots__ = ("pairs", "steps", "as_of", "last_position", "zero_holder")

    def __init__(self, pairs: Any, steps: int, as_of: int, last_position: tuple[int, int] | None,
                 zero_holder: bool) -> None:
        self.pairs = pairs  # token_id, holder_id (large_string), balance (binary(32)), since, first (int64)
        self.steps = steps
        self.as_of = as_of
        self.last_position = last_position
        self.zero_holder = zero_holder

    def __repr__(self) -> str:
        return f"<TransferState {self.pairs.num_rows} pairs after {self.steps} steps, as of {self.as_of}>"

    def balances(self) -> Any:
        """The non-zero balances (token_id, holder_id, balance as ``fixed_size_binary(32)``)."""
        pa, _, _ = _modules()
        t = self._live()
        return pa.table({"token_id": t.column("token_id"), "holder_id": t.column("holder_id"),
                         "balance": t.column("balance")})

    def _live(self) -> Any:
        _, pc, _ = _modules()
        return self.pairs.filter(pc.not_equal(self.pairs.column("balance"), _ZERO32()))

    def open_holds(self) -> Any:
        """The open holds as of now: each non-zero balance from its last change on, with
        the ordering columns of transfers_step's holds."""
        pa, _, np = _modules()
        t = self._live()
        n = t.num_rows
        return pa.table({"token_id": t.column("token_id"), "holder_id": t.column("holder_id"),
                         "start": t.column("since"), "end": pa.nulls(n, pa.int64()),
                         "weight": t.column("balance"), "pair_order": t.column("first"),
                         "hold_order": pa.array(np.full(n, 2**62, dtype=np.int64))})

    def holds(self, closed: Any) -> Any:
        """The holds of every step so far, exactly as one ``transfers_to_holds`` over all the
        steps' rows gives them (same rows, same order, same columns): ``closed`` is the list
        of the steps' holds tables; this state's open holds are added."""
        pa, pc, _ = _modules()
        parts = [c.select(_HOLD_COLUMNS) for c in (closed if isinstance(closed, (list, tuple)) else [closed])]
        t = pa.concat_tables([p.cast(_hold_schema(pa)) for p in parts] + [self.open_holds().cast(_hold_schema(pa))])
        t = t.take(pc.sort_indices(t, sort_keys=[("pair_order", "ascending"), ("hold_order", "ascending")]))
        return t.select(["token_id", "holder_id", "start", "end", "weight"])


_HOLD_COLUMNS = ["token_id", "holder_id", "start", "end", "weight", "pair_order", "hold_order"]


def _hold_schema(pa: Any) -> Any:
    return pa.schema([("token_id", pa.large_string()), ("holder_id", pa.large_string()), ("start", pa.int64()),
                      ("end", pa.int64()), ("weight", pa.binary(32)), ("pair_order", pa.int64()),
                      ("hold_order", pa.int64())])


def _ZERO32() -> Any:
    pa, _, _ = _modules()
    return pa.scalar(bytes(32), type=pa.binary(32))


def _empty_pairs(pa: Any) -> Any:
    return pa.table({"token_id": pa.array([], pa.large_string()), "holder_id": pa.array([], pa.large_string()),
                     "balance": pa.array([], pa.binary(32)), "since": pa.array([], pa.int64()),
                     "first": pa.array([], pa.int64())})


def _seen(transfers: Any, blocks: Any, kind: str, zero_holder: bool, step: int,
          last_position: tuple[int, int] | None) -> tuple[Any, int | None, tuple[int, int] | None]:
    """The pairs the rows of one step create, as the library creates them (rows in (block,
    log_index) order, stable; removed rows, zero and self transfers skipped; the zero
    address no holder unless zero_holder): token_id, holder_id, first (the first-seen key),
    t1 (the time of the pair's first change), plus the step's latest time and position.
    Run after the library accepted the rows, so every value here is valid."""
    pa, pc, np = _modules()
    cols = _transfers.frame(transfers, "transfers")
    token = _transfers._require(cols, "token_id", "transfers")
    n = len(token)
    bcol = _transfers._find(cols, _transfers.ALIASES["block"])
    block = _transfers._int64(pa, bcol, "block_number") if bcol is not None else np.zeros(n, dtype=np.int64)
    lcol = _transfers._find(cols, _transfers.ALIASES["log_index"])
    log = _transfers._int64(pa, lcol, "log_index") if lcol is not None else np.zeros(n, dtype=np.int64)
    if blocks is not None:
        time = _transfers._block_times(pa, blocks, block)
    else:
        time = _transfers._int64(pa, _transfers._find(cols, _transfers.ALIASES["time"]), "time", times=True)
    rcol = _transfers._find(cols, _transfers.ALIASES["removed"])
    live = np.ones(n, dtype=bool) if rcol is None else ~_transfers._flags(pa, rcol).astype(bool)
    order = np.lexsort((np.arange(n), log, block))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n, dtype=np.int64)
    if bcol is not None and last_position is not None and live.any():
        i = int(order[np.flatnonzero(live[order])[0]])
        if (int(block[i]), int(log[i])) < last_position:
            raise InvalidEventError(f"row {i}: block_number {int(block[i])} log_index {int(log[i])} comes before "
                                    f"the previous steps' last row ({last_position[0]}, {last_position[1]}): steps "
                                    "must follow each other in (block, log_index) order", field="block_number",
                                    index=i, reason="out_of_range", value=str(int(block[i])))
    tok = canonical_ids(token, "token_id")
    base = (step << _STEP_SHIFT) + (pos << 1)
    sides = []
    if kind == "transfer":
        frm = canonical_ids(_transfers._require(cols, "from_address", "transfers"), "from_address")
        to = canonical_ids(_transfers._require(cols, "to_address", "transfers"), "to_address")
        wei, _ = _transfers._amounts(_transfers._require(cols, "value", "transfers"), n, "value", False)
        nonzero = np.frombuffer(wei, dtype=np.uint8).reshape(n, 32).any(axis=1) if n else np.zeros(0, dtype=bool)
        live &= nonzero & ~pc.equal(frm, to).to_numpy(zero_copy_only=False)
        for side, ids in ((0, frm), (1, to)):
            keep = live if zero_holder else live & ~pc.equal(ids, ZERO_ADDRESS).to_numpy(zero_copy_only=False)
            sides.append((ids, keep, base + side))
    else:
        hol = canonical_ids(_transfers._require(cols, "holder_id", "transfers"), "holder_id")
        sides.append((hol, live, base))
    parts = [pa.table({"token_id": tok.filter(pa.array(keep)), "holder_id": ids.filter(pa.array(keep)),
                       "first": pa.array(key[keep]), "t1": pa.array(time[keep])}) for ids, keep, key in sides]
    rows = pa.concat_tables(parts)
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("first", "ascending")]))
    g = rows.group_by(["token_id", "holder_id"], use_threads=False).aggregate([("first", "min"), ("t1", "first")])
    seen = pa.table({"token_id": g.column("token_id"), "holder_id": g.column("holder_id"),
                     "first": g.column("first_min"), "t1": g.column("t1_first")})
    as_of = int(time[live].max()) if live.any() else None
    last = None
    if bcol is not None and live.any():
        i = int(order[np.flatnonzero(live[order])[-1]])
        last = (int(block[i]), int(log[i]))
    return seen, as_of, last


def transfers_step(transfers: Any, state: TransferState | None = None, *, blocks: Any = None, kind: str = "transfer",
                   opening: Any = None, opening_time: TimeLike = 0,
                   zero_holder: bool = False) -> tuple[Any, TransferState]:
    """One time partition of chain data -> ``(holds, state)``: ``holds`` the holds that
    closed in this partition, ``state`` what the next partition starts from.

    ``transfers``, ``blocks``, ``kind``, ``zero_holder`` are as for ``transfers_to_holds``;
    the first step may take ``opening`` balances (at ``opening_time``), later ones carry the
    state instead. Steps must follow each other in time and (block, log_index) order (what
    splitting a chain by block range gives); a step's rows before the carried balances'
    time are an error naming the row.

    ``state.holds([holds_1, ..., holds_k])`` is then exactly what one
    ``transfers_to_holds`` of all the steps' rows gives: the same rows in the same order
    (so every score computed from them is bit for bit the same). Each ``holds`` table has
    the usual columns plus ``pair_order`` and ``hold_order`` (int64: sorting by them gives
    the one-pass order); drop those two to score a step's holds on their own. A hold still
    open at a step's end is in the state (``state.open_holds()``), not in its ``holds``.
    """
    pa, pc, np = _modules()
    if state is not None and not isinstance(state, TransferState):
        raise TypeError(f"transfers_step: state must be a TransferState (or None), not {type(state).__name__}")
    if state is not None and opening is not None:
        raise ValueError("transfers_step: opening balances are for the first step; later steps carry the state")
    if state is not None and state.zero_holder != zero_holder:
        raise ValueError(f"transfers_step: zero_holder={zero_holder!r}, but the state was made with "
                         f"zero_holder={state.zero_holder!r}")
    step = 1 if state is None else state.steps + 1
    if step >= 2**21:
        raise ValueError(f"transfers_step: step {step}: at most {2**21 - 1} steps")
    pairs = _empty_pairs(pa) if state is None else state.pairs
    live = pairs.filter(pc.not_equal(pairs.column("balance"), _ZERO32()))
    t_open = to_seconds(opening_time, "opening_time") if state is None else state.as_of
    if state is None and opening is not None:
        carry = opening
    else:
        carry = {"token_id": live.column("token_id"), "holder_id": live.column("holder_id"),
                 "balance": live.column("balance")} if live.num_rows else None
    got = _transfers.run(transfers, blocks, kind, carry, t_open, zero_holder)
    seen, as_of, last = _seen(transfers, blocks, kind, zero_holder, step,
                              None if state is None else state.last_position)
    if state is None and opening is not None:  # opening pairs come first, in their order
        ocols = _transfers.frame(opening, "opening")
        otok = canonical_ids(_transfers._require(ocols, "token_id", "opening"), "token_id")
        ohol = canonical_ids(_transfers._require(ocols, "holder_id", "opening"), "holder_id")
        wei, _ = _transfers._amounts(_transfers._require(ocols, "balance", "opening"), len(otok), "balance", False)
        pairs = pa.table({"token_id": otok, "holder_id": ohol,
                          "balance": pa.Array.from_buffers(pa.binary(32), len(otok), [None, pa.py_buffer(wei)]),
                          "since": pa.array(np.full(len(otok), t_open, dtype=np.int64)),
                          "first": pa.array(np.arange(len(otok), dtype=np.int64) << 1)})
        live = pairs.filter(pc.not_equal(pairs.column("balance"), _ZERO32()))
    # Every pair: the state's, then the new ones (first seen in this step).
    known = pairs.select(["token_id", "holder_id"]).append_column("_old", pa.array(np.ones(pairs.num_rows, bool)))
    new = seen.join(known, ["token_id", "holder_id"], join_type="left outer")
    new = new.filter(pc.is_null(new.column("_old")))
    allp = pa.concat_tables([pairs.select(["token_id", "holder_id", "first"]),
                             new.select(["token_id", "holder_id", "first"])])
    allp = allp.append_column("_p", pa.array(np.arange(allp.num_rows, dtype=np.int64)))
    # The holds, each with its pair; carried balances' first holds start at their since.
    n = got.num_rows
    holds = pa.table({"token_id": got.column("token_id").cast(pa.large_string()),
                      "holder_id": got.column("holder_id").cast(pa.large_string()),
                      "_i": pa.array(np.arange(n, dtype=np.int64))})
    holds = holds.join(allp, ["token_id", "holder_id"], join_type="left outer")
    holds = holds.take(pc.sort_indices(holds, sort_keys=[("_i", "ascending")]))
    if holds.column("_p").null_count:
        bad = holds.filter(pc.is_null(holds.column("_p")))
        raise InternalError(f"transfers_step: pair {bad.column('token_id')[0]}/{bad.column('holder_id')[0]} of "
                            "the library's holds was not seen in the rows")
    p = holds.column("_p").to_numpy()
    start = got.column("start").to_numpy().copy()
    end_col = got.column("end")
    weight = np.frombuffer(got.column("weight").combine_chunks().buffers()[1], dtype=np.uint8,
                           count=32 * n).reshape(n, 32) if n else np.zeros((0, 32), np.uint8)
    first_of_pair = np.ones(n, dtype=bool)
    first_of_pair[1:] = p[1:] != p[:-1]
    inserts: list[tuple[int, int, int, bytes]] = []  # (output index, pair, since, balance)
    if live.num_rows:
        c = live.select(["token_id", "holder_id", "balance", "since"]).join(
            allp.select(["token_id", "holder_id", "_p"]), ["token_id", "holder_id"]).join(
            seen.select(["token_id", "holder_id", "t1"]), ["token_id", "holder_id"], join_type="left outer")
        cp = c.column("_p").to_numpy()
        csince = c.column("since").to_numpy()
        ct1 = c.column("t1").to_numpy(zero_copy_only=False)
        ct1_valid = c.column("t1").is_valid().to_numpy(zero_copy_only=False)
        cbal = c.column("balance").to_pylist()
        where = {int(q): i for i, q in enumerate(p) if first_of_pair[i]}
        for q, s, t1, has_t1, bal in zip(cp, csince, ct1, ct1_valid, cbal):
            q = int(q)
            if has_t1 and int(t1) == t_open:  # changed at the carried time: the hold up to it
                if t_open > s:
                    inserts.append((where.get(q, n), q, int(s), bal))
                continue
            i = where.get(q)
            if i is None or start[i] != t_open or weight[i].tobytes() != bal:
                raise InternalError(f"transfers_step: the carried balance of pair {q} has no hold at {t_open}")
            start[i] = s
    pos = np.arange(n, dtype=np.int64) * 2 + 1
    first_key = allp.column("first").to_numpy()
    out = pa.table({"token_id": holds.column("token_id"), "holder_id": holds.column("holder_id"),
                    "start": pa.array(start), "end": end_col.cast(pa.int64()),
                    "weight": got.column("weight").cast(pa.binary(32)),
                    "pair_order": pa.array(first_key[p]), "hold_order": pa.array((step << 43) + pos)})
    if inserts:
        names = allp.column("token_id"), allp.column("holder_id")
        ins = pa.table({"token_id": pa.array([names[0][q].as_py() for _, q, _, _ in inserts], pa.large_string()),
                        "holder_id": pa.array([names[1][q].as_py() for _, q, _, _ in inserts], pa.large_string()),
                        "start": pa.array([s for _, _, s, _ in inserts], pa.int64()),
                        "end": pa.array([t_open] * len(inserts), pa.int64()),
                        "weight": pa.array([b for _, _, _, b in inserts], pa.binary(32)),
                        "pair_order": pa.array([int(first_key[q]) for _, q, _, _ in inserts], pa.int64()),
                        "hold_order": pa.array([(step << 43) + 2 * i for i, _, _, _ in inserts], pa.int64())})
        out = pa.concat_tables([out, ins])
        out = out.take(pc.sort_indices(out, sort_keys=[("pair_order", "ascending"), ("hold_order", "ascending")]))
    is_open = pc.is_null(out.column("end"))
    opened = out.filter(is_open)
    closed = out.filter(pc.invert(is_open))
    # The new state: every pair, its balance and since from its open hold (else zero).
    bal = pa.table({"token_id": opened.column("token_id"), "holder_id": opened.column("holder_id"),
                    "balance": opened.column("weight"), "since": opened.column("start")})
    st = allp.join(bal, ["token_id", "holder_id"], join_type="left outer")
    st = st.take(pc.sort_indices(st, sort_keys=[("_p", "ascending")]))
    st = pa.table({"token_id": st.column("token_id"), "holder_id": st.column("holder_id"),
                   "balance": pc.fill_null(st.column("balance"), _ZERO32()),
                   "since": pc.fill_null(st.column("since"), 0), "first": st.column("first")})
    if state is None and opening is not None:
        as_of = t_open if as_of is None else max(as_of, t_open)
    elif state is not None:
        as_of = state.as_of if as_of is None else max(as_of, state.as_of)
    if as_of is None:
        as_of = t_open
    last = last if last is not None else (None if state is None else state.last_position)
    return closed.cast(_hold_schema(pa)), TransferState(st, step, as_of, last, zero_holder)
