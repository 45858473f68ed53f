"""Builds the wheel: the Go core as libpoh_holdmetrics.so (go build -buildmode=c-shared),
the cffi API-mode extension poh_holdmetrics._lowlevel (abi3: one wheel for CPython 3.11+)
linked against it, both inside the package. The wheel's platform tag is
manylinux_<glibc>_<arch>, from the highest GLIBC symbol version the two need.

POH_HOLDMETRICS_PLAT=win_amd64 cross-builds the Windows wheel on Linux instead (make
wheel-win): poh_holdmetrics.dll, the extension as _lowlevel.pyd compiled with mingw-w64
(POH_HOLDMETRICS_MINGW_CC, default x86_64-w64-mingw32-gcc) against the headers and
python3.lib of a Windows CPython in POH_HOLDMETRICS_WIN_PYTHON, and _bin/holdmetricsd.exe."""

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
WINDOWS = os.environ.get("POH_HOLDMETRICS_PLAT") == "win_amd64"
LIB_NAME = "poh_holdmetrics.dll" if WINDOWS else "libpoh_holdmetrics.so"
DAEMON_NAME = "holdmetricsd.exe" if WINDOWS else "holdmetricsd"
MINGW_CC = os.environ.get("POH_HOLDMETRICS_MINGW_CC", "x86_64-w64-mingw32-gcc")
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
            ldflags = "-s -w" if WINDOWS else "-s -w -extldflags -Wl,-soname," + LIB_NAME
            env = {**os.environ, "CGO_ENABLED": "1", "GOOS": "windows", "GOARCH": "amd64",
                   "CC": MINGW_CC} if WINDOWS else None
            subprocess.run([go, "build", "-buildmode=c-shared", "-trimpath", "-ldflags", ldflags,
                            "-o", str(lib), "./capi"], cwd=ROOT, check=True, env=env)
            (GOLIB_DIR / (Path(LIB_NAME).stem + ".h")).unlink(missing_ok=True)
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
        self._build_daemon(dest / "_bin" / DAEMON_NAME)

    def get_ext_filename(self, fullname: str) -> str:
        if WINDOWS:  # an abi3 extension on Windows is a plain .pyd
            return os.path.join(*fullname.split(".")) + ".pyd"
        return super().get_ext_filename(fullname)

    def build_extension(self, ext: Extension) -> None:
        """On Linux, setuptools' compiler. For Windows, mingw-w64 directly: setuptools
        cannot cross-compile. The ABI matches MSVC's CPython for this plain-C module (no
        FILE*, long double or CRT objects cross it)."""
        if not WINDOWS:
            super().build_extension(ext)
            return
        pyroot = os.environ.get("POH_HOLDMETRICS_WIN_PYTHON")
        if not pyroot or not (Path(pyroot) / "include" / "Python.h").is_file():
            sys.exit("POH_HOLDMETRICS_PLAT=win_amd64 needs POH_HOLDMETRICS_WIN_PYTHON: a Windows CPython "
                     "(include/Python.h, libs/python3.lib), e.g. from scripts/windows/cpython.sh")
        out = Path(self.get_ext_fullpath(ext.name))
        out.parent.mkdir(parents=True, exist_ok=True)
        # -include malloc.h: cffi's generated C declares alloca only for MSVC.
        subprocess.run([MINGW_CC, "-O2", "-s", "-shared", "-include", "malloc.h",
                        *(f"-D{k}={v}" for k, v in ext.define_macros),
                        f"-I{Path(pyroot) / 'include'}", *(f"-I{ROOT / d}" for d in ext.include_dirs),
                        *(str(ROOT / src) for src in ext.sources),
                        f"-L{GOLIB_DIR}", "-lpoh_holdmetrics", f"-L{Path(pyroot) / 'libs'}", "-lpython3",
                        "-o", str(out)], check=True)

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
            target = {"GOOS": "windows", "GOARCH": "amd64"} if WINDOWS else {}
            subprocess.run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "./cmd/holdmetricsd"],
                           cwd=ROOT, check=True, env={**os.environ, "CGO_ENABLED": "0", **target})
        out.chmod(0o755)


class BdistWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False
        self.py_limited_api = "cp311"

    def get_tag(self) -> tuple[str, str, str]:
        impl, abi, plat = super().get_tag()
        if WINDOWS:
            plat = "win_amd64"
        elif sys.platform.startswith("linux"):
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
