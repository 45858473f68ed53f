"""The airdrop commands: ``airdrop`` (transfers + rules -> amounts, breakdown, merkle trees,
manifest), ``verify`` (a tree, a claim, a run's directory) and ``verify-run`` (re-run a
manifest and compare)."""

from __future__ import annotations

import argparse
import json
import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

from ._cli_errors import CliError
from ._errors import CampaignError, HoldMetricsError, InvalidEventError

AIRDROP_HELP = """\
Turn chain data and a campaign into what a claim contract needs: the holds of --transfers
(ERC-20 transfers, cryo's or ethereum-etl's columns, with --blocks for the times) over
--window [T0, T1) as of --now, the rules of --rules campaign.toml (eligibility, exclusions,
multipliers, transform, cap, merkle leaf and formats), and --pool split exactly. Writes into
--out DIR: amounts.csv, breakdown.csv (why each holder got what it got), merkle-standard.json
(OpenZeppelin StandardMerkleTree, loadable by @openzeppelin/merkle-tree), merkle-uniswap.json
when the rules ask for it, and manifest.json (every input's and output's sha256, the
parameters, the roots), which 'verify-run' re-runs. --previous DIR makes this run the next
epoch of a cumulative distribution.

example:
  poh-holdmetrics airdrop --transfers erc20_transfers.parquet --blocks blocks.parquet \\
      --rules campaign.toml --pool 1000000000000000000000000 \\
      --window 2024-01-01T00:00:00Z,2024-04-01T00:00:00Z --now 2024-04-01T00:00:00Z --out drop/
"""


def add_commands(sub: Any, common: argparse.ArgumentParser, formatter: Any, add_chain_args: Any,
                 parse_time_arg: Any, parse_window_arg: Any, pool_int: Any) -> None:
    a = sub.add_parser("airdrop", parents=[common], formatter_class=formatter, description=AIRDROP_HELP,
                       help="transfers + campaign rules -> amounts, breakdown, merkle trees, manifest")
    add_chain_args(a)
    a.add_argument("--rules", required=True, metavar="FILE", help="the campaign's rules (TOML)")
    a.add_argument("--pool", type=pool_int, required=True, metavar="N",
                   help="this epoch's pool in base units (e.g. wei), a whole number of any size")
    a.add_argument("--window", type=parse_window_arg, required=True, metavar="T0,T1",
                   help="the campaign window [T0, T1) (Unix seconds or ISO 8601)")
    a.add_argument("--now", type=parse_time_arg, metavar="TIME",
                   help="as of TIME (default: the current time); transfers after it are left out")
    a.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    a.add_argument("--previous", metavar="DIR", help="the previous epoch's output directory (cumulative amounts)")
    a.add_argument("--input-format", choices=("auto", "csv", "parquet"), default="auto",
                   help="input format (default: from the file suffix)")
    pg = a.add_mutually_exclusive_group()
    pg.add_argument("--progress", dest="progress", action="store_true", default=None,
                    help="always show the progress bar (default: only when stderr is a terminal)")
    pg.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    a.set_defaults(func=cmd_airdrop, parser=a)

    v = sub.add_parser("verify", formatter_class=formatter,
                       help="check a merkle file, a run's directory, or one address's claim",
                       description="Check PATH: a merkle file whole (standard-v1: every node and leaf; the "
                                   "merkle-distributor JSON: every proof, the total, the count) or an airdrop "
                                   "output directory (each tree against amounts.csv and the manifest's "
                                   "sha256s). With --address, that address's claim and proof. Exit 0 when "
                                   "everything verifies, 1 otherwise.")
    v.add_argument("path", metavar="DIR-or-FILE")
    v.add_argument("--address", metavar="A", help="check (and print) this address's claim")
    v.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    v.set_defaults(func=cmd_verify, parser=v)

    r = sub.add_parser("verify-run", formatter_class=formatter, help="re-run a manifest and compare the roots",
                       description="Re-run the airdrop MANIFEST describes, from the files it names (their "
                                   "sha256 checked), into a temporary directory, and compare roots and "
                                   "outputs. Exit 0 when the same, 1 otherwise (each difference printed).")
    r.add_argument("manifest", metavar="MANIFEST")
    r.set_defaults(func=cmd_verify_run, parser=r)


