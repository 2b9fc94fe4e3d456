import json

import numpy as np
import onnx
import pytest

from edgead.bundle import load_bundle
from edgead.convert.pipeline import REPORT_JSON, REPORT_MD, ConvertOptions, convert
from edgead.errors import CalibrationError, ConfigError, GateError
from edgead.infer.onnxrt import OnnxRuntimeBackend


# The check set of these tests (10 good, 10 defective images) can show a lossy candidate's extra escape and
# false-reject rates below 26 % and 29 % at most (convert/evidence.py): the tests accept that allowance.
SMALL_CHECK = {"max_extra_escape_pct": 30.0, "max_extra_false_reject_pct": 30.0}


def test_fp16_for_jetson_writes_bundle_and_trtexec(bundle_dir, check_dir, tmp_path):
    out = tmp_path / "orin"
    rep = convert(bundle_dir, "jetson-orin-nx", out, ConvertOptions("fp16", check=check_dir, latency_runs=3,
                                                                    **SMALL_CHECK))
    b = load_bundle(out)
    conv = b.meta.conversion
    assert conv.precision.value == "fp16" and conv.target == "jetson-orin-nx"
    assert conv.source_bundle_sha256 == load_bundle(bundle_dir).model_hash
    assert conv.gate["passed"] and abs(conv.gate["image_auroc_delta_pt"]) <= 0.5
    assert "trtexec --onnx=" in rep.trtexec and "--useDLACore=0" in rep.trtexec
    assert "build-engine" in rep.engine  # no TensorRT on this machine
    assert "trtexec" in (out / REPORT_MD).read_text()
    assert json.loads((out / REPORT_JSON).read_text())["chosen"] == "fp16"
    with OnnxRuntimeBackend(b.onnx_path) as eng:
        pred = eng.infer(np.zeros((1, 40, 40, 3), np.uint8))
    assert pred.score.dtype == np.float32


