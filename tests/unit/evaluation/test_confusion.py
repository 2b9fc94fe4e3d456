"""The confusion matrix at the shipped threshold: escapes and false rejects, overall and per defect type."""
from __future__ import annotations

import numpy as np

from edgead.evaluation.confusion import confusion, confusion_lines


def test_counts_overall_and_per_type():
    labels = [0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.5, 0.49, 0.7, 0.2, 0.5, 0.3]  # 0.5 rejects (the threshold belongs to reject)
    types = ["good", "good", "good", "crack", "crack", "pit", "pit"]
    c = confusion(labels, np.array(scores) >= 0.5, types)
    assert (c["true_reject"], c["false_reject"], c["true_accept"], c["false_accept"]) == (2, 1, 2, 2)
    assert c["escapes"]["count"] == 2 and c["escapes"]["n"] == 4 and c["escapes"]["rate"] == 0.5
    assert c["false_rejects"]["count"] == 1 and c["false_rejects"]["n"] == 3
    assert list(c["by_type"]) == ["good", "crack", "pit"]  # good first, then the defect types sorted
    assert c["by_type"]["crack"]["escapes"]["count"] == 1 and c["by_type"]["pit"]["escapes"]["count"] == 1
    assert c["by_type"]["good"]["false_rejects"]["count"] == 1
    for key in ("escapes", "false_rejects"):
        assert c[key]["rate"] < c[key]["upper"] <= 1.0


def test_raw_threshold_and_text():
    c = confusion(np.array([0, 1, 1]), np.array([1.0, 3.0, 2.0]) >= 2.5, ["good", "scratch", "scratch"])
    assert c["false_accept"] == 1 and c["false_reject"] == 0
    text = "\n".join(confusion_lines(c))
    assert text.index("escapes") < text.index("false rejects")  # the number that matters comes first
    assert "Clopper-Pearson" in text and "scratch" in text
