"""Thresholds chosen for a target escape rate or the best F1, both sides' rates with bounds, and sample warnings."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.calibration.operating_point import operating_point, support_warnings
from edgead.contract.thresholds import Calibration, ThresholdMethod, calibrate, escape_threshold, retune
from edgead.errors import CalibrationError


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", [0.0, 0.02, 0.1, 0.25, 0.5])
def test_escape_threshold_is_the_highest_meeting_the_target(seed, target):
    rng = np.random.default_rng(seed)
    defects = np.round(rng.gamma(3.0, size=int(rng.integers(5, 200))), 1)  # rounded: ties
    t = escape_threshold(defects, target)
    escapes = np.mean(defects < t)
    assert escapes <= target + 1e-12
    higher = defects[defects > t]
    if higher.size:  # the next higher candidate would let more escape than allowed
        assert np.mean(defects < higher.min()) > target
    assert t in defects


def test_escape_threshold_errors():
    with pytest.raises(CalibrationError, match="defective"):
        escape_threshold([], 0.1)
    with pytest.raises(CalibrationError, match=r"\[0, 1\)"):
        escape_threshold([1.0], 1.0)


def _cal():
    return calibrate(np.linspace(1.0, 2.0, 50))


def test_retune_escape_keeps_the_pixel_side_and_records_the_target():
    good = np.linspace(1.0, 2.0, 50)
    defects = np.array([1.5, 2.2, 2.5, 3.0, 3.1, 4.0, 4.2, 5.0, 6.0, 7.0])
    cal = _cal()
    new = retune(cal, "escape", good, defects, target=0.1)
    assert new.method is ThresholdMethod.ESCAPE and new.image.thr == 2.2  # one of ten may escape: 1.5
    assert new.target_escape_rate == 0.1 and new.target_frr is None and new.n_defective == 10
    assert new.pixel == cal.pixel
    again = Calibration.from_dict(new.to_dict())
    assert again.method is ThresholdMethod.ESCAPE and again.target_escape_rate == 0.1
    f1 = retune(cal, "f1", good, defects)
    assert f1.method is ThresholdMethod.F1 and f1.image.thr in defects


def test_retune_needs_what_the_method_reads():
    good = np.linspace(1.0, 2.0, 50)
    with pytest.raises(CalibrationError, match="labelled defective"):
        retune(_cal(), "escape", good, None, target=0.1)
    with pytest.raises(CalibrationError, match="target"):
        retune(_cal(), "frr", good)
    with pytest.raises(CalibrationError, match="unknown threshold method"):
        retune(_cal(), "magic", good)
    with pytest.raises(CalibrationError, match="escape"):
        calibrate(good, method="escape")


def test_operating_point_both_sides():
    p = operating_point(2.0, good_scores=[1.0, 1.5, 2.0, 2.5], defect_scores=[1.9, 3.0, 4.0])
    assert p["false_rejects"]["count"] == 2 and p["escapes"]["count"] == 1  # score >= threshold rejects
    assert p["false_rejects"]["upper"] > 0.5 and "Clopper-Pearson" in p["bound"]
    assert operating_point(2.0, good_scores=[1.0])["escapes"] is None


def test_warns_when_the_sample_cannot_support_the_target():
    (msg,) = support_warnings("frr", 0.001, 3)
    assert "3 good image(s) cannot support a false-reject rate of 0.1 %" in msg and "2995" in msg
    assert support_warnings("frr", 0.01, 299) == []  # 299 good images suffice for 1 % at 95 %
    (msg,) = support_warnings("escape", 0.05, 20)
    assert "20 defective image(s)" in msg and "59" in msg
    assert support_warnings("escape", 0.0, 100)  # zero escapes can never be shown
