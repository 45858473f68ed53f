"""Output of the command line: rows (one dict per row) rendered as an aligned table, CSV
or JSON, and the columns of a holder ranking. Floats are printed exactly (repr) in CSV and
JSON, rounded to 6 decimals in the table."""

from __future__ import annotations

import json
from collections.abc import Sequence
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any, TextIO

RANK_COLUMNS = ("rank", "holder_id", "score", "total_seconds", "events", "open_holds", "tokens")


def stat_rows(stats: list[Any]) -> list[dict[str, Any]]:
    """HoldStats as ranking rows (RANK_COLUMNS, rank from 1)."""
    return [{"rank": i, "holder_id": s.holder_id, "score": s.score, "total_seconds": s.total_seconds,
             "events": s.events, "open_holds": s.open_holds, "tokens": s.tokens}
            for i, s in enumerate(stats, 1)]


def print_table(rows: list[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    """rows as an aligned text table with a header line; all-number columns right-aligned."""
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


def print_rows(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO,
               meta: dict[str, Any] | None = None) -> None:
    """rows in fmt: "json" (a list, or ``{**meta, "holders": rows}`` when meta is given),
    "csv" (a header row first) or "table"."""
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
        print_table(rows, columns, out)


def print_total(meta: dict[str, Any], score: float, fmt: str, out: TextIO) -> None:
    """The one-row result of ``score`` without --by-holder: meta (now, rows, skipped) and the score."""
    if fmt == "json":
        json.dump({**meta, "score": score}, out)
        out.write("\n")
    elif fmt == "csv":
        out.write("rows,skipped,now,score\n")
        out.write(f"{meta['rows']},{meta['skipped']},{meta['now']},{score!r}\n")
    else:
        print_table([{"rows": meta["rows"], "skipped": meta["skipped"], "now": meta["now"], "score": score}],
                    ("rows", "skipped", "now", "score"), out)


def print_allocation(rows: list[Any], fmt: str, out: TextIO, path: str | None, decimals: int) -> None:
    """RewardRows in fmt, to the file at path if given, else to out. json and csv are
    _rewards' own writers; the table shows amounts as exact decimals."""
    from ._rewards import format_amount, write_rewards_csv, write_rewards_json
    target: Any = path if path else out
    if fmt == "json":
        write_rewards_json(rows, target, decimals=decimals)
    elif fmt == "csv":
        write_rewards_csv(rows, target, decimals=decimals)
    else:
        table = [{"holder_id": r.holder_id, "score": r.score, "share": float(r.share),
                  "amount": format_amount(r.amount, decimals)} for r in rows]
        if path:
            with open(path, "w", encoding="utf-8") as f:
                print_table(table, ("holder_id", "score", "share", "amount"), f)
        else:
            print_table(table, ("holder_id", "score", "share", "amount"), out)
