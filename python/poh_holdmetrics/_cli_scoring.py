"""Scoring the files of ``score`` and ``rewards``: every input file streamed through its
Reader into a Scorer, chunk by chunk, which sums calculate_score per chunk or, ranking by
holder, keeps the chunks' columns for one call of the batch kernel (``score --by-holder``)
or records them in an Aggregator (``rewards``). A bad row found while scoring is reported
through the Reader that produced it (file and line), like one found while reading."""

from __future__ import annotations

import math
import os
from bisect import bisect_right
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    import argparse
    from typing import Any

from ._cli_errors import CliError, UsageError
from ._cli_readers import MAX_REPORTED_SKIPS, Chunk, Progress, Reader, format_of, numpy_or_none
from ._errors import HoldMetricsError, InvalidEventError


def clip_to_now(cols: dict[str, Any], now: int) -> dict[str, Any]:
    """Closed holds ending after ``now`` cut at ``now`` (start too, if it is later), so the
    aggregator, which counts a closed hold in full, agrees with score-at-now."""
    if "end" not in cols:
        return cols
    np = numpy_or_none()
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
    """Feeds chunks to calculate_score and, ranking by holder, either keeps their columns
    for one call of the batch kernel at the end (kernel=True: ``ranking``; chunks are then
    only converted, the kernel validating them, unless --skip-invalid needs each chunk's
    bad rows found as it comes) or records them in an Aggregator (``agg``). exact: integer
    weights, exact int scores."""

    def __init__(self, now: int, by_holder: bool, window: tuple[int, int] | None = None,
                 what: str = "--by-holder", exact: bool = False, kernel: bool = False) -> None:
        from ._score import calculate_score
        self.calculate_score = calculate_score
        self.now = now
        self.window = window
        self.exact = exact
        self.parts: list[float | int] = []  # one score per chunk: a few hundred for 10M rows
        self.rows = 0
        self.agg = None
        self.by_holder = by_holder
        self.kept: list[Any] | None = None  # kernel=True: every chunk's Columns, in order
        # kernel=True: (first row in the batch, chunk, reader) of each kept chunk, to name a
        # bad row the kernel finds by its file and line
        self.origins: list[tuple[int, Chunk, Reader]] = []
        if by_holder and kernel:
            from . import _native
            try:
                _native.load()
            except HoldMetricsError as e:
                raise CliError(f"{what} needs the native library: {e}") from None
            self.kept = []
        elif by_holder:
            from ._aggregator import Aggregator
            try:
                # A campaign window clips each hold when it is recorded (O(1) per event);
                # with ends cut at now (clip_to_now) rows equal the batch windowed score.
                self.agg = Aggregator(window=window, exact=exact)
            except HoldMetricsError as e:
                raise CliError(f"{what} needs the native library: {e}") from None

    def feed(self, chunk: Chunk, reader: Reader) -> None:
        pending = [chunk]
        while pending:
            c = pending.pop()
            if c.n == 0:
                continue
            if self.by_holder and ("holder_id" not in c.cols or "token_id" not in c.cols):
                missing = "holder_id" if "holder_id" not in c.cols else "token_id"
                raise CliError(f"{reader.path}: --by-holder needs a {reader.mapping[missing] or missing!r} column "
                               f"(map another with --{missing.split('_')[0]}-col)")
            try:
                if self.kept is not None and not reader.skip_invalid:
                    # The kernel validates every row when it runs (all-or-nothing; ranking()
                    # names the first bad one): the chunk is converted once, not also scored.
                    from ._columns import normalize
                    cols = normalize(c.cols, need_ids=True, exact=self.exact)
                    self.origins.append((sum(k.n for k in self.kept), c, reader))
                    self.kept.append(cols)
                    self.rows += c.n
                    continue
                s = self.calculate_score(c.cols, now=self.now, window=self.window, exact=self.exact)
            except InvalidEventError as e:
                if e.index < 0:
                    raise CliError(f"{reader.path}: {e}") from None
                i = e.index
                reader.bad(c.line(i), e.field, _row_message(e))
                # skip_invalid: rows before i are valid (errors name the first bad row)
                pending.append(c.slice(i + 1, c.n))
                pending.append(c.slice(0, i))
                continue
            self.parts.append(s)
            self.rows += c.n
            if self.kept is not None:  # skip_invalid: the rows calculate_score found valid
                from ._columns import normalize
                self.kept.append(normalize(c.cols, need_ids=True, exact=self.exact))
            if self.agg is not None:
                # Batches of the aggregator's own chunk size: a larger batch is validated
                # again and re-sliced inside record_many_sync (row by row for the id
                # offsets); slices of our columns are views.
                from ._aggregator import CHUNK_ROWS
                for lo in range(0, c.n, CHUNK_ROWS):
                    part = c.slice(lo, min(lo + CHUNK_ROWS, c.n)) if c.n > CHUNK_ROWS else c
                    self.agg.record_many_sync(clip_to_now(part.cols, self.now))

    def ranking(self, top: int | None, token: str | None) -> list[Any]:
        """kernel=True: the HoldStats of every holder (of the (holder, token) pairs of
        token), in ranking order, the first top of them: the batch kernel over every
        chunk kept, in order, as one batch."""
        rows, want = self._kernel(top, token)
        if rows is None:
            return []
        if want is None:
            return rows.rows()
        keep = [i for i, t in enumerate(rows.token_ids or []) if t == want][:top]
        return [rows[i] for i in keep]

    def holder_scores(self, token: str | None) -> Any:
        """kernel=True: every holder's score as the kernel's HolderScores (with token:
        (holder_id, score) pairs of that token's rows), for allocate_rewards_columns."""
        rows, want = self._kernel(None, token)
        if rows is None:
            return []
        if want is None:
            return rows
        return [(h, s) for h, t, s in zip(rows.holder_ids, rows.token_ids or [], rows.scores()) if t == want]

    def _kernel(self, top: int | None, token: str | None) -> tuple[Any, str | None]:
        """The kernel's HolderScores of every kept chunk (by token when token is given, and
        that token's canonical id), or (None, None) when no row was kept."""
        assert self.kept is not None
        if not self.kept:
            return None, None
        from . import _native, _pure
        from ._kernel import _native_scores, concat_columns
        ffi, lib = _native.load()
        cols = concat_columns(self.kept)
        self.kept = []
        want = None
        if token is not None:
            raw = token.encode("utf-8", "surrogatepass")
            _pure.check_id(-1, "token_id", raw)  # as top_n(token=) checks it
            want = _pure.canonical_id(raw).decode("utf-8")
        try:
            rows = _native_scores(ffi, lib, cols, self.now, self.window, want is not None,
                                  (top or 0) if want is None else 0, self.exact, False, 0)
        except InvalidEventError as e:
            if e.index < 0 or not self.origins:
                raise
            first, c, reader = self.origins[bisect_right([o[0] for o in self.origins], e.index) - 1]
            reader.bad(c.line(e.index - first), e.field, _row_message(e))  # raises: not skip_invalid
            raise
        return rows, want

    @property
    def total(self) -> float | int:
        """The chunks' scores summed exactly (each chunk is summed in input order by the
        library, so the result is within an ulp or so of scoring the whole file at once;
        exact: the exact int)."""
        return sum(self.parts) if self.exact else math.fsum(self.parts)

    def close(self) -> None:
        if self.agg is not None:
            self.agg.close()


