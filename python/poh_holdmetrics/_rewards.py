"""Exact reward allocation: split an integer pool in proportion to hold scores.

The split is exact. Every float score is an exact rational (``Fraction(score)``), each
holder's quota ``pool * score / total`` is computed as a rational, floored, and the units
left over go one each to the largest fractional remainders (Hamilton's largest-remainder
method), ties broken by ``holder_id`` ascending. So the amounts always sum to ``pool``
exactly, no dust is lost or created, and the result does not depend on input order.

A ``cap`` limits any one holder: holders whose quota reaches the cap get exactly the cap,
and what they would have had above it is redistributed among the others, in proportion to
their scores, until no new holder reaches the cap (at most one round per holder).

Scores are floats, or exact ints (an exact-mode Aggregator's, or a mapping of ints: then
every score is an int and the split is over the integers themselves). With the native
library the split runs in Go (poh_allocate, the same method); the Python code here is the
fallback (no library, pools or scores beyond 384 bits, ids the library would refuse) and
the tests' oracle. Which one ran never shows in the result.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
from array import array
from collections.abc import Iterable, Mapping
from fractions import Fraction
from itertools import repeat
from operator import itemgetter
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

from ._errors import HoldMetricsError

__all__ = ["RewardRow", "InfeasibleCapError", "allocate_rewards", "write_rewards_csv", "write_rewards_json"]


class InfeasibleCapError(HoldMetricsError, ValueError):
    """``cap × eligible holders < pool``: the pool cannot be split without exceeding the cap."""

    def __init__(self, message: str, *, pool: int, cap: int, holders: int) -> None:
        super().__init__(message)
        self.pool, self.cap, self.holders = pool, cap, holders


class RewardRow:
    """One holder's allocation. ``share`` is ``amount / pool`` as an exact Fraction;
    ``amount`` is in the token's smallest unit (an int, of any size); ``score`` is the
    holder's score as given (a float, or an exact int)."""

    __slots__ = ("holder_id", "score", "amount", "pool")

    def __init__(self, holder_id: str, score: float | int, amount: int, pool: int) -> None:
        self.holder_id, self.score, self.amount, self.pool = holder_id, score, amount, pool

    @property
    def share(self) -> Fraction:
        return Fraction(self.amount, self.pool) if self.pool else Fraction(0)

    def __iter__(self):  # so rows unpack as (holder_id, score, share, amount)
        return iter((self.holder_id, self.score, self.share, self.amount))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RewardRow) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"RewardRow(holder_id={self.holder_id!r}, score={self.score!r}, share={self.share!r}, amount={self.amount!r})"


def _scores(source: Any, window: Any) -> list[tuple[str, float]]:
    """(holder_id, score) pairs from a mapping, (holder, score) pairs, HoldStat rows or an
    Aggregator (its snapshot, in ``window`` when given)."""
    if hasattr(source, "snapshot") and callable(source.snapshot):
        rows = source.snapshot(window=window) if window is not None else source.snapshot()
        return [(r.holder_id, r.score) for r in rows]
    if window is not None:
        raise ValueError("window applies only when allocating from an Aggregator; "
                         "pass windowed scores (calculate_score(..., window=...)) instead")
    if isinstance(source, Mapping):
        return list(source.items())  # (key, value) pairs by definition
    items: Iterable[Any] = source
    out = []
    for i, item in enumerate(items):
        if hasattr(item, "holder_id") and hasattr(item, "score"):
            out.append((item.holder_id, item.score))
        else:
            try:
                holder, score = item
            except (TypeError, ValueError):
                raise ValueError(f"scores[{i}]: expected (holder_id, score) or a HoldStat, got {item!r}") from None
            out.append((holder, score))
    return out


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (smallest token units), got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} {value} must be >= {minimum}")
    return value


