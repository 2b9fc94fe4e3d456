"""Real categories mix image sizes (magnetic_tile): the gate and the calibration set must take them."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from edgead.calibration.dataset import load_calibration_set
from edgead.convert.gate import load_check_set, predict
from edgead.errors import CalibrationError
from edgead.infer import open_backend


def _upsize(folder, factor=1.5):
    for p in sorted(folder.glob("*.png"))[::2]:
        img = cv2.imread(str(p))
        cv2.imwrite(str(p), cv2.resize(img, None, fx=factor, fy=factor))


def test_check_set_with_mixed_sizes_is_fed_one_by_one(bundle_dir, check_dir, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(check_dir, mixed)
    _upsize(mixed / "test" / "good")
    for p in sorted((mixed / "test" / "blob").glob("*.png"))[::2]:
        img = cv2.imread(str(p))
        cv2.imwrite(str(p), cv2.resize(img, None, fx=1.5, fy=1.5))
        m = mixed / "ground_truth" / "blob" / f"{p.stem}_mask.png"
        cv2.imwrite(str(m), cv2.resize(cv2.imread(str(m), 0), None, fx=1.5, fy=1.5, interpolation=cv2.INTER_NEAREST))
    with open_backend(bundle_dir) as eng:
        spec = eng.input_spec
        check = load_check_set(mixed, channels=3, map_hw=(spec.height, spec.width))
        assert isinstance(check.images, list) and len({im.shape for im in check.images}) == 2
        pred = predict(eng, check.images)
    assert pred.raw_score.shape == (len(check.labels),)
    assert pred.raw_map.shape[1:] == check.masks.shape[1:]


def test_calibration_set_resizes_mixed_sizes_to_the_model_resolution(calib_dir, tmp_path):
    mixed = tmp_path / "calib"
    shutil.copytree(calib_dir, mixed)
    _upsize(mixed)
    with pytest.raises(CalibrationError, match="must have one size"):
        load_calibration_set(mixed, channels=3)
    calib = load_calibration_set(mixed, channels=3, resize_hw=(32, 48))
    assert calib.images.shape[1:] == (32, 48, 3) and calib.images.dtype == np.uint8
