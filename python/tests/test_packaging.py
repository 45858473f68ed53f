"""The installed package: wheel tag vs GLIBC, lazy loading, versions, py.typed, and the
no-Go install of the wheel into a fresh venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import poh_holdmetrics as phm
from conftest import REPO, needs_native

PKG = Path(phm.__file__).resolve().parent
WHEEL = os.environ.get("POH_WHEEL")


def test_runs_against_installed_package_not_source_tree():
    assert "site-packages" in PKG.parts, PKG
    assert not PKG.is_relative_to(REPO / "python")


def test_typed_and_versions():
    assert (PKG / "py.typed").is_file()
    # One version string: version/VERSION, which the Go library embeds (version/version.go)
    # and the build writes into the package; pyproject.toml reads it, never repeats it.
    assert (REPO / "version" / "VERSION").read_text(encoding="utf-8").strip() == phm.__version__
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'version = { file = ["version/VERSION"] }' in pyproject


@needs_native
def test_native_version_matches():
    assert phm.native_version() == phm.__version__


@pytest.mark.skipif(sys.platform != "linux", reason="Linux only: reads /proc/self/maps")
def test_import_is_lazy():
    code = ("import sys, poh_holdmetrics as p; "
            "maps = open('/proc/self/maps').read(); "
            "print('poh_holdmetrics._lowlevel' in sys.modules, 'libpoh_holdmetrics' in maps, 'asyncio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


@needs_native
@pytest.mark.skipif(sys.platform != "linux", reason="Linux only: reads /proc/self/maps")
def test_library_stays_loaded():
    code = ("import poh_holdmetrics as p, gc; p.calculate_score([], now=1); "
            "import poh_holdmetrics._native as n; n._lib = None; gc.collect(); "
            "print('libpoh_holdmetrics.so' in open('/proc/self/maps').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def _glibc_needed(paths: list[Path]) -> tuple[int, int]:
    """Highest GLIBC_x.y version needed, per readelf (binutils) when present."""
    best = (2, 17)
    readelf = shutil.which("readelf")
    for p in paths:
        text = (subprocess.run([readelf, "-V", "--wide", str(p)], capture_output=True, text=True, check=True).stdout
                if readelf else p.read_bytes().decode("latin-1"))
        for m in re.finditer(r"GLIBC_(\d+)\.(\d+)", text):
            best = max(best, (int(m.group(1)), int(m.group(2))))
    return best


@pytest.mark.skipif(not WHEEL, reason="POH_WHEEL (the wheel under test) is set by `make test-python`")
def test_wheel_tag_matches_glibc():
    name = Path(WHEEL).name
    m = re.fullmatch(r"poh_holdmetrics-[^-]+-cp311-abi3-manylinux_(\d+)_(\d+)_(\w+)\.whl", name)
    assert m, name
    sos = sorted(PKG.glob("*.so"))
    assert {p.name for p in sos} == {"libpoh_holdmetrics.so", "_lowlevel.abi3.so"}
    assert (int(m.group(1)), int(m.group(2))) == _glibc_needed(sos)


@pytest.mark.skipif(not (WHEEL and os.environ.get("POH_TEST_FRESH_VENV")),
                    reason="set by `make test-python` for one interpreter: installs the wheel into a new venv")
def test_wheel_installs_in_fresh_venv_without_go(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # No Go on PATH: the wheel must not need it.
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if not (Path(d) / "go").exists())
    env = {**os.environ, "PATH": path}
    env.pop("POH_HOLDMETRICS_PURE", None)
    subprocess.run([py, "-m", "pip", "install", "-q", WHEEL], check=True, env=env)
    code = ("import shutil, poh_holdmetrics as p; assert shutil.which('go') is None; "
            "print(p.backend, p.calculate_score([p.HoldEvent('T', 'a', 0, 10, 2.0)], now=100))")
    out = subprocess.run([py, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tmp_path)
    assert out.stdout.split() == ["native", "20.0"]
