"""Evaluation metrics: image AUROC / AP / F1-max and pixel AUROC / AUPRO / F1-max (numpy + OpenCV only).

Example:
    >>> m = evaluate([0, 1, 1], [0.3, 0.8, 0.1])
    >>> m["image_auroc"], m["f1_max"], m["f1_threshold"]
    (0.5, 0.8, 0.1)
"""
from __future__ import annotations

import numpy as np

from edgead.errors import DataError
from edgead.metrics.image import average_precision, f1_max, image_auroc
from edgead.metrics.pixel import aupro, mask_at, pixel_auroc, pixel_f1_max, pixel_metrics

__all__ = ["aupro", "average_precision", "evaluate", "f1_max", "image_auroc", "mask_at", "pixel_auroc",
           "pixel_f1_max"]

PIXEL_KEYS = ("pixel_auroc", "aupro", "pixel_f1_max")


def evaluate(labels, scores, masks=None, maps=None, *, fpr_limit: float = 0.3) -> dict:
    """All metrics of a test split.

    Args:
        labels: ``[N]`` 0 = good, 1 = defective.
        scores: ``[N]`` image scores, higher = more anomalous.
        masks: optional ``[N, H, W]`` ground truth, True = defective pixel (all False for good images), or a list
            of ``N`` ``[H_i, W_i]`` masks when sizes differ.
        maps: optional ``[N, H, W]`` anomaly maps (or a list matching ``masks``); needed together with ``masks``.
        fpr_limit: AUPRO integration limit.

    Returns:
        ``image_auroc``, ``ap``, ``f1_max``, ``f1_threshold`` (raw score units, reject when ``>=``),
        ``pixel_auroc``, ``aupro``, ``pixel_f1_max`` (None without masks and maps, or without a defective pixel),
        ``n_good``, ``n_defective``.

    Raises:
        DataError: if only one class is present, shapes mismatch, only one of masks/maps is given, or an input
            is not finite.
    """
    labels = np.asarray(labels)
    n_defective = int(np.count_nonzero(labels))
    result = {"image_auroc": image_auroc(labels, scores), "ap": average_precision(labels, scores)}
    result["f1_max"], result["f1_threshold"] = f1_max(labels, scores)
    result.update(dict.fromkeys(PIXEL_KEYS))
    if (masks is None) != (maps is None):
        raise DataError("pixel metrics need both masks and maps; got only "
                        f"{'masks' if maps is None else 'maps'}", hint="pass both, or neither")
    if masks is not None and isinstance(masks, (list, tuple)):  # per-image sizes differ (tiled parts)
        if len(masks) != labels.size:
            raise DataError(f"{len(masks)} masks do not match {labels.size} labels",
                            hint="pass one [H, W] mask per image, all False for good images")
        if any(np.asarray(m).any() for m in masks):
            pixel = pixel_metrics(masks, maps, fpr_limit)
            result.update({k: pixel[k] for k in PIXEL_KEYS})
    elif masks is not None:
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[0] != labels.size:
            raise DataError(f"masks {masks.shape} do not match {labels.size} labels",
                            hint="pass one [H, W] mask per image, all False for good images")
        if masks.any():
            pixel = pixel_metrics(masks, maps, fpr_limit)
            result.update({k: pixel[k] for k in PIXEL_KEYS})
    result.update(n_good=labels.size - n_defective, n_defective=n_defective)
    return result
