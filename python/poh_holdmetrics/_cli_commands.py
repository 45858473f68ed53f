"""The commands of the command line, one function each: ``cmd_<name>(args, out, err)``
returns the exit code or raises CliError / UsageError (_cli.main reports them).

score and rewards read files (_cli_scoring, _cli_readers); serve replaces this process
with the daemon; top and stats ask a running daemon (_cli_client); everything printed is
formatted by _cli_output. Settings (options > POH_HOLDMETRICS_* > --config > defaults)
come from _config.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO

from ._cli_client import get_rows
from ._cli_errors import PROG, CliError, UsageError
from ._cli_output import RANK_COLUMNS, print_allocation, print_rows, print_total, stat_rows
from ._cli_readers import Progress
from ._cli_scoring import ChainScore, Scorer, feed_files
from ._config import _SPEC, load_settings
from ._errors import HoldMetricsError, InvalidEventError

DAEMON_NAME = "holdmetricsd"


def settings_of(args: argparse.Namespace) -> Any:
    """The Settings for a command: its options (those given) over the environment and --config."""
    explicit = {k: getattr(args, k) for k in _SPEC if getattr(args, k, None) is not None}
    return load_settings(args.config, **explicit)


# --- score / rewards ------------------------------------------------------------------------

def _check_inputs(args: argparse.Namespace) -> None:
    """FILE... or --transfers, not both; the chain-data options only with --transfers."""
    if args.transfers and args.files:
        raise UsageError("give hold files or --transfers, not both")
    if not args.transfers and not args.files:
        raise UsageError("the following arguments are required: FILE (or --transfers FILE)")
    if not args.transfers:
        for flag, given in (("--blocks", args.blocks), ("--opening", args.opening), ("--zero-holder", args.zero_holder),
                            ("--kind", args.kind != "transfer")):
            if given:
                raise UsageError(f"{flag} needs --transfers")
    elif args.skip_invalid:
        raise UsageError("--skip-invalid does not apply to --transfers: a skipped transfer would change every "
                         "later balance")


def _exact_out(rows: list[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """Ranking rows with exact (int) scores as decimal strings for JSON (a JSON number
    would lose digits in most readers); CSV and tables print ints as digits anyway."""
    if fmt != "json":
        return rows
    return [{**r, "score": str(r["score"])} if r["score"].__class__ is int else r for r in rows]


def _score_chain(args: argparse.Namespace, now: int, out: TextIO) -> int:
    chain = ChainScore(args, now, args.by_holder, "--by-holder")
    try:
        meta: dict[str, Any] = {"now": now, "rows": chain.rows, "skipped": 0}
        if not args.by_holder:
            print_total(meta, str(chain.total) if args.format == "json" else chain.total, args.format, out)
            return 0
        agg = chain.agg
        assert agg is not None
        n = args.top if args.top else max(len(agg), 1)
        try:
            stats = agg.top_n(n, now=now, token=args.token) if (args.top or args.token) else agg.snapshot(now)
        except InvalidEventError as e:
            raise CliError(str(e)) from None
        meta["token"] = args.token
        print_rows(_exact_out(stat_rows(stats), args.format), RANK_COLUMNS, args.format, out, meta)
        return 0
    finally:
        chain.close()


def cmd_score(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now = args.now if args.now is not None else int(time.time())
    if args.top is not None and not args.by_holder:
        raise UsageError("--top needs --by-holder")
    if args.token is not None and not args.by_holder:
        raise UsageError("--token needs --by-holder")
    _check_inputs(args)
    if args.transfers:
        return _score_chain(args, now, out)
    show = args.progress if args.progress is not None else err.isatty()
    progress = Progress(err, show)
    scorer = Scorer(now, args.by_holder, args.window, exact=args.exact, kernel=True)
    try:
        skipped, examples = feed_files(args, scorer, progress)
        progress.finish()
        if skipped:
            err.write(f"{PROG}: skipped {skipped} invalid row{'s' if skipped != 1 else ''}"
                      f" (--skip-invalid); the first:\n" + "".join(f"  {e}\n" for e in examples))
        meta = {"now": now, "rows": scorer.rows, "skipped": skipped}
        if not args.by_holder:
            total = scorer.total
            print_total(meta, str(total) if args.exact and args.format == "json" else total, args.format, out)
            return 0
        try:
            stats = scorer.ranking(args.top, args.token)  # the batch kernel over every file's rows
        except InvalidEventError as e:
            raise CliError(str(e)) from None
        meta["token"] = args.token
        print_rows(_exact_out(stat_rows(stats), args.format), RANK_COLUMNS, args.format, out, meta)
        return 0
    finally:
        progress.finish()
        scorer.close()


def cmd_rewards(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._reward_columns import allocate_rewards_columns
    from ._rewards import InfeasibleCapError
    now = args.now if args.now is not None else int(time.time())
    if args.window is not None and args.window[0] > now:
        raise CliError(f"window starts at {args.window[0]}, after now {now}: nothing has been held in it yet")
    _check_inputs(args)
    show = args.progress if args.progress is not None else err.isatty()
    progress = Progress(err, show)
    # Hold files: the batch kernel's scores (the rows an Aggregator would give), split as
    # columns; transfers: the chain scorer's aggregator.
    scorer: Any = ChainScore(args, now, True, "rewards") if args.transfers else Scorer(
        now, True, args.window, what="rewards", exact=args.exact, kernel=True)
    try:
        if not args.transfers:
            skipped, _ = feed_files(args, scorer, progress)
            progress.finish()
            if skipped:
                err.write(f"{PROG}: skipped {skipped} invalid row{'s' if skipped != 1 else ''} (--skip-invalid)\n")
            try:
                scores: Any = scorer.holder_scores(args.token)
            except InvalidEventError as e:
                raise CliError(str(e)) from None
        else:
            agg = scorer.agg
            assert agg is not None
            stats = agg.top_n(len(agg), now=now, token=args.token) if args.token else agg.snapshot(now)
            scores = [(s.holder_id, s.score) for s in stats]
        try:
            rows = allocate_rewards_columns(scores, args.pool, min_score=args.min_score, cap=args.cap,
                                            decimals=args.decimals)
        except InfeasibleCapError as e:
            raise CliError(f"--cap: {e}") from None
        except ValueError as e:
            raise CliError(str(e)) from None
        print_allocation(rows, args.format, out, args.output, args.decimals)
        if args.output:
            err.write(f"{PROG}: wrote {len(rows)} allocations summing to {sum(rows.amounts())} "
                      f"to {args.output}\n")
        return 0
    finally:
        progress.finish()
        scorer.close()


# --- serve ----------------------------------------------------------------------------------

def _bundled_daemon() -> Path:
    return Path(__file__).resolve().parent / "_bin" / (DAEMON_NAME + (".exe" if os.name == "nt" else ""))


def find_daemon() -> str | None:
    """The holdmetricsd binary: the one bundled in the package (_bin/), else on $PATH
    (where Windows' which() also tries holdmetricsd.exe, from PATHEXT)."""
    bundled = _bundled_daemon()
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return shutil.which(DAEMON_NAME)


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    binary = find_daemon()
    if binary is None:
        raise CliError(f"{DAEMON_NAME} not found: looked for {_bundled_daemon()} "
                       f"and on $PATH. Build it with `make build` (bin/{DAEMON_NAME}) and put it on PATH, or "
                       "install a poh-holdmetrics wheel that bundles it")
    settings = settings_of(args)
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
    if os.name == "nt":
        # Windows has no exec (os.execve starts a new process and ends this one, so
        # whoever waits for serve would lose the daemon's exit status): run the daemon
        # as a child and return its exit code. Ctrl+C reaches both processes through
        # the console; the daemon stops by itself and serve keeps waiting for it.
        import subprocess

        proc = subprocess.Popen(argv, env=env)
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue
    os.execve(binary, argv, env)
    return 1  # not reached


# --- top / stats / version ------------------------------------------------------------------

def _query(args: argparse.Namespace, path: str, params: dict[str, Any], out: TextIO) -> int:
    settings = settings_of(args)
    rows = get_rows(args.url or settings.base_url, path, {**params, "now": args.now}, settings, args.timeout)
    table = [{"rank": i, **{c: r.get(c) for c in RANK_COLUMNS[1:] + ("updated_at",)}} for i, r in enumerate(rows, 1)]
    print_rows(table, RANK_COLUMNS + ("updated_at",), args.format, out)
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
