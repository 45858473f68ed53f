"""HoldTracker: start/stop events on top of an Aggregator's open-hold state.

The open holds live in the aggregator (the Go core), not in a Python dict: a snapshot counts
a hold that is still open up to ``now``, a restart of the tracker loses nothing the
aggregator has, and holds opened by other writers (``record`` of an event with no end) are
seen too.
"""

from __future__ import annotations

import time
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from ._aggregator import Aggregator

from ._errors import HoldMetricsError, InvalidEventError, NoOpenHoldError
from ._events import HoldEvent, TimeLike


class HoldAlreadyOpenError(HoldMetricsError):
    """record_start for a (token, holder) pair that already has an open hold."""

    def __init__(self, token_id: str, holder_id: str) -> None:
        super().__init__(f"record_start({token_id!r}, {holder_id!r}): this pair already has an open hold; "
                         "call record_stop first")
        self.token_id = token_id
        self.holder_id = holder_id


class HoldTracker:
    """Turns "holder started / stopped holding token" signals into hold events.

    ``record_start`` opens a hold (an event with no end) in the aggregator;
    ``record_stop`` closes it there. A second start of a pair that is open raises
    HoldAlreadyOpenError; a stop with no open hold raises NoOpenHoldError. ``at``
    arguments are Unix seconds or datetimes (default: the wall clock).

    The check-then-record of ``record_start`` has no await in between, so it is atomic
    among the coroutines of one event loop; share a tracker across threads only with a
    lock of your own.
    """

    __slots__ = ("_agg",)

    def __init__(self, aggregator: Aggregator) -> None:
        self._agg = aggregator

    @property
    def aggregator(self) -> Aggregator:
        return self._agg

    def is_open(self, token_id: str, holder_id: str) -> bool:
        """True when (token_id, holder_id) has an open hold in the aggregator."""
        return self.open_holds(token_id, holder_id) > 0

    def open_holds(self, token_id: str, holder_id: str) -> int:
        """How many holds of (token_id, holder_id) are open in the aggregator."""
        # One O(1) lookup of the pair in the aggregator, whatever its holder count.
        row = self._agg.pair(token_id, holder_id)
        return 0 if row is None else row.open_holds

    def start_sync(self, token_id: str, holder_id: str, weight: float = 1.0, at: TimeLike | None = None) -> HoldEvent:
        try:
            ev = HoldEvent(token_id, holder_id, int(time.time()) if at is None else at, None, weight)
        except InvalidEventError:
            self._agg._count_rejected(None, 1)  # refused on the aggregator's behalf: its rejected counter
            raise
        if self.is_open(ev.token_id, ev.holder_id):
            raise HoldAlreadyOpenError(ev.token_id, ev.holder_id)
        self._agg.record_sync(ev)
        return ev

    async def record_start(self, token_id: str, holder_id: str, weight: float = 1.0,
                           at: TimeLike | None = None) -> HoldEvent:
        """Open a hold of ``weight`` units from ``at``; returns the event recorded.
        Raises HoldAlreadyOpenError when the pair is already open, InvalidEventError for
        a bad id, time or weight."""
        return self.start_sync(token_id, holder_id, weight, at)

    def stop_sync(self, token_id: str, holder_id: str, at: TimeLike | None = None) -> int:
        try:
            return self._agg.close_hold(token_id, holder_id, at)
        except NoOpenHoldError:
            raise NoOpenHoldError(f"record_stop({token_id!r}, {holder_id!r}): no open hold (never started, "
                                  "or already stopped)") from None

    async def record_stop(self, token_id: str, holder_id: str, at: TimeLike | None = None) -> int:
        """Close the pair's open hold at ``at``; returns how many holds were closed (1
        unless other writers opened more). Raises NoOpenHoldError when none is open,
        InvalidEventError when ``at`` is before the hold's start."""
        return self.stop_sync(token_id, holder_id, at)

    async def record(self, event: HoldEvent) -> None:
        """Record a complete event (or an open one, like record_start without the check)."""
        await self._agg.record(event)
