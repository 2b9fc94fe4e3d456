"""Shared fixture: the tiny contract bundle of tests/unit/convert/contract_model.py and 16 good images."""
import contract_model as cm  # tests/unit/convert (on sys.path: tests/conftest.py)
import pytest

from edgead.calibration.dataset import load_calibration_set


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
