import numpy as np
import onnx
import pytest

from edgead.convert.gate import compare, enforce, load_check_set, run_gate
from edgead.errors import GateError
from edgead.contract.graph import Prediction
from edgead.infer.onnxrt import OnnxRuntimeBackend
from separation import assert_metric_at_least


def _pred(raw_score, raw_map):
    raw_score = np.asarray(raw_score, np.float32)
    return Prediction(score=np.clip(raw_score / 2, 0, 1), map=raw_map, raw_score=raw_score, raw_map=raw_map)


def test_compare_identical_passes():
    labels = np.array([0, 0, 1, 1])
    maps = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    masks = np.zeros((4, 8, 8), bool)
    masks[2:, 2:4, 2:4] = True
    maps[masks] += 2
    ref = _pred([0.1, 0.2, 1.5, 1.8], maps)
    rep = compare(labels, ref, ref, masks=masks, exact=True)
    assert rep.passed and rep.image_auroc_delta_pt == 0 and rep.pixel_auroc == 1.0 and rep.agreement == 1.0


def test_new_accepts_fail_and_new_rejects_are_counted():
    """Normalised score 0.5 is the threshold: a defect moved below it fails the gate; a good part moved above it is
    counted (the price of erring towards reject), and only the agreement limits it."""
    labels = np.array([0, 0, 0, 1, 1])
    maps = np.zeros((5, 4, 4), np.float32)
    ref = _pred([0.2, 0.4, 0.9, 1.02, 1.8], maps)  # scores 0.1 0.2 0.45 0.51 0.9
    cand = _pred([0.2, 1.01, 0.9, 0.98, 1.8], maps)  # good #2 -> 0.505 (reject), defect #4 -> 0.49 (accept)
    rep = compare(labels, ref, cand, min_agreement=0.0, exact=True)  # exact: the sample-size bounds aside
    assert (rep.new_accepts, rep.new_rejects) == (1, 1) and not rep.passed
    assert "1 defective image(s) rejected by FP32 are accepted" in rep.reasons[0]
    assert "new accepts 1 / new rejects 1" in rep.summary()
    rep = compare(labels, ref, _pred([0.2, 1.01, 0.9, 1.02, 1.8], maps), min_agreement=0.0,
                  max_new_reject_pct=50.0, exact=True)
    assert (rep.new_accepts, rep.new_rejects) == (0, 1) and rep.passed
    # 1 of 3 good images is 33 %: above the default 10 % the gate refuses
    rep = compare(labels, ref, _pred([0.2, 1.01, 0.9, 1.02, 1.8], maps), min_agreement=0.0, exact=True)
    assert not rep.passed and rep.reasons == ["1 of 3 good image(s) accepted by FP32 are rejected by the candidate "
                                              "(33.3% > 10%)"]


def test_pixel_auroc_drop_alone_fails():
    labels = np.array([0, 0, 1, 1])
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 8, 8), bool)
    masks[2:, 2:4, 2:4] = True
    good_map = rng.random((4, 8, 8)).astype(np.float32) + 3 * masks
    ref = _pred([0.1, 0.2, 1.5, 1.8], good_map)
    cand = _pred([0.1, 0.2, 1.5, 1.8], rng.random((4, 8, 8)).astype(np.float32))  # image ranking kept, maps ruined
    rep = compare(labels, ref, cand, masks=masks)
    assert not rep.passed and rep.image_auroc_delta_pt == 0
    assert "pixel AUROC dropped" in rep.reasons[0]
    with pytest.raises(GateError, match="pixel AUROC dropped"):
        enforce(rep, what="int8", force=False)
    assert enforce(rep, what="int8", force=True) is rep


def test_broken_artifact_refused_and_forced(bundle_dir, check_dir, tmp_path):
    # Deliberately broken artifact: the raw score and map come out negated (ranking inverted).
    model = onnx.load(str(bundle_dir / "model.onnx"))
    for name in ("raw_score", "raw_map"):
        for node in model.graph.node:
            node.input[:] = [f"{name}_ok" if t == name else t for t in node.input]
            node.output[:] = [f"{name}_ok" if t == name else t for t in node.output]
        model.graph.node.append(onnx.helper.make_node("Neg", [f"{name}_ok"], [name], name=f"break_{name}"))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    check = load_check_set(check_dir, channels=3, map_hw=(32, 32))
    with OnnxRuntimeBackend(bundle_dir / "model.onnx") as ref, OnnxRuntimeBackend(broken) as cand:
        rep = run_gate(ref, cand, check, artifact=broken, latency_runs=3)
    assert_metric_at_least("image_auroc_ref", rep.image_auroc_ref, 0.8)
    assert not rep.passed and rep.size_bytes > 0 and rep.latency_median_ms > 0
    with pytest.raises(GateError, match="failed the accuracy gate"):
        enforce(rep, what="broken", force=False)
