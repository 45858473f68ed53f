"""Exporters: a real HTTP scrape of start_metrics_server parsed with prometheus_client, an
OTLP/HTTP push decoded by a local receiver, and imports without the otlp extra."""

from __future__ import annotations

import gzip
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import needs_native
from poh_holdmetrics import HoldEvent
from poh_holdmetrics.exporter import start_metrics_server

EVENTS = [HoldEvent("POH", "alice", 0, 100, 2.0), HoldEvent("POH", "bob", 10, 30), HoldEvent("LP", "alice", 50)]


def scrape_families(text: str) -> dict:
    parser = pytest.importorskip("prometheus_client.parser",
                                 reason="the scrape is parsed with prometheus_client (a test dependency)")
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def sample_value(fams: dict, family: str, sample: str, **labels) -> float:
    for s in fams[family].samples:
        if s.name == sample and s.labels == labels:
            return s.value
    raise KeyError((family, sample, labels))


@needs_native
def test_prometheus_scrape_parses_and_tracks_the_aggregator(agg):
    with start_metrics_server(agg, "127.0.0.1:0") as srv:
        host, port = srv.address
        assert host == "127.0.0.1" and port > 0
        assert srv.url == f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(srv.url, timeout=10) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            fams = scrape_families(r.read().decode())
        assert sample_value(fams, "poh_hold_events", "poh_hold_events_total", result="accepted") == 0
        agg.record_many_sync(EVENTS)
        with urllib.request.urlopen(srv.url, timeout=10) as r:
            fams = scrape_families(r.read().decode())
        assert fams["poh_hold_events"].type == "counter"
        assert sample_value(fams, "poh_hold_events", "poh_hold_events_total", result="accepted") == 3
        assert sample_value(fams, "poh_holders", "poh_holders") == 2
        assert sample_value(fams, "poh_open_holds", "poh_open_holds") == 1
        assert fams["poh_hold_event_score"].type == "histogram"
        assert sample_value(fams, "poh_hold_event_score", "poh_hold_event_score_sum") == 220.0
        assert sample_value(fams, "poh_hold_event_duration_seconds", "poh_hold_event_duration_seconds_count") == 2
        # no holder or token id ever becomes a label
        labels = {k for f in fams.values() for s in f.samples for k in s.labels}
        assert labels <= {"result", "le", "quantile"}
        with urllib.request.urlopen(srv.url.replace("/metrics", "/healthz"), timeout=10) as r:
            assert r.read() == b"ok\n"
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(srv.url.replace("/metrics", "/nope"), timeout=10)
        assert ei.value.code == 404
        agg.close()  # a closed aggregator: 503, the server keeps running
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(srv.url, timeout=10)
        assert ei.value.code == 503
    with pytest.raises(urllib.error.URLError):  # closed: nothing listens any more
        urllib.request.urlopen(srv.url, timeout=10)
    srv.close()  # idempotent
    assert not any(t.name == "poh-metrics-server" for t in threading.enumerate())


# --- OTLP -----------------------------------------------------------------------------------

