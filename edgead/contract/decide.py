"""The verdict rule: normalised scores and maps -> per-ROI and per-part verdicts (pure, no I/O).

This is the only implementation of the rule. The daemon, ``edgead predict``, the deploy self-test, evaluation,
the conversion gate and the Python API all call :func:`decide` (``tests/unit/contract/test_one_rule.py`` checks
that they agree).

A ROI (or the whole image, when there are no ROIs) is rejected when its normalised score is at least
:data:`~edgead.contract.graph.THRESHOLD` (0.5) or not finite, and, when ``min_defect_area_px`` is set, its
thresholded map covers at least that many **camera pixels** (pixels of the captured image, not of the model's
map). The part is accepted only if there is at least one ROI and every ROI is accepted.

Example:
    >>> import numpy as np
    >>> from edgead.contract.graph import Prediction
    >>> pred = Prediction(np.array([0.7]), np.ones((1, 4, 4)), np.array([3.0]), np.ones((1, 4, 4)))
    >>> d = decide([RoiPrediction("part", (8, 8), pred)])
    >>> d.verdict, d.rois[0].defect_area_px
    (<Verdict.REJECT: 'reject'>, 64)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import numpy as np

from edgead.contract.graph import THRESHOLD, Prediction
from edgead.errors import ConfigError
from edgead.verdict import Verdict

WHOLE_IMAGE = "part"
"""The ROI name of an image judged as a whole (a station without ROIs, ``edgead predict`` without a config)."""


@dataclass(frozen=True)
class DecisionRules:
    """What turns scores into a verdict, besides the threshold (which lives in the graph).

    Attributes:
        min_defect_area_px: also require this many above-threshold map pixels, in camera pixels, to reject;
            0 disables the area rule.
    """

    min_defect_area_px: int = 0

    def __post_init__(self) -> None:
        if self.min_defect_area_px < 0:
            raise ConfigError(f"decision.min_defect_area_px: must be >= 0, got {self.min_defect_area_px}")


class RoiPrediction(NamedTuple):
    """One inference of a part: the ROI's name, its size in camera pixels ``(h, w)``, and the engine's output
    (batch of one)."""

    name: str
    hw: tuple[int, int]
    prediction: Prediction


@dataclass(frozen=True)
class RoiDecision:
    """One ROI's outcome; ``defect_area_px`` in camera pixels, None when it was not counted because the verdict
    did not need it (``decide(..., area=False)``: the station counts it after the answer, :func:`with_areas`)."""

    name: str
    score: float
    raw_score: float
    defect_area_px: int | None
    verdict: Verdict


@dataclass(frozen=True)
class Decision:
    """A part's outcome: the verdict and every ROI's decision, in ROI order.

    Attributes:
        verdict: ``ACCEPT`` only if every ROI accepts (``FAULT`` without ROIs).
        rois: one :class:`RoiDecision` per ROI.
    """

    verdict: Verdict
    rois: tuple[RoiDecision, ...]

    @property
    def score(self) -> float | None:
        """The highest normalised ROI score (None without ROIs)."""
        return max((r.score for r in self.rois), default=None)

    @property
    def raw_score(self) -> float | None:
        """The highest raw ROI score (None without ROIs)."""
        return max((r.raw_score for r in self.rois), default=None)

    @property
    def defect_area_px(self) -> int:
        """Above-threshold camera pixels over all ROIs (every ROI's area counted: not ``decide(..., area=False)``)."""
        return sum(r.defect_area_px for r in self.rois)


def defect_area(amap: np.ndarray, roi_hw: tuple[int, int]) -> int:
    """The above-threshold area of a normalised map ``[h, w]`` at model resolution, in camera pixels of a ROI of
    size ``roi_hw`` (the map's area scaled to it)."""
    scale = (roi_hw[0] * roi_hw[1]) / float(amap.shape[0] * amap.shape[1])
    return int(round(np.count_nonzero(amap >= THRESHOLD) * scale))


def decide_roi(name: str, score: float, raw_score: float, amap: np.ndarray, roi_hw: tuple[int, int],
               rules: DecisionRules, area: bool = True) -> RoiDecision:
    """Decide one ROI.

    Args:
        name: ROI name.
        score, raw_score: normalised and raw image score.
        amap: the normalised map ``[h, w]`` at model resolution.
        roi_hw: the ROI's size in camera pixels (the map's area is scaled to it).
        rules: the decision rules.
        area: count ``defect_area_px`` even when the verdict does not need it (False: it is None then; the
            verdict is the same).

    Returns:
        The :class:`RoiDecision`.
    """
    finite = math.isfinite(score)
    needed = area or (rules.min_defect_area_px != 0 and finite and score >= THRESHOLD)
    px = defect_area(amap, roi_hw) if needed else None
    reject = not finite or (score >= THRESHOLD and (rules.min_defect_area_px == 0 or px >= rules.min_defect_area_px))
    return RoiDecision(name, float(score), float(raw_score), px, Verdict.REJECT if reject else Verdict.ACCEPT)


def decide_part(rois: Sequence[RoiDecision]) -> Verdict:
    """Accept only if there is at least one ROI and every ROI is accepted."""
    if not rois:
        return Verdict.FAULT
    return Verdict.ACCEPT if all(r.verdict is Verdict.ACCEPT for r in rois) else Verdict.REJECT


def decide(rois: Sequence[RoiPrediction], rules: DecisionRules = DecisionRules(), area: bool = True) -> Decision:
    """The verdict of one part from its ROIs' predictions.

    Args:
        rois: one :class:`RoiPrediction` per ROI (one named :data:`WHOLE_IMAGE` for a part judged whole).
        rules: the decision rules (the station's ``decision`` section).
        area: count every ROI's ``defect_area_px``; False counts only where the verdict needs it (a score at or
            above the threshold under ``min_defect_area_px``), the others are None (:func:`with_areas` counts
            them later). The verdicts are the same either way.

    Returns:
        The :class:`Decision`.
    """
    decisions = tuple([decide_roi(name, float(p.score[0]), float(p.raw_score[0]), p.map[0], hw, rules, area)
                       for name, hw, p in rois])
    return Decision(decide_part(decisions), decisions)


def with_areas(decisions: Sequence[RoiDecision], rois: Sequence[RoiPrediction]) -> list[RoiDecision]:
    """``decisions`` (from :func:`decide` with ``area=False``) with every ``defect_area_px`` counted: what
    ``decide(rois, rules)`` returns, the area counted after the verdict went out."""
    return [d if d.defect_area_px is not None else replace(d, defect_area_px=defect_area(r.prediction.map[0], r.hw))
            for d, r in zip(decisions, rois)]


def decide_image(prediction: Prediction, image_hw: tuple[int, int], rules: DecisionRules = DecisionRules()
                 ) -> Decision:
    """:func:`decide` for an image judged whole (no ROIs): ``prediction`` is its batch of one."""
    return decide([RoiPrediction(WHOLE_IMAGE, (int(image_hw[0]), int(image_hw[1])), prediction)], rules)


def decide_batch(prediction: Prediction, image_hw: Sequence[tuple[int, int]] | tuple[int, int],
                 rules: DecisionRules = DecisionRules()) -> list[Decision]:
    """:func:`decide_image` for every image of a batch.

    Args:
        prediction: the batch's outputs.
        image_hw: each image's size in camera pixels, or one size for all.
        rules: the decision rules.

    Returns:
        One :class:`Decision` per image.
    """
    n = len(prediction.score)
    sizes = [image_hw] * n if len(image_hw) == 2 and np.isscalar(image_hw[0]) else list(image_hw)
    return [decide_image(prediction[i], sizes[i], rules) for i in range(n)]


def rejected(decisions: Sequence[Decision]) -> np.ndarray:
    """``[N]`` bool: which parts are not accepted."""
    return np.array([not d.verdict.passes for d in decisions], bool)
