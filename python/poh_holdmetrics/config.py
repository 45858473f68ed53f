"""The seed's ``poh_holdmetrics.config`` (deprecated): ``Settings`` and ``settings``.

``Settings()`` reads the seed's environment names (``GRPC_ADDRESS``, ``HTTP_HOST``,
``HTTP_PORT``, ``LOG_LEVEL``, ``COLLECT_INTERVAL`` (10 s), ``GC_INTERVAL`` (600 s),
``MONGODB_URL``, ``MONGODB_DB``, ``OTLP_ENDPOINT``, ``PROMETHEUS_PORT``); ``settings`` is
the instance made on import. A bad value raises ConfigError naming the variable.
``Settings.to_settings()`` maps them onto our ``poh_holdmetrics.Settings``, whose own
variables are ``POH_HOLDMETRICS_*`` (``load_settings``).
"""

from __future__ import annotations

from ._config import ConfigError
from ._seed import Settings, deprecated

deprecated("poh_holdmetrics.config", "poh_holdmetrics.load_settings() (POH_HOLDMETRICS_* variables, a config file)")

settings = Settings()

__all__ = ["ConfigError", "Settings", "settings"]
