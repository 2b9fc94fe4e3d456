"""One pixel-metric definition: `edgead eval` and the conversion gate score the same bundle identically."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.convert.gate import compare, load_check_set, predict
from edgead.evaluation import evaluate_bundle
from edgead.infer import open_backend
from edgead.metrics import image_auroc, mask_at, pixel_auroc


def test_eval_and_gate_agree_on_the_same_bundle(padim_bundle, small_station):
    bundle = padim_bundle.bundle
    spec = bundle.input_spec
    result = evaluate_bundle(bundle.root, small_station.aligned)
    check = load_check_set(small_station.aligned, channels=spec.channels, map_hw=(spec.height, spec.width))
    np.testing.assert_array_equal(check.masks, result.masks)  # the same ground truth at map resolution
    with open_backend(bundle.root) as engine:
        pred = predict(engine, check.images)
    report = compare(check.labels, pred, pred, masks=check.masks)
    assert report.pixel_auroc == pytest.approx(result.metrics["pixel_auroc"], abs=1e-6)
    assert report.image_auroc == pytest.approx(result.metrics["image_auroc"], abs=1e-6)
    assert pixel_auroc(check.masks, pred.raw_map) == report.pixel_auroc
    assert image_auroc(check.labels, pred.raw_score) == report.image_auroc


def test_the_definition_is_area_coverage_at_map_resolution():
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:1] = 255  # half of the top-left 2x2 cell: defective (>= half its area)
    mask[4, 4] = 255  # a quarter of a cell: not
    got = mask_at(mask, (4, 4))
    assert got[0, 0] and not got[2, 2] and got.sum() == 1
    assert mask_at(mask != 0, (8, 8)).sum() == 3  # same size: unchanged
