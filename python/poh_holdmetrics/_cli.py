"""The ``poh-holdmetrics`` command (also ``python -m poh_holdmetrics``).

Exit codes: 0 success, 1 an error (a bad row, an unreachable daemon, ...), 2 a usage error.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any, TextIO

from ._config import DAEMON_KEYS, _SPEC, ConfigError, load_settings
from ._errors import HoldMetricsError, InvalidEventError

PROG = "poh-holdmetrics"
FIELDS = ("token_id", "holder_id", "start", "end", "weight")
DEFAULT_CHUNK_ROWS = 65536
_INT64_SAFE = 2**62  # times beyond this cannot even be stored (the valid range ends near 2**38)
MAX_REPORTED_SKIPS = 5

EPILOG = """\
examples:
  poh-holdmetrics score holds.csv                       total hold score of a file
  poh-holdmetrics score --by-holder --top 10 holds.csv  the 10 best holders
  poh-holdmetrics score --by-holder --token USDC --format csv a.csv b.parquet
  poh-holdmetrics serve --data-dir /var/lib/holdmetrics run the daemon (holdmetricsd)
  poh-holdmetrics top -n 5                              ask a running daemon for its top 5
  poh-holdmetrics stats --url http://10.0.0.5:9100      every holder of a remote daemon

settings come from (highest first) options, POH_HOLDMETRICS_* environment variables,
the --config file (TOML, or YAML with PyYAML; also $POH_HOLDMETRICS_CONFIG), defaults.
"""

SCORE_HELP = """\
Score hold events read from files: CSV (header row), JSON Lines (one object per line) or
Parquet (needs pyarrow); the format follows the suffix (.csv .tsv .jsonl .ndjson .json
.parquet .pq) unless --input-format says otherwise.

A row is one hold: token_id, holder_id, start, end, weight (rename them with the --*-col
options). Times are Unix seconds (floats are floored) or ISO 8601 (naive = UTC); an empty
or missing end is a hold still open at --now; an empty or missing weight is 1.0.

score = sum over rows of max(0, min(end or now, now) - start) * weight.

Files are streamed in chunks of --chunk-rows rows into columnar buffers (pyarrow's
streaming CSV reader when installed, else the csv module), so memory stays bounded
whatever the file size. A bad row stops with an error naming the file, line and field
(exit 1); --skip-invalid skips such rows and reports how many.
"""


class CliError(Exception):
    """An error to report as "poh-holdmetrics: error: ..." with exit code 1."""


class UsageError(CliError):
    """Options that do not go together: reported with the usage line, exit code 2."""


# --- small helpers ----------------------------------------------------------------------------

def parse_time_arg(value: str) -> int:
    """A --now value: Unix seconds or ISO 8601 (naive = UTC)."""
    try:
        return _time_value(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not Unix seconds or an ISO 8601 time") from None


def _time_value(v: str) -> int:
    """Whole Unix seconds from a text field (int, float floored, ISO 8601); ValueError else."""
    try:
        return int(v)
    except ValueError:
        pass
    try:
        f = float(v)
    except ValueError:
        f = None
    if f is not None:
        if not math.isfinite(f):
            raise ValueError(v)
        return math.floor(f)
    d = datetime.fromisoformat(v)
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return math.floor(d.timestamp())


def _int_at_least(lo: int, what: str):
    """An argparse type: an integer >= lo, else an error saying it must be `what`."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = lo - 1
        if n < lo:
            raise argparse.ArgumentTypeError(f"{value!r} must be {what}")
        return n

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonneg_int = _int_at_least(0, "an integer >= 0")


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


