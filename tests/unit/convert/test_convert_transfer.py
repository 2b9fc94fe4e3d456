"""Threshold transfer with its guard band (convert/transfer.py): literal numbers."""
import numpy as np
import pytest

from edgead.contract.graph import Prediction
from edgead.contract.thresholds import Calibration, Normalisation, ThresholdMethod
from edgead.convert.transfer import MAX_GUARD_FRACTION, GuardBand, Offset, Scale, shortfall, transfer_thresholds

CAL = Calibration(Normalisation(6.0, 10.0), Normalisation(1.0, 2.0), ThresholdMethod.FRR, 0.01, 5, 0)


def _pred(scores, maps):
    return Prediction(score=scores, map=maps, raw_score=scores, raw_map=maps)


def test_shortfall_is_the_largest_drop_below_the_transferred_value():
    fp32 = np.array([3.0, 4.0, 5.0, 6.0])
    cand = np.array([3.0, 3.9, 5.2, 6.0])
    assert shortfall(Offset(0.0, 0.0), cand, fp32) == pytest.approx(0.1)
    assert shortfall(Scale(1.0, 0.0), fp32 + 1.0, fp32) == 0.0  # never negative
    assert shortfall(Scale(4.0, 0.0), np.array([6.0, 7.5, 10.0, 12.0]), fp32) == pytest.approx(0.5)


def test_guard_band_lowers_the_thresholds_and_is_recorded():
    fp32 = np.array([5.0, 6.0, 7.0, 8.0, 9.0])
    cand = fp32 + np.array([0.0, -0.3, 0.1, 0.0, 0.2])  # one image scores 0.3 below the FP32 one
    maps = np.ones((5, 4, 4))
    moved, details = transfer_thresholds(CAL, _pred(fp32, maps), _pred(cand, maps))
    off = Offset(**details["image"]).to_candidate(10.0)
    g = details["guard_band"]["image"]
    assert details["guard_band"]["kind"] == "shortfall" and g > 0.29
    assert moved.image.thr == pytest.approx(off - g)
    plain, d2 = transfer_thresholds(CAL, _pred(fp32, maps), _pred(cand, maps), guard=GuardBand.NONE)
    assert plain.image.thr == pytest.approx(off) and d2["guard_band"]["image"] == 0.0
    assert moved.image.thr < plain.image.thr  # errs towards reject


def test_guard_band_is_capped():
    fp32 = np.array([5.0, 6.0, 7.0, 8.0, 9.0])
    cand = fp32 - np.array([0.0, 0.0, 0.0, 0.0, 50.0])
    maps = np.ones((5, 4, 4))
    moved, details = transfer_thresholds(CAL, _pred(fp32, maps), _pred(cand, maps))
    th, lo = moved.image.thr, moved.image.lo
    assert details["guard_band"]["image"] == pytest.approx(MAX_GUARD_FRACTION * (th + details["guard_band"]["image"]
                                                                                  - lo))
    assert lo < th


def test_the_good_score_quantiles_move_with_the_scores():
    """The drift alarm compares accepted parts' raw scores with the bundle's good-score quantiles: a candidate that
    scores every image higher (a reduced memory bank, INT8) must carry quantiles on its own scale, else a healthy
    line alarms (seen in `make demo` with fp32+opt+bank25: every accepted part ranked 1.00)."""
    import dataclasses

    fp32 = np.array([5.0, 6.0, 7.0, 8.0, 9.0])
    cand = np.sqrt(fp32 ** 2 + 36.0)  # a noise floor: cand^2 = fp32^2 + 36
    maps = np.ones((5, 4, 4))
    cal = dataclasses.replace(CAL, good_quantiles=(5.0, 7.0, 9.0))
    moved, details = transfer_thresholds(cal, _pred(fp32, maps), _pred(cand, maps))
    assert moved.good_quantiles == pytest.approx(tuple(np.sqrt(np.array([5.0, 7.0, 9.0]) ** 2 + 36.0)))
    assert transfer_thresholds(CAL, _pred(fp32, maps), _pred(cand, maps))[0].good_quantiles is None
