"""Reading hold files for the command line: CSV (pyarrow's streaming reader, or the csv
module), JSON Lines and Parquet, streamed as Chunks of columns so memory stays bounded
whatever the file size; the progress bar that follows the bytes read.

A Reader owns one file: it picks the reader for the format, maps the file's columns onto
FIELDS, and reports a bad row as a CliError naming the file, line and field (or, with
skip_invalid, counts it). Rows are parsed into typed arrays by _RowBuffer; times by
_time.parse_time_field. Nothing here scores: _cli_scoring does.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any, TextIO

from ._cli_errors import CliError
from ._time import parse_time_field

FIELDS = ("token_id", "holder_id", "start", "end", "weight")
DEFAULT_CHUNK_ROWS = 65536
_INT64_SAFE = 2**62  # times beyond this cannot even be stored (the valid range ends near 2**38)
MAX_REPORTED_SKIPS = 5


# --- files as chunks ------------------------------------------------------------------------

class Chunk:
    """Rows of one file as columns named like FIELDS (numpy/pyarrow arrays or lists; end
    is a masked array, pyarrow array with nulls, or a list with None for open holds).
    ``lines[i]`` (or ``first_line + i`` when lines is None) locates row i in the file."""

    __slots__ = ("cols", "n", "first_line", "lines")

    def __init__(self, cols: dict[str, Any], n: int, first_line: int, lines: Any = None) -> None:
        self.cols, self.n, self.first_line, self.lines = cols, n, first_line, lines

    def line(self, i: int) -> int:
        return int(self.lines[i]) if self.lines is not None else self.first_line + i

    def slice(self, lo: int, hi: int) -> Chunk:
        cols = {k: v[lo:hi] for k, v in self.cols.items()}
        lines = self.lines[lo:hi] if self.lines is not None else None
        return Chunk(cols, hi - lo, self.first_line + lo, lines)


class Reader:
    """Streams one file as Chunks. A bad row raises CliError naming the file, line and
    field; with skip_invalid it is counted (``skipped``) and the first few are kept
    (``examples``)."""

    def __init__(self, path: str, fmt: str, mapping: dict[str, str], chunk_rows: int, skip_invalid: bool,
                 engine: str, delimiter: str | None, exact: bool = False) -> None:
        self.path, self.fmt, self.mapping = path, fmt, mapping
        self.exact = exact  # weights kept exact: decimal text, ints
        self.chunk_rows, self.skip_invalid, self.engine = chunk_rows, skip_invalid, engine
        self.delimiter = delimiter or ("\t" if path.lower().endswith(".tsv") else ",")
        self.size = os.path.getsize(path) if os.path.isfile(path) else 0
        self.counter: _CountingReader | None = None
        self.skipped = 0
        self.examples: list[str] = []
        self.rows_read = 0

    @property
    def bytes_read(self) -> int:
        return self.counter.count if self.counter is not None else 0

    def bad(self, line: int, field: str, message: str) -> None:
        where = f"{self.path}:{line}" if self.fmt != "parquet" else f"{self.path}: row {line}"
        if not self.skip_invalid:
            raise CliError(f"{where}: {field}: {message}")
        self.skipped += 1
        if len(self.examples) < MAX_REPORTED_SKIPS:
            self.examples.append(f"{where}: {field}: {message}")

    def _open(self) -> Any:
        try:
            raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
        except OSError as e:
            raise CliError(f"{self.path}: cannot open: {e.strerror or e}") from None
        self.counter = _CountingReader(raw)
        return self.counter

    def chunks(self) -> Iterator[Chunk]:
        if self.fmt == "parquet":
            yield from self._parquet()
        elif self.fmt == "jsonl":
            yield from self._jsonl()
        elif self.engine != "python" and have_pyarrow():
            yield from self._csv_arrow()
        else:
            yield from self._csv_python(0)

    # CSV -------------------------------------------------------------------------------------

    def _header(self) -> list[str]:
        import csv
        with open(self.path, newline="", encoding="utf-8-sig") as f:
            try:
                return next(csv.reader(f, delimiter=self.delimiter))
            except StopIteration:
                return []

    def _columns_of(self, header: Sequence[str]) -> dict[str, str]:
        """{field: file column} for the fields present; start is required."""
        have = set(header)
        cols = {f: c for f, c in self.mapping.items() if c in have}
        if "start" not in cols:
            raise CliError(f"{self.path}: no {self.mapping['start']!r} column (the start time; map another column "
                           f"with --start-col); columns are {', '.join(header) or 'none'}")
        return cols

    def _csv_arrow(self) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        header = self._header()
        cols = self._columns_of(header)
        wtype = pa.string() if self.exact else pa.float64()
        types = {cols[f]: t for f, t in (("start", pa.int64()), ("end", pa.int64()), ("weight", wtype),
                                         ("token_id", pa.string()), ("holder_id", pa.string())) if f in cols}
        src = self._open()
        rows = 0
        fallback = False
        reader = None
        try:
            try:
                reader = pacsv.open_csv(
                    io.BufferedReader(src, 1 << 20),
                    read_options=pacsv.ReadOptions(block_size=max(1 << 16, self.chunk_rows * 48), encoding="utf8"),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                    convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(cols.values()),
                                                         strings_can_be_null=False))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                reader = None
                fallback = True
            while reader is not None:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    fallback = True
                    break
                n = batch.num_rows
                out: dict[str, Any] = {}
                for f, c in cols.items():
                    col = batch.column(c)
                    if f == "weight":
                        col = _default_weight(col, self.exact)
                    out[f] = col
                yield Chunk(out, n, 2 + rows)  # line 1 is the header
                rows += n
                self.rows_read = rows
        finally:
            # Close the streaming reader before its source: its read-ahead thread reads
            # the Python file, and one still running at interpreter exit aborts the
            # process ("terminate called without an active exception").
            if reader is not None:
                reader.close()
            src.close()
        if fallback:
            # A value pyarrow cannot convert (an ISO time, a float time, garbage): the
            # csv-module reader takes over at the first row not yet scored, and reports
            # bad rows precisely.
            yield from self._csv_python(rows)

    def _csv_python(self, skip_rows: int) -> Iterator[Chunk]:
        import csv
        src = self._open()
        text = io.TextIOWrapper(io.BufferedReader(src, 1 << 20), encoding="utf-8-sig", newline="")
        try:
            reader = csv.reader(text, delimiter=self.delimiter)
            header = next(reader, [])
            cols = self._columns_of(header)
            idx = {f: header.index(c) for f, c in cols.items()}
            for _ in range(skip_rows):
                if next(reader, None) is None:
                    return
            rows = skip_rows
            width = len(header)
            buf = _RowBuffer(cols, idx, self.exact)
            for rec in reader:
                line = reader.line_num
                if not rec:  # a blank line
                    continue
                rows += 1
                if len(rec) != width:
                    self.bad(line, "row", f"has {len(rec)} fields, the header has {width}")
                    continue
                if not buf.add_csv(rec, line):
                    err = buf.add(rec, idx, line)  # the careful path: converts or says why not
                    if err is not None:
                        self.bad(line, err[0], err[1])
                if len(buf) >= self.chunk_rows:
                    yield buf.take()
                    self.rows_read = rows
            if len(buf):
                yield buf.take()
            self.rows_read = rows
        finally:
            text.close()

    # JSON Lines ------------------------------------------------------------------------------

    def _jsonl(self) -> Iterator[Chunk]:
        src = self._open()
        text = io.TextIOWrapper(io.BufferedReader(src, 1 << 20), encoding="utf-8-sig")
        cols = dict(self.mapping)
        idx = {f: c for f, c in cols.items()}
        buf = _RowBuffer(cols, exact=self.exact)
        try:
            for line, raw in enumerate(text, 1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as e:
                    self.bad(line, "row", f"invalid JSON: {e.msg} (column {e.colno})")
                    continue
                if not isinstance(obj, dict):
                    self.bad(line, "row", f"must be a JSON object, not {type(obj).__name__}")
                    continue
                err = buf.add(obj, idx, line)
                if err is not None:
                    self.bad(line, err[0], err[1])
                if len(buf) >= self.chunk_rows:
                    yield buf.take()
                    self.rows_read += self.chunk_rows
            n = len(buf)
            if n:
                yield buf.take()
                self.rows_read += n
        finally:
            text.close()

    # Parquet ---------------------------------------------------------------------------------

    def _parquet(self) -> Iterator[Chunk]:
        if not have_pyarrow():
            raise CliError(f"{self.path}: reading Parquet needs pyarrow (pip install pyarrow)")
        import pyarrow.parquet as pq
        src = self._open()
        try:
            try:
                pf = pq.ParquetFile(src)
            except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
                raise CliError(f"{self.path}: not a readable Parquet file: {e}") from None
            cols = self._columns_of(pf.schema_arrow.names)
            rows = 0
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=list(cols.values())):
                out: dict[str, Any] = {}
                for f, c in cols.items():
                    col = batch.column(c)
                    if f == "weight":
                        col = _default_weight(col, self.exact)
                    out[f] = col
                yield Chunk(out, batch.num_rows, 1 + rows)  # "row" numbers, from 1
                rows += batch.num_rows
                self.rows_read = rows
        finally:
            src.close()


class _RowBuffer:
    """Accumulates parsed rows of one chunk in typed arrays (no per-row Python objects
    survive the chunk except the id strings of the chunk itself)."""

    def __init__(self, cols: dict[str, str], positions: dict[str, int] | None = None, exact: bool = False) -> None:
        self.fields = cols
        self.pos = positions or {}
        self.exact = exact  # weights as read (decimal text, ints), for exact scoring
        self._reset()

    def add_csv(self, rec: list[str], line: int) -> bool:
        """The common CSV row (integer times, a plain float weight) in one go; False when
        the row needs the careful path (add), having added nothing."""
        pos = self.pos
        try:
            s = int(rec[pos["start"]])
            i = pos.get("end")
            ev = rec[i] if i is not None else ""
            e = int(ev) if ev else -1
            i = pos.get("weight")
            wv = rec[i] if i is not None else ""
            w: Any = (wv or "1") if self.exact else (float(wv) if wv else 1.0)
        except ValueError:
            return False
        if not (-_INT64_SAFE < s < _INT64_SAFE and -_INT64_SAFE < e < _INT64_SAFE):
            return False
        i = pos.get("token_id")
        if i is not None:
            self.tok.append(rec[i])
        i = pos.get("holder_id")
        if i is not None:
            self.hol.append(rec[i])
        self.start.append(s)
        self.end.append(e)
        self.has_end.append(1 if ev else 0)
        self.weight.append(w)
        self.lines.append(line)
        return True

    def _reset(self) -> None:
        from array import array
        self.start, self.end, self.has_end = array("q"), array("q"), array("B")
        self.weight: Any = [] if self.exact else array("d")
        self.lines = array("q")
        self.tok: list[str] = []
        self.hol: list[str] = []

    def __len__(self) -> int:
        return len(self.start)

    def add(self, rec: Any, idx: dict[str, Any], line: int) -> tuple[str, str] | None:
        """Parse one row (a CSV record indexed by position, or a JSON object by key);
        returns (field, message) for a bad field, and then adds nothing."""
        get = rec.get if isinstance(rec, dict) else None

        def value(f: str) -> Any:
            i = idx.get(f)
            if i is None:
                return None
            return get(i) if get is not None else rec[i]

        v = value("start")
        try:
            s = parse_time_field(v)
        except ValueError:
            return "start", f"{v!r} is not Unix seconds or an ISO 8601 time"
        if s is None:
            return "start", "is missing"
        if not -_INT64_SAFE < s < _INT64_SAFE:
            return "start", f"{value('start')!r} is far outside the valid time range"
        v = value("end")
        try:
            e = parse_time_field(v)
        except ValueError:
            return "end", f"{v!r} is not Unix seconds or an ISO 8601 time (empty = still open)"
        if e is not None and not -_INT64_SAFE < e < _INT64_SAFE:
            return "end", f"{v!r} is far outside the valid time range"
        v = value("weight")
        if v is None or v == "":
            w = 1 if self.exact else 1.0
        elif self.exact and (isinstance(v, str) or isinstance(v, (int, float)) and not isinstance(v, bool)):
            w = v  # checked exactly when scored (decimal text, an int, an integral float)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            w = float(v)
        else:
            try:
                w = float(v) if isinstance(v, str) else float("invalid")
            except ValueError:
                return "weight", f"{v!r} is not a number"
        ids = []
        for f in ("token_id", "holder_id"):
            v = value(f)
            if v is None and f not in idx:
                ids.append(None)
                continue
            if v is None:
                return f, "is missing"
            if not isinstance(v, str):
                return f, f"{v!r} is not a string"
            ids.append(v)
        self.start.append(s)
        self.end.append(-1 if e is None else e)
        self.has_end.append(e is not None)
        self.weight.append(w)
        self.lines.append(line)
        if ids[0] is not None:
            self.tok.append(ids[0])
        if ids[1] is not None:
            self.hol.append(ids[1])
        return None

    def take(self) -> Chunk:
        n = len(self.start)
        cols: dict[str, Any] = {"start": self.start, "weight": self.weight}
        if "end" in self.fields:
            np = numpy_or_none()
            if np is not None:
                cols["end"] = np.ma.MaskedArray(np.frombuffer(self.end, dtype=np.int64),
                                                mask=np.frombuffer(self.has_end, dtype=np.uint8) == 0)
            else:
                cols["end"] = [e if h else None for e, h in zip(self.end, self.has_end)]
        if "token_id" in self.fields:
            cols["token_id"] = self.tok
        if "holder_id" in self.fields:
            cols["holder_id"] = self.hol
        chunk = Chunk(cols, n, int(self.lines[0]) if n else 0, self.lines)
        self._reset()
        return chunk


def _default_weight(col: Any, exact: bool) -> Any:
    """A weight column with empty cells as the default weight 1 (exact: "" and nulls of text
    columns as "1", so that the exact parser sees a number)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    t = col.type
    if exact and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        col = pc.if_else(pc.equal(col, ""), "1", col) if len(col) else col
        return pc.fill_null(col, "1") if col.null_count else col
    if not col.null_count:
        return col
    if pa.types.is_integer(t):
        return pc.fill_null(col, 1)
    if pa.types.is_floating(t) or not exact:
        return pc.fill_null(col, 1.0)
    return col  # nulls of other exact types are reported as missing


