"""Pixel metrics: AUPRO by hand and against an exact MVTec-style reference, AUROC/F1 against sklearn."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.errors import DataError
from edgead.metrics import aupro, pixel_auroc, pixel_f1_max
from edgead.metrics.pixel import pixel_metrics

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn (the [dev] extra) is the reference")
measure = pytest.importorskip("skimage.measure", reason="scikit-image labels the reference regions")


def exact_aupro(masks, maps, fpr_limit):
    """Every threshold, as MVTec AD's compute_pro: one cumsum over all pixels sorted by score."""
    weights = np.zeros(maps.shape)
    n_regions = 0
    for i, mask in enumerate(masks):
        labels = measure.label(mask, connectivity=2)
        for region in range(1, labels.max() + 1):
            inside = labels == region
            weights[i][inside] = 1.0 / inside.sum()
        n_regions += labels.max()
    fp_step = np.where(masks, 0.0, 1.0 / np.count_nonzero(~masks)).ravel()
    pro_step = (weights / n_regions).ravel()
    order = np.argsort(-maps.ravel(), kind="stable")
    values = maps.ravel()[order]
    fpr, pro = np.cumsum(fp_step[order]), np.cumsum(pro_step[order])
    last = np.append(values[1:] != values[:-1], True)
    fpr, pro = np.concatenate(([0.0], fpr[last])), np.concatenate(([0.0], pro[last]))
    keep = fpr <= fpr_limit
    area = np.sum(np.diff(fpr[keep]) * (pro[keep][1:] + pro[keep][:-1]) / 2)  # trapezoids (any numpy)
    if not keep.all():
        i = np.count_nonzero(keep)
        y = np.interp(fpr_limit, fpr[i - 1:i + 1], pro[i - 1:i + 1])
        area += (fpr_limit - fpr[i - 1]) * (pro[i - 1] + y) / 2
    return area / fpr_limit


def two_regions():
    """A 1-pixel region fully found before any false positive, a 3-pixel region only after 25% FPR."""
    masks = np.zeros((1, 4, 8), bool)
    maps = np.zeros((1, 4, 8), np.float32)
    masks[0, 0, 0] = True
    maps[0, 0, 0] = 0.9
    masks[0, 3, 5:8] = True
    maps[0, 3, 5:8] = 0.5
    maps[0, 1, 1:8] = 0.6  # 7 of the 28 good pixels score above the large region
    return masks, maps


def test_aupro_by_hand_differs_from_pixel_tpr():
    masks, maps = two_regions()
    # (FPR, PRO): (0, 1/2) up to FPR 0.25, then 1: area 0.25 * 0.5 + 0.05 * 1 = 0.175
    assert aupro(masks, maps) == pytest.approx(0.175 / 0.3)
    # pixel TPR would give 0.25 * 0.25 + 0.05 = 0.1125 instead: the small region weighs as much as the large one
    assert aupro(masks, maps) != pytest.approx(0.1125 / 0.3)
    assert aupro(masks, maps, fpr_limit=0.2) == pytest.approx(0.5)


def test_diagonal_touching_pixels_are_one_region():
    masks = np.zeros((1, 5, 5), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True  # 8-connected: one region of two pixels
    masks[0, 4, 4] = True
    maps = np.where(masks, -1.0, 0.0).astype(np.float32)
    maps[0, 0, 0] = 1.0  # half of the diagonal region, none of the other
    assert aupro(masks, maps) == pytest.approx(0.25)  # PRO = (1/2 + 0) / 2 up to FPR 1


@pytest.mark.parametrize("seed", range(4))
def test_aupro_exact_on_small_maps(seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((5, 24, 24)) < 0.05
    masks[:, 8:13, 8:16] |= rng.random((5, 1, 1)) < 0.6
    masks[0] = False
    maps = np.round(rng.normal(size=masks.shape) + 1.5 * masks, 1).astype(np.float32)  # ties
    for limit in (0.3, 0.05, 1.0):
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(exact_aupro(masks, maps, limit), abs=1e-9)


@pytest.mark.parametrize("n_thresholds", [7, 50])
def test_aupro_approximation_within_bound(n_thresholds):
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 32, 32), bool)
    masks[1, 3:9, 4:20] = masks[2, 20:23, 20:23] = masks[3, 10:30, 1:5] = True
    maps = (rng.normal(size=masks.shape) + 2.0 * masks * rng.random(masks.shape)).astype(np.float32)
    n_good = np.count_nonzero(~masks)
    most = np.ceil(0.3 * n_good)
    bound = (np.ceil(most / n_thresholds) - 1) / (2 * n_good * 0.3)
    got = aupro(masks, maps, n_thresholds=n_thresholds)
    assert abs(got - exact_aupro(masks, maps, 0.3)) <= bound + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_pixel_auroc_and_f1_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((3, 16, 20)) < 0.1
    maps = np.round(rng.random(masks.shape) + 0.5 * masks, 2).astype(np.float32)
    labels, values = masks.ravel(), maps.ravel()
    assert pixel_auroc(masks, maps) == pytest.approx(sk.roc_auc_score(labels, values), abs=1e-12)
    precision, recall, thresholds = sk.precision_recall_curve(labels, values)
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    best, threshold = pixel_f1_max(masks, maps)
    assert best == pytest.approx(f1.max(), abs=1e-12)
    assert threshold == pytest.approx(thresholds[f1 >= f1.max() - 1e-12].min())
    combined = pixel_metrics(masks, maps)
    assert combined["pixel_auroc"] == pixel_auroc(masks, maps)
    assert combined["aupro"] == aupro(masks, maps)
    assert (combined["pixel_f1_max"], combined["pixel_f1_threshold"]) == (best, threshold)


def test_uint8_masks_accepted():
    masks, maps = two_regions()
    assert aupro(masks.astype(np.uint8) * 255, maps) == aupro(masks, maps)


@pytest.mark.parametrize("fn", [pixel_auroc, aupro])
def test_pixel_errors(fn):
    masks, maps = two_regions()
    with pytest.raises(DataError, match="do not match"):
        fn(masks, maps[:, :3])
    with pytest.raises(DataError, match="do not match"):
        fn(masks[0], maps[0])
    with pytest.raises(DataError, match="needs both classes"):
        fn(np.zeros_like(masks), maps)
    bad = maps.copy()
    bad[0, 2, 2] = np.inf
    with pytest.raises(DataError, match="NaN or inf"):
        fn(masks, bad)


def test_bad_fpr_limit():
    with pytest.raises(DataError, match="fpr_limit"):
        aupro(*two_regions(), fpr_limit=0.0)


def test_per_image_sizes_give_the_same_metrics_as_one_stack():
    """Tiled parts are evaluated at native resolution, sizes differ: a list of maps equals the stacked arrays."""
    from edgead.metrics import evaluate

    rng = np.random.default_rng(3)
    masks = np.zeros((4, 20, 30), bool)
    masks[1, 3:8, 4:9] = True
    masks[2, 10:12, 1:20] = True
    masks[2, 15:18, 25:28] = True
    maps = rng.random((4, 20, 30)).astype(np.float32) + 1.5 * masks
    stacked = evaluate([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2], masks, maps)
    listed = evaluate([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2], list(masks), list(maps))
    for key in ("pixel_auroc", "aupro", "pixel_f1_max"):
        assert listed[key] == stacked[key]  # the same pixels in the same order: exact
    ragged = evaluate([0, 1], [0.1, 0.9], [masks[0], masks[2][:, :17]], [maps[0], maps[2][:, :17]])
    assert 0.5 < ragged["pixel_auroc"] <= 1.0 and ragged["aupro"] is not None
