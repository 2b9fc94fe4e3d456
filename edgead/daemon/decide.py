"""The decision: normalised scores and maps -> per-ROI and per-part verdicts (pure, no I/O).

A ROI is rejected when its normalised score reaches 0.5 (the calibrated threshold) and, when
``min_defect_area_px`` is set, the thresholded map covers at least that many pixels of the captured image.
The part is accepted only if every ROI is accepted. A part whose cycle overran the budget is never accepted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgead.errors import ConfigError
from edgead.verdict import Verdict

THRESHOLD = 0.5


@dataclass(frozen=True)
class DecisionConfig:
    """The ``decision`` section.

    Attributes:
        min_defect_area_px: also require this many above-threshold map pixels (captured-image pixels) to reject;
            0 disables the area rule.
        no_read_as: verdict for a part that could not be aligned: ``no-read`` (its own code) or ``reject``.
        cycle_budget_ms: the PLC's inspection window; a later result is sent as the fail-safe verdict.
            0 disables the check.
    """

    min_defect_area_px: int = 0
    no_read_as: Verdict = Verdict.NO_READ
    cycle_budget_ms: int = 0

    def __post_init__(self) -> None:
        if self.min_defect_area_px < 0:
            raise ConfigError(f"decision.min_defect_area_px: must be >= 0, got {self.min_defect_area_px}")
        if self.no_read_as not in (Verdict.NO_READ, Verdict.REJECT):
            raise ConfigError(f"decision.no_read_as: {self.no_read_as.value!r} is not no-read or reject",
                              hint="a part that could not be aligned must never be accepted")
        if self.cycle_budget_ms < 0:
            raise ConfigError(f"decision.cycle_budget_ms: must be >= 0, got {self.cycle_budget_ms}")


@dataclass(frozen=True)
class RoiDecision:
    """One ROI's outcome."""

    name: str
    score: float
    raw_score: float
    defect_area_px: int
    verdict: Verdict


def decide_roi(name: str, score: float, raw_score: float, amap: np.ndarray, roi_hw: tuple[int, int],
               cfg: DecisionConfig) -> RoiDecision:
    """Decide one ROI.

    Args:
        name: ROI name.
        score, raw_score: normalised and raw image score.
        amap: the normalised map ``[h, w]`` at model resolution.
        roi_hw: the ROI's size in the captured image (to convert the area to captured pixels).
        cfg: the decision section.

    Returns:
        The :class:`RoiDecision`.

    Example:
        >>> decide_roi("a", 0.7, 3.0, np.ones((4, 4)), (8, 8), DecisionConfig()).verdict
        <Verdict.REJECT: 'reject'>
    """
    scale = (roi_hw[0] * roi_hw[1]) / float(amap.shape[0] * amap.shape[1])
    area = int(round(np.count_nonzero(amap >= THRESHOLD) * scale))
    reject = score >= THRESHOLD and (cfg.min_defect_area_px == 0 or area >= cfg.min_defect_area_px)
    if not np.isfinite(score):
        reject = True
    return RoiDecision(name, float(score), float(raw_score), area, Verdict.REJECT if reject else Verdict.ACCEPT)


def decide_part(rois: list[RoiDecision]) -> Verdict:
    """Accept only if there is at least one ROI and every ROI is accepted."""
    if not rois:
        return Verdict.FAULT
    return Verdict.ACCEPT if all(r.verdict is Verdict.ACCEPT for r in rois) else Verdict.REJECT


def apply_budget(verdict: Verdict, elapsed_ms: float, cfg: DecisionConfig) -> tuple[Verdict, str | None]:
    """An accept that arrives after the inspection window becomes ``FAULT`` (sent as the fail-safe verdict)."""
    if cfg.cycle_budget_ms and elapsed_ms > cfg.cycle_budget_ms and verdict is Verdict.ACCEPT:
        return Verdict.FAULT, f"overrun: {elapsed_ms:.1f} ms > cycle_budget_ms {cfg.cycle_budget_ms}"
    return verdict, None