# --- chain data (transfers, blocks, opening balances) as whole tables ------------------------

def read_tables(paths: Sequence[str], forced: str, text_columns: Sequence[str], what: str) -> tuple[Any, list]:
    """CSV / Parquet files (a Parquet path may be a directory of them) as one pyarrow Table,
    and (path, rows, format) per file, to name a row of the whole table. text_columns are
    read as text from CSV (amounts above 2^63 and ids that look numeric stay exact)."""
    if not have_pyarrow():
        raise CliError(f"{what} needs pyarrow (pip install pyarrow)")
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    tables, parts = [], []
    for path in paths:
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        fmt = "parquet" if os.path.isdir(path) else format_of(path, forced)
        try:
            if fmt == "parquet":
                t = pq.read_table(path)
            elif fmt == "csv":
                delim = "\t" if path.lower().endswith(".tsv") else ","
                with open(path, newline="", encoding="utf-8-sig") as f:
                    import csv
                    header = next(csv.reader(f, delimiter=delim), [])
                types = {c: pa.string() for c in header if c in text_columns}
                t = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delim),
                                   convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))
            else:
                raise CliError(f"{path}: {what} must be CSV or Parquet, not {fmt}")
        except (pa.ArrowInvalid, OSError) as e:
            raise CliError(f"{path}: cannot read {what}: {e}") from None
        tables.append(t)
        parts.append((path, t.num_rows, fmt))
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise CliError(f"{', '.join(paths)}: the {what} files do not have one schema: {e}") from None
    return table, parts


