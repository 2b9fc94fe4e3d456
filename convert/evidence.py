"""What a candidate's gate sample shows about the line, beyond what it saw: confidence bounds on the candidate's
extra escape and extra false-reject rates, and how far it moved a defect's score towards the threshold.

0 new accepts among 40 check images is not "no new escapes": with 20 defective images that FP32 rejects, a
candidate that accepts 1 in 20 of them still shows none 36 % of the time. So a lossy candidate must show, from the
images it was scored on, that its **extra escape rate** (defective images FP32 rejects that it accepts, per
defective image FP32 rejects) is below an allowance at a stated confidence, and the same for its **extra
false-reject rate** (good images FP32 accepts that it rejects). Both are one-sided Clopper-Pearson upper bounds,
from the one home of that statistic (:mod:`edgead.metrics.bounds`, which ``edgead threshold`` and ``eval`` use).
With none seen, the bound is about ``3 / n`` at 95 % (the rule of three): an allowance of 5 % needs 59 defective
images that FP32 rejects.

An escape on the line comes from a defect near the threshold, and the check set may hold none there. So the gate
also reads the **score margin**: no defect that FP32 rejects may score more than a tolerance lower than on FP32, on
the normalised score the station decides on (0.5 = the threshold, clipped to [0, 1]; each side through its own,
transferred, thresholds). The default, 0.1, is a fifth of the gap between the good scores' low end and the
threshold (the guard band's cap): a defect FP32 scores between 0.5 and 0.6 and that falls by more would be
accepted. The clipped scale is deliberate: between 0.5 and 1.0 a fall reads directly as a fall at the threshold,
and a defect that falls from 1.0 (or above) into that band is seen (a reduced memory bank dropped two clear defects
of the demo's line from 1.0 to 0.08 and 0.27); a fall far above the threshold is not, because there a lossy graph's
error need not say anything about the threshold (INT8 saturates on activations far outside the good parts' range:
a toy defect at 40x the threshold fell by 87 % and stayed 6x above it). Only falls count: a candidate that errs
towards reject is bounded by the false-reject side.

An exact candidate (graph rewrites verified on sample images, the FP32 graph on another runtime) differs from FP32
by float rounding alone, whatever the image: the bounds do not apply to it (its margin is still checked).

Example:
    >>> e = evidence(labels=np.array([0, 1, 1]), ref_rejects=np.array([False, True, True]),
    ...              cand_rejects=np.array([False, True, True]), ref_score=np.array([0.1, 0.9, 1.0]),
    ...              cand_score=np.array([0.1, 0.85, 1.0]))
    >>> e.defects_caught, round(e.extra_escape_upper, 3), round(e.defect_fall_max, 3), e.shown
    (2, 0.776, 0.05, False)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgead.metrics.bounds import BOUND_NAME, DEFAULT_CONFIDENCE, clopper_pearson_upper, min_sample_for

DEFAULT_MAX_EXTRA_ESCAPE_PCT = 5.0
"""The largest extra escape rate (percent of the defective images FP32 rejects) a lossy candidate may be shown to
stay below. With none seen it takes 59 such images at 95 % confidence (149 for 2 %, 299 for 1 %)."""
DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT = 20.0
"""The largest extra false-reject rate (percent of the good images FP32 accepts): the cost side; the guard band
(convert/transfer.py) trades a few good parts for never erring towards accept. 14 good images show it with none
rejected."""
DEFAULT_MAX_DEFECT_SCORE_FALL = 0.1
"""The largest fall of a defect's normalised score (0.5 = the threshold) below FP32's: a fifth of the gap between the
good scores' low end and the threshold (the guard band's cap)."""


@dataclass
class Evidence:
    """The sample-size and margin numbers of one candidate (JSON-friendly; rates are fractions, allowances percent).

    Attributes:
        confidence: of the upper bounds.
        exact: the candidate differs from FP32 by float rounding only (the bounds do not apply).
        defects_caught: defective images FP32 rejects (the trials of the extra escape rate).
        extra_escapes: those the candidate accepts.
        extra_escape_upper: the upper bound of the extra escape rate.
        max_extra_escape_pct: the allowance.
        goods_accepted: good images FP32 accepts; extra_false_rejects: those the candidate rejects.
        extra_false_reject_upper, max_extra_false_reject_pct: as for escapes.
        defect_fall_max: the largest fall of a caught defect's normalised score below FP32's (negative: every
            caught defect scored higher; None: no defect caught).
        defects_over_fall: caught defects that fell by more than ``max_defect_score_fall``.
        max_defect_score_fall: the margin tolerance (normalised score).
    """

    confidence: float
    exact: bool
    defects_caught: int
    extra_escapes: int
    extra_escape_upper: float
    max_extra_escape_pct: float
    goods_accepted: int
    extra_false_rejects: int
    extra_false_reject_upper: float
    max_extra_false_reject_pct: float
    defect_fall_max: float | None
    defects_over_fall: int
    max_defect_score_fall: float

    @property
    def escape_shown(self) -> bool:
        return self.exact or 100.0 * self.extra_escape_upper <= self.max_extra_escape_pct

    @property
    def false_reject_shown(self) -> bool:
        return self.exact or 100.0 * self.extra_false_reject_upper <= self.max_extra_false_reject_pct

    @property
    def margin_kept(self) -> bool:
        return self.defects_over_fall == 0

    @property
    def shown(self) -> bool:
        """Both bounds below their allowances (or the candidate is exact) and the margin kept."""
        return self.escape_shown and self.false_reject_shown and self.margin_kept

    def bound_text(self, side: str) -> str:
        """``"0 of 64 -> at most 4.6 %"`` for ``side`` ``"escape"`` or ``"false_reject"`` ("exact" when exact)."""
        if self.exact:
            return "exact"
        k, n, upper = ((self.extra_escapes, self.defects_caught, self.extra_escape_upper) if side == "escape" else
                       (self.extra_false_rejects, self.goods_accepted, self.extra_false_reject_upper))
        return f"{k} of {n} -> at most {_ceil_pct(upper):g} %"

    def fall_text(self) -> str:
        """The largest fall of a caught defect's normalised score, ``"+0.112"`` (``"n/a"`` with none caught)."""
        return "n/a" if self.defect_fall_max is None else f"{self.defect_fall_max:+.3f}"

    def reasons(self) -> list[str]:
        """Why the evidence does not suffice, each with its numbers and what to do (empty when shown)."""
        conf = f"{100 * self.confidence:.0f} % confidence, {BOUND_NAME}"
        out = []
        sides = (("escape", self.escape_shown, self.extra_escapes, self.defects_caught, self.extra_escape_upper,
                  self.max_extra_escape_pct, "defective images FP32 rejects", "accepted", "--max-extra-escape-pct"),
                 ("false-reject", self.false_reject_shown, self.extra_false_rejects, self.goods_accepted,
                  self.extra_false_reject_upper, self.max_extra_false_reject_pct, "good images FP32 accepts",
                  "rejected", "--max-extra-false-reject-pct"))
        for what, shown, k, n, upper, allow, images, wrong, flag in sides:
            if shown:
                continue
            text = (f"extra {what} rate not shown below the {allow:g} % allowance: {k} of {n} {images} {wrong} by "
                    f"the candidate, upper bound {_ceil_pct(upper):g} % ({conf})")
            if k == 0 and allow < 100.0:
                need = min_sample_for(allow / 100.0, self.confidence)
                text += (f"; to show it, check on at least {need} {images} (none {wrong}), or accept "
                         f"{_ceil_pct(upper):g} % with {flag} {_ceil_pct(upper):g}")
            out.append(text)
        if not self.margin_kept:
            out.append(f"{self.defects_over_fall} defect(s) FP32 rejects scored up to {self.defect_fall_max:.3f} lower "
                       f"than on FP32 (normalised score, 0.5 = threshold; tolerance {self.max_defect_score_fall:g}, "
                       f"--max-defect-score-fall): a defect FP32 scores below "
                       f"{min(0.5 + self.defect_fall_max, 1.0):.2f} could be accepted")
        return out


