"""The pure-Python fallback: validation and scoring with the Go core's exact semantics.

This module is the one intended duplicate of core/ (see STYLE.md): the same limits, the same
check order, the same error texts, and the same Neumaier recurrence in input order, so that
both backends return identical bits. The shared vectors (testdata/vectors.json) and the
hypothesis parity tests hold the two together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ._errors import InvalidEventError

MAX_ID_BYTES = 256
MIN_TIME = 0
MAX_TIME = 253402300799
MAX_WEIGHT = 1e200
#: Exact mode (core/exact.go): weights are integers 0 <= w <= MAX_WEI; a float weight counts
#: only when it is an integer up to MAX_EXACT_FLOAT (every such integer is exactly a float).
MAX_WEI = 2**256 - 1
MAX_EXACT_FLOAT = 2**53
_NOT_INTEGER_FLOAT = ("exact mode needs an integer weight (up to 2^53 as a number, any up to 2^256-1 as an "
                      "exact weight)")

_QUOTE_MAX = 64
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            '"': '\\"', "\\": "\\\\"}


def go_quote(raw: bytes) -> str:
    """Go's strconv.Quote of an id, cut to 64 bytes plus "..." as core.quoteID does."""
    cut = len(raw) > _QUOTE_MAX
    text = raw[:_QUOTE_MAX].decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= o <= 0xDCFF:  # an invalid byte, as surrogateescape maps it
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out) + ("..." if cut else "")


def go_float(f: float) -> str:
    """Go's strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent form when exp < -4 or >= 6."""
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    r = repr(abs(f))
    mant, _, exp_s = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    dp = len(ip.lstrip("0")) if ip.strip("0") else -(len(fp) - len(fp.lstrip("0")))
    if exp_s:
        dp = len(ip) + int(exp_s)
    digits = digits.rstrip("0") or "0"
    sign = "-" if f < 0 else ""
    exp = dp - 1
    if exp < -4 or exp >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def invalid(index: int, field: str, value: str, reason: str, detail: str) -> InvalidEventError:
    """An InvalidEventError with core.ValidationError's text."""
    where = f"event {index}: " if index >= 0 else ""
    return InvalidEventError(f"{where}{field} {value}: {detail}", field=field, index=index, reason=reason,
                             value=value)