# --- reading files into columnar chunks -----------------------------------------------------

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
                 engine: str, delimiter: str | None) -> None:
        self.path, self.fmt, self.mapping = path, fmt, mapping
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
        elif self.engine != "python" and _have_pyarrow():
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
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
        header = self._header()
        cols = self._columns_of(header)
        types = {cols[f]: t for f, t in (("start", pa.int64()), ("end", pa.int64()), ("weight", pa.float64()),
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
                    if f == "weight" and col.null_count:
                        col = pc.fill_null(col, 1.0)
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
            buf = _RowBuffer(cols, idx)
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
        buf = _RowBuffer(cols)
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
        if not _have_pyarrow():
            raise CliError(f"{self.path}: reading Parquet needs pyarrow (pip install pyarrow)")
        import pyarrow.compute as pc
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
                    if f == "weight" and col.null_count:
                        col = pc.fill_null(col, 1.0)
                    out[f] = col
                yield Chunk(out, batch.num_rows, 1 + rows)  # "row" numbers, from 1
                rows += batch.num_rows
                self.rows_read = rows
        finally:
            src.close()


class _RowBuffer:
    """Accumulates parsed rows of one chunk in typed arrays (no per-row Python objects
    survive the chunk except the id strings of the chunk itself)."""

    def __init__(self, cols: dict[str, str], positions: dict[str, int] | None = None) -> None:
        self.fields = cols
        self.pos = positions or {}
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
            w = float(wv) if wv else 1.0
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
        self.weight, self.lines = array("d"), array("q")
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
            s = _field_time(v)
        except ValueError:
            return "start", f"{v!r} is not Unix seconds or an ISO 8601 time"
        if s is None:
            return "start", "is missing"
        if not -_INT64_SAFE < s < _INT64_SAFE:
            return "start", f"{value('start')!r} is far outside the valid time range"
        v = value("end")
        try:
            e = _field_time(v)
        except ValueError:
            return "end", f"{v!r} is not Unix seconds or an ISO 8601 time (empty = still open)"
        if e is not None and not -_INT64_SAFE < e < _INT64_SAFE:
            return "end", f"{v!r} is far outside the valid time range"
        v = value("weight")
        if v is None or v == "":
            w = 1.0
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
            np = _numpy()
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


def _field_time(v: Any) -> int | None:
    """A time field (None for empty or null); ValueError for anything else."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(v)
        return math.floor(v)
    if isinstance(v, str):
        v = v.strip()
        return None if v == "" else _time_value(v)
    raise ValueError(v)


def _have_pyarrow() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _format_of(path: str, forced: str) -> str:
    if forced != "auto":
        return forced
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    return "csv"


# --- scoring --------------------------------------------------------------------------------

def _clip_to_now(cols: dict[str, Any], now: int) -> dict[str, Any]:
    """Closed holds ending after ``now`` cut at ``now`` (start too, if it is later), so the
    aggregator, which counts a closed hold in full, agrees with score-at-now."""
    if "end" not in cols:
        return cols
    np = _numpy()
    end = cols["end"]
    start = cols["start"]
    if np is None:
        ends = list(end)
        if not any(e is not None and e > now for e in ends):
            return cols
        new_end = [None if e is None else min(e, now) for e in ends]
        new_start = [s if e is None else min(s, e) for s, e in zip(start, new_end)]
        return {**cols, "start": new_start, "end": new_end}
    if type(end).__module__.startswith("pyarrow"):
        import pyarrow.compute as pc
        valid = np.asarray(end.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        e = np.asarray(pc.fill_null(end, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        valid = ~np.ma.getmaskarray(end)
        e = np.asarray(np.ma.getdata(end), dtype=np.int64)
    late = valid & (e > now)
    if not late.any():
        return cols
    s = np.asarray(start.to_numpy(zero_copy_only=False) if hasattr(start, "to_numpy") else start, dtype=np.int64)
    e = np.where(late, now, e)
    s = np.where(valid, np.minimum(s, e), s)
    return {**cols, "start": s, "end": np.ma.MaskedArray(e, mask=~valid)}


class Scorer:
    """Feeds chunks to calculate_score (and, ranking by holder, an Aggregator)."""

    def __init__(self, now: int, by_holder: bool, window: tuple[int, int] | None = None,
                 what: str = "--by-holder") -> None:
        from ._score import calculate_score
        self.calculate_score = calculate_score
        self.now = now
        self.window = window
        self.parts: list[float] = []  # one score per chunk: a few hundred for 10M rows
        self.rows = 0
        self.agg = None
        if by_holder:
            from ._aggregator import Aggregator
            try:
                # A campaign window clips each hold when it is recorded (O(1) per event);
                # with ends cut at now (_clip_to_now) rows equal the batch windowed score.
                self.agg = Aggregator(window=window)
            except HoldMetricsError as e:
                raise CliError(f"{what} needs the native library: {e}") from None

    def feed(self, chunk: Chunk, reader: Reader) -> None:
        pending = [chunk]
        while pending:
            c = pending.pop()
            if c.n == 0:
                continue
            if self.agg is not None and ("holder_id" not in c.cols or "token_id" not in c.cols):
                missing = "holder_id" if "holder_id" not in c.cols else "token_id"
                raise CliError(f"{reader.path}: --by-holder needs a {reader.mapping[missing]!r} column "
                               f"(map another with --{missing.split('_')[0]}-col)")
            try:
                s = self.calculate_score(c.cols, now=self.now, window=self.window)
            except InvalidEventError as e:
                if e.index < 0:
                    raise CliError(f"{reader.path}: {e}") from None
                i = e.index
                message = str(e).split(": ", 1)[1] if str(e).startswith(f"event {i}:") else str(e)
                reader.bad(c.line(i), e.field, message)
                # skip_invalid: rows before i are valid (errors name the first bad row)
                pending.append(c.slice(i + 1, c.n))
                pending.append(c.slice(0, i))
                continue
            self.parts.append(s)
            self.rows += c.n
            if self.agg is not None:
                # Batches of the aggregator's own chunk size: a larger batch is validated
                # again and re-sliced inside record_many_sync (row by row for the id
                # offsets); slices of our columns are views.
                from ._aggregator import CHUNK_ROWS
                for lo in range(0, c.n, CHUNK_ROWS):
                    part = c.slice(lo, min(lo + CHUNK_ROWS, c.n)) if c.n > CHUNK_ROWS else c
                    self.agg.record_many_sync(_clip_to_now(part.cols, self.now))

    @property
    def total(self) -> float:
        """The chunks' scores summed exactly (each chunk is summed in input order by the
        library, so the result is within an ulp or so of scoring the whole file at once)."""
        return math.fsum(self.parts)

    def close(self) -> None:
        if self.agg is not None:
            self.agg.close()


def _stat_rows(stats: list[Any]) -> list[dict[str, Any]]:
    return [{"rank": i, "holder_id": s.holder_id, "score": s.score, "total_seconds": s.total_seconds,
             "events": s.events, "open_holds": s.open_holds, "tokens": s.tokens}
            for i, s in enumerate(stats, 1)]


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return repr(round(v, 6)) if abs(v) < 1e15 else repr(v)  # no float noise digits
        return str(v)
    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float)) for r in rows) and rows != [] for c in columns]
    out.write("  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(columns, widths, numeric)).rstrip()
              + "\n")
    for row in cells:
        out.write("  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric)).rstrip()
                  + "\n")


def _print_rows(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO,
                meta: dict[str, Any] | None = None) -> None:
    if fmt == "json":
        json.dump({**(meta or {}), "holders": rows} if meta is not None else rows, out, indent=None)
        out.write("\n")
    elif fmt == "csv":
        import csv
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    else:
        _print_table(rows, columns, out)


RANK_COLUMNS = ("rank", "holder_id", "score", "total_seconds", "events", "open_holds", "tokens")


def _feed_files(args: argparse.Namespace, scorer: Scorer, progress: Progress) -> tuple[int, list[str]]:
    """Streams every input file through the scorer, chunk by chunk; returns the number of
    skipped rows and the first few of them (--skip-invalid)."""
    mapping = {"token_id": args.token_col, "holder_id": args.holder_col, "start": args.start_col,
               "end": args.end_col, "weight": args.weight_col}
    skipped = 0
    examples: list[str] = []
    for path in args.files:
        fmt = _format_of(path, args.input_format)
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        reader = Reader(path, fmt, mapping, args.chunk_rows, args.skip_invalid, args.engine, args.delimiter)
        for chunk in reader.chunks():
            scorer.feed(chunk, reader)
            progress.update(Path(path).name, reader.bytes_read, reader.size, scorer.rows + skipped + reader.skipped)
        progress.update(Path(path).name, reader.size, reader.size, scorer.rows + skipped + reader.skipped,
                        force=True)
        skipped += reader.skipped
        examples += reader.examples[:MAX_REPORTED_SKIPS - len(examples)]
    return skipped, examples


def cmd_score(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now = args.now if args.now is not None else int(time.time())
    if args.top is not None and not args.by_holder:
        raise UsageError("--top needs --by-holder")
    if args.token is not None and not args.by_holder:
        raise UsageError("--token needs --by-holder")
    show = args.progress if args.progress is not None else err.isatty()
    progress = Progress(err, show)
    scorer = Scorer(now, args.by_holder, args.window)
    try:
        skipped, examples = _feed_files(args, scorer, progress)
        progress.finish()
        if skipped:
            err.write(f"{PROG}: skipped {skipped} invalid row{'s' if skipped != 1 else ''}"
                      f" (--skip-invalid); the first:\n" + "".join(f"  {e}\n" for e in examples))
        meta = {"now": now, "rows": scorer.rows, "skipped": skipped}
        if not args.by_holder:
            score = scorer.total
            if args.format == "json":
                json.dump({**meta, "score": score}, out)
                out.write("\n")
            elif args.format == "csv":
                out.write("rows,skipped,now,score\n")
                out.write(f"{scorer.rows},{skipped},{now},{score!r}\n")
            else:
                _print_table([{"rows": scorer.rows, "skipped": skipped, "now": now, "score": score}],
                             ("rows", "skipped", "now", "score"), out)
            return 0
        agg = scorer.agg
        assert agg is not None
        n = args.top if args.top else max(len(agg), 1)
        try:
            stats = agg.top_n(n, now=now, token=args.token) if (args.top or args.token) else agg.snapshot(now)
        except InvalidEventError as e:
            raise CliError(str(e)) from None
        meta["token"] = args.token
        _print_rows(_stat_rows(stats), RANK_COLUMNS, args.format, out, meta)
        return 0
    finally:
        progress.finish()
        scorer.close()


# --- rewards --------------------------------------------------------------------------------

def parse_window_arg(value: str) -> tuple[int, int]:
    """``T0,T1`` (Unix seconds or ISO 8601 each) -> (t0, t1)."""
    parts = value.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"window {value!r}: expected T0,T1 (Unix seconds or ISO 8601)")
    try:
        t0, t1 = (parse_time_arg(p.strip()) for p in parts)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"window {value!r}: {e}") from None
    if t1 < t0:
        raise argparse.ArgumentTypeError(f"window {value!r}: end {t1} is before start {t0}")
    return t0, t1


def _pool_int(value: str) -> int:
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of base units") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return n


def _min_score(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(f):
        raise argparse.ArgumentTypeError(f"{value!r} must be finite")
    return f


def cmd_rewards(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._rewards import InfeasibleCapError, allocate_rewards, write_rewards_csv, write_rewards_json
    now = args.now if args.now is not None else int(time.time())
    if args.window is not None and args.window[0] > now:
        raise CliError(f"window starts at {args.window[0]}, after now {now}: nothing has been held in it yet")
    scorer = Scorer(now, True, args.window, what="rewards")
    show = args.progress if args.progress is not None else err.isatty()
    progress = Progress(err, show)
    try:
        skipped, _ = _feed_files(args, scorer, progress)
        progress.finish()
        if skipped:
            err.write(f"{PROG}: skipped {skipped} invalid row{'s' if skipped != 1 else ''} (--skip-invalid)\n")
        agg = scorer.agg
        assert agg is not None
        stats = agg.top_n(len(agg), now=now, token=args.token) if args.token else agg.snapshot(now)
        try:
            rows = allocate_rewards([(s.holder_id, s.score) for s in stats], args.pool, min_score=args.min_score,
                                    cap=args.cap, decimals=args.decimals)
        except InfeasibleCapError as e:
            raise CliError(f"--cap: {e}") from None
        except ValueError as e:
            raise CliError(str(e)) from None
        target: Any = out
        if args.output:
            target = args.output
        if args.format == "json":
            write_rewards_json(rows, target, decimals=args.decimals)
        elif args.format == "csv":
            write_rewards_csv(rows, target, decimals=args.decimals)
        else:
            from ._rewards import format_amount
            table = [{"holder_id": r.holder_id, "score": r.score, "share": float(r.share),
                      "amount": format_amount(r.amount, args.decimals)} for r in rows]
            if args.output:
                with open(args.output, "w", encoding="utf-8") as f:
                    _print_table(table, ("holder_id", "score", "share", "amount"), f)
            else:
                _print_table(table, ("holder_id", "score", "share", "amount"), out)
        if args.output:
            err.write(f"{PROG}: wrote {len(rows)} allocations summing to {sum(r.amount for r in rows)} "
                      f"to {args.output}\n")
        return 0
    finally:
        progress.finish()
        scorer.close()


# --- serve ----------------------------------------------------------------------------------

DAEMON_NAME = "holdmetricsd"


def find_daemon() -> str | None:
    """The holdmetricsd binary: the one bundled in the package (_bin/), else on $PATH."""
    bundled = Path(__file__).resolve().parent / "_bin" / DAEMON_NAME
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return shutil.which(DAEMON_NAME)


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    binary = find_daemon()
    if binary is None:
        raise CliError(f"{DAEMON_NAME} not found: looked for {Path(__file__).resolve().parent / '_bin' / DAEMON_NAME} "
                       f"and on $PATH. Build it with `make build` (bin/{DAEMON_NAME}) and put it on PATH, or "
                       "install a poh-holdmetrics wheel that bundles it")
    settings = _settings(args)
    extra = list(args.daemon_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    argv = [binary, *settings.daemon_args(), *extra]
    # The config file (ours may hold keys the daemon does not know) has been applied:
    # its values are in argv. The daemon still reads the POH_HOLDMETRICS_* variables.
    env = {k: v for k, v in os.environ.items() if k != "POH_HOLDMETRICS_CONFIG"}
    if args.dry_run:
        out.write(" ".join(argv) + "\n")
        return 0
    out.flush()
    err.flush()
    os.execve(binary, argv, env)
    return 1  # not reached


# --- top / stats ----------------------------------------------------------------------------

def _settings(args: argparse.Namespace) -> Any:
    explicit = {k: getattr(args, k) for k in _SPEC if getattr(args, k, None) is not None}
    return load_settings(args.config, **explicit)


def _get_json(url: str, settings: Any, timeout: float) -> Any:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if settings.auth_token_file:
        try:
            token = Path(settings.auth_token_file).read_text().strip()
        except OSError as e:
            raise CliError(f"auth_token_file {settings.auth_token_file}: {e.strerror or e}") from None
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace").strip()
        try:
            body = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            pass
        raise CliError(f"{url}: HTTP {e.code}: {body}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"{url}: cannot reach the daemon ({reason}); is holdmetricsd running? "
                       "(start it with `poh-holdmetrics serve`, or point --url at it)") from None
    except ValueError as e:
        raise CliError(f"{url}: not a JSON response: {e}") from None


def _query(args: argparse.Namespace, path: str, params: dict[str, Any], out: TextIO) -> int:
    from urllib.parse import urlencode
    settings = _settings(args)
    base = (args.url or settings.base_url).rstrip("/")
    q = {k: v for k, v in params.items() if v is not None}
    if args.now is not None:
        q["now"] = args.now
    url = base + path + ("?" + urlencode(q) if q else "")
    rows = _get_json(url, settings, args.timeout)
    if not isinstance(rows, list):
        raise CliError(f"{url}: unexpected response (expected a list of rows)")
    table = [{"rank": i, **{c: r.get(c) for c in RANK_COLUMNS[1:] + ("updated_at",)}} for i, r in enumerate(rows, 1)]
    _print_rows(table, RANK_COLUMNS + ("updated_at",), args.format, out)
    return 0


def cmd_top(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _query(args, "/v1/top", {"n": args.n, "token": args.token}, out)


def cmd_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _query(args, "/v1/stats", {}, out)


def cmd_version(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import __version__, native_version
    line = f"{PROG} {__version__}"
    try:
        line += f" (backend native, core {native_version()})"
    except HoldMetricsError as e:
        line += f" (backend python: {e})"
    out.write(line + f"; python {sys.version.split()[0]}\n")
    return 0


# --- argument parsing -----------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """The input options shared by score and rewards: format, column mapping, chunking."""
    m = p.add_argument_group("input")
    m.add_argument("--input-format", choices=("auto", "csv", "jsonl", "parquet"), default="auto",
                   help="input format (default: from the file suffix)")
    for f, flag in (("token_id", "--token-col"), ("holder_id", "--holder-col"), ("start", "--start-col"),
                    ("end", "--end-col"), ("weight", "--weight-col")):
        m.add_argument(flag, default=f, metavar="NAME", help=f"column holding {f} (default: {f})")
    m.add_argument("--delimiter", metavar="C", help="CSV delimiter (default: ',' or tab for .tsv)")
    m.add_argument("--skip-invalid", action="store_true", help="skip bad rows, count and report them (exit 0)")
    m.add_argument("--chunk-rows", type=_positive_int, default=DEFAULT_CHUNK_ROWS, metavar="N",
                   help=f"rows per chunk (memory bound; default {DEFAULT_CHUNK_ROWS})")
    m.add_argument("--engine", choices=("auto", "pyarrow", "python"), default="auto",
                   help="CSV reader: pyarrow's streaming reader (default when installed) or the csv module")
    pg = m.add_mutually_exclusive_group()
    pg.add_argument("--progress", dest="progress", action="store_true", default=None,
                    help="always show the progress bar (default: only when stderr is a terminal)")
    pg.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, formatter_class=_Formatter, epilog=EPILOG,
                                description="Hold scores (how much a wallet holds x how long) from files, "
                                            "and the holdmetricsd daemon.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="settings file, TOML or YAML (default: $POH_HOLDMETRICS_CONFIG)")

    s = sub.add_parser("score", parents=[common], help="score hold events in CSV / JSON Lines / Parquet files",
                       description=SCORE_HELP, formatter_class=_Formatter)
    s.add_argument("files", nargs="+", metavar="FILE", help="input files")
    s.add_argument("--now", type=parse_time_arg, metavar="TIME",
                   help="score as of TIME (Unix seconds or ISO 8601; default: the current time)")
    s.add_argument("--window", type=parse_window_arg, metavar="T0,T1",
                   help="campaign window [T0, T1): holds count only inside it (Unix seconds or ISO 8601)")
    s.add_argument("--by-holder", action="store_true", help="rank holders instead of printing the total")
    s.add_argument("--top", type=_positive_int, metavar="N", help="with --by-holder: only the N best holders")
    s.add_argument("--token", metavar="T", help="with --by-holder: rank holders of token T only")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    _add_input_args(s)
    s.set_defaults(func=cmd_score, parser=s)

    r = sub.add_parser("rewards", parents=[common], formatter_class=_Formatter,
                       help="split a reward pool exactly in proportion to hold scores",
                       description="Score the holds in FILE... per holder (optionally in a campaign window), "
                                   "then split --pool (an integer in the token's smallest unit, any size) "
                                   "in proportion to the scores: exact largest-remainder amounts that sum to "
                                   "the pool, ties by holder_id.")
    r.add_argument("files", nargs="+", metavar="FILE", help="input files")
    r.add_argument("--pool", type=_pool_int, required=True, metavar="N",
                   help="the pool in base units (e.g. wei), a whole number of any size")
    r.add_argument("--window", type=parse_window_arg, metavar="T0,T1",
                   help="campaign window [T0, T1): holds count only inside it (Unix seconds or ISO 8601)")
    r.add_argument("--now", type=parse_time_arg, metavar="TIME",
                   help="score as of TIME (default: the current time)")
    r.add_argument("--token", metavar="T", help="only holds of token T")
    r.add_argument("--min-score", type=_min_score, default=0.0, metavar="S",
                   help="holders scoring below S get nothing")
    r.add_argument("--cap", type=_pool_int, metavar="N", help="no holder gets more than N base units; "
                   "the excess is redistributed (an error if the pool cannot be split under the cap)")
    r.add_argument("--decimals", type=_nonneg_int, default=0, metavar="D",
                   help="the token's decimals, to print amounts as exact decimals")
    r.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    r.add_argument("-o", "--output", metavar="FILE", help="write the allocation to FILE instead of stdout")
    _add_input_args(r)
    r.set_defaults(func=cmd_rewards, parser=r)

    v = sub.add_parser("serve", parents=[common], formatter_class=_Formatter,
                       help="run the daemon (holdmetricsd) with these settings",
                       description="Run holdmetricsd, the gRPC + HTTP daemon, in place of this process. "
                                   "Settings from options, POH_HOLDMETRICS_* variables and --config become "
                                   "its flags; arguments after -- are passed to it unchanged.",
                       epilog="example: poh-holdmetrics serve --http-addr 127.0.0.1:9100 -- --max-batch 1000")
    for k in DAEMON_KEYS:
        flag = "--" + k.replace("_", "-")
        if _SPEC[k][1].__name__ == "_parse_bool":
            v.add_argument(flag, dest=k, action="store_const", const="true", help=_SPEC[k][3])
        else:
            v.add_argument(flag, dest=k, metavar="VALUE", help=f"{_SPEC[k][3]} (default {_SPEC[k][0]!r})")
    v.add_argument("--dry-run", action="store_true", help="print the daemon command line instead of running it")
    v.add_argument("daemon_args", nargs=argparse.REMAINDER, help="-- then flags for holdmetricsd")
    v.set_defaults(func=cmd_serve)

    q = argparse.ArgumentParser(add_help=False, parents=[common])
    q.add_argument("--url", help="daemon base URL (default: daemon_url, else http://<http_addr>)")
    q.add_argument("--http-addr", dest="http_addr", metavar="ADDR", help="daemon HTTP address (host:port)")
    q.add_argument("--now", type=parse_time_arg, metavar="TIME", help="rank as of TIME (default: the daemon's clock)")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    q.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="HTTP timeout (default 10)")
    t = sub.add_parser("top", parents=[q], formatter_class=_Formatter, help="the best holders of a running daemon",
                       description="Ask a running holdmetricsd for its top holders (GET /v1/top).")
    t.add_argument("-n", "--top", dest="n", type=_nonneg_int, default=10, metavar="N", help="how many (default 10)")
    t.add_argument("--token", metavar="T", help="rank holders of token T only")
    t.set_defaults(func=cmd_top)
    st = sub.add_parser("stats", parents=[q], formatter_class=_Formatter, help="every holder of a running daemon",
                        description="Ask a running holdmetricsd for its full snapshot (GET /v1/stats).")
    st.set_defaults(func=cmd_stats)

    ver = sub.add_parser("version", help="print the version and the active backend")
    ver.set_defaults(func=cmd_version)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        return args.func(args, out, err)
    except UsageError as e:
        args.parser.error(str(e))  # exits 2
        return 2
    except CliError as e:
        err.write(f"{PROG}: error: {e}\n")
        return 1
    except ConfigError as e:
        err.write(f"{PROG}: error: {e}\n")
        return 1
    except HoldMetricsError as e:
        err.write(f"{PROG}: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        # stdout closed early (`| head`): not an error; keep the interpreter's final
        # flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
