"""The CPU speed recipes: exact graph rewrites, bank reduction, and their wiring into ``--precision auto``."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import contract_model
from edgead.bundle import load_bundle
from edgead.convert.bank import greedy_coreset, nearest_neighbors, reduce_bank
from edgead.convert.knn import find_knn_head
from edgead.convert.optimize import fold_pads, optimize_graph
from edgead.convert.pipeline import ConvertOptions, convert
from edgead.errors import ConfigError


def _images(n=4, seed=5):
    rng = np.random.default_rng(seed)
    return np.stack([contract_model.good_image(rng) for _ in range(n)])


def _run(path_or_model, images):
    data = path_or_model.SerializeToString() if hasattr(path_or_model, "SerializeToString") else str(path_or_model)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(["raw_score", "raw_map"], {"image": images})


def test_exact_rewrites_keep_outputs(bundle_dir, tmp_path):
    src = load_bundle(bundle_dir).onnx_path
    res = optimize_graph(src, tmp_path / "opt.onnx", _images())
    assert {"knn_head", "separable_map"} <= set(res.applied), res.skipped
    assert "fold_pads" in res.skipped  # the test model pads inside its Convs
    ops = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert "TopK" in ops and "Gemm" in ops and "ReduceMin" not in ops and "Resize" in ops  # preprocess keeps its Resize
    test = _images(3, seed=9)
    for ref, new in zip(_run(src, test), _run(tmp_path / "opt.onnx", test)):
        np.testing.assert_allclose(new, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_bank_reduction_only_raises_distances(bundle_dir, tmp_path):
    src = load_bundle(bundle_dir).onnx_path
    res = optimize_graph(src, tmp_path / "b50.onnx", _images(), bank_keep=0.5)
    assert res.bank["rows_before"] == 256 and res.bank["rows_after"] == 128
    inits = {i.name: tuple(i.dims) for i in onnx.load(str(tmp_path / "b50.onnx")).graph.initializer}
    assert inits["edgead_knn_weight"] == (32, 128) and find_knn_head(onnx.load(str(src))).bank.shape == (256, 32)
    test = _images(3, seed=9)
    (_, ref), (_, new) = _run(src, test), _run(tmp_path / "b50.onnx", test)
    assert np.all(new >= ref - 1e-3 * ref.max())  # the nearest of a subset is never nearer (up to smoothing)


def test_fold_pads_moves_zero_pad_into_conv():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"), helper.make_node("Conv", ["p", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array([0, 0, 0, 1, 0, 0, 1, 2], np.int64), "pads"),
                     numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert fold_pads(model, x) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_greedy_coreset_and_neighbors():
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((200, 8)).astype(np.float32)
    idx = greedy_coreset(pts, 20)
    assert len(set(idx.tolist())) == 20
    nb = nearest_neighbors(pts, 3)
    assert nb.shape == (200, 3) and np.all(nb[:, 0] == np.arange(200))
    red = reduce_bank(pts, 0.25, num_neighbors=3)
    assert red.bank.shape == (50, 8) and red.neighbors.shape == (50, 3) and np.all(np.diff(red.index) > 0)
    with pytest.raises(ConfigError, match="must be in"):
        reduce_bank(pts, 0.0)
    with pytest.raises(ConfigError, match="neighbours"):
        reduce_bank(pts, 0.01, num_neighbors=9)


def test_auto_on_x86_tries_cpu_recipes(bundle_dir, calib_dir, check_dir, tmp_path):
    out = tmp_path / "auto"
    rep = convert(bundle_dir, "x86-cpu", out, ConvertOptions("auto", calib=calib_dir, check=check_dir, latency_runs=3))
    names = [c.name for c in rep.candidates]
    assert names[:6] == ["fp32", "int8", "fp32+opt", "fp32+opt+bank50", "fp32+opt+bank25", "int8+opt"]
    assert all(n.startswith("ov-") for n in names[6:])  # OpenVINO's, as this CPU allows (test_convert_openvino.py)
    exact = next(c for c in rep.candidates if c.name == "fp32+opt")
    assert exact.precision == "fp32" and exact.gate.passed and exact.gate.score_drift_max < 1e-3
    conv = load_bundle(out).meta.conversion
    assert conv.precision.value in ("fp32", "int8") and rep.chosen in names
    if rep.chosen.startswith("ov-"):
        assert conv.backend == "openvino"
    elif rep.chosen != conv.precision.value:
        assert conv.details["recipe"] == rep.chosen and conv.details["optimisation"]["applied"]
    if "bank" in rep.chosen:
        assert "threshold_transfer" in conv.details


def test_explicit_fp32_stays_plain(bundle_dir, tmp_path):
    rep = convert(bundle_dir, "x86-cpu", tmp_path / "f", ConvertOptions("fp32", latency_runs=0))
    assert [c.name for c in rep.candidates] == ["fp32"]
    assert "recipe" not in load_bundle(tmp_path / "f").meta.conversion.details
