"""evaluate(): keys, pixel keys present only with masks and maps, errors."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.errors import DataError
from edgead.metrics import aupro, evaluate, f1_max, pixel_auroc

KEYS = {"image_auroc", "pixel_auroc", "aupro", "f1_max", "f1_threshold", "ap", "pixel_f1_max", "n_good",
        "n_defective"}


def split():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.3, 0.2, 0.8, 0.25])
    masks = np.zeros((5, 16, 16), bool)
    masks[3, 2:6, 2:6] = masks[4, 10:12, 8:14] = True
    maps = (rng.random(masks.shape) + masks).astype(np.float32)
    return labels, scores, masks, maps


def test_image_only():
    labels, scores, _, _ = split()
    m = evaluate(labels, scores)
    assert set(m) == KEYS
    assert (m["n_good"], m["n_defective"]) == (3, 2)
    assert m["image_auroc"] == pytest.approx(5 / 6)
    assert (m["f1_max"], m["f1_threshold"]) == f1_max(labels, scores)
    assert m["pixel_auroc"] is m["aupro"] is m["pixel_f1_max"] is None


def test_with_masks_and_maps():
    labels, scores, masks, maps = split()
    m = evaluate(labels, scores, masks, maps)
    assert set(m) == KEYS
    assert m["pixel_auroc"] == pixel_auroc(masks, maps) == 1.0
    assert m["aupro"] == aupro(masks, maps)
    assert m["pixel_f1_max"] == 1.0


def test_masks_without_defective_pixel_give_none():
    labels, scores, masks, maps = split()
    m = evaluate(labels, scores, np.zeros_like(masks), maps)
    assert m["pixel_auroc"] is None and m["aupro"] is None


def test_errors():
    labels, scores, masks, maps = split()
    with pytest.raises(DataError, match="both classes"):
        evaluate([0, 0], [0.1, 0.2])
    with pytest.raises(DataError, match="both masks and maps"):
        evaluate(labels, scores, masks)
    with pytest.raises(DataError, match="do not match 5 labels"):
        evaluate(labels, scores, masks[:4], maps[:4])
    with pytest.raises(DataError, match="do not match"):
        evaluate(labels, scores, masks, maps[:, :8])
