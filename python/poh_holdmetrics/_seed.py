"""What the compatibility modules share: the seed's names (poh_holdmetrics 0.1 and its PyO3
module poh_holdmetrics_rust) over our API, with our semantics.

The public compatibility modules (calculator, data_models, tracker, scheduler, config,
protocols, and the top-level poh_holdmetrics_rust) each import this one and warn once, on
import, with ``deprecated`` (app_holdmetrics when it runs). Nothing here warns, so any
module can use it without a note of its own.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from ._config import ConfigError, _parse_int, _parse_str, _url, load_settings, parse_addr, parse_duration
from ._config import Settings as ModernSettings

MIGRATING = "see the README, 'Migrating from poh_holdmetrics_rust'"


# Frames the deprecation note looks past to find the user's line: this package's, the seed
# module's, and the import machinery's (import statements, import_module, the lazy getattr).
_INTERNAL = (os.path.dirname(__file__) + os.sep, os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                                              "poh_holdmetrics_rust") + os.sep,
             os.path.dirname(importlib.__file__) + os.sep, "<frozen importlib.")


def deprecated(old: str, new: str) -> None:
    """The deprecation note of a compatibility name: a DeprecationWarning naming its modern
    replacement, attributed to the first frame outside this package and the import
    machinery, or to a module run as ``__main__`` (so Python's default filter shows it to a
    script; ``warnings.warn(skip_file_prefixes=...)`` of Python 3.12 does the first part)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL) \
            and frame.f_globals.get("__name__") != "__main__":  # python -m poh_holdmetrics.app_holdmetrics
        frame = frame.f_back
    g = frame.f_globals
    warnings.warn_explicit(f"{old} is the seed's API (poh_holdmetrics 0.1), kept for compatibility: use {new} "
                           f"({MIGRATING})", DeprecationWarning, frame.f_code.co_filename, frame.f_lineno,
                           module=g.get("__name__", "<unknown>"), registry=g.setdefault("__warningregistry__", {}))


@dataclass(frozen=True, slots=True)
class HoldStat:
    """The seed's ``data_models.HoldStat``: a holder and its weighted score (seconds x weight).
    Our ``poh_holdmetrics.HoldStat`` is the full row (score, total_seconds, events, ...)."""

    holder_id: str
    weighted_score: float


def snapshot_tuples(rows: Any) -> list[tuple[str, float]]:
    """Snapshot rows as the seed returned them: ``(holder_id, weighted_score)`` tuples."""
    return [(r.holder_id, float(r.score)) for r in rows]


def truthy(value: str | None) -> bool:
    """An environment flag such as POH_DISABLE_RUST: set and not 0/false/no/off."""
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


# --- the seed's Settings ----------------------------------------------------------------------

def _port(value: Any) -> int:
    p = _parse_int(value)
    if not 0 <= p <= 65535:
        raise ValueError(f"{value!r} is not a port (0-65535)")
    return p


def _host(value: Any) -> str:
    h = _parse_str(value).strip()
    if not h or any(c in h for c in " /"):
        raise ValueError(f"{value!r} is not a host name or address")
    return h


# The seed's names (Python's logging levels) -> the daemon's.
_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "WARN": "warn", "ERROR": "error",
           "CRITICAL": "error", "FATAL": "error"}


