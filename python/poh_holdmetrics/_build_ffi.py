"""Build-time only: the cffi API-mode ("out-of-line") extension poh_holdmetrics._lowlevel,
compiled against the hand-written capi/poh_holdmetrics.h and linked to libpoh_holdmetrics.so
(found next to it at run time through an $ORIGIN rpath). setup.py drives it."""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI


def cdef_from_header(text: str) -> str:
    """The header as cffi's cdef: preprocessor lines dropped, except the POH_* constants,
    whose values cffi then takes from the C compiler ("#define X ...")."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#define\s+(POH_[A-Z_]+)\s+\S", s)
            if m:
                out.append(f"#define {m.group(1)} ...")
            continue
        if s.startswith('extern "C"') or s == "}":
            continue
        out.append(line)
    return "\n".join(out)


def make_builder(header: Path, lib_dir: str | None = None) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_from_header(header.read_text()))
    ffi.set_source(
        "poh_holdmetrics._lowlevel",
        '#include "poh_holdmetrics.h"',
        include_dirs=[str(header.parent)],
        libraries=["poh_holdmetrics"],
        library_dirs=[lib_dir] if lib_dir else [],
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
        py_limited_api=True,
    )
    return ffi
