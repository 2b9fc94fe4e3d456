"""``compile_engine`` against a recording twin of the TensorRT builder API, as 10.x and as 11.x expose it.

It checks which calls the build makes (network flags, precision flags, DLA, profile, workspace, timing cache) and
how parse and build failures are reported. It isolates the unit: a real build runs only in tests/gpu/test_trt.py.
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgead.convert.targets import Precision, get_target
from edgead.convert.trt_build import compile_engine, trtexec_command
from edgead.errors import EngineError, MissingExtraError

# test helpers, on sys.path through tests/conftest.py
from twins import builder_twin


def _graph(path, explicit: bool):
    """A one-node graph: plain FP32 (Relu), or with a Q/DQ pair (explicit INT8)."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 4])
    if explicit:
        inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                 numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes = [helper.make_node("QuantizeLinear", ["image", "s", "z"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "s", "z"], ["score"])]
    else:
        inits, nodes = [], [helper.make_node("Relu", ["image"], ["score"])]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits)), str(path))
    return path


def _build(monkeypatch, tmp_path, trt, *, explicit, precision, target="rtx-ada"):
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    onnx_path = _graph(tmp_path / "m.onnx", explicit)
    return compile_engine(onnx_path, get_target(target), precision, 3, cache_path=tmp_path / "m.timing.cache")


def test_plain_graph_as_fp16_on_10_sets_the_flag_not_strong_typing(monkeypatch, tmp_path):
    trt = builder_twin("10.3.0")
    assert _build(monkeypatch, tmp_path, trt, explicit=False, precision=Precision.FP16) == b"engine-bytes"
    tgt = get_target("rtx-ada")
    n = tgt.batch_size
    assert ("network", 0) in trt.calls and ("flag", "FP16") in trt.calls
    assert ("pool", "WORKSPACE", tgt.workspace_mib << 20) in trt.calls
    assert ("profile", ("image", (1, *tgt.min_input_hw, 3), (n, *tgt.opt_input_hw, 3),
                        (n, *tgt.max_input_hw, 3))) in trt.calls
    assert ("device", "GPU", -1) in trt.calls


@pytest.mark.parametrize("version", ["10.3.0", "11.4.0"])
def test_qdq_graph_is_built_strongly_typed_without_precision_flags(monkeypatch, tmp_path, version):
    trt = builder_twin(version)
    _build(monkeypatch, tmp_path, trt, explicit=True, precision=Precision.INT8)
    assert ("network", 1 << 1) in trt.calls
    assert not [c for c in trt.calls if c[0] == "flag"]


def test_plain_graph_as_fp16_on_11_says_to_convert_first(monkeypatch, tmp_path):
    with pytest.raises(EngineError, match="no BuilderFlag.FP16") as err:
        _build(monkeypatch, tmp_path, builder_twin("11.4.0"), explicit=False, precision=Precision.FP16)
    assert "edgead convert --precision fp16" in str(err.value)


def test_jetson_int8_runs_on_the_dla_with_gpu_fallback(monkeypatch, tmp_path):
    trt = builder_twin("10.3.0")
    _build(monkeypatch, tmp_path, trt, explicit=True, precision=Precision.INT8, target="jetson-orin-nx")
    assert ("device", "DLA", 0) in trt.calls and ("flag", "GPU_FALLBACK") in trt.calls


def test_jetson_fp32_stays_on_the_gpu(monkeypatch, tmp_path):
    trt = builder_twin("10.3.0")
    _build(monkeypatch, tmp_path, trt, explicit=False, precision=Precision.FP32, target="jetson-orin-nx")
    assert ("device", "GPU", -1) in trt.calls and not [c for c in trt.calls if c[0] == "flag"]


def test_the_timing_cache_is_kept_between_builds(monkeypatch, tmp_path):
    trt = builder_twin("10.3.0")
    _build(monkeypatch, tmp_path, trt, explicit=True, precision=Precision.INT8)
    assert (tmp_path / "m.timing.cache").read_bytes() == b"|built"
    _build(monkeypatch, tmp_path, trt, explicit=True, precision=Precision.INT8)
    assert [c[1] for c in trt.calls if c[0] == "cache in"] == [b"", b"|built"]


def test_parse_errors_are_reported_per_node(monkeypatch, tmp_path):
    trt = builder_twin(parse_errors=[(3, "/backbone/Conv_3", "unsupported auto_pad"), (7, "Mod_7", "no importer")])
    with pytest.raises(EngineError) as err:
        _build(monkeypatch, tmp_path, trt, explicit=False, precision=Precision.FP32)
    msg = str(err.value)
    assert "node 3 (/backbone/Conv_3): unsupported auto_pad; node 7 (Mod_7): no importer" in msg
    assert "opset (17)" in msg


def test_a_failed_build_names_target_precision_and_typing(monkeypatch, tmp_path):
    with pytest.raises(EngineError, match=r"for rtx-ada \(int8, strongly typed=True\)") as err:
        _build(monkeypatch, tmp_path, builder_twin(build_ok=False), explicit=True, precision=Precision.INT8)
    assert "workspace_mib" in str(err.value)
    assert not (tmp_path / "m.timing.cache").exists()


def test_without_tensorrt_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"edgead\[trt\]"):
        compile_engine(_graph(tmp_path / "m.onnx", False), get_target("rtx-ada"), Precision.FP32, 3,
                       cache_path=tmp_path / "c")


def test_trtexec_line_matches_the_build(tmp_path):
    tgt = get_target("jetson-orin-nx")
    line = trtexec_command("m.onnx", tmp_path / "m.engine", tgt, 3)
    h, w = tgt.max_input_hw
    assert f"--maxShapes=image:{tgt.batch_size}x{h}x{w}x3" in line and "--stronglyTyped" in line
    assert f"--memPoolSize=workspace:{tgt.workspace_mib}M" in line and "--useDLACore=0 --allowGPUFallback" in line
    assert "--fp16" not in line and "--int8" not in line and "--workspace=" not in line
