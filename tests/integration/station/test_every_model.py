"""Every model of the table runs in the daemon: train tiny, then replay parts through the real loop.

The models are read from ``edgead.models.registry.MODELS``, so a new model is covered without editing this file.
Each is trained on the session's small synthetic station (``small_station`` in tests/conftest.py) at a 96 px long
side with its step counts cut to a few (``TINY``). Supervised models (capsnet) train with ``--labelled`` on a
labelled split of that station (``make_labelled_split``: a share of its defective test images moved to
``train/<type>/`` as symlinks) and are checked on the reduced test split. Then the daemon runs a few
replayed captures: folder:// camera, alignment, the ONNX Runtime backend, the SQLite recorder and the ASCII
virtual PLC over a real pty pair (``edgead.demo.plc_peer``, as in test_station_daemon.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from edgead.daemon.config import load_station
from edgead.demo.plc_peer import PtyPair, run_with_plc
from edgead.data.labelled import make_labelled_split
from edgead.models.registry import MODELS, Supervision
from edgead.records import RecordStore
from edgead.verdict import Verdict

pytestmark = pytest.mark.timeout(600)

N_PARTS = 5
IMAGE_LONG_PX = 96
TINY = {"epochs": 1, "steps": 4, "teacher_steps": 4}
"""Overrides applied to every model that has the parameter: training length only, so the graph is the real one."""
LABELLED_FRACTION = 0.2
"""Defect share of a supervised model's training set (the small station: 24 good + 6 of its 10 defects)."""

ALL_MODELS = list(MODELS)


@pytest.fixture(scope="module")
def labelled_station(small_station, tmp_path_factory) -> Path:
    """The small station's labelled split (symlinks): the training data of the supervised models."""
    return make_labelled_split(small_station.aligned, tmp_path_factory.mktemp("labelled") / "split",
                               LABELLED_FRACTION, seed=0).root


def _data(name: str, small_station, labelled_station: Path) -> Path:
    """Where ``name`` trains and is checked: the labelled split for supervised models, else the aligned station."""
    return labelled_station if MODELS[name].supervision is Supervision.LABELLED else small_station.aligned


@pytest.fixture(scope="module")
def tiny_bundles(small_station, labelled_station, tmp_path_factory, bundle_key):
    """model name -> a bundle trained at tiny settings, trained once per module on first use."""
    from edgead.train.pipeline import TrainConfig, train

    root = tmp_path_factory.mktemp("every-model")
    cache = {}

    def get(name: str):
        if name not in cache:
            spec = MODELS[name]
            params = {k: v for k, v in TINY.items() if k in spec.defaults}
            cfg = TrainConfig(model=name, image_size=IMAGE_LONG_PX, params=params, evaluate=False,
                              supervision=spec.supervision, preset="quick")
            cache[name] = train(_data(name, small_station, labelled_station), root / name, cfg,
                                progress=False, sign_key=bundle_key.key).bundle
        return cache[name]

    return get


def _station_yaml(tmp_path: Path, station, bundle, port: str) -> Path:
    from edgead.bundle.signing import read_signature

    cfg = {
        "security": {"trusted_keys": [read_signature(bundle.root).public_key.to_line()]},
        "camera": {"url": f"folder://{station.captures}?fps=0&pattern=*.png"},
        "reference": str(station.reference),
        "model": {"bundle": str(bundle.root), "backend": "onnxruntime", "warmup_runs": 1},
        "plc": {"url": port, "protocol": "ascii"},
        "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images")},
        "observe": {"metrics_listen": None, "log_level": "warning"},
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("model", ALL_MODELS)
def test_model_runs_in_the_daemon(model, tiny_bundles, small_station, tmp_path):
    if not shutil.which("socat"):
        pytest.skip("socat not installed (Debian package socat): the virtual PLC needs a pty pair")
    bundle = tiny_bundles(model)
    assert bundle.model_type == model
    seen = []
    with PtyPair(tmp_path) as pty:
        cfg = load_station(_station_yaml(tmp_path, small_station, bundle, pty.station))
        summary, log = run_with_plc(cfg, pty.plc, N_PARTS, on_part=seen.append)
    ids = list(range(1, N_PARTS + 1))
    # the PLC answered every trigger, with its own id, in order
    assert log.sent == ids and not log.unanswered and not log.mismatched and not log.garbage, log
    assert sorted(log.answers) == ids
    # every part got a real verdict (no engine fault, no failed alignment) and that verdict went to the PLC
    assert summary.parts == N_PARTS
    assert [o.part_id for o in seen] == [str(i) for i in ids]
    assert all(o.error is None and o.verdict in (Verdict.ACCEPT, Verdict.REJECT) for o in seen), \
        [(o.part_id, o.verdict.value, o.error) for o in seen]
    assert all(0.0 <= o.score <= 1.0 for o in seen)
    assert [log.answers[i] for i in ids] == [o.verdict.value for o in seen]
    # every part was recorded, judged by this bundle
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
        assert store.integrity_check() == []
    assert [r.part_id for r in rows] == [str(i) for i in ids]
    assert all(r.model_hash == bundle.model_hash and r.infer_ms is not None and r.score is not None for r in rows)
    assert [r.verdict for r in rows] == [o.verdict for o in seen]