def _level(value: Any) -> str:
    v = _parse_str(value).strip().upper()
    if v not in _LEVELS:
        raise ValueError(f"{value!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return "WARNING" if v == "WARN" else "CRITICAL" if v == "FATAL" else v


# field -> (environment variables, first wins; default; parser). Defaults are ours where
# they are addresses (loopback), the seed's for the intervals.
_FIELDS: dict[str, tuple[tuple[str, ...], Any, Any]] = {
    "grpc_address": (("GRPC_ADDRESS",), "127.0.0.1:60051", parse_addr),
    "http_host": (("HTTP_HOST",), "127.0.0.1", _host),
    "http_port": (("HTTP_PORT",), 9100, _port),
    "log_level": (("LOG_LEVEL",), "INFO", _level),
    "collect_interval": (("COLLECT_INTERVAL",), 10.0, parse_duration),
    "gc_interval": (("GC_INTERVAL",), 600.0, parse_duration),
    "mongodb_url": (("MONGODB_URL", "MONGODB_URI"), "mongodb://localhost:27017", _parse_str),
    "mongodb_db": (("MONGODB_DB",), "holdmetrics", _parse_str),
    "otlp_endpoint": (("OTLP_ENDPOINT",), "http://127.0.0.1:4318/v1/metrics", _url),
    "prometheus_port": (("PROMETHEUS_PORT",), 9464, _port),
}


class Settings:
    """The seed's ``config.Settings``: its environment names (``GRPC_ADDRESS``, ``HTTP_HOST``,
    ``HTTP_PORT``, ``LOG_LEVEL``, ``COLLECT_INTERVAL``, ``GC_INTERVAL``, ``MONGODB_URL`` (or
    ``MONGODB_URI``), ``MONGODB_DB``, ``OTLP_ENDPOINT``, ``PROMETHEUS_PORT``) as lower-case
    attributes. Keyword arguments win over the environment, as in pydantic-settings. Every
    value is checked on construction and assignment; a bad one raises ConfigError naming the
    variable (``env HTTP_PORT: HTTP_PORT: 'x' is not an integer``). Intervals are float
    seconds (``"10"``, ``"1m"``). ``to_settings()`` is our ``poh_holdmetrics.Settings``.
    """

    __slots__ = tuple(_FIELDS) + ("_set",)

    grpc_address: str
    http_host: str
    http_port: int
    log_level: str
    collect_interval: float
    gc_interval: float
    mongodb_url: str
    mongodb_db: str
    otlp_endpoint: str
    prometheus_port: int

    def __init__(self, *, _env: Mapping[str, str] | None = None, **values: Any) -> None:
        env = os.environ if _env is None else _env
        explicit: set[str] = set()
        for name, (envs, default, parse) in _FIELDS.items():
            if name in values:
                value = _check(name, values.pop(name), "argument", name)
                explicit.add(name)
            else:
                value = default
                for var in envs:
                    raw = env.get(var)
                    if raw:  # an empty variable is unset, as for POH_HOLDMETRICS_*
                        value = _check(name, raw, f"env {var}", var)
                        explicit.add(name)
                        break
            object.__setattr__(self, name, value)
        if values:
            k = sorted(values)[0]
            raise ConfigError("unknown setting (known: " + ", ".join(_FIELDS) + ")", key=k, source="argument")
        object.__setattr__(self, "_set", explicit)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _FIELDS:
            raise AttributeError(f"Settings has no setting {name!r} (known: {', '.join(_FIELDS)})")
        object.__setattr__(self, name, _check(name, value, "argument", name))
        self._set.add(name)

    def is_set(self, name: str) -> bool:
        """True when ``name`` came from the environment or an argument, not its default."""
        return name in self._set

    def to_settings(self, mode: str = "all") -> ModernSettings:
        """Our ``poh_holdmetrics.Settings`` (``load_settings``): the values set here as
        explicit settings over ``POH_HOLDMETRICS_*``, the config file and the defaults.
        ``grpc_address`` -> ``grpc_addr``, ``http_host``:``http_port`` -> ``http_addr``,
        ``log_level`` -> ``log_level`` (WARNING -> warn, CRITICAL -> error), the intervals
        and ``otlp_endpoint`` as they are, ``prometheus_port`` -> ``metrics_addr``
        (127.0.0.1:port). ``mode`` ``"grpc"`` or ``"http"`` (the seed's app modes) puts the
        other listener on a free loopback port (``127.0.0.1:0``)."""
        if mode not in ("grpc", "http", "all"):
            raise ValueError(f"mode {mode!r}: want 'grpc', 'http' or 'all'")
        out: dict[str, Any] = {}
        if mode == "http":
            out["grpc_addr"] = "127.0.0.1:0"
        elif self.is_set("grpc_address"):
            out["grpc_addr"] = self.grpc_address
        if mode == "grpc":
            out["http_addr"] = "127.0.0.1:0"
        elif self.is_set("http_host") or self.is_set("http_port"):
            host = f"[{self.http_host}]" if ":" in self.http_host and not self.http_host.startswith("[") \
                else self.http_host
            out["http_addr"] = f"{host}:{self.http_port}"
        if self.is_set("log_level"):
            out["log_level"] = _LEVELS[self.log_level]
        for k in ("collect_interval", "gc_interval", "otlp_endpoint"):
            if self.is_set(k):
                out[k] = getattr(self, k)
        if self.is_set("prometheus_port"):
            out["metrics_addr"] = f"127.0.0.1:{self.prometheus_port}"
        return load_settings(**out)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIELDS) + ")"


def _check(name: str, value: Any, source: str, key: str) -> Any:
    try:
        return _FIELDS[name][2](value)
    except ValueError as e:
        raise ConfigError(str(e), key=key, source=source) from None

