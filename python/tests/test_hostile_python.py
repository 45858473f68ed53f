"""Issue 11 ("a hostile world"), the Python side: unknown keys and columns are errors naming
them (API and CLI), iterables are scored in bounded chunks with the bits of a list, the CLI
reads gzip and standard input and names file:line for bytes that are not UTF-8, and every
event refused in Python counts in the aggregator's rejected counter as the library's own."""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import sys
import tracemalloc

import pytest

import poh_holdmetrics as phm
from conftest import needs_native
from poh_holdmetrics import HoldEvent, calculate_score, twab
from test_cli import cli  # the command line in process

ENGINES = ["pyarrow", "python"]
KEYS = "token_id, holder_id, start, end, weight"


def engine_args(engine: str) -> list[str]:
    if engine == "pyarrow":
        pytest.importorskip("pyarrow", reason="the pyarrow CSV engine needs pyarrow (a test dependency)")
    return ["--engine", engine]


def event_counts(agg: phm.Aggregator) -> dict[str, int]:
    """poh_hold_events_total by result, from the exposition text."""
    found = re.findall(r'^poh_hold_events_total\{result="(\w+)"\} (\d+)$', agg.metrics_text(), re.M)
    return {k: int(v) for k, v in found}


# --- #2: unknown keys and columns are errors naming them ------------------------------------

def test_an_unknown_event_key_is_an_error_naming_it(backend):
    ev = {"token_id": "T", "holder_id": "h", "start": 0, "end_time": 10, "wieght": 5}
    with pytest.raises(phm.InvalidEventError) as ei:
        calculate_score([HoldEvent("T", "a", 0, 1), ev], now=100)
    e = ei.value
    assert (e.index, e.field, e.reason) == (1, "end_time", "unknown_key")
    assert str(e) == f'event 1: unknown key "end_time" (the keys are {KEYS})'
    # the known keys still work, every optional one may be absent
    assert calculate_score([{"token_id": "T", "holder_id": "h", "start": 0}], now=10) == 10.0


def test_an_unknown_column_is_an_error_naming_it(backend):
    cols = {"token_id": ["T"], "holder_id": ["h"], "start": [0], "end": [10], "wieght": [5]}
    with pytest.raises(phm.InvalidEventError) as ei:
        calculate_score(cols, now=100)
    assert (ei.value.index, ei.value.field, ei.value.reason) == (-1, "wieght", "unknown_key")
    assert str(ei.value) == f'unknown column "wieght" (the columns are {KEYS})'
    with pytest.raises(phm.InvalidEventError, match='unknown column "1"'):
        calculate_score({"start": [0], 1: [2]}, now=100)
    pd = pytest.importorskip("pandas")
    with pytest.raises(phm.InvalidEventError, match='unknown column "note"'):
        calculate_score(pd.DataFrame({"start": [0], "end": [5], "note": ["x"]}), now=100)
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(phm.InvalidEventError, match='unknown column "stop"'):
        calculate_score(pa.table({"start": [0], "stop": [5]}), now=100)
    assert calculate_score(pa.table({"start": [0], "end": [5]}), now=100) == 5.0


@needs_native
def test_unknown_keys_when_recording(agg):
    with pytest.raises(phm.InvalidEventError) as ei:
        agg.record_sync({"token_id": "T", "holder_id": "h", "start": 0, "wieght": 2})
    assert (ei.value.index, ei.value.field, ei.value.reason) == (-1, "wieght", "unknown_key")
    with pytest.raises(phm.InvalidEventError, match='unknown column "weigth"'):
        agg.record_many_sync({"token_id": ["T"], "holder_id": ["h"], "start": [0], "weigth": [2]})
    res = agg.record_many_sync([HoldEvent("T", "a", 0, 5), {"token_id": "T", "holder_id": "b", "start": 0,
                                                            "stop": 5}], partial=True)
    assert res.accepted == 1 and [(e.index, e.field, e.reason) for e in res.errors] == [(1, "stop", "unknown_key")]
    assert [r.holder_id for r in agg.snapshot(now=10)] == ["a"]


