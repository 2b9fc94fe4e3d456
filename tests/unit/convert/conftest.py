"""Session fixtures for the conversion tests: a tiny contract bundle, a calibration folder, a labelled check set."""
from __future__ import annotations

from pathlib import Path

import contract_model  # tests/unit/convert, on sys.path through tests/conftest.py
import pytest


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    return contract_model.build_bundle(tmp_path_factory.mktemp("conv") / "bundle")


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory) -> Path:
    return contract_model.write_good_folder(tmp_path_factory.mktemp("calib") / "good", 16)


@pytest.fixture(scope="session")
def check_dir(tmp_path_factory) -> Path:
    return contract_model.write_mvtec_test(tmp_path_factory.mktemp("check") / "part")
