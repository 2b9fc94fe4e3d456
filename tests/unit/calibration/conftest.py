"""Shared fixture: the tiny contract bundle of tests/unit/convert/contract_model.py and 16 good images."""
import importlib.util
from pathlib import Path

import pytest

from edgead.calibration.dataset import load_calibration_set

_spec = importlib.util.spec_from_file_location(
    "contract_model", Path(__file__).parents[1] / "convert" / "contract_model.py")
cm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cm)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(the FP32 contract graph's path, its calibration set)."""
    root = tmp_path_factory.mktemp("q")
    bundle = cm.build_bundle(root / "bundle")
    calib = load_calibration_set(cm.write_good_folder(root / "calib", 16), channels=3)
    return bundle / "model.onnx", calib


@pytest.fixture(scope="session")
def contract_model():
    """The contract_model module (its ``HW`` and builders)."""
    return cm
