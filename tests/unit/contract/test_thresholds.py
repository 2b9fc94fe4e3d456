"""Threshold calibration: FRR quantiles (exact and small-n), F1, pixel, normalisation, adjust, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from edgead.contract.thresholds import (
    MIN_GOOD_IMAGES,
    Calibration,
    Normalisation,
    ThresholdMethod,
    adjust,
    calibrate,
    frr_threshold,
    normal_quantile,
)
from edgead.errors import CalibrationError
from edgead.metrics import f1_max, pixel_f1_max


@pytest.mark.parametrize("target, expected", [(0.05, 96.0), (0.01, 100.0), (0.5, 51.0), (0.29, 72.0)])
def test_frr_exact_quantiles(target, expected):
    scores = np.random.default_rng(0).permutation(np.arange(1.0, 101.0))
    assert frr_threshold(scores, target) == expected
    assert np.mean(scores >= expected) <= target < np.mean(scores >= expected - 1)


@pytest.mark.parametrize("target, expected", [(0.2, 7.0), (0.5, 5.0), (0.3, 6.0)])
def test_frr_with_ties(target, expected):
    scores = [4, 1, 8, 4, 2, 5, 4, 3, 7, 6]
    assert frr_threshold(scores, target) == expected


@pytest.mark.parametrize("seed", range(5))
def test_frr_is_the_smallest_observed_score_meeting_the_target(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.gamma(2.0, size=int(rng.integers(20, 400))), 1).astype(np.float32)
    target = float(rng.uniform(0.02, 0.3))
    thr = frr_threshold(scores, target)
    assert np.mean(scores >= thr) <= target
    assert all(np.mean(scores >= v) > target for v in np.unique(scores[scores < thr]))


def test_small_set_extrapolates_a_gaussian_tail():
    scores = np.array([1.0, 1.2, 1.1, 1.3, 1.4])  # n=5: finest FRR is 0.2 > 0.01
    mean, std = 1.2, math.sqrt(0.025)
    expected = mean + normal_quantile(0.99) * std  # 1.568, above max + 0.5 std = 1.479
    assert frr_threshold(scores, 0.01) == pytest.approx(expected, rel=1e-6)
    assert frr_threshold(scores, 0.01) >= expected  # rounded up to float32
    assert calibrate(scores).image.thr == frr_threshold(scores, 0.01)


def test_small_set_keeps_a_margin_above_the_max():
    scores = [0.0, 0.0, 0.0, 10.0]  # target 0.2 < 1/4; the Gaussian quantile (6.7) lies below the max
    assert frr_threshold(scores, 0.2) == pytest.approx(10.0 + 0.5 * 5.0)


def test_ties_at_the_top_and_equal_scores_extrapolate():
    assert frr_threshold([1.0, 2.0, 5.0, 5.0, 5.0], 0.2) > 5.0
    thr = frr_threshold([2.0, 2.0, 2.0], 0.01)
    assert 2.0 < thr < 2.01


def test_normal_quantile():
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-12)
    assert normal_quantile(0.975) == pytest.approx(1.959963985, abs=1e-8)
    assert normal_quantile(0.01) == pytest.approx(-2.326347874, abs=1e-8)


def test_normalisation_maps_thr_to_half_and_lo_to_zero():
    good = np.random.default_rng(1).normal(5.0, 1.0, 200)
    norm = calibrate(good).image
    assert norm.lo == pytest.approx(np.quantile(good, 0.01))
    values = np.array([norm.lo, norm.thr, norm.lo - 1, norm.thr + 100, (norm.lo + norm.thr) / 2])
    assert norm.apply(values).tolist() == [0.0, 0.5, 0.0, 1.0, 0.25]
    as_f32 = norm.apply(values.astype(np.float32))
    assert as_f32.dtype == np.float32 and as_f32[1] == 0.5
    assert Normalisation.from_dict(norm.to_dict()) == norm


def test_normalisation_rejects_thr_not_above_lo():
    with pytest.raises(CalibrationError, match="lo < thr"):
        Normalisation(lo=2.0, thr=2.0)
    with pytest.raises(CalibrationError, match="finite"):
        Normalisation(lo=0.0, thr=float("nan"))


def test_f1_threshold_equals_f1_max():
    rng = np.random.default_rng(2)
    good, defect = rng.normal(0, 1, 60), rng.normal(2, 1, 15)
    cal = calibrate(good, defect_scores=defect)
    assert cal.method is ThresholdMethod.F1 and cal.target_frr is None
    labels = np.r_[np.zeros(60), np.ones(15)].astype(int)
    assert cal.image.thr == f1_max(labels, np.r_[good, defect])[1]
    assert (cal.n_good, cal.n_defective) == (60, 15)
    assert calibrate(good, defect_scores=defect, method="frr").image.thr == frr_threshold(good, 0.01)


def test_f1_threshold_below_lo_moves_lo():
    cal = calibrate([5.0, 6.0, 7.0, 8.0], defect_scores=[1.0])  # a useless model: F1 threshold at 1.0
    assert cal.image.thr == 1.0 and cal.image.lo < 1.0
    assert cal.image.apply(np.array([1.0]))[0] == 0.5


def test_pixel_threshold_from_good_pixels():
    maps = np.random.default_rng(3).permutation(np.arange(1200.0)).reshape(3, 20, 20) / 1200
    cal = calibrate([1.0, 2.0, 3.0], maps, target_pixel_fpr=0.01)
    assert cal.pixel.thr == 1188 / 1200
    assert np.mean(maps >= cal.pixel.thr) == 0.01
    assert cal.pixel.lo == pytest.approx(np.quantile(maps, 0.01))


def pixel_split():
    rng = np.random.default_rng(4)
    good_maps = rng.random((4, 16, 16)).astype(np.float32)
    masks = np.zeros((2, 16, 16), bool)
    masks[0, 2:6, 3:9] = masks[1, 10:14, 10:12] = True
    defect_maps = (rng.random(masks.shape) + 0.6 * masks).astype(np.float32)
    return good_maps, defect_maps, masks


def test_pixel_threshold_f1_with_masks():
    good_maps, defect_maps, masks = pixel_split()
    cal = calibrate([0.1, 0.2, 0.3, 0.25], good_maps, [0.9, 0.5], defect_maps, masks)
    all_masks = np.concatenate([np.zeros_like(good_maps, bool), masks])
    assert cal.pixel.thr == pixel_f1_max(all_masks, np.concatenate([good_maps, defect_maps]))[1]
    frr = calibrate([0.1, 0.2, 0.3, 0.25], good_maps, [0.9, 0.5], defect_maps, masks, method="frr")
    assert frr.pixel.thr == frr_threshold(good_maps, 0.001)


def test_to_dict_matches_the_bundle_sections():
    good_maps, _, _ = pixel_split()
    cal = calibrate([0.1, 0.2, 0.3, 0.25], good_maps)
    d = cal.to_dict()
    assert set(d) == {"thresholds", "normalisation"}
    assert set(d["thresholds"]) == {"image", "pixel", "method", "target_frr", "good_score_quantiles"}
    assert set(d["normalisation"]) == {"image_lo", "pixel_lo"}
    assert d["thresholds"]["method"] == "frr" and d["thresholds"]["target_frr"] == 0.01
    loaded = yaml.safe_load(yaml.safe_dump(d))
    assert Calibration.from_dict({**loaded, "model": {}}, n_good=4) == cal
    no_pixel = calibrate([0.1, 0.2, 0.3])
    assert Calibration.from_dict(no_pixel.to_dict(), n_good=3).pixel is None


def test_good_score_quantiles_are_stored_kept_by_a_moved_threshold_and_optional():
    from edgead.contract.thresholds import QUANTILE_LEVELS

    good = np.arange(101, dtype=np.float64)  # quantile q of 0..100 is exactly 100 q
    cal = calibrate(good)
    assert cal.good_quantiles == tuple(100 * q for q in QUANTILE_LEVELS)
    assert adjust(cal, image_threshold=150.0).good_quantiles == cal.good_quantiles
    d = cal.to_dict()
    assert d["thresholds"]["good_score_quantiles"]["levels"] == list(QUANTILE_LEVELS)
    del d["thresholds"]["good_score_quantiles"]  # a bundle written before quantiles were stored
    assert Calibration.from_dict(d).good_quantiles is None
    d["thresholds"]["good_score_quantiles"] = {"levels": [0.5], "raw": [1.0]}
    with pytest.raises(CalibrationError, match="good_score_quantiles"):
        Calibration.from_dict(d)


def test_adjust_round_trip():
    good = np.random.default_rng(5).normal(1.0, 0.1, 300)
    good_maps, _, _ = pixel_split()
    cal = calibrate(good, target_frr=0.01)
    loose = adjust(cal, target_frr=0.05, good_scores=good)
    assert loose.image.thr < cal.image.thr and loose.target_frr == 0.05
    assert adjust(loose, target_frr=0.01, good_scores=good) == cal
    manual = adjust(cal, image_threshold=1.5)
    assert manual.method is ThresholdMethod.MANUAL and manual.target_frr is None
    assert manual.image == Normalisation(cal.image.lo, 1.5) and manual.pixel == cal.pixel
    low = adjust(cal, image_threshold=cal.image.lo - 1)  # below lo: lo keeps the old span below thr
    assert low.image.thr - low.image.lo == pytest.approx(cal.image.thr - cal.image.lo)


def test_manual_method():
    cal = calibrate([0.4], image_threshold=0.9)
    assert cal.method is ThresholdMethod.MANUAL and cal.image == Normalisation(0.4, 0.9)


@pytest.mark.parametrize("kwargs, match", [
    ({"good_scores": [0.1, 0.2]}, f"at least {MIN_GOOD_IMAGES}"),
    ({"good_scores": []}, "manual threshold"),
    ({"good_scores": [0.1, np.nan, 0.3]}, "NaN or inf"),
    ({"good_scores": [0.1, 0.2, 0.3], "target_frr": 0.0}, "target_frr must be in"),
    ({"good_scores": [0.1, 0.2, 0.3], "target_frr": 1.5}, "target_frr must be in"),
    ({"good_scores": [0.1, 0.2, 0.3], "method": "f1"}, "needs defective"),
    ({"good_scores": [0.1, 0.2, 0.3], "method": "manual"}, "do not fit together"),
    ({"good_scores": [0.1, 0.2, 0.3], "method": "otsu"}, "unknown threshold method"),
    ({"good_scores": [0.1, 0.2, 0.3], "good_maps": np.zeros((2, 4, 4))}, "2 good maps for 3"),
    ({"good_scores": [0.1, 0.2, 0.3], "good_maps": np.full((3, 4, 4), np.inf)}, "good maps contain NaN"),
    ({"good_scores": [0.1, 0.2, 0.3], "good_maps": np.zeros((3, 4, 4)), "defect_scores": [1.0],
      "defect_maps": np.zeros((1, 4, 4))}, "go together"),
    ({"good_scores": [0.1, 0.2, 0.3], "good_maps": np.zeros((3, 4, 4)), "defect_scores": [1.0],
      "defect_maps": np.zeros((1, 4, 4)), "defect_masks": np.ones((1, 4, 5))}, "do not match"),
    ({"good_scores": [[0.1, 0.2, 0.3]]}, "1 dimension"),
])
def test_calibrate_errors(kwargs, match):
    with pytest.raises(CalibrationError, match=match):
        calibrate(**kwargs)


def test_adjust_errors():
    cal = calibrate([0.1, 0.2, 0.3])
    with pytest.raises(CalibrationError, match="exactly one"):
        adjust(cal)
    with pytest.raises(CalibrationError, match="exactly one"):
        adjust(cal, image_threshold=0.5, target_frr=0.1)
    with pytest.raises(CalibrationError, match="needs the good validation scores"):
        adjust(cal, target_frr=0.05)
    with pytest.raises(CalibrationError, match="finite"):
        adjust(cal, image_threshold=float("inf"))
    with pytest.raises(CalibrationError, match="missing|bad thresholds"):
        Calibration.from_dict({"thresholds": {"image": 1.0}})