# --- #2: the CLI's columns ------------------------------------------------------------------

MISSPELT = "token_id,holder_id,start,end_time,wieght\nT,a,0,10,5\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_refuses_a_misspelt_header(capsys, tmp_path, engine):
    p = tmp_path / "holds.csv"
    p.write_text(MISSPELT, encoding="utf-8")
    code, out, err = cli(capsys, "score", p, "--now", 20, *engine_args(engine))
    assert code == 1 and out == ""
    assert err.startswith(f"poh-holdmetrics: error: {p}: columns 'end_time', 'wieght' are not read, and there is "
                          "no 'end' or 'weight' column: map them (--end-col NAME, --weight-col NAME)"), err
    assert "columns read: token_id, holder_id, start" in err and "--ignore-cols end_time,wieght" in err
    # mapped, they are read
    code, out, err = cli(capsys, "score", p, "--now", 20, "--end-col", "end_time", "--weight-col", "wieght",
                         "--format", "json", *engine_args(engine))
    assert code == 0 and json.loads(out)["score"] == 50.0, err


def test_cli_columns_absent_on_purpose(capsys, tmp_path):
    p = tmp_path / "open.csv"
    p.write_text("token_id,holder_id,start,note\nT,a,0,x\n", encoding="utf-8")
    assert cli(capsys, "score", p, "--now", 20)[0] == 1
    for extra in (["--end-col", "", "--weight-col", ""], ["--ignore-cols", "note"]):
        code, out, err = cli(capsys, "score", p, "--now", 20, "--format", "json", *extra)
        assert code == 0 and json.loads(out)["score"] == 20.0, (extra, err)
    # without unread columns, a file needs no end or weight column; with every field
    # present, a column it does not read is harmless
    q = tmp_path / "min.csv"
    q.write_text("token_id,holder_id,start\nT,a,0\n", encoding="utf-8")
    assert json.loads(cli(capsys, "score", q, "--now", 20, "--format", "json")[1])["score"] == 20.0
    r = tmp_path / "wide.csv"
    r.write_text("token_id,holder_id,start,end,weight,tx\nT,a,0,10,2,0xab\n", encoding="utf-8")
    assert json.loads(cli(capsys, "score", r, "--now", 20, "--format", "json")[1])["score"] == 20.0


def test_cli_a_named_column_must_exist(capsys, tmp_path):
    p = tmp_path / "holds.csv"
    p.write_text("token_id,holder_id,start,end,weight\nT,a,0,10,5\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", p, "--now", 20, "--end-col", "stop")
    assert code == 1 and err == (f"poh-holdmetrics: error: {p}: no column 'stop' (--end-col stop); the columns are "
                                 "token_id, holder_id, start, end, weight\n")
    d = tmp_path / "dup.csv"
    d.write_text("token_id,holder_id,start,start\nT,a,0,1\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", d, "--now", 20)
    assert code == 1 and "column 'start' appears 2 times in the header" in err
    code, _, err = cli(capsys, "score", p, "--start-col", "")
    assert code == 2 and "--start-col ''" in err


