"""The seed's ``poh_holdmetrics.tracker`` (deprecated): ``AsyncTracker``.

``AsyncTracker()`` is an ``Aggregator`` (the Go core: it needs the native library) with a
``HoldTracker`` on it, and the seed's method names and return shapes: ``snapshot()`` is a
list of ``(holder_id, weighted_score)`` tuples, best first (score descending, then holder
ascending), an open hold counted up to now. Times are whole Unix seconds of the wall clock.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from ._aggregator import Aggregator
from ._errors import NoOpenHoldError
from ._events import HoldEvent
from ._seed import deprecated, snapshot_tuples
from ._tracker import HoldAlreadyOpenError, HoldTracker

deprecated("poh_holdmetrics.tracker.AsyncTracker", "poh_holdmetrics.Aggregator with poh_holdmetrics.HoldTracker")

__all__ = ["AsyncTracker", "HoldAlreadyOpenError", "NoPendingStartError"]


class NoPendingStartError(NoOpenHoldError, RuntimeError):
    """record_stop of a (token, holder) pair with no open hold: the seed's RuntimeError,
    also our NoOpenHoldError."""

    def __init__(self, token_id: str, holder_id: str) -> None:
        super().__init__(f"No pending start for ({token_id}, {holder_id})")
        self.token_id = token_id
        self.holder_id = holder_id


class AsyncTracker:
    """The seed's tracker over an Aggregator (a new one, or ``aggregator=`` to share one).

    - ``await record(event)``: a HoldEvent (or a mapping / tuple); an event with no end
      opens a hold.
    - ``await record_start(token_id, holder_id, weight=1.0)``: opens a hold now. A pair
      that is already open raises HoldAlreadyOpenError (the seed replaced the first start).
    - ``await record_stop(token_id, holder_id)``: closes it now; with no open hold,
      NoPendingStartError (a RuntimeError: "No pending start for (token, holder)").
    - ``snapshot()``: ``[(holder_id, weighted_score), ...]``.
    - ``gc()`` drops idle holders as ``Aggregator.gc`` does (so our Scheduler can run it);
      ``close()`` (or ``async with``) frees an aggregator the tracker created.
    """

    __slots__ = ("_agg", "_tracker", "_owned")

    def __init__(self, *, aggregator: Aggregator | None = None) -> None:
        self._owned = aggregator is None
        self._agg = Aggregator() if aggregator is None else aggregator
        self._tracker = HoldTracker(self._agg)

    @property
    def aggregator(self) -> Aggregator:
        """The modern Aggregator the tracker records into."""
        return self._agg

    @property
    def tracker(self) -> HoldTracker:
        """The modern HoldTracker behind record_start / record_stop."""
        return self._tracker

    async def record(self, event: HoldEvent | Any) -> None:
        await self._agg.record(event)

    async def record_start(self, token_id: str, holder_id: str, weight: float = 1.0) -> None:
        await self._tracker.record_start(token_id, holder_id, weight)

    async def record_stop(self, token_id: str, holder_id: str) -> None:
        try:
            await self._tracker.record_stop(token_id, holder_id)
        except NoOpenHoldError:
            raise NoPendingStartError(token_id, holder_id) from None

    def snapshot(self) -> list[tuple[str, float]]:
        return snapshot_tuples(self._agg.snapshot())

    def gc(self) -> int:
        return self._agg.gc()

    def close(self) -> None:
        """Free the aggregator if this tracker created it (idempotent)."""
        if self._owned:
            self._agg.close()

    async def __aenter__(self) -> AsyncTracker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
