"""Exact amounts in columns: weights (exact mode) and transfer values as unsigned 256-bit
integers in the C API's layout, 32 bytes big-endian per row (cryo's u256 layout).

``u256_column`` turns a column into that buffer without a Python object per row where the
column's type allows: pyarrow ``fixed_size_binary(32)`` (and ``binary`` whose values are
all 32 bytes) is handed over as it is (zero copy); numpy / pyarrow / pandas integers and
pyarrow ``decimal128`` / ``decimal256`` of scale 0 are converted with numpy; decimal
strings are checked with one vectorised regex and cast when they fit 64 bits. Anything
else (Python ints, longer strings, bytes of other lengths, ...) goes value by value through
``to_int``. The scalar rules and error texts are core/exact.go's (mirrored in _pure).
"""

from __future__ import annotations

import math
import numbers
import sys
from array import array
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _pure
from ._errors import InvalidEventError

WIDTH = 32
_NOT_INTEGER = "must be an integer"


class BadValue(Exception):
    """A value that is not an amount: row ``index`` (-1 until the column loop sets it),
    with the core's reason, the value as errors show it, and the detail."""

    def __init__(self, reason: str, value: str, detail: str, index: int = -1) -> None:
        super().__init__(f"{value}: {detail}")
        self.reason, self.value, self.detail, self.index = reason, value, detail, index

    def error(self, field: str, where: str = "event") -> Exception:
        """The InvalidEventError for this value as field of row ``index``; ``where`` is the
        message's prefix word ("event 3: ...", "row 3: ...")."""
        prefix = f"{where} {self.index}: " if self.index >= 0 else ""
        return InvalidEventError(f"{prefix}{field} {self.value}: {self.detail}", field=field, index=self.index,
                                 reason=self.reason, value=self.value)


def _bad(e: InvalidEventError) -> BadValue:
    """A BadValue from _pure's error for a lone value (text "field value: detail")."""
    return BadValue(e.reason, e.value, str(e)[len(e.field) + len(e.value) + 3:])


def to_int(v: Any, signed: bool = False, weight_floats: bool = True) -> tuple[int, bool]:
    """(magnitude, negative) of one value. ints (numpy's too), decimal strings (core.ParseWei:
    digits only, with a leading "-" when signed), big-endian bytes, integral Decimals; floats
    by the weight rule (an integer in [0, 2^53], core weightExact) or, with weight_floats
    False, any finite integral float (cryo's f64 amounts, already rounded). Raises BadValue."""
    cls = v.__class__
    if cls is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool)):
        n = int(v)
        neg = n < 0
        if neg and not signed:
            raise BadValue("negative", str(n), "must be >= 0")
        if (-n if neg else n) > _pure.MAX_WEI:
            raise BadValue("out_of_range", str(n), "is not below 2^256")
        return (-n if neg else n), neg
    if isinstance(v, str):
        neg = signed and len(v) > 1 and v[0] == "-" and v[1:].isascii() and v[1:].isdigit()
        try:
            return _pure.parse_wei(-1, v[1:] if neg else v), neg
        except InvalidEventError as e:
            raise _bad(e) from None
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if not b:
            raise BadValue("empty", "0x", "must not be empty")
        n = int.from_bytes(b, "big")
        if n > _pure.MAX_WEI:
            raise BadValue("out_of_range", "0x" + b.hex(), "is not below 2^256")
        return n, False
    if v is None:
        raise BadValue("empty", "None", "must not be null")
    if isinstance(v, bool):
        raise BadValue("invalid_type", repr(v), "must be an integer amount, not bool")
    if isinstance(v, float) or (isinstance(v, numbers.Real) and type(v).__name__ != "Decimal"):
        f = float(v)
        text = _pure.go_float(f)
        if weight_floats and not signed:
            try:
                return _pure.exact_weight(-1, f), False
            except InvalidEventError as e:
                raise _bad(e) from None
        if not math.isfinite(f):
            raise BadValue("not_finite", text, "must be finite")
        if f != math.trunc(f):
            raise BadValue("not_integer", text, _NOT_INTEGER)
        if f < 0 and not signed:
            raise BadValue("negative", text, "must be >= 0")
        n = int(f)
        if abs(n) > _pure.MAX_WEI:
            raise BadValue("out_of_range", text, "is not below 2^256")
        return abs(n), n < 0
    if type(v).__name__ == "Decimal":
        if not v.is_finite():
            raise BadValue("not_finite", str(v), "must be finite")
        if v != v.to_integral_value():
            raise BadValue("not_integer", str(v), _NOT_INTEGER)
        return to_int(int(v), signed)
    raise BadValue("invalid_type", repr(v)[:80], "must be an integer, a decimal string or big-endian bytes, "
                   f"not {type(v).__name__}")


