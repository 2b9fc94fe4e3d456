"""``edgead build-engine`` and ``edgead predict --engine`` on software twins of TensorRT and CUDA
(tests/unit/infer/twins.py).

The twins stand in for the station's TensorRT and GPU: the commands' own part (bundle -> precision, target checks,
header, file beside the bundle, messages, exit codes) is what is tested. tests/gpu/test_trt.py builds for real.
"""
from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from edgead.bundle import load_bundle
from edgead.cli import main
from edgead.convert import trt_build
from edgead.convert.targets import Precision, get_target
from edgead.errors import EngineError
from edgead.infer import cuda_mem
from edgead.infer.engine_file import read_engine_file

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm
from twins import CudaTwin, TensorRTTwin, builder_twin, twin_engine_file


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return cm.build_bundle(tmp_path_factory.mktemp("cli") / "stations" / "bundle")


@pytest.fixture
def twins(monkeypatch):
    monkeypatch.setattr(cuda_mem, "_API", CudaTwin("NVIDIA RTX 4000 Ada Generation", "8.9"))
    trt = builder_twin("10.3.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def test_builds_beside_the_bundle_with_its_header(bundle_dir, twins, capsys):
    assert main(["build-engine", "--bundle", str(bundle_dir), "--target", "rtx-ada"]) == 0
    engine = bundle_dir.parent / "model.engine"
    header, blob = read_engine_file(engine)
    bundle = load_bundle(bundle_dir)  # the engine is not inside: the bundle still verifies
    assert blob == b"engine-bytes"
    assert (header.model_hash, header.precision, header.target) == (bundle.model_hash, "fp32", "rtx-ada")
    assert (header.tensorrt_version, header.gpu_name, header.compute_capability) == (
        "10.3.0", "NVIDIA RTX 4000 Ada Generation", "8.9")
    assert (header.input_height, header.input_width, header.channels) == (*cm.HW, 3)
    assert engine.with_suffix(".timing.cache").is_file()
    out = capsys.readouterr().out
    assert f"engine {engine} (fp32) for rtx-ada, built from bundle {bundle.model_hash[:12]}" in out


def test_a_cpu_target_has_no_engine(bundle_dir, twins, capsys):
    assert main(["build-engine", "--bundle", str(bundle_dir), "--target", "x86-cpu", "--out",
                 str(bundle_dir.parent / "cpu.engine")]) == 4
    err = capsys.readouterr().err
    assert "target x86-cpu runs onnxruntime, not TensorRT" in err and "tensorrt target" in err
    assert not (bundle_dir.parent / "cpu.engine").exists()


def test_a_precision_the_target_does_not_allow_is_refused(bundle_dir, twins):
    fp16_only = dataclasses.replace(get_target("rtx-ada"), precisions=(Precision.FP16,))
    with pytest.raises(EngineError, match="is fp32; target rtx-ada allows fp16") as err:
        trt_build.build_bundle_engine(load_bundle(bundle_dir), bundle_dir.parent / "x.engine", fp16_only)
    assert "edgead convert --target rtx-ada" in str(err.value)


def test_without_tensorrt_it_names_the_extra(bundle_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["build-engine", "--bundle", str(bundle_dir), "--target", "rtx-ada", "--out",
                 str(bundle_dir.parent / "none.engine")]) == 3
    assert "edgead[trt]" in capsys.readouterr().err


def test_predict_runs_the_engine_and_says_so(bundle_dir, monkeypatch, tmp_path, capsys):
    """What the deploy self-test runs on a TensorRT station: same verdict and score as the bundle's ONNX graph."""
    cuda = CudaTwin()
    monkeypatch.setattr(cuda_mem, "_API", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", TensorRTTwin(cuda, ((1, 16, 16, 3), (1, 40, 40, 3), (1, 64, 64, 3))))
    bundle = load_bundle(bundle_dir)
    engine = twin_engine_file(tmp_path / "model.engine", bundle)
    image = cm.write_good_folder(tmp_path / "img", 1) / "good_000.png"
    rows = {}
    for name, extra in (("onnx", []), ("engine", ["--engine", str(engine)])):
        assert main(["predict", "--bundle", str(bundle_dir), *extra, "--json", str(image)]) == 0
        rows[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (rows["onnx"]["backend"], rows["engine"]["backend"]) == ("onnxruntime", "tensorrt")
    assert rows["engine"]["verdict"] == rows["onnx"]["verdict"]
    assert rows["engine"]["score"] == pytest.approx(rows["onnx"]["score"], abs=1e-6)
    assert cuda.ops_run == 6 and not cuda.live


def test_predict_refuses_an_engine_of_another_bundle(bundle_dir, twins, tmp_path, capsys):
    bundle = load_bundle(bundle_dir)
    engine = twin_engine_file(tmp_path / "old.engine", bundle, b"engine", model_hash="0" * 64)
    image = cm.write_good_folder(tmp_path / "img", 1) / "good_000.png"
    assert main(["predict", "--bundle", str(bundle_dir), "--engine", str(engine), str(image)]) == 4
    assert f"edgead build-engine --bundle {bundle.root}" in capsys.readouterr().err
