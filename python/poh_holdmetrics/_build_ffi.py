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
            m = re.match(r"#define\s+(POH_[A-Z0-9_]+)\s+\S", s)
            if m:
                out.append(f"#define {m.group(1)} ...")
            continue
        if s.startswith('extern "C"') or s == "}":
            continue
        out.append(line)
    return "\n".join(out)


# C helpers compiled into the extension (not exports of the library: the C API's export list
# is the header's). poh_py_record_packed is record_sync's call: a HoldEvent's packed 24 bytes
# (HoldEvent._packed, "<qqd": start, end or -1 when open, weight; poh_event's layout on the
# little-endian platforms the wheels are built for) instead of four numbers, at the library's
# clock, so that cffi converts three small ints and four pointers per call rather than eleven
# arguments (start, end and POH_NOW are multi-digit ints, cffi's slow conversion path).
HELPERS_CDEF = """
int poh_py_record_packed(poh_handle h, char *token, int64_t token_len, char *holder, int64_t holder_len,
                         char *packed, poh_error *err);
"""

HELPERS_SOURCE = """
#include <string.h>

static int poh_py_record_packed(poh_handle h, char *token, int64_t token_len, char *holder, int64_t holder_len,
                                char *packed, poh_error *err) {
    poh_event ev;
    memcpy(&ev, packed, sizeof ev);
    return poh_record_event(h, token, token_len, holder, holder_len, ev.start, ev.end, ev.end >= 0, ev.weight,
                            POH_NOW, err);
}
"""


def make_builder(header: Path, lib_dir: str | None = None) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_from_header(header.read_text()) + HELPERS_CDEF)
    ffi.set_source(
        "poh_holdmetrics._lowlevel",
        '#include "poh_holdmetrics.h"\n' + HELPERS_SOURCE,
        include_dirs=[str(header.parent)],
        libraries=["poh_holdmetrics"],
        library_dirs=[lib_dir] if lib_dir else [],
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
        py_limited_api=True,
    )
    return ffi
