"""poh-holdmetrics rewards: per-holder windowed scores from files, then an exact split."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from fractions import Fraction

import pytest

from conftest import needs_native
from poh_holdmetrics import calculate_score
from poh_holdmetrics._cli import main
from test_cli import NOW, SAMPLE, cli, run, sample_events

pytestmark = needs_native  # per-holder scores come from the native Aggregator

WINDOW = (1735689600, 1736294400)  # 2025-01-01 .. 2025-01-08


def expected_scores(window=None, now=NOW, token=None) -> dict[str, float]:
    """Per-holder windowed scores computed independently of the CLI (calculate_score per holder)."""
    by = defaultdict(list)
    for e in sample_events():
        if token is None or e.token_id == token:
            by[e.holder_id].append(e)
    return {h: calculate_score(evs, now=now, window=window) for h, evs in by.items()}


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("pool", [10**27, 10**30 + 7, 1])
def test_rewards_sum_to_pool_and_follow_window_scores(capsys, pool):
    code, out, err = cli(capsys, "rewards", SAMPLE, "--pool", pool, "--window", f"{WINDOW[0]},{WINDOW[1]}",
                         "--now", NOW, "--format", "csv")
    assert code == 0, err
    rows = parse_csv(out)
    assert sum(int(r["amount"]) for r in rows) == pool
    want = {h: s for h, s in expected_scores(WINDOW).items() if s > 0}
    assert {r["holder_id"]: float(r["score"]) for r in rows} == want
    total = sum(Fraction(s) for s in want.values())
    for r in rows:  # proportional to within one unit
        assert abs(int(r["amount"]) - pool * Fraction(float(r["score"])) / total) < 1


def test_rewards_window_changes_the_split(capsys):
    _, whole, _ = cli(capsys, "rewards", SAMPLE, "--pool", 10**6, "--now", NOW, "--format", "json")
    _, windowed, _ = cli(capsys, "rewards", SAMPLE, "--pool", 10**6, "--now", NOW, "--format", "json",
                         "--window", f"{WINDOW[0]},{WINDOW[1]}")
    assert json.loads(whole) != json.loads(windowed)
    assert {r["holder_id"]: float(r["score"]) for r in json.loads(whole)} == \
        {h: s for h, s in expected_scores().items() if s > 0}


def test_rewards_cap_min_score_and_output_file(capsys, tmp_path):
    out_file = tmp_path / "airdrop.csv"
    scores = {h: s for h, s in expected_scores(WINDOW).items() if s > 0}
    cap = -(-10**6 // len(scores))  # feasible, and below the biggest quota
    code, out, err = cli(capsys, "rewards", SAMPLE, "--pool", 10**6, "--window", f"{WINDOW[0]},{WINDOW[1]}",
                         "--now", NOW, "--cap", cap, "--format", "csv", "-o", out_file, "--decimals", 2)
    assert code == 0, err
    assert out == "" and "summing to 1000000" in err
    rows = parse_csv(out_file.read_text(encoding="utf-8"))
    assert sum(int(r["amount"]) for r in rows) == 10**6
    assert max(int(r["amount"]) for r in rows) <= cap
    assert all(r["amount_decimal"] == f"{int(r['amount']) // 100}.{int(r['amount']) % 100:02d}" for r in rows)
    lowest = min(scores.values())
    _, out, _ = cli(capsys, "rewards", SAMPLE, "--pool", 100, "--window", f"{WINDOW[0]},{WINDOW[1]}", "--now", NOW,
                    "--min-score", lowest + 1, "--format", "csv")
    assert all(float(r["score"]) > lowest for r in parse_csv(out))


def test_rewards_errors(capsys):
    code, _, err = cli(capsys, "rewards", SAMPLE, "--pool", 10, "--cap", 1, "--now", NOW)
    assert code == 1 and "--cap" in err and "less than the pool 10" in err
    code, _, err = cli(capsys, "rewards", SAMPLE, "--pool", "ten")
    assert code == 2 and "'ten' is not a whole number" in err
    code, _, err = cli(capsys, "rewards", SAMPLE, "--pool", 10, "--window", "200,100")
    assert code == 2 and "end 100 is before start 200" in err
    code, _, err = cli(capsys, "rewards", SAMPLE, "--pool", 10, "--window", "1")
    assert code == 2 and "T0,T1" in err
    code, _, err = cli(capsys, "rewards", SAMPLE)
    assert code == 2 and "--pool" in err


def test_rewards_table_through_the_command_line():
    p = run("rewards", SAMPLE, "--pool", 1000, "--now", NOW, "--window", f"{WINDOW[0]},{WINDOW[1]}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["holder_id", "score", "share", "amount"]
    assert sum(int(line.split()[-1]) for line in lines[1:]) == 1000


def test_score_window_matches_calculate_score(capsys):
    code, out, err = cli(capsys, "score", SAMPLE, "--now", NOW, "--window", f"{WINDOW[0]},{WINDOW[1]}",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["score"] == calculate_score(sample_events(), now=NOW, window=WINDOW)
    code, out, err = cli(capsys, "score", SAMPLE, "--now", NOW, "--window", f"{WINDOW[0]},{WINDOW[1]}",
                         "--by-holder", "--format", "json")
    assert code == 0, err
    got = {r["holder_id"]: r["score"] for r in json.loads(out)["holders"]}
    assert got == expected_scores(WINDOW)
