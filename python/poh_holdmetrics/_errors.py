"""The exception hierarchy. Every error the package raises derives from HoldMetricsError."""

from __future__ import annotations


class HoldMetricsError(Exception):
    """Base class of every poh_holdmetrics error."""


class InvalidEventError(HoldMetricsError, ValueError):
    """An event (or a value such as ``now``) breaks the contract.

    ``field`` names the field (``token_id``, ``holder_id``, ``start``, ``end``, ``weight``,
    ``now``, ``at``, ``window``, ...), ``index`` the event's position in its batch (-1 when the error is
    not about one event of a batch), ``reason`` the machine-readable kind (``empty``,
    ``too_long``, ``invalid_utf8``, ``out_of_range``, ``end_before_start``, ``not_finite``,
    ``negative``, ``empty_window`` for a TWAB window with no elapsed time,
    ``invalid_type`` for a value of the wrong Python type, or ``unknown_key`` for a
    mapping key or column name that is not a field: ``field`` is then that name).
    """

    def __init__(self, message: str, *, field: str, index: int = -1, reason: str, value: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.index = index
        self.reason = reason
        self.value = value

    def __reduce__(self):  # keep the attributes across pickling (multiprocessing)
        return (_rebuild_invalid, (str(self), self.field, self.index, self.reason, self.value))


def _rebuild_invalid(message: str, field: str, index: int, reason: str, value: str) -> InvalidEventError:
    return InvalidEventError(message, field=field, index=index, reason=reason, value=value)


class CampaignError(HoldMetricsError, ValueError):
    """An airdrop campaign cannot run as asked: a rule or the request is malformed (the
    message names the key), an input file is missing or bad (file and line), a rule leaves
    nobody eligible (each rule's count), a cap cannot fit the pool, an epoch would pay a
    holder less than before or more than the pools, or a merkle file does not verify."""


class NoOpenHoldError(HoldMetricsError, LookupError):
    """close_hold found no open hold for the (token, holder) pair."""


class NoHistoryError(HoldMetricsError):
    """A window query (``snapshot(window=...)``, ``top_n(..., window=...)``) on an Aggregator
    created without ``history=True``: it kept no per-hold history to answer from."""


class StoreError(HoldMetricsError):
    """The durable store of an ``Aggregator(path=...)`` failed: an I/O error, an unreadable
    snapshot, or settings (``window``, ``history``) that do not match the stored state.
    ``path`` is the data dir."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # keep the path across pickling (multiprocessing)
        return (_rebuild_store_error, (type(self), str(self), self.path))


def _rebuild_store_error(cls: type, message: str, path: str) -> StoreError:
    return cls(message, path=path)


class StoreLockedError(StoreError):
    """Another store (another process, or another open Aggregator in this one) holds the data
    dir ``path``: one writer per data dir. Close the other one (or stop the daemon using it)."""


class ClosedError(HoldMetricsError):
    """The Aggregator was closed (or freed) and cannot be used any more."""


class NativeLibraryError(HoldMetricsError):
    """The native library is unavailable (missing, disabled, or unusable in this process)."""


class ForkedProcessError(NativeLibraryError):
    """A native object was used in a child created by fork() after the parent loaded the library.

    The Go runtime inside the library does not survive fork(): any call would hang. Create
    child processes with the multiprocessing "spawn" or "forkserver" start methods.
    """


class InternalError(HoldMetricsError):
    """The native library reported a bug (a recovered panic). Please report the message."""
