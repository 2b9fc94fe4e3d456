"""The ``/metrics`` and ``/healthz`` endpoint: :mod:`http.server` in a daemon thread, loopback by default.

* ``GET /metrics``: the Prometheus exposition (``text/plain; version=0.0.4``).
* ``GET /healthz``: ``200`` and a JSON status when the station is ready, ``503`` (same JSON, with ``problem``)
  otherwise: starting, stopping, or degraded (every recent part a fault, the record store refusing writes, the
  PLC line only noise).
* Anything else: ``404``; a method other than GET/HEAD: ``405``.

Binding to ``127.0.0.1`` keeps the endpoint off the line network unless the config says otherwise (a Prometheus
on the station, or a reverse proxy, scrapes it).

Example:
    >>> with MetricsServer(metrics, port=0) as server:        # doctest: +SKIP
    ...     print(f"scrape http://127.0.0.1:{server.port}/metrics")
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edgead.errors import ConfigError
from edgead.observe.metrics import CONTENT_TYPE, State, StationMetrics
from edgead.redact import redact

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9818  # unassigned in the Prometheus default-port list; configurable


def health(metrics: StationMetrics) -> tuple[int, dict]:
    """The ``/healthz`` answer: (HTTP status, JSON body).

    Args:
        metrics: the station's metrics (its :class:`State` and last-part time).

    Returns:
        ``(200, body)`` when ready, ``(503, body)`` otherwise.
    """
    last = metrics.last_part.labels().value
    body = {
        "status": metrics.state.value,
        "ready": metrics.state is State.READY,
        "last_part_timestamp_s": last or None,
        "last_part_age_s": round(time.time() - last, 3) if last else None,
        "problem": redact(metrics.problem) if metrics.problem else None,
    }
    if metrics.drift is not None:  # drift never makes the station unready: it is reported beside the state
        body["drift"] = metrics.drift
    return (200 if metrics.state is State.READY else 503), body


class _Handler(BaseHTTPRequestHandler):
    server_version = "edgead"
    metrics: StationMetrics  # set on the per-server subclass

    def _answer(self, code: int, body: bytes, content_type: str, send_body: bool = True) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _route(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, self.metrics.render().encode(), CONTENT_TYPE, send_body)
        elif path == "/healthz":
            code, body = health(self.metrics)
            self._answer(code, (json.dumps(body) + "\n").encode(), "application/json", send_body)
        else:
            self._answer(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8", send_body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._route(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(send_body=False)

    def _not_allowed(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def log_message(self, fmt: str, *args) -> None:
        log.debug("metrics http %s: " + fmt, self.client_address[0], *args)


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` from a daemon thread. A context manager.

    Args:
        metrics: what to serve.
        host: address to bind (default loopback).
        port: TCP port; 0 picks a free one (see :attr:`port`).

    Raises:
        ConfigError: if the address cannot be bound (in use, or not local).
    """

    def __init__(self, metrics: StationMetrics, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        handler = type("MetricsHandler", (_Handler,), {"metrics": metrics})
        try:
            self._server = ThreadingHTTPServer((host, int(port)), handler)
        except OSError as exc:
            raise ConfigError(
                f"metrics endpoint {host}:{port} cannot be bound: {exc}",
                hint="choose another observe port, or stop what is using it",
            ) from exc
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgead-metrics", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:9818``."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