def allocate_rewards(scores_or_aggregator: Any, pool: int, *, window: Any = None, min_score: float = 0,
                     cap: int | None = None, decimals: int = 0) -> list[RewardRow]:
    """Split ``pool`` (an int in the token's smallest unit, any size) among holders in
    proportion to their scores, exactly; see the module doc for the method.

    ``scores_or_aggregator``: a ``{holder_id: score}`` mapping, an iterable of
    ``(holder_id, score)`` or of ``HoldStat`` rows, or an ``Aggregator`` (then ``window``
    selects the campaign window of its snapshot). Scores are floats, or all ints (exact
    scores, e.g. of ``Aggregator(exact=True)``): then the split is exact in them, however
    large. Holders scoring below ``min_score``, and holders scoring 0, get nothing and are
    left out of the result. ``cap`` (int) limits any one holder's amount;
    ``InfeasibleCapError`` if ``cap × eligible < pool``. ``decimals`` is the token's number
    of decimals; it only affects how writers render amounts.

    Returns rows sorted by amount descending, then holder_id ascending.
    """
    # The cyclic GC would rescan every row built so far many times over (millions of
    # acyclic tuples and rows): pause it for the call.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _allocate(scores_or_aggregator, pool, window, min_score, cap, decimals)
    finally:
        if enabled:
            gc.enable()


def _allocate(scores_or_aggregator: Any, pool: int, window: Any, min_score: float, cap: int | None,
              decimals: int) -> list[RewardRow]:
    pool = _check_int("pool", pool, 0)
    _check_int("decimals", decimals, 0)
    if cap is not None:
        cap = _check_int("cap", cap, 0)
    if not (isinstance(min_score, (int, float)) and math.isfinite(min_score)):
        raise ValueError(f"min_score {min_score!r} must be a finite number")
    pairs = _scores(scores_or_aggregator, window)
    try:
        merged: dict[str, float | int] = dict(pairs)
    except TypeError:  # an unhashable holder_id: named below
        merged = {}
    if len(merged) != len(pairs) or not _plainly_valid(pairs, merged):
        _first_bad(pairs)
    # Exact scores: every one an int (floats and ints mixed count as floats, as always).
    exact = bool(merged) and all(s.__class__ is int for s in merged.values())
    eligible: dict[str, float | int] = {h: (s if exact else float(s)) for h, s in merged.items()
                                        if s > 0 and s >= min_score}
    if not eligible:
        if pool == 0:
            return []
        raise ValueError(f"no holder is eligible (scores > 0 and >= min_score {min_score}): "
                         f"cannot distribute a pool of {pool}")
    if cap is not None and cap * len(eligible) < pool:
        raise InfeasibleCapError(f"cap {cap} x {len(eligible)} eligible holders = {cap * len(eligible)} "
                                 f"is less than the pool {pool}", pool=pool, cap=cap, holders=len(eligible))
    amounts = _split_native(eligible, pool, cap, exact)
    if amounts is None:
        amounts = _split(eligible, pool, cap)
    return _rows(amounts, merged, pool)


def _plainly_valid(pairs: list[tuple[Any, Any]], merged: dict[Any, Any]) -> bool:
    """True when every holder_id is a non-empty str and every score an int >= 0, or a
    finite float or int >= 0: checks in C-speed loops, for the common case."""
    if "" in merged or not all(h.__class__ is str for h in merged):
        return False
    values = [s for _, s in pairs]
    if all(s.__class__ is int for s in values):
        return min(values, default=0) >= 0
    inf = math.inf
    return all(s.__class__ is float or s.__class__ is int for s in values) and all(0 <= s < inf for s in values)


def _first_bad(pairs: list[tuple[Any, Any]]) -> None:
    """Raise the error for the first bad (holder_id, score) pair, in input order."""
    seen: set[Any] = set()
    for i, (holder, score) in enumerate(pairs):
        if not isinstance(holder, str) or not holder:
            raise ValueError(f"scores[{i}]: holder_id {holder!r} must be a non-empty str")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or score < 0:
            raise ValueError(f"scores[{i}] ({holder!r}): score {score!r} must be a finite number >= 0")
        if holder in seen:
            raise ValueError(f"scores[{i}]: holder_id {holder!r} appears twice")
        seen.add(holder)


