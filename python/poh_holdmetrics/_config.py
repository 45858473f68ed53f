"""Settings: one object shared by the CLI, the scheduler, the exporters and ``serve``.

Sources, highest precedence first: explicit arguments > ``POH_HOLDMETRICS_*`` environment
variables > a config file (TOML, or YAML when PyYAML is installed; named by the ``config``
argument or ``POH_HOLDMETRICS_CONFIG``) > defaults. The keys shared with the daemon
(``holdmetricsd``) have the same names, meanings and value syntax there: ``grpc_addr``,
``http_addr``, ``data_dir``, ``fsync``, ``ttl``, ``gc_interval``, ``log_level``, ... Durations
are Go-style strings (``"5ms"``, ``"1h30m"``) or plain numbers of seconds.

Every unknown key and every bad value raises ConfigError naming the key and its source.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from ._errors import HoldMetricsError

ENV_PREFIX = "POH_HOLDMETRICS_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
# POH_HOLDMETRICS_* variables that are not settings: the package's and the build's own.
_RESERVED_ENV = frozenset({CONFIG_ENV, ENV_PREFIX + "PURE", ENV_PREFIX + "LIB"})


class ConfigError(HoldMetricsError, ValueError):
    """A bad setting. ``key`` names the setting, ``source`` where it came from
    (``argument``, ``env POH_HOLDMETRICS_TTL``, ``config /etc/poh.toml``, ...)."""

    def __init__(self, message: str, *, key: str, source: str) -> None:
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")
        self.key = key
        self.source = source


# --- value parsers: each takes a raw value (str from env, native from a file) ---------------

# The duration syntax is holdmetricsd's (cmd/holdmetricsd/config.go, parseDuration): the
# vectors in testdata/holdmetricsd-config.schema.json ($defs.duration) pin both readers.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# A plain decimal number of seconds: no underscores, no inf/nan, ASCII digits only.
_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SPACE = " \t\n\r\f\v"  # trimmed around a duration (ASCII only, like the daemon)
_MAX_NANOSECONDS = 2**63 - 1  # the daemon's time.Duration


def parse_duration(value: Any) -> float:
    """Seconds from a Go duration string ("1h30m", "250ms"), a number of seconds, or a
    numeric string ("3600", "0.25"), exactly as holdmetricsd reads a duration setting.
    Negative values, and values beyond the daemon's range (about 292 years), are rejected."""
    bad = f"{value!r} is not a duration (e.g. 5ms, 1h, or seconds)"
    if isinstance(value, bool):
        raise ValueError(bad)
    if isinstance(value, (int, float)):
        try:
            secs = float(value)
        except OverflowError:
            secs = math.inf if value > 0 else -math.inf
    elif isinstance(value, str):
        s = value.strip(_SPACE)
        if _SECONDS.fullmatch(s):
            secs = float(s)
        else:
            pos = 1 if s[:1] == "+" else 0
            if pos == len(s) or s[0] == "-":
                raise ValueError(bad)
            secs = 0.0
            for m in _DURATION_PART.finditer(s, pos):
                if m.start() != pos:
                    break
                secs += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if pos != len(s):
                raise ValueError(bad)
    else:
        raise ValueError(bad)
    if not math.isfinite(secs) or secs < 0:
        raise ValueError(f"{value!r} must be a finite duration >= 0")
    # The daemon rounds to nanoseconds as format_duration writes them.
    if int(f"{secs:.9f}".replace(".", "")) > _MAX_NANOSECONDS:
        raise ValueError(f"{value!r} is out of range (at most 9223372036.854775807 seconds)")
    return secs + 0.0  # -0.0 -> 0.0, which format_duration writes as "0s", not "-0s"