def _np() -> Any:
    return sys.modules.get("numpy")


def u256_column(col: Any, n: int, signed: bool = False, weight_floats: bool = True) -> tuple[Any, Any, Any]:
    """(wei, floats, negative) for a column of n values: wei a buffer of 32 bytes big-endian
    per row, or (weight_floats, for a float column) None and floats a float64 buffer for the
    C API's weight column (the core takes it in exact mode when every value is an integer
    up to 2^53); negative a uint8 buffer (1 = subtract: signed deltas) or None. Raises
    BadValue with the first bad row's index."""
    np = _np()
    mod = type(col).__module__
    if mod.startswith("pyarrow"):
        return _arrow(col, n, signed, weight_floats)
    if mod.startswith("pandas"):
        dtype = col.dtype
        if "pyarrow" in str(dtype) and "pyarrow" in sys.modules:
            import pyarrow as pa
            return _arrow(pa.array(col), n, signed, weight_floats)
        kind = getattr(dtype, "kind", "O")
        if kind == "f" or (kind in "iu" and not col.isna().any()):
            return _numpy(np, col.to_numpy(), signed, weight_floats)
        return _values(col.astype(object).where(col.notna(), None).tolist(), signed, weight_floats)
    if np is not None and isinstance(col, np.ndarray):
        if isinstance(col, np.ma.MaskedArray):
            if np.ma.getmaskarray(col).any():
                return _values(col.tolist(), signed, weight_floats)
            col = col.filled(0)
        return _numpy(np, col, signed, weight_floats)
    if isinstance(col, array):
        if col.typecode in "fd":
            if weight_floats and not signed:
                return None, (col if col.typecode == "d" else array("d", col)), None
            return _values(col.tolist(), signed, weight_floats)
        if np is not None:
            return _numpy(np, np.frombuffer(col, dtype=np.dtype(col.typecode)), signed, weight_floats)
        return _values(col.tolist(), signed, weight_floats)
    return _values(list(col), signed, weight_floats)


def _values(vals: list, signed: bool, weight_floats: bool) -> tuple[Any, Any, Any]:
    """The value-by-value path."""
    if weight_floats and not signed and vals and all(v.__class__ is float for v in vals):
        return None, array("d", vals), None
    parts = []
    neg = bytearray(len(vals)) if signed else None
    for i, v in enumerate(vals):
        try:
            m, negative = to_int(v, signed, weight_floats)
        except BadValue as e:
            e.index = i
            raise
        parts.append(m.to_bytes(WIDTH, "big"))
        if negative:
            neg[i] = 1  # type: ignore[index]
    return b"".join(parts), None, (neg if signed and any(neg) else None)  # type: ignore[arg-type]


def _be_u64(np: Any, mag: Any) -> Any:
    """uint64 magnitudes as 32-byte big-endian rows."""
    out = np.zeros((len(mag), 4), dtype=">u8")
    out[:, 3] = mag
    return out.view(np.uint8).reshape(-1)


def _numpy(np: Any, a: Any, signed: bool, weight_floats: bool) -> tuple[Any, Any, Any]:
    if a.ndim != 1:
        raise BadValue("invalid_type", f"array of shape {a.shape}", "must be one column", 0)
    kind = a.dtype.kind
    if kind == "u":
        return _be_u64(np, a.astype(np.uint64, copy=False)), None, None
    if kind == "i":
        neg = a < 0
        if neg.any():
            if not signed:
                i = int(np.argmax(neg))
                raise BadValue("negative", str(int(a[i])), "must be >= 0", i)
            # -INT64_MIN wraps to itself, whose uint64 view is 2^63: the right magnitude.
            mag = np.where(neg, -a.astype(np.int64), a).astype(np.uint64)
            return _be_u64(np, mag), None, np.ascontiguousarray(neg, dtype=np.uint8)
        return _be_u64(np, a.astype(np.uint64)), None, None
    if kind == "f":
        if weight_floats and not signed:
            return None, np.ascontiguousarray(a, dtype=np.float64), None
        return _values(a.tolist(), signed, weight_floats)
    return _values(a.tolist(), signed, weight_floats)


