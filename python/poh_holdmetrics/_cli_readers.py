"""Reading hold files for the command line: CSV (pyarrow's streaming reader, or the csv
module), JSON Lines and Parquet, streamed as Chunks of columns so memory stays bounded
whatever the file size; the progress bar that follows the bytes read.

A Reader owns one file (or ``-``, standard input; either may be gzip-compressed): it
picks the reader for the format, maps the file's columns onto FIELDS (refusing a mapping
that could misread the file: see _columns_of), and reports a bad row, a byte that is not
UTF-8 included, as a CliError naming the file, line and field (or, with skip_invalid,
counts it). Rows are parsed into typed arrays by _RowBuffer; times by
_time.parse_time_field. Nothing here scores: _cli_scoring does.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any, TextIO

from ._cli_errors import CliError
from ._time import parse_time_field

FIELDS = ("token_id", "holder_id", "start", "end", "weight")
OPTION = {"token_id": "--token-col", "holder_id": "--holder-col", "start": "--start-col", "end": "--end-col",
          "weight": "--weight-col"}
STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
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
                 engine: str, delimiter: str | None, exact: bool = False, explicit: frozenset[str] = frozenset(),
                 ignore: frozenset[str] = frozenset()) -> None:
        # mapping: field -> column ("" = the file has none); explicit: the fields whose column
        # an option named (it must exist); ignore: columns not to check (--ignore-cols).
        self.source = path
        self.path = "<stdin>" if path == STDIN else path  # as errors name it
        self.fmt, self.mapping, self.explicit, self.ignore = fmt, mapping, explicit, ignore
        self.exact = exact  # weights kept exact: decimal text, ints
        self.chunk_rows, self.skip_invalid, self.engine = chunk_rows, skip_invalid, engine
        name = path.lower().removesuffix(".gz")
        self.delimiter = delimiter or ("\t" if name.endswith(".tsv") else ",")
        self.size = os.path.getsize(path) if path != STDIN and os.path.isfile(path) else 0
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

    def _open(self, count: bool = True) -> Any:
        """The file's bytes (decompressed when they are gzip), as a buffered binary stream;
        count: the progress bar follows it (the compressed bytes read)."""
        if self.source == STDIN:
            raw: Any = _Unclosed(sys.stdin.buffer)
        else:
            try:
                raw = open(self.source, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
            except OSError as e:
                raise CliError(f"{self.path}: cannot open: {e.strerror or e}") from None
        counter = _CountingReader(raw)
        if count:
            self.counter = counter
        src: Any = io.BufferedReader(counter, 1 << 20)
        try:
            magic = src.peek(2)[:2]
        except OSError as e:
            src.close()
            raise CliError(f"{self.path}: cannot read: {e.strerror or e}") from None
        if magic == _GZIP_MAGIC:
            import gzip
            src = _Gunzip(gzip.GzipFile(fileobj=src, mode="rb"), self.path)
        return src

    def chunks(self) -> Iterator[Chunk]:
        fmt = self.fmt
        if self.source == STDIN:
            src = self._open()
            if fmt == "parquet":
                src.close()
                raise CliError(f"{self.path}: Parquet cannot be read from standard input (it needs a seekable "
                               "file): pass its path")
            if fmt == "auto":  # from the content, as there is no suffix: "{" begins JSON Lines
                fmt = "jsonl" if src.peek(1 << 12).lstrip()[:1] == b"{" else "csv"
            yield from (self._jsonl(src) if fmt == "jsonl" else self._csv_python(0, src))
        elif fmt == "parquet":
            yield from self._parquet()
        elif fmt == "jsonl":
            yield from self._jsonl()
        elif self.engine != "python" and have_pyarrow():
            yield from self._csv_arrow()
        else:
            yield from self._csv_python(0)

    # CSV -------------------------------------------------------------------------------------

    def _header(self) -> list[str]:
        """The CSV header (line 1), read on its own (the arrow reader is given the file)."""
        import csv
        src = self._open(count=False)
        try:
            first = src.readline().removeprefix(_BOM)
        except _DecompressError as e:
            raise CliError(f"{self.path}:1: {e.detail}") from None
        finally:
            src.close()
        try:
            text = first.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CliError(f"{self.path}:1: header: {_utf8_message(e)}") from None
        try:
            return next(csv.reader([text], delimiter=self.delimiter), [])
        except csv.Error as e:
            raise CliError(f"{self.path}:1: header: is not valid CSV: {e}") from None

    def _columns_of(self, header: Sequence[str]) -> dict[str, str]:
        """{field: file column} for the fields the file has. A column an option named must
        exist, and so must start's. A file with columns this command does not read must have
        a column for every field (or the field declared absent with '', or those columns
        named with --ignore-cols): a misspelt "wieght" must not silently mean weight 1.0."""
        have = set(header)
        cols: dict[str, str] = {}
        missing = []
        for f in FIELDS:
            c = self.mapping[f]
            if not c:
                continue
            if c in have:
                if header.count(c) > 1:
                    raise CliError(f"{self.path}: column {c!r} appears {header.count(c)} times in the header: which "
                                   f"one holds {f} is ambiguous")
                cols[f] = c
            elif f in self.explicit:
                raise CliError(f"{self.path}: no column {c!r} ({OPTION[f]} {c}); the columns are "
                               f"{', '.join(header) or 'none'}")
            elif f == "start":
                raise CliError(f"{self.path}: no {c!r} column (the start time; map another column with --start-col); "
                               f"columns are {', '.join(header) or 'none'}")
            else:
                missing.append(f)
        unread = [c for c in header if c not in cols.values() and c not in self.ignore]
        if missing and unread:
            raise CliError(f"{self.path}: {_unread_message(unread, missing, self.mapping, list(cols.values()))}")
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
                    src,
                    read_options=pacsv.ReadOptions(block_size=max(1 << 16, self.chunk_rows * 48), encoding="utf8"),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                    convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(cols.values()),
                                                         strings_can_be_null=False))
            except (pa.ArrowInvalid, pa.ArrowTypeError, _DecompressError):
                reader = None
                fallback = True
            while reader is not None:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, pa.ArrowTypeError, _DecompressError):
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
            # A value pyarrow cannot convert (an ISO time, a float time, garbage, bytes that
            # are not UTF-8) or gzip data that ends early: the csv-module reader takes over
            # at the first row not yet scored, and reports bad rows precisely.
            yield from self._csv_python(rows)

    def _csv_python(self, skip_rows: int, src: Any = None) -> Iterator[Chunk]:
        import csv
        src = self._open() if src is None else src
        bad_utf8: dict[int, tuple[int, int]] = {}  # line -> its first byte that is not UTF-8, offset
        reader = csv.reader(_decoded_lines(src, bad_utf8), delimiter=self.delimiter)
        line = 0
        try:
            try:
                header = next(reader, [])
            except csv.Error as e:
                raise CliError(f"{self.path}:1: header: is not valid CSV: {e}") from None
            if bad_utf8:
                raise CliError(f"{self.path}:1: header: {_utf8_detail(bad_utf8[1])}")
            cols = self._columns_of(header)
            idx = {f: header.index(c) for f, c in cols.items()}
            for _ in range(skip_rows):
                if next(reader, None) is None:
                    return
            bad_utf8.clear()  # bytes in columns the arrow reader did not read
            rows = skip_rows
            width = len(header)
            buf = _RowBuffer(cols, idx, self.exact)
            while True:  # once, unless a record is not CSV: then on after it
                try:
                    for rec in reader:
                        line = reader.line_num
                        if not rec:  # a blank line
                            continue
                        rows += 1
                        # The csv module reads a record's lines only: bad_utf8 holds this one's.
                        if bad_utf8 and self._bad_bytes(rec, idx, bad_utf8):
                            continue
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
                    break
                except csv.Error as e:
                    line = reader.line_num
                    bad_utf8.clear()
                    self.bad(line, "row", f"is not valid CSV: {e}")
            if len(buf):
                yield buf.take()
            self.rows_read = rows
        except _DecompressError as e:
            raise CliError(f"{self.path}:{line + 1}: {e.detail}") from None
        finally:
            src.close()

    def _bad_bytes(self, rec: list[str], idx: dict[str, int], bad_utf8: dict[int, tuple[int, int]]) -> bool:
        """Whether a field this command reads of the record holds a byte that is not UTF-8
        (reported, at the record's lowest such line; bad_utf8, its lines', is emptied).
        Other columns' bytes do not matter, as with the arrow reader, which converts only
        the columns it reads."""
        try:
            for f, i in idx.items():
                v = rec[i] if i < len(rec) else ""
                if not v.isascii() and _has_surrogate(v):
                    line = min(bad_utf8)
                    self.bad(line, f, _utf8_detail(bad_utf8[line]))
                    return True
            return False
        finally:
            bad_utf8.clear()

    # JSON Lines ------------------------------------------------------------------------------

    def _jsonl(self, src: Any = None) -> Iterator[Chunk]:
        src = self._open() if src is None else src
        used = {f: c for f, c in self.mapping.items() if c}
        names = frozenset(used.values())
        buf = _RowBuffer(used, exact=self.exact)
        line = 0
        try:
            for line, raw in enumerate(src, 1):
                if line == 1:
                    raw = raw.removeprefix(_BOM)
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    self.bad(line, "row", _utf8_message(e))
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    self.bad(line, "row", f"invalid JSON: {e.msg} (column {e.colno})")
                    continue
                if not isinstance(obj, dict):
                    self.bad(line, "row", f"must be a JSON object, not {type(obj).__name__}")
                    continue
                if not names.issuperset(obj):
                    unread = [k for k in obj if k not in names and k not in self.ignore]
                    missing = [f for f, c in used.items() if c not in obj]
                    if unread and missing:
                        self.bad(line, "row", _unread_message(unread, missing, used, [c for c in used.values()
                                                                                      if c in obj], "key"))
                        continue
                err = buf.add(obj, used, line)
                if err is not None:
                    self.bad(line, err[0], err[1])
                if len(buf) >= self.chunk_rows:
                    yield buf.take()
                    self.rows_read += self.chunk_rows
            n = len(buf)
            if n:
                yield buf.take()
                self.rows_read += n
        except _DecompressError as e:
            raise CliError(f"{self.path}:{line + 1}: {e.detail}") from None
        finally:
            src.close()

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


# --- bytes: UTF-8, gzip, standard input ------------------------------------------------------

_BOM = b"\xef\xbb\xbf"


def _decoded_lines(src: Any, bad: dict[int, tuple[int, int]]) -> Iterator[str]:
    """The lines of a binary stream as text for the csv module (a BOM dropped). A line that
    is not UTF-8 is decoded with surrogateescape, so that its bad bytes stay visible, and
    bad[line] records its first bad byte and its offset; the reader decides whether it matters."""
    for n, raw in enumerate(src, 1):
        if n == 1:
            raw = raw.removeprefix(_BOM)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            bad[n] = (raw[e.start], e.start)
            yield raw.decode("utf-8", "surrogateescape")


def _has_surrogate(text: str) -> bool:
    """Whether text holds a byte that was not UTF-8 (surrogateescape's U+DC80..U+DCFF; a
    UTF-8 decoder never yields a surrogate otherwise)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _utf8_detail(bad: tuple[int, int]) -> str:
    """bad: (the byte, its offset in the line)."""
    return f"is not valid UTF-8 (byte 0x{bad[0]:02x} at byte {bad[1] + 1} of the line); the input must be UTF-8"


