"""INT8 feature bias correction (calibration/correction.py): where it goes and what it removes."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgead.calibration.correction import (Int8Correction, _batch_axis, correct_feature_bias, int8_exits)
from edgead.calibration.quantize import quantize_int8
from edgead.convert.onnx_edit import Probe
from edgead.errors import CalibrationError


def _qdq(name: str, scale: float) -> list:
    """Q/DQ nodes of tensor ``name`` (int8, zero point 0)."""
    return [helper.make_node("QuantizeLinear", [name, "s", "z"], [f"{name}_q"], name=f"{name}_Q"),
            helper.make_node("DequantizeLinear", [f"{name}_q", "s", "z"], [f"{name}_dq"], name=f"{name}_DQ")]


def _pair(tmp_path):
    """An FP32 graph x -> Transpose -> Reshape [N*H*W, C] -> ReduceSum head, and its Q/DQ twin."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 2])
    fp = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t1"], name="T", perm=[0, 2, 3, 1]),
         helper.make_node("Reshape", ["t1", "shape"], ["t2"], name="R"),
         helper.make_node("ReduceSum", ["t2"], ["y"], name="head", keepdims=0)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    s = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    q = helper.make_graph(
        _qdq("x", 0.05) + [helper.make_node("Transpose", ["x_dq"], ["t1"], name="T", perm=[0, 2, 3, 1])]
        + _qdq("t1", 0.05) + [helper.make_node("Reshape", ["t1_dq", "shape"], ["t2"], name="R")]
        + _qdq("t2", 0.05) + [helper.make_node("ReduceSum", ["t2_dq"], ["y"], name="head", keepdims=0),
                              helper.make_node("Shape", ["t2_dq"], ["t2_shape"], name="shape_only")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("t2_shape", TensorProto.INT64, None)], [shape, s, z])
    paths = []
    for name, g in (("fp32", fp), ("int8", q)):
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.save(m, str(tmp_path / f"{name}.onnx"))
        paths.append(tmp_path / f"{name}.onnx")
    return paths


def test_batch_axis_literal_shapes():
    assert _batch_axis((1, 100, 32, 28), (2, 100, 32, 28)) == 0
    assert _batch_axis((1, 1, 896, 100), (1, 2, 896, 100)) == 1  # PaDiM: [T, N, P, d]
    assert _batch_axis((896, 100), (1792, 100)) is None  # batch merged into the rows
    assert _batch_axis((1, 4), (1, 4, 1)) is None


def test_exits_skip_requantized_and_shape_readers(tmp_path):
    _, q = _pair(tmp_path)
    assert int8_exits(onnx.load(str(q))) == ["t2_dq"]


def test_correction_moves_above_a_batch_merging_reshape_and_removes_the_mean_error(tmp_path):
    fp, q = _pair(tmp_path)
    rng = np.random.default_rng(0)
    # 0.05 steps: values at +0.02 round down to 0, a systematic error the correction must remove
    images = (np.round(rng.normal(0, 1, (12, 2, 3, 3)) / 0.05) * 0.05 + 0.02).astype(np.float32)
    got, skipped = correct_feature_bias(fp, q, images)
    assert not skipped
    assert [c.tensor for c in got] == ["t1_dq"] and got[0].shape == (1, 3, 3, 2)
    assert got[0].rms == pytest.approx(0.02, abs=1e-4)
    model = onnx.load(str(q))
    sub = next(n for n in model.graph.node if n.op_type == "Sub")
    assert sub.input[0] == "t1_dq" and next(n for n in model.graph.node if n.name == "t1_Q").input[0] == "t1"
    with Probe(onnx.load(str(fp)), ["t1"]) as a, Probe(model, [sub.output[0]]) as b:
        mean_fp = np.mean([a(images[i:i + 1])["t1"] for i in range(len(images))], axis=0)
        mean_q = np.mean([b(images[i:i + 1])[sub.output[0]] for i in range(len(images))], axis=0)
    assert np.abs(mean_q - mean_fp).max() < 1e-5  # on the calibration images the mean error is gone
    # any batch size still runs, and the head's sum is closer to the FP32 one than without the correction
    (tmp_path / "plain").mkdir()
    _, plain = _pair(tmp_path / "plain")
    with Probe(onnx.load(str(fp)), ["y"]) as a, Probe(model, ["y"]) as b, Probe(onnx.load(str(plain)), ["y"]) as c:
        ref = a(images[:5])["y"]
        assert b(images[:5])["y"].shape == ref.shape
        assert abs(b(images[:5])["y"] - ref).max() < abs(c(images[:5])["y"] - ref).max()


def test_needs_two_images(tmp_path):
    fp, q = _pair(tmp_path)
    with pytest.raises(CalibrationError, match="at least 2 good images"):
        correct_feature_bias(fp, q, np.zeros((1, 2, 3, 3), np.float32))


def test_quantize_int8_corrects_by_default_and_records_it(setup, tmp_path):
    src, calib = setup
    plain = quantize_int8(src, tmp_path / "plain.onnx", calib, correction="none")
    corr = quantize_int8(src, tmp_path / "corr.onnx", calib)
    assert plain.correction is Int8Correction.NONE and not plain.corrections
    assert corr.correction is Int8Correction.FEATURE_MEAN and corr.corrections
    details = corr.details()
    assert details["int8_correction"]["kind"] == "feature-mean"
    assert details["int8_correction"]["points"][0]["tensor"] == corr.corrections[0].tensor
    ops = [n.op_type for n in onnx.load(str(corr.path)).graph.node]
    assert ops.count("Sub") == [n.op_type for n in onnx.load(str(plain.path)).graph.node].count("Sub") + \
        len(corr.corrections)
    with pytest.raises(CalibrationError, match="unknown INT8 correction"):
        quantize_int8(src, tmp_path / "x.onnx", calib, correction="median")


def test_an_exit_without_a_batch_axis_is_left_uncorrected(tmp_path):
    """Rows of two per image (a Concat on the batch axis, as AE-kNN has): listed, not corrected, no error."""
    s = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    graphs = {
        "fp32": [helper.make_node("Concat", ["x", "x"], ["c"], name="C", axis=0),
                 helper.make_node("ReduceSum", ["c"], ["y"], name="head", keepdims=0)],
        "int8": _qdq("x", 0.05) + [helper.make_node("Concat", ["x_dq", "x_dq"], ["c"], name="C", axis=0)]
        + _qdq("c", 0.05) + [helper.make_node("ReduceSum", ["c_dq"], ["y"], name="head", keepdims=0)],
    }
    for name, nodes in graphs.items():
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [s, z])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.save(m, str(tmp_path / f"{name}.onnx"))
    got, skipped = correct_feature_bias(tmp_path / "fp32.onnx", tmp_path / "int8.onnx",
                                        np.ones((4, 4), np.float32))
    assert got == [] and skipped == ["c_dq"]
