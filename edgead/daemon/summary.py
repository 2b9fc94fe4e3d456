"""What a run did, in bounded memory: counts by verdict and latency histograms, whatever the number of parts.

A :class:`LatencyHistogram` has log-spaced buckets 1 % wide from 1 µs to 1000 s (about 2 100 integers), so its
percentiles are within 1 % of the exact ones and it costs the same after ten parts or ten million.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from edgead.stages import STAGES
from edgead.verdict import Verdict

_LO_MS = 1e-3
_HI_MS = 1e6
_GROWTH = 1.01


class LatencyHistogram:
    """Milliseconds into log-spaced buckets (relative width 1 %); exact count, sum, min and max.

    Example:
        >>> h = LatencyHistogram()
        >>> for ms in range(1, 101):
        ...     h.add(float(ms))
        >>> round(h.percentile(50)), h.max, h.count
        (50, 100.0, 100)
    """

    _LOG_GROWTH = math.log(_GROWTH)
    SIZE = int(math.ceil(math.log(_HI_MS / _LO_MS) / math.log(_GROWTH))) + 2  # + underflow and overflow

    def __init__(self):
        self.counts = [0] * self.SIZE
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, ms: float) -> None:
        """Count one latency (NaN is ignored)."""
        if ms != ms:  # NaN
            return
        if ms < _LO_MS:
            i = 0
        elif ms >= _HI_MS:
            i = self.SIZE - 1
        else:
            i = 1 + int(math.log(ms / _LO_MS) / self._LOG_GROWTH)
        self.counts[i] += 1
        self.count += 1
        self.sum += ms
        self.min = min(self.min, ms)
        self.max = max(self.max, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100), within 1 % (NaN when empty); 0 and 100 give the exact min and max."""
        if not self.count:
            return math.nan
        if q <= 0:
            return self.min
        if q >= 100:
            return self.max
        rank = q / 100.0 * self.count
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if c and seen >= rank:
                if i == 0:
                    return self.min
                if i == self.SIZE - 1:
                    return self.max
                mid = _LO_MS * _GROWTH ** (i - 1) * math.sqrt(_GROWTH)  # geometric middle of the bucket
                return min(max(mid, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        """The exact mean (NaN when empty)."""
        return self.sum / self.count if self.count else math.nan


@dataclass
class RunSummary:
    """What a run did: counts by verdict, latencies (trigger-in to result-out), where the records are."""

    parts: int = 0
    counts: Counter = field(default_factory=Counter)
    total: LatencyHistogram = field(default_factory=LatencyHistogram)
    stages: dict = field(default_factory=lambda: {s: LatencyHistogram() for s in STAGES})
    seconds: float = 0.0
    images_skipped: int = 0
    records_written: int = 0
    database: str = ""
    images_dir: str = ""
    stopped_by: str = "end of stream"

    def add(self, verdict: Verdict, latencies_ms: dict) -> None:
        """Count one part and its latencies (``total`` and the stages present)."""
        self.parts += 1
        self.counts[verdict] += 1
        self.total.add(latencies_ms.get("total", math.nan))
        for stage, hist in self.stages.items():
            if stage in latencies_ms:
                hist.add(latencies_ms[stage])

    def latency(self, q: float) -> float:
        """Trigger-in to result-out at the ``q``-th percentile, ms."""
        return self.total.percentile(q)

    def stage_means_ms(self) -> dict[str, float]:
        """Mean latency of each stage, ms (0 for a stage that never ran)."""
        return {s: (h.mean if h.count else 0.0) for s, h in self.stages.items()}


def verdict_counts(summary: RunSummary) -> dict:
    """Counts for every verdict, zeros included."""
    return {v.value: summary.counts.get(v, 0) for v in Verdict}
