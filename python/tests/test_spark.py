"""The Spark recipe (examples/spark/holdmetrics_spark.py) on PySpark local[2]: holds, scores,
top holders and the exact airdrop equal the single-process ones on the same rows (exactly in
exact mode, bit for bit for floats). Needs pyspark and Java: .venv-dist has pyspark when
`java` is on PATH (make test-dist)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

import poh_holdmetrics as phm
from conftest import REPO, needs_native

pytestmark = needs_native
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: Spark needs a JVM (apt-get install default-jre-headless)", allow_module_level=True)
pytest.importorskip("pyspark", reason="pyspark is not installed here: the Spark tests run in .venv-dist "
                                      "(make test-dist, when java is on PATH)")

from test_dask import NOW, ONE_PROCESS_AIRDROP, transfers  # noqa: E402  the same generated chain data

sys.path.insert(0, str(REPO / "examples" / "spark"))
import holdmetrics_spark as hs  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors' Python: this venv's
    from pyspark.sql import SparkSession
    s = (SparkSession.builder.master("local[2]").appName("poh-holdmetrics-test")
         .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
         .config("spark.driver.memory", "1g").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    rows = transfers(3000, seed=21)
    d = tmp_path_factory.mktemp("chain")
    t = pa.table(rows)
    for i, lo in enumerate(range(0, 3000, 1000)):  # three files, as a dataset split by time
        pq.write_table(t.slice(lo, 1000), d / f"part-{i}.parquet")
    return rows, str(d)


def test_holds_scores_top_and_airdrop_equal_one_process(spark, chain):
    rows, path = chain
    holds = hs.holds_from_transfers(spark.read.parquet(path), partitions=3).cache()
    one_holds = phm.transfers_to_holds(rows)
    got = holds.collect()
    key = lambda r: (r[0], r[1], r[2])  # noqa: E731
    assert sorted((r.token_id, r.holder_id, r.start, r.end, bytes(r.weight)) for r in got) == sorted(
        (r["token_id"], r["holder_id"], r["start"], r["end"], r["weight"]) for r in one_holds.to_pylist())
    assert len({key(r) for r in got}) == len(got)

    exact = hs.scores(holds, NOW).cache()
    one = phm.score_by_holder(one_holds, NOW, exact=True)
    assert [(r.holder_id, int(r.exact)) for r in hs.ranked(exact).collect()] == list(zip(one.holder_ids, one.scores()))
    assert [(r.holder_id, int(r.exact)) for r in hs.top_holders(exact, 5)] == list(zip(one.holder_ids,
                                                                                    one.scores()))[:5]
    pool = 10**24 + 3
    want = phm.allocate_rewards(zip(one.holder_ids, one.scores()), pool, cap=pool // 8)
    got_drop = hs.airdrop(exact, pool, cap=pool // 8)
    assert [tuple(r) for r in got_drop] == [tuple(r) for r in want] and sum(r.amount for r in got_drop) == pool

    floats = hs.scores(holds, NOW, exact=False)
    onef = phm.score_by_holder(one_holds, NOW)
    bits = lambda x: struct.pack("<d", x)  # noqa: E731
    assert [(r.holder_id, bits(r.score)) for r in hs.ranked(floats, exact=False).collect()] == [
        (h, bits(s)) for h, s in zip(onef.holder_ids, onef.scores())]

    w = (1_700_002_000, 1_700_009_000)
    win = hs.scores(holds, NOW, w)
    onew = phm.score_by_holder(one_holds, NOW, w, exact=True)
    assert [(r.holder_id, int(r.exact)) for r in hs.ranked(win).collect()] == list(zip(onew.holder_ids,
                                                                                     onew.scores()))


def test_workers_run_the_native_kernel_unforked(spark):
    """PySpark forks its Python workers from a daemon that never loaded the library: each
    worker loads it itself, so the native kernel (not the fallback) runs there."""
    def probe(batches):  # nested: pickled by value (the workers cannot import this file)
        import pyarrow as pa

        import poh_holdmetrics as phm
        from poh_holdmetrics import _native
        for _ in batches:
            pass
        yield pa.record_batch({"backend": [phm.backend], "forked": [_native.forked()], "pid": [os.getpid()]})
    phm.calculate_score([], now=1)  # the driver has it loaded; its workers are not its children
    rows = spark.range(8, numPartitions=4).mapInArrow(probe, "backend string, forked boolean, pid long").collect()
    assert {(r.backend, r.forked) for r in rows} == {("native", False)}
    assert os.getpid() not in {r.pid for r in rows}


def test_a_bad_row_fails_the_job_naming_it(spark, chain):
    rows, _ = chain
    i = next(k for k in range(3000) if rows["from_address"][k] != "0x" + "0" * 40
             and rows["from_address"][k].lower() != rows["to_address"][k].lower())
    bad = dict(rows, value=list(rows["value"]))
    bad["value"][i] = str(10**40)
    df = spark.createDataFrame(pa.table(bad).to_pandas())
    with pytest.raises(Exception, match="its balance would go negative"):
        hs.scores(hs.holds_from_transfers(df, partitions=2), NOW).collect()


def test_readme_spark_job_runs_as_written(spark, tmp_path, monkeypatch, capsys):
    """Run in this process, on the session above (its getOrCreate() returns it; a second
    JVM would double the time), last: the block stops the session."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Past one machine: Dask and Spark", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    make_data, job = blocks[0], blocks[2]
    assert "holdmetrics_spark" in job and "spark.stop()" in job
    shutil.copytree(REPO / "examples" / "spark", tmp_path / "examples" / "spark")
    subprocess.run([sys.executable, "-c", make_data], check=True, cwd=tmp_path, timeout=300)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(job, "README.md (Spark job)", "exec"), {"__name__": "__main__"})
    lines = capsys.readouterr().out.splitlines()
    # the same top holders and airdrop.csv as one process over the same files
    one = subprocess.run([sys.executable, "-c", ONE_PROCESS_AIRDROP], capture_output=True, text=True, cwd=tmp_path,
                         check=True).stdout.splitlines()
    assert lines[:6] == one[:6] and len([x for x in lines if x.startswith("  0x")]) == 5
    assert one[6].startswith("True ")
    assert lines[6:] == [f"airdrop: {int(one[6].split()[1])} holders, {10**24} units"]