def _rows(amounts: list[tuple[str, int]], scores: dict[str, float | int], pool: int) -> list[RewardRow]:
    """The RewardRows, built by map (its C loop is about twice as fast as a Python one)."""
    holders = [h for h, _ in amounts]
    return list(map(RewardRow, holders, map(scores.__getitem__, holders), [a for _, a in amounts], repeat(pool)))


def _split(eligible: dict[str, float | int], pool: int, cap: int | None) -> list[tuple[str, int]]:
    """The pure-Python split of pool among eligible holders (scores > 0; cap feasible):
    (holder_id, amount) sorted by amount descending, then holder_id ascending."""
    # Exact integer arithmetic: every float is n / 2**k, so with D the largest such
    # denominator each score is N / D for an integer N, and quotas pool * N / T (T = sum N)
    # are compared through integer floors and remainders (same T for everyone).
    ratios = [s.as_integer_ratio() for s in eligible.values()]
    big_d = max(d for _, d in ratios)
    nums = {h: n if d == big_d else n * (big_d // d) for h, (n, d) in zip(eligible, ratios)}
    amounts: dict[str, int] = {}
    remaining = pool
    if cap is not None:
        # Fix holders at the cap until no quota of the rest reaches it. Each round removes
        # at least one holder, so this ends; feasibility keeps remaining <= cap * len(rest).
        while nums:
            total = sum(nums.values())
            capped = [h for h, n in nums.items() if remaining * n >= cap * total]
            if not capped:
                break
            for h in capped:
                amounts[h] = cap
                remaining -= cap
                del nums[h]
    if nums:
        total = sum(nums.values())
        split = [(h, *divmod(remaining * n, total)) for h, n in nums.items()]
        left = remaining - sum(q for _, q, _ in split)
        amounts.update((h, q) for h, q, _ in split)
        if left:
            # largest remainder first (all over the same total); ties by holder_id ascending:
            # two stable sorts on plain keys (reverse=True keeps ties in order), much cheaper
            # than one sort on (-remainder, holder_id) tuples.
            split.sort(key=itemgetter(0))
            split.sort(key=itemgetter(2), reverse=True)
            for h, q, _ in split[:left]:
                amounts[h] = q + 1
    assert sum(amounts.values()) == pool, "allocation lost or created units"
    order = sorted(amounts.items())  # holder_id ascending, then (stable) amount descending
    order.sort(key=itemgetter(1), reverse=True)
    return order


#: The library's amounts and exact scores are 384-bit integers.
_MAX_NATIVE = 2**384 - 1


def _split_native(eligible: dict[str, float | int], pool: int, cap: int | None,
                  exact: bool) -> list[tuple[str, int]] | None:
    """_split in the library (poh_allocate: the same method, the same result), or None when
    it cannot be used here: no library (or POH_HOLDMETRICS_PURE, or after fork), a pool, cap
    or exact score beyond 384 bits, or a holder id it would refuse (longer than 256 UTF-8
    bytes, or not UTF-8)."""
    from . import _native, _pure
    from ._errors import NativeLibraryError
    if pool > _MAX_NATIVE or (cap is not None and cap > _MAX_NATIVE):
        return None
    if exact and max(eligible.values()) > _MAX_NATIVE:
        return None
    try:
        ffi, lib = _native.load()
    except NativeLibraryError:
        return None
    holders = list(eligible)
    try:
        enc = [h.encode("utf-8") for h in holders]
    except UnicodeEncodeError:
        return None
    if max(map(len, enc)) > _pure.MAX_ID_BYTES:
        return None
    from itertools import accumulate
    n = len(holders)
    ids = b"".join(enc)
    offsets = array("q", accumulate(map(len, enc), initial=0))
    sh = _native.options(ffi, "poh_share_columns")
    sh.n = n
    keep = [ffi.from_buffer("char[]", ids), ffi.from_buffer("int64_t[]", offsets)]
    sh.ids, sh.ids_len, sh.id_offsets = keep[0], len(ids), keep[1]
    if exact:
        keep.append(ffi.from_buffer("uint8_t[]", b"".join([s.to_bytes(48, "big") for s in eligible.values()])))
        sh.exact = keep[-1]
    else:
        keep.append(ffi.from_buffer("double[]", array("d", eligible.values())))
        sh.score = keep[-1]
    o = _native.options(ffi, "poh_allocate_options")
    ffi.memmove(o.pool, pool.to_bytes(48, "big"), 48)
    if cap is not None:
        o.flags = lib.POH_ALLOCATE_CAP
        ffi.memmove(o.cap, cap.to_bytes(48, "big"), 48)
    res = ffi.new("poh_handle *")
    _native.call(lib.poh_allocate, sh, o, res)
    del keep
    share, amount = read_awards(ffi, lib, res[0], 48, 0)
    from ._wei import ints_of
    return list(zip([holders[i] for i in share.tolist()], ints_of(amount, len(share), 48)))


def read_awards(ffi: Any, lib: Any, r: Any, width: int, flags: int) -> tuple[array, bytearray]:
    """An awards result's share indices and amounts (width bytes each, in the
    poh_award_columns layout flags names), read in one call; frees the result."""
    from . import _native
    try:
        rows = ffi.new("int64_t *")
        _native.call(lib.poh_result_size, r, rows, ffi.NULL)
        m = int(rows[0])
        share = array("q", bytes(8 * m))
        amount = bytearray(width * m)
        ac = _native.options(ffi, "poh_award_columns")
        ac.rows_cap, ac.flags = m, flags
        bufs = [ffi.from_buffer("int64_t[]", share, require_writable=True),
                ffi.from_buffer("uint8_t[]", amount, require_writable=True)]
        ac.share, ac.amount = bufs
        if m:
            _native.call(lib.poh_result_awards, r, ac)
        del bufs
    finally:
        lib.poh_free(r, ffi.NULL)
    return share, amount


def format_amount(amount: int, decimals: int) -> str:
    """``amount`` base units as an exact decimal string with ``decimals`` places."""
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def _share_text(amount: int, pool: int) -> str:
    """amount / pool in lowest terms, as RewardRow.share prints ("n/d", or "n" when whole)."""
    if not pool:
        return "0"
    g = math.gcd(amount, pool)
    n, d = amount // g, pool // g
    return str(n) if d == 1 else f"{n}/{d}"


_FIELDS = ("holder_id", "score", "share", "amount", "amount_decimal")


def _values(rows: Iterable[RewardRow], decimals: int) -> Iterable[tuple[str, str, str, str, str]]:
    """Each row's fields as text, in _FIELDS order."""
    for r in rows:
        score = str(r.score) if r.score.__class__ is int else repr(float(r.score))  # exact: the int's digits
        amount = r.amount
        yield r.holder_id, score, _share_text(amount, r.pool), str(amount), format_amount(amount, decimals)


def _records(rows: Iterable[RewardRow], decimals: int) -> Iterable[dict[str, str]]:
    for v in _values(rows, decimals):
        yield dict(zip(_FIELDS, v))


def write_rewards_csv(rows: Iterable[RewardRow], out: str | IO[str], *, decimals: int = 0) -> None:
    """CSV with columns holder_id, score, share (exact fraction), amount (base units, exact
    integer), amount_decimal (amount / 10**decimals, exact)."""
    f = open(out, "w", newline="", encoding="utf-8") if isinstance(out, str) else out
    try:
        w = csv.writer(f)
        w.writerow(_FIELDS)
        w.writerows(_values(rows, decimals))
    finally:
        if isinstance(out, str):
            f.close()


def write_rewards_json(rows: Iterable[RewardRow], out: str | IO[str] | None = None, *, decimals: int = 0) -> str:
    """JSON array of objects (amounts as strings: they may exceed 2**53). Returns the text,
    and writes it to ``out`` (a path or a text file) when given."""
    text = json.dumps(list(_records(rows, decimals)), indent=1)
    if out is not None:
        if isinstance(out, str):
            with open(out, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        else:
            out.write(text + "\n")
    return text


def rewards_csv_text(rows: Iterable[RewardRow], *, decimals: int = 0) -> str:
    buf = io.StringIO()
    write_rewards_csv(rows, buf, decimals=decimals)
    return buf.getvalue()
