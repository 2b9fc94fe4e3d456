"""Decision rules: threshold, minimum area, any-ROI-rejects, overrun never accepts."""
import numpy as np
import pytest

from edgead.daemon.decide import DecisionConfig, apply_budget, decide_part, decide_roi
from edgead.errors import ConfigError
from edgead.verdict import Verdict


def test_threshold_and_area():
    amap = np.zeros((10, 10), np.float32)
    amap[:2, :2] = 0.9  # 4 model pixels -> 16 captured pixels at 2x scale
    cfg = DecisionConfig(min_defect_area_px=16)
    assert decide_roi("a", 0.9, 1.0, amap, (20, 20), cfg).verdict is Verdict.REJECT
    assert decide_roi("a", 0.9, 1.0, amap, (20, 20), DecisionConfig(min_defect_area_px=17)).verdict is Verdict.ACCEPT
    assert decide_roi("a", 0.49, 1.0, amap, (20, 20), DecisionConfig()).verdict is Verdict.ACCEPT
    assert decide_roi("a", 0.5, 1.0, amap, (20, 20), DecisionConfig()).verdict is Verdict.REJECT
    assert decide_roi("a", float("nan"), 1.0, amap, (20, 20), DecisionConfig()).verdict is Verdict.REJECT


def test_part_verdict():
    ok = decide_roi("a", 0.1, 0.0, np.zeros((4, 4)), (4, 4), DecisionConfig())
    bad = decide_roi("b", 0.9, 0.0, np.ones((4, 4)), (4, 4), DecisionConfig())
    assert decide_part([ok, ok]) is Verdict.ACCEPT
    assert decide_part([ok, bad]) is Verdict.REJECT
    assert decide_part([]) is Verdict.FAULT


def test_overrun_never_accepts():
    cfg = DecisionConfig(cycle_budget_ms=100)
    assert apply_budget(Verdict.ACCEPT, 150.0, cfg)[0] is Verdict.FAULT
    assert apply_budget(Verdict.REJECT, 150.0, cfg) == (Verdict.REJECT, None)
    assert apply_budget(Verdict.ACCEPT, 50.0, cfg) == (Verdict.ACCEPT, None)


def test_config_refuses_unsafe_values():
    with pytest.raises(ConfigError, match="never be accepted"):
        DecisionConfig(no_read_as=Verdict.ACCEPT)
    with pytest.raises(ConfigError):
        DecisionConfig(min_defect_area_px=-1)
