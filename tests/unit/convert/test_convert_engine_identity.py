"""``edgead convert`` for a TensorRT target writes the engine beside the converted bundle, its header naming the
converted bundle's hash. TensorRT itself is replaced here (no GPU on the build host): this isolates the pipeline's
wiring only; tests/gpu/test_trt.py is the real round trip.
"""
import pytest

from edgead.bundle import load_bundle
from edgead.convert import trt_build
from edgead.convert.pipeline import ENGINE, ConvertOptions, convert
from edgead.infer.engine_file import EngineHeader, check_built_from, read_engine_file


@pytest.fixture
def fake_tensorrt(monkeypatch):
    monkeypatch.setattr(trt_build, "tensorrt_available", lambda: True)
    monkeypatch.setattr(trt_build, "compile_engine", lambda onnx, tgt, prec, ch, cache_path: b"serialized")

    def header(target, precision, *, model_hash, input_hw, channels, bundle_format_version, device=0):
        return EngineHeader("10.3.0", "Orin", "8.7", model_hash, bundle_format_version, precision.value,
                            target.name, "0", input_hw[0], input_hw[1], channels)

    monkeypatch.setattr(trt_build, "engine_header", header)


def test_engine_header_names_the_converted_bundle(bundle_dir, tmp_path, fake_tensorrt):
    out = tmp_path / "orin"
    rep = convert(bundle_dir, "jetson-orin-nx", out, ConvertOptions("fp32", latency_runs=0))
    engine = tmp_path / ENGINE
    assert rep.engine.startswith(f"built: {engine}")
    header, blob = read_engine_file(engine)
    converted = load_bundle(out)  # the engine is not inside: the bundle still verifies
    assert blob == b"serialized" and header.model_hash == converted.model_hash
    assert header.model_hash != load_bundle(bundle_dir).model_hash
    check_built_from(header, model_hash=converted.model_hash,
                     bundle_format_version=converted.meta.format_version)
