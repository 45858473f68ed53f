"""Generate a synthetic ERC-20 transfer set in cryo's schema (what `cryo erc20_transfers` and
`cryo blocks` write): one token, HOLDERS wallets, mints, transfers and burns over 90 days.

    python make_transfers.py OUT_DIR [--holders N] [--transfers N] [--seed S]

writes OUT_DIR/ethereum__erc20_transfers__{0,1}.parquet (block_number, transaction_index,
log_index, transaction_hash, erc20, from_address, to_address as binary; value_binary (u256
big-endian), value_string, value_f64; chain_id) and OUT_DIR/ethereum__blocks.parquet
(block_number, timestamp). Deterministic for a seed. Needs pyarrow."""

from __future__ import annotations

import argparse
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

TOKEN = bytes.fromhex("7f5c764cbc14f9669b88837ca1490cca17c31607")
ZERO = bytes(20)
START = 1_704_067_200  # 2024-01-01T00:00:00Z
TEAM = bytes.fromhex("00000000000000000000000000000000000c0ffe")  # excluded in campaign.toml


def generate(holders: int, transfers: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rnd = random.Random(seed)
    people = [rnd.randbytes(20) for _ in range(holders - 1)] + [TEAM]
    bal = {p: 0 for p in people}
    cols: dict[str, list] = {k: [] for k in ("block_number", "transaction_index", "log_index", "transaction_hash",
                                             "erc20", "from_address", "to_address", "value")}
    times: dict[int, int] = {}
    block, t, log = 19_000_000, START, 0
    for i in range(transfers):
        if rnd.random() < 0.5:
            block += 1
            t += rnd.randint(1, 2 * 90 * 86400 // max(transfers, 1) + 1)
            log = 0
        times.setdefault(block, t)
        src = next((p for p in (rnd.choice(people) for _ in range(8)) if bal[p] > 0), ZERO)
        if i < holders or src == ZERO or rnd.random() < 0.1:  # a mint (everyone first gets some)
            src, dst = ZERO, people[i] if i < holders else rnd.choice(people)
            v = rnd.randint(1, 10**rnd.randint(18, 24))
        else:
            dst = ZERO if rnd.random() < 0.05 else rnd.choice(people)
            v = rnd.randint(0, bal[src])
        if src != ZERO:
            bal[src] -= v
        if dst != ZERO:
            bal[dst] += v
        cols["block_number"].append(block)
        cols["transaction_index"].append(log)
        cols["log_index"].append(log)
        cols["transaction_hash"].append(rnd.randbytes(32))
        cols["erc20"].append(TOKEN)
        cols["from_address"].append(src)
        cols["to_address"].append(dst)
        cols["value"].append(v)
        log += 1
    values = cols.pop("value")
    table = pa.table({
        "block_number": pa.array(cols["block_number"], pa.uint32()),
        "transaction_index": pa.array(cols["transaction_index"], pa.uint32()),
        "log_index": pa.array(cols["log_index"], pa.uint32()),
        "transaction_hash": pa.array(cols["transaction_hash"], pa.binary()),
        "erc20": pa.array(cols["erc20"], pa.binary()),
        "from_address": pa.array(cols["from_address"], pa.binary()),
        "to_address": pa.array(cols["to_address"], pa.binary()),
        "value_binary": pa.array([v.to_bytes(32, "big") for v in values], pa.binary()),
        "value_string": pa.array([str(v) for v in values]),
        "value_f64": pa.array([float(v) for v in values]),
        "chain_id": pa.array([1] * len(values), pa.uint64()),
    })
    blocks = pa.table({"block_number": pa.array(sorted(times), pa.uint32()),
                       "timestamp": pa.array([times[b] for b in sorted(times)], pa.uint32())})
    return table, blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--holders", type=int, default=500)
    ap.add_argument("--transfers", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    table, blocks = generate(a.holders, a.transfers, a.seed)
    half = table.num_rows // 2  # cryo writes one file per block range
    pq.write_table(table.slice(0, half), os.path.join(a.out, "ethereum__erc20_transfers__0.parquet"))
    pq.write_table(table.slice(half), os.path.join(a.out, "ethereum__erc20_transfers__1.parquet"))
    pq.write_table(blocks, os.path.join(a.out, "ethereum__blocks.parquet"))
    print(f"wrote {table.num_rows} transfers of {a.holders} holders in {blocks.num_rows} blocks to {a.out}")


if __name__ == "__main__":
    main()
