"""Session fixtures shared by the integration tests: a small synthetic station and a tiny trained bundle."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# Test helpers imported by name from any test: contract_model (a tiny graph-contract detector, tests/unit/convert),
# twins (software twins of CUDA and TensorRT, tests/unit/infer), modbus_peers (pymodbus PLCs,
# tests/integration/plc), mqtt_peers (mosquitto, a subscriber; tests/integration/north) and separation
# (trained-model asserts with margins; tests/helpers).
for _helpers in ("unit/convert", "unit/infer", "integration/plc", "integration/north", "helpers"):
    sys.path.insert(0, str(Path(__file__).parent / _helpers))


@pytest.fixture(scope="session")
def small_station(tmp_path_factory) -> SimpleNamespace:
    """Raw misaligned captures in the MVTec layout, their aligned copy, and a replay folder with ground truth."""
    from edgead.align.dataset import align_dataset
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset

    root = tmp_path_factory.mktemp("station")
    spec = StationSpec(height=128, width=160, max_shift_px=6.0, max_rotation_deg=2.0)
    raw = generate_dataset(root / "raw", spec, n_train=24, n_test_good=10, n_test_defect=10, seed=0, aligned=False)
    align_dataset(raw, root / "aligned", raw / "reference.png")
    captures = generate_captures(root / "captures", spec, n=24, defect_rate=0.4, seed=1)
    return SimpleNamespace(root=root, spec=spec, raw=raw, aligned=root / "aligned", captures=captures,
                           reference=raw / "reference.png")


@pytest.fixture(scope="session")
def padim_bundle(small_station, tmp_path_factory):
    """PaDiM trained on the aligned small station (seconds on 2 cores)."""
    from edgead.train.pipeline import TrainConfig, train

    out = tmp_path_factory.mktemp("bundles") / "padim"
    return train(small_station.aligned, out, TrainConfig(model="padim", image_size=160, seed=0), progress=False)


@pytest.fixture(scope="session")
def real_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED} (../shared/datasets)")
    return SHARED
