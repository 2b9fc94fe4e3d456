"""OpenVINO candidates of ``convert --precision auto`` for x86-cpu: planned by the CPU's features, gated like the
others, and a winner on OpenVINO is recorded in the bundle so that the station runs it there."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.bundle import load_bundle
from edgead.calibration.quantize import Int8Scope
from edgead.convert import pipeline
from edgead.convert.ov_candidates import openvino_jobs
from edgead.convert.pipeline import ConvertOptions, convert
from edgead.convert.targets import PROFILES_DIR, get_target, parse_target
from edgead.errors import ConfigError
from edgead.infer import open_backend
from edgead.infer.cpu import cpu_flags

SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
HASWELL = frozenset({"avx2", "fma"})


def _plan(flags, installed=True, int8=True):
    jobs, notes = openvino_jobs(get_target("x86-cpu"), flags, installed=installed, int8=int8,
                                scope=Int8Scope.BACKBONE)
    return [(j.name, j.precision.value, j.inference_precision) for j in jobs], notes


def test_candidates_key_on_the_cpu_features():
    assert _plan(SAPPHIRE_RAPIDS) == ([("ov-fp32", "fp32", "f32"), ("ov-bf16", "fp32", "bf16"),
                                       ("ov-int8", "int8", "f32")], [])
    assert [n for n, *_ in _plan(ZEN4)[0]] == ["ov-fp32", "ov-bf16", "ov-int8"]
    jobs, notes = _plan(HASWELL)
    assert [n for n, *_ in jobs] == ["ov-fp32"]
    assert notes == ["ov-bf16 not built: this CPU has none of amx_bf16, avx512_bf16",
                     "ov-int8 not built: this CPU has none of amx_int8, avx512_vnni, avx_vnni"]
    jobs, notes = _plan(SAPPHIRE_RAPIDS, int8=False)
    assert [n for n, *_ in jobs] == ["ov-fp32", "ov-bf16"] and "give --calib" in notes[0]
    jobs, notes = _plan(SAPPHIRE_RAPIDS, installed=False)
    assert jobs == [] and "pip install 'edgead[openvino]'" in notes[0]
    jobs, _ = openvino_jobs(get_target("rtx-ada"), SAPPHIRE_RAPIDS, installed=True, int8=True,
                            scope=Int8Scope.BACKBONE)
    assert jobs == []  # GPU targets have no OpenVINO candidates


def test_profile_key_is_validated(tmp_path):
    text = (PROFILES_DIR / "x86-cpu.yaml").read_text()
    for bad, why in [("openvino: {fp16: []}", "must map some of"), ("openvino: {bf16: avx512_bf16}", "bf16: must be"),
                     ("openvino: []", "must map some of")]:
        path = tmp_path / "cpu.yaml"
        path.write_text(text.replace(text[text.index("openvino:"):], bad + "\n"))
        with pytest.raises(ConfigError, match=why):
            parse_target(path)
    gpu = (PROFILES_DIR / "rtx-ada.yaml").read_text().replace("openvino: null", "openvino: {fp32: []}")
    (tmp_path / "gpu.yaml").write_text(gpu)
    with pytest.raises(ConfigError, match="'openvino' is for CPU targets"):
        parse_target(tmp_path / "gpu.yaml")


def test_cpu_flags_read_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512_bf16 amx_int8\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16", "amx_int8"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


@pytest.fixture(scope="module")
def auto_report(bundle_dir, calib_dir, check_dir, tmp_path_factory):
    pytest.importorskip("openvino", reason="needs OpenVINO (extra [openvino])")
    out = tmp_path_factory.mktemp("ov") / "auto"
    return convert(bundle_dir, "x86-cpu", out, ConvertOptions("auto", calib=calib_dir, check=check_dir,
                                                              latency_runs=3)), out


def test_auto_gates_the_openvino_candidates(auto_report):
    rep, out = auto_report
    names = [c.name for c in rep.candidates]
    planned, notes = _plan(cpu_flags())
    assert [n for n in names if n.startswith("ov-")] == [n for n, *_ in planned]
    assert rep.notes == notes  # what was not built on this CPU, and why
    ov = {c.name: c for c in rep.candidates if c.name.startswith("ov-")}
    assert ov["ov-fp32"].gate.passed and ov["ov-fp32"].gate.score_drift_max < 1e-3  # FP32 on another runtime
    assert ov["ov-fp32"].details["openvino"] == {"inference_precision": "f32"}
    assert "threshold_transfer" not in ov["ov-fp32"].details
    for name in set(ov) - {"ov-fp32"}:  # BF16 inference and the INT8 graph move scores: thresholds transferred
        assert "threshold_transfer" in ov[name].details, name
        assert ov[name].gate is not None
    meta = load_bundle(out).meta.conversion
    chosen = next(c for c in rep.candidates if c.name == rep.chosen)
    assert meta.backend == ("openvino" if rep.chosen.startswith("ov-") else "onnxruntime") == rep.backend
    assert chosen.passed
    assert "ov-" not in rep.to_markdown() or "| ov-fp32 |" in rep.to_markdown()


def test_a_winner_on_openvino_is_recorded_and_run_there(bundle_dir, calib_dir, check_dir, tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="needs OpenVINO (extra [openvino])")
    real = pipeline.choose

    def prefer_openvino(built, requested, force, tgt):
        real(built, requested, force, tgt)  # the gate's verdicts stand; only the clock is overruled
        return next(b for b in built if b.job.name == "ov-fp32")

    monkeypatch.setattr(pipeline, "choose", prefer_openvino)
    out = tmp_path / "ov"
    rep = convert(bundle_dir, "x86-cpu", out, ConvertOptions("auto", check=check_dir, latency_runs=0))
    assert rep.chosen == "ov-fp32" and rep.backend == "openvino"
    bundle = load_bundle(out)
    conv = bundle.meta.conversion
    assert conv.backend == "openvino" and conv.precision.value == "fp32"
    assert conv.openvino == {"inference_precision": "f32"} and "openvino" not in conv.details
    images = np.stack([np.full((40, 40, 3), v, np.uint8) for v in (90, 128, 170)])
    with open_backend(out) as ov, open_backend(bundle_dir) as ort:
        assert ov.name == "openvino"
        a, b = ort.infer(images).raw_score, ov.infer(images).raw_score
        np.testing.assert_allclose(b, a, rtol=0, atol=5e-4 * float(np.abs(a).max()))