def test_cli_parquet_and_jsonl_columns_are_checked(capsys, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    p = tmp_path / "holds.parquet"
    pq.write_table(pa.table({"token_id": ["T"], "holder_id": ["a"], "start": [0], "stop": [10]}), p)
    code, _, err = cli(capsys, "score", p, "--now", 20)
    assert code == 1 and f"{p}: column 'stop' is not read, and there is no 'end' or 'weight' column" in err
    j = tmp_path / "holds.jsonl"
    j.write_text('{"token_id": "T", "holder_id": "a", "start": 0, "note": "x", "end": 5, "weight": 1}\n'
                 '{"token_id": "T", "holder_id": "a", "start": 0}\n'
                 '{"token_id": "T", "holder_id": "a", "start": 0, "end_time": 10}\n', encoding="utf-8")
    code, _, err = cli(capsys, "score", j, "--now", 20)
    assert code == 1 and err.startswith(f"poh-holdmetrics: error: {j}:3: row: key 'end_time' is not read, and "
                                        "there is no 'end' or 'weight' key"), err
    code, out, err = cli(capsys, "score", j, "--now", 20, "--ignore-cols", "end_time", "--format", "json")
    assert code == 0 and json.loads(out)["score"] == 45.0, err


# --- #10: iterables in bounded chunks, the bits of a list -----------------------------------

def _events(n: int):
    for i in range(n):
        yield HoldEvent("T", "h", i % 997, None if i % 5 == 0 else i % 997 + i % 13,
                        math.pi ** (i % 41) / 7)  # magnitudes far apart: the compensation matters


@pytest.mark.parametrize("kind", ["score", "window", "twab"])
def test_a_generator_scores_the_bits_of_a_list(backend, kind):
    from poh_holdmetrics import _score
    n = _score.CHUNK_EVENTS * 3 + 17
    if kind == "twab":
        def fn(evs):
            return twab(evs, (100, 900), now=1000)
    else:
        def fn(evs):
            return calculate_score(evs, now=1000, window=(100, 900) if kind == "window" else None)
    want = fn(list(_events(n)))
    got = fn(_events(n))
    assert got.hex() == want.hex()
    mixed = (ev if i % 2 else (ev.token_id, ev.holder_id, ev.start, ev.end, ev.weight)
             for i, ev in enumerate(_events(n)))
    assert fn(mixed).hex() == want.hex()
    assert calculate_score(iter([]), now=5) == 0.0


def test_a_generator_scores_exactly(backend):
    from poh_holdmetrics import _score
    n = _score.CHUNK_EVENTS * 2 + 3
    evs = [HoldEvent("T", "h", i, i + 7, 10**30 + i) for i in range(n)]
    want = sum(7 * (10**30 + i) for i in range(n))
    assert calculate_score(iter(evs), now=10**9, exact=True) == want
    assert twab(iter(evs), (0, 10**6), now=10**9, exact=True) == want // 10**6


def test_a_generator_error_names_its_batch_index(backend):
    from poh_holdmetrics import _score
    bad = _score.CHUNK_EVENTS * 2 + 5

    def gen():
        for i in range(bad + 100):
            yield ("T", "h", 10, 5) if i == bad else HoldEvent("T", "h", 0, 1)
    with pytest.raises(phm.InvalidEventError) as ei:
        calculate_score(gen(), now=100)
    assert (ei.value.index, ei.value.field) == (bad, "end")
    assert str(ei.value).startswith(f"event {bad}: end 5:")
    # exact mode: a weight refused by the exact rule comes before a later event that does not convert
    with pytest.raises(phm.InvalidEventError) as ei:
        calculate_score(iter([HoldEvent("T", "h", 0, 1), HoldEvent("T", "h", 0, 1, 0.5), {"start": "x"}]),
                        now=100, exact=True)
    assert (ei.value.index, ei.value.reason) == (1, "not_integer")


def test_a_generator_is_not_held_whole(backend, monkeypatch):
    """Peak memory (tracemalloc, not time): a generator's events are held a chunk at a time,
    a list's all at once (0.1 took list(generator): 3.2 GB for 10^7 events). Small chunks
    keep the traced run short; the bound is the chunk's, whatever the batch's size."""
    from poh_holdmetrics import _score
    monkeypatch.setattr(_score, "CHUNK_EVENTS", 500)
    n = 30_000

    def peak(fn) -> int:
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    held = peak(lambda: calculate_score(list(_events(n)), now=1000))
    streamed = peak(lambda: calculate_score(_events(n), now=1000))
    assert streamed * 10 < held, (streamed, held)


# --- #13: gzip, standard input, bytes that are not UTF-8 ------------------------------------

HOLDS = "token_id,holder_id,start,end,weight\n" + "".join(f"T,h{i},{i},{i + 10},2\n" for i in range(50))


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_reads_gzip(capsys, tmp_path, engine):
    plain, gz = tmp_path / "holds.csv", tmp_path / "holds.csv.gz"
    plain.write_text(HOLDS, encoding="utf-8")
    gz.write_bytes(gzip.compress(HOLDS.encode()))
    want = cli(capsys, "score", plain, "--now", 100, "--format", "json", *engine_args(engine))
    got = cli(capsys, "score", gz, "--now", 100, "--format", "json", *engine_args(engine))
    assert got == want and want[0] == 0 and json.loads(want[1])["rows"] == 50
    j = tmp_path / "holds.jsonl.gz"  # the format is the suffix's before .gz
    j.write_bytes(gzip.compress(b'{"token_id": "T", "holder_id": "a", "start": 0, "end": 4}\n'))
    assert json.loads(cli(capsys, "score", j, "--now", 100, "--format", "json")[1])["score"] == 4.0
    t = tmp_path / "cut.csv.gz"
    many = "token_id,holder_id,start,end,weight\n" + "".join(f"T,h{i},{i},{i + 10},2\n" for i in range(20000))
    t.write_bytes(gzip.compress(many.encode())[:20000])  # ends early
    code, out, err = cli(capsys, "score", t, "--now", 100, *engine_args(engine))
    assert code == 1 and out == ""
    assert re.match(rf"poh-holdmetrics: error: {re.escape(str(t))}:\d+: not valid gzip data", err), err
    assert "Traceback" not in err


def test_cli_reads_standard_input(capsys, monkeypatch, tmp_path):
    def stdin(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    stdin(HOLDS.encode())
    code, out, err = cli(capsys, "score", "-", "--now", 100, "--format", "json")
    assert code == 0 and json.loads(out)["score"] == 50 * 20.0, err
    stdin(gzip.compress(HOLDS.encode()))
    assert json.loads(cli(capsys, "score", "-", "--now", 100, "--format", "json")[1])["score"] == 1000.0
    stdin(b'\n{"token_id": "T", "holder_id": "a", "start": 0, "end": 4}\n')  # JSON Lines, from its first byte
    assert json.loads(cli(capsys, "score", "-", "--now", 100, "--format", "json")[1])["score"] == 4.0
    stdin(b"token_id,holder_id,start\nT,a\xff,0\n")
    code, _, err = cli(capsys, "score", "-", "--now", 100)
    assert code == 1 and err.startswith("poh-holdmetrics: error: <stdin>:2: holder_id: is not valid UTF-8"), err
    stdin(b"PAR1")
    code, _, err = cli(capsys, "score", "-", "--input-format", "parquet")
    assert code == 1 and "Parquet cannot be read from standard input" in err
    code, _, err = cli(capsys, "score", "-", "-")
    assert code == 2 and "only once" in err


def _bad_utf8_file(tmp_path, lines: int = 40):
    """A CSV with bytes that are not UTF-8 in a holder id at line 31 and a start at 36."""
    rows = [f"T,h{i},{i},{i + 5},1".encode() for i in range(lines)]
    rows[29] = b"T,h\xff,0,5,1"  # line 31 (line 1 is the header)
    rows[34] = b"T,h,1\xfe,5,1"
    p = tmp_path / "latin.csv"
    p.write_bytes(b"token_id,holder_id,start,end,weight\n" + b"\n".join(rows) + b"\n")
    return p


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_cli_bytes_that_are_not_utf8_name_the_lowest_line(capsys, tmp_path, engine, chunk):
    p = _bad_utf8_file(tmp_path)
    code, out, err = cli(capsys, "score", p, "--now", 100, "--chunk-rows", chunk, *engine_args(engine))
    assert (code, out) == (1, "")
    assert err == (f"poh-holdmetrics: error: {p}:31: holder_id: is not valid UTF-8 (byte 0xff at byte 4 of the line); "
                   "the input must be UTF-8\n")
    code, out, err = cli(capsys, "score", p, "--now", 100, "--chunk-rows", chunk, "--skip-invalid", "--format", "json",
                         *engine_args(engine))
    assert code == 0 and json.loads(out)["skipped"] == 2 and json.loads(out)["rows"] == 38, err
    assert f"{p}:31: holder_id" in err and f"{p}:36: start: is not valid UTF-8 (byte 0xfe" in err


def test_cli_utf8_errors_in_every_format(capsys, tmp_path):
    h = tmp_path / "header.csv"
    h.write_bytes(b"token_id,hold\xe9r_id,start\nT,a,0\n")
    code, _, err = cli(capsys, "score", h)
    assert code == 1 and err.startswith(f"poh-holdmetrics: error: {h}:1: header: is not valid UTF-8 (byte 0xe9")
    j = tmp_path / "holds.jsonl"
    j.write_bytes(b'{"token_id": "T", "holder_id": "a", "start": 0}\n'
                  b'{"token_id": "T", "holder_id": "\xc3", "start": 0}\n')
    code, _, err = cli(capsys, "score", j, "--now", 10)
    assert code == 1 and err.startswith(f"poh-holdmetrics: error: {j}:2: row: is not valid UTF-8 (byte 0xc3"), err
    code, out, err = cli(capsys, "score", j, "--now", 10, "--skip-invalid", "--format", "json")
    assert code == 0 and json.loads(out)["score"] == 10.0 and json.loads(out)["skipped"] == 1
    # bytes in a column this command does not read do not matter (as with the arrow reader)
    g = tmp_path / "ignored.csv"
    g.write_bytes(b"token_id,holder_id,start,end,weight,note\nT,a,0,10,1,caf\xe9\n")
    for engine in ENGINES:
        code, out, err = cli(capsys, "score", g, "--now", 20, "--format", "json", *engine_args(engine))
        assert code == 0 and json.loads(out)["score"] == 10.0, err


def test_cli_a_record_that_is_not_csv_names_its_line(capsys, tmp_path):
    p = tmp_path / "huge.csv"  # a field over the csv module's limit: csv.Error, a traceback in 0.1
    p.write_text("token_id,holder_id,start\nT,a,0\nT," + "x" * 200_000 + ",0\nT,b,0\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", p, "--now", 10, "--engine", "python")
    assert code == 1 and err.startswith(f"poh-holdmetrics: error: {p}:3: row: is not valid CSV: field larger"), err
    code, out, err = cli(capsys, "score", p, "--now", 10, "--engine", "python", "--skip-invalid", "--format", "json")
    assert code == 0 and (json.loads(out)["score"], json.loads(out)["skipped"]) == (20.0, 1), err


# --- #12 (the Python side): refused in Python, counted as the library counts ----------------

@needs_native
def test_rows_refused_in_python_are_counted(agg):
    with pytest.raises(phm.InvalidEventError):
        agg.record_sync({"token_id": "T", "holder_id": "h", "start": "noon"})
    with pytest.raises(phm.InvalidEventError):
        agg.record_sync(("T", "h"))
    assert event_counts(agg) == {"accepted": 0, "rejected": 2, "dropped": 0}
    # a strict batch refused for an unconvertible event: it rejected, the valid ones dropped
    batch = [HoldEvent("T", "a", 0, 1), ("T", "b", 5, 1), {"token_id": "T", "holder_id": "c", "start": None},
             HoldEvent("T", "d", 0, 1)]
    with pytest.raises(phm.InvalidEventError) as ei:
        agg.record_many_sync(iter(batch))
    assert ei.value.index == 1
    assert event_counts(agg) == {"accepted": 0, "rejected": 4, "dropped": 2}
    # columns that need the row-by-row conversion
    with pytest.raises(phm.InvalidEventError):
        agg.record_many_sync({"token_id": ["T"] * 3, "holder_id": ["a", "b", "c"], "start": [0, None, "x"]})
    assert event_counts(agg) == {"accepted": 0, "rejected": 6, "dropped": 3}
    # partial: the conversion errors too
    res = agg.record_many_sync([HoldEvent("T", "a", 0, 1), ("T",), {"start": 0, "x": 1}], partial=True)
    assert res.accepted == 1 and res.rejected == 2
    assert event_counts(agg) == {"accepted": 1, "rejected": 8, "dropped": 3}
    # a batch refused as a whole before its rows are read counts no events
    for bad in ({"token_id": ["T"], "holder_id": ["a"], "start": [0], "wieght": [1]},
                {"token_id": ["T"], "holder_id": ["a", "b"], "start": [0]}, {"start": [0]}):
        with pytest.raises(phm.InvalidEventError):
            agg.record_many_sync(bad)
    assert event_counts(agg) == {"accepted": 1, "rejected": 8, "dropped": 3}


@needs_native
async def test_a_strict_batch_over_several_calls_is_counted_whole(agg):
    """A batch larger than a chunk is checked chunk by chunk before anything is recorded;
    the chunks checked by the library without counting are counted when one fails."""
    from poh_holdmetrics import _aggregator
    n = _aggregator.CHUNK_ROWS * 2 + 9
    holders = [f"h{i}" for i in range(n)]
    holders[5] = ""
    holders[n - 1] = "x" * 300
    cols = {"token_id": ["T"] * n, "holder_id": holders, "start": [0] * n}
    with pytest.raises(phm.InvalidEventError):
        agg.record_many_sync(cols)
    assert event_counts(agg) == {"accepted": 0, "rejected": 2, "dropped": n - 2}
    with pytest.raises(phm.InvalidEventError):
        await agg.record_many(cols)
    assert event_counts(agg) == {"accepted": 0, "rejected": 4, "dropped": 2 * (n - 2)}
    evs = [HoldEvent("T", f"h{i}", 0, 1) for i in range(n)]
    evs[-1] = ("T", "", 0)  # type: ignore[call-overload]
    with pytest.raises(phm.InvalidEventError) as ei:
        await agg.record_many(iter(evs))
    assert ei.value.index == n - 1
    assert event_counts(agg) == {"accepted": 0, "rejected": 5, "dropped": 3 * (n - 2) + 1}
    assert len(agg) == 0


@needs_native
def test_one_refused_event_counts_once():
    """record_sync of an event the exact rule refuses counted it twice (the failed call
    was repeated for its message); a tracker's refused start counts too."""
    with phm.Aggregator(exact=True) as a:
        with pytest.raises(phm.InvalidEventError) as ei:
            a.record_sync(HoldEvent("T", "h", 0, 1, 0.5))
        assert ei.value.reason == "not_integer"
        assert event_counts(a)["rejected"] == 1
        tracker = phm.HoldTracker(a)
        with pytest.raises(phm.InvalidEventError):
            tracker.start_sync("T", "h", weight=-1.0, at=0)
        assert event_counts(a) == {"accepted": 0, "rejected": 2, "dropped": 0}


def test_pure_and_native_agree_on_these_errors(backend):
    """The fallback raises what the library does, for every input above (one table)."""
    cases = [
        [{"token_id": "T", "holder_id": "h", "start": 0, "wieght": 1}],
        {"start": [0], "stop": [1]},
        [HoldEvent("T", "h", 0, 1)] * 3 + [("T", "h", 9, 1)],
    ]
    got = []
    for c in cases:
        with pytest.raises(phm.InvalidEventError) as ei:
            calculate_score(c, now=100)
        got.append((str(ei.value), ei.value.field, ei.value.index, ei.value.reason))
    assert got == [
        (f'event 0: unknown key "wieght" (the keys are {KEYS})', "wieght", 0, "unknown_key"),
        (f'unknown column "stop" (the columns are {KEYS})', "stop", -1, "unknown_key"),
        ("event 3: end 1: is before start 9", "end", 3, "end_before_start"),
    ]
