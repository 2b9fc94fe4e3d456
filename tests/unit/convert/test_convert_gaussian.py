"""Feature-subset recipe for Gaussian (PaDiM-style) heads: the marginal equals fitting on the subset; layers cut."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgead.bundle import load_bundle
from edgead.convert.gaussian import choose_channels, find_gaussian_head, marginal_inverse, subset_features
from edgead.convert.onnx_edit import run_with
from edgead.convert.recipes import CPU_RECIPES, make_recipe
from edgead.errors import EngineError

EPS = 0.01
INDEX = np.array([0, 2, 3, 5, 7, 9], np.int64)  # 3 channels of layer 1 (4 ch), 3 of layer 2 (6 ch)
D, P = len(INDEX), 36


def _fit(x: np.ndarray):
    """PaDiM's fit per position: mean and inverse of (covariance + eps I); x is [N, P, d]."""
    mean = x.mean(0)
    c = x - mean
    cov = np.einsum("npi,npj->pij", c, c) / (len(x) - 1) + EPS * np.eye(x.shape[2])
    return mean.astype(np.float32), np.linalg.inv(cov).astype(np.float32)


def _mahalanobis2(x, mean, inv):
    delta = x - mean
    return np.einsum("npi,pij,npj->np", delta, inv, delta)


def _graph(mean: np.ndarray, inv: np.ndarray):
    """uint8 image [N, 6, 6, 3] -> two 3x3-conv layers -> Concat -> Gather -> [N, P, d] -> d^2 per position."""
    rng = np.random.default_rng(0)
    c = lambda name, value: numpy_helper.from_array(np.asarray(value), name)  # noqa: E731
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["f", "scale"], ["fs"]),
        helper.make_node("Transpose", ["fs"], ["x"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x", "w1"], ["l1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["l1", "w2"], ["l2"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["l1", "l2"], ["cat"], axis=1),
        helper.make_node("Gather", ["cat", "index"], ["emb"], axis=1),
        helper.make_node("Transpose", ["emb"], ["embt"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["embt", "shape"], ["flat"]),
        helper.make_node("Sub", ["flat", "mean"], ["delta"]),
        helper.make_node("Transpose", ["delta"], ["deltat"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["deltat", "inv"], ["mm"]),
        helper.make_node("Mul", ["mm", "deltat"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axes"], ["d2"], keepdims=0),
        helper.make_node("Transpose", ["d2"], ["raw_map"], perm=[1, 0]),
        helper.make_node("ReduceMax", ["raw_map"], ["raw_score"], axes=[1], keepdims=0),
    ]
    inits = [c("w1", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)), c("scale", np.float32(1 / 255)),
             c("w2", rng.standard_normal((6, 4, 3, 3)).astype(np.float32)), c("index", INDEX),
             c("shape", np.array([0, -1, D], np.int64)), c("mean", mean), c("inv", inv),
             c("axes", np.array([-1], np.int64))]
    g = helper.make_graph(nodes, "padim_like", [helper.make_tensor_value_info("image", TensorProto.UINT8,
                                                                              [None, 6, 6, 3])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("raw_score", "raw_map")],
                          initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what ONNX Runtime reads
    return model


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 255, (n, 6, 6, 3), dtype=np.uint8)


def _features(model, images):
    emb = run_with(model, {"image": images}, ["flat"])["flat"]
    return emb.astype(np.float64)  # [N, P, d]


def test_marginal_inverse_equals_fitting_on_the_subset():
    x = np.random.default_rng(1).standard_normal((40, 3, 6)) @ np.random.default_rng(2).standard_normal((6, 6))
    _, inv = _fit(x)
    keep = np.array([0, 2, 5])
    _, inv_sub = _fit(x[:, :, keep])
    np.testing.assert_allclose(marginal_inverse(inv, keep), inv_sub, rtol=1e-4, atol=1e-5)


def test_choose_channels_shallow_first_and_snapped_to_a_layer():
    index = np.array([0, 2, 3, 5, 7, 9, 11, 12, 13, 14])  # layers of 4, 6, 8 channels
    sizes = [4, 6, 8]
    assert list(choose_channels(index, sizes, 3)) == [0, 1, 2]  # exactly layer 1
    assert list(choose_channels(index, sizes, 6)) == [0, 1, 2, 3, 4, 5]  # layers 1 + 2, layer 3 cut whole
    assert list(choose_channels(index, sizes, 4)) == [0, 1, 2, 3]  # 3 would drop 25 %: no snap
    assert list(choose_channels(index, sizes, 10)) == list(range(10))


def test_subset_graph_equals_padim_fitted_on_the_subset():
    probe = _graph(np.zeros((P, D), np.float32), np.tile(np.eye(D, dtype=np.float32), (P, 1, 1)))
    train = _features(probe, _images(30, 1))
    model = _graph(*_fit(train))
    assert find_gaussian_head(model).d == D
    details = subset_features(model, 0.5, _images(2, 3))
    assert details == {"channels_before": 6, "channels_after": 3, "layers_cut": 1, "rule": details["rule"]}
    assert "w2" not in {i.name for i in model.graph.initializer}  # the second layer is no longer computed
    keep = np.array([0, 1, 2])  # positions of INDEX's layer-1 channels
    mean_s, inv_s = _fit(train[:, :, keep])
    test = _images(3, 4)
    want = _mahalanobis2(_features(probe, test)[:, :, keep], mean_s, inv_s)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["raw_map"], {"image": test})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_no_gaussian_head_means_the_recipe_does_not_apply(bundle_dir, tmp_path):
    src = load_bundle(bundle_dir).onnx_path
    with pytest.raises(EngineError, match="no Gaussian head"):
        subset_features(onnx.load(str(src)), 0.5, np.zeros((1, 40, 40, 3), np.uint8))
    rng = np.random.default_rng(5)
    images = rng.integers(0, 255, (2, 40, 40, 3), dtype=np.uint8)
    assert make_recipe(CPU_RECIPES["fp32+opt+feat50"], src, tmp_path, images) is None


def test_scale_transfer_for_a_channel_subset():
    from edgead.convert.transfer import TransferModel, fit_scale, transfer_thresholds
    from edgead.contract.graph import Prediction
    from edgead.contract.thresholds import Calibration, Normalisation, ThresholdMethod

    rng = np.random.default_rng(0)
    fp32 = np.sqrt(rng.chisquare(100, 32))
    sc = fit_scale(np.sqrt(0.49) * fp32, fp32)
    assert abs(sc.a - 0.49) < 1e-9 and abs(sc.to_candidate(10.0) - 7.0) < 1e-9
    assert CPU_RECIPES["fp32+opt+feat50"].transfer_model is TransferModel.SCALE
    assert CPU_RECIPES["fp32+opt"].transfer_model is TransferModel.OFFSET
    maps = rng.random((32, 4, 4)) + 1.0
    ref = Prediction(score=fp32, map=maps, raw_score=fp32, raw_map=maps)
    cand = Prediction(score=fp32, map=maps, raw_score=0.5 * fp32, raw_map=0.5 * maps)
    cal = Calibration(Normalisation(8.0, 12.0), Normalisation(1.0, 2.0), ThresholdMethod.FRR, 0.01, 32, 0)
    moved, details = transfer_thresholds(cal, ref, cand, model=TransferModel.SCALE)
    assert moved.image.thr == pytest.approx(6.0) and moved.pixel.thr == pytest.approx(1.0)
    assert details["model"] == "cand^2 = a * fp32^2"
