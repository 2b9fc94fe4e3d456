import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgead.calibration.dataset import load_calibration_set
from edgead.calibration.quantize import CalibMethod, Int8Scope, quantize_int8
from edgead.contract.graph import NORM_INITIALIZERS
from edgead.convert.graph import keep_high_resolution, split_regions
from edgead.errors import CalibrationError, EngineError


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


def _dq_fed_convs(model) -> set[str]:
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in model.graph.node if n.op_type == "Conv" and n.input[0] in dq_out}


def test_unknown_scope(setup, tmp_path):
    src, calib = setup
    with pytest.raises(CalibrationError, match="unknown INT8 scope"):
        quantize_int8(src, tmp_path / "m8.onnx", calib, scope="stride3")


def test_stride8_scope_needs_a_stride8_layer(setup, tmp_path):
    """The tiny backbone stops at stride 2: the error says so and names the other scope."""
    src, calib = setup
    with pytest.raises(EngineError, match="stride 8") as err:
        quantize_int8(src, tmp_path / "m8.onnx", calib, scope=Int8Scope.STRIDE8)
    assert "--int8-scope backbone" in err.value.hint


def test_keep_high_resolution_cuts_at_the_stride(setup, contract_model, tmp_path):
    """On the tiny backbone (conv s1, conv s2, conv s1) at stride 2: the first conv, its BN and ReLU stay FP32."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, _ = setup
    pre = tmp_path / "pre.onnx"
    quant_pre_process(str(src), str(pre), skip_optimization=True)
    model = onnx.load(str(pre))
    regions = split_regions(model)
    narrowed = keep_high_resolution(model, regions, contract_model.HW[0], 2)
    convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name in regions.backbone]
    assert len(convs) == 3
    assert convs[0] not in narrowed.backbone and convs[0] in narrowed.kept
    assert set(convs[1:]) <= set(narrowed.backbone)
    assert set(narrowed.backbone) < set(regions.backbone) and narrowed.rule == f"{regions.rule}+stride2"


def test_stride8_scope_on_the_real_backbone(padim_bundle, small_station, tmp_path):
    """EfficientNet-Lite0 in a PaDiM bundle: stem, blocks.0 and blocks.1 (strides 2-4) stay FP32, blocks.2 on
    (stride 8) get Q/DQ; the whole-backbone scope quantizes the stem too."""
    spec = padim_bundle.bundle.input_spec
    calib = load_calibration_set(small_station.aligned / "train" / "good", channels=spec.channels,
                                 resize_hw=(spec.height, spec.width))
    src = padim_bundle.bundle.onnx_path
    full = _dq_fed_convs(onnx.load(str(quantize_int8(src, tmp_path / "full.onnx", calib).path)))
    res = quantize_int8(src, tmp_path / "s8.onnx", calib, scope="stride8")
    s8 = _dq_fed_convs(onnx.load(str(res.path)))
    assert res.scope is Int8Scope.STRIDE8 and res.rule.endswith("+stride8")
    assert any("/stem/" in n for n in full) and not any(("/stem/" in n or "/blocks.0/" in n or "/blocks.1/" in n)
                                                         for n in s8)
    assert any("/blocks.2/" in n for n in s8) and s8 < full


def test_feature_taps_stay_fp32_and_openvino_scores_the_int8_graph_as_onnxruntime(padim_bundle, small_station,
                                                                                  tmp_path):
    """EfficientNet-Lite0 PaDiM: the block outputs the head taps (pooling, scaling, concatenation) read FP32 tensors,
    never a dequantized one, and OpenVINO's INT8 run scores as ONNX Runtime's. Before, the taps were quantized too
    and OpenVINO returned one score for every image (the demo's ov-int8: AUROC 100 -> 43)."""
    ov = pytest.importorskip("openvino", reason="needs OpenVINO (extra [openvino])")
    spec = padim_bundle.bundle.input_spec
    calib = load_calibration_set(small_station.aligned / "train" / "good", channels=spec.channels,
                                 resize_hw=(spec.height, spec.width))
    res = quantize_int8(padim_bundle.bundle.onnx_path, tmp_path / "m8.onnx", calib)
    model = onnx.load(str(res.path))
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    quantized = set(res.quantized)
    readers = [n.name for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
               and n.name not in quantized and dq_out & set(n.input)]
    assert all("bias_correction" in r for r in readers)  # only the INT8 error's correction reads rounded values
    taps = [n for n in model.graph.node if n.op_type in ("AveragePool", "Concat", "Resize") and "/blocks" not in n.name]
    assert taps and not quantized & {n.name for n in taps}
    images = calib.images[:6]
    want = ort.InferenceSession(str(res.path)).run(["raw_score"], {"image": images})[0].ravel()
    compiled = ov.Core().compile_model(str(res.path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = np.concatenate([compiled(images[i:i + 1])[compiled.output("raw_score")].ravel() for i in range(len(images))])
    # INT8 kernels round differently on each runtime; a broken graph is off by several times the score
    assert np.abs(got - want).max() <= 0.15 * float(np.abs(want).max())
