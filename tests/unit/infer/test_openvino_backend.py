"""The OpenVINO backend: the same outputs as ONNX Runtime on a contract graph, chosen by the bundle, and a station
refuses a bundle converted for OpenVINO when OpenVINO is not installed, naming the extra."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import contract_model  # tests/unit/convert, on sys.path through tests/conftest.py
from edgead.bundle import load_bundle, update_bundle
from edgead.errors import EngineError, MissingExtraError
from edgead.infer import BackendKind, bundle_runtime, open_backend

pytest.importorskip("openvino", reason="needs OpenVINO (extra [openvino])")

RTOL = 5e-4
"""FP32 OpenVINO against FP32 ONNX Runtime: max |diff| <= RTOL * max |ONNX Runtime| per output (measured here on the
contract graph and the registry's models: 3e-6 to 4e-5; other CPUs sum in another order)."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(contract_model.build_bundle(tmp_path_factory.mktemp("ov") / "bundle"))


def _converted(bundle, tmp_path, **openvino):
    meta = bundle.meta.to_dict()
    meta["conversion"] = {"target": "x86-cpu", "backend": "openvino", "precision": "fp32",
                          "source_bundle_sha256": bundle.model_hash, "openvino": openvino, "gate": None,
                          "forced": False}
    return update_bundle(bundle, meta, out_dir=tmp_path / "converted")


def _images(n=3, hw=(40, 48)):
    rng = np.random.default_rng(5)
    return np.stack([contract_model.good_image(rng, hw) for _ in range(n - 1)] +
                    [contract_model.defect_image(rng, hw)[0]])


def test_openvino_matches_onnxruntime(bundle):
    images = _images()
    with open_backend(bundle, BackendKind.ONNXRUNTIME) as ort, open_backend(bundle, BackendKind.OPENVINO) as ov:
        assert ov.name == "openvino" and ov.input_spec == ort.input_spec
        want, got = ort.infer(images), ov.infer(images)
        for name in ("score", "map", "raw_score", "raw_map"):
            a, b = getattr(want, name), getattr(got, name)
            assert a.shape == b.shape and b.dtype == np.float32
            np.testing.assert_allclose(b, a, rtol=0, atol=RTOL * float(np.abs(a).max()) + 1e-7, err_msg=name)
        other = ov.infer(_images(1, hw=(64, 80)))  # any frame size: the graph resizes
        assert other.map.shape == want.map.shape[:0] + (1, *want.map.shape[1:])


def test_bundle_converted_for_openvino_opens_openvino(bundle, tmp_path):
    plain_kind, _ = bundle_runtime(bundle.meta)
    assert plain_kind is BackendKind.ONNXRUNTIME
    converted = _converted(bundle, tmp_path, inference_precision="bf16")
    assert bundle_runtime(converted.meta) == (BackendKind.OPENVINO, {"inference_precision": "bf16"})
    with open_backend(converted.root) as eng:
        assert eng.name == "openvino" and eng.precision.value == "bf16"
    with open_backend(converted.root, "openvino", inference_precision="f32") as eng:
        assert eng.precision.value == "f32"  # the caller's option wins
    with open_backend(converted.root, "onnxruntime") as eng:
        assert eng.name == "onnxruntime"  # an explicit backend is obeyed


def test_missing_openvino_is_refused_naming_the_extra(bundle, tmp_path, monkeypatch):
    converted = _converted(bundle, tmp_path)
    real = importlib.util.find_spec
    monkeypatch.delitem(__import__("sys").modules, "openvino", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(MissingExtraError) as err:
        open_backend(converted.root)
    assert err.value.extra == "openvino"
    assert "converted for x86-cpu on openvino" in err.value.message
    assert "edgead[openvino]" in err.value.hint
    with open_backend(bundle.root) as eng:  # an unconverted bundle still runs on ONNX Runtime
        assert eng.name == "onnxruntime"


def test_bad_input_and_options(bundle):
    with pytest.raises(EngineError, match="inference precision 'fp64'"):
        open_backend(bundle, BackendKind.OPENVINO, inference_precision="fp64")
    with open_backend(bundle, BackendKind.OPENVINO) as eng:
        with pytest.raises(EngineError, match=r"uint8 \[N,H,W,3\]"):
            eng.infer(np.zeros((1, 32, 32, 3), np.float32))
        with pytest.raises(EngineError, match=r"uint8 \[N,H,W,3\]"):
            eng.infer(np.zeros((1, 32, 32, 1), np.uint8))
    with pytest.raises(EngineError, match="does not exist"):
        open_backend(bundle.root / "nope.onnx", BackendKind.OPENVINO)


def test_station_check_refuses_the_bundle_without_openvino(bundle, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from edgead.cli import main
    from edgead.errors import ExitStatus

    example = Path(__file__).resolve().parents[3] / "systemd" / "station.yaml.example"
    converted = _converted(bundle, tmp_path)
    args = ["check", str(example), "--set", f"model.bundle={converted.root}", "--set", "reference=null",
            "--set", "rois=[]", "--set", "security.trusted_keys=[]", "--set", "security.allow_unsigned=true"]
    assert main(args) == ExitStatus.OK
    assert "ok: runtime openvino" in capsys.readouterr().out
    real = importlib.util.find_spec
    monkeypatch.delitem(__import__("sys").modules, "openvino", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert main(args) == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert "converted for x86-cpu on openvino" in err and "edgead[openvino]" in err
