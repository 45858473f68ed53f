"""transfers_to_holds and Aggregator.record_transfers: chain data (ERC-20 transfers, balance
and delta tables) -> exact holds, checked against the shared vectors
(testdata/transfer_vectors.json) and an independent Python-integer reference
(transfer_reference.py) on generated data in cryo's and ethereum-etl's schemas."""

from __future__ import annotations

import json
import random

import pytest

import poh_holdmetrics as phm
from conftest import PURE, REPO, needs_native
from transfer_reference import ZERO, ReferenceError, reference_holds, reference_scores

pa = pytest.importorskip("pyarrow", reason="transfers_to_holds needs pyarrow (a test dependency)")

VECTORS = json.loads((REPO / "testdata" / "transfer_vectors.json").read_text(encoding="utf-8"))["vectors"]
TOKEN = "0x" + "11" * 20
ALICE, BOB, CAROL = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def columns(rows: list[dict]) -> dict[str, list]:
    """Rows (dicts) as a dict of columns, absent values as None (removed as False)."""
    keys = sorted(set().union(*rows)) if rows else []
    cols = {k: [r.get(k) for r in rows] for k in keys}
    if "removed" in cols:
        cols["removed"] = [bool(v) for v in cols["removed"]]
    return cols


def table_holds(t) -> list[tuple]:
    """A holds Table as sorted (token, holder, start, end, weight) tuples."""
    w = phm.weights_as_ints(t)
    rows = zip(t.column("token_id").to_pylist(), t.column("holder_id").to_pylist(), t.column("start").to_pylist(),
               t.column("end").to_pylist(), w)
    return sorted(rows, key=lambda h: (h[0], h[1], h[2]))


def vector_args(v: dict) -> dict:
    opening = columns(v["opening"]) if "opening" in v else None
    return {"kind": v["kind"], "opening": opening, "opening_time": v.get("opening_time", 0),
            "zero_holder": v.get("zero_holder", False)}


def expected_holds(v: dict) -> list[tuple]:
    return sorted((tuple(h[:4]) + (int(h[4]),) for h in v["holds"]), key=lambda h: (h[0], h[1], h[2]))


# --- the reference itself agrees with the vectors (runs in both suites) -----------------------

@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_reference_matches_vectors(v):
    opening = [{**b, "balance": b["balance"]} for b in v.get("opening", [])]
    if "error" in v:
        with pytest.raises(ReferenceError) as e:
            reference_holds(v["rows"], v["kind"], opening, v.get("opening_time", 0), v.get("zero_holder", False))
        assert (e.value.row, e.value.field, e.value.reason) == (v["error"]["row"], v["error"]["field"],
                                                                 v["error"]["reason"])
        return
    holds = reference_holds(v["rows"], v["kind"], opening, v.get("opening_time", 0), v.get("zero_holder", False))
    assert holds == expected_holds(v)
    assert {h: str(s) for h, s in reference_scores(holds, v["now"]).items()} == v["scores"]


def test_fallback_has_no_transfers_and_says_so():
    if not PURE:
        pytest.skip("checks the fallback-only suite (POH_HOLDMETRICS_PURE=1); the native suite runs the real thing")
    with pytest.raises(phm.NativeLibraryError, match="native library"):
        phm.transfers_to_holds(columns(VECTORS[0]["rows"]))


