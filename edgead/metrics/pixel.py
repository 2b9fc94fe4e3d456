"""Pixel-level metrics (AUROC, F1-max, AUPRO) on ground-truth masks and anomaly maps.

The maps are split once into defective and good pixels, each sorted once (float32 stays float32); every metric
then reads the two sorted arrays with ``np.searchsorted``. Peak memory is about three times the maps: e.g.
700 x 256 x 512 float32 maps (367 MB) need about 1.1 GB more.

Example:
    >>> masks = np.zeros((1, 4, 4), bool); masks[0, 0, 0] = True
    >>> maps = np.zeros((1, 4, 4), np.float32); maps[0, 0, 0] = 1.0
    >>> pixel_auroc(masks, maps)
    1.0
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgead.errors import DataError
from edgead.metrics.image import auroc_sorted, f1_max_sorted, require_both

AUPRO_THRESHOLDS = 10_000
MASK_COVER = 0.5
"""A map pixel is defective when at least this fraction of its area is defective in the ground truth."""


def mask_at(mask, hw: tuple[int, int]) -> np.ndarray:
    """The ground truth at map resolution: the one definition shared by ``eval``, the conversion gate and the
    benchmarks.

    The mask is area-resampled to ``hw`` (``cv2.INTER_AREA``: each map pixel gets the defective fraction of the
    ground-truth pixels it covers) and a map pixel is defective when that fraction is at least
    :data:`MASK_COVER`. Pixel metrics then compare it with the *raw* anomaly map at model resolution (the
    normalised map is clipped at 0 and 1, and its ties would lower the AUROC).

    Args:
        mask: ``[H, W]`` ground truth, non-zero = defective (bool, 0/1 or 0/255).
        hw: the map's ``(height, width)``.

    Returns:
        ``[h, w]`` bool.

    Example:
        >>> m = np.zeros((4, 4), np.uint8); m[:2, :2] = 255
        >>> mask_at(m, (2, 2)).tolist()
        [[True, False], [False, False]]
    """
    mask = np.asarray(mask)
    frac = (mask != 0).astype(np.float32)
    if frac.shape[:2] != tuple(hw):
        frac = cv2.resize(frac, (int(hw[1]), int(hw[0])), interpolation=cv2.INTER_AREA)
    return frac >= MASK_COVER


@dataclass(frozen=True)
class PixelScores:
    """Pixel scores split by the masks and sorted ascending.

    Attributes:
        pos: scores of the defective pixels.
        neg: scores of the good pixels.
        order: ``argsort`` of the defective pixels in ``masks``' C order (``pos == maps[masks][order]``).
    """

    pos: np.ndarray
    neg: np.ndarray
    order: np.ndarray


def _is_ragged(masks) -> bool:
    """True for a list of per-image 2-D masks (sizes may differ: tiled parts evaluated at native resolution)."""
    return isinstance(masks, (list, tuple))


def _flat(masks, maps) -> tuple[np.ndarray, np.ndarray]:
    """A list of ``[H_i, W_i]`` masks and maps as one ``[1, 1, sum H_i W_i]`` pair (pixel order kept)."""
    if len(masks) != len(maps) or any(np.shape(a) != np.shape(b) or np.ndim(a) != 2 for a, b in zip(masks, maps)):
        raise DataError("per-image masks and maps must pair up with equal 2-D shapes",
                        hint="pass one [H, W] mask and one [H, W] map per image")
    flat_masks = np.concatenate([np.asarray(m).ravel() != 0 for m in masks])[None, None]
    dtype = np.float32 if all(np.asarray(m).dtype == np.float32 for m in maps) else np.float64
    return flat_masks, np.concatenate([np.asarray(m, dtype).ravel() for m in maps])[None, None]


def split_pixels(masks, maps) -> PixelScores:
    """Validate masks and maps and split them into sorted defective and good pixel scores.

    Args:
        masks: ``[N, H, W]`` ground truth, True (or non-zero) = defective pixel; or a list of ``[H_i, W_i]``
            masks (sizes may differ).
        maps: ``[N, H, W]`` anomaly maps, finite; float32 is kept as is, other dtypes become float64; or a list
            of ``[H_i, W_i]`` maps matching the masks.

    Returns:
        The :class:`PixelScores`.

    Raises:
        DataError: on a shape mismatch or NaN/inf in the maps.
    """
    if _is_ragged(masks):
        masks, maps = _flat(masks, maps)
    masks = np.asarray(masks)
    maps = np.asarray(maps)
    if maps.dtype != np.float32:
        maps = maps.astype(np.float64)
    if masks.ndim != 3 or masks.shape != maps.shape:
        raise DataError(f"masks {masks.shape} and maps {maps.shape} do not match",
                        hint="pass [N, H, W] masks and maps at the same resolution")
    if masks.dtype != bool:
        masks = masks != 0
    if maps.size and not (np.isfinite(maps.min()) and np.isfinite(maps.max())):
        raise DataError("anomaly maps contain NaN or inf", hint="check the model outputs before computing metrics")
    pos = maps[masks]
    order = np.argsort(pos)
    neg = maps[~masks]
    neg.sort()
    return PixelScores(pos[order], neg, order)


def region_weights(masks: np.ndarray) -> np.ndarray:
    """Weight of each defective pixel for the per-region overlap: ``1 / (n_regions * region_area)``.

    Regions are the 8-connected components of each image's mask (``cv2.connectedComponents``); the weights are in
    the C order of ``masks[masks]`` and sum to 1.

    Args:
        masks: ``[N, H, W]`` bool masks, or a list of ``[H_i, W_i]`` ones.

    Returns:
        float64 ``[n_defective_pixels]``.
    """
    masks = [np.asarray(m) != 0 for m in masks] if _is_ragged(masks) else masks
    areas = np.empty(int(sum(np.count_nonzero(m) for m in masks)), np.float64)
    n_regions = 0
    at = 0
    for mask in masks:
        if not mask.any():
            continue
        n_labels, labels = cv2.connectedComponents(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8)
        inside = labels[mask]
        areas[at:at + inside.size] = np.bincount(inside)[inside]
        at += inside.size
        n_regions += n_labels - 1
    return 1.0 / (n_regions * areas)


def _interpolated_area(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under the polyline (x non-decreasing) from x[0] to ``x_max``, interpolating at ``x_max``."""
    inside = int(np.searchsorted(x, x_max, side="right"))
    area = float(np.sum(np.diff(x[:inside]) * (y[1:inside] + y[:inside - 1]) / 2.0))
    if inside < x.size and x[inside - 1] < x_max:
        x0, x1, y0, y1 = x[inside - 1], x[inside], y[inside - 1], y[inside]
        y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += (x_max - x0) * (y0 + y_at) / 2.0
    return area


