"""Image metrics: hand-computed cases and sklearn on random data with ties."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.errors import DataError
from edgead.metrics import average_precision, f1_max, image_auroc

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn (the [dev] extra) is the reference")


def test_three_images_by_hand():
    labels, scores = [0, 1, 1], [0.3, 0.8, 0.1]
    # pairs (defective, good): 0.8 > 0.3 counts 1, 0.1 < 0.3 counts 0
    assert image_auroc(labels, scores) == 0.5
    # descending: 0.8 (P=1, R=1/2), 0.3 (P=1/2, R=1/2), 0.1 (P=2/3, R=1) -> 1/2 * 1 + 1/2 * 2/3
    assert average_precision(labels, scores) == pytest.approx(5 / 6)
    # t=0.8: F1=2/3; t=0.3: 1/2; t=0.1: TP=2, FP=1 -> 4/5
    assert f1_max(labels, scores) == (pytest.approx(0.8), 0.1)


def test_tie_counts_half():
    assert image_auroc([0, 1], [0.5, 0.5]) == 0.5
    assert image_auroc([0, 0, 1], [0.1, 0.4, 0.4]) == 0.75


def test_f1_tie_takes_lowest_threshold():
    # t=0.9: TP=1, FP=0 -> 2/3; t=0.2: TP=2, FP=2 -> 4/6 = 2/3 as well
    assert f1_max([1, 0, 0, 1], [0.9, 0.5, 0.4, 0.2]) == (pytest.approx(2 / 3), 0.2)


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    labels = rng.random(n) < rng.uniform(0.1, 0.9)
    labels[:2] = [False, True]
    scores = np.round(rng.normal(size=n) + labels * rng.uniform(0, 2), 1)  # many ties, across classes too
    if seed % 2:
        scores = scores.astype(np.float32)
    assert image_auroc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(sk.average_precision_score(labels, scores), abs=1e-12)
    precision, recall, thresholds = sk.precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    best, threshold = f1_max(labels, scores)
    assert best == pytest.approx(f1.max(), abs=1e-12)
    tied = thresholds[f1 >= f1.max() - 1e-12]
    assert threshold == pytest.approx(tied.min())


def test_int_labels_and_bool_labels_agree():
    scores = [0.1, 0.7, 0.3, 0.9]
    assert image_auroc([0, 1, 0, 1], scores) == image_auroc(np.array([False, True, False, True]), scores) == 1.0


@pytest.mark.parametrize("fn", [image_auroc, average_precision, f1_max])
def test_single_class_is_data_error(fn):
    with pytest.raises(DataError, match="defective|both classes"):
        fn([0, 0, 0], [0.1, 0.2, 0.3])


def test_auroc_needs_good_images():
    with pytest.raises(DataError, match="both classes"):
        image_auroc([1, 1], [0.1, 0.2])


@pytest.mark.parametrize("labels, scores, match", [
    ([0, 1], [0.1, 0.2, 0.3], "do not match"),
    ([0, 2], [0.1, 0.2], "0 \\(good\\) or 1"),
    ([0, 1], [0.1, np.nan], "NaN or inf"),
    ([[0, 1]], [[0.1, 0.2]], "do not match"),
])
def test_bad_inputs(labels, scores, match):
    with pytest.raises(DataError, match=match):
        image_auroc(labels, scores)
