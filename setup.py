"""Builds the wheel: the Go core as libpoh_holdmetrics.so (go build -buildmode=c-shared),
the cffi API-mode extension poh_holdmetrics._lowlevel (abi3: one wheel for CPython 3.11+)
linked against it, both inside the package. The wheel's platform tag is
manylinux_<glibc>_<arch>, from the highest GLIBC symbol version the two need."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
HEADER = ROOT / "capi" / "poh_holdmetrics.h"
LIB_NAME = "libpoh_holdmetrics.so"
GOLIB_DIR = ROOT / "build" / "golib"
CFFI_C = ROOT / "build" / "cffi" / "_lowlevel.c"
VERSION = (ROOT / "version" / "VERSION").read_text(encoding="utf-8").strip()


class BuildPy(build_py):
    """Writes poh_holdmetrics/_version.py from version/VERSION, the version Go and C report
    too (poh_version)."""

    def run(self) -> None:
        super().run()
        out = Path(self.build_lib) / "poh_holdmetrics" / "_version.py"
        out.write_text(f'"""Written by the build from version/VERSION."""\n\n__version__ = "{VERSION}"\n',
                       encoding="utf-8")


def glibc_floor(paths: list[Path]) -> tuple[int, int]:
    """The highest GLIBC_x.y version any of the ELF files requires (their version-needs
    strings live in .dynstr; a library that defines no GLIBC versions only references them)."""
    best = (2, 17)
    for p in paths:
        for m in re.finditer(rb"GLIBC_(\d+)\.(\d+)", p.read_bytes()):
            best = max(best, (int(m.group(1)), int(m.group(2))))
    return best


class BuildExt(build_ext):
    def run(self) -> None:
        prebuilt = os.environ.get("POH_HOLDMETRICS_LIB")  # a .so built by `make capi`
        GOLIB_DIR.mkdir(parents=True, exist_ok=True)
        lib = GOLIB_DIR / LIB_NAME
        if prebuilt:
            shutil.copyfile(prebuilt, lib)
        else:
            go = shutil.which("go")
            if go is None:
                sys.exit("building poh_holdmetrics from source needs Go >= 1.24 (https://go.dev/dl/) on PATH")
            subprocess.run([go, "build", "-buildmode=c-shared", "-trimpath",
                            "-ldflags", "-s -w -extldflags -Wl,-soname," + LIB_NAME,
                            "-o", str(lib), "./capi"], cwd=ROOT, check=True)
            (GOLIB_DIR / "libpoh_holdmetrics.h").unlink(missing_ok=True)
        sys.path.insert(0, str(ROOT / "python" / "poh_holdmetrics"))
        try:
            from _build_ffi import make_builder
        finally:
            sys.path.pop(0)
        CFFI_C.parent.mkdir(parents=True, exist_ok=True)
        make_builder(HEADER).emit_c_code(str(CFFI_C))
        for ext in self.extensions:
            ext.library_dirs.append(str(GOLIB_DIR))
        super().run()
        dest = Path(self.build_lib) / "poh_holdmetrics"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, dest / LIB_NAME)
        if self.inplace:
            shutil.copyfile(lib, ROOT / "python" / "poh_holdmetrics" / LIB_NAME)
        self._build_daemon(dest / "_bin" / "holdmetricsd")

    def _build_daemon(self, out: Path) -> None:
        """holdmetricsd inside the package, for `poh-holdmetrics serve`: a prebuilt binary
        (POH_HOLDMETRICSD_BIN, e.g. bin/holdmetricsd from `make build`) or a static
        (CGO_ENABLED=0, so it adds no GLIBC requirement to the wheel tag) go build."""
        out.parent.mkdir(parents=True, exist_ok=True)
        prebuilt = os.environ.get("POH_HOLDMETRICSD_BIN")
        if prebuilt:
            shutil.copyfile(prebuilt, out)
        else:
            go = shutil.which("go")
            if go is None:
                sys.exit("building poh_holdmetrics from source needs Go >= 1.24 (https://go.dev/dl/) on PATH")
            subprocess.run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "./cmd/holdmetricsd"],
                           cwd=ROOT, check=True, env={**os.environ, "CGO_ENABLED": "0"})
        out.chmod(0o755)


class BdistWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False
        self.py_limited_api = "cp311"

    def get_tag(self) -> tuple[str, str, str]:
        impl, abi, plat = super().get_tag()
        if sys.platform.startswith("linux"):
            pkg = Path(self.bdist_dir) / "poh_holdmetrics"
            files = [p for p in pkg.glob("*.so")] if pkg.is_dir() else []
            if files:
                major, minor = glibc_floor(files)
                plat = f"manylinux_{major}_{minor}_{platform.machine()}"
        return impl, abi, plat


setup(
    ext_modules=[Extension(
        "poh_holdmetrics._lowlevel",
        sources=[str(CFFI_C.relative_to(ROOT))],
        include_dirs=["capi"],
        libraries=["poh_holdmetrics"],
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
        py_limited_api=True,
        define_macros=[("Py_LIMITED_API", "0x030B0000")],
    )],
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt, "bdist_wheel": BdistWheel},
)
