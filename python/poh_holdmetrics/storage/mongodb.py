"""The seed's ``MongoStorage``: hold events in a MongoDB collection, scores per holder.

One document per saved event in ``<MONGODB_DB>.hold_events``::

    {token_id, holder_id, start: date, end: date | null, weight: double,
     seconds: long | null, weighted_seconds: double | null}

``seconds`` (end - start) and ``weighted_seconds`` (seconds x weight) are stored with each
closed hold because servers that speak the MongoDB protocol without its arithmetic
expressions (FerretDB v1 has no ``$subtract`` or ``$multiply``) can still ``$sum`` a field;
documents written without them (by the seed) are scored in Python instead. Events are
checked by ``poh_holdmetrics.HoldEvent`` (the Go core's rules) before they are saved.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from .._events import HoldEvent
from .._seed import HoldStat  # the seed's (holder_id, weighted_score), as data_models has it

_INSTALL = "pip install 'poh-holdmetrics[mongodb]'"
_MIN_PYMONGO = "4.13"  # AsyncMongoClient is stable from 4.13 (motor is deprecated)


def _async_client() -> Any:
    try:
        from pymongo import AsyncMongoClient
        from pymongo import version as pymongo_version
    except ImportError:
        raise ImportError(f"MongoStorage needs pymongo >= {_MIN_PYMONGO} (its AsyncMongoClient), which is not "
                          f"installed: {_INSTALL}") from None
    have = tuple(int(p) for p in pymongo_version.split(".")[:2] if p.isdigit())
    if have < tuple(int(p) for p in _MIN_PYMONGO.split(".")):
        raise ImportError(f"MongoStorage needs pymongo >= {_MIN_PYMONGO}; pymongo {pymongo_version} is installed: "
                          f"{_INSTALL}")
    return AsyncMongoClient


def _field(event: Any, name: str, default: Any = None) -> Any:
    if isinstance(event, dict):
        return event.get(name, default)
    return getattr(event, name, default)


def _to_date(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _seconds(value: Any) -> float:
    """A stored time (a date, naive = UTC, or Unix seconds) as Unix seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return float(value)


class MongoStorage:
    """Hold events in MongoDB.

    The server is ``url``, else env ``MONGODB_URL``, else ``MONGODB_URI``, else
    mongodb://localhost:27017; the database ``db``, else env ``MONGODB_DB``, else
    "holdmetrics"; the collection ``hold_events``. Construct it inside a running event loop
    (its client belongs to that loop); ``await close()`` when done.
    """

    def __init__(self, url: str | None = None, db: str | None = None, collection: str = "hold_events") -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("MongoStorage() must be constructed inside a running event loop "
                               "(e.g. in an async function run by asyncio.run)") from None
        client_cls = _async_client()
        self.url: str = url or os.environ.get("MONGODB_URL") or os.environ.get("MONGODB_URI") or \
            "mongodb://localhost:27017"
        self.db_name: str = db or os.environ.get("MONGODB_DB") or "holdmetrics"
        self._client = client_cls(self.url, tz_aware=True)
        self._events = self._client[self.db_name][collection]

    async def save_event(self, event: Any) -> None:
        """Save one hold: a seed or ``poh_holdmetrics`` HoldEvent, or a mapping with token_id,
        holder_id, start, end (None: open) and weight (None: 1.0). An invalid event raises
        ``poh_holdmetrics.InvalidEventError`` and saves nothing."""
        weight = _field(event, "weight", 1.0)
        ev = HoldEvent(_field(event, "token_id"), _field(event, "holder_id"), _field(event, "start"),
                       _field(event, "end"), 1.0 if weight is None else weight)
        w = float(ev.weight)
        seconds = None if ev.end is None else ev.end - ev.start
        await self._events.insert_one({
            "token_id": ev.token_id, "holder_id": ev.holder_id,
            "start": _to_date(ev.start), "end": None if ev.end is None else _to_date(ev.end),
            "weight": w, "seconds": seconds, "weighted_seconds": None if seconds is None else seconds * w,
        })

    async def get_stats(self) -> list[HoldStat]:
        """One HoldStat per holder with a closed hold: the sum over its closed holds of
        seconds x weight (open holds do not count), highest score first."""
        totals: dict[str, float] = {}
        closed = {"end": {"$ne": None}}
        pipeline = [{"$match": {**closed, "weighted_seconds": {"$ne": None}}},
                    {"$group": {"_id": "$holder_id", "score": {"$sum": "$weighted_seconds"}}}]
        async for row in await self._events.aggregate(pipeline):
            totals[row["_id"]] = totals.get(row["_id"], 0.0) + float(row["score"])
        # Documents saved without weighted_seconds (by the seed): scored here.
        legacy = {**closed, "weighted_seconds": {"$exists": False}}
        async for doc in self._events.find(legacy, {"holder_id": 1, "start": 1, "end": 1, "weight": 1}):
            w = doc.get("weight")
            score = (_seconds(doc["end"]) - _seconds(doc["start"])) * (1.0 if w is None else float(w))
            totals[doc["holder_id"]] = totals.get(doc["holder_id"], 0.0) + score
        return [HoldStat(h, s) for h, s in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]

    async def purge(self) -> None:
        """Delete every saved event."""
        await self._events.delete_many({})

    async def close(self) -> None:
        """Close the client (idempotent)."""
        await self._client.close()

    async def __aenter__(self) -> MongoStorage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