def _ceil_pct(rate: float) -> float:
    """A rate as a percentage rounded up to 0.1."""
    return math.ceil(1000.0 * rate - 1e-9) / 10.0


def evidence(labels: np.ndarray, ref_rejects: np.ndarray, cand_rejects: np.ndarray, ref_score: np.ndarray,
             cand_score: np.ndarray, *, exact: bool = False, confidence: float = DEFAULT_CONFIDENCE,
             max_extra_escape_pct: float = DEFAULT_MAX_EXTRA_ESCAPE_PCT,
             max_extra_false_reject_pct: float = DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT,
             max_defect_score_fall: float = DEFAULT_MAX_DEFECT_SCORE_FALL) -> Evidence:
    """The :class:`Evidence` of one candidate against FP32 on the same labelled images (pure).

    Args:
        labels: ``[N]`` 0 good, 1 defective.
        ref_rejects, cand_rejects: ``[N]`` bool verdicts of FP32 and the candidate (the station's rule).
        ref_score, cand_score: ``[N]`` normalised image scores as the graphs output them (0.5 = each side's
            threshold, clipped to [0, 1]).
        exact: the candidate is an exact rewrite of the FP32 graph (the bounds do not apply).
        confidence: of the upper bounds.
        max_extra_escape_pct, max_extra_false_reject_pct: the allowances (percent).
        max_defect_score_fall: the margin tolerance (normalised score).
    """
    labels = np.asarray(labels)
    ref_rejects, cand_rejects = np.asarray(ref_rejects, bool), np.asarray(cand_rejects, bool)
    caught = (labels == 1) & ref_rejects
    passed_good = (labels == 0) & ~ref_rejects
    n_caught, n_good = int(caught.sum()), int(passed_good.sum())
    k_esc, k_fr = int(np.sum(caught & ~cand_rejects)), int(np.sum(passed_good & cand_rejects))
    falls = (np.asarray(ref_score, np.float64) - np.asarray(cand_score, np.float64))[caught]
    return Evidence(confidence=confidence, exact=exact, defects_caught=n_caught, extra_escapes=k_esc,
                    extra_escape_upper=clopper_pearson_upper(k_esc, n_caught, confidence),
                    max_extra_escape_pct=max_extra_escape_pct, goods_accepted=n_good, extra_false_rejects=k_fr,
                    extra_false_reject_upper=clopper_pearson_upper(k_fr, n_good, confidence),
                    max_extra_false_reject_pct=max_extra_false_reject_pct,
                    defect_fall_max=float(falls.max()) if falls.size else None,
                    defects_over_fall=int(np.sum(falls > max_defect_score_fall)),
                    max_defect_score_fall=max_defect_score_fall)


__all__ = ["DEFAULT_MAX_DEFECT_SCORE_FALL", "DEFAULT_MAX_EXTRA_ESCAPE_PCT", "DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT", "Evidence",
           "evidence"]
