"""A /metrics endpoint for library users who do not run the daemon: the aggregator's
metrics (rendered by the Go core) served by the stdlib HTTP server on a thread."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

    from .._aggregator import Aggregator
    from .._config import Settings

from .._config import split_addr
from .._errors import HoldMetricsError

log = logging.getLogger("poh_holdmetrics.exporter.prometheus")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    aggregator: Aggregator

    def __init__(self, addr: tuple[str, int], aggregator: Aggregator) -> None:
        import socket
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.aggregator = aggregator
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "poh-holdmetrics"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = self.server.aggregator.metrics_text().encode("utf-8")
            except HoldMetricsError as e:  # closed aggregator, forked child, ...
                self._send(503, f"metrics unavailable: {e}\n".encode(), "text/plain; charset=utf-8")
                return
            self._send(200, body, CONTENT_TYPE)
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, b'<html><body><a href="/metrics">/metrics</a></body></html>\n',
                       "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)


class MetricsServer:
    """A running /metrics server. ``address`` is the bound (host, port); ``url`` the
    scrape URL. ``close()`` (idempotent; also ``with``) stops serving and joins the thread."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="poh-metrics-server", daemon=True)
        self._closed = False
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {'closed' if self._closed else self.url}>"


def start_metrics_server(aggregator: Aggregator, addr: str | tuple[str, int] | None = None, *,
                         settings: Settings | None = None) -> MetricsServer:
    """Serve ``aggregator.metrics_text()`` at ``http://addr/metrics`` (also ``/healthz``)
    from a background thread; returns the running server. ``addr`` is "host:port" or a
    (host, port) tuple; port 0 picks a free port (see ``.address``). Without ``addr`` it is
    the settings' ``metrics_addr`` (``settings``, else load_settings(): the environment
    and config file; default 127.0.0.1:9464). Binds loopback unless told otherwise."""
    if addr is None:
        from .._config import load_settings
        addr = (settings or load_settings()).metrics_addr
    host, port = split_addr(addr) if isinstance(addr, str) else addr
    return MetricsServer(_Server((host, int(port)), aggregator))
