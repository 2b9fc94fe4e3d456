"""The confusion matrix at the shipped threshold: escapes and false rejects, overall and per defect type.

An *escape* is a defective part the station accepts (a false accept); a *false reject* is a good part it rejects.
Both rates carry a one-sided Clopper-Pearson upper bound (:mod:`edgead.metrics.bounds`), because a test set of 20
defects with no escape still allows a true escape rate of 14 %.

The verdicts come from the one verdict rule (:func:`edgead.contract.decide.decide`, as the station reaches them).

Example:
    >>> c = confusion([0, 0, 1, 1], [False, True, True, False], ["good", "good", "crack", "pit"])
    >>> c["escapes"]["count"], c["false_rejects"]["count"], c["by_type"]["pit"]["escapes"]["count"]
    (1, 1, 1)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from edgead.data.mvtec import GOOD
from edgead.metrics.bounds import DEFAULT_CONFIDENCE, rate_summary


def confusion(labels, rejected, defect_types: Sequence[str], *, confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """Counts and rates of the verdicts, overall and per defect type.

    Args:
        labels: ``[N]`` 0 good, 1 defective.
        rejected: ``[N]`` True where the part was rejected (``edgead.contract.decide.rejected``; anything but an
            accept).
        defect_types: ``[N]`` ``"good"`` or the defect folder name.
        confidence: of the upper bounds.

    Returns:
        ``{"true_reject", "false_reject", "true_accept", "false_accept", "escapes": rate,
        "false_rejects": rate, "by_type": {type: {"n", "rejected", "escapes": rate}}}``; a rate is
        :func:`edgead.metrics.bounds.rate_summary`. ``by_type`` also holds ``"good"`` with its false rejects.
    """
    labels = np.asarray(labels).astype(bool)
    rejected = np.asarray(rejected).astype(bool)
    types = np.asarray(list(defect_types), dtype=object)
    tr, fr = int(np.sum(rejected & labels)), int(np.sum(rejected & ~labels))
    ta, fa = int(np.sum(~rejected & ~labels)), int(np.sum(~rejected & labels))
    by_type = {}
    for name in sorted(set(types.tolist()), key=lambda t: (t != GOOD, t)):
        sel = types == name
        n, rej = int(sel.sum()), int(np.sum(rejected & sel))
        if name == GOOD:
            by_type[name] = {"n": n, "rejected": rej, "false_rejects": rate_summary(rej, n, confidence)}
        else:
            by_type[name] = {"n": n, "rejected": rej, "escapes": rate_summary(n - rej, n, confidence)}
    return {"true_reject": tr, "false_reject": fr, "true_accept": ta,
            "false_accept": fa, "escapes": rate_summary(fa, tr + fa, confidence),
            "false_rejects": rate_summary(fr, fr + ta, confidence), "by_type": by_type}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def confusion_lines(c: dict) -> list[str]:
    """Plain-text lines for a terminal: escapes first, then false rejects, then each defect type."""
    esc, frr = c["escapes"], c["false_rejects"]
    conf = f"{100 * esc['confidence']:.0f} %"
    lines = [f"at the shipped threshold ({esc['bound']} upper bounds, {conf} confidence):",
             f"  escapes (defects accepted): {esc['count']} of {esc['n']} = {_pct(esc['rate'])}  "
             f"(<= {_pct(esc['upper'])})",
             f"  false rejects (good rejected): {frr['count']} of {frr['n']} = {_pct(frr['rate'])}  "
             f"(<= {_pct(frr['upper'])})",
             f"  {'type':<16} {'n':>5} {'rejected':>9} {'escapes':>8} {'rate':>8} {'<= bound':>9}"]
    for name, row in c["by_type"].items():
        r = row.get("escapes") or row["false_rejects"]
        what = "escapes" if "escapes" in row else "f.rej."
        lines.append(f"  {name:<16} {row['n']:>5} {row['rejected']:>9} {r['count']:>8} {_pct(r['rate']):>8} "
                     f"{_pct(r['upper']):>9}  {what}")
    return lines
