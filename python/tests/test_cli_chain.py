"""poh-holdmetrics score / rewards --transfers: chain data files (a generated cryo dataset in
Parquet, ethereum-etl CSV) scored exactly, checked against the Python-integer reference."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import needs_native
from test_cli import cli, run
from test_transfers import cryo_tables, live, random_transfers
from transfer_reference import reference_holds, reference_scores

pa = pytest.importorskip("pyarrow", reason="--transfers reads CSV / Parquet with pyarrow (a test dependency)")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = needs_native


@pytest.fixture(scope="module")
def cryo_dataset(tmp_path_factory):
    """A few thousand ERC-20 transfers over two tokens, written as cryo writes them:
    erc20_transfers (binary addresses, value_binary / value_string / value_f64) and blocks."""
    rows, times = random_transfers(2024, 3000, tokens=2, holders=40)
    rows = live(rows)
    transfers, blocks = cryo_tables(rows, times)
    d = tmp_path_factory.mktemp("cryo")
    half = len(rows) // 2  # cryo writes one file per block range
    pq.write_table(transfers.slice(0, half), d / "ethereum__erc20_transfers__0.parquet")
    pq.write_table(transfers.slice(half), d / "ethereum__erc20_transfers__1.parquet")
    pq.write_table(blocks, d / "ethereum__blocks.parquet")
    return d, rows, times


def transfer_args(d) -> list:
    return ["--transfers", d / "ethereum__erc20_transfers__0.parquet", "--transfers",
            d / "ethereum__erc20_transfers__1.parquet", "--blocks", d / "ethereum__blocks.parquet"]


def test_cryo_by_holder_equals_the_reference(capsys, cryo_dataset):
    d, rows, times = cryo_dataset
    now = max(times.values()) + 3600
    want = reference_scores(reference_holds(rows), now)
    code, out, err = cli(capsys, "score", *transfer_args(d), "--exact", "--by-holder", "--now", now, "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["rows"] == len(rows) and got["now"] == now
    assert all(isinstance(h["score"], str) for h in got["holders"])  # exact: decimal strings in JSON
    assert {h["holder_id"]: int(h["score"]) for h in got["holders"] if h["score"] != "0"} == want
    ranked = sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))
    code, out, _ = cli(capsys, "score", *transfer_args(d), "--exact", "--by-holder", "--top", 5, "--now", now,
                       "--format", "csv")
    assert code == 0
    back = list(csv.DictReader(out.splitlines()))
    assert [(r["holder_id"], int(r["score"])) for r in back] == ranked[:5]
    code, out, _ = cli(capsys, "score", *transfer_args(d), "--now", now, "--format", "json")  # the total
    assert code == 0 and int(json.loads(out)["score"]) == sum(want.values())
    code, out, _ = cli(capsys, "score", *transfer_args(d), "--by-holder", "--top", 3, "--now", now)  # a table
    assert code == 0 and str(ranked[0][1]) in out.splitlines()[1]


def test_cryo_as_of_an_earlier_now(capsys, cryo_dataset):
    """--now in the middle of the data: later transfers are left out, balances held at now
    count up to now."""
    d, rows, times = cryo_dataset
    now = sorted(times.values())[len(times) // 2]
    want = reference_scores(reference_holds([r for r in rows if r["time"] <= now]), now)
    code, out, err = cli(capsys, "score", *transfer_args(d), "--exact", "--by-holder", "--now", now, "--format", "json")
    assert code == 0, err
    assert {h["holder_id"]: int(h["score"]) for h in json.loads(out)["holders"] if h["score"] != "0"} == want
    code, out, _ = cli(capsys, "score", *transfer_args(d), "--now", now, "--format", "json")
    assert int(json.loads(out)["score"]) == sum(want.values())


def test_cryo_in_a_campaign_window(capsys, cryo_dataset):
    d, rows, times = cryo_dataset
    ts = sorted(times.values())
    t0, t1, now = ts[len(ts) // 4], ts[3 * len(ts) // 4], ts[-1] + 5
    want: dict[str, int] = {}
    for _, holder, start, end, w in reference_holds(rows):
        held = min(now if end is None else end, now, t1) - max(start, t0)
        if held > 0:
            want[holder] = want.get(holder, 0) + held * w
    code, out, err = cli(capsys, "score", *transfer_args(d), "--by-holder", "--window", f"{t0},{t1}", "--now", now,
                         "--format", "json")
    assert code == 0, err
    assert {h["holder_id"]: int(h["score"]) for h in json.loads(out)["holders"] if h["score"] != "0"} == want
    code, out, _ = cli(capsys, "score", *transfer_args(d), "--window", f"{t0},{t1}", "--now", now, "--format", "json")
    assert int(json.loads(out)["score"]) == sum(want.values())


def test_cryo_per_token_and_rewards(capsys, cryo_dataset):
    d, rows, times = cryo_dataset
    now = max(times.values()) + 10
    token = rows[0]["token_id"]
    want = reference_scores([h for h in reference_holds(rows) if h[0] == token], now)
    shouted = token.upper().replace("0X", "0x")  # any spelling of the token's address
    code, out, err = cli(capsys, "score", *transfer_args(d), "--by-holder", "--token", shouted, "--now", now,
                         "--format", "json")
    assert code == 0, err
    assert {h["holder_id"]: int(h["score"]) for h in json.loads(out)["holders"] if h["score"] != "0"} == want
    pool = 10**24 + 3
    code, out, err = cli(capsys, "rewards", *transfer_args(d), "--pool", pool, "--now", now, "--format", "json")
    assert code == 0, err
    alloc = json.loads(out)
    assert sum(int(r["amount"]) for r in alloc) == pool
    everyone = reference_scores(reference_holds(rows), now)
    from poh_holdmetrics._rewards import _split
    assert [(r["holder_id"], int(r["amount"])) for r in alloc] == _split(everyone, pool, None)


def test_runs_as_a_module(cryo_dataset):
    d, rows, times = cryo_dataset
    now = max(times.values())
    r = run("score", *transfer_args(d), "--exact", "--by-holder", "--top", 1, "--now", now, "--format", "json")
    assert r.returncode == 0, r.stderr
    best = max(reference_scores(reference_holds(rows), now).items(), key=lambda kv: (kv[1], kv[0]))
    assert json.loads(r.stdout)["holders"][0]["score"] == str(best[1])


def test_ethereum_etl_csv_and_bad_rows(capsys, tmp_path):
    rows, times = random_transfers(5, 200)
    rows = live(rows)
    t = tmp_path / "token_transfers.csv"
    header = "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n"
    lines = [f"{r['token_id']},{r['from_address']},{r['to_address']},{r['value']},0x{i:064x},{r['log_index']},"
             f"{r['block']}\n" for i, r in enumerate(rows)]
    t.write_text(header + "".join(lines), encoding="utf-8")
    b = tmp_path / "blocks.csv"
    b.write_text("number,hash,timestamp\n" + "".join(f"{n},0x{n:064x},{ts}\n" for n, ts in sorted(times.items())),
                 encoding="utf-8")
    now = max(times.values()) + 1
    code, out, err = cli(capsys, "score", "--transfers", t, "--blocks", b, "--exact", "--by-holder", "--now", now,
                         "--format", "json")
    assert code == 0, err
    want = reference_scores(reference_holds(rows), now)
    assert {h["holder_id"]: int(h["score"]) for h in json.loads(out)["holders"] if h["score"] != "0"} == want
    # a transfer of more than the sender has: the file and line of that row
    holder = next(r for r in rows if r["from_address"] != "0x" + "0" * 40)
    bad = (f"{holder['token_id']},{holder['from_address']},{holder['to_address']},{10**60},0xff,0,"
           f"{max(times)}\n")
    t.write_text(header + "".join(lines) + bad, encoding="utf-8")
    code, out, err = cli(capsys, "score", "--transfers", t, "--blocks", b, "--now", now)
    assert code == 1 and out == ""
    assert f"{t}:{len(lines) + 2}: value: holder" in err and "would go negative" in err
    t.write_text(header + lines[0].replace(f",{rows[0]['block']}\n", ",999999\n"), encoding="utf-8")
    code, _, err = cli(capsys, "score", "--transfers", t, "--blocks", b, "--now", now)
    assert code == 1 and f"{t}:2: block_number 999999: is not in blocks" in err


def test_balance_table_and_opening_file(capsys, tmp_path):
    t = tmp_path / "balances.csv"
    t.write_text("token_id,holder_id,time,balance\nSOL,So1ana,0,5\nSOL,so1ana,10,7\nSOL,So1ana,40,2\n",
                 encoding="utf-8")
    code, out, err = cli(capsys, "score", "--transfers", t, "--kind", "balance", "--by-holder", "--now", 100,
                         "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[1:] == ["1,so1ana,630,90,1,1,1", "2,So1ana,320,100,2,1,1"]
    tr = tmp_path / "t.csv"
    tr.write_text("token_id,from_address,to_address,value,time\n"
                  f"0x{'11' * 20},0x{'aa' * 20},0x{'bb' * 20},7,60\n", encoding="utf-8")
    op = tmp_path / "opening.csv"
    op.write_text(f"token_id,holder_id,balance\n0x{'11' * 20},0x{'aa' * 20},10\n", encoding="utf-8")
    code, out, err = cli(capsys, "score", "--transfers", tr, "--opening", op, "--opening-time", 50, "--by-holder",
                         "--now", 100, "--format", "json")
    assert code == 0, err
    assert [(h["holder_id"][:4], h["score"]) for h in json.loads(out)["holders"]] == [("0xbb", "280"), ("0xaa", "220")]


def test_exact_hold_files(capsys, tmp_path):
    """--exact with ordinary hold files: integer weights as decimal text, scored exactly."""
    p = tmp_path / "holds.csv"
    p.write_text("token_id,holder_id,start,end,weight\nT,a,0,10,1000000000000000000000001\nT,b,0,,\n"
                 "T,a,5,20,2\n", encoding="utf-8")
    for engine in ("pyarrow", "python"):
        code, out, err = cli(capsys, "score", p, "--exact", "--now", 100, "--format", "json", "--engine", engine)
        assert code == 0, err
        assert json.loads(out)["score"] == str(10 * (10**24 + 1) + 100 + 30)
        code, out, err = cli(capsys, "score", p, "--exact", "--by-holder", "--now", 100, "--format", "csv",
                             "--engine", engine)
        assert code == 0, err
        assert out.splitlines()[1].startswith(f"1,a,{10 * (10**24 + 1) + 30},")
    j = tmp_path / "holds.jsonl"
    j.write_text('{"token_id": "T", "holder_id": "a", "start": 0, "end": 10, "weight": 100000000000000000000001}\n'
                 '{"token_id": "T", "holder_id": "a", "start": 0, "end": 10, "weight": "7"}\n', encoding="utf-8")
    code, out, err = cli(capsys, "score", j, "--exact", "--now", 100, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["score"] == str(10 * (10**23 + 1) + 70)
    p.write_text("token_id,holder_id,start,end,weight\nT,a,0,10,1.5\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", p, "--exact", "--now", 100)
    assert code == 1 and f'{p}:2: weight: weight "1.5": must be a decimal integer (exact mode)' in err


@pytest.mark.parametrize("args, fragment", [
    (["score", "x.csv", "--transfers", "t.csv"], "hold files or --transfers, not both"),
    (["score", "x.csv", "--blocks", "b.csv"], "--blocks needs --transfers"),
    (["score", "x.csv", "--kind", "delta"], "--kind needs --transfers"),
    (["score", "--transfers", "t.csv", "--skip-invalid"], "--skip-invalid does not apply to --transfers"),
    (["rewards", "--pool", "5"], "required: FILE (or --transfers FILE)"),
])
def test_chain_usage_errors(capsys, args, fragment):
    code, out, err = cli(capsys, *args)
    assert code == 2 and fragment in err, err


def test_missing_and_unreadable_files(capsys, tmp_path):
    code, _, err = cli(capsys, "score", "--transfers", tmp_path / "nope.parquet")
    assert code == 1 and "nope.parquet: no such file" in err
    j = tmp_path / "t.jsonl"
    j.write_text("{}\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", "--transfers", j)
    assert code == 1 and "must be CSV or Parquet" in err
