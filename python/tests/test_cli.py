"""poh-holdmetrics: score (CSV / JSON Lines / Parquet, both CSV engines, mapping, chunks,
bad rows, --skip-invalid, formats, progress, bounded memory), top / stats against an HTTP
daemon, serve, version, usage errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import poh_holdmetrics
from conftest import PURE, REPO, needs_native
from poh_holdmetrics import HoldEvent, calculate_score
from poh_holdmetrics._cli import main

SAMPLE = REPO / "examples" / "sample_holds.csv"
NOW = 1736899200  # 2025-01-15T00:00:00Z
ENGINES = ["pyarrow", "python"]
TIMEOUT = 120


def run(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """The command line as a user runs it: python -m poh_holdmetrics ..."""
    return subprocess.run([sys.executable, "-m", "poh_holdmetrics", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, **(env or {})}, **kw)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """The command line in process (faster); SystemExit (usage errors) becomes a code."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def sample_events() -> list[HoldEvent]:
    """The sample file read independently of the CLI (csv module + HoldEvent)."""
    from datetime import datetime
    out = []
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            t = [int(v) if v.isdigit() else datetime.fromisoformat(v) if v else None for v in (r["start"], r["end"])]
            out.append(HoldEvent(r["token_id"], r["holder_id"], t[0], t[1], float(r["weight"] or 1.0)))
    return out


def expected_ranking(events: list[HoldEvent], now: int, token: str | None = None) -> list[tuple[str, float]]:
    by: dict[str, list[HoldEvent]] = defaultdict(list)
    for e in events:
        if token is None or e.token_id == token:
            by[e.holder_id].append(e)
    rows = [(h, calculate_score(evs, now=now)) for h, evs in by.items()]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def engine_args(engine: str) -> list[str]:
    if engine == "pyarrow":
        pytest.importorskip("pyarrow", reason="the pyarrow CSV engine needs pyarrow (a test dependency)")
    return ["--engine", engine]


# --- score: totals and rankings -------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_score_sample_total(capsys, engine):
    code, out, err = cli(capsys, "score", SAMPLE, "--now", NOW, "--format", "json", *engine_args(engine))
    assert code == 0, err
    got = json.loads(out)
    assert got == {"now": NOW, "rows": 15, "skipped": 0, "score": calculate_score(sample_events(), now=NOW)}
    assert err == ""  # no progress bar: stderr is not a terminal


def test_score_sample_runs_as_a_module():
    r = run("score", SAMPLE, "--now", "2025-01-15T00:00:00Z")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["rows", "skipped", "now", "score"]
    assert row.split() == ["15", "0", str(NOW), "6563721600.0"]


@needs_native
@pytest.mark.parametrize("engine", ENGINES)
def test_score_by_holder_ranking(capsys, engine):
    code, out, err = cli(capsys, "score", SAMPLE, "--now", NOW, "--by-holder", "--format", "json",
                         *engine_args(engine))
    assert code == 0, err
    got = json.loads(out)
    assert [(r["holder_id"], r["score"]) for r in got["holders"]] == expected_ranking(sample_events(), NOW)
    assert [r["rank"] for r in got["holders"]] == list(range(1, len(got["holders"]) + 1))
    bob = next(r for r in got["holders"] if r["holder_id"] == "0xb0b")
    assert (bob["events"], bob["open_holds"], bob["tokens"]) == (3, 1, 2)


@needs_native
def test_score_by_holder_top_and_token(capsys):
    code, out, _ = cli(capsys, "score", SAMPLE, "--now", NOW, "--by-holder", "--top", 3, "--token", "POH-LP",
                       "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(out.splitlines()))
    want = expected_ranking(sample_events(), NOW, token="POH-LP")[:3]
    assert [(r["holder_id"], float(r["score"])) for r in rows] == want
    code, out, _ = cli(capsys, "score", SAMPLE, "--now", NOW, "--by-holder", "--top", 2)
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "holder_id", "score", "total_seconds", "events", "open_holds", "tokens"]
    assert len(lines) == 3 and lines[1].split()[:2] == ["1", "0xb0b"]