def format_duration(seconds: float) -> str:
    """seconds as a Go duration string the daemon parses ("0s", "1.5s", "86400s")."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "t", "true", "yes", "on"):
            return True
        if v in ("0", "f", "false", "no", "off"):
            return False
    raise ValueError(f"{value!r} is not a boolean")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an integer")


def parse_addr(value: Any) -> str:
    """A "host:port" listen address (IPv6 hosts in brackets; port 0 = any free port)."""
    s = _parse_str(value).strip()
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or (host.startswith("[") != host.endswith("]")):
        raise ValueError(f"{value!r} is not a host:port address")
    return s


def split_addr(addr: str) -> tuple[str, int]:
    """("host", port) from "host:port" (an empty host means loopback, never all interfaces)."""
    host, _, port = parse_addr(addr).rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    return host or "127.0.0.1", int(port)


def _choice(*choices: str):
    def parse(value: Any) -> str:
        v = _parse_str(value).strip().lower()
        if v not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return v
    return parse


def _url(value: Any) -> str:
    v = _parse_str(value).strip()
    if v and not re.match(r"^https?://[^/\s]+", v):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return v


# key -> (default, parser, daemon flag?, help). The daemon keys have the names, types and
# defaults of holdmetricsd's schema (testdata/holdmetricsd-config.schema.json, checked by
# python/tests/test_config.py); a default of "" for data_dir means "the daemon's own".
_SPEC: dict[str, tuple[Any, Any, bool, str]] = {
    # shared with holdmetricsd (passed to it by `poh-holdmetrics serve`)
    "grpc_addr": ("127.0.0.1:60051", parse_addr, True, "daemon gRPC listen address"),
    "http_addr": ("127.0.0.1:9100", parse_addr, True, "daemon HTTP (JSON API, health, /metrics) address"),
    "expose": (False, _parse_bool, True, "let the daemon listen on non-loopback addresses"),
    "data_dir": ("", _parse_str, True, "daemon data directory ('' = the daemon's default)"),
    "in_memory": (False, _parse_bool, True, "daemon keeps nothing on disk"),
    "fsync": ("interval", _choice("always", "interval", "none"), True, "daemon fsync policy"),
    "fsync_interval": (0.005, parse_duration, True, "daemon fsync period of the interval policy"),
    "snapshot_bytes": (256 << 20, _parse_int, True, "daemon log bytes between snapshots"),
    "store": ("", _parse_str, True, "daemon store: '' = the embedded log in data_dir, or a mongodb:// URI"),
    "store_lease_ttl": (15.0, parse_duration, True, "mongodb store: how long a dead daemon's lease blocks another"),
    "audit_immudb": ("", _parse_str, True, "daemon mirrors every accepted write to immudb (immudb://...; '' = off)"),
    "audit_key_prefix": ("holdmetrics", _parse_str, True, "prefix of the daemon's keys in immudb"),
    "ttl": (0.0, parse_duration, True, "drop holders idle longer than this with no open hold (0 = never)"),
    "gc_interval": (60.0, parse_duration, True, "how often TTL garbage collection runs"),
    "log_level": ("info", _choice("debug", "info", "warn", "error"), True, "log level"),
    "auth_token_file": ("", _parse_str, True, "file holding the daemon's bearer token"),
    "auth_reads": (False, _parse_bool, True, "daemon requires the token for reads too"),
    "tls_cert": ("", _parse_str, True, "daemon TLS certificate (PEM)"),
    "tls_key": ("", _parse_str, True, "daemon TLS key (PEM)"),
    "max_batch": (1 << 20, _parse_int, True, "daemon's largest batch (events) per request"),
    "max_body_bytes": (16 << 20, _parse_int, True, "daemon's largest HTTP request body"),
    "drain_timeout": (10.0, parse_duration, True, "how long daemon shutdown waits for in-flight work"),
    "max_in_flight": (256, _parse_int, True, "daemon requests served at once (more are refused)"),
    "max_row_errors": (1000, _parse_int, True, "rejected rows a partial batch's reply lists"),
    "grpc_max_recv_bytes": (16 << 20, _parse_int, True, "daemon's largest gRPC request message"),
    "max_conns": (1024, _parse_int, True, "daemon's open connections per listener"),
    "grpc_idle_timeout": (300.0, parse_duration, True, "daemon closes a gRPC connection idle this long"),
    "grpc_max_conn_age": (0.0, parse_duration, True, "daemon closes any gRPC connection after this long (0 = never)"),
    "grpc_keepalive_min_time": (10.0, parse_duration, True, "daemon cuts off clients pinging more often"),
    "debug_pprof": (False, _parse_bool, True, "daemon serves /debug/pprof on its HTTP address"),
    "history": (False, _parse_bool, True, "daemon keeps closed holds so top/stats answer for any window"),
    "exact": (False, _parse_bool, True, "daemon in exact mode: integer weights and exact integer scores"),
    "window": ("", _parse_str, True, "daemon campaign window T0,T1 (Unix seconds or RFC 3339)"),
    # Python service layer only
    "collect_interval": (15.0, parse_duration, False, "how often the Scheduler takes a snapshot"),
    "metrics_addr": ("127.0.0.1:9464", parse_addr, False, "Prometheus exporter listen address"),
    "otlp_endpoint": ("http://127.0.0.1:4318/v1/metrics", _url, False, "OTLP/HTTP metrics endpoint"),
    "otlp_interval": (15.0, parse_duration, False, "how often the OTLP exporter pushes"),
    "daemon_url": ("", _url, False, "daemon base URL for top/stats ('' = http://<http_addr>)"),
}

KEYS: tuple[str, ...] = tuple(_SPEC)
DAEMON_KEYS: tuple[str, ...] = tuple(k for k, v in _SPEC.items() if v[2])


class Settings:
    """Resolved settings (immutable). Attributes are the keys of KEYS; durations are float
    seconds. ``source(key)`` says where a value came from. Build one with ``load_settings``."""

    __slots__ = tuple(_SPEC) + ("_sources",)

    grpc_addr: str
    http_addr: str
    expose: bool
    data_dir: str
    in_memory: bool
    fsync: str
    fsync_interval: float
    snapshot_bytes: int
    store: str
    store_lease_ttl: float
    audit_immudb: str
    audit_key_prefix: str
    ttl: float
    gc_interval: float
    log_level: str
    auth_token_file: str
    auth_reads: bool
    tls_cert: str
    tls_key: str
    max_batch: int
    max_body_bytes: int
    drain_timeout: float
    max_in_flight: int
    max_row_errors: int
    grpc_max_recv_bytes: int
    max_conns: int
    grpc_idle_timeout: float
    grpc_max_conn_age: float
    grpc_keepalive_min_time: float
    debug_pprof: bool
    history: bool
    exact: bool
    window: str
    collect_interval: float
    metrics_addr: str
    otlp_endpoint: str
    otlp_interval: float
    daemon_url: str

    def __init__(self, values: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None) -> None:
        values = dict(values or {})
        for k in values:
            if k not in _SPEC:
                raise ConfigError("unknown key", key=k, source="argument")
        for k, (default, _, _, _) in _SPEC.items():
            object.__setattr__(self, k, values.get(k, default))
        object.__setattr__(self, "_sources", {k: (sources or {}).get(k, "argument" if k in values else "default")
                                              for k in _SPEC})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings is immutable: use replace()")

    def source(self, key: str) -> str:
        """Where key's value came from: "default", "argument", "env NAME" or "config PATH"."""
        return self._sources[key]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _SPEC}

    def replace(self, **changes: Any) -> Settings:
        """A copy with changes applied as explicit arguments (validated)."""
        values = self.as_dict()
        sources = dict(self._sources)
        for k, v in changes.items():
            values[k] = _parse(k, v, "argument")
            sources[k] = "argument"
        return Settings(values, sources)

    @property
    def base_url(self) -> str:
        """The daemon's HTTP base URL: daemon_url, else http://<http_addr>."""
        if self.daemon_url:
            return self.daemon_url.rstrip("/")
        host, port = split_addr(self.http_addr)
        host = f"[{host}]" if ":" in host else host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '[::]') else host}:{port}"

    def daemon_args(self) -> list[str]:
        """holdmetricsd flags for every daemon key not left at its default (the daemon
        applies its own defaults to the rest)."""
        out = []
        for k in DAEMON_KEYS:
            if self._sources[k] == "default":
                continue
            v = getattr(self, k)
            flag = "--" + k.replace("_", "-")
            if isinstance(v, bool):
                out.append(f"{flag}={'true' if v else 'false'}")
            elif _SPEC[k][1] is parse_duration:
                out.append(f"{flag}={format_duration(v)}")
            else:
                out.append(f"{flag}={v}")
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in _SPEC) + ")"


