"""The airdrop end to end: a generated cryo transfer set and campaign rules -> amounts,
breakdown, merkle trees, manifest; verify, verify-run, epochs, and the errors that name what is
wrong. The StandardMerkleTree dump is loaded by the real @openzeppelin/merkle-tree (npm)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import needs_native
from test_cli import cli

pa = pytest.importorskip("pyarrow", reason="the airdrop reads chain data with pyarrow (a test dependency)")
pq = pytest.importorskip("pyarrow.parquet")

import poh_holdmetrics as phm  # noqa: E402

pytestmark = needs_native

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "airdrop"
WINDOW = (1_704_067_200, 1_711_929_600)  # 2024-01-01 .. 2024-04-01
POOL = 10**24


def _generator():
    spec = importlib.util.spec_from_file_location("make_transfers", EXAMPLE / "make_transfers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The example's cryo-schema data (erc20_transfers in two files, blocks) and rules."""
    d = tmp_path_factory.mktemp("airdrop")
    table, blocks = _generator().generate(300, 3000, 7)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), d / "ethereum__erc20_transfers__0.parquet")
    pq.write_table(table.slice(half), d / "ethereum__erc20_transfers__1.parquet")
    pq.write_table(blocks, d / "ethereum__blocks.parquet")
    shutil.copy(EXAMPLE / "campaign.toml", d / "campaign.toml")
    shutil.copy(EXAMPLE / "team.txt", d / "team.txt")
    return d


def chain_args(d: Path) -> list:
    return ["--transfers", d / "ethereum__erc20_transfers__0.parquet", "--transfers",
            d / "ethereum__erc20_transfers__1.parquet", "--blocks", d / "ethereum__blocks.parquet"]


def read_amounts(out: Path) -> dict[str, int]:
    with open(out / "amounts.csv", newline="") as f:
        return {r["address"].lower(): int(r["amount"]) for r in csv.DictReader(f)}


def airdrop(capsys, d: Path, out: Path, *extra) -> tuple[int, str, str]:
    return cli(capsys, "airdrop", *chain_args(d), "--rules", d / "campaign.toml", "--pool", POOL, "--window",
               f"{WINDOW[0]},{WINDOW[1]}", "--now", WINDOW[1], "--out", out, "--no-progress", *extra)


