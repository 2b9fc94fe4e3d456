"""Session fixtures shared by the integration tests: a small synthetic station and a tiny trained bundle."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# Test helpers imported by name from any test: contract_model (a tiny graph-contract detector, tests/unit/convert),
# twins (software twins of CUDA and TensorRT, tests/unit/infer), modbus_peers (pymodbus PLCs,
# tests/integration/plc), mqtt_peers (mosquitto, a subscriber; tests/integration/north), separation
# (trained-model asserts with margins; tests/helpers), daemon_process (waiting for an `edgead run` process's READY=1;
# tests/helpers), wakes (a PLC link's wait ended by another thread; tests/helpers) and forge (a re-hashed or re-signed
# bundle, tests/unit/bundle).
for _helpers in ("unit/convert", "unit/infer", "integration/plc", "integration/north", "helpers", "unit/bundle"):
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
def bundle_key(tmp_path_factory) -> SimpleNamespace:
    """The tests' build-host signing key: ``key`` (file), ``pub`` (file), ``line`` (the public key line),
    ``key_id`` and ``security`` (a station config's ``security`` section that trusts it)."""
    from edgead.bundle.signing import read_public_key, write_key_pair

    key, pub = write_key_pair(tmp_path_factory.mktemp("keys") / "build-host", "tests")
    public = read_public_key(pub)
    return SimpleNamespace(key=key, pub=pub, line=public.to_line(), key_id=public.key_id,
                           security={"trusted_keys": [public.to_line()]})


@pytest.fixture(scope="session")
def padim_bundle(small_station, tmp_path_factory, bundle_key):
    """PaDiM trained on the aligned small station (seconds on 2 cores), signed with ``bundle_key``."""
    from edgead.train.pipeline import TrainConfig, train

    out = tmp_path_factory.mktemp("bundles") / "padim"
    return train(small_station.aligned, out, TrainConfig(model="padim", image_size=160, seed=0), progress=False,
                 sign_key=bundle_key.key)


@pytest.fixture(scope="session")
def real_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED} (../shared/datasets)")
    return SHARED
