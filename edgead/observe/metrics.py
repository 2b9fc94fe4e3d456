"""Prometheus metrics in the text exposition format 0.0.4, written out (no client library).

Updates take one small lock per series (well under a microsecond), so the inspection loop can call them inline.
:class:`StationMetrics` holds the station's fixed set: parts by verdict, per-stage latency histograms, and the
``up``/``ready``/last-part gauges.

Example:
    >>> metrics = StationMetrics()
    >>> metrics.observe_part("accept", {"infer": 8.2, "total": 21.0}, timestamp_s=1795000000.0)
    >>> "edgead_parts_total{verdict=\\"accept\\"} 1" in metrics.render()
    True
"""
from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from enum import Enum
from typing import Iterable, Mapping, Sequence

from edgead.stages import TIMINGS
from edgead.verdict import Verdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# 1 ms .. 1 s in a 1-2-5 series, plus 2.5 ms / 25 ms / 250 ms where inline budgets (50-200 ms) need resolution.
QUEUES = ("capture", "images")
"""The station's queues reported by ``edgead_queue_depth``."""
STAGE_BUCKETS_S = (0.001, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)


class State(str, Enum):
    """The station's life cycle as reported by ``edgead_ready`` and ``/healthz`` (ready only in ``READY``)."""

    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"  # running, but every recent part faulted (or the store or the PLC line is failing)
    STOPPING = "stopping"
    FAILED = "failed"


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, ``-Inf``, ``NaN``, integers without ``.0``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()):
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        self._lock = threading.Lock()

    def labels(self, *values: str):
        """The series for these label values (created on first use, then cached)."""
        key = tuple(str(v.value if isinstance(v, Enum) else v) for v in values)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, self._new_child())
        return child

    def _new_child(self):
        raise NotImplementedError

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        """The exposition lines of this metric family."""
        lines = self._header()
        for key, child in sorted(self._children.items()):
            lines.extend(child.render(self.name, self.labelnames, key))
        return lines


class _Value:
    __slots__ = ("_lock", "value")

    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0.0

    def render(self, name: str, names: Sequence[str], key: Sequence[str]) -> list[str]:
        return [f"{name}{_labels(names, key)} {format_value(self.value)}"]


class _CounterValue(_Value):
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self.value += amount


class _GaugeValue(_Value):
    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = float(value)  # a single store: atomic under the GIL

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount


class Counter(_Metric):
    """A monotonically increasing count. ``counter.labels("accept").inc()``."""

    kind = "counter"

    def _new_child(self):
        return _CounterValue()


class Gauge(_Metric):
    """A value that goes up and down. ``gauge.labels().set(1)``."""

    kind = "gauge"

    def _new_child(self):
        return _GaugeValue()


class _HistogramValue:
    __slots__ = ("_lock", "bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]):
        self._lock = threading.Lock()
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket (not cumulative); last = above all bounds
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = bisect_left(self.bounds, value)  # le semantics: value == bound goes into that bound's bucket
        with self._lock:
            self.counts[i] += 1
            self.sum += value
            self.count += 1

    def render(self, name: str, names: Sequence[str], key: Sequence[str]) -> list[str]:
        with self._lock:
            counts, total, n = list(self.counts), self.sum, self.count
        lines, running = [], 0
        for bound, c in zip(self.bounds + (math.inf,), counts):
            running += c
            le = 'le="%s"' % format_value(bound)
            lines.append(f"{name}_bucket{_labels(names, key, le)} {running}")
        lines.append(f"{name}_sum{_labels(names, key)} {format_value(total)}")
        lines.append(f"{name}_count{_labels(names, key)} {n}")
        return lines


class Histogram(_Metric):
    """Counts of observations per upper bound (``le``), plus their sum and count.

    Args:
        name, help_text, labelnames: as for every metric.
        buckets: increasing upper bounds (``+Inf`` is implied).
    """

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = STAGE_BUCKETS_S):
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"{name}: buckets must be strictly increasing, got {buckets}")
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(float(b) for b in buckets if not math.isinf(b))

    def _new_child(self):
        return _HistogramValue(self.buckets)


class Registry:
    """An ordered set of metric families rendered together."""

    def __init__(self, metrics: Iterable[_Metric] = ()):
        self._metrics: list[_Metric] = []
        for metric in metrics:
            self.register(metric)

    def register(self, metric: _Metric) -> _Metric:
        """Add a metric family; names must be unique."""
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"metric {metric.name!r} registered twice")
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        """The whole exposition, ``\\n``-terminated."""
        return "".join(line + "\n" for m in self._metrics for line in m.render())


