"""The seed's ``poh_holdmetrics.data_models`` (deprecated): ``HoldEvent`` and ``HoldStat``.

``HoldEvent`` is ``poh_holdmetrics.HoldEvent`` itself: ``HoldEvent(token_id, holder_id,
start, end=None, weight=1.0)``, by keyword or position, with datetimes (naive = UTC) or
Unix seconds; it validates like the Go core. Unlike the seed's pydantic model, its
``start`` and ``end`` read back as Unix seconds (ints), and it is immutable.
``HoldStat(holder_id, weighted_score)`` is the seed's two-field row; the modern
``poh_holdmetrics.HoldStat`` is the full snapshot row.
"""

from __future__ import annotations

from ._events import HoldEvent
from ._seed import HoldStat, deprecated

deprecated("poh_holdmetrics.data_models", "poh_holdmetrics.HoldEvent and poh_holdmetrics.HoldStat")

__all__ = ["HoldEvent", "HoldStat"]
