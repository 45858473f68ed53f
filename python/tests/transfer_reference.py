"""An independent Python-integer reference of transfers -> holds (the oracle of the transfer
tests, as testdata/transfer_vectors.json's "about" describes it): written from the README's
rules, not from core/transfer.go, and slow on purpose (dicts of Python ints, one row at a
time).

Rules: rows apply in (block, log_index) order, stable; removed rows are skipped; an id that
is 0x + 40 hex digits is one holder whatever its case (lowercase); the zero address mints and
burns and holds nothing (unless zero_holder); a self-transfer or a zero transfer changes
nothing; each nonzero balance is held from its change to the next (zero-length holds are
dropped), the last one open; a balance below zero is an error naming the row.
"""

from __future__ import annotations

import re

ZERO = "0x" + "0" * 40
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class ReferenceError(Exception):
    def __init__(self, row: int, field: str, reason: str) -> None:
        super().__init__(f"row {row}: {field}: {reason}")
        self.row, self.field, self.reason = row, field, reason


def canon(x: str) -> str:
    return x.lower() if _ADDRESS.fullmatch(x) else x


def reference_holds(rows: list[dict], kind: str = "transfer", opening: list[dict] | None = None,
                    opening_time: int = 0, zero_holder: bool = False) -> list[tuple]:
    """[(token, holder, start, end or None, weight)] sorted by (token, holder, start).
    rows: dicts with time, token_id, value (transfer: from_address, to_address; balance:
    holder_id, balance; delta: holder_id, delta, signed) and optional block, log_index,
    removed; amounts as ints or decimal strings."""
    balance: dict[tuple[str, str], int] = {}
    since: dict[tuple[str, str], int] = {}
    holds = []
    for b in opening or []:
        p = (canon(b["token_id"]), canon(b["holder_id"]))
        balance[p], since[p] = int(b["balance"]), opening_time

    def change(p: tuple[str, str], t: int, new: int) -> None:
        old = balance.get(p, 0)
        if old and t > since[p]:
            holds.append((*p, since[p], t, old))
        balance[p], since[p] = new, t

    order = sorted(range(len(rows)), key=lambda i: (rows[i].get("block", 0), rows[i].get("log_index", 0)))
    for i in order:
        r = rows[i]
        if r.get("removed"):
            continue
        t, tok = int(r["time"]), canon(r["token_id"])
        if kind == "transfer":
            v = int(r["value"])
            src, dst = canon(r["from_address"]), canon(r["to_address"])
            if src == dst or v == 0:
                continue
            if src != ZERO or zero_holder:
                p = (tok, src)
                if balance.get(p, 0) < v:
                    raise ReferenceError(i, "value", "negative")
                change(p, t, balance[p] - v)
            if dst != ZERO or zero_holder:
                p = (tok, dst)
                change(p, t, balance.get(p, 0) + v)
        else:
            p = (tok, canon(r["holder_id"]))
            if kind == "balance":
                new = int(r["balance"])
            else:
                new = balance.get(p, 0) + int(r["delta"])
                if new < 0:
                    raise ReferenceError(i, "delta", "negative")
            change(p, t, new)
    for p, b in balance.items():
        if b:
            holds.append((*p, since[p], None, b))
    return sorted(holds, key=lambda h: (h[0], h[1], h[2]))


def reference_scores(holds: list[tuple], now: int) -> dict[str, int]:
    """Exact score per holder at now: sum of max(0, min(end or now, now) - start) * weight."""
    out: dict[str, int] = {}
    for _, holder, start, end, w in holds:
        d = min(now if end is None else end, now) - start
        if d > 0:
            out[holder] = out.get(holder, 0) + d * w
    return out
