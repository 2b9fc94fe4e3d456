"""Image-level metrics (AUROC, average precision, F1-max) on labels and scores.

Every metric is computed from two *sorted* score arrays, the positives (defective) and the negatives (good), with
``np.searchsorted``: no score is ever added or rescaled, so ties and float32 inputs are handled exactly. The
``*_sorted`` functions are the shared core; :mod:`edgead.metrics.pixel` feeds them millions of pixels.

Example:
    >>> image_auroc([0, 1, 1], [0.3, 0.8, 0.1])
    0.5
"""
from __future__ import annotations

import numpy as np

from edgead.errors import DataError


def auroc_sorted(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve from sorted positive and negative scores (Mann-Whitney U, average ranks).

    A positive scoring above a negative counts 1, a tie counts 1/2, as ``sklearn.metrics.roc_auc_score`` does.

    Args:
        pos: scores of the positives, sorted ascending, at least one.
        neg: scores of the negatives, sorted ascending, at least one.

    Returns:
        The AUROC in [0, 1].
    """
    below = np.searchsorted(neg, pos, side="left").sum(dtype=np.int64)
    below_or_tied = np.searchsorted(neg, pos, side="right").sum(dtype=np.int64)
    return float((int(below) + int(below_or_tied)) / (2 * pos.size * neg.size))


def _positive_thresholds(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct positive scores (ascending) with, for ``score >= t``: true positives, false positives, ties."""
    first = np.empty(pos.size, dtype=bool)
    first[0] = True
    np.not_equal(pos[1:], pos[:-1], out=first[1:])
    start = np.flatnonzero(first)
    thresholds = pos[start]
    tp = pos.size - start
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    n_equal = np.diff(np.append(start, pos.size))
    return thresholds, tp, fp, n_equal


def average_precision_sorted(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision (sklearn's step definition) from sorted positive and negative scores.

    ``AP = sum_t (R_t - R_prev) * P_t`` over the distinct thresholds: only thresholds equal to a positive score
    change the recall, so only those are visited.

    Args:
        pos: scores of the positives, sorted ascending, at least one.
        neg: scores of the negatives, sorted ascending (may be empty).

    Returns:
        The average precision in [0, 1].
    """
    _, tp, fp, n_equal = _positive_thresholds(pos, neg)
    precision = tp / (tp + fp)
    return float(np.sum(n_equal * precision) / pos.size)


def f1_max_sorted(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """Best F1 over the thresholds ``score >= t``, from sorted positive and negative scores.

    The best F1 is always reached at a threshold equal to a positive score (raising ``t`` up to the next positive
    only drops false positives), so only those are visited. Among equal F1 values the lowest threshold wins (more
    rejects, fewer escapes).

    Args:
        pos: scores of the positives, sorted ascending, at least one.
        neg: scores of the negatives, sorted ascending (may be empty).

    Returns:
        ``(f1, threshold)``.
    """
    thresholds, tp, fp, _ = _positive_thresholds(pos, neg)
    f1 = 2.0 * tp / (tp + fp + pos.size)  # 2TP / (2TP + FP + FN), FN = P - TP
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


def split_labels(labels, scores, *, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores and return the sorted defective and good scores.

    Args:
        labels: ``[N]`` 0 = good, 1 = defective (bool or integers 0/1).
        scores: ``[N]`` finite scores; higher means more anomalous.
        what: name of the scores in error messages.

    Returns:
        ``(pos, neg)``: defective and good scores, each sorted ascending (float64, or float32 when given).

    Raises:
        DataError: on a shape mismatch, labels other than 0/1, or NaN/inf scores.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if scores.dtype != np.float32:
        scores = scores.astype(np.float64)
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise DataError(f"labels {labels.shape} and {what} {scores.shape} do not match",
                        hint="pass one label and one score per image, both 1-D")
    if labels.dtype != bool:
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise DataError(f"labels must be 0 (good) or 1 (defective); got values {np.unique(labels)[:5]}")
        labels = labels.astype(bool)
    if not np.isfinite(scores).all():
        raise DataError(f"{what} contain NaN or inf ({np.count_nonzero(~np.isfinite(scores))} of {scores.size})",
                        hint="check the model outputs before computing metrics")
    return np.sort(scores[labels]), np.sort(scores[~labels])


def require_both(pos: np.ndarray, neg: np.ndarray, metric: str) -> None:
    """Raise :class:`DataError` unless both classes are present.

    Raises:
        DataError: if ``pos`` or ``neg`` is empty.
    """
    if pos.size == 0 or neg.size == 0:
        raise DataError(f"{metric} needs both classes; got {pos.size} defective and {neg.size} good",
                        hint="the test set needs good and defective samples")


def image_auroc(labels, scores) -> float:
    """Image-level AUROC (ties count one half, as in sklearn).

    Args:
        labels: ``[N]`` 0 = good, 1 = defective.
        scores: ``[N]`` image scores, higher = more anomalous.

    Returns:
        The AUROC in [0, 1].

    Raises:
        DataError: if only one class is present, shapes mismatch or scores are not finite.

    Example:
        >>> image_auroc([0, 0, 1], [0.1, 0.4, 0.4])
        0.75
    """
    pos, neg = split_labels(labels, scores)
    require_both(pos, neg, "image AUROC")
    return auroc_sorted(pos, neg)


def average_precision(labels, scores) -> float:
    """Average precision of the defective class, as ``sklearn.metrics.average_precision_score``.

    Args:
        labels: ``[N]`` 0 = good, 1 = defective.
        scores: ``[N]`` image scores, higher = more anomalous.

    Returns:
        The AP in [0, 1].

    Raises:
        DataError: if there is no defective image, shapes mismatch or scores are not finite.

    Example:
        >>> round(average_precision([0, 1, 1], [0.3, 0.8, 0.1]), 4)
        0.8333
    """
    pos, neg = split_labels(labels, scores)
    if pos.size == 0:
        raise DataError("average precision needs at least one defective image", hint="add defective test images")
    return average_precision_sorted(pos, neg)


def f1_max(labels, scores) -> tuple[float, float]:
    """Best F1 score and the threshold achieving it (predict defective when ``score >= threshold``).

    Args:
        labels: ``[N]`` 0 = good, 1 = defective.
        scores: ``[N]`` image scores, higher = more anomalous.

    Returns:
        ``(f1, threshold)``; the threshold is a defective image's score, the lowest one among equal F1 values.

    Raises:
        DataError: if there is no defective image, shapes mismatch or scores are not finite.

    Example:
        >>> f1_max([0, 1, 1], [0.3, 0.8, 0.1])
        (0.8, 0.1)
    """
    pos, neg = split_labels(labels, scores)
    if pos.size == 0:
        raise DataError("F1 needs at least one defective image", hint="add defective test images")
    return f1_max_sorted(pos, neg)


def curve_points(labels, scores) -> dict[str, np.ndarray]:
    """ROC and precision-recall points at every distinct score (reject when ``score >= t``), for plots.

    Args:
        labels: ``[N]`` 0 = good, 1 = defective (both present).
        scores: ``[N]`` scores, higher = more anomalous.

    Returns:
        ``{"thresholds", "fpr", "tpr", "precision", "recall"}``, thresholds descending; ``fpr``/``tpr`` start at
        (0, 0).

    Raises:
        DataError: if only one class is present, shapes mismatch or scores are not finite.

    Example:
        >>> p = curve_points([0, 1, 1], [0.3, 0.8, 0.1])
        >>> p["tpr"].tolist(), p["fpr"].tolist()
        ([0.0, 0.5, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0])
    """
    pos, neg = split_labels(labels, scores)
    require_both(pos, neg, "ROC curve")
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    tp = (pos.size - np.searchsorted(pos, thresholds, side="left")).astype(np.float64)
    fp = (neg.size - np.searchsorted(neg, thresholds, side="left")).astype(np.float64)
    return {"thresholds": thresholds, "fpr": np.r_[0.0, fp / neg.size], "tpr": np.r_[0.0, tp / pos.size],
            "precision": tp / np.maximum(tp + fp, 1), "recall": tp / pos.size}