def npm_load(dump: Path) -> str:
    """The root @openzeppelin/merkle-tree's StandardMerkleTree.load(dump).validate() gives."""
    oracle = ROOT / "tests" / "npm"
    node = shutil.which("node")
    if node is None or not (oracle / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        if os.environ.get("POH_REQUIRE_ORACLE"):
            pytest.fail("the npm oracle is not installed (npm ci --prefix tests/npm)")
        pytest.skip("the npm oracle is not installed (make deps, or npm ci --prefix tests/npm)")
    req = json.dumps({"op": "load", "dump": json.loads(dump.read_text())})
    r = subprocess.run([node, str(oracle / "oracle.mjs")], input=req, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["root"]


def test_cli_airdrop_verify_and_rerun(capsys, dataset, tmp_path):
    out = tmp_path / "drop"
    code, text, err = airdrop(capsys, dataset, out)
    assert code == 0, err
    m = json.loads((out / "manifest.json").read_text())
    assert f"standard merkle root {m['roots']['standard']}" in text
    amounts = read_amounts(out)
    assert sum(amounts.values()) == POOL == int(m["total"])
    assert "0x00000000000000000000000000000000000c0ffe" not in amounts  # team.txt
    # Every file the manifest lists has its sha256; every input is there.
    import hashlib
    for name, digest in m["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert [e["path"] for e in m["inputs"]["transfers"]][0].endswith("ethereum__erc20_transfers__0.parquet")
    assert m["inputs"]["exclusions"][0]["path"].endswith("team.txt")
    # The breakdown says why: the team wallet excluded by exclude.files, tiers applied.
    with open(out / "breakdown.csv", newline="") as f:
        rows = {r["holder"].lower(): r for r in csv.DictReader(f)}
    assert rows["0x00000000000000000000000000000000000c0ffe"]["rule"] == "exclude.files"
    awarded = [r for r in rows.values() if r["status"] == "awarded"]
    assert {r["duration_multiplier"] for r in awarded} <= {"1", "1.5", "2"}
    assert all(int(r["amount"]) <= 50_000 * 10**18 for r in awarded)
    # The npm library loads our dump and computes the same root.
    assert npm_load(out / "merkle-standard.json") == m["roots"]["standard"]
    # verify: the directory, one claim.
    code, text, err = cli(capsys, "verify", out)
    assert code == 0 and text.count("OK ") == 2, err
    who = next(iter(amounts))
    code, text, err = cli(capsys, "verify", out / "merkle-uniswap.json", "--address", who.upper().replace("0X", "0x"))
    assert code == 0 and f"amount {amounts[who]}" in text, err
    # verify-run: the same.
    code, text, err = cli(capsys, "verify-run", out / "manifest.json")
    assert code == 0 and text.startswith("same:"), (text, err)


def test_verify_run_notices_a_changed_input(capsys, dataset, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(dataset, d)
    out = tmp_path / "drop"
    assert airdrop(capsys, d, out)[0] == 0
    blocks = pq.read_table(d / "ethereum__blocks.parquet")
    ts = blocks.column("timestamp").to_pylist()
    ts[len(ts) // 2:] = [t + 3600 for t in ts[len(ts) // 2:]]
    pq.write_table(blocks.set_column(1, "timestamp", pa.array(ts, pa.uint32())), d / "ethereum__blocks.parquet")
    code, text, err = cli(capsys, "verify-run", out / "manifest.json")
    assert code == 1
    assert "input blocks" in text and "changed" in text and "standard root" in text


def test_tampered_outputs_fail_verify(capsys, dataset, tmp_path):
    out = tmp_path / "drop"
    assert airdrop(capsys, dataset, out)[0] == 0
    dump = json.loads((out / "merkle-standard.json").read_text())
    dump["values"][3]["value"][1] = str(int(dump["values"][3]["value"][1]) + 1)
    (out / "merkle-standard.json").write_text(json.dumps(dump))
    code, _, err = cli(capsys, "verify", out)
    assert code == 1 and "FAILED" in err and "value 3" in err
    with pytest.raises(phm.CampaignError, match="value 3"):
        phm.verify_merkle(out / "merkle-standard.json")


def test_rules_object_is_the_toml(dataset, tmp_path):
    """CampaignRules built in Python gives what campaign.toml gives."""
    tables = {"transfers": [dataset / "ethereum__erc20_transfers__0.parquet",
                            dataset / "ethereum__erc20_transfers__1.parquet"]}
    from poh_holdmetrics._airdrop import read_inputs
    transfers = read_inputs([str(p) for p in tables["transfers"]], "transfers")
    blocks = read_inputs([str(dataset / "ethereum__blocks.parquet")], "blocks")
    common = dict(pool=POOL, window=WINDOW, now=WINDOW[1], blocks=blocks)
    a = phm.run_airdrop(transfers, rules=dataset / "campaign.toml", out=tmp_path / "a", **common)
    rules = phm.CampaignRules(
        transform="sqrt", cap=50_000 * 10**18,
        eligibility={"min_balance": 100 * 10**18, "min_duration": "14d"},
        exclude={"files": ["team.txt"]},
        multipliers={"duration": [{"at": 30 * 86400, "multiplier": 1.5}, {"at": "60d", "multiplier": "2"}]},
        merkle={"leaf": ["address", "amount"], "formats": ["standard", "uniswap"]},
        base_dir=dataset)
    rules.check()
    b = phm.run_airdrop(transfers, rules=rules, out=tmp_path / "b", **common)
    assert a["roots"] == b["roots"] and a["outputs"] == b["outputs"]


def test_epochs_are_cumulative(capsys, dataset, tmp_path):
    e1, e2 = tmp_path / "e1", tmp_path / "e2"
    mid = (WINDOW[0] + WINDOW[1]) // 2
    args = [*chain_args(dataset), "--rules", dataset / "campaign.toml", "--no-progress"]
    assert cli(capsys, "airdrop", *args, "--pool", POOL, "--window", f"{WINDOW[0]},{mid}", "--now", mid,
               "--out", e1)[0] == 0
    code, text, err = cli(capsys, "airdrop", *args, "--pool", 2 * POOL, "--window", f"{mid},{WINDOW[1]}", "--now",
                          WINDOW[1], "--out", e2, "--previous", e1)
    assert code == 0, err
    assert "epoch 2" in text
    first, second = read_amounts(e1), read_amounts(e2)
    assert sum(second.values()) == 3 * POOL
    assert all(second.get(h, 0) >= a for h, a in first.items())
    m = json.loads((e2 / "manifest.json").read_text())
    assert m["epoch"] == {"index": 2, "pools": str(3 * POOL)}
    # verify-run of epoch 2 re-reads epoch 1.
    assert cli(capsys, "verify-run", e2 / "manifest.json")[0] == 0
    # A previous epoch that paid out more than its pools is refused, naming it.
    rows = (e1 / "amounts.csv").read_text().splitlines()
    i, a, amount = rows[1].split(",")
    rows[1] = f"{i},{a},{int(amount) + 1}"
    (e1 / "amounts.csv").write_text("\n".join(rows) + "\n")
    code, _, err = cli(capsys, "airdrop", *args, "--pool", POOL, "--window", f"{mid},{WINDOW[1]}", "--now",
                       WINDOW[1], "--out", tmp_path / "e3", "--previous", e1)
    assert code == 1 and "epoch 1" in err and "more than the pools so far" in err


@pytest.mark.parametrize("toml,fragment", [
    ('cap = 10\n[eligibilty]\nmin_score = 1\n', 'unknown field "eligibilty"'),
    ('transform = "cube"\n', 'transform "cube"'),
    ('[eligibility]\nmin_score = "10000000000000000000000000000000000000000000000000000"\n',
     "eligibility.min_score removed"),
    ('cap = 1\n', "cap"),
    ('[exclude]\nfiles = ["missing.txt"]\n', "missing.txt"),
    ('[exclude]\naddresses = ["0x12"]\n', 'exclude.addresses: [0]: "0x12" is not an address'),
    ('[merkle]\nleaf = ["address"]\n', "needs address and amount"),
    ('[multipliers]\nduration = [{ at = "9x", multiplier = "2" }]\n', '"9x" is not a duration'),
    ('cap = [\n', "campaign.toml"),
])
def test_rule_errors_name_the_rule(capsys, dataset, tmp_path, toml, fragment):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    (d / "campaign.toml").write_text(toml)
    code, _, err = airdrop(capsys, d, tmp_path / "out")
    assert code == 1 and fragment in err, err


def test_bad_exclusion_line_and_bad_row(capsys, dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(dataset, d)
    (d / "team.txt").write_text("# ok\n0x00000000000000000000000000000000000C0FFE\nnot-an-address\n")
    code, _, err = airdrop(capsys, d, tmp_path / "out")
    assert code == 1 and "team.txt:3" in err, err
    # A transfer that spends more than the sender has names its file and row.
    t = pq.read_table(dataset / "ethereum__erc20_transfers__1.parquet")
    v = t.column("value_binary").to_pylist()
    v[5] = (10**40).to_bytes(32, "big")
    t = t.set_column(t.schema.get_field_index("value_binary"), "value_binary", pa.array(v, pa.binary()))
    t = t.drop_columns(["value_string", "value_f64"])
    pq.write_table(t, d / "ethereum__erc20_transfers__1.parquet")
    (d / "team.txt").write_text("")
    code, _, err = airdrop(capsys, d, tmp_path / "out2")
    assert code == 1 and "ethereum__erc20_transfers__1.parquet" in err and "negative" in err, err
