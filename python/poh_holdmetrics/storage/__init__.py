"""Storage back ends of the seed's Python service layer (``poh_holdmetrics.storage``).

``MongoStorage`` keeps hold events in MongoDB (the seed's interface; pymongo is an optional
extra: ``pip install 'poh-holdmetrics[mongodb]'``). Importing this package does not import
pymongo: constructing a ``MongoStorage`` does, and says what to install when it is missing.
The daemon's own stores (the embedded log, ``holdmetricsd --store mongodb://...``) are
separate: see the README's Durability section.
"""

from __future__ import annotations

from .mongodb import HoldStat, MongoStorage

__all__ = ["HoldStat", "MongoStorage"]