def aupro_sorted(scores: PixelScores, weights: np.ndarray, fpr_limit: float = 0.3,
                 n_thresholds: int = AUPRO_THRESHOLDS) -> float:
    """AUPRO from split pixel scores and :func:`region_weights` (see :func:`aupro` for the method).

    Args:
        scores: the split pixel scores, with at least one good and one defective pixel.
        weights: :func:`region_weights` of the same masks.
        fpr_limit: upper end of the integration, in (0, 1].
        n_thresholds: number of false-positive-rate steps between 0 and ``fpr_limit``.

    Returns:
        The normalised area in [0, 1].
    """
    pos, neg = scores.pos, scores.neg
    tail = np.zeros(pos.size + 1, np.float64)  # tail[i] = weight of pos[i:]
    tail[:-1] = np.cumsum(weights[scores.order][::-1])[::-1]
    n_neg = neg.size
    most = min(n_neg, int(np.ceil(fpr_limit * n_neg - 1e-9)))  # good pixels above the lowest threshold
    steps = np.ceil(np.arange(1, n_thresholds + 1) * (most / n_thresholds)).astype(np.int64)
    counts = np.unique(np.concatenate(([1], np.clip(steps, 1, most))))
    thresholds = neg[n_neg - counts]  # descending
    # Two curve points per threshold t: "score > t" then "score >= t"; together they trace every tie exactly.
    fp = np.empty(2 * counts.size + 1, np.int64)
    pro = np.empty(2 * counts.size + 1, np.float64)
    fp[0], pro[0] = 0, 0.0
    fp[1::2] = n_neg - np.searchsorted(neg, thresholds, side="right")
    fp[2::2] = n_neg - np.searchsorted(neg, thresholds, side="left")
    pro[1::2] = tail[np.searchsorted(pos, thresholds, side="right")]
    pro[2::2] = tail[np.searchsorted(pos, thresholds, side="left")]
    np.clip(pro, 0.0, 1.0, out=pro)
    return float(_interpolated_area(fp / n_neg, pro, fpr_limit) / fpr_limit)


