"""Small synthetic datasets shared by the data tests (written once per session, never modified by tests)."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgead.data.images import Color
from edgead.data.synthetic import StationSpec, generate_dataset

SMALL = StationSpec(height=128, width=160)


@pytest.fixture(scope="session")
def rgb_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 train, 2 good test, 4 defective test images (one per type), PNG, RGB, 128x160."""
    return generate_dataset(tmp_path_factory.mktemp("rgb") / "bracket", SMALL, n_train=6, n_test_good=2,
                            n_test_defect=4, seed=1)


@pytest.fixture(scope="session")
def gray_jpg_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grey dataset written as JPEG."""
    spec = StationSpec(height=128, width=160, color=Color.GRAY)
    return generate_dataset(tmp_path_factory.mktemp("gray") / "bracket_gray", spec, n_train=4, n_test_good=1,
                            n_test_defect=2, seed=2, suffix=".jpg")
