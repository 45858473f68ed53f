"""OTLP push of an Aggregator's metrics, on the OpenTelemetry SDK (the optional ``otlp``
extra: ``pip install poh-holdmetrics[otlp]``).

The metrics are the ones /metrics serves (rendered by the Go core), sample by sample: each
sample name becomes an observable instrument of the same name (counters, histogram
``_bucket`` / ``_sum`` / ``_count`` series: ObservableCounter, cumulative; gauges:
ObservableGauge), its labels become attributes. A backend that turns OTLP back into
Prometheus series therefore shows the same names and values as a scrape.
"""

from __future__ import annotations

import logging
import re
import threading
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from .._aggregator import Aggregator
    from .._config import Settings

from .._errors import HoldMetricsError

try:
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
except ImportError as e:  # pragma: no cover - exercised without the extra installed
    raise ImportError("poh_holdmetrics.exporter.otlp needs the OpenTelemetry SDK: "
                      "pip install 'poh-holdmetrics[otlp]'") from e

log = logging.getLogger("poh_holdmetrics.exporter.otlp")

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_exposition(text: str) -> tuple[dict[str, tuple[str, str]], dict[str, list[tuple[dict[str, str], float]]]]:
    """The Prometheus text format (0.0.4), as ({family: (type, help)}, {sample name:
    [(labels, value)]})."""
    families: dict[str, list[str]] = {}
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line[7:].split(" ", 1)
            fam = families.setdefault(parts[0], ["untyped", ""])
            fam[0 if line[2] == "T" else 1] = parts[1] if len(parts) > 1 else ""
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise ValueError(f"unparsable metrics line {line!r}")
        labels = {k: re.sub(r'\\[\\"n]', lambda x: _UNESCAPE[x.group(0)], v)
                  for k, v in _LABEL.findall(m.group(2) or "")}
        samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return {k: (v[0], v[1]) for k, v in families.items()}, samples


def _family_of(sample: str, families: Mapping[str, tuple[str, str]]) -> tuple[str, str, str]:
    """(family, type, help) of a sample name."""
    if sample in families:
        return (sample, *families[sample])
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and base in families:
            return (base, *families[base])
    return sample, "untyped", ""


class _Snapshots:
    """One parse of metrics_text() per collection cycle, shared by every instrument's
    callback; the wrapping exporter marks the cycle over (invalidate) after each export."""

    def __init__(self, aggregator: Aggregator) -> None:
        self._agg = aggregator
        self._lock = threading.Lock()
        self._samples: dict[str, list[tuple[dict[str, str], float]]] | None = None

    def get(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        with self._lock:
            if self._samples is None:
                try:
                    self._samples = parse_exposition(self._agg.metrics_text())[1]
                except HoldMetricsError as e:  # closed aggregator: report nothing
                    log.debug("no metrics to push: %s", e)
                    self._samples = {}
            return self._samples

    def invalidate(self) -> None:
        with self._lock:
            self._samples = None


class _CycleExporter(MetricExporter):
    """Delegates to the real exporter, then ends the collection cycle."""

    def __init__(self, inner: MetricExporter, snapshots: _Snapshots) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self._inner = inner
        self._snapshots = snapshots

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        try:
            return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        finally:
            self._snapshots.invalidate()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class OTLPExporter:
    """A running push exporter (see start_otlp_exporter). ``force_flush()`` pushes now;
    ``close()`` (idempotent; also ``with``) pushes a last time and stops the SDK's thread."""

    def __init__(self, aggregator: Aggregator, exporter: MetricExporter, interval: float,
                 resource_attributes: Mapping[str, str] | None = None) -> None:
        self._snapshots = _Snapshots(aggregator)
        families, samples = parse_exposition(aggregator.metrics_text())
        self._reader = PeriodicExportingMetricReader(_CycleExporter(exporter, self._snapshots),
                                                     export_interval_millis=max(1.0, interval * 1000))
        attrs = {"service.name": "poh-holdmetrics", **(resource_attributes or {})}
        self._provider = MeterProvider(metric_readers=[self._reader], resource=Resource.create(attrs))
        meter = self._provider.get_meter("poh_holdmetrics")
        self.instruments: list[str] = []
        for name in samples:
            _, kind, help_text = _family_of(name, families)
            cb = self._callback(name)
            if kind == "gauge" or kind == "untyped":
                meter.create_observable_gauge(name, callbacks=[cb], description=help_text)
            else:  # counter, histogram and summary series are cumulative and monotonic
                meter.create_observable_counter(name, callbacks=[cb], description=help_text)
            self.instruments.append(name)
        self._closed = False

    def _callback(self, name: str):
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, labels) for labels, v in self._snapshots.get().get(name, ())]
        return observe

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Collect and push now; True when the export succeeded."""
        return self._provider.force_flush(timeout_millis=timeout * 1000)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._provider.shutdown()

    def __enter__(self) -> OTLPExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_otlp_exporter(aggregator: Aggregator, endpoint: str | None = None, interval: float | None = None, *,
                        headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                        resource_attributes: Mapping[str, str] | None = None,
                        exporter: MetricExporter | None = None, settings: Settings | None = None) -> OTLPExporter:
    """Push the aggregator's metrics every ``interval`` seconds to an OTLP/HTTP (protobuf)
    ``endpoint`` (the full URL, e.g. a collector's ``http://host:4318/v1/metrics``).
    Either left out comes from the settings' ``otlp_endpoint`` / ``otlp_interval``
    (``settings``, else load_settings(); defaults http://127.0.0.1:4318/v1/metrics, 15 s).
    ``exporter`` replaces the OTLP/HTTP exporter by any SDK MetricExporter."""
    if endpoint is None or interval is None:
        from .._config import load_settings
        s = settings or load_settings()
        endpoint = s.otlp_endpoint if endpoint is None else endpoint
        interval = s.otlp_interval if interval is None else interval
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        exporter = OTLPMetricExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=timeout)
    return OTLPExporter(aggregator, exporter, interval, resource_attributes)
