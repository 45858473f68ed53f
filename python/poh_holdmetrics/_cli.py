"""The ``poh-holdmetrics`` command (also ``python -m poh_holdmetrics``): the entry point
``poh_holdmetrics._cli:main``, the argument parser (options, their value types, help texts)
and the dispatch to a command, with the exit codes.

Exit codes: 0 success, 1 an error (a bad row, an unreachable daemon, ...), 2 a usage error.

The CLI's other modules, each imported only by the CLI:
  _cli_commands  one function per command (score, rewards, serve, top, stats, version)
  _cli_scoring   files -> chunks -> calculate_score / Aggregator (score and rewards)
  _cli_readers   CSV (pyarrow or the csv module), JSON Lines, Parquet as bounded chunks; progress
  _cli_output    table / CSV / JSON output
  _cli_client    the HTTP client for a running daemon (top and stats)
  _cli_errors    CliError (exit 1), UsageError (exit 2), the program name
Time and window values are parsed by _time, as everywhere in the package.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from ._cli_commands import cmd_rewards, cmd_score, cmd_serve, cmd_stats, cmd_top, cmd_version
from ._cli_errors import PROG, CliError, UsageError
from ._cli_readers import DEFAULT_CHUNK_ROWS
from ._config import DAEMON_KEYS, _SPEC
from ._errors import HoldMetricsError
from ._time import parse_time, parse_window

EPILOG = """\
examples:
  poh-holdmetrics score holds.csv                       total hold score of a file
  poh-holdmetrics score --by-holder --top 10 holds.csv  the 10 best holders
  poh-holdmetrics score --by-holder --token USDC --format csv a.csv b.parquet
  poh-holdmetrics score --transfers erc20_transfers.parquet --blocks blocks.parquet --by-holder --top 10
                                                        exact scores from chain data (cryo, ethereum-etl)
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

Columns are checked, so that a misspelt header never silently changes a score: a column
named with a --*-col option must exist; a file that has columns this command does not
read is refused while one of the five fields has no column (the error lists the columns
read and not read), until the field is mapped (--end-col stop), declared absent
(--end-col '': every hold open; --weight-col '': weight 1.0) or the other columns are
named with --ignore-cols. In JSON Lines each object is checked so.

FILE may be - (standard input; CSV unless --input-format says otherwise or it starts
with "{", read with the csv module) and may be gzip-compressed (read transparently;
holds.csv.gz is CSV). Input must be UTF-8: a bad byte is an error naming file:line.

score = sum over rows of max(0, min(end or now, now) - start) * weight.

Files are streamed in chunks of --chunk-rows rows into columnar buffers (pyarrow's
streaming CSV reader when installed, else the csv module), so memory stays bounded
whatever the file size. A bad row stops with an error naming the file, line and field
(exit 1); --skip-invalid skips such rows and reports how many.

--exact scores integer weights exactly (token amounts in their smallest unit, up to
2^256-1, read as decimal text): scores are printed as integers (strings in JSON).

Chain data instead of hold files: --transfers FILE (CSV or Parquet; repeat it for several
files) holds ERC-20 transfers (cryo's erc20_transfers or ethereum-etl's token_transfers
columns: token_address/erc20, from_address, to_address, value, block_number, log_index,
removed), or with --kind balance / delta a table of token_id, holder_id, time, balance /
delta. Each row's time is its block's timestamp from --blocks FILE (block_number or
number, timestamp), or a time column. Balances become holds per (token, holder), scored
exactly (--exact is implied); --opening FILE (token_id, holder_id, balance) gives balances
held from --opening-time on. Rows after --now are left out: the scores are as of --now.
"""


# --- option value types ---------------------------------------------------------------------

def parse_time_arg(value: str) -> int:
    """A --now value: Unix seconds or ISO 8601 (naive = UTC)."""
    try:
        return parse_time(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_window_arg(value: str) -> tuple[int, int]:
    """A --window value: ``T0,T1`` (Unix seconds or ISO 8601 each) -> (t0, t1)."""
    try:
        return parse_window(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


def _pool_int(value: str) -> int:
    """--pool and --cap: a whole number of base units >= 0, of any size (1_000 allowed)."""
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of base units") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return n


def _min_score(value: str) -> float:
    """--min-score: a finite number."""
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(f):
        raise argparse.ArgumentTypeError(f"{value!r} must be finite")
    return f


# --- argument parsing -----------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def _add_chain_args(p: argparse.ArgumentParser) -> None:
    """The chain-data options shared by score and rewards (transfers -> holds, exact)."""
    c = p.add_argument_group("chain data (instead of hold files)")
    c.add_argument("--transfers", action="append", metavar="FILE",
                   help="ERC-20 transfers (or --kind balance/delta rows), CSV or Parquet; repeatable")
    c.add_argument("--blocks", action="append", metavar="FILE",
                   help="block timestamps (block_number or number, timestamp) for the transfers; repeatable")
    c.add_argument("--opening", metavar="FILE", help="opening balances (token_id, holder_id, balance)")
    c.add_argument("--opening-time", type=parse_time_arg, default=0, metavar="TIME",
                   help="when the opening balances start (default 0)")
    c.add_argument("--kind", choices=("transfer", "balance", "delta"), default="transfer",
                   help="what a --transfers row is (default: an ERC-20 transfer)")
    c.add_argument("--zero-holder", action="store_true",
                   help="count the zero address as a holder (default: it only mints and burns)")


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """The input options shared by score and rewards: format, column mapping, chunking."""
    p.add_argument("--exact", action="store_true",
                   help="exact integer weights and scores (token amounts in their smallest unit)")
    _add_chain_args(p)
    m = p.add_argument_group("input")
    m.add_argument("--input-format", choices=("auto", "csv", "jsonl", "parquet"), default="auto",
                   help="input format (default: from the file suffix)")
    for f, flag in (("token_id", "--token-col"), ("holder_id", "--holder-col"), ("start", "--start-col"),
                    ("end", "--end-col"), ("weight", "--weight-col")):
        none = "" if f == "start" else "; '' = the file has none"
        m.add_argument(flag, default=None, metavar="NAME", help=f"column holding {f} (default: {f}{none})")
    m.add_argument("--ignore-cols", metavar="A,B", default="",
                   help="columns the file has that are not holds' fields, to ignore without a check")
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
    s.add_argument("files", nargs="*", metavar="FILE", help="input files (or --transfers)")
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
                                   "the pool, ties by holder_id. --transfers FILE (with --blocks) takes ERC-20 "
                                   "transfers or balance tables instead and splits by exact scores (see "
                                   "'score --help').")
    r.add_argument("files", nargs="*", metavar="FILE", help="input files (or --transfers)")
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

    from ._cli_airdrop import add_commands
    add_commands(sub, common, _Formatter, _add_chain_args, parse_time_arg, parse_window_arg, _pool_int)

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
    except (CliError, HoldMetricsError) as e:  # HoldMetricsError includes ConfigError
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