def _row_message(e: InvalidEventError) -> str:
    """A row's error without its "event i:" prefix (the caller names the file and line)."""
    text = str(e)
    return text.split(": ", 1)[1] if text.startswith(f"event {e.index}:") else text


def feed_files(args: argparse.Namespace, scorer: Scorer, progress: Progress) -> tuple[int, list[str]]:
    """Streams every input file through the scorer, chunk by chunk; returns the number of
    skipped rows and the first few of them (--skip-invalid)."""
    given = {"token_id": args.token_col, "holder_id": args.holder_col, "start": args.start_col,
             "end": args.end_col, "weight": args.weight_col}
    if given["start"] == "":
        raise UsageError("--start-col '': every hold needs a start column")
    mapping = {f: f if c is None else c for f, c in given.items()}
    explicit = frozenset(f for f, c in given.items() if c)
    ignore = frozenset(c.strip() for c in getattr(args, "ignore_cols", "").split(",") if c.strip())
    exact = getattr(args, "exact", False)
    if args.files.count("-") > 1:
        raise UsageError("- (standard input) can be read only once")
    skipped = 0
    examples: list[str] = []
    for path in args.files:
        # standard input has no suffix: its format comes from its first bytes unless forced
        fmt = "auto" if path == "-" and args.input_format == "auto" else format_of(path, args.input_format)
        if path != "-" and not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        reader = Reader(path, fmt, mapping, args.chunk_rows, args.skip_invalid, args.engine, args.delimiter, exact,
                        explicit, ignore)
        for chunk in reader.chunks():
            scorer.feed(chunk, reader)
            progress.update(Path(path).name, reader.bytes_read, reader.size, scorer.rows + skipped + reader.skipped)
        progress.update(Path(path).name, reader.size, reader.size, scorer.rows + skipped + reader.skipped,
                        force=True)
        skipped += reader.skipped
        examples += reader.examples[:MAX_REPORTED_SKIPS - len(examples)]
    return skipped, examples


