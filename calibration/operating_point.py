"""What a threshold means on a labelled set: both error rates with confidence bounds, and whether the sample can
support the target at all.

A threshold chosen for a target false-reject rate also sets an escape rate, and the other way round; an operator
needs both sides, each with its uncertainty (:mod:`edgead.metrics.bounds`). A target below what the sample can show
(3 good images cannot show a 0.1 % false-reject rate: with none rejected the upper bound is still 63 %) gets a
warning that names the sample needed.

Example:
    >>> p = operating_point(2.0, good_scores=[1.0, 1.5, 2.5], defect_scores=[3.0, 1.9])
    >>> p["false_rejects"]["count"], p["escapes"]["count"]
    (1, 1)
"""
from __future__ import annotations

import numpy as np

from edgead.metrics.bounds import BOUND_NAME, DEFAULT_CONFIDENCE, clopper_pearson_upper, min_sample_for, rate_summary

SIDES = {"frr": ("false_rejects", "good", "a false-reject rate"), "escape": ("escapes", "defective", "an escape rate")}


def operating_point(threshold: float, good_scores=None, defect_scores=None, *,
                    confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """Both error rates at a raw threshold (reject when ``score >= threshold``).

    Args:
        threshold: the raw image threshold.
        good_scores: raw scores of good images (None or empty: the false-reject side is unknown).
        defect_scores: raw scores of labelled defective images (None or empty: the escape side is unknown).
        confidence: of the upper bounds.

    Returns:
        ``{"threshold", "confidence", "bound", "false_rejects": rate | None, "escapes": rate | None}``, a rate
        being :func:`edgead.metrics.bounds.rate_summary`.
    """
    good = np.asarray([] if good_scores is None else good_scores, np.float64).ravel()
    bad = np.asarray([] if defect_scores is None else defect_scores, np.float64).ravel()
    return {"threshold": float(threshold), "confidence": confidence, "bound": BOUND_NAME,
            "false_rejects": rate_summary(int(np.sum(good >= threshold)), good.size, confidence) if good.size else None,
            "escapes": rate_summary(int(np.sum(bad < threshold)), bad.size, confidence) if bad.size else None}


def support_warnings(side: str, target: float | None, n: int, confidence: float = DEFAULT_CONFIDENCE) -> list[str]:
    """Warnings when ``n`` images cannot show ``target`` on ``side`` (``"frr"`` or ``"escape"``) at ``confidence``.

    The test: even with no error the one-sided Clopper-Pearson upper bound ``1 - (1 - confidence)^(1/n)`` is above
    the target. With too few images the chosen threshold is an extrapolation (``frr``) or a guess (``escape``).

    Returns:
        Zero or one message naming the bound and the number of images needed.
    """
    if target is None or target <= 0.0:
        if side == "escape" and target == 0.0:
            return [f"a target escape rate of 0 can never be shown; with {n} defective images and none accepted, "
                    f"the {BOUND_NAME} upper bound is {100 * clopper_pearson_upper(0, n, confidence):.2g} % "
                    f"({100 * confidence:.0f} % confidence)"]
        return []
    _, images, what = SIDES[side]
    best = clopper_pearson_upper(0, n, confidence)
    if best <= target:
        return []
    return [f"{n} {images} image(s) cannot support {what} of {100 * target:.3g} %: even with none wrong, the "
            f"{BOUND_NAME} upper bound at {100 * confidence:.0f} % confidence is {100 * best:.3g} %; it takes at "
            f"least {min_sample_for(target, confidence)} {images} images"]


def point_lines(point: dict) -> list[str]:
    """Terminal lines for :func:`operating_point`, escapes first."""
    conf = f"{100 * point['confidence']:.0f} %"
    lines = []
    for key, label, images in (("escapes", "escape rate (defects accepted)", "defective"),
                               ("false_rejects", "false-reject rate (good rejected)", "good")):
        r = point[key]
        if r is None:
            lines.append(f"  {label}: unknown (no labelled {images} images in --data)")
        else:
            lines.append(f"  {label}: {r['count']} of {r['n']} = {100 * r['rate']:.2f} %, at most "
                         f"{100 * r['upper']:.2f} % ({point['bound']}, {conf} confidence)")
    return lines
