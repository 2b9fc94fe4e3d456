"""Observability: Prometheus metrics, the /metrics and /healthz endpoint, structured logs."""
from __future__ import annotations

from edgead.observe.http import DEFAULT_HOST, DEFAULT_PORT, MetricsServer
from edgead.observe.logs import LogFormat, setup_logging
from edgead.observe.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, Registry, State, StationMetrics

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "Counter",
    "Gauge",
    "Histogram",
    "LogFormat",
    "MetricsServer",
    "Registry",
    "State",
    "StationMetrics",
    "setup_logging",
]