@pytest.mark.parametrize("model", ALL_MODELS)
def test_model_converts_through_the_gate(model, tiny_bundles, small_station, labelled_station, tmp_path,
                                         monkeypatch):
    """Each model's bundle goes through ``edgead convert`` for x86-cpu: FP32 passes the accuracy gate on the
    labelled test split (the graph is the bundle's own, so the gate must find no change), and INT8 (explicit Q/DQ
    from the good training images) converts, runs on ONNX Runtime and reports its gate figures (written with
    ``force``: a model trained for four steps is not the place to judge INT8 accuracy)."""
    from edgead.convert.pipeline import ConvertOptions, convert

    bundle = tiny_bundles(model)
    data = _data(model, small_station, labelled_station)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    fp32 = convert(bundle.root, "x86-cpu", tmp_path / "fp32", ConvertOptions("fp32", check=data, latency_runs=0))
    gate = fp32.candidates[0].gate
    assert fp32.chosen == "fp32" and gate.passed and gate.agreement == 1.0, gate.reasons
    assert abs(gate.image_auroc_delta_pt) < 1e-6
    int8 = convert(bundle.root, "x86-cpu", tmp_path / "int8", ConvertOptions("int8", calib=data / "train" / "good",
                   check=data, force=True, latency_runs=0))
    gate = int8.candidates[0].gate
    assert int8.chosen == "int8" and gate is not None and 0.0 <= gate.agreement <= 1.0
    assert (tmp_path / "int8" / "model.onnx").is_file()
    assert list(cwd.iterdir()) == []  # ONNX Runtime's shape-inference dumps stay in the scratch folder


OPENVINO_RTOL = 5e-4
"""FP32 OpenVINO against FP32 ONNX Runtime, per output: max |diff| <= OPENVINO_RTOL * max |ONNX Runtime| (+1e-6); measured
here up to 4e-5 (other kernels sum in another order: the bound leaves room for other CPUs)."""


@pytest.mark.parametrize("model", ALL_MODELS)
def test_model_runs_on_openvino_as_on_onnxruntime(model, tiny_bundles, small_station):
    """Each model's graph gives the same outputs on OpenVINO (FP32) as on ONNX Runtime, on replayed captures of
    two sizes (the graph resizes inside), batch 1 and 3."""
    pytest.importorskip("openvino", reason="needs OpenVINO (extra [openvino])")
    import cv2
    import numpy as np

    from edgead.data import load_image
    from edgead.infer import BackendKind, open_backend

    bundle = tiny_bundles(model)
    color = bundle.meta.input.color
    frames = [load_image(p, color) for p in sorted(small_station.captures.glob("*.png"))[:3]]
    batches = [frames[0][None], np.stack(frames), cv2.resize(frames[1], (100, 80))[None]]
    batches[2] = batches[2] if batches[2].ndim == 4 else batches[2][..., None]
    with open_backend(bundle, BackendKind.ONNXRUNTIME) as ort, open_backend(bundle, BackendKind.OPENVINO) as ov:
        for images in batches:
            want, got = ort.infer(images), ov.infer(images)
            for name in ("score", "map", "raw_score", "raw_map"):
                a, b = getattr(want, name), getattr(got, name)
                assert b.shape == a.shape, (model, name)
                np.testing.assert_allclose(b, a, rtol=0, atol=OPENVINO_RTOL * float(np.abs(a).max()) + 1e-6,
                                           err_msg=f"{model} {name} {images.shape}")