def aupro(masks, maps, fpr_limit: float = 0.3, n_thresholds: int = AUPRO_THRESHOLDS) -> float:
    """Area under the per-region-overlap (PRO) curve up to ``fpr_limit``, normalised to [0, 1] (MVTec AD).

    For a threshold t, PRO(t) is the mean over all ground-truth regions (8-connected components of each mask) of
    the fraction of the region's pixels with ``score >= t``; FPR(t) is the fraction of all good pixels of all
    images with ``score >= t``. The curve (FPR, PRO), starting at (0, 0) and joined by straight lines as in MVTec
    AD's evaluation code, is integrated from 0 to ``fpr_limit`` (linear interpolation at the limit) and divided by
    ``fpr_limit``.

    Approximation: thresholds are the good-pixel quantiles at ``n_thresholds`` equal FPR steps up to
    ``fpr_limit``, each visited twice (``> t`` and ``>= t``), so ties are traced exactly and every point lies on
    the exact curve. Between two steps both the exact and the approximate curve are monotone and stay in the same
    box, so the result differs from the exact one by at most ``(ceil(M / n_thresholds) - 1) / (2 * n_good_px *
    fpr_limit)`` with ``M = ceil(fpr_limit * n_good_px)``, i.e. about ``1 / (2 * n_thresholds)`` (5e-5 by
    default), and is exact when ``M <= n_thresholds``.

    Args:
        masks: ``[N, H, W]`` ground truth, True = defective pixel.
        maps: ``[N, H, W]`` anomaly maps.
        fpr_limit: upper end of the integration, in (0, 1].
        n_thresholds: number of FPR steps (see the approximation above).

    Returns:
        The AUPRO in [0, 1].

    Raises:
        DataError: on a shape mismatch, non-finite maps, a bad ``fpr_limit``, or no good or no defective pixel.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise DataError(f"AUPRO fpr_limit must be in (0, 1]; got {fpr_limit}", hint="the usual value is 0.3")
    scores = split_pixels(masks, maps)
    require_both(scores.pos, scores.neg, "AUPRO (pixels)")
    regions = masks if _is_ragged(masks) else np.asarray(masks) != 0
    return aupro_sorted(scores, region_weights(regions), fpr_limit, n_thresholds)


def pixel_auroc(masks, maps) -> float:
    """Pixel-level AUROC over all pixels of all images (exact, ties count one half).

    Args:
        masks: ``[N, H, W]`` ground truth, True = defective pixel.
        maps: ``[N, H, W]`` anomaly maps.

    Returns:
        The AUROC in [0, 1].

    Raises:
        DataError: on a shape mismatch, non-finite maps, or no good or no defective pixel.
    """
    scores = split_pixels(masks, maps)
    require_both(scores.pos, scores.neg, "pixel AUROC")
    return auroc_sorted(scores.pos, scores.neg)


def pixel_f1_max(masks, maps) -> tuple[float, float]:
    """Best pixel F1 over all pixels of all images and its threshold (defective when ``score >= threshold``).

    Args:
        masks: ``[N, H, W]`` ground truth, True = defective pixel.
        maps: ``[N, H, W]`` anomaly maps.

    Returns:
        ``(f1, threshold)``, exact; the lowest threshold among equal F1 values.

    Raises:
        DataError: on a shape mismatch, non-finite maps, or no defective pixel.
    """
    scores = split_pixels(masks, maps)
    if scores.pos.size == 0:
        raise DataError("pixel F1 needs at least one defective pixel", hint="pass masks of defective images")
    return f1_max_sorted(scores.pos, scores.neg)


def pixel_metrics(masks, maps, fpr_limit: float = 0.3) -> dict:
    """Pixel AUROC, AUPRO and F1-max with one split and sort of the maps.

    Args:
        masks: ``[N, H, W]`` ground truth, True = defective pixel.
        maps: ``[N, H, W]`` anomaly maps.
        fpr_limit: AUPRO integration limit.

    Returns:
        ``{"pixel_auroc", "aupro", "pixel_f1_max", "pixel_f1_threshold"}``.

    Raises:
        DataError: as :func:`aupro`.
    """
    masks = [np.asarray(m) != 0 for m in masks] if _is_ragged(masks) else np.asarray(masks) != 0
    scores = split_pixels(masks, maps)
    require_both(scores.pos, scores.neg, "pixel metrics")
    f1, threshold = f1_max_sorted(scores.pos, scores.neg)
    return {"pixel_auroc": auroc_sorted(scores.pos, scores.neg),
            "aupro": aupro_sorted(scores, region_weights(masks), fpr_limit),
            "pixel_f1_max": f1, "pixel_f1_threshold": threshold}