def _utf8_message(e: UnicodeDecodeError) -> str:
    return _utf8_detail((e.object[e.start], e.start))


def _unread_message(unread: Sequence[str], missing: Sequence[str], mapping: dict[str, str], read: Sequence[str],
                    what: str = "column") -> str:
    """Why a file (or a JSON object) is refused: it has columns this command does not read
    while a field has none, so a misspelt one cannot be told from an absent one."""
    names = ", ".join(repr(c) for c in unread)
    many = "s" if len(unread) > 1 else ""
    absent = [f for f in missing if f != "start"]  # start cannot be absent
    fix = f"map {'it' if len(missing) == 1 else 'them'} ({', '.join(f'{OPTION[f]} NAME' for f in missing)})"
    if absent:
        flags = " ".join(f"{OPTION[f]} ''" for f in absent)
        fix += f", declare {'it' if len(absent) == 1 else 'them'} absent ({flags})"
    return (f"{what}{many} {names} {'are' if many else 'is'} not read, and there is no "
            f"{' or '.join(repr(mapping[f]) for f in missing)} {what}: {fix} or ignore the {what}{many} "
            f"(--ignore-cols {','.join(unread)}); {what}s read: {', '.join(read) or 'none'}")


class _DecompressError(CliError):
    """gzip data that is corrupt or truncated; the reader adds the line it reached."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.detail = detail


class _Gunzip(io.BufferedIOBase):
    """A gzip stream whose decoding errors are _DecompressErrors; closing it closes the
    compressed stream too (GzipFile leaves a fileobj open)."""

    def __init__(self, f: Any, path: str) -> None:
        self._f, self._path = f, path

    def _guard(self, fn: Any, *args: Any) -> Any:
        import zlib
        try:
            return fn(*args)
        except (OSError, EOFError, zlib.error) as e:
            raise _DecompressError(self._path, f"not valid gzip data ({e})") from None

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        return self._guard(self._f.read, n)

    def read1(self, n: int = -1) -> bytes:
        return self._guard(self._f.read1, n)

    def readinto(self, b: Any) -> int:
        return self._guard(self._f.readinto, b)

    def readline(self, limit: int | None = -1) -> bytes:
        return self._guard(self._f.readline, limit)

    def peek(self, n: int = 0) -> bytes:
        return self._guard(self._f.peek, n)

    def seekable(self) -> bool:
        return self._f.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._guard(self._f.seek, offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        if not self.closed:
            inner = self._f.fileobj
            self._f.close()
            if inner is not None:
                inner.close()
        super().close()


class _Unclosed:
    """Standard input as _CountingReader's file: read, never closed (it is not ours)."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def readinto(self, b: Any) -> int:
        return self._f.readinto(b)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass


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
    p = Path(path)
    suffix = (Path(p.stem).suffix if p.suffix.lower() == ".gz" else p.suffix).lower()  # holds.csv.gz is CSV
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
