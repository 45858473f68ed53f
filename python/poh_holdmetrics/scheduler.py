"""The seed's ``poh_holdmetrics.scheduler`` (deprecated): ``Scheduler(tracker, on_collect=None)``.

Our ``poh_holdmetrics.Scheduler`` with the seed's signature: ``on_collect(stats)`` (a
function or a coroutine function) gets ``tracker.snapshot()`` -- for an AsyncTracker, the
``(holder_id, weighted_score)`` tuples -- every ``collect_interval`` seconds, and
``tracker.gc()`` runs every ``gc_interval`` seconds. The intervals default to the seed's
settings, ``COLLECT_INTERVAL`` (10) and ``GC_INTERVAL`` (600); 0 turns a loop off.
``await start()`` / ``await stop()`` (or ``async with``) as in ours.
"""

from __future__ import annotations

from datetime import timedelta
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _scheduler
from ._seed import Settings, deprecated

deprecated("poh_holdmetrics.scheduler.Scheduler",
           "poh_holdmetrics.Scheduler(aggregator, collect_interval, gc_interval, on_collect)")

__all__ = ["Scheduler"]


class Scheduler(_scheduler.Scheduler):
    """``Scheduler(tracker, on_collect=None)``: the seed's argument order over our
    scheduler (fixed-rate loops, errors logged, stop waits for the loops). ``tracker`` is an
    AsyncTracker, an Aggregator, or any object with ``snapshot()`` (and ``gc()``: without
    one the gc loop is off)."""

    def __init__(self, tracker: Any, on_collect: _scheduler.OnCollect | None = None, *,
                 collect_interval: float | timedelta | None = None,
                 gc_interval: float | timedelta | None = None) -> None:
        if collect_interval is None or gc_interval is None:
            seed = Settings()
            collect_interval = seed.collect_interval if collect_interval is None else collect_interval
            gc_interval = seed.gc_interval if gc_interval is None else gc_interval
        if not hasattr(tracker, "gc"):
            gc_interval = 0
        super().__init__(tracker, collect_interval or None, gc_interval or None, on_collect)
        self.tracker = tracker
