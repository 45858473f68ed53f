"""HoldEvent and HoldStat, and the conversion of Python values (weights, ids, whole events)
into contract values; times are converted by _time."""

from __future__ import annotations

import numbers
import struct
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _pure
from ._errors import InvalidEventError
# Times are converted by _time. TimeLike, WindowLike and to_seconds are also imported from
# here by __init__, _aggregator, _tracker and _columns.
from ._time import TimeLike, WindowLike, to_seconds, type_error

# The C API's poh_event: start, end (-1 = open), weight. HoldEvent packs itself once, so a
# list of HoldEvents crosses into the library as one joined buffer.
_PACK = struct.Struct("<qqd").pack


def to_weight(value: Any, index: int = -1) -> float | int:
    """A weight as a float, or, for an integer (an int, a numpy integer, a decimal string),
    as an exact int checked to be an amount 0 <= w < 2^256 (core.ParseWei's rules and texts).
    Floats are not range-checked here (check_weight does); bools and other types are
    rejected."""
    cls = value.__class__
    if cls is float:
        return value
    if cls is int:
        _pure.check_int_weight(index, value)
        return value
    if cls is str:
        return _pure.parse_wei(index, value)
    if isinstance(value, bool):
        raise type_error(index, "weight", value, "a number or a decimal string")
    if isinstance(value, numbers.Integral):  # numpy integers
        w = int(value)
        _pure.check_int_weight(index, w)
        return w
    if isinstance(value, numbers.Real):  # numpy floats, Fraction, ...
        try:
            return float(value)
        except OverflowError:
            raise _pure.invalid(index, "weight", str(value), "out_of_range", "is larger than 1e200") from None
    if isinstance(value, str):  # a str subclass
        return _pure.parse_wei(index, str(value))
    raise type_error(index, "weight", value, "a number or a decimal string")


