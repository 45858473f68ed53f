"""The seed's ``poh_holdmetrics.calculator`` (deprecated): ``calculate_score(events)``.

``calculate_score(events)`` is ``poh_holdmetrics.calculate_score(events)`` at the wall
clock, as a float: a hold that ends after now counts up to now, one that starts after now
counts 0. A truthy ``POH_DISABLE_RUST`` (the seed's switch) forces the pure-Python path for
that call, as ``POH_HOLDMETRICS_PURE=1`` does for the whole process; both paths return the
same bits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from . import _pure, _score
from ._events import HoldEvent, event_at
from ._seed import deprecated, truthy
from ._time import resolve_now

deprecated("poh_holdmetrics.calculator", "poh_holdmetrics.calculate_score(events, now=None, window=None)")

DISABLE_ENV = "POH_DISABLE_RUST"

__all__ = ["HoldEvent", "calculate_score"]


def calculate_score(events: Iterable[HoldEvent] | Any) -> float:
    """The hold score of ``events`` (HoldEvents, mappings or tuples) now:
    ``sum(max(0, min(end or now, now) - start) * weight)``. Raises InvalidEventError naming
    the first bad event's index and field."""
    if not truthy(os.environ.get(DISABLE_ENV)):
        return float(_score.calculate_score(events))
    now = resolve_now(None)
    evs = [e if e.__class__ is HoldEvent else event_at(e, i) for i, e in enumerate(events)]
    return float(_pure.score_events(evs, now))
