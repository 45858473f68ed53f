"""Loading the native library (lazily, once, never unloaded) and turning its status codes
into exceptions. This is the only module that touches the cffi extension ``_lowlevel``.

fork: the Go runtime inside the library does not survive fork() (a call in the child
hangs). Once the library is loaded, an at-fork hook marks every child as forked; from then
on ``load()`` raises ForkedProcessError in that child, before any call can reach Go.
"""

from __future__ import annotations

import os
import sys
import threading
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from ._errors import (CampaignError, ClosedError, ForkedProcessError, HoldMetricsError, InternalError,
                      InvalidEventError, NativeLibraryError, NoHistoryError, NoOpenHoldError, StoreError,
                      StoreLockedError)

# The lazily-loaded library: the package's only global state (see STYLE.md).
_ffi: Any = None
_lib: Any = None
_load_error: NativeLibraryError | None = None
_loaded_pid: int | None = None
_forked = False
_lock = threading.Lock()

PURE_ENV = "POH_HOLDMETRICS_PURE"

#: POH_NOW, the C API's "use the wall clock" value (INT64_MIN; checked at load).
POH_NOW = -(2**63)

FORK_MESSAGE = ("poh_holdmetrics: this process was forked after the native library was loaded, and the "
                "Go runtime inside it does not survive fork(); native objects cannot be used here. Create "
                "worker processes with multiprocessing's 'spawn' or 'forkserver' start method "
                "(multiprocessing.get_context('spawn')).")


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


def forked() -> bool:
    """True in a child forked (os.fork, multiprocessing) from a process that had loaded the
    library. The at-fork hook sets the flag, so the hot paths read a global, not getpid()."""
    return _forked


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def load() -> tuple[Any, Any]:
    """(ffi, lib), loading the library on first use. Raises NativeLibraryError when it is
    unavailable or disabled, ForkedProcessError in a forked child."""
    if _lib is not None and not _forked:
        return _ffi, _lib
    return _load_slow()


def _load_slow() -> tuple[Any, Any]:
    global _ffi, _lib, _load_error, _loaded_pid
    if forked():
        raise ForkedProcessError(FORK_MESSAGE)
    if pure_requested():
        raise NativeLibraryError(f"native library disabled by {PURE_ENV}={os.environ[PURE_ENV]}")
    with _lock:
        if _lib is not None:
            return _ffi, _lib
        if _load_error is not None:
            raise _load_error
        # RTLD_NODELETE: the library (a Go runtime) is never unloaded, even if something
        # dlcloses the extension; nothing in this package ever calls dlclose. Windows has
        # no dlopen flags: a DLL stays loaded while nothing calls FreeLibrary, and nothing
        # does. There, the import finds poh_holdmetrics.dll next to _lowlevel.pyd (an
        # extension's own directory is searched for its DLLs; PATH is not).
        flags = sys.getdlopenflags() if hasattr(sys, "getdlopenflags") else None
        if flags is not None:
            sys.setdlopenflags(flags | getattr(os, "RTLD_NODELETE", 0))
        try:
            from . import _lowlevel  # links libpoh_holdmetrics.so (poh_holdmetrics.dll) next to it
        except ImportError as e:
            _load_error = NativeLibraryError(f"native library unavailable: {e}")
            raise _load_error from e
        finally:
            if flags is not None:
                sys.setdlopenflags(flags)
        if _lowlevel.lib.POH_NOW != POH_NOW:
            raise NativeLibraryError("native library does not match this package (POH_NOW)")
        if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
            os.register_at_fork(after_in_child=_after_fork_in_child)
        _loaded_pid = os.getpid()
        _ffi, _lib = _lowlevel.ffi, _lowlevel.lib
        return _ffi, _lib


def available() -> bool:
    try:
        load()
    except NativeLibraryError:
        return False
    return True


def backend() -> str:
    """"native" when calculate_score would use the library here and now, else "python"."""
    return "native" if available() else "python"


def new_error(ffi: Any) -> Any:
    return ffi.new("poh_error *")


def options(ffi: Any, ctype: str) -> Any:
    """A zeroed, size-versioned option or result struct (the C API's POH_INIT)."""
    p = ffi.new(ctype + " *")
    p.size = ffi.sizeof(ctype)
    return p


#: The exception class of every status code of the C API, by name. A test checks that every
#: POH_ERR_* the library defines is here. Argument and buffer errors are bugs of this package
#: (it never passes bad pointers or sizes), hence InternalError.
ERRORS: dict[str, type[HoldMetricsError]] = {
    "POH_ERR_INVALID_EVENT": InvalidEventError,
    "POH_ERR_INVALID_ARGUMENT": InternalError,
    "POH_ERR_BAD_HANDLE": ClosedError,
    "POH_ERR_NO_OPEN_HOLD": NoOpenHoldError,
    "POH_ERR_BUFFER_TOO_SMALL": InternalError,
    "POH_ERR_STATE": HoldMetricsError,
    "POH_ERR_INTERNAL": InternalError,
    "POH_ERR_NO_HISTORY": NoHistoryError,
    "POH_ERR_LOCKED": StoreLockedError,
    "POH_ERR_STORE": StoreError,
    "POH_ERR_CAMPAIGN": CampaignError,
}
_by_code: dict[int, type[HoldMetricsError]] = {}


def error_from(ffi: Any, lib: Any, rc: int, err: Any) -> HoldMetricsError:
    """The exception for a non-zero status and its filled-in poh_error."""
    if not _by_code:
        _by_code.update({getattr(lib, name): cls for name, cls in ERRORS.items()})
    msg = ffi.string(err.message).decode("utf-8", "replace")
    cls = _by_code.get(rc)
    if cls is InvalidEventError:
        return InvalidEventError(msg, field=ffi.string(err.field).decode(), index=int(err.index),
                                 reason=ffi.string(err.reason).decode())
    if cls is ClosedError:
        return ClosedError(f"aggregator is closed ({msg})")
    if cls is None:
        return InternalError(f"unknown status {rc}: {msg}")
    return cls(msg)


def call(fn: Any, *args: Any) -> None:
    """Call a C API function with a fresh poh_error as its last argument, raising the
    status's exception (the one place a status becomes an exception)."""
    err = _ffi.new("poh_error *")
    rc = fn(*args, err)
    if rc:
        raise error_from(_ffi, _lib, rc, err)