def _parse(key: str, value: Any, source: str) -> Any:
    spec = _SPEC.get(key)
    if spec is None:
        raise ConfigError("unknown key (known keys: " + ", ".join(_SPEC) + ")", key=key, source=source)
    try:
        return spec[1](value)
    except ValueError as e:
        raise ConfigError(str(e), key=key, source=source) from None


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level table of a TOML (.toml) or YAML (.yaml/.yml, needs PyYAML) file."""
    p = Path(path)
    source = f"config {p}"
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", key="", source=source) from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError("YAML config files need PyYAML (pip install pyyaml); or use TOML", key="",
                              source=source) from None
        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError as e:
            raise ConfigError(f"invalid YAML: {e}", key="", source=source) from None
        doc = {} if doc is None else doc
    else:
        import tomllib
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"invalid TOML: {e}", key="", source=source) from None
    if not isinstance(doc, dict):
        raise ConfigError("the top level must be a table of key = value", key="", source=source)
    for k, v in doc.items():
        if isinstance(v, (dict, list)):
            raise ConfigError("expected a single value, not a table or list", key=str(k), source=source)
    return doc


def load_settings(config: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None,
                  **explicit: Any) -> Settings:
    """Resolve the settings: ``explicit`` (None values are ignored, so argparse results can
    be passed as they are) > ``env`` (default: os.environ) ``POH_HOLDMETRICS_<KEY>`` >
    the ``config`` file (default: $POH_HOLDMETRICS_CONFIG) > defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config if config is not None else env.get(CONFIG_ENV) or None
    if path is not None:
        source = f"config {path}"
        for k, v in read_config_file(path).items():
            values[k] = _parse(str(k), v, source)
            sources[k] = source
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _RESERVED_ENV:
            continue
        key = name[len(ENV_PREFIX):].lower()
        source = f"env {name}"
        if raw == "":  # like the daemon: an empty variable is unset
            if key not in _SPEC:
                raise ConfigError("unknown setting", key=key, source=source)
            continue
        values[key] = _parse(key, raw, source)
        sources[key] = source
    for k, v in explicit.items():
        if v is None:
            continue
        values[k] = _parse(k, v, "argument")
        sources[k] = "argument"
    return Settings(values, sources)
