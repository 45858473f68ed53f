"""The seed's PyO3 module, ``poh_holdmetrics_rust`` (deprecated), over ``poh_holdmetrics``.

- ``PyHoldEvent(token_id, holder_id, start, end, weight)``: all five required, by position
  or keyword; ``end=None`` is an open hold, ``weight=None`` means 1.0; times are Unix
  seconds (or datetimes); read-only attributes of the same names. Validated like
  ``poh_holdmetrics.HoldEvent`` (an InvalidEventError, a ValueError, names the field).
- ``calculate_score(events) -> float``: the score now (the wall clock).
- ``PyAggregator()``: ``await agg.record(ev)`` (the event is recorded when ``record`` is
  called, and the awaitable it returns is already complete: awaiting it is optional), and
  ``agg.snapshot() -> list[tuple[str, float]]``, ``(holder_id, weighted_score)`` best first.
  It is a ``poh_holdmetrics.Aggregator`` (the native library).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from poh_holdmetrics import Aggregator, _score
from poh_holdmetrics._events import HoldEvent
from poh_holdmetrics._seed import deprecated, snapshot_tuples

deprecated("poh_holdmetrics_rust", "poh_holdmetrics (HoldEvent, calculate_score, Aggregator)")

__all__ = ["PyAggregator", "PyHoldEvent", "calculate_score"]


class PyHoldEvent:
    """The seed's event: ``PyHoldEvent(token_id, holder_id, start, end, weight)``."""

    __slots__ = ("_event",)

    def __init__(self, token_id: str, holder_id: str, start: int, end: int | None, weight: float | None) -> None:
        object.__setattr__(self, "_event", HoldEvent(token_id, holder_id, start, end,
                                                     1.0 if weight is None else weight))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"PyHoldEvent is read-only: cannot set {name!r}")

    @property
    def token_id(self) -> str:
        return self._event.token_id

    @property
    def holder_id(self) -> str:
        return self._event.holder_id

    @property
    def start(self) -> int:
        return self._event.start

    @property
    def end(self) -> int | None:
        return self._event.end

    @property
    def weight(self) -> float:
        return float(self._event.weight)

    def to_event(self) -> HoldEvent:
        """The modern ``poh_holdmetrics.HoldEvent``."""
        return self._event

    def __eq__(self, other: object) -> bool:
        return self._event == other._event if isinstance(other, PyHoldEvent) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._event)

    def __repr__(self) -> str:
        e = self._event
        return f"PyHoldEvent({e.token_id!r}, {e.holder_id!r}, {e.start!r}, {e.end!r}, {e.weight!r})"


def _event(ev: Any) -> Any:
    """A PyHoldEvent as our HoldEvent; anything else as it is (HoldEvents, mappings and
    tuples are taken by our API, which rejects the rest with the index)."""
    return ev._event if ev.__class__ is PyHoldEvent else ev


def calculate_score(events: Iterable[PyHoldEvent]) -> float:
    """``poh_holdmetrics.calculate_score(events)`` now, as a float."""
    return float(_score.calculate_score([_event(e) for e in events]))


class _Done:
    """An awaitable that is already complete (record has happened when it is made)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that ends at once


_DONE = _Done()


class PyAggregator:
    """The seed's aggregator over ``poh_holdmetrics.Aggregator`` (``.aggregator``)."""

    __slots__ = ("_agg",)

    def __init__(self) -> None:
        self._agg = Aggregator()

    @property
    def aggregator(self) -> Aggregator:
        return self._agg

    def record(self, ev: PyHoldEvent) -> _Done:
        """Record ``ev`` now; returns a completed awaitable (so awaiting it is optional)."""
        self._agg.record_sync(_event(ev))
        return _DONE

    def snapshot(self) -> list[tuple[str, float]]:
        return snapshot_tuples(self._agg.snapshot())

    def close(self) -> None:
        """Free the aggregator now (else its finalizer does). Idempotent."""
        self._agg.close()
