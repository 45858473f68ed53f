"""Typing and discoverability of the public API: mypy reads record_many's result per mode
(an int, or a RecordResult that unpacks as ``accepted, errors``), ``backend`` is typed, and
the names loaded on first access are in ``dir()`` and ``help()``."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest

import poh_holdmetrics as phm
from conftest import needs_native

GOOD = '''
import poh_holdmetrics as phm

agg = phm.Aggregator()
n = agg.record_many_sync([])
print(n + 1)
reveal_type(n)
accepted, errors = agg.record_many_sync([], partial=True)
print(accepted + 1, [e.index for e in errors])
reveal_type(accepted)
reveal_type(errors)
result = agg.record_many_sync([], partial=True)
reveal_type(result.rejected)
reveal_type(agg.record_many_sync([], partial=bool(n)))


async def main() -> None:
    m = await agg.record_many([])
    print(m + 1)
    reveal_type(m)
    a, e = await agg.record_many([], partial=True)
    reveal_type(a)
    reveal_type(e)


reveal_type(phm.backend)
reveal_type(phm.score_by_holder({"holder_id": ["a"], "start": [0]}, now=1))
reveal_type(phm.Settings)
'''

BAD = '''
import poh_holdmetrics as phm

agg = phm.Aggregator()
agg.record_many_sync([]).accepted
accepted, errors = agg.record_many_sync([], partial=True)
accepted.index
phm.backend + 1
'''


def mypy(tmp_path, source: str) -> subprocess.CompletedProcess:
    """mypy on source, against the installed package (run from tmp_path: not the source tree)."""
    (tmp_path / "snippet.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
                           "--no-error-summary", "--hide-error-context", "snippet.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_record_many_types_per_mode(tmp_path):
    pytest.importorskip("mypy", reason="mypy is a test dependency (PY_TEST_DEPS): it checks the package's types")
    r = mypy(tmp_path, GOOD)
    assert r.returncode == 0, r.stdout + r.stderr
    revealed = [line.split("Revealed type is ", 1)[1].strip('"') for line in r.stdout.splitlines()
                if "Revealed type is" in line]
    assert len(revealed) == 11, r.stdout
    err = "list[poh_holdmetrics._errors.InvalidEventError]"
    # n, accepted, errors, rejected; then the awaited twins
    assert [revealed[i] for i in (0, 1, 2, 3, 5, 6, 7)] == ["int", "int", err, "int", "int", "int", err], r.stdout
    union = revealed[4]  # partial=<a bool>: either
    assert union.startswith("int | ") and "RecordResult" in union, r.stdout
    assert "Literal" in revealed[8] and "'native'" in revealed[8] and "'python'" in revealed[8], r.stdout
    assert revealed[9] == "poh_holdmetrics._kernel.HolderScores", r.stdout
    assert revealed[10].startswith("def (") and revealed[10].endswith("poh_holdmetrics._config.Settings"), r.stdout


def test_wrong_uses_are_type_errors(tmp_path):
    pytest.importorskip("mypy", reason="mypy is a test dependency (PY_TEST_DEPS): it checks the package's types")
    r = mypy(tmp_path, BAD)
    errors = {int(line.split(":")[1]): line for line in r.stdout.splitlines() if ": error:" in line}
    assert r.returncode == 1 and sorted(errors) == [5, 7, 8], r.stdout + r.stderr
    assert '"int" has no attribute "accepted"' in errors[5]
    assert '"int" has no attribute "index"' in errors[7]
    assert "Unsupported operand types for +" in errors[8]


def test_dir_and_help_list_the_lazy_names():
    """In a fresh interpreter (here every name may already have been loaded)."""
    code = textwrap.dedent('''
        import pydoc, sys
        import poh_holdmetrics as phm
        assert "poh_holdmetrics._kernel" not in sys.modules  # not loaded by import
        names = dir(phm)
        missing = set(phm.__all__) - set(names)
        assert not missing, missing
        assert names == sorted(names)
        text = pydoc.render_doc(phm, renderer=pydoc.plaintext)
        for name in ("score_by_holder", "HolderScores", "allocate_rewards", "CampaignRules", "Settings",
                     "MetricsServer", "backend", "Aggregator", "RecordResult"):
            assert name in text, name
        print("ok")
    ''')
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_backend_is_one_of_two():
    assert phm.backend in ("native", "python")


def test_record_result_is_a_typed_pair():
    e = phm.InvalidEventError("event 1: weight -1: must be >= 0", field="weight", index=1, reason="negative")
    r = phm.RecordResult(2, [e])
    accepted, errors = r
    assert (accepted, errors) == (r.accepted, r.errors) == (2, [e]) and r.rejected == 1
    assert repr(r) == "RecordResult(accepted=2, rejected=1)"
    back = pickle.loads(pickle.dumps(r))
    assert type(back) is phm.RecordResult and back.accepted == 2 and back.errors[0].index == 1
    with pytest.raises(AttributeError):
        r.accepted = 3  # type: ignore[misc]


@needs_native
def test_partial_record_many_unpacks(agg):
    accepted, errors = agg.record_many_sync([{"token_id": "T", "holder_id": "a", "start": 1},
                                             {"token_id": "T", "holder_id": "", "start": 1}], partial=True)
    assert accepted == 1 and [(x.index, x.field) for x in errors] == [(1, "holder_id")]
