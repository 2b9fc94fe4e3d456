"""The verdict rule: threshold, non-finite scores, minimum area in camera pixels, any-ROI-rejects."""
import math

import numpy as np
import pytest

from edgead.contract.decide import (WHOLE_IMAGE, Decision, DecisionRules, RoiPrediction, decide, decide_batch,
                                    decide_image, decide_part, decide_roi, rejected, with_areas)
from edgead.contract.graph import THRESHOLD, Prediction
from edgead.errors import ConfigError
from edgead.verdict import Verdict


def _pred(scores, maps) -> Prediction:
    scores, maps = np.asarray(scores, np.float32), np.asarray(maps, np.float32)
    return Prediction(scores, maps, scores * 10, maps * 10)


def test_threshold_and_area():
    amap = np.zeros((10, 10), np.float32)
    amap[:2, :2] = 0.9  # 4 model pixels -> 16 camera pixels at 2x scale
    rules = DecisionRules(min_defect_area_px=16)
    assert decide_roi("a", 0.9, 1.0, amap, (20, 20), rules).verdict is Verdict.REJECT
    assert decide_roi("a", 0.9, 1.0, amap, (20, 20), DecisionRules(min_defect_area_px=17)).verdict is Verdict.ACCEPT
    assert decide_roi("a", 0.49, 1.0, amap, (20, 20), DecisionRules()).verdict is Verdict.ACCEPT
    assert decide_roi("a", 0.5, 1.0, amap, (20, 20), DecisionRules()).verdict is Verdict.REJECT
    assert decide_roi("a", float("nan"), 1.0, amap, (20, 20), DecisionRules()).verdict is Verdict.REJECT
    assert decide_roi("a", 0.9, 1.0, amap, (20, 20), rules).defect_area_px == 16


def test_part_verdict():
    ok = decide_roi("a", 0.1, 0.0, np.zeros((4, 4)), (4, 4), DecisionRules())
    bad = decide_roi("b", 0.9, 0.0, np.ones((4, 4)), (4, 4), DecisionRules())
    assert decide_part([ok, ok]) is Verdict.ACCEPT
    assert decide_part([ok, bad]) is Verdict.REJECT
    assert decide_part([]) is Verdict.FAULT


def test_decide_over_rois():
    good, bad = _pred([0.2], np.zeros((1, 4, 4))), _pred([0.8], np.ones((1, 4, 4)))
    d = decide([RoiPrediction("a", (8, 8), good), RoiPrediction("b", (4, 8), bad)])
    assert d.verdict is Verdict.REJECT and [r.verdict for r in d.rois] == [Verdict.ACCEPT, Verdict.REJECT]
    assert d.score == pytest.approx(0.8) and d.raw_score == pytest.approx(8.0) and d.defect_area_px == 32
    assert decide([]) == Decision(Verdict.FAULT, ()) and decide([]).score is None


def test_image_and_batch_helpers_are_decide():
    batch = _pred([0.2, 0.7, float("nan")], np.zeros((3, 4, 4)))
    decisions = decide_batch(batch, (40, 40))
    assert [d.verdict for d in decisions] == [Verdict.ACCEPT, Verdict.REJECT, Verdict.REJECT]
    assert decisions[1] == decide_image(batch[1], (40, 40))
    assert decisions[1].rois[0].name == WHOLE_IMAGE
    assert rejected(decisions).tolist() == [False, True, True]
    sizes = decide_batch(_pred([0.9, 0.9], np.ones((2, 2, 2))), [(4, 4), (2, 2)], DecisionRules(min_defect_area_px=5))
    assert [d.verdict for d in sizes] == [Verdict.REJECT, Verdict.ACCEPT]  # area 16 vs 4 camera pixels


def test_rules_refuse_a_negative_area():
    with pytest.raises(ConfigError, match="min_defect_area_px"):
        DecisionRules(min_defect_area_px=-1)


@pytest.mark.parametrize("min_area", [0, 5, 60])
def test_without_areas_the_verdicts_are_the_same_and_with_areas_gives_the_whole_decision(min_area):
    """The station decides with ``area=False`` and counts the areas after the answer (issue 18): an area is counted
    before the verdict only where the rule needs it, and the verdicts never change."""
    rng = np.random.default_rng(min_area)
    rules = DecisionRules(min_defect_area_px=min_area)
    for score in (0.1, 0.49, 0.5, 0.9, float("nan"), float("inf"), -float("inf")):
        amap = rng.random((1, 8, 10)).astype(np.float32)
        pred = Prediction(np.array([score], np.float32), amap, np.array([2.0], np.float32), amap)
        rois = [RoiPrediction("a", (16, 20), pred), RoiPrediction("b", (8, 10), pred)]
        full = decide(rois, rules)
        lazy = decide(rois, rules, area=False)
        assert lazy.verdict is full.verdict
        assert [r.verdict for r in lazy.rois] == [r.verdict for r in full.rois]
        needed = min_area != 0 and math.isfinite(score) and score >= THRESHOLD
        assert [r.defect_area_px is not None for r in lazy.rois] == [needed, needed]
        def fields(decisions):  # a NaN score is never equal to itself: compare its text
            return [(r.name, repr(r.score), r.raw_score, r.defect_area_px, r.verdict) for r in decisions]

        assert fields(with_areas(lazy.rois, rois)) == fields(full.rois)
        assert all(isinstance(r.defect_area_px, int) for r in full.rois)
