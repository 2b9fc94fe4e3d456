import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgead.calibration.dataset import load_calibration_set
from edgead.calibration.quantize import CalibMethod, quantize_int8
from edgead.convert.graph import NORM_INITIALIZERS
from edgead.errors import CalibrationError

_spec = importlib.util.spec_from_file_location(
    "contract_model", Path(__file__).parents[1] / "convert" / "contract_model.py")
cm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cm)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    bundle = cm.build_bundle(root / "bundle")
    calib = load_calibration_set(cm.write_good_folder(root / "calib", 16), channels=3)
    return bundle / "model.onnx", calib


@pytest.mark.parametrize("method", list(CalibMethod))
def test_qdq_graph_in_backbone_only(setup, tmp_path, method):
    src, calib = setup
    res = quantize_int8(src, tmp_path / "m8.onnx", calib, method=method)
    model = onnx.load(str(res.path))
    nodes = {n.name: n for n in model.graph.node}
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # Symmetric int8: every zero point is 0.
    zps = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("zero_point")]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    # The excluded head has no Q/DQ: no DequantizeLinear output feeds the distance head, blur or normalisation.
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    head_ops = ("MatMul", "ReduceMin", "Sqrt", "Conv", "ReduceMax", "Clip", "Div")
    for name in res.excluded:
        node = nodes.get(name)
        if node is not None and node.op_type in head_ops:
            assert not dq_out & set(node.input), name
    inits = {i.name: i.data_type for i in model.graph.initializer}
    assert all(inits[n] == onnx.TensorProto.FLOAT for n in NORM_INITIALIZERS)
    assert {p.key for p in model.metadata_props} >= {"edgead.input_height", "edgead.input_width"}
    a = ort.InferenceSession(str(src)).run(None, {"image": calib.images[:4]})
    b = ort.InferenceSession(str(res.path)).run(None, {"image": calib.images[:4]})
    for x, y in zip(a, b):
        assert y.dtype == np.float32 and np.abs(x - y).max() <= 0.1 * max(1.0, float(np.abs(x).max()))


def test_unknown_method(setup, tmp_path):
    src, calib = setup
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        quantize_int8(src, tmp_path / "m8.onnx", calib, method="kl")