@needs_native
def test_by_holder_scores_at_now_like_the_total(capsys, tmp_path):
    """A closed hold ending after --now counts up to --now, as in the total."""
    p = tmp_path / "future.csv"
    p.write_text("token_id,holder_id,start,end,weight\nT,a,100,1000,1\nT,a,600,900,2\nT,b,50,,1\n", encoding="utf-8")
    code, out, _ = cli(capsys, "score", p, "--now", 500, "--by-holder", "--format", "json")
    holders = {r["holder_id"]: r["score"] for r in json.loads(out)["holders"]}
    assert holders == {"a": 400.0, "b": 450.0}
    code, out, _ = cli(capsys, "score", p, "--now", 500, "--format", "json")
    assert json.loads(out)["score"] == 850.0


def test_column_mapping_and_tsv(capsys, tmp_path):
    p = tmp_path / "holds.tsv"
    p.write_text("wallet\tasset\tfrom\tto\tamount\tnote\n"
                 "alice\tT\t0\t10\t2.5\tx\n"
                 "bob\tT\t5\t\t\ty\n", encoding="utf-8")
    code, out, err = cli(capsys, "score", p, "--holder-col", "wallet", "--token-col", "asset", "--start-col", "from",
                         "--end-col", "to", "--weight-col", "amount", "--now", 20, "--format", "csv")
    assert code == 0, err
    assert out.splitlines() == ["rows,skipped,now,score", "2,0,20,40.0"]  # 10 * 2.5 + 15 * 1.0
    code, _, err = cli(capsys, "score", p, "--now", 20)
    assert code == 1 and "no 'start' column" in err and "--start-col" in err


