"""/metrics and /healthz over real HTTP on an ephemeral loopback port."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from edgead.errors import ConfigError
from edgead.observe import CONTENT_TYPE, MetricsServer, State, StationMetrics


def get(url: str, method: str = "GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_metrics_healthz_and_404():
    metrics = StationMetrics()
    with MetricsServer(metrics, port=0) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        code, headers, body = get(f"{server.url}/metrics")
        assert code == 200 and headers["Content-Type"] == CONTENT_TYPE
        assert 'edgead_parts_total{verdict="accept"} 0' in body.decode()

        code, headers, body = get(f"{server.url}/healthz")
        assert code == 503 and headers["Content-Type"] == "application/json"
        assert json.loads(body)["status"] == "starting"

        metrics.set_state(State.READY)
        metrics.observe_part("reject", {"total": 12.0})
        code, _, body = get(f"{server.url}/healthz")
        status = json.loads(body)
        assert code == 200 and status["ready"] is True and status["last_part_age_s"] >= 0
        assert 'edgead_parts_total{verdict="reject"} 1' in get(f"{server.url}/metrics?x=1")[2].decode()

        assert get(f"{server.url}/")[0] == 404
        assert get(f"{server.url}/metricsx")[0] == 404
        assert get(f"{server.url}/metrics", method="POST")[0] == 405
        head = get(f"{server.url}/metrics", method="HEAD")
        assert head[0] == 200 and head[2] == b""

        metrics.set_state(State.STOPPING)
        assert get(f"{server.url}/healthz")[0] == 503
        port = server.port
    with socket.socket() as s:  # the listening socket is released on close (TIME_WAIT aside, as for any server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_port_in_use_is_a_config_error():
    with MetricsServer(StationMetrics(), port=0) as server:
        with pytest.raises(ConfigError, match=f"127.0.0.1:{server.port}"):
            MetricsServer(StationMetrics(), port=server.port)