def check_id(index: int, field: str, raw: bytes) -> None:
    """core.ValidateID over the UTF-8 bytes of an id."""
    if not raw:
        raise invalid(index, field, '""', "empty", "must not be empty")
    if len(raw) > MAX_ID_BYTES:
        raise invalid(index, field, go_quote(raw), "too_long", f"is {len(raw)} bytes, more than {MAX_ID_BYTES}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(index, field, go_quote(raw), "invalid_utf8", "is not valid UTF-8") from None


def check_time(index: int, field: str, t: int) -> None:
    """core.ValidateTime."""
    if not MIN_TIME <= t <= MAX_TIME:
        raise invalid(index, field, str(t), "out_of_range", f"is outside [{MIN_TIME}, {MAX_TIME}]")


def check_span(index: int, start: int, end: int | None) -> None:
    """core.validateSpan: start, then end and its order."""
    check_time(index, "start", start)
    if end is not None:
        check_time(index, "end", end)
        if end < start:
            raise invalid(index, "end", str(end), "end_before_start", f"is before start {start}")


def check_weight(index: int, w: float) -> None:
    """core.ValidateWeight."""
    if math.isnan(w) or math.isinf(w):
        raise invalid(index, "weight", go_float(w), "not_finite", "must be finite")
    if w < 0:
        raise invalid(index, "weight", go_float(w), "negative", "must be >= 0")
    if w > MAX_WEIGHT:
        raise invalid(index, "weight", go_float(w), "out_of_range", "is larger than 1e200")


def check_int_weight(index: int, w: int, value: str | None = None) -> None:
    """An int weight (exact or not) is an amount 0 <= w < 2^256, as core.ParseWei reads one;
    ``value`` is how the error shows it (default: the decimal digits)."""
    if w < 0:
        raise invalid(index, "weight", str(w) if value is None else value, "negative", "must be >= 0")
    if w > MAX_WEI:
        raise invalid(index, "weight", str(w) if value is None else value, "out_of_range", "is not below 2^256")


def parse_wei(index: int, s: str) -> int:
    """core.ParseWei: a weight written in decimal (digits only) as an int below 2^256."""
    if s == "":
        raise invalid(index, "weight", '""', "empty", "must be a decimal integer")
    if not (s.isascii() and s.isdigit()):
        value = go_quote(s.encode("utf-8", "surrogatepass"))
        if s[0] == "-" and len(s) > 1 and s[1:].isascii() and s[1:].isdigit():
            raise invalid(index, "weight", value, "negative", "must be >= 0")
        raise invalid(index, "weight", value, "not_integer", "must be a decimal integer (exact mode)")
    digits = s.lstrip("0")
    if len(digits) > 78 or (digits and int(digits) > MAX_WEI):  # 2^256 has 78 digits
        raise invalid(index, "weight", go_quote(s.encode()), "out_of_range", "is not below 2^256")
    return int(digits) if digits else 0


def exact_weight(index: int, w: int | float) -> int:
    """core weightExact for a weight that passed HoldEvent's checks: an int as it is, a float
    only when it is an integer in [0, 2^53] (else the float checks, then not_integer)."""
    if w.__class__ is int:
        return w  # type: ignore[return-value]
    if not (0 <= w <= MAX_EXACT_FLOAT and w == math.trunc(w)):
        check_weight(index, w)
        raise invalid(index, "weight", go_float(w), "not_integer", _NOT_INTEGER_FLOAT)
    return int(w)


def check_window(t0: int, t1: int) -> None:
    """core.Window.Validate: both ends in range, then t0 <= t1. Errors name both ends."""
    value = f"[{t0}, {t1})"
    if not (MIN_TIME <= t0 <= MAX_TIME and MIN_TIME <= t1 <= MAX_TIME):
        raise invalid(-1, "window", value, "out_of_range",
                      f"start {t0} and end {t1} must lie in [{MIN_TIME}, {MAX_TIME}]")
    if t1 < t0:
        raise invalid(-1, "window", value, "end_before_start", f"end {t1} is before start {t0}")


def elapsed(t0: int, t1: int, now: int) -> int:
    """core.Window.elapsed, the TWAB denominator min(t1, now) - t0; an error when it is not
    positive (a window of zero length, or one that starts at or after now): never a NaN."""
    check_window(t0, t1)
    d = min(t1, now) - t0
    if d <= 0:
        raise invalid(-1, "window", f"[{t0}, {t1})", "empty_window",
                      f"has no elapsed time at now {now} (start {t0}, end {t1})")
    return d


def score_rows(starts: Sequence[int], ends: Sequence[int | None], weights: Sequence[float], now: int,
               tokens: Sequence[bytes] | None = None, holders: Sequence[bytes] | None = None,
               t0: int = MIN_TIME, t1: int = MAX_TIME) -> float:
    """core.ScoreColumnsWindow over plain sequences (None end = open): validates now, the
    window [t0, t1), then every row in order, fields in contract order, and sums
    max(0, min(end or now, now, t1) - max(start, t0)) * weight with the Neumaier
    recurrence of core/score.go. The default window clips nothing."""
    check_time(-1, "now", now)
    check_window(t0, t1)
    cap = now if now < t1 else t1  # min(end or now, now, t1) == min(end or cap, cap)
    s = 0.0
    c = 0.0
    for i in range(len(starts)):
        if tokens is not None:
            check_id(i, "token_id", tokens[i])
        if holders is not None:
            check_id(i, "holder_id", holders[i])
        start, end, w = starts[i], ends[i], weights[i]
        check_span(i, start, end)
        check_weight(i, w)
        stop = cap if end is None or end > cap else end
        d = stop - (start if start > t0 else t0)
        if d > 0:
            x = d * w
            t = s + x
            if s >= x or s <= -x:
                c += (s - t) + x
            else:
                c += (x - t) + s
            s = t
    return s + c


def score_rows_exact(starts: Sequence[int], ends: Sequence[int | None], weights: Sequence[int | float], now: int,
                     tokens: Sequence[bytes] | None = None, holders: Sequence[bytes] | None = None,
                     t0: int = MIN_TIME, t1: int = MAX_TIME) -> int:
    """score_rows in exact mode (core.ScoreColumns with Exact): int weights (< 2^256, checked
    by whoever made them) or integer float weights, validated in the same order, summed as
    Python ints: never rounded."""
    check_time(-1, "now", now)
    check_window(t0, t1)
    cap = now if now < t1 else t1
    s = 0
    for i in range(len(starts)):
        if tokens is not None:
            check_id(i, "token_id", tokens[i])
        if holders is not None:
            check_id(i, "holder_id", holders[i])
        start, end = starts[i], ends[i]
        check_span(i, start, end)
        w = exact_weight(i, weights[i])
        stop = cap if end is None or end > cap else end
        d = stop - (start if start > t0 else t0)
        if d > 0:
            s += d * w
    return s


def score_events_exact(events: Iterable, now: int, t0: int = MIN_TIME, t1: int = MAX_TIME) -> int:
    """score_events in exact mode: every weight as an exact int (exact_weight)."""
    check_time(-1, "now", now)
    check_window(t0, t1)
    cap = now if now < t1 else t1
    s = 0
    for i, e in enumerate(events):
        w = exact_weight(i, e.weight)
        end = e.end
        stop = cap if end is None or end > cap else end
        start = e.start
        d = stop - (start if start > t0 else t0)
        if d > 0:
            s += d * w
    return s


def score_events(events: Iterable, now: int, t0: int = MIN_TIME, t1: int = MAX_TIME,
                 acc: list[float] | None = None) -> float:
    """core.ScoreWindow over validated HoldEvents (their constructor checked every field);
    the default window [MIN_TIME, MAX_TIME] clips nothing. An int weight counts as float(w).
    acc: the running Neumaier pair [sum, comp] of the events before these (core's
    ScoreOptions.Acc), continued and updated: the result is then that of every event so far."""
    check_time(-1, "now", now)
    check_window(t0, t1)
    cap = now if now < t1 else t1
    s, c = (0.0, 0.0) if acc is None else acc
    for e in events:
        end = e.end
        stop = cap if end is None or end > cap else end
        start = e.start
        d = stop - (start if start > t0 else t0)
        if d > 0:
            x = (d + 0.0) * e.weight  # a float product even for an int weight, as float64(d) * float64(w)
            t = s + x
            if s >= x or s <= -x:
                c += (s - t) + x
            else:
                c += (x - t) + s
            s = t
    if acc is not None:
        acc[0], acc[1] = s, c
    return s + c


_HEX = frozenset(b"0123456789abcdefABCDEF")


def canonical_id(raw: bytes) -> bytes:
    """core.CanonicalID: an address ("0x" and 40 hex digits, either case) in lower case;
    any other id as it is."""
    if len(raw) == 42 and raw[:2] == b"0x" and _HEX.issuperset(raw[2:]):
        return raw.lower()
    return raw


def _add(acc: list[float], x: float) -> None:
    """core neumaier.add on acc = [sum, comp]."""
    s = acc[0]
    t = s + x
    if s >= x or s <= -x:
        acc[1] += (s - t) + x
    else:
        acc[1] += (x - t) + s
    acc[0] = t


def group_rows(starts: Sequence[int], ends: Sequence[int | None], weights: Sequence[float | int], now: int,
               tokens: Sequence[bytes] | None, holders: Sequence[bytes], t0: int = MIN_TIME, t1: int = MAX_TIME, *,
               exact: bool = False, by_token: bool = False, twab: bool = False) -> list[tuple]:
    """core.ScoreByHolder (kernel.go) over plain sequences: every row validated first (fields
    in contract order, the lowest-index bad row raised), then one row per holder (or per
    (holder, token)), ranked, as (holder, token, score, total_seconds, events, open_holds,
    tokens) with canonical ids as bytes. The sums are the aggregator's: per pair, the
    credited holds (an end at or before now) in a Neumaier sum in input order and the live
    ones (open, or ending after now) kept in order; a row adds each pair's sum, its
    compensation, then its live terms, pairs in first-seen order."""
    check_time(-1, "now", now)
    check_window(t0, t1)
    d = elapsed(t0, t1, now) if twab else 0
    cap = now if now < t1 else t1
    for i in range(len(starts)):
        if tokens is not None:
            check_id(i, "token_id", tokens[i])
        check_id(i, "holder_id", holders[i])
        check_span(i, starts[i], ends[i])
        if exact:
            exact_weight(i, weights[i])
        else:
            check_weight(i, weights[i])
    groups: dict[bytes, dict[bytes, list]] = {}
    for i in range(len(starts)):
        hol = canonical_id(holders[i])
        tok = b"" if tokens is None else canonical_id(tokens[i])
        pairs = groups.get(hol)
        if pairs is None:
            pairs = groups[hol] = {}
        p = pairs.get(tok)
        if p is None:  # [closed sum, comp, seconds, events, open, live terms, exact sum]
            p = pairs[tok] = [0.0, 0.0, 0, 0, 0, [], 0]
        start, end = starts[i], ends[i]
        stop = cap if end is None or end > cap else end
        secs = max(stop - (start if start > t0 else t0), 0)
        p[2] += secs
        p[3] += 1
        if end is None:
            p[4] += 1
        if exact:
            p[6] += secs * exact_weight(i, weights[i])
            continue
        x = (secs + 0.0) * weights[i]
        if end is not None and end <= now:
            _add(p, x)  # credited (x >= 0 and sum >= 0: addNonNeg's arithmetic)
        else:
            p[5].append(x)

    def score_of(ps: list[list]) -> float | int:
        if exact:
            s = sum(p[6] for p in ps)
            return s // d if d else s
        acc = [0.0, 0.0]
        for p in ps:
            _add(acc, p[0])
            _add(acc, p[1])
            for x in p[5]:
                _add(acc, x)
        v = acc[0] + acc[1]
        return v / d if d else v

    out = []
    for hol, pairs in groups.items():
        if by_token:
            for tok, p in pairs.items():
                out.append((hol, tok, score_of([p]), p[2], p[3], p[4], 1))
        else:
            ps = list(pairs.values())
            out.append((hol, b"", score_of(ps), sum(p[2] for p in ps), sum(p[3] for p in ps),
                        sum(p[4] for p in ps), len(ps)))
    out.sort(key=lambda r: (-r[2], r[0], r[1]))
    return out