def test_optional_columns_and_iso_times(capsys, tmp_path):
    p = tmp_path / "min.csv"  # no end (all open), no weight (1.0), ISO and float times
    p.write_text("token_id,holder_id,start\nT,a,1970-01-01T00:00:10Z\nT,b,12.9\nT,c,1970-01-01T01:00:00+01:00\n",
                 encoding="utf-8")
    code, out, err = cli(capsys, "score", p, "--now", 20, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["score"] == 10 + 8 + 20


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_jsonl_and_parquet_match_csv(capsys, tmp_path, kind):
    events = sample_events()
    if kind == "jsonl":
        p = tmp_path / "holds.jsonl"
        with p.open("w", encoding="utf-8") as f:
            for e in events:
                f.write(json.dumps({"token_id": e.token_id, "holder_id": e.holder_id, "start": e.start,
                                    **({"end": e.end} if e.end is not None else {}), "weight": e.weight}) + "\n")
                f.write("\n")  # blank lines are ignored
    else:
        pa = pytest.importorskip("pyarrow", reason="Parquet input needs pyarrow (a test dependency)")
        import pyarrow.parquet as pq
        p = tmp_path / "holds.parquet"
        pq.write_table(pa.table({"token_id": [e.token_id for e in events], "holder_id": [e.holder_id for e in events],
                                 "start": [e.start for e in events], "end": [e.end for e in events],
                                 "weight": [e.weight for e in events]}), p, row_group_size=4)
    code, out, err = cli(capsys, "score", p, "--now", NOW, "--format", "json", "--chunk-rows", 3)
    assert code == 0, err
    assert json.loads(out)["score"] == calculate_score(events, now=NOW)


def test_several_files_add_up(capsys, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.jsonl"
    a.write_text("token_id,holder_id,start,end\nT,x,0,10\n", encoding="utf-8")
    b.write_text('{"token_id": "T", "holder_id": "y", "start": 0, "end": 5, "weight": 2}\n', encoding="utf-8")
    code, out, _ = cli(capsys, "score", a, b, "--now", 100, "--format", "json")
    assert (code, json.loads(out)["score"], json.loads(out)["rows"]) == (0, 20.0, 2)


# --- chunked streaming ----------------------------------------------------------------------

def write_generated(path: Path, n: int, seed: int = 7, holders: int = 1000) -> dict:
    """n random rows (a third open); returns the columns as numpy arrays."""
    np = pytest.importorskip("numpy", reason="generating large inputs needs numpy (a test dependency)")
    rng = np.random.default_rng(seed)
    start = rng.integers(1_600_000_000, 1_700_000_000, n)
    end = start + rng.integers(0, 10_000_000, n)
    open_ = rng.random(n) < 0.33
    weight = np.round(rng.random(n) * 100, 3)
    hol = rng.integers(0, holders, n)
    with path.open("w", encoding="utf-8") as f:
        f.write("token_id,holder_id,start,end,weight\n")
        f.writelines(f"T{h % 3},h{h},{s},{'' if o else e},{w!r}\n"
                     for h, s, e, o, w in zip(hol.tolist(), start.tolist(), end.tolist(), open_.tolist(),
                                              weight.tolist()))
    return {"start": start, "end": np.ma.MaskedArray(end, mask=open_), "weight": weight,
            "holder_id": [f"h{h}" for h in hol], "token_id": [f"T{h % 3}" for h in hol]}


@pytest.mark.parametrize("engine", ENGINES)
def test_chunked_total_equals_one_batch(capsys, tmp_path, engine):
    p = tmp_path / "gen.csv"
    cols = write_generated(p, 30_000)
    want = calculate_score({k: cols[k] for k in ("start", "end", "weight")}, now=1_700_000_000)
    code, out, err = cli(capsys, "score", p, "--now", 1_700_000_000, "--format", "json", "--chunk-rows", 1000,
                         *engine_args(engine))
    assert code == 0, err
    got = json.loads(out)
    assert got["rows"] == 30_000
    assert got["score"] == pytest.approx(want, rel=1e-12)


@needs_native
def test_chunked_ranking_equals_one_batch(capsys, tmp_path):
    p = tmp_path / "gen.csv"
    cols = write_generated(p, 20_000, holders=300)
    from poh_holdmetrics import Aggregator
    with Aggregator() as agg:
        agg.record_many_sync(cols)
        want = [(s.holder_id, s.score) for s in agg.top_n(25, now=1_800_000_000)]
    code, out, _ = cli(capsys, "score", p, "--now", 1_800_000_000, "--by-holder", "--top", 25, "--format", "json",
                       "--chunk-rows", 777)
    got = [(r["holder_id"], r["score"]) for r in json.loads(out)["holders"]]
    assert [h for h, _ in got] == [h for h, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_memory_stays_bounded(tmp_path, engine):
    """Peak RSS scoring 10x the rows grows by far less than one Python object per row
    would need (>= 28 bytes per int alone): chunks are columnar and freed."""
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_generated(small, 60_000)
    write_generated(big, 600_000)
    code = ("import resource, sys\n"
            "from poh_holdmetrics._cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)\n")

    def peak_kib(path):
        r = subprocess.run([sys.executable, "-c", code, "score", str(path), "--now", "1700000000", "--format", "json",
                            *engine_args(engine)], capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["rows"] in (60_000, 600_000)
        return int(r.stderr.strip().splitlines()[-1])

    growth_mib = (peak_kib(big) - peak_kib(small)) / 1024
    # 540,000 more rows held as Python objects (5 fields) would be > 100 MiB
    assert growth_mib < 40, f"peak RSS grew by {growth_mib:.0f} MiB for 540k more rows"


# --- bad rows -------------------------------------------------------------------------------

BAD_FILES = {
    # line 4: end before start (a semantic error found by the core)
    "order": ("token_id,holder_id,start,end,weight\nT,a,0,10,1\nT,b,5,,2\nT,c,50,40,1\nT,d,1,2,1\n", 4, "end"),
    # line 3: a time that is not a time (a parse error)
    "type": ("token_id,holder_id,start,end,weight\nT,a,0,10,1\nT,b,yesterday,,2\nT,d,1,2,1\n", 3, "start"),
    "weight": ("token_id,holder_id,start,end,weight\nT,a,0,10,1\nT,b,0,10,-1\nT,d,1,2,1\n", 3, "weight"),
    "weight_text": ("token_id,holder_id,start,end,weight\nT,a,0,10,1\nT,b,0,10,lots\nT,d,1,2,1\n", 3, "weight"),
    "empty_id": ("token_id,holder_id,start,end,weight\nT,a,0,10,1\nT,,0,10,1\n", 3, "holder_id"),
    "fields": ("token_id,holder_id,start,end,weight\nT,a,0,10,1\nT,b,0\n", 3, "row"),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_row_names_file_line_field_and_exits_1(capsys, tmp_path, engine, case):
    text, line, field = BAD_FILES[case]
    p = tmp_path / f"{case}.csv"
    p.write_text(text, encoding="utf-8")
    code, out, err = cli(capsys, "score", p, "--now", 100, "--chunk-rows", 2, *engine_args(engine))
    assert code == 1 and out == ""
    assert err.startswith(f"poh-holdmetrics: error: {p}:{line}: {field}: "), err


def test_bad_row_in_a_late_chunk_reports_its_line(capsys, tmp_path):
    p = tmp_path / "late.csv"
    rows = ["token_id,holder_id,start,end,weight"] + [f"T,h{i},{i},{i + 5},1" for i in range(5000)]
    rows[4321] = "T,bad,100,1,1"  # line 4322
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for engine in ENGINES:
        code, _, err = cli(capsys, "score", p, "--now", 10_000, "--chunk-rows", 1000, *engine_args(engine))
        assert code == 1 and f"{p}:4322: end: " in err, err


@pytest.mark.parametrize("engine", ENGINES)
def test_skip_invalid_counts_and_reports(capsys, tmp_path, engine):
    p = tmp_path / "mixed.csv"
    p.write_text("token_id,holder_id,start,end,weight\n"
                 "T,a,0,10,1\n"        # 10
                 "T,b,50,40,1\n"       # end < start
                 "T,c,x,,1\n"          # not a time
                 "T,d,0,5,2\n"         # 10
                 "T,,0,5,2\n"          # empty holder
                 "T,e,0,1,nan\n"       # not finite
                 "T,f,0,3,1\n", encoding="utf-8")        # 3
    code, out, err = cli(capsys, "score", p, "--now", 100, "--skip-invalid", "--format", "json", "--chunk-rows", 3,
                         *engine_args(engine))
    assert code == 0, err
    got = json.loads(out)
    assert (got["rows"], got["skipped"], got["score"]) == (3, 4, 23.0)
    assert "skipped 4 invalid rows" in err
    for line, field in ((3, "end"), (4, "start"), (6, "holder_id"), (7, "weight")):
        assert f"{p}:{line}: {field}: " in err


def test_bad_jsonl_line(capsys, tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"token_id": "T", "holder_id": "a", "start": 0, "end": 1}\n{"token_id": "T", \n'
                 '{"token_id": "T", "start": 0}\n', encoding="utf-8")
    code, _, err = cli(capsys, "score", p, "--now", 5)
    assert code == 1 and f"{p}:2: row: invalid JSON" in err
    code, out, err = cli(capsys, "score", p, "--now", 5, "--skip-invalid", "--format", "json")
    assert code == 0 and json.loads(out)["skipped"] == 2
    assert f"{p}:3: holder_id: is missing" in err


def test_missing_file_is_an_error(capsys, tmp_path):
    code, _, err = cli(capsys, "score", tmp_path / "nope.csv")
    assert code == 1 and "nope.csv: no such file" in err


# --- progress -------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="Unix only: needs a pseudo-terminal (pty, termios)")
def test_progress_bar_only_on_a_terminal(tmp_path):
    import pty
    p = tmp_path / "gen.csv"
    write_generated(p, 2000)
    master, slave = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "poh_holdmetrics", "score", str(p), "--now", "1700000000"],
                           stdout=subprocess.PIPE, stderr=slave, timeout=TIMEOUT)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the terminal is closed and drained
                break
            if not b:
                break
            chunks.append(b)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    tty_err = b"".join(chunks).decode()
    assert r.returncode == 0
    assert "\r" in tty_err and "100.0%" in tty_err and "rows/s" in tty_err and "2,000 rows" in tty_err
    assert "rows/s" not in r.stdout.decode()
    piped = run("score", p, "--now", 1700000000)
    assert piped.returncode == 0 and piped.stderr == ""
    forced = run("score", p, "--now", 1700000000, "--progress")
    assert "rows/s" in forced.stderr


# --- usage, help, version -------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    ([], "required: COMMAND"),
    (["frobnicate"], "invalid choice"),
    (["score"], "required: FILE"),
    (["score", "x.csv", "--top", "0", "--by-holder"], "--top: '0' must be a positive integer"),
    (["score", "x.csv", "--top", "3"], "--top needs --by-holder"),
    (["score", "x.csv", "--token", "T"], "--token needs --by-holder"),
    (["score", "x.csv", "--now", "soon"], "--now: 'soon' is not Unix seconds or an ISO 8601 time"),
    (["score", "x.csv", "--format", "xml"], "invalid choice: 'xml'"),
    (["top", "-n", "-1"], "must be an integer >= 0"),
])
def test_usage_errors_exit_2(capsys, args, fragment):
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    assert "usage: poh-holdmetrics" in err and fragment in err, err


def test_help_teaches_the_tool(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for word in ("score", "serve", "top", "stats", "version", "examples:", "POH_HOLDMETRICS_"):
        assert word in out
    code, out, _ = cli(capsys, "score", "--help")
    for word in ("CSV", "JSON Lines", "Parquet", "--by-holder", "--skip-invalid", "--holder-col", "--now",
                 "max(0, min(end or now, now) - start) * weight"):
        assert word in out
    code, out, _ = cli(capsys, "serve", "--help")
    for word in ("--grpc-addr", "--http-addr", "--data-dir", "--fsync", "--ttl", "--gc-interval", "--log-level"):
        assert word in out


def test_version(capsys):
    import poh_holdmetrics
    code, out, _ = cli(capsys, "version")
    assert code == 0 and out.startswith(f"poh-holdmetrics {poh_holdmetrics.__version__} (backend ")
    assert ("backend python" in out) == PURE


def test_cli_modules_load_only_for_the_command_line():
    # import poh_holdmetrics stays lean; the CLI (argparse and its own modules) loads with
    # _cli, and even then no reader library, HTTP client or asyncio until a command needs it.
    code = ("import sys, poh_holdmetrics\n"
            "print(sorted(m for m in sys.modules if m.startswith('poh_holdmetrics._cli')), 'argparse' in sys.modules)\n"
            "import poh_holdmetrics._cli\n"
            "print([m for m in ('numpy', 'pyarrow', 'urllib.request', 'asyncio') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=TIMEOUT).stdout.splitlines()
    assert out == ["[] False", "[]"]


def test_pure_backend_total_works_and_ranking_says_why_not():
    env = {"POH_HOLDMETRICS_PURE": "1"}
    r = run("score", SAMPLE, "--now", NOW, "--format", "json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["score"] == calculate_score(sample_events(), now=NOW)
    r = run("score", SAMPLE, "--now", NOW, "--by-holder", env=env)
    assert r.returncode == 1 and "--by-holder needs the native library" in r.stderr


# --- top / stats against an HTTP daemon -----------------------------------------------------

ROWS = [{"holder_id": "alice", "score": 1500.5, "total_seconds": 100, "events": 2, "open_holds": 1, "tokens": 1,
         "updated_at": 1700000000},
        {"holder_id": "bob", "score": 20.0, "total_seconds": 20, "events": 1, "open_holds": 0, "tokens": 2,
         "updated_at": 1700000001}]


@pytest.fixture
def fake_daemon():
    """A stand-in holdmetricsd HTTP API on loopback that records the requests it gets."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.startswith("/v1/top") and "token=bad" in self.path:
                body, code = b'{"error": "token_id \\"\\": must not be empty"}', 400
            elif self.path.startswith(("/v1/top", "/v1/stats")):
                body, code = json.dumps(ROWS).encode(), 200
            else:
                body, code = b"{}", 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()
    t.join()


def test_top_and_stats_print_tables(capsys, fake_daemon, tmp_path):
    addr, seen = fake_daemon
    code, out, err = cli(capsys, "top", "--http-addr", addr, "-n", 2, "--token", "POH", "--now", 1700000500)
    assert code == 0, err
    assert seen[-1] == ("/v1/top?n=2&token=POH&now=1700000500", None)
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "holder_id", "score", "total_seconds", "events", "open_holds", "tokens",
                                "updated_at"]
    assert lines[1].split() == ["1", "alice", "1500.5", "100", "2", "1", "1", "1700000000"]
    # the address also comes from the environment (one settings object)
    r = run("stats", "--format", "json", env={"POH_HOLDMETRICS_HTTP_ADDR": addr})
    assert r.returncode == 0, r.stderr
    assert [x["holder_id"] for x in json.loads(r.stdout)] == ["alice", "bob"]
    assert seen[-1][0] == "/v1/stats"
    # a bearer token from auth_token_file
    tok = tmp_path / "token"
    tok.write_text("s3cret\n", encoding="utf-8")
    cfg = tmp_path / "poh.toml"
    cfg.write_text(f'http_addr = "{addr}"\nauth_token_file = "{tok.as_posix()}"\ncollect_interval = "1s"\n', encoding="utf-8")
    code, out, err = cli(capsys, "stats", "--config", cfg, "--format", "csv")
    assert code == 0, err
    assert seen[-1] == ("/v1/stats", "Bearer s3cret")
    assert out.splitlines()[1].startswith("1,alice,1500.5,")


def test_top_reports_daemon_errors_and_absence(capsys, fake_daemon):
    addr, _ = fake_daemon
    code, _, err = cli(capsys, "top", "--url", f"http://{addr}", "--token", "bad")
    assert code == 1 and "HTTP 400" in err and "must not be empty" in err
    import socket
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = cli(capsys, "top", "--url", f"http://127.0.0.1:{port}", "--timeout", 5)
    assert code == 1 and "cannot reach the daemon" in err


def test_bad_config_is_an_error_naming_key_and_source(capsys, tmp_path):
    cfg = tmp_path / "poh.toml"
    cfg.write_text('http_addr = "nowhere"\n', encoding="utf-8")
    code, _, err = cli(capsys, "stats", "--config", cfg)
    assert code == 1 and f"config {cfg}: http_addr: 'nowhere' is not a host:port address" in err


# --- serve ----------------------------------------------------------------------------------

BUILT_DAEMON = REPO / "bin" / "holdmetricsd"  # make build
BUNDLED_DAEMON = Path(poh_holdmetrics.__file__).parent / "_bin" / "holdmetricsd"  # a wheel that bundles it
needs_daemon = pytest.mark.skipif(not (BUILT_DAEMON.exists() or BUNDLED_DAEMON.exists()),
                                  reason="holdmetricsd is neither bundled nor built (make build)")


def daemon_env() -> dict:
    """PATH with bin/ first (used when the package does not bundle the daemon)."""
    return {"PATH": f"{BUILT_DAEMON.parent}:{os.environ.get('PATH', '')}"}


def test_serve_without_a_daemon_is_a_clear_error(tmp_path, monkeypatch, capsys):
    # In process, with the bundled binary out of reach (a wheel bundles it) and an empty PATH.
    import poh_holdmetrics._cli_commands as commands
    monkeypatch.setattr(commands, "__file__", str(tmp_path / "_cli_commands.py"))
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = cli(capsys, "serve")
    assert code == 1
    assert "holdmetricsd not found" in err and "make build" in err


@needs_daemon
def test_serve_passes_settings_as_daemon_flags(tmp_path):
    cfg = tmp_path / "poh.toml"
    cfg.write_text('ttl = "36h"\ncollect_interval = "1s"\nfsync = "always"\n', encoding="utf-8")
    r = run("serve", "--config", cfg, "--http-addr", "127.0.0.1:0", "--expose", "--dry-run", "--", "--max-batch", "9",
            env={**daemon_env(), "POH_HOLDMETRICS_LOG_LEVEL": "warn"})
    assert r.returncode == 0, r.stderr
    argv = r.stdout.split()
    assert argv[0].removesuffix(".exe").endswith("holdmetricsd")
    assert argv[1:] == ["--http-addr=127.0.0.1:0", "--expose=true", "--fsync=always", "--ttl=129600s",
                        "--log-level=warn", "--max-batch", "9"]


@needs_daemon
@pytest.mark.skipif(sys.platform == "win32", reason="Unix only: stops serve with SIGTERM, which Windows cannot send "
                    "(send_signal there is TerminateProcess of serve alone, not a stop of its daemon)")
def test_serve_runs_the_daemon_then_top_and_stats_query_it(tmp_path):
    env = {**os.environ, **daemon_env()}
    env.pop("POH_HOLDMETRICS_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "poh_holdmetrics", "serve", "--http-addr", "127.0.0.1:0",
                             "--grpc-addr", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        http = None
        for line in proc.stderr:  # the daemon's JSON log says where it listens
            rec = json.loads(line)
            if rec.get("msg") == "holdmetricsd listening":
                http = rec["http"]
                break
        assert http, "the daemon never said where it listens"
        body = json.dumps([{"token_id": "POH", "holder_id": "alice", "start": 0, "end": 100, "weight": 2},
                           {"token_id": "POH", "holder_id": "bob", "start": 0, "end": 10}]).encode()
        req = urllib.request.Request(http + "/v1/holds", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        r = run("top", "--url", http, "-n", 1, "--format", "json")
        assert r.returncode == 0, r.stderr
        assert [(x["holder_id"], x["score"]) for x in json.loads(r.stdout)] == [("alice", 200.0)]
        r = run("stats", "--url", http)
        assert r.returncode == 0, r.stderr
        assert [ln.split()[1] for ln in r.stdout.splitlines()[1:]] == ["alice", "bob"]
        proc.send_signal(signal.SIGTERM)  # serve exec'd the daemon: the signal reaches it
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_huge_and_out_of_range_times(capsys, tmp_path, engine):
    p = tmp_path / "huge.csv"
    p.write_text("token_id,holder_id,start,end\nT,a,0,10\nT,b,99999999999999999999999,\nT,c,5,253402300800\n",
                 encoding="utf-8")
    code, _, err = cli(capsys, "score", p, "--now", 100, *engine_args(engine))
    assert code == 1 and f"{p}:3: start: " in err
    code, out, err = cli(capsys, "score", p, "--now", 100, "--skip-invalid", "--format", "json", *engine_args(engine))
    assert code == 0 and json.loads(out)["skipped"] == 2 and json.loads(out)["score"] == 10.0
    assert f"{p}:4: end: " in err


def test_console_script():
    script = Path(sys.executable).parent / "poh-holdmetrics"
    if not script.exists():
        pytest.skip("running from a source tree: the poh-holdmetrics console script is installed with the wheel")
    r = subprocess.run([str(script), "score", str(SAMPLE), "--now", str(NOW), "--format", "json"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == 15