class OTLPReceiver:
    """A minimal OTLP/HTTP metrics receiver on loopback: decodes each POST /v1/metrics body
    as an ExportMetricsServiceRequest and queues it."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest, ExportMetricsServiceResponse)
        received: queue.Queue = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.path == "/v1/metrics"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                received.put(ExportMetricsServiceRequest.FromString(body))
                out = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def next(self, timeout: float = 10):
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def points(req) -> dict[tuple[str, tuple], tuple[str, float]]:
    """{(metric name, sorted attributes): (kind, value)} of a decoded request."""
    out = {}
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                for p in getattr(m, kind).data_points:
                    attrs = tuple(sorted((a.key, a.value.string_value) for a in p.attributes))
                    v = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                    out[(m.name, attrs)] = (kind, v)
    return out


@pytest.fixture
def receiver(monkeypatch):
    pytest.importorskip("opentelemetry.sdk", reason="the otlp extra (opentelemetry-sdk) is a test dependency")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http",
                        reason="the otlp extra (opentelemetry-exporter-otlp-proto-http) is a test dependency")
    for v in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):  # loopback only, never via a proxy
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    r = OTLPReceiver()
    yield r
    r.close()


@needs_native
def test_otlp_push_carries_the_scrape_names_and_values(agg, receiver):
    from poh_holdmetrics.exporter import start_otlp_exporter
    agg.record_many_sync(EVENTS)
    fams = scrape_families(agg.metrics_text())
    with start_otlp_exporter(agg, receiver.endpoint, interval=3600) as exp:
        assert exp.force_flush()
        req = receiver.next()
        got = points(req)
        res = {a.key: a.value.string_value for a in req.resource_metrics[0].resource.attributes}
        assert res["service.name"] == "poh-holdmetrics"
        assert got[("poh_hold_events_total", (("result", "accepted"),))] == ("sum", 3)
        assert got[("poh_hold_events_total", (("result", "rejected"),))] == ("sum", 0)
        assert got[("poh_holders", ())] == ("gauge", 2)
        assert got[("poh_open_holds", ())] == ("gauge", 1)
        assert got[("poh_hold_event_score_sum", ())] == ("sum", 220.0)
        # every sample of the scrape, same name, labels and value
        for fam in fams.values():
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue
                kind, v = got[(s.name, tuple(sorted(s.labels.items())))]
                assert v == s.value, s.name
        # counters are monotonic cumulative sums
        for m in (m for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics):
            if m.WhichOneof("data") == "sum":
                assert m.sum.is_monotonic and m.sum.aggregation_temporality == 2  # CUMULATIVE
        # the next push reads the aggregator again
        agg.record_sync(HoldEvent("POH", "carol", 0, 1))
        assert exp.force_flush()
        got = points(receiver.next())
        assert got[("poh_hold_events_total", (("result", "accepted"),))] == ("sum", 4)
        assert got[("poh_holders", ())] == ("gauge", 3)


@needs_native
def test_otlp_pushes_periodically(agg, receiver):
    from poh_holdmetrics.exporter import start_otlp_exporter
    exp = start_otlp_exporter(agg, receiver.endpoint, interval=0.05)
    try:
        for _ in range(3):  # three pushes without being asked
            assert ("poh_holders", ()) in points(receiver.next())
    finally:
        exp.close()
    exp.close()  # idempotent


def test_import_without_the_otlp_extra():
    """poh_holdmetrics and its Prometheus exporter import with OpenTelemetry unavailable;
    the OTLP exporter says which extra to install."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'opentelemetry': raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import poh_holdmetrics, poh_holdmetrics.exporter\n"
        "from poh_holdmetrics.exporter import start_metrics_server\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules)\n"
        "try:\n"
        "    from poh_holdmetrics.exporter import start_otlp_exporter\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "pip install 'poh-holdmetrics[otlp]'" in out


@needs_native
def test_addresses_come_from_the_shared_settings(agg, receiver, monkeypatch):
    from poh_holdmetrics._config import load_settings
    from poh_holdmetrics.exporter import start_otlp_exporter
    settings = load_settings(env={}, metrics_addr="127.0.0.1:0", otlp_endpoint=receiver.endpoint,
                             otlp_interval="50ms")
    with start_metrics_server(agg, settings=settings) as srv:
        assert srv.address[0] == "127.0.0.1"
        with urllib.request.urlopen(srv.url, timeout=10) as r:
            assert r.status == 200
    with start_otlp_exporter(agg, settings=settings):
        assert ("poh_holders", ()) in points(receiver.next())  # pushed on its own, every 50 ms
    monkeypatch.setenv("POH_HOLDMETRICS_METRICS_ADDR", "127.0.0.1:0")  # no settings: the environment's
    with start_metrics_server(agg) as srv:
        assert srv.address[1] > 0
