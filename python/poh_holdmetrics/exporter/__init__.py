"""Exporters of an Aggregator's metrics: Prometheus (pull, stdlib only) and OTLP (push,
the optional ``otlp`` extra: ``pip install poh-holdmetrics[otlp]``).

``start_otlp_exporter`` is imported on first use, so this package (and ``poh_holdmetrics``)
imports without OpenTelemetry installed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from .prometheus import MetricsServer, start_metrics_server

__all__ = ["MetricsServer", "OTLPExporter", "start_metrics_server", "start_otlp_exporter"]


def __getattr__(name: str) -> Any:
    if name in ("OTLPExporter", "start_otlp_exporter"):
        from . import otlp
        return getattr(otlp, name)
    raise AttributeError(f"module 'poh_holdmetrics.exporter' has no attribute {name!r}")