# --- chain data -----------------------------------------------------------------------------

class ChainScore:
    """Chain data (--transfers) scored exactly at now: the holds' total, or (by_holder) an
    exact Aggregator holding them. Transfers after now are left out, so a balance held at
    now is an open hold scored up to now, as score-at-now counts it."""

    def __init__(self, args: argparse.Namespace, now: int, by_holder: bool, what: str) -> None:
        from ._cli_readers import read_tables, where_row
        from ._transfers import ALIASES, run
        text = {a for role in ("token_id", "from_address", "to_address", "holder_id", "value", "balance", "delta")
                for a in ALIASES[role]}
        transfers, parts = read_tables(args.transfers, args.input_format, sorted(text), "--transfers")
        blocks = opening = None
        if args.blocks:
            blocks, _ = read_tables(args.blocks, args.input_format, (), "--blocks")
        oparts: list = []
        if args.opening:
            opening, oparts = read_tables([args.opening], args.input_format, sorted(text), "--opening")
        self.rows = transfers.num_rows
        self.total: int = 0
        self.agg = None
        try:
            if by_holder:
                from ._aggregator import Aggregator
                try:
                    self.agg = Aggregator(window=args.window, exact=True)
                except HoldMetricsError as e:
                    raise CliError(f"{what} needs the native library: {e}") from None
                run(transfers, blocks, args.kind, opening, args.opening_time, args.zero_holder,
                    record_into=self.agg._handle(), until=now)
            else:
                from ._score import calculate_score
                holds = run(transfers, blocks, args.kind, opening, args.opening_time, args.zero_holder, until=now)
                self.total = calculate_score(holds, now=now, window=args.window, exact=True)
        except InvalidEventError as e:
            self.close()
            message = str(e)
            if e.index >= 0:
                prefix = f"row {e.index}: "
                rest = message[len(prefix):] if message.startswith(prefix) else message
                raise CliError(f"{where_row(parts, e.index)}: {rest}") from None
            if message.startswith("opening balances") and oparts:
                raise CliError(f"{oparts[0][0]}: {message}") from None
            raise CliError(f"{', '.join(args.transfers)}: {message}") from None
        except HoldMetricsError as e:
            self.close()
            raise CliError(f"--transfers needs the native library: {e}") from None
        except ImportError as e:
            self.close()
            raise CliError(str(e)) from None

    def close(self) -> None:
        if self.agg is not None:
            self.agg.close()