def test_int8_qdq_bundle(bundle_dir, calib_dir, check_dir, tmp_path):
    out = tmp_path / "cpu8"
    rep = convert(bundle_dir, "x86-cpu", out, ConvertOptions("int8", calib=calib_dir, check=check_dir, latency_runs=3,
                                                            **SMALL_CHECK))
    b = load_bundle(out)
    conv = b.meta.conversion
    assert conv.details["calibration"]["method"] == "minmax" and len(conv.details["calibration"]["fingerprint"]) == 64
    assert any("/model/MatMul" == n for n in conv.details["excluded_nodes"])
    assert conv.gate["passed"], conv.gate
    assert rep.trtexec is None
    ops = {n.op_type for n in onnx.load(str(b.onnx_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # the defaults: feature bias correction and a guard band below the transferred threshold, both recorded
    assert conv.details["int8_correction"]["kind"] == "feature-mean" and conv.details["int8_correction"]["points"]
    guard = conv.details["threshold_transfer"]["guard_band"]
    assert guard["kind"] == "shortfall" and guard["image"] >= 0.0


def test_int8_without_correction_or_guard_band(bundle_dir, calib_dir, tmp_path):
    out = tmp_path / "plain8"
    convert(bundle_dir, "x86-cpu", out, ConvertOptions("int8", calib=calib_dir, int8_correction="none",
            guard_band="none", latency_runs=0))
    conv = load_bundle(out).meta.conversion.details
    assert conv["int8_correction"] == {"kind": "none", "points": [], "uncorrected_exits": []}
    assert conv["threshold_transfer"]["guard_band"] == {"kind": "none", "image": 0.0,
                                                        "pixel": conv["threshold_transfer"]["guard_band"]["pixel"]}
    with pytest.raises(ConfigError, match="unknown guard band"):
        convert(bundle_dir, "x86-cpu", tmp_path / "x", ConvertOptions("int8", calib=calib_dir, guard_band="wide"))


def test_gate_refusal_and_force(bundle_dir, check_dir, tmp_path):
    # A tolerance of -100 points can never be met: the gate must refuse, and --force must write anyway.
    with pytest.raises(GateError, match="image AUROC dropped"):
        convert(bundle_dir, "rtx-ada", tmp_path / "no", ConvertOptions("fp16", check=check_dir, tolerance_pt=-100,
                latency_runs=0))
    assert not (tmp_path / "no").exists()
    rep = convert(bundle_dir, "rtx-ada", tmp_path / "yes", ConvertOptions("fp16", check=check_dir, tolerance_pt=-100,
                  force=True, latency_runs=0))
    assert rep.forced and load_bundle(tmp_path / "yes").meta.conversion.forced is True


def test_auto_reports_all_and_measures_latency(bundle_dir, calib_dir, check_dir, tmp_path):
    rep = convert(bundle_dir, "rtx-ampere", tmp_path / "auto", ConvertOptions("auto", calib=calib_dir,
                  check=check_dir, latency_runs=20))
    assert [c.name for c in rep.candidates] == ["fp32", "fp16", "int8"]
    assert rep.chosen in ("fp32", "fp16", "int8")
    lat = {c.name: (round(c.latency_median_ms, 3), round(c.latency_p99_ms, 3)) for c in rep.candidates}
    print(f"\nONNX Runtime CPU latency of the test graph, median/p99 ms: {lat}")  # measured, not asserted


@pytest.mark.parametrize("kw, err, match", [
    ({"precision": "int8"}, ConfigError, "needs --calib"),
    ({"precision": "fp16", "target": "x86-cpu"}, ConfigError, "does not allow fp16"),
    ({"precision": "auto"}, ConfigError, "needs --check"),
    ({"precision": "bf16"}, ConfigError, "unknown precision"),
    ({"precision": "fp32", "target": "nope"}, ConfigError, "unknown target"),
])
def test_usage_errors(bundle_dir, tmp_path, kw, err, match):
    args = {"target": "rtx-ada", **kw}
    with pytest.raises(err, match=match):
        convert(bundle_dir, args["target"], tmp_path / "o", ConvertOptions(args["precision"], latency_runs=0))


def test_int8_with_too_small_calibration_set(bundle_dir, calib_dir, tmp_path):
    import shutil

    small = tmp_path / "small"
    small.mkdir()
    for p in sorted(calib_dir.iterdir())[:3]:
        shutil.copy(p, small / p.name)
    with pytest.raises(CalibrationError, match="small"):
        convert(bundle_dir, "x86-cpu", tmp_path / "o", ConvertOptions("int8", calib=small, latency_runs=0))


def test_int8_scope_stride8_on_a_real_bundle(padim_bundle, small_station, tmp_path):
    """``--int8-scope stride8`` on EfficientNet-Lite0 (PaDiM): recorded in the bundle, the stem stays FP32, and the
    gate against the FP32 bundle runs on the labelled station."""
    options = ConvertOptions("int8", calib=small_station.aligned / "train" / "good", int8_scope="stride8",
                             check=small_station.aligned, force=True, latency_runs=0)
    rep = convert(padim_bundle.bundle.root, "x86-cpu", tmp_path / "s8", options)
    details = load_bundle(tmp_path / "s8").meta.conversion.details
    assert rep.chosen == "int8" and details["int8_scope"] == "stride8" and details["rule"].endswith("+stride8")
    assert any("/stem/" in n for n in details["excluded_nodes"])
    assert rep.candidates[0].gate is not None


def test_backend_without_memory_arena_gives_the_same_outputs(bundle_dir):
    """``memory_arena=False`` (tools holding many sessions at once) changes memory use, never the outputs."""
    img = np.random.default_rng(0).integers(0, 255, (2, 40, 40, 3), dtype=np.uint8)
    with OnnxRuntimeBackend(bundle_dir / "model.onnx") as a, \
            OnnxRuntimeBackend(bundle_dir / "model.onnx", memory_arena=False) as b:
        pa, pb = a.infer(img), b.infer(img)
    np.testing.assert_array_equal(pa.raw_score, pb.raw_score)
    np.testing.assert_array_equal(pa.raw_map, pb.raw_map)


def test_each_candidate_is_reported_with_its_gate_verdict_as_it_lands(bundle_dir, check_dir, tmp_path, capsys):
    convert(bundle_dir, "x86-cpu", tmp_path / "cpu", ConvertOptions("fp32", check=check_dir, latency_runs=2,
                                                                     show_progress=True))
    err = capsys.readouterr().err
    assert "convert 1/1: fp32: gate passed" in err and "ms median" in err
    convert(bundle_dir, "x86-cpu", tmp_path / "cpu2", ConvertOptions("fp32", check=check_dir, latency_runs=2))
    assert capsys.readouterr().err == ""  # the API is quiet unless asked (the CLI asks unless --quiet)
