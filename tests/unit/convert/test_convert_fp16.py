import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from edgead.convert.fp16 import convert_fp16
from edgead.contract.graph import NORM_INITIALIZERS
from edgead.convert.graph import split_regions


def test_fp16_graph_runs_and_keeps_head_fp32(bundle_dir, tmp_path):
    src = bundle_dir / "model.onnx"
    res = convert_fp16(src, tmp_path / "m16.onnx")
    assert res.rule == "scope" and res.lowered
    assert all("/backbone/" in n for n in res.lowered)
    model = onnx.load(str(res.path))
    inits = {i.name: i.data_type for i in model.graph.initializer}
    assert all(inits[n] == TensorProto.FLOAT for n in NORM_INITIALIZERS)
    fp16_tensors = {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT16}
    lowered = set(res.lowered)
    for node in model.graph.node:  # no FP16 weight feeds a node outside the backbone
        if node.name not in lowered and node.op_type != "Cast":
            assert not fp16_tensors & set(node.input), node.name
    images = np.random.default_rng(0).integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)
    a = ort.InferenceSession(str(src)).run(None, {"image": images})
    b = ort.InferenceSession(str(res.path)).run(None, {"image": images})
    for x, y in zip(a, b):
        assert y.dtype == np.float32 and x.shape == y.shape
        assert np.allclose(x, y, atol=1e-2 * max(1.0, float(np.abs(x).max())))


def test_structural_rule_without_scope_names(bundle_dir):
    model = onnx.load(str(bundle_dir / "model.onnx"))
    for node in model.graph.node:
        node.name = node.name.replace("backbone", "trunk")
    regions = split_regions(model)
    assert regions.rule == "structure"
    ops = {n.name: n.op_type for n in model.graph.node}
    assert sum(ops[n] == "Conv" for n in regions.backbone) == 3  # the blur Conv after the head stays FP32
    assert not any(ops[n] in ("MatMul", "ReduceMin", "Sqrt") for n in regions.backbone)
