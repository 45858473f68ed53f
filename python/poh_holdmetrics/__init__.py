"""poh_holdmetrics: hold scores (how much a wallet holds x how long) for Python.

The public API is what this module exports (``__all__``; ``dir()`` and ``help()`` list it
all, the names loaded on first access included). The native library (the Go core) is
loaded on first use, not at import; ``backend`` says which implementation calculate_score
uses: ``"native"`` or ``"python"``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any, Literal

    from ._airdrop import CampaignRules, run_airdrop, verify_merkle, verify_run
    from ._config import ConfigError, Settings, load_settings
    from ._reward_columns import RewardColumns, allocate_rewards_columns
    from ._rewards import InfeasibleCapError, RewardRow, allocate_rewards, write_rewards_csv, write_rewards_json
    from ._scheduler import Scheduler
    from ._tracker import HoldAlreadyOpenError, HoldTracker
    from ._kernel import HolderScores, score_by_holder
    from ._transfers import transfers_to_holds, weights_as_ints
    from .exporter.prometheus import MetricsServer, start_metrics_server

    #: "native" when calculate_score uses the library in this process, else "python"
    #: (computed on each access: it loads the library).
    backend: Literal["native", "python"]

from ._aggregator import Aggregator, RecordResult
from ._errors import (CampaignError, ClosedError, ForkedProcessError, HoldMetricsError, InternalError,
                      InvalidEventError, NativeLibraryError, NoHistoryError, NoOpenHoldError, StoreError,
                      StoreLockedError)
from ._events import HoldEvent, HoldStat, TimeLike, WindowLike
from ._score import calculate_score, twab

# Loaded on first access: reward allocation needs csv, json and fractions, the service layer
# asyncio and http.server, chain data pyarrow; the scoring path needs none of them.
_LAZY = {
    "InfeasibleCapError": "_rewards", "RewardRow": "_rewards", "allocate_rewards": "_rewards",
    "write_rewards_csv": "_rewards", "write_rewards_json": "_rewards",
    "RewardColumns": "_reward_columns", "allocate_rewards_columns": "_reward_columns",
    "HoldTracker": "_tracker", "HoldAlreadyOpenError": "_tracker", "Scheduler": "_scheduler",
    "start_metrics_server": "exporter.prometheus", "MetricsServer": "exporter.prometheus",
    "ConfigError": "_config", "Settings": "_config", "load_settings": "_config",
    "transfers_to_holds": "_transfers", "weights_as_ints": "_transfers",
    "CampaignRules": "_airdrop", "run_airdrop": "_airdrop", "verify_merkle": "_airdrop", "verify_run": "_airdrop",
    "score_by_holder": "_kernel", "HolderScores": "_kernel",
    # The seed's top-level name (deprecated, not in __all__): see poh_holdmetrics.tracker.
    "AsyncTracker": "tracker",
}

from ._version import __version__  # written by the build from version/VERSION (one version for Go, C, Python)

__all__ = [
    "Aggregator",
    "CampaignError",
    "CampaignRules",
    "ClosedError",
    "ConfigError",
    "ForkedProcessError",
    "HoldAlreadyOpenError",
    "HoldEvent",
    "HoldMetricsError",
    "HoldStat",
    "HoldTracker",
    "HolderScores",
    "InfeasibleCapError",
    "InternalError",
    "InvalidEventError",
    "MetricsServer",
    "NativeLibraryError",
    "NoHistoryError",
    "NoOpenHoldError",
    "RecordResult",
    "RewardColumns",
    "RewardRow",
    "Scheduler",
    "Settings",
    "StoreError",
    "StoreLockedError",
    "TimeLike",
    "WindowLike",
    "allocate_rewards",
    "allocate_rewards_columns",
    "backend",
    "calculate_score",
    "load_settings",
    "native_version",
    "run_airdrop",
    "score_by_holder",
    "start_metrics_server",
    "transfers_to_holds",
    "twab",
    "verify_merkle",
    "verify_run",
    "weights_as_ints",
    "write_rewards_csv",
    "write_rewards_json",
]


def native_version() -> str:
    """The native library's version (loads it). Raises NativeLibraryError without it."""
    from . import _native
    ffi, lib = _native.load()
    buf = ffi.new("char[]", 32)
    _native.call(lib.poh_version, buf, len(buf))
    return ffi.string(buf).decode()


def __dir__() -> list[str]:
    """The module's names, those loaded on first access included (so dir() and help() show
    the whole public API without importing it first)."""
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name == "backend":  # "native" or "python", decided (and the library loaded) on access
        from . import _native
        return _native.backend()
    if name in _LAZY:
        from importlib import import_module
        value = getattr(import_module("." + _LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'poh_holdmetrics' has no attribute {name!r}")
