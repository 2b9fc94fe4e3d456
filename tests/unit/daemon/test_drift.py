"""The drift monitor: signals, bounds, min_parts, clearing, listeners, metrics."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.contract.thresholds import QUANTILE_LEVELS
from edgead.daemon.drift import DriftConfig, DriftMonitor, DriftSignal, score_rank
from edgead.errors import ConfigError
from edgead.observe.metrics import StationMetrics
from edgead.verdict import Verdict

Q = tuple(100 * q for q in QUANTILE_LEVELS)  # calibration scores 0..100: a score's rank is score / 100
REF = np.full((32, 40), 100, np.uint8)
REF[:, :20] = 60  # mean 80, std 20


def _monitor(**cfg):
    metrics = StationMetrics()
    m = DriftMonitor(DriftConfig(**{"window_parts": 10, "min_parts": 5, **cfg}), Q, REF, metrics)
    return m, metrics


def test_score_rank_interpolates_the_stored_quantiles():
    assert score_rank(50.0, Q, QUANTILE_LEVELS) == pytest.approx(0.5)
    assert score_rank(92.5, Q, QUANTILE_LEVELS) == pytest.approx(0.925)
    assert score_rank(-1.0, Q, QUANTILE_LEVELS) == 0.0 and score_rank(1e9, Q, QUANTILE_LEVELS) == 1.0


def test_score_alarm_needs_min_parts_counts_only_accepts_and_clears():
    m, metrics = _monitor()
    events = []
    m.subscribe(events.append)
    m.subscribe(lambda e: 1 / 0)  # a failing listener is logged, never raised
    for _ in range(4):
        m.observe(Verdict.ACCEPT, 95.0, 0.99, REF)
    assert m.state()["alarms"] == [] and m.values[DriftSignal.SCORE] == pytest.approx(0.95)  # 4 < min_parts
    for _ in range(20):
        m.observe(Verdict.REJECT, 500.0, 0.99, REF)  # rejects never enter the score window
    m.observe(Verdict.ACCEPT, 95.0, 0.99, REF)
    assert m.state()["alarms"] == ["score"] and [e.alarm for e in events] == [True]
    assert 'edgead_drift_alarm{signal="score"} 1' in metrics.render()
    assert metrics.drift["alarms"] == ["score"]
    for _ in range(10):
        m.observe(Verdict.ACCEPT, 40.0, 0.99, REF)
    assert m.state()["alarms"] == [] and [e.alarm for e in events] == [True, False]
    assert 'edgead_drift_alarm{signal="score"} 0' in metrics.render()


def test_brightness_contrast_and_alignment_signals():
    m, _ = _monitor()
    dim = (REF * 0.7).astype(np.uint8)
    for _ in range(6):
        m.observe(Verdict.ACCEPT, 50.0, 0.5, dim)
    state = m.state()
    assert set(state["alarms"]) == {"brightness", "contrast", "alignment"}
    assert state["values"]["brightness"] == pytest.approx(-0.3, abs=0.02)
    m2, _ = _monitor()
    for _ in range(6):
        m2.observe(Verdict.ACCEPT, 50.0, 0.99, REF)
        m2.observe(Verdict.FAULT, None, None, None)  # faults are not observed
    assert m2.state()["alarms"] == [] and m2.state()["parts"] == 6


def test_off_without_window_or_baselines():
    m = DriftMonitor(DriftConfig(window_parts=0), Q, REF)
    m.observe(Verdict.ACCEPT, 1e9, 0.0, REF * 0)
    assert m.state()["alarms"] == [] and m.state()["parts"] == 0
    bare = DriftMonitor(DriftConfig(window_parts=10, min_parts=1), None, None)  # old bundle, no reference
    bare.observe(Verdict.ACCEPT, 1e9, 0.99, REF)
    assert bare.state()["alarms"] == [] and bare.values[DriftSignal.SCORE] is None


@pytest.mark.parametrize("key, value", [("window_parts", -1), ("min_parts", 0), ("score_rank_max", 0.4),
                                        ("brightness_change_max", 0), ("align_quality_min", 1.5)])
def test_bad_keys_name_themselves(key, value):
    with pytest.raises(ConfigError, match=f"drift.{key}"):
        DriftConfig(**{key: value})
