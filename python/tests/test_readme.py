"""The README's Python quickstart runs as written and prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, needs_native


def quickstart_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@needs_native
def test_quickstart_runs_as_written(tmp_path):
    blocks = quickstart_blocks()
    assert len(blocks) == 4
    outs = [subprocess.run([sys.executable, "-c", b], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
            for b in blocks]
    assert outs[0].split("\n") == ["80.0", "bob 110.0", "dave 40.0", "alice 20.0", ""]
    assert outs[1] == "70.0\n"
    # "Exact mode, chain data": each printed line is what its comment says
    assert outs[2].split("\n") == ["101000000000000000000000099", "1.01e+26", "1010000000000000000000000", ""]
    for line, value in zip(outs[2].splitlines(), re.findall(r"# (\S+)", blocks[2].split("print(", 1)[1])):
        assert line == value
    assert outs[3].split("\n") == [
        "[500, None, None] [1000000000000000000000000, 899999999999999999999993, 100000000000000000000007]",
        "0xaaaa 949999999999999999999996500", "0xbbbb 50000000000000000000003500",
        "[('0xaaaa', 950000000000000000), ('0xbbbb', 50000000000000000)]", ""]


@needs_native
def test_airdrop_runs_as_written(tmp_path):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Airdrop in five lines", 1)[1].split("\n## ", 1)[0]
    code, columns = re.findall(r"```python\n(.*?)```", section, re.S)
    shown, = re.findall(r"```\n(holder_id.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out == shown + "\n"  # print() adds a newline after the file's own last one
    assert (tmp_path / "airdrop.csv").read_text(encoding="utf-8") == shown
    # allocate_rewards_columns: prints what its comment says
    pytest.importorskip("pyarrow", reason="pyarrow is a test dependency (PY_TEST_DEPS); the block imports it")
    out = subprocess.run([sys.executable, "-c", columns], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert out == columns.split("# ", 1)[1].strip() + "\n"


@needs_native
@pytest.mark.skipif(sys.platform == "win32", reason="Unix only: runs the README's sh block with bash")
def test_airdrop_walkthrough_runs_as_written(tmp_path):
    """The README's end-to-end airdrop, its shell block as written, from a copy of examples/."""
    import os
    import shutil
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Airdrop, end to end", 1)[1].split("\n## ", 1)[0]
    block, = re.findall(r"```sh\n(.*?)```", section, re.S)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    bindir = os.path.dirname(sys.executable)  # poh-holdmetrics, installed with the wheel
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block.replace("python ", f"{sys.executable} ", 1)],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "standard merkle root 0x" in r.stdout
    assert r.stdout.count("OK ") == 3  # two trees, then one claim
    assert "same: re-ran drop/manifest.json" in r.stdout
    amounts = (tmp_path / "drop" / "amounts.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert sum(int(line.split(",")[2]) for line in amounts) == 10**24