class StationMetrics:
    """The station's metrics. Every verdict and stage series exists from the start (at zero)."""

    def __init__(self):
        self.parts = Counter("edgead_parts_total", "Parts inspected, by verdict.", ["verdict"])
        self.stage = Histogram("edgead_stage_seconds", "Per-stage latency of one part.", ["stage"])
        self.up = Gauge("edgead_up", "1 while the edgead process runs.")
        self.ready = Gauge("edgead_ready", "1 while the station is ready to inspect parts.")
        self.last_part = Gauge("edgead_last_part_timestamp_seconds",
                               "Unix time of the last inspected part (0 before the first).")
        self.drift_alarm = Gauge("edgead_drift_alarm", "1 while a drift signal is past its bound (verdicts are "
                                 "unchanged).", ["signal"])
        self.drift_value = Gauge("edgead_drift_value", "Drift signal over the rolling window: score rank, relative "
                                 "brightness/contrast change, median alignment quality.", ["signal"])
        self.shadow_parts = Counter("edgead_shadow_parts_total", "Parts offered to the shadow model, by outcome "
                                    "(scored, skipped_busy, skipped_budget, error).", ["outcome"])
        self.events = Counter("edgead_events_total", "Station events (drift alarms raised and cleared) by outcome: "
                              "recorded, write_failed (a write refused, retried), dropped (never recorded).",
                              ["outcome"])
        self.queued = Gauge("edgead_queue_depth", "Items waiting after the last part: frames captured ahead "
                            "(capture), images for the archive (images).", ["queue"])
        self.opcua_audit_failures = Counter("edgead_opcua_audit_failures_total", "OPC UA requests whose audit row "
                                            "could not be recorded (an accepted one was refused for it).")
        self.registry = Registry([self.parts, self.stage, self.up, self.ready, self.last_part, self.drift_alarm,
                                  self.drift_value, self.shadow_parts, self.events, self.queued,
                                  self.opcua_audit_failures])
        for queue_name in QUEUES:
            self.queued.labels(queue_name).set(0)
        for verdict in Verdict:
            self.parts.labels(verdict)
        for outcome in ("scored", "skipped_busy", "skipped_budget", "error"):  # edgead.daemon.shadow.ShadowOutcome
            self.shadow_parts.labels(outcome)
        for outcome in ("recorded", "write_failed", "dropped"):  # edgead.daemon.events.EventWriter
            self.events.labels(outcome)
        for stage in TIMINGS:
            self.stage.labels(stage)
        self.up.labels().set(1)
        self.opcua_audit_failures.labels()
        self.last_part.labels().set(0)
        self.state = State.STARTING
        self.problem: str | None = None
        self.drift: dict | None = None  # the drift section of /healthz (edgead.daemon.drift)
        self.set_state(State.STARTING)

    def set_state(self, state: State | str, problem: str | None = None) -> None:
        """Record the life-cycle state (and, when degraded, why); ``edgead_ready`` is 1 only in ``READY``."""
        self.state = State(state)
        self.problem = problem
        self.ready.labels().set(1 if self.state is State.READY else 0)

    def observe_part(self, verdict: Verdict | str, latencies_ms: Mapping[str, float | None],
                     timestamp_s: float | None = None) -> None:
        """Count one part and its stage latencies.

        Args:
            verdict: the part's verdict.
            latencies_ms: stage name -> milliseconds (None or missing stages are skipped).
            timestamp_s: when the part was captured (Unix seconds; default now).
        """
        self.parts.labels(Verdict(verdict)).inc()
        for stage, ms in latencies_ms.items():
            if ms is not None:
                self.stage.labels(stage).observe(ms / 1000.0)
        self.last_part.labels().set(time.time() if timestamp_s is None else timestamp_s)

    def set_drift(self, state: dict) -> None:
        """The drift monitor's state (:meth:`edgead.daemon.drift.DriftMonitor.state`): gauges and ``/healthz``."""
        self.drift = state
        alarms = set(state["alarms"])
        for signal, value in state["values"].items():
            self.drift_alarm.labels(signal).set(1 if signal in alarms else 0)
            if value is not None:
                self.drift_value.labels(signal).set(value)

    def set_queues(self, depths: Mapping[str, int]) -> None:
        """Set ``edgead_queue_depth`` per queue (names from :data:`QUEUES`)."""
        for name, depth in depths.items():
            self.queued.labels(name).set(depth)

    def render(self) -> str:
        """The exposition text for ``/metrics``."""
        return self.registry.render()