def where_row(parts: list, index: int) -> str:
    """The file and line (CSV) or row (Parquet, from 1) of row index of read_tables' table."""
    for path, rows, fmt in parts:
        if index < rows:
            return f"{path}:{index + 2}" if fmt == "csv" else f"{path}: row {index + 1}"
        index -= rows
    return parts[-1][0] if parts else "?"


class _CountingReader(io.RawIOBase):
    """A raw binary file that counts the bytes read (for the progress bar)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)
        self.count += n or 0
        return n

    def seekable(self) -> bool:  # Parquet readers seek (count then tracks the position)
        return self._f.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = self._f.seek(offset, whence)
        self.count = pos
        return pos

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        super().close()


def have_pyarrow() -> bool:
    """Whether pyarrow (with its CSV reader) can be imported: CSV and Parquet use it if so."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def numpy_or_none() -> Any:
    """numpy, or None without it (columns are then plain lists)."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def format_of(path: str, forced: str) -> str:
    """The input format of path: forced unless it is "auto", else from the suffix (csv by default)."""
    if forced != "auto":
        return forced
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    return "csv"


# --- progress -------------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s; only on a TTY."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._last = 0.0
        self._t0 = time.monotonic()
        self._drawn = False

    def update(self, name: str, done: int, total: int, rows: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        frac = min(1.0, done / total) if total > 0 else 0.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = rows / max(now - self._t0, 1e-9)
        self.stream.write(f"\r{name[-30:]:>30} [{bar}] {frac:6.1%} {rows:>12,} rows {rate:>12,.0f} rows/s")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