def _arrow(arr: Any, n: int, signed: bool, weight_floats: bool) -> tuple[Any, Any, Any]:
    import pyarrow as pa
    np = _np()
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if arr.null_count or np is None:
        return _values(arr.to_pylist(), signed, weight_floats)
    if pa.types.is_fixed_size_binary(t):
        k = t.byte_width
        data = arr.buffers()[1]
        raw = memoryview(data)[arr.offset * k:(arr.offset + len(arr)) * k] if data is not None else b""
        if k == WIDTH:
            return raw, None, None  # cryo's u256: handed over as it is
        if 0 < k < WIDTH:
            out = np.zeros((len(arr), WIDTH), dtype=np.uint8)
            out[:, WIDTH - k:] = np.frombuffer(raw, dtype=np.uint8).reshape(len(arr), k)
            return out.reshape(-1), None, None
        return _values(arr.to_pylist(), signed, weight_floats)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        _, offbuf, data = arr.buffers()
        width = np.int32 if pa.types.is_binary(t) else np.int64
        offs = np.frombuffer(offbuf, dtype=width, count=len(arr) + 1, offset=arr.offset * np.dtype(width).itemsize)
        if len(arr) and data is not None and bool((np.diff(offs) == WIDTH).all()):
            return memoryview(data)[int(offs[0]):int(offs[-1])], None, None
        return _values(arr.to_pylist(), signed, weight_floats)
    if pa.types.is_decimal(t) and t.scale == 0 and t.bit_width in (128, 256):
        words = t.bit_width // 64
        data = arr.buffers()[1]
        le = np.frombuffer(data, dtype="<u8", count=words * (arr.offset + len(arr)))[words * arr.offset:]
        le = le.reshape(len(arr), words)
        neg = (le[:, words - 1] >> np.uint64(63)) != 0
        if neg.any():
            if not signed:
                i = int(np.argmax(neg))
                raise BadValue("negative", str(arr[i].as_py()), "must be >= 0", i)
            return _values(arr.to_pylist(), signed, weight_floats)
        out = np.zeros((len(arr), 4), dtype=">u8")
        for k in range(words):
            out[:, 3 - k] = le[:, k]
        return out.view(np.uint8).reshape(-1), None, None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return _numpy(np, arr.to_numpy(zero_copy_only=False), signed, weight_floats)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        import pyarrow.compute as pc
        pattern = "^-?[0-9]{1,18}$" if signed else "^[0-9]{1,19}$"
        if len(arr) and pc.all(pc.match_substring_regex(arr, pattern)).as_py():
            try:  # short decimal strings (most amounts, in any unit but wei): one vectorised cast
                ints = pc.cast(arr, pa.int64() if signed else pa.uint64()).to_numpy(zero_copy_only=False)
                return _numpy(np, ints, signed, weight_floats)
            except (pa.ArrowInvalid, OverflowError):
                pass
        return _values(arr.to_pylist(), signed, weight_floats)
    return _values(arr.to_pylist(), signed, weight_floats)


def ints_of(buf: Any, n: int, width: int = WIDTH) -> list[int]:
    """n big-endian unsigned integers of width bytes each, from buf, as Python ints."""
    mv = memoryview(buf).cast("B")
    np = _np()
    if np is not None and n and width % 8 == 0:
        words = np.frombuffer(mv, dtype=">u8", count=n * width // 8).reshape(n, width // 8)
        if not words[:, :-1].any():  # every value below 2^64 (small amounts): one tolist
            return words[:, -1].astype(np.uint64).tolist()
    frm = int.from_bytes
    return [frm(mv[i:i + width], "big") for i in range(0, n * width, width)]
