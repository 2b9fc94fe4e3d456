"""The run summary in bounded memory: the same size after ten parts or a million, percentiles within 1 %."""
from __future__ import annotations

import math
import sys

import numpy as np

from edgead.daemon.summary import LatencyHistogram, RunSummary, verdict_counts
from edgead.verdict import Verdict


def _size(summary: RunSummary) -> int:
    hists = [summary.total, *summary.stages.values()]
    return sum(sys.getsizeof(h.counts) for h in hists) + sys.getsizeof(summary.counts)


def test_memory_does_not_grow_with_parts():
    """The summary kept every part's latencies (0.19 KB a part, +3.3 % RSS over 12 000 parts)."""
    summary = RunSummary()
    rng = np.random.default_rng(0)
    summary.add(Verdict.ACCEPT, {"total": 10.0, "capture": 1.0})
    size = _size(summary)
    for ms in rng.lognormal(3.0, 0.5, 200_000):
        summary.add(Verdict.REJECT, {"total": float(ms), "capture": 1.0, "infer": float(ms) / 2})
    assert _size(summary) == size and summary.parts == 200_001


def test_percentiles_are_within_one_percent_and_min_max_exact():
    values = np.random.default_rng(1).lognormal(3.0, 0.8, 50_000)
    hist = LatencyHistogram()
    for v in values:
        hist.add(float(v))
    for q in (1, 50, 90, 99, 99.9):
        exact = float(np.percentile(values, q))
        assert abs(hist.percentile(q) / exact - 1) < 0.011, q
    assert hist.percentile(0) == values.min() and hist.percentile(100) == values.max()
    assert hist.count == values.size and math.isclose(hist.mean, values.mean(), rel_tol=1e-9)


def test_empty_nan_and_out_of_range():
    hist = LatencyHistogram()
    assert math.isnan(hist.percentile(50)) and math.isnan(hist.mean)
    for v in (float("nan"), 1e-9, 5e9):
        hist.add(v)
    assert hist.count == 2 and hist.percentile(100) == 5e9 and hist.percentile(1) == 1e-9
    summary = RunSummary()
    summary.add(Verdict.FAULT, {"capture": 3.0})  # no total: a part that failed early
    assert verdict_counts(summary)["fault"] == 1 and summary.stage_means_ms()["capture"] == 3.0
    assert summary.stage_means_ms()["infer"] == 0.0