def test_without_pyarrow_the_error_says_what_to_install():
    import subprocess
    import sys
    code = ("import sys; sys.modules['pyarrow'] = None\n"  # as if it were not installed
            "import poh_holdmetrics as phm\n"
            "try:\n    phm.transfers_to_holds({'time': [0]})\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert "need pyarrow" in out and "pip install pyarrow" in out


# --- the library against the vectors -------------------------------------------------------

@needs_native
@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_to_holds_and_scores(v):
    cols = columns(v["rows"])
    args = vector_args(v)
    if "error" in v:
        with pytest.raises(phm.InvalidEventError) as e:
            phm.transfers_to_holds(cols, **args)
        err = v["error"]
        assert (e.value.index, e.value.field, e.value.reason) == (err["row"], err["field"], err["reason"])
        assert str(e.value).startswith(f"row {err['row']}: ")
        return
    holds = phm.transfers_to_holds(cols, **args)
    assert holds.column_names == ["token_id", "holder_id", "start", "end", "weight"]
    assert holds.schema.field("weight").type == pa.binary(32)
    assert table_holds(holds) == expected_holds(v)
    scores = {h: int(s) for h, s in v["scores"].items()}
    assert phm.calculate_score(holds, now=v["now"], exact=True) == sum(scores.values())
    with phm.Aggregator(exact=True) as agg:
        assert agg.record_transfers(cols, **args) == len(v["holds"])
        assert {r.holder_id: r.score for r in agg.snapshot(now=v["now"]) if r.score} == scores
    with phm.Aggregator(exact=True) as agg:  # the table round-trips into an exact aggregator
        agg.record_many_sync(holds)
        assert {r.holder_id: r.score for r in agg.snapshot(now=v["now"]) if r.score} == scores


# --- generated chain data: cryo's and ethereum-etl's schemas --------------------------------

def random_transfers(seed: int, n: int, tokens: int = 2, holders: int = 12) -> tuple[list[dict], dict[int, int]]:
    """n valid ERC-20 transfer rows (mints, transfers, burns, self and zero transfers, reorged
    rows, mixed-case spellings), in block order, and block -> timestamp."""
    rnd = random.Random(seed)
    toks = ["0x" + f"{i + 1:02x}" * 20 for i in range(tokens)]
    people = ["0x" + "".join(rnd.choice("0123456789abcdef") for _ in range(40)) for _ in range(holders)]
    bal: dict[tuple[str, str], int] = {}
    rows, times, block, t = [], {}, 100, 1_600_000_000
    for _ in range(n):
        if rnd.random() < 0.3:
            block += 1
            t += rnd.randint(1, 40)
            times[block] = t
        times.setdefault(block, t)
        tok = rnd.choice(toks)
        have = [p for p in people if bal.get((tok, p), 0) > 0]
        kind = rnd.random()
        if not have or kind < 0.2:
            src, dst, v = ZERO, rnd.choice(people), rnd.randint(1, 10**rnd.randint(1, 30))
        elif kind < 0.3:
            src = rnd.choice(have)
            dst, v = ZERO, rnd.randint(0, bal[(tok, src)])
        else:
            src = rnd.choice(have)
            dst, v = rnd.choice(people), rnd.randint(0, bal[(tok, src)])
        removed = rnd.random() < 0.03
        if not removed:
            if src != ZERO:
                bal[(tok, src)] -= v
            if dst != ZERO:
                bal[(tok, dst)] = bal.get((tok, dst), 0) + v
        spell = (lambda a: a.upper().replace("0X", "0x")) if rnd.random() < 0.2 else (lambda a: a)
        rows.append({"block": block, "log_index": len([r for r in rows if r["block"] == block]), "time": times[block],
                     "token_id": tok, "from_address": spell(src), "to_address": spell(dst), "value": v,
                     "removed": removed})
    return rows, times


def cryo_tables(rows: list[dict], times: dict[int, int]):
    """(erc20_transfers, blocks) as cryo writes them: binary addresses, u256 as value_binary
    (32 bytes big-endian) next to value_string and value_f64, uint32 block numbers."""
    addr = lambda a: bytes.fromhex(a[2:])  # noqa: E731
    transfers = pa.table({
        "block_number": pa.array([r["block"] for r in rows], pa.uint32()),
        "transaction_index": pa.array([i % 7 for i in range(len(rows))], pa.uint32()),
        "log_index": pa.array([r["log_index"] for r in rows], pa.uint32()),
        "transaction_hash": pa.array([i.to_bytes(32, "big") for i in range(len(rows))], pa.binary()),
        "erc20": pa.array([addr(r["token_id"]) for r in rows], pa.binary()),
        "from_address": pa.array([addr(r["from_address"]) for r in rows], pa.binary()),
        "to_address": pa.array([addr(r["to_address"]) for r in rows], pa.binary()),
        "value_binary": pa.array([r["value"].to_bytes(32, "big") for r in rows], pa.binary()),
        "value_string": pa.array([str(r["value"]) for r in rows]),
        "value_f64": pa.array([float(r["value"]) for r in rows]),
        "chain_id": pa.array([1] * len(rows), pa.uint64()),
    })
    blocks = pa.table({"block_number": pa.array(sorted(times), pa.uint32()),
                       "timestamp": pa.array([times[b] for b in sorted(times)], pa.uint32())})
    return transfers, blocks


def live(rows: list[dict]) -> list[dict]:
    """rows without the reorged ones: the cryo tables carry no removed column."""
    return [r for r in rows if not r["removed"]]


@needs_native
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_cryo_data_matches_the_reference(seed):
    rows, times = random_transfers(seed, 1500)
    rows = live(rows)
    transfers, blocks = cryo_tables(rows, times)
    want = reference_holds(rows)
    holds = phm.transfers_to_holds(transfers, blocks=blocks)
    assert table_holds(holds) == want
    now = max(times.values()) + 1000
    scores = reference_scores(want, now)
    with phm.Aggregator(exact=True) as agg:
        agg.record_transfers(transfers, blocks=blocks)
        got = {r.holder_id: r.score for r in agg.snapshot(now=now) if r.score}
    assert got == scores
    assert phm.calculate_score(holds, now=now, exact=True) == sum(scores.values())


@needs_native
def test_input_forms_agree():
    """One dataset as a dict of columns (ints above 2^64), pyarrow, pandas, an Arrow C stream
    object, hex-string and binary addresses, with a removed column: the same holds."""
    rows, times = random_transfers(7, 400)
    want = reference_holds(rows)
    cols = columns(rows)
    assert table_holds(phm.transfers_to_holds(cols)) == want
    strs = {**cols, "value": [str(v) for v in cols["value"]]}
    arrow = pa.table(strs)
    assert table_holds(phm.transfers_to_holds(arrow)) == want
    pd = pytest.importorskip("pandas")
    assert table_holds(phm.transfers_to_holds(pd.DataFrame(strs))) == want
    assert table_holds(phm.transfers_to_holds(pd.DataFrame(cols))) == want  # object column of big ints

    class Stream:  # what polars / duckdb hand over: only the Arrow C stream interface
        def __init__(self, t):
            self.t = t

        def __arrow_c_stream__(self, requested_schema=None):
            return self.t.__arrow_c_stream__(requested_schema)

    assert table_holds(phm.transfers_to_holds(Stream(arrow))) == want
    # block timestamps from a blocks table instead of a time column
    no_time = arrow.drop_columns(["time"])
    blocks = {"block_number": sorted(times), "timestamp": [times[b] for b in sorted(times)]}
    assert table_holds(phm.transfers_to_holds(no_time, blocks=blocks)) == want


@needs_native
def test_ethereum_etl_csv(tmp_path):
    """ethereum-etl's token_transfers.csv and blocks.csv, read with pyarrow as any user would
    (value as text so that wei amounts stay exact)."""
    import pyarrow.csv as pacsv
    rows, times = random_transfers(11, 300)
    rows = live(rows)
    t = tmp_path / "token_transfers.csv"
    t.write_text("token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n" + "".join(
        f"{r['token_id']},{r['from_address']},{r['to_address']},{r['value']},0x{i:064x},{r['log_index']},{r['block']}\n"
        for i, r in enumerate(rows)), encoding="utf-8")
    b = tmp_path / "blocks.csv"
    b.write_text("number,hash,timestamp\n" + "".join(f"{n},0x{n:064x},{ts}\n" for n, ts in sorted(times.items())),
                 encoding="utf-8")
    transfers = pacsv.read_csv(t, convert_options=pacsv.ConvertOptions(column_types={"value": pa.string()}))
    holds = phm.transfers_to_holds(transfers, blocks=pacsv.read_csv(b))
    assert table_holds(holds) == reference_holds(rows)


@needs_native
def test_mixed_case_spellings_are_one_holder():
    rows = [
        {"time": 0, "token_id": TOKEN, "from_address": ZERO, "to_address": ALICE.upper().replace("0X", "0x"),
         "value": 10},
        {"time": 10, "token_id": TOKEN.upper().replace("0X", "0x"), "from_address": ALICE, "to_address": BOB,
         "value": 4},
        {"time": 20, "token_id": TOKEN, "from_address": "0x" + "Aa" * 20, "to_address": BOB, "value": 6},
    ]
    holds = table_holds(phm.transfers_to_holds(columns(rows)))
    assert holds == [(TOKEN, ALICE, 0, 10, 10), (TOKEN, ALICE, 10, 20, 6), (TOKEN, BOB, 10, 20, 4),
                     (TOKEN, BOB, 20, None, 10)]
    assert holds == reference_holds(rows)
    with phm.Aggregator(exact=True) as agg:
        agg.record_transfers(columns(rows))
        assert [(r.holder_id, r.score) for r in agg.snapshot(now=30)] == [(ALICE, 160), (BOB, 140)]
        assert agg.pair(TOKEN, ALICE.upper().replace("0X", "0x"), now=30).score == 160


@needs_native
def test_balance_and_delta_tables():
    bal = {"token_id": ["SOL"] * 3, "holder_id": ["So1ana", "so1ana", "So1ana"], "time": [0, 10, 40],
           "balance": ["5", "7", "2"]}
    holds = table_holds(phm.transfers_to_holds(bal, kind="balance"))
    assert holds == [("SOL", "So1ana", 0, 40, 5), ("SOL", "So1ana", 40, None, 2), ("SOL", "so1ana", 10, None, 7)]
    delta = {"token_id": ["T"] * 3, "holder_id": ["h"] * 3, "time": [0, 20, 30], "delta": [2**200, "-3", -5]}
    assert table_holds(phm.transfers_to_holds(delta, kind="delta")) == [
        ("T", "h", 0, 20, 2**200), ("T", "h", 20, 30, 2**200 - 3), ("T", "h", 30, None, 2**200 - 8)]
    import numpy as np
    delta_np = {"token_id": ["T"] * 2, "holder_id": ["h"] * 2, "time": [0, 5], "delta": np.array([7, -7])}
    assert table_holds(phm.transfers_to_holds(delta_np, kind="delta")) == [("T", "h", 0, 5, 7)]


@needs_native
def test_opening_balances_and_the_zero_holder():
    rows = {"time": [60], "token_id": [TOKEN], "from_address": [ALICE], "to_address": [BOB], "value": ["7"]}
    opening = {"token_id": [TOKEN], "holder_id": [ALICE], "balance": [10]}
    assert table_holds(phm.transfers_to_holds(rows, opening=opening, opening_time=50)) == [
        (TOKEN, ALICE, 50, 60, 10), (TOKEN, ALICE, 60, None, 3), (TOKEN, BOB, 60, None, 7)]
    with pytest.raises(phm.InvalidEventError) as e:  # a row before the opening balances' time
        phm.transfers_to_holds(rows, opening=opening, opening_time=61)
    assert (e.value.index, e.value.field) == (0, "time")
    mint = {"time": [5], "token_id": [TOKEN], "from_address": [ZERO], "to_address": [ALICE], "value": [3]}
    zero = {"token_id": [TOKEN], "holder_id": [ZERO], "balance": [3]}
    assert table_holds(phm.transfers_to_holds(mint, opening=zero, zero_holder=True)) == [
        (TOKEN, ZERO, 0, 5, 3), (TOKEN, ALICE, 5, None, 3)]
    with pytest.raises(phm.InvalidEventError) as e:  # the zero address holds nothing it can send
        phm.transfers_to_holds(mint, zero_holder=True)
    assert (e.value.index, e.value.field, e.value.reason) == (0, "value", "negative")


@needs_native
@pytest.mark.parametrize("change, index, field, reason", [
    ({"value": [5, "6.5", 1]}, 1, "value", "not_integer"),
    ({"value": [5, 1, -1]}, 2, "value", "negative"),
    ({"value": [5, 2**256, 1]}, 1, "value", "out_of_range"),
    ({"value": [5, None, 1]}, 1, "value", "empty"),
    ({"to_address": [ALICE, BOB, None]}, 2, "to_address", "empty"),
    ({"to_address": [ALICE, BOB, "0xnothex"]}, 2, "to_address", "out_of_range"),
    ({"time": [0, 10, -1]}, 2, "time", "out_of_range"),
    ({"value": [5, 6, 1]}, 1, "value", "negative"),  # alice has 5 and sends 6
])
def test_bad_rows_name_row_and_field(change, index, field, reason):
    rows = {"time": [0, 10, 20], "token_id": [TOKEN] * 3, "from_address": [ZERO, ALICE, ALICE],
            "to_address": [ALICE, BOB, BOB], "value": [5, 1, 1]}
    with pytest.raises(phm.InvalidEventError) as e:
        phm.transfers_to_holds({**rows, **change})
    assert (e.value.index, e.value.field, e.value.reason) == (index, field, reason), str(e.value)
    assert str(e.value).startswith(f"row {index}: {field}")


@needs_native
def test_input_errors():
    rows = {"time": [0], "token_id": [TOKEN], "from_address": [ZERO], "to_address": [ALICE], "value": [5]}
    with pytest.raises(phm.InvalidEventError, match="no to_address column") as e:
        phm.transfers_to_holds({k: v for k, v in rows.items() if k != "to_address"})
    assert e.value.field == "to_address"
    with pytest.raises(phm.InvalidEventError, match="no time column"):
        phm.transfers_to_holds({k: v for k, v in rows.items() if k != "time"})
    with pytest.raises(phm.InvalidEventError, match="row 0: block_number 9: is not in blocks") as e:
        phm.transfers_to_holds({**rows, "block_number": [9]}, blocks={"block_number": [1], "timestamp": [0]})
    assert (e.value.index, e.value.field) == (0, "block_number")
    with pytest.raises(ValueError, match="kind"):
        phm.transfers_to_holds(rows, kind="mint")
    with pytest.raises(TypeError, match="expected a table"):
        phm.transfers_to_holds([1, 2, 3])
    with phm.Aggregator() as agg, pytest.raises(ValueError, match="exact=True"):
        agg.record_transfers(rows)
    with phm.Aggregator(exact=True) as agg:  # a failed record_transfers records nothing
        with pytest.raises(phm.InvalidEventError):
            agg.record_transfers({**rows, "from_address": [ALICE], "to_address": [BOB]})
        assert len(agg) == 0


@needs_native
def test_holds_table_in_float_mode_and_as_ints():
    rows = {"time": [0, 50], "token_id": [TOKEN] * 2, "from_address": [ZERO, ALICE], "to_address": [ALICE, BOB],
            "value": [10**24 + 1, 3]}
    holds = phm.transfers_to_holds(rows)
    assert phm.weights_as_ints(holds) == [10**24 + 1, 10**24 - 2, 3]
    exact = phm.calculate_score(holds, now=100, exact=True)
    assert exact == 50 * (10**24 + 1) + 50 * (10**24 - 2) + 50 * 3
    in_order = zip(*(holds.column(c).to_pylist() for c in ("token_id", "holder_id", "start", "end")),
                   phm.weights_as_ints(holds))
    assert phm.calculate_score(holds, now=100) == phm.calculate_score(
        [phm.HoldEvent(t, h, s, e, float(w)) for t, h, s, e, w in in_order], now=100)
    with phm.Aggregator() as agg:  # a float aggregator takes the table as floats
        agg.record_many_sync(holds)
        assert sum(r.score for r in agg.snapshot(now=100)) == pytest.approx(float(exact), rel=1e-15)