def to_id_bytes(value: Any, field: str, index: int = -1) -> bytes:
    """An id as UTF-8 bytes, for validation. A str that cannot be encoded (lone surrogates)
    keeps its raw form so that validation reports it as invalid UTF-8, as the library would."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise type_error(index, field, value, "a str")


class HoldEvent:
    """One hold: ``holder_id`` held ``weight`` units of ``token_id`` from ``start`` until ``end``.

    ``start`` and ``end`` are Unix seconds (int, or float floored) or datetimes (naive = UTC,
    floored to the second); ``end=None`` means the hold is still open. ``weight`` is a finite
    float in [0, 1e200], or an exact integer amount 0 <= w < 2^256 (an int, or a decimal
    string such as ``"1000000000000000000"``, which becomes an int): exact mode
    (``calculate_score(..., exact=True)``, ``Aggregator(exact=True)``) scores it exactly,
    float mode as ``float(weight)``. Ids are non-empty UTF-8 strings of at most 256 bytes (bytes are
    accepted and must be UTF-8). Every rule is checked here, exactly as the Go core checks
    it, and a violation raises InvalidEventError. Instances are immutable and hashable.
    """

    __slots__ = ("token_id", "holder_id", "start", "end", "weight", "_tok", "_hol", "_packed")

    token_id: str
    holder_id: str
    start: int
    end: int | None
    weight: float | int

    def __init__(self, token_id: str, holder_id: str, start: TimeLike, end: TimeLike | None = None,
                 weight: float | int | str = 1.0) -> None:
        _init_event(self, token_id, holder_id, start, end, weight, -1)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"HoldEvent is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"HoldEvent is immutable: cannot delete {name!r}")

    def __repr__(self) -> str:
        return (f"HoldEvent(token_id={self.token_id!r}, holder_id={self.holder_id!r}, start={self.start!r}, "
                f"end={self.end!r}, weight={self.weight!r})")

    def _key(self) -> tuple:
        return (self.token_id, self.holder_id, self.start, self.end, self.weight)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not HoldEvent:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self):
        return (HoldEvent, self._key())


_set = object.__setattr__


def _init_event(ev: HoldEvent, token_id: Any, holder_id: Any, start: Any, end: Any, weight: Any,
                index: int) -> None:
    tok = to_id_bytes(token_id, "token_id", index)
    _pure.check_id(index, "token_id", tok)
    hol = to_id_bytes(holder_id, "holder_id", index)
    _pure.check_id(index, "holder_id", hol)
    s = to_seconds(start, "start", index)
    _pure.check_time(index, "start", s)
    e = None if end is None else to_seconds(end, "end", index)
    _pure.check_span(index, s, e)
    w = to_weight(weight, index)
    if w.__class__ is float:
        _pure.check_weight(index, w)
    _set(ev, "token_id", token_id if type(token_id) is str else tok.decode("utf-8"))
    _set(ev, "holder_id", holder_id if type(holder_id) is str else hol.decode("utf-8"))
    _set(ev, "start", s)
    _set(ev, "end", e)
    _set(ev, "weight", w)
    _set(ev, "_tok", tok)
    _set(ev, "_hol", hol)
    _set(ev, "_packed", _PACK(s, -1 if e is None else e, w))


#: The keys of an event given as a mapping (HoldEvent's fields).
EVENT_KEYS = ("token_id", "holder_id", "start", "end", "weight")
_EVENT_KEYS = frozenset(EVENT_KEYS)


def unknown_key(key: Any, index: int, known: tuple[str, ...] = EVENT_KEYS, what: str = "key") -> InvalidEventError:
    """The error for a mapping key that is not a field (a misspelt "wieght" must not
    silently mean weight 1.0): it names the key (``field``), reason ``unknown_key``."""
    name = key if isinstance(key, str) else repr(key)
    value = _pure.go_quote(name.encode("utf-8", "surrogatepass"))
    where = f"event {index}: " if index >= 0 else ""
    return InvalidEventError(f"{where}unknown {what} {value} (the {what}s are {', '.join(known)})", field=name,
                             index=index, reason="unknown_key", value=value)


def event_at(obj: Any, index: int) -> HoldEvent:
    """obj as a HoldEvent: a HoldEvent as it is, a mapping or a tuple converted with its
    batch index in any error. A mapping key that is not a field is an error naming it."""
    if obj.__class__ is HoldEvent:
        return obj
    ev = HoldEvent.__new__(HoldEvent)
    if isinstance(obj, dict) or hasattr(obj, "keys"):
        if not _EVENT_KEYS.issuperset(obj.keys()):
            raise unknown_key(next(k for k in obj.keys() if k not in _EVENT_KEYS), index)
        try:
            _init_event(ev, obj["token_id"], obj["holder_id"], obj["start"], obj.get("end"),
                        obj.get("weight", 1.0), index)
        except KeyError as e:
            raise InvalidEventError(f"event {index}: {e.args[0]} is missing", field=str(e.args[0]),
                                    index=index, reason="empty") from None
        return ev
    if isinstance(obj, tuple) and 3 <= len(obj) <= 5:
        args = list(obj) + [None, 1.0][len(obj) - 3:]
        _init_event(ev, *args, index)
        return ev
    raise type_error(index, "event", obj, "a HoldEvent, a mapping or a tuple")


class HoldStat:
    """One row of a snapshot or ranking (with a token filter: one (holder, token) pair).

    ``score`` is the closed score plus every open hold up to ``now`` (a float, or in exact
    mode the exact int); ``total_seconds`` the
    unweighted seconds held; ``events`` how many events were recorded; ``open_holds`` how
    many holds are still open; ``tokens`` the distinct tokens held; ``updated_at`` the
    aggregator's clock when it last recorded or closed something for the holder.
    Immutable; compares and hashes by value. (Hand-written rather than a dataclass: the
    dataclasses module costs more import time than this whole package.)
    """

    __slots__ = ("holder_id", "score", "total_seconds", "events", "open_holds", "tokens", "updated_at")

    holder_id: str
    score: float | int
    total_seconds: int
    events: int
    open_holds: int
    tokens: int
    updated_at: int

    def __init__(self, holder_id: str, score: float | int, total_seconds: int, events: int, open_holds: int,
                 tokens: int, updated_at: int) -> None:
        for k, v in zip(self.__slots__, (holder_id, score, total_seconds, events, open_holds, tokens, updated_at)):
            _set(self, k, v)

    def _key(self) -> tuple:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"HoldStat is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not HoldStat:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "HoldStat(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def __reduce__(self):
        return (HoldStat, self._key())


def stats_of(ids: list[str], score: list, total_seconds: list[int], events: list[int], open_holds: list[int],
             tokens: list[int], updated_at: list[int]) -> list[HoldStat]:
    """HoldStats from columns (a query result read column by column): the rows are built
    without HoldStat.__init__'s per-field loop."""
    new = HoldStat.__new__
    d = {k: getattr(HoldStat, k).__set__ for k in HoldStat.__slots__}
    set_h, set_s, set_t, set_e = d["holder_id"], d["score"], d["total_seconds"], d["events"]
    set_o, set_k, set_u = d["open_holds"], d["tokens"], d["updated_at"]
    out = []
    append = out.append
    for h, s, t, e, o, k, u in zip(ids, score, total_seconds, events, open_holds, tokens, updated_at):
        r = new(HoldStat)
        set_h(r, h)
        set_s(r, s)
        set_t(r, t)
        set_e(r, e)
        set_o(r, o)
        set_k(r, k)
        set_u(r, u)
        append(r)
    return out
