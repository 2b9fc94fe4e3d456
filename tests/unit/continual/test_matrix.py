"""Average forgetting and the task-matrix report (pure arithmetic)."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.continual.matrix import TaskMatrix, average_forgetting


def test_forgetting_is_the_mean_drop_from_the_best_earlier_value():
    nan = np.nan
    a = np.array([[0.9, nan, nan], [0.8, 0.95, nan], [0.6, 0.9, 0.99]])
    # task 0: best 0.9, final 0.6 -> 0.3; task 1: best 0.95, final 0.9 -> 0.05
    assert average_forgetting(a) == pytest.approx(0.175)
    assert average_forgetting(a[:1, :1]) is None


def test_report_has_the_gap_to_one_model_per_task():
    nan = np.nan
    mats = {"image_auroc": np.array([[0.9, nan], [0.7, 0.95]]), "pixel_f1": np.array([[0.5, nan], [0.4, 0.6]])}
    single = {"image_auroc": np.array([0.9, 0.97]), "pixel_f1": np.array([0.5, 0.6])}
    report = TaskMatrix(("a", "b"), mats, single).to_dict()
    assert report["image_auroc"]["matrix"] == [[0.9, None], [0.7, 0.95]]
    assert report["image_auroc"]["forgetting"] == pytest.approx(0.2)
    assert report["image_auroc"]["gap_to_single"] == pytest.approx(0.11)
    assert report["pixel_f1"]["average"] == pytest.approx(0.5)