def _row_error(e: InvalidEventError, parts: list, files: list[str]) -> CliError:
    from ._cli_readers import where_row
    message = str(e)
    if e.index >= 0 and parts:
        prefix = f"row {e.index}: "
        rest = message[len(prefix):] if message.startswith(prefix) else message
        return CliError(f"{where_row(parts, e.index)}: {rest}")
    return CliError(f"{', '.join(files)}: {message}")


def cmd_airdrop(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._airdrop import CampaignRules, run_airdrop
    from ._cli_readers import Progress, read_tables
    from ._transfers import ALIASES
    if not args.transfers:
        raise CliError("airdrop needs --transfers FILE")
    progress = Progress(err, err.isatty() if args.progress is None else args.progress)
    try:
        rules = CampaignRules.from_toml(args.rules)
        rules.check()
    except CampaignError as e:
        raise CliError(str(e)) from None
    text = sorted({a for role in ("token_id", "from_address", "to_address", "holder_id", "value", "balance", "delta")
                   for a in ALIASES[role]})
    steps = 4
    progress.update("reading", 0, steps, 0, force=True)
    transfers, parts = read_tables(args.transfers, args.input_format, text, "--transfers")
    blocks = opening = None
    if args.blocks:
        blocks, _ = read_tables(args.blocks, args.input_format, (), "--blocks")
    if args.opening:
        opening, _ = read_tables([args.opening], args.input_format, text, "--opening")
    progress.update("scoring + hashing", 1, steps, transfers.num_rows, force=True)
    inputs = {"transfers": list(args.transfers)}
    if args.blocks:
        inputs["blocks"] = list(args.blocks)
    if args.opening:
        inputs["opening"] = [args.opening]
    try:
        m = run_airdrop(transfers, rules=rules, pool=args.pool, window=args.window, now=args.now, out=args.out,
                        blocks=blocks, kind=args.kind, opening=opening, opening_time=args.opening_time,
                        zero_holder=args.zero_holder, previous=args.previous, inputs=inputs)
    except InvalidEventError as e:
        raise _row_error(e, parts, args.transfers) from None
    except ImportError as e:
        raise CliError(str(e)) from None
    finally:
        progress.update("done", steps, steps, transfers.num_rows, force=True)
        progress.finish()
    out.write(f"epoch {m['epoch']['index']}: {m['awarded']} of {m['holders']} holders awarded, total "
              f"{m['total']} (pools so far {m['epoch']['pools']})\n")
    for rule, n in sorted(m["removed"].items()):
        out.write(f"  {rule}: {n} holder{'s' if n != 1 else ''} left out\n")
    for fmt, root in sorted(m["roots"].items()):
        out.write(f"{fmt} merkle root {root}\n")
    out.write(f"wrote {', '.join(sorted(m['outputs']))} and manifest.json in {args.out}\n")
    return 0


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._airdrop import verify_merkle
    if not os.path.exists(args.path):
        raise CliError(f"{args.path}: no such file or directory")
    try:
        found = verify_merkle(args.path, args.address)
    except CampaignError as e:
        err.write(f"poh-holdmetrics: verify: FAILED: {e}\n")
        return 1
    if args.format == "json":
        json.dump(found, out, indent=2)
        out.write("\n")
        return 0
    for v in found:
        out.write(f"OK {v['path']}: {v['format']} tree, root {v['root']}, {v['claims']} claims, total {v['total']}\n")
        c = v.get("claim")
        if c:
            out.write(f"   {c['address']}: index {c['index']}, amount {c['amount']}, proof {json.dumps(c['proof'])}\n")
    return 0


def cmd_verify_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._airdrop import verify_run
    try:
        r = verify_run(args.manifest)
    except InvalidEventError as e:
        raise CliError(f"{args.manifest}: re-run: {e}") from None
    except (CampaignError, HoldMetricsError) as e:
        raise CliError(str(e)) from None
    if r["same"]:
        roots = ", ".join(f"{k} {v}" for k, v in sorted(r["roots"].items()))
        out.write(f"same: re-ran {args.manifest}; every input, output and root matches ({roots})\n")
        return 0
    for d in r["differences"]:
        out.write(f"DIFFERENT: {d}\n")
    return 1
